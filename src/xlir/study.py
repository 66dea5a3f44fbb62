"""The study: a YAML grid expanded into runs, each stage skipped when its outputs exist.

Grid: encoder x tuning method x seed x task (x xQG on/off x alpha for the systems chosen for
augmentation), plus the lexical baselines (BM25, and BM25 fused with each dense system).
Layout under the study directory (every file written atomically, the metrics file last, so a
stage counts as done only when everything it makes is complete):

    config.resolved.json  environment.json  study.json (progress, timings)
    tasks/<task>.json                         sizes and languages of each (reduced) task
    fertility.json                            tokenizer pieces per word, per language
    systems/<system>/model/                   trained model (or adapter) + xlir-model.json
    systems/<system>/<task>/{run.trec,metrics.json}
    xqg/generator/  xqg/queries.jsonl  xqg/quality.json

A system is `<method>-s<seed>` for dense models (a method runs at every seed, or at the seeds
it names), `bm25`, `hybrid-<method>-s<seed>`, and `xqg-<method>-s<seed>-a<alpha>` for augmented
indexes. The config is plain data (xlir.study_config); a folder's config may grow, and a run
under a grown config runs only the new stages. This module orchestrates; it does not
implement training, retrieval, generation or metrics (see train, evaluate, qgen), and it never
renders anything (see report).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlir import storage, study_xqg
from xlir.config import to_dict
from xlir.errors import ConfigError
from xlir.study_progress import time_left
from xlir.study_config import (DEFAULT_CONFIG, MethodSpec, StudyConfig, TaskSpec,  # noqa: F401
                               XQGSpec, changes, check_stage_configs, load_study_config,
                               train_config)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One node of the study's graph, plain data: what it makes and which stages it reads.
    kind: retrieve (bm25 or a dense system on a task), train (a dense system), fuse (BM25 +
    a dense system's run), xqg (generator, questions and every augmented index)."""
    kind: str
    system: str = ""
    task: str = ""
    deps: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return f"{self.system}/{self.task}" if self.task else self.system

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.target}"


class Study:
    """Runs the stages of one study directory; each stage is skipped when already done."""

    def __init__(self, config: StudyConfig, out: str | Path | None = None):
        self.config = config
        self.root = Path(out or config.out)
        self._tasks: dict[str, Any] = {}
        self._t0 = time.time()
        self._done = 0
        self._last = self._t0
        self._cost: dict[str, list[float]] = {}  # stage kind -> seconds of each stage run
        self.workers = 1  # stages run at once (the ETA divides by it)
        status = self.root / "study.json"
        self._previous_s = storage.read_json(status).get("wall_s_total", 0.0) if status.exists() else 0.0

    # ---- bookkeeping -------------------------------------------------------------------------
    def systems(self) -> list[str]:
        return list(self.system_specs)

    @property
    def system_specs(self) -> dict[str, tuple[MethodSpec, int]]:
        # Seed-major order: a study killed or stopped after its first round of seeds already
        # holds every method at that seed (a complete one-seed study), never full alone.
        return {f"{m.label}-s{s}": (m, s) for s in self.config.seeds for m in self.config.methods
                if m.seeds is None or s in m.seeds}

    def plan(self) -> list[tuple[str, str]]:
        """Every (stage, target) the study will run, in order: the progress denominator."""
        c = self.config
        steps = []
        if "bm25" in c.baselines or "hybrid" in c.baselines:
            steps += [("retrieve", f"bm25/{t.label}") for t in self.test_tasks()]
        for s in self.systems():  # seed-major: each finished round is a complete smaller study
            tasks = self.tasks_of(s)
            steps += [("train", s)] + [("retrieve", f"{s}/{t.label}") for t in tasks]
            if "hybrid" in c.baselines:
                steps += [("fuse", f"hybrid-{s}/{t.label}") for t in tasks if t.role == "test"]
        if c.xqg.enabled:
            steps += [("qgen-train", "generator"), ("qgen-generate", "queries")]
            labels = [c.xqg.task] + ([c.xqg.select_on] if c.xqg.select_on else [])
            steps += [("augment", f"{s}/a{a:g}/{t}") for s in c.xqg.systems
                      for a in c.xqg.alphas for t in labels]
        return steps

    def stages(self) -> list[Stage]:
        """The study as a graph, in the serial order: each stage names the stages whose outputs
        it reads (xlir.study_dask schedules them by these; the serial loop runs them in order).
        xQG is one stage after every dense retrieval (its `best` system is chosen on them)."""
        c, out = self.config, []
        lexical = "bm25" in c.baselines or "hybrid" in c.baselines
        if lexical:
            out += [Stage("retrieve", "bm25", t.label) for t in self.test_tasks()]
        dense = []
        for s in self.systems():
            # a MAD-X swap system reads its twin's task adapter (study_swap)
            twin = self._twin(s)
            out.append(Stage("train", s, deps=(f"train:{twin}",) if twin else ()))
            # frozen seeds read the first seed's embedding cache: encoded once, never twice at once
            shared = self.embeddings_dir(s).parent.name
            for t in self.tasks_of(s):
                deps = (f"train:{s}",) + ((f"retrieve:{shared}/{t.label}",) if shared != s else ())
                out.append(Stage("retrieve", s, t.label, deps))
                dense.append(out[-1].key)
            if "hybrid" in c.baselines:
                out += [Stage("fuse", f"hybrid-{s}", t.label,
                              (f"retrieve:{s}/{t.label}", f"retrieve:bm25/{t.label}"))
                        for t in self.tasks_of(s) if t.role == "test"]
        if c.xqg.enabled:
            out.append(Stage("xqg", "xqg", deps=tuple(dense)))
        return out

    def run_stage(self, stage: Stage) -> None:
        """Run one stage (skipped when its outputs exist), in this process."""
        if stage.kind == "train":
            return self._train(stage.system, *self.system_specs[stage.system])
        if stage.kind == "retrieve" and stage.system == "bm25":
            return self._retrieve_bm25(self.spec(stage.task))
        if stage.kind == "retrieve":
            return self._retrieve_dense(stage.system, self.spec(stage.task))
        if stage.kind == "fuse":
            return self._hybrid(stage.system.removeprefix("hybrid-"), self.spec(stage.task))
        if stage.kind == "xqg":
            from xlir.study_xqg import run_xqg

            return run_xqg(self)
        raise ValueError(f"unknown stage kind {stage.kind!r}")

    def progress(self, stage: str, target: str, skipped: bool, seconds: float | None = None) -> None:
        """Log the study's progress and keep study.json's running totals current (a killed
        study keeps the time it spent). `seconds`: the stage's own time when it ran elsewhere
        (a Dask worker); else the time since the last stage ended."""
        self._done += 1
        now = time.time()
        if not skipped:
            self._cost.setdefault(stage, []).append(now - self._last if seconds is None else seconds)
        self._last = now
        plan = self.plan()
        total, elapsed = len(plan), now - self._t0
        eta = time_left(self, plan[self._done:]) / self.workers
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

    def tasks_of(self, system: str) -> list[TaskSpec]:
        """The tasks a dense system is evaluated on (methods[].tasks; default: every test task,
        and a task held out for a choice when the system takes part in it)."""
        method, chooses = self.system_specs[system][0], system in study_xqg.selection_systems(self)
        return [t for t in self.config.tasks if (method.tasks is None or t.label in method.tasks)
                and (t.role == "test" or chooses)]

    def test_tasks(self) -> list[TaskSpec]:
        """The tasks of the answer (role test), in config order."""
        return [t for t in self.config.tasks if t.role == "test"]

    def _twin(self, system: str) -> str | None:
        if not self.system_specs[system][0].swap:
            return None
        from xlir.study_swap import twin

        return twin(self, system)

    def spec(self, label: str) -> TaskSpec:
        return next(t for t in self.config.tasks if t.label == label)

    def task(self, spec: TaskSpec):
        if spec.label not in self._tasks:
            from xlir.data.tasks import load_task

            task = load_task(spec.name, split=spec.split, languages=spec.languages, **spec.options)
            if spec.max_queries_per_language is not None or spec.distractors is not None:
                task = task.sample(spec.max_queries_per_language, spec.distractors, self.config.seed)
            if not spec.titles:
                task = task.without_titles()
            storage.write_json(self.root / "tasks" / f"{spec.label}.json", _task_summary(task))
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
        """The packaged default models are prepared on first use, as `xlir models prepare`
        does (a no-op when they are; a local model folder is used as it is)."""
        from xlir import models

        if self.config.encoder in (None, models.DEFAULT_ENCODER):
            models.prepare_encoder()
        xqg = self.config.xqg
        if xqg.enabled and (xqg.generator or xqg.train.get("base")) in (None, models.DEFAULT_GENERATOR):
            models.prepare_generator()

    def _run(self, executor=None) -> None:
        storage.write_json(self.root / "config.resolved.json", to_dict(self.config))
        from xlir.environment import describe_environment

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
        changed = changes(storage.read_json(path), self.config)
        if changed:
            raise ConfigError(f"{self.root} holds a study run with another config (changed: "
                              f"{', '.join(changed)}); use another `out` folder or delete it")

    def model_dir(self, system: str) -> Path:
        """Where a dense system's model is (a MAD-X swap system's: its twin's, study_swap)."""
        return self.root / "systems" / (self._twin(system) or system) / "model"

    def embeddings_dir(self, system: str) -> Path:
        """A system's embedding cache. `frozen` is the same model at every seed, so its seeds
        share the first seed's cache (keyed by model fingerprint, encode.py): encoded once."""
        method, _ = self.system_specs[system]
        if method.name == "frozen":
            system = f"{method.label}-s{self.config.seeds[0]}"
        return self.root / "systems" / system / "embeddings"

    def encoder_for(self, system: str):
        """The inference encoder of a dense system (the base model for `frozen`)."""
        from xlir.encoder import load_encoder
        from xlir.models import resolve_encoder

        method, _ = self.system_specs[system]
        path = (resolve_encoder(self.config.encoder) if method.name == "frozen"
                else self.model_dir(system))
        return load_encoder(str(path), max_length=self.config.max_seq_length,
                            backend=self.config.precision)

    def _train(self, system: str, method: MethodSpec, seed: int) -> None:
        out = self.model_dir(system)
        todo = method.name != "frozen" and not (out / "xlir-model.json").exists()
        if method.swap:
            from xlir.study_swap import adapters_missing, train_adapters
        if not todo and not (method.swap and adapters_missing(self, system) and self._needs_model(system)):
            return self.progress("train", system, skipped=True)  # frozen: nothing to train
        if todo:
            from xlir.train import train

            # Never train on a question or passage that an evaluated split judges.
            train(self.train_config(system), out,
                  evaluated_tasks={spec.label: self.task(spec) for spec in self.config.tasks})
        if method.swap:
            train_adapters(self, system)
        self.progress("train", system, skipped=False)

    def _needs_model(self, system: str) -> bool:
        """Whether a stage still to run reads this system's model (a missing retrieval or xQG's
        choice): a study grown from results of record never retrains what is only reported."""
        missing = any(not (self.root / "systems" / system / t.label / "metrics.json").exists()
                      for t in self.tasks_of(system))
        return missing or system in study_xqg.selection_systems(self)

    def train_config(self, system: str):
        """The TrainConfig of a dense system (study_config.train_config)."""
        return train_config(self.config, *self.system_specs[system])

    def _retrieve_dense(self, system: str, spec: TaskSpec) -> None:
        out = self.root / "systems" / system / spec.label
        if (out / "metrics.json").exists():
            return self.progress("retrieve", f"{system}/{spec.label}", skipped=True)
        from xlir.retrieve import dense_run

        task = self.task(spec)
        t0 = time.time()
        if self.system_specs[system][0].swap:
            from xlir.study_swap import retrieve

            run = retrieve(self, system, spec)
        else:
            run = dense_run(self.encoder_for(system), task, k=self.config.k,
                            cache_dir=self.embeddings_dir(system))
        self.save_run(system, spec, run, {"retrieve_s": round(time.time() - t0, 2)})
        self.progress("retrieve", f"{system}/{spec.label}", skipped=False)

    def _retrieve_bm25(self, spec: TaskSpec) -> None:
        if (self.root / "systems" / "bm25" / spec.label / "metrics.json").exists():
            return self.progress("retrieve", f"bm25/{spec.label}", skipped=True)
        from xlir.retrieve import bm25_run

        t0 = time.time()
        run = bm25_run(self.task(spec), k=self.config.k)
        self.save_run("bm25", spec, run, {"retrieve_s": round(time.time() - t0, 2)})
        self.progress("retrieve", f"bm25/{spec.label}", skipped=False)

    def _hybrid(self, system: str, spec: TaskSpec) -> None:
        name = f"hybrid-{system}"
        if (self.root / "systems" / name / spec.label / "metrics.json").exists():
            return self.progress("fuse", f"{name}/{spec.label}", skipped=True)
        from xlir.retrieve import hybrid_run, read_trec_run

        dense = read_trec_run(self.root / "systems" / system / spec.label / "run.trec")
        lexical = read_trec_run(self.root / "systems" / "bm25" / spec.label / "run.trec")
        run = hybrid_run(dense, lexical, method=self.config.hybrid)
        self.save_run(name, spec, run, {"fusion": self.config.hybrid})
        self.progress("fuse", f"{name}/{spec.label}", skipped=False)

    def save_run(self, system: str, spec: TaskSpec, run: dict, extra: dict) -> dict:
        """TREC run, then metrics (per query, per language, macro, seen/unseen) written last."""
        from xlir.evaluate import evaluate_run
        from xlir.retrieve import write_trec_run

        task = self.task(spec)
        out = self.root / "systems" / system / spec.label
        write_trec_run(run, out / "run.trec", tag=system)
        result = evaluate_run(run, task,  # the task's primary measure first, then the rest
                              encoder=self.config.encoder)
        metrics = {**result.to_json(), "system": system, "task": spec.label,
                   "task_name": task.name, "primary": task.primary_measure, **extra}
        storage.write_json(out / "metrics.json", metrics)
        return metrics

    def _fertility(self) -> None:
        path = self.root / "fertility.json"
        if path.exists():
            return
        from transformers import AutoTokenizer

        from xlir.data.checks import fertility
        from xlir.models import resolve_encoder

        tokenizer = AutoTokenizer.from_pretrained(str(resolve_encoder(self.config.encoder)))
        texts: dict[str, list[str]] = {}
        for spec in self.test_tasks():
            task = self.task(spec)
            for qid, text in task.queries.items():
                texts.setdefault(task.query_lang[qid], []).append(text)
        storage.write_json(path, fertility(tokenizer, texts))


def _task_summary(task) -> dict:
    langs: dict[str, int] = {}
    for lang in task.query_lang.values():
        langs[lang] = langs.get(lang, 0) + 1
    return {"name": task.name, "split": task.split, "queries": len(task.queries),
            "documents": len(task.corpus), "queries_per_language": langs,
            "primary_measure": task.primary_measure, "meta": task.meta}


def read_metrics(root: str | Path) -> list[dict]:
    """Every metrics.json of a study directory (used by the report and the README table)."""
    return [storage.read_json(p) for p in sorted(Path(root).glob("systems/*/*/metrics.json"))]
