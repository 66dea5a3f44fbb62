"""The study: a YAML grid expanded into runs, each stage skipped when its outputs exist.

Grid: encoder x tuning method x seed x task (x xQG on/off x alpha for the systems chosen for
augmentation), plus the lexical baselines (BM25, and BM25 fused with each dense system).
Layout under the study directory (every file written atomically, the metrics file last, so a
stage counts as done only when everything it makes is complete):

    config.resolved.json  environment.json  study.json (progress, timings)
    tasks/<task>.json                         sizes and languages of each (reduced) task
    fertility.json                            tokenizer pieces per word, per language
    systems/<system>/system.json              what the system is (kind, method, label, seed, ...)
    systems/<system>/model/                   trained model (or adapter) + xlir-model.json
    systems/<system>/<task>/{run.trec,metrics.json}
    xqg/generator/  xqg/queries.jsonl  xqg/quality.json  xqg/selection.json

A system is `<method>-s<seed>` (a dense model, at every seed or those it names), `bm25`,
`hybrid-<method>-s<seed>`, or `xqg-<method>-s<seed>-a<alpha>` (an augmented index). The config
is plain data (xlir.study_config); a folder's config may grow (a run then runs the new stages),
and a folder may start as a copy of results of record (metrics and manifests, no models/runs).

This module runs the plan (xlir.study_plan: the stages as plain data) in one loop: a stage whose
outputs exist is skipped (`Study.done`, the one test), every other one runs its body (xlir.stages,
stages_xqg, stages_swap: explicit arguments, none sees the Study) and ticks the progress line,
the ETA and study.json. It implements no training, retrieval, generation, metrics or rendering.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from xlir import lr_grid, models, stages, stages_swap, stages_xqg, storage
from xlir.config import from_dict, merge, to_dict
from xlir.data.monolingual import evaluated_texts
from xlir.data.tasks import load_task
from xlir.environment import describe_environment
from xlir.errors import ConfigError, XlirError
from xlir.study_config import (DEFAULT_CONFIG, MethodSpec, StudyConfig, TaskSpec,  # noqa: F401
                               XQGSpec, changes, check_stage_configs, load_study_config,
                               train_config)
from xlir.study_plan import Plan, Stage  # noqa: F401
from xlir.study_progress import time_left

log = logging.getLogger(__name__)

# system.json field -> the model manifest's (xlir-model.json) field it is copied from
MODEL_FIELDS = {"trainable_params": "trainable_params", "total_params": "total_params",
                "train_s": "wall_time_s", "linked_from": "linked_from"}


class Study(Plan):
    """Runs the stages of one study directory (Plan: which ones), each skipped when its
    outputs exist; the bodies are xlir.stages, stages_xqg and stages_swap."""

    def __init__(self, config: StudyConfig, out: str | Path | None = None):
        super().__init__(config)
        self.root = Path(out or config.out)
        self._tasks: dict[str, Any] = {}
        self._t0 = time.time()
        self._done = 0
        self._last = self._t0
        self._cost: dict[str, list[float]] = {}  # stage kind -> seconds of each stage run
        self.workers = 1  # stages run at once (the ETA divides by it)
        status = self.root / "study.json"
        self._previous_s = storage.read_json(status).get("wall_s_total", 0.0) if status.exists() else 0.0

    def plan(self) -> list[tuple[str, str]]:
        """(kind, target) of every stage, in the serial order: the progress denominator."""
        return [(s.kind, s.target) for s in self.stages()]

    # ---- the one loop ------------------------------------------------------------------------
    def run_stage(self, stage: Stage) -> None:
        """Run one stage in this process, or skip it when its outputs exist; either way it
        counts in the progress line and study.json."""
        done = self.done(stage)
        if not done:
            getattr(self, "_" + stage.kind.replace("-", "_"))(stage)
        self.describe(stage)
        self.progress(stage.kind, stage.target, skipped=done)

    def done(self, stage: Stage, load: bool = True) -> bool:
        """Whether a stage's outputs are on disk: the one test every stage is skipped by.
        load=False (the ETA) never loads a task to decide; it says "not done" instead."""
        systems = self.root / "systems"
        if stage.kind in ("retrieve", "fuse"):
            # results of record keep metrics, no runs: a run a hybrid still to make reads is made again
            made = (systems / stage.target / "metrics.json").is_file()
            return made and (stage.kind == "fuse" or (systems / stage.target / "run.trec").is_file()
                             or all((systems / t / "metrics.json").is_file()
                                    for t in self.run_readers().get(stage.key, ())))
        if stage.kind == "train":
            return self._trained(stage.system, load)
        if stage.kind == "qgen-train":  # generation done implies training done
            manifest = self.root / "xqg" / "generator" / "qgen-manifest.json"
            return ((self.root / "xqg" / "queries.done.json").is_file() or (
                manifest.is_file() and bool(storage.read_json(manifest).get("complete"))))
        if stage.kind == "qgen-generate":
            return (self.root / "xqg" / "queries.done.json").is_file()
        if stage.kind == "augment":
            systems_of = self._augmented_now(stage.system)
            return bool(systems_of) and all(
                (systems / f"xqg-{s}-a{stage.alpha:g}" / stage.task / "metrics.json").is_file()
                for s in systems_of)
        if stage.kind == "xqg-select":
            return (self.root / "xqg" / "selection.json").is_file()
        raise ValueError(f"unknown stage kind {stage.kind!r}")

    def _trained(self, system: str, load: bool) -> bool:
        # results of record: manifests, no weights (stages.is_record) or adapters; retrain if read
        method, _ = self.system_specs[system]
        model = self.model_dir(system)
        if method.name != "frozen" and not stages.has_model(model) and (
                not stages.is_record(model) or self._needs_model(system)):
            return False
        if not method.swap:
            return True
        if not load and not all(t.label in self._tasks for t in self.tasks_of(system)):
            return False  # its languages need its tasks loaded: not for an estimate alone
        return not stages_swap.missing(self.lang_adapters(system)) or not self._needs_model(system)

    def progress(self, stage: str, target: str, skipped: bool, seconds: float | None = None) -> None:
        """Log the study's progress and keep study.json's running totals current (a killed
        study keeps the time it spent). `seconds`: the stage's own time when it ran elsewhere
        (a Dask worker); else the time since the last stage ended."""
        self._done += 1
        now = time.time()
        if not skipped:
            self._cost.setdefault(stage, []).append(now - self._last if seconds is None else seconds)
        self._last = now
        pending = self.stages()
        total, elapsed = len(pending), now - self._t0
        eta = time_left(self._cost, [s.kind for s in pending[self._done:]
                                     if not self.done(s, load=False)]) / self.workers
        log.info("[%d/%d] %s %s %s (elapsed %.0fs, ~%.0fs left)", self._done, total, stage,
                 target, "already done, skipped" if skipped else "done", elapsed, eta)
        self._write_status(finished=False)

    def _write_status(self, finished: bool) -> None:
        storage.write_json(self.root / "study.json", {
            "name": self.config.name, "systems": self.systems(), "stages_done": self._done,
            "stages_total": len(self.plan()), "finished": finished,
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "wall_s_this_run": round(time.time() - self._t0, 1),
            "wall_s_total": round(self._previous_s + time.time() - self._t0, 1)})

    def task(self, spec: TaskSpec):
        if spec.label not in self._tasks:
            task = load_task(spec.name, split=spec.split, languages=spec.languages, **spec.options)
            if spec.max_queries_per_language is not None or spec.distractors is not None:
                task = task.sample(spec.max_queries_per_language, spec.distractors, self.config.seed)
            if not spec.titles:
                task = task.without_titles()
            storage.write_json(self.root / "tasks" / f"{spec.label}.json", stages.task_summary(task))
            self._tasks[spec.label] = task
        return self._tasks[spec.label]

    # ---- stages ------------------------------------------------------------------------------
    def run(self, executor=None) -> Path:
        """Run every stage not yet done; one process per study folder at a time. `executor`
        (xlir.study_dask.DaskExecutor) runs the stages on Dask workers instead of here."""
        check_stage_configs(self.config)  # a typo fails now, not after hours of stages
        self.root.mkdir(parents=True, exist_ok=True)
        with storage.exclusive(self.root / ".lock", wait=False, what=f"study folder {self.root}"):
            self._check_same_config()
            # Under the lock, temporaries in the folder were left by a killed run: never outputs.
            for stale in storage.remove_temporaries(self.root):
                log.info("removed %s (left by a killed run)", stale.relative_to(self.root))
            self._prepare_models()
            self._run(executor)
        return self.root

    def _prepare_models(self) -> None:
        """The packaged default models are prepared on first use, as `xlir models prepare` does."""
        if self.config.encoder in (None, models.DEFAULT_ENCODER):
            models.prepare_encoder()
        xqg = self.config.xqg
        if xqg.enabled and (xqg.generator or xqg.train.get("base")) in (None, models.DEFAULT_GENERATOR):
            models.prepare_generator()

    def _run(self, executor=None) -> None:
        storage.write_json(self.root / "config.resolved.json", to_dict(self.config))
        storage.write_json(self.root / "environment.json", describe_environment(self.config))
        self._fertility()
        if executor is None:
            for stage in self.stages():  # the order of plan()
                self.run_stage(stage)
        else:
            executor.run(self)
        self._write_status(finished=True)

    def _check_same_config(self) -> None:
        """A study folder belongs to one config, which may grow (study_config.changes): resuming
        under another would skip stages whose outputs were made with different settings, and
        mislabel them. A folder holding no stage output yet (a first attempt that failed early)
        takes the new config."""
        path = self.root / "config.resolved.json"
        bookkeeping = {"config.resolved.json", "environment.json", "study.json", ".lock", "tasks"}
        if not path.is_file() or all(p.name in bookkeeping for p in self.root.iterdir()):
            return
        if changed := changes(storage.read_json(path), self.config):
            raise ConfigError(f"{self.root} holds a study run with another config (changed: "
                              f"{', '.join(changed)}); use another `out` folder or delete it")

    def model_dir(self, system: str) -> Path:
        """Where a dense system's model is (a MAD-X swap system's: its twin's)."""
        return self.root / "systems" / (self.twin(system) or system) / "model"

    def embeddings_dir(self, system: str) -> Path:
        """A system's embedding cache (frozen's seeds share the first seed's: Plan)."""
        return self.root / "systems" / self.embeddings_owner(system) / "embeddings"

    def encoder_for(self, system: str):
        """The inference encoder of a dense system (the base model for `frozen`)."""
        from xlir.encoder import load_encoder  # torch: only in the stages that encode

        method, _ = self.system_specs[system]
        path = (models.resolve_encoder(self.config.encoder) if method.name == "frozen"
                else self.model_dir(system))
        return load_encoder(str(path), max_length=self.config.max_seq_length,
                            backend=self.config.precision)

    def train_config(self, system: str):
        """A dense system's TrainConfig (study_config.train_config; lr_grid: the chosen rate)."""
        method, seed = self.system_specs[system]
        lr = self.lr_chosen(method).get("lr") if method.lr_grid else None
        if method.lr_grid and lr is None:
            raise XlirError(f"methods.{method.label}.lr_grid: its variants are not all evaluated "
                            f"on {self.config.select_on} yet")
        return train_config(self.config, method, seed, lr=lr)

    def lr_chosen(self, method: MethodSpec) -> dict:
        """An lr_grid method's rate and each rate's score (xlir.lr_grid.choose; {} while a
        variant is not evaluated on select_on)."""
        return lr_grid.choose({lr: self._out(v, self.config.select_on) / "metrics.json"
                               for lr, v in self.grids[method.label].items()}, method.lr_grid)

    def evaluated(self) -> dict:
        """Every task of the study by label: what no training may see."""
        return {spec.label: self.task(spec) for spec in self.config.tasks}

    def lang_adapters(self, system: str) -> dict[str, Path]:
        """A swap system's target languages -> their adapter folders."""
        method, _ = self.system_specs[system]
        langs = stages_swap.target_languages([self.task(t) for t in self.tasks_of(system)],
                                             stages_swap.source_lang(method.options))
        return {lang: self.root / "systems" / system / "lang_adapters" / lang for lang in langs}

    def _needs_model(self, system: str) -> bool:
        """Whether a stage still to run reads this system's model (a missing retrieval, an xQG
        index not built, a swap over its task adapter): a grown study retrains nothing else."""
        missing = any(not (self.root / "systems" / system / t.label / "metrics.json").exists()
                      for t in self.tasks_of(system))
        return (missing or any(self.twin(s) == system and self._needs_model(s) for s in self.system_specs)
                or any(not self.done(s) for s in self.stages()
                       if s.kind == "augment" and system in self.augmented(s.system)))

    def _out(self, system: str, label: str) -> Path:
        return self.root / "systems" / system / label

    # ---- what each system is ------------------------------------------------------------------
    def describe(self, stage: Stage) -> None:
        """systems/<name>/system.json for each system `stage` made: what the system is, as the
        report reads it (it never parses a name). Written when missing or different, so a study
        made before these files gets them when it is resumed (or when this is called for each
        of its stages: it runs nothing)."""
        bases = self._augmented_now(stage.system) if stage.kind == "augment" else []
        for name, record in self.system_records(stage, bases).items():
            if record["kind"] != "bm25":  # a trained model's parameters and training time
                manifest = self.model_dir(record.get("base") or name) / "xlir-model.json"
                m = storage.read_json(manifest) if manifest.is_file() else {}
                record |= {k: m[v] for k, v in MODEL_FIELDS.items() if v in m}
            path = self.root / "systems" / name / "system.json"
            if path.parent.is_dir() and (not path.is_file() or storage.read_json(path) != record):
                storage.write_json(path, record)

    # ---- the stages: each builds its body's arguments (xlir.stages*) -------------------------
    def _train(self, stage: Stage) -> None:
        system = stage.system
        method, seed = self.system_specs[system]
        if method.name != "frozen" and not stages.has_model(self.model_dir(system)):
            config = self.train_config(system)
            # an lr_grid method at its variants' seed: the chosen variant did this very training
            tried = self.grids.get(method.label, {}).get(config.lr)
            same = tried is not None and self.system_specs[tried][1] == seed
            stages.train(self.model_dir(system), config, self.evaluated(),
                         same_as=self.model_dir(tried) if same else None)
        if method.swap:
            stages_swap.train_adapters(
                self.lang_adapters(system), models.resolve_encoder(self.config.encoder),
                self.train_config(system), evaluated_texts(self.evaluated().values()),
                where=f"methods.{method.label}.swap")

    def _retrieve(self, stage: Stage) -> None:
        c, spec = self.config, self.spec(stage.task)
        out, task = self._out(stage.system, spec.label), self.task(spec)
        if stage.system == "bm25":
            stages.retrieve_bm25(out, spec.label, task, k=c.k, encoder_name=c.encoder)
        elif self.system_specs[stage.system][0].swap:
            source = stages_swap.source_lang(self.system_specs[stage.system][0].options)
            stages_swap.retrieve(out, stage.system, spec.label, task, self.model_dir(stage.system),
                                 self.lang_adapters(stage.system), source, k=c.k,
                                 cache_dir=self.embeddings_dir(stage.system),
                                 max_length=c.max_seq_length, precision=c.precision, encoder_name=c.encoder)
        else:
            stages.retrieve_dense(out, stage.system, spec.label, task, self.encoder_for(stage.system),
                                  k=c.k, cache_dir=self.embeddings_dir(stage.system), encoder_name=c.encoder)

    def _fuse(self, stage: Stage) -> None:
        c, spec, dense = self.config, self.spec(stage.task), stage.system.removeprefix("hybrid-")
        weight, chosen = 0.5 if c.hybrid_weight is None else c.hybrid_weight, None
        if c.hybrid == "interpolate" and c.hybrid_weight is None:  # chosen on select_on
            weight, chosen = self._chosen_weight(dense)
        stages.fuse(self._out(stage.system, spec.label), stage.system, spec.label,
                    self.task(spec), self._out(dense, spec.label) / "run.trec",
                    self._out("bm25", spec.label) / "run.trec", method=c.hybrid,
                    encoder_name=c.encoder, weight=weight, chosen=chosen)

    def _chosen_weight(self, dense: str) -> tuple[float, dict]:
        """A dense system's interpolation weight, chosen on select_on once for all its tasks
        (xlir.stages.choose_weight; deterministic, so a resumed study chooses the same)."""
        memo = self.__dict__.setdefault("_weights", {})
        if dense not in memo:
            held = self.spec(self.config.select_on)
            memo[dense] = stages.choose_weight(
                self._out(dense, held.label) / "run.trec", self._out("bm25", held.label) / "run.trec",
                self.task(held), held.label, encoder_name=self.config.encoder)
        return memo[dense]

    def _qgen_train(self, stage: Stage) -> None:
        from xlir.qgen_train import QGenTrainConfig  # torch

        x = self.config.xqg
        tcfg = from_dict(QGenTrainConfig, {**x.train, **({"base": x.generator} if x.generator else {})})
        stages_xqg.train_generator(self.root / "xqg" / "generator", tcfg, self.evaluated(),
                                   self.task(self.spec(x.task)))

    def _qgen_generate(self, stage: Stage) -> None:
        from xlir.qgen import config_from  # torch

        x = self.config.xqg
        gcfg = config_from(merge(x.generate, {"languages": list(x.languages)}))
        # The output vocabulary never learns from a sentence an evaluated split holds.
        stages_xqg.generate(self.root / "xqg", self.root / "xqg" / "generator", self._xqg_corpus(),
                            gcfg, evaluated_texts(self.evaluated().values()))

    def _xqg_corpus(self) -> dict:
        """The passages of every xQG pool (the xQG task's and the select_on task's)."""
        return {d: p for label in self.xqg_tasks() for d, p in self.task(self.spec(label)).corpus.items()}

    def _generated(self) -> list[dict]:
        """The generated questions of every xQG pool, read once per process."""
        if "_rows" not in self.__dict__:
            from xlir.qgen import read_generated  # torch

            self._rows = read_generated(self.root / "xqg" / "queries.jsonl", self._xqg_corpus())
        return self._rows

    def _augmented_now(self, name: str) -> list[str]:
        """The systems an xqg.systems entry names now: `best` once its candidates are
        evaluated on the select task (before that: none)."""
        if name != "best":
            return self.resolve([name])
        if "_best" in self.__dict__:  # chosen once its candidates are evaluated: never again
            return [self._best]
        x = self.config.xqg
        label = x.select_on or x.task
        candidates = self.best_candidates()
        if not all((self._out(s, label) / "metrics.json").is_file() for s in candidates):
            return []
        self._best = stages_xqg.best(self.root, candidates, label)
        return [self._best]

    def _augment(self, stage: Stage) -> None:
        c, spec = self.config, self.spec(stage.task)
        systems = self._augmented_now(stage.system)
        if not systems:  # the plan runs every candidate's retrieval before (Dask: its deps)
            raise XlirError(f"xqg.systems {stage.system}: its candidates are not all evaluated "
                            f"on {c.xqg.select_on or c.xqg.task} yet")
        for system in systems:
            name = f"xqg-{system}-a{stage.alpha:g}"
            if (self._out(name, spec.label) / "metrics.json").is_file():
                continue
            stages_xqg.augment(self._out(name, spec.label), system, spec.label, self.task(spec),
                               self.encoder_for(system), self._generated, stage.alpha, c.xqg,
                               cache_dir=self.embeddings_dir(system),
                               generated_cache=self.root / "xqg" / "embeddings" / system,
                               k=c.k, batch_size=c.batch_size, encoder_name=c.encoder)

    def _xqg_select(self, stage: Stage) -> None:
        x = self.config.xqg
        systems = [s for name in x.systems for s in self._augmented_now(name)]
        storage.write_json(self.root / "xqg" / "selection.json", stages_xqg.select(
            self.root, list(dict.fromkeys(systems)), x.alphas, x.select_on))

    def _fertility(self) -> None:
        if not (self.root / "fertility.json").exists():
            stages.fertility(self.root / "fertility.json", self.config.encoder,
                             [self.task(spec) for spec in self.test_tasks()])
