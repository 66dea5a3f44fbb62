"""What a study config expands to, as plain data: its systems, the tasks each one is evaluated
on, the MAD-X system a swap shares its task adapter with, the systems xQG augments, and the
stages (`Stage` records) in the serial order, each naming the stages whose outputs it reads.

It reads no file and runs nothing: xlir.study runs the stages (one loop: skip what is done,
progress, timings), xlir.stages / stages_xqg / stages_swap hold their bodies.

Stage kinds and targets (the progress line and study.json count them):

    retrieve       bm25/<task>, <system>/<task>       a run and its metrics
    train          <system>                           a model (nothing for frozen), a swap's
                                                      language adapters; an lr_grid method's
                                                      reads its variants' select_on runs
    fuse           hybrid-<system>/<task>             BM25 + a dense run (RRF or interpolation)
    qgen-train     generator                          the xQG generator
    qgen-generate  queries                            generated questions for every xQG pool
    augment        <name>/a<alpha>/<task>             fused indexes; <name>: a system, a method
                                                      label (every seed) or `best`
    xqg-select     selection                          xqg/selection.json: the dev choices
"""

from __future__ import annotations

from dataclasses import dataclass

from xlir.study_config import MethodSpec, StudyConfig, TaskSpec, lr_variants, train_config


@dataclass(frozen=True)
class Stage:
    """One node of the study's graph, plain data: what it makes and which stages it reads."""
    kind: str
    system: str = ""
    task: str = ""
    deps: tuple[str, ...] = ()
    alpha: float | None = None  # augment: the fusion weight

    @property
    def target(self) -> str:
        if self.kind == "augment":
            return f"{self.system}/a{self.alpha:g}/{self.task}"
        return f"{self.system}/{self.task}" if self.task else self.system

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.target}"


class Plan:
    """A study config's systems and stages (no study folder needed)."""

    def __init__(self, config: StudyConfig):
        self.config = config
        # Seed-major order: a study killed or stopped after its first round of seeds already
        # holds every method at that seed (a complete one-seed study), never full alone.
        # An lr_grid method's variants come just before it (they decide its learning rate);
        # grids: its label -> rate -> the variant system (at its first seed) that tries it.
        self.methods: list[MethodSpec] = []
        self.grids: dict[str, dict[float, str]] = {}
        for m in config.methods:
            variants = lr_variants(m, config.seeds, config.select_on)
            if variants:
                self.grids[m.label] = {v.train["lr"]: f"{v.label}-s{v.seeds[0]}" for v in variants}
            self.methods += [*variants, m]
        self.system_specs: dict[str, tuple[MethodSpec, int]] = {
            f"{m.label}-s{s}": (m, s) for s in config.seeds for m in self.methods
            if m.seeds is None or s in m.seeds}

    # ---- systems and tasks -------------------------------------------------------------------
    def systems(self) -> list[str]:
        return list(self.system_specs)

    def test_tasks(self) -> list[TaskSpec]:
        """The tasks of the answer (role test), in config order."""
        return [t for t in self.config.tasks if t.role == "test"]

    def spec(self, label: str) -> TaskSpec:
        return next(t for t in self.config.tasks if t.label == label)

    def tasks_of(self, system: str) -> list[TaskSpec]:
        """The tasks a dense system is evaluated on (methods[].tasks; default: every test task,
        and a task held out for a choice when the system takes part in it)."""
        method, chooses = self.system_specs[system][0], system in self.selection_systems()
        return [t for t in self.config.tasks if (method.tasks is None or t.label in method.tasks)
                and (t.role == "test" or chooses)]

    def twin(self, system: str) -> str | None:
        """The madx system (no swap) whose task adapter the swap system `system` uses: same
        options and train settings, same seed (so the pair differs in the swap alone)."""
        method, seed = self.system_specs[system]
        if not method.swap:
            return None
        for name, (other, other_seed) in self.system_specs.items():
            if (other.name == "madx" and not other.swap and other_seed == seed
                    and other.options == method.options and other.train == method.train
                    and other.lr_grid is None):  # the swap's learning rate is its twin's
                return name
        return None

    def embeddings_owner(self, system: str) -> str:
        """The system whose embedding cache `system` uses: `frozen` is the same model at every
        seed, so its seeds share the first seed's (encoded once)."""
        method, _ = self.system_specs[system]
        return f"{method.label}-s{self.config.seeds[0]}" if method.name == "frozen" else system

    # ---- what each system is ------------------------------------------------------------------
    def system_records(self, stage: Stage, bases: list[str] = ()) -> dict[str, dict]:
        """name -> what it is, for the systems `stage` makes (systems/<name>/system.json, read
        by the report: it never parses a name): kind (dense, bm25, hybrid, xqg), the tuning
        method, label, seed, family and learning rate it comes from, the system it is built on
        (hybrid, xqg), fusion and alpha. bases: the systems an augment stage augments now."""
        if stage.system == "bm25":
            return {"bm25": {"name": "bm25", "kind": "bm25"}}
        if stage.kind in ("train", "retrieve"):
            return {stage.system: self.dense_record(stage.system)}
        if stage.kind == "fuse":
            base = stage.system.removeprefix("hybrid-")
            return {stage.system: {**self.dense_record(base), "name": stage.system,
                                   "kind": "hybrid", "base": base, "fusion": self.config.hybrid,
                                   **self._hybrid_weight()}}
        if stage.kind == "augment":
            return {f"xqg-{b}-a{stage.alpha:g}": {
                **self.dense_record(b), "name": f"xqg-{b}-a{stage.alpha:g}", "kind": "xqg",
                "base": b, "alpha": stage.alpha, "fusion": self.config.xqg.fusion} for b in bases}
        return {}

    def _hybrid_weight(self) -> dict:
        """interpolate: its weight, or where it is chosen (RRF has none: nothing)."""
        c = self.config
        if c.hybrid != "interpolate":
            return {}
        return ({"weight": c.hybrid_weight} if c.hybrid_weight is not None
                else {"weight_chosen_on": c.select_on})

    def dense_record(self, system: str) -> dict:
        method, seed = self.system_specs[system]
        record = {"name": system, "kind": "dense", "method": method.name, "label": method.label,
                  "seed": seed, "family": method.family}
        if method.swap:
            record["twin"] = self.twin(system)
        if method.lr_grid:
            record |= {"lr_grid": method.lr_grid, "lr_chosen_on": self.config.select_on,
                       **self.lr_chosen(method)}
        elif method.name != "frozen":
            record["lr"] = train_config(self.config, method, seed).lr
        return record

    def lr_chosen(self, method: MethodSpec) -> dict:
        """An lr_grid method's chosen rate and each variant's score ({} until its variants are
        evaluated on select_on; xlir.study.Study reads them)."""
        return {}

    # ---- xQG ---------------------------------------------------------------------------------
    def resolve(self, names: list[str]) -> list[str]:
        """System names (`lora-s13`) and method labels (`lora`: every seed) -> systems."""
        out: list[str] = []
        for name in names:
            out += [name] if name in self.system_specs else [
                s for s, (m, _) in self.system_specs.items() if m.label == name]
        return list(dict.fromkeys(out))

    def best_candidates(self) -> list[str]:
        """xqg.candidates, resolved; default every trained system."""
        x = self.config.xqg
        if x.candidates is not None:
            return self.resolve(x.candidates)
        return [s for s, (m, _) in self.system_specs.items() if m.name != "frozen" and (
            m.tasks is None or x.task in m.tasks)] or self.systems()  # not lr_grid variants

    def selection_systems(self) -> list[str]:
        """The systems xqg.select_on is evaluated for: xqg.systems other than `best`, and the
        candidates `best` is chosen among."""
        x = self.config.xqg
        if not (x.enabled and x.select_on):
            return []
        out = self.resolve([n for n in x.systems if n != "best"])
        if "best" in x.systems:
            out += self.best_candidates()
        return list(dict.fromkeys(out))

    def xqg_tasks(self) -> list[str]:
        """The xQG task and the task its choices are made on (xqg.select_on), if any."""
        x = self.config.xqg
        return [x.task] + ([x.select_on] if x.select_on else [])

    def augmented(self, name: str) -> list[str]:
        """The systems an xqg.systems entry may name: `best` any candidate, else itself."""
        return self.best_candidates() if name == "best" else self.resolve([name])

    # ---- stages ------------------------------------------------------------------------------
    def run_readers(self) -> dict[str, list[str]]:
        """retrieve stage key -> the targets of the fuse stages that read its run file (a
        study grown from results of record, which keep no runs, makes a run again for them)."""
        if "_readers" not in self.__dict__:
            self._readers: dict[str, list[str]] = {}
            for stage in self.stages():
                for dep in stage.deps if stage.kind == "fuse" else ():
                    self._readers.setdefault(dep, []).append(stage.target)
        return self._readers

    def stages(self) -> list[Stage]:
        """The study as a graph, in the serial order: BM25, then per system (seed-major) its
        training, retrievals and hybrids, then xQG (its `best` system is chosen on the dense
        retrievals of its candidates). xlir.study_dask schedules them by their deps."""
        c, out = self.config, []
        if "bm25" in c.baselines or "hybrid" in c.baselines:
            out += [Stage("retrieve", "bm25", t.label) for t in self.test_tasks()]
        for s in self.systems():
            twin = self.twin(s)  # a MAD-X swap system reads its twin's task adapter
            # an lr_grid method trains at the rate its variants scored best with on select_on
            chooses = tuple(f"retrieve:{v}/{c.select_on}"
                            for v in self.grids.get(self.system_specs[s][0].label, {}).values())
            out.append(Stage("train", s, deps=((f"train:{twin}",) if twin else ()) + chooses))
            shared = self.embeddings_owner(s)  # never encoded twice at once
            for t in self.tasks_of(s):
                deps = (f"train:{s}",) + ((f"retrieve:{shared}/{t.label}",) if shared != s else ())
                out.append(Stage("retrieve", s, t.label, deps))
            if "hybrid" in c.baselines:
                # an interpolation weight chosen on select_on reads both runs there too
                held = (c.select_on,) if c.hybrid == "interpolate" and c.hybrid_weight is None else ()
                out += [Stage("fuse", f"hybrid-{s}", t.label, tuple(dict.fromkeys(
                              (f"retrieve:{s}/{t.label}", f"retrieve:bm25/{t.label}")
                              + tuple(f"retrieve:{name}/{h}" for h in held for name in (s, "bm25")))))
                        for t in self.tasks_of(s) if t.role == "test"]
        if c.xqg.enabled:
            out += self._xqg_stages({stage.key for stage in out})
        return out

    def _xqg_stages(self, known: set[str]) -> list[Stage]:
        x = self.config.xqg
        out = [Stage("qgen-train", "generator"),
               Stage("qgen-generate", "queries", deps=("qgen-train:generator",))]
        augments = []
        for name in x.systems:
            # `best` is chosen on the candidates' runs on the select task
            reads = [f"retrieve:{s}/{t}" for s in self.augmented(name) for t in self.xqg_tasks()]
            deps = ("qgen-generate:queries",) + tuple(k for k in reads if k in known)
            for alpha in x.alphas:
                augments += [Stage("augment", name, t, deps, alpha) for t in self.xqg_tasks()]
        out += augments
        if x.select_on:
            out.append(Stage("xqg-select", "selection", deps=tuple(
                a.key for a in augments if a.task == x.select_on)))
        return out
