"""A study folder as the report reads it, and which system is which.

`StudyFiles` reads config.resolved.json, environment.json, study.json, fertility.json,
tasks/*.json, every systems/*/*/metrics.json, every model manifest and the xQG quality file,
once. `System` says what a system folder is (dense, hybrid, xqg, bm25), the method label and
tuning method it was built from and its seed, as the study recorded them in
systems/<name>/system.json (xlir.study_plan); for a folder written before those files, dense
and hybrid systems from config.resolved.json's methods (with their labels) and seeds, an xQG
system from its metrics.json's `base_system` and `alpha`. A name is never parsed: a folder
that none of these explains is of kind "other", compared with nothing.

It computes nothing and renders nothing (report_decision, report_sections do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlir import lr_grid, storage
from xlir.data import languages
from xlir.data.languages import grouping
from xlir.errors import ConfigError, InputError, XlirError
from xlir.per_query import read_per_query
from xlir.robustness import by_language
from xlir.stats import LangScores

KIND_ORDER = ("dense", "bm25", "hybrid", "xqg", "other")


@dataclass(frozen=True)
class System:
    name: str
    kind: str                 # one of KIND_ORDER
    label: str | None = None  # methods[].label of the config it was built from
    method: str | None = None  # methods[].name: the tuning method ("frozen", "full", "lora", ...)
    seed: int | None = None
    alpha: float | None = None  # xQG fusion weight
    base: str | None = None     # xQG: the dense system whose index was augmented

    @property
    def key(self) -> str:
        """What `paired_reference` matches a reference against: the label for dense and
        xQG systems (tested against the dense frozen / full of their seed), "hybrid-<label>"
        for hybrids (against the hybrid of frozen / full), the name for bm25."""
        if self.kind == "hybrid":
            return f"hybrid-{self.label}"
        return self.label if self.label is not None else self.name


def held_out_tasks(resolved: dict) -> set[str]:
    """The labels of a resolved (JSON) study config's tasks held out for a choice
    (tasks[].role "select", study_config.TaskSpec): no table, figure or drift of the answer
    reads them."""
    return {t.get("label") or t.get("name") for t in resolved.get("tasks", [])
            if isinstance(t, dict) and t.get("role") == "select"}


class StudyFiles:
    """Everything the report needs, read once from a study directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / "config.resolved.json").exists():
            raise XlirError(f"{self.root}: not a study directory (no config.resolved.json); "
                            "run `xlir study` first")
        self.config = _read(self.root / "config.resolved.json", keys=("methods", "seeds"))
        self.environment = _read(self.root / "environment.json", {})
        self.study = _read(self.root / "study.json", {})
        self.fertility = _read(self.root / "fertility.json", {})
        # Tasks held out for a choice (e.g. xqg.select_on): their metrics are read into
        # held_out, never into the answer's tables.
        held = held_out_tasks(self.config)
        self.tasks = {p.stem: _read(p) for p in sorted((self.root / "tasks").glob("*.json"))
                      if p.stem not in held}
        self.metrics: dict[str, dict[str, dict]] = {}  # task -> system -> metrics
        self.paths: dict[tuple[str, str], Path] = {}   # (task, system) -> its metrics.json
        self.held_out: dict[str, dict[str, dict]] = {}
        tables: dict[Path, dict] = {}
        for p in sorted(self.root.glob("systems/*/*/metrics.json")):
            m = _read(p, keys=("task", "system"))
            read_per_query(self.root, m, tables)  # results of record: one table per task
            (self.held_out if m["task"] in held else self.metrics).setdefault(
                m["task"], {})[m["system"]] = m
            self.paths[m["task"], m["system"]] = p
        self.models = {p.parent.parent.name: _read(p)
                       for p in sorted(self.root.glob("systems/*/model/xlir-model.json"))}
        # system -> language -> the MLM record of a MAD-X swap system's language adapter
        self.lang_adapters: dict[str, dict[str, dict]] = {}
        for p in sorted(self.root.glob("systems/*/lang_adapters/*/mlm.json")):
            self.lang_adapters.setdefault(p.parts[-4], {})[p.parts[-2]] = _read(p)
        self.xqg_quality = _read(self.root / "xqg" / "quality.json", {})
        self.xqg_selection = _read(self.root / "xqg" / "selection.json", {})  # xlir.stages_xqg
        self.xqg_generator = _read(self.root / "xqg" / "generator" / "qgen-manifest.json", {})
        self.xqg_generation = _read(self.root / "xqg" / "queries.done.json", {})
        self.drift = _read(self.root / "drift.json", {})  # xlir.drift, when computed
        if not self.metrics:
            raise XlirError(f"{self.root}: no metrics.json found under systems/: nothing to report")
        # with each lr_grid method's variants, as the study ran them (study_config)
        expanded = {**self.config, "methods": lr_grid.expanded(self.config)}
        self.methods, self.seeds = _grid(expanded, self.root / "config.resolved.json")
        # methods[].seeds (None: all) and .family (study_config.MethodSpec), by label
        self.specs = specs = {m.get("label") or m["name"]: m for m in expanded["methods"]}
        self.method_seeds = {label: [s for s in self.seeds if specs[label].get("seeds") is None
                                     or s in specs[label]["seeds"]] for label, _ in self.methods}
        self.families = {label: specs[label].get("family") or "core" for label, _ in self.methods}
        self.groupings = _groupings(self.config, self.root)
        self.systems = self._index()

    # ---- which system is which ---------------------------------------------------------------
    def _index(self) -> dict[str, System]:
        out, self.records = {}, {}
        for p in sorted(self.root.glob("systems/*/system.json")):
            r = self.records[p.parent.name] = _read(p, keys=("name", "kind"))
            if r["kind"] not in KIND_ORDER or r["name"] != p.parent.name:
                raise InputError(f"not a system record (kind one of {KIND_ORDER}, name "
                                 f"{p.parent.name!r})", p)
            out[r["name"]] = System(r["name"], r["kind"], r.get("label"), r.get("method"),
                                    r.get("seed"), r.get("alpha"), r.get("base"))
        for label, name in self.methods:
            for seed in self.method_seeds[label]:
                dense = f"{label}-s{seed}"
                out.setdefault(dense, System(dense, "dense", label, name, seed))
                out.setdefault(f"hybrid-{dense}", System(f"hybrid-{dense}", "hybrid", label, name, seed))
        out.setdefault("bm25", System("bm25", "bm25"))
        for systems in self.metrics.values():
            for name, m in systems.items():
                if name in out:
                    continue
                base = out.get(m.get("base_system", ""))
                if base is not None and "alpha" in m:
                    out[name] = System(name, "xqg", base.label, base.method, base.seed,
                                       float(m["alpha"]), base.name)
                else:  # a folder nothing explains: never guessed from its name
                    out[name] = System(name, "other")
        return out

    def label_of(self, method: str) -> str | None:
        """The label of the config's method of tuning method `method` ("frozen", "full"): the
        one labelled as the method itself when several are, else the first in config order."""
        labels = [label for label, name in self.methods if name == method]
        return method if method in labels else (labels[0] if labels else None)

    def seed_systems(self, label: str, task: str) -> list[str]:
        """The dense systems of method `label` that have metrics for `task`, in seed order."""
        return [f"{label}-s{s}" for s in self.method_seeds.get(label, self.seeds)
                if f"{label}-s{s}" in self.metrics[task]]

    def dense_systems(self) -> list[str]:
        return [f"{label}-s{s}" for label, _ in self.methods for s in self.method_seeds[label]]

    def family_methods(self, family: str) -> list[str]:
        """The labels of one family of comparisons (methods[].family), in config order."""
        return [label for label, _ in self.methods if self.families[label] == family]

    def lr(self, label: str) -> float | None:
        """The learning rate method `label` trained with: the rate its lr_grid chose (as its
        systems' system.json record it), else its own `train.lr`, else the study's."""
        spec = self.specs[label]
        if spec.get("lr_grid"):
            chosen = [r["lr"] for r in self.records.values()
                      if r.get("label") == label and r.get("kind") == "dense" and "lr" in r]
            return float(chosen[0]) if chosen else None
        value = (spec.get("train") or {}).get("lr", (self.config.get("train") or {}).get("lr"))
        return float(value) if isinstance(value, (int, float)) else None

    def lr_applied(self, label: str) -> bool:
        """Whether method `label`'s learning rate was chosen on select_on (lr_grid) and applied."""
        return bool(self.specs.get(label, {}).get("lr_grid"))

    def known(self) -> dict[str, tuple[str, int | None]]:
        """(key, seed) of every system, for `paired_reference`."""
        return {name: (s.key, s.seed) for name, s in self.systems.items()}

    def order(self, system: str) -> tuple:
        """Sort key: dense, bm25, hybrid, xqg; then the config's method order, seed, alpha."""
        s = self.systems.get(system, System(system, "other"))
        labels = [label for label, _ in self.methods]
        rank = labels.index(s.label) if s.label in labels else len(labels)
        return (KIND_ORDER.index(s.kind), rank, s.seed or 0, s.alpha or 0.0, system)

    # ---- scores ------------------------------------------------------------------------------
    def sizes(self, task: str) -> str:
        """What a table of `task` was measured on: "N queries (lang n, ...) against P
        documents" with the per-language pools when they differ (from evaluate_run's sizes)."""
        first = next(iter(self.metrics.get(task, {}).values()), {})
        counts: dict[str, int] = {}
        for lang in first.get("query_lang", {}).values():
            counts[lang] = counts.get(lang, 0) + 1
        n = first.get("n_queries") or sum(counts.values())
        text = f"{task}: {n:,} queries"
        if counts:
            text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"
        pools = first.get("pool_sizes", {})
        if first.get("pool_size"):
            text += f" against {first['pool_size']:,} documents"
            if pools and len(set(pools.values())) > 1:
                text += "; each language searches its own pool (" + ", ".join(
                    f"{k} {v:,}" for k, v in sorted(pools.items())) + ")"
        return text + "."

    def pools(self, tasks) -> str:
        """One line for a table over several tasks: "Measured on: T: N queries against P
        documents; ..." (languages and per-language pools: the per-language tables)."""
        parts = []
        for task in dict.fromkeys(tasks):
            first = next(iter(self.metrics.get(task, {}).values()), {})
            n = first.get("n_queries") or len(first.get("query_lang", {}))
            part = f"{task}: {n:,} queries"
            pools = sorted(set(first.get("pool_sizes", {}).values()))
            if len(pools) > 1:
                part += f" against its language's pool ({pools[0]:,}-{pools[-1]:,} documents)"
            elif first.get("pool_size"):
                part += f" against {first['pool_size']:,} documents"
            parts.append(part)
        return ("Measured on: " + "; ".join(parts) + ".") if parts else ""

    def primary(self, task: str) -> str:
        if "primary_measure" in self.tasks.get(task, {}):
            return self.tasks[task]["primary_measure"]
        first = next(iter(self.metrics.get(task, {}).values()), {})
        return first.get("primary", "nDCG@10")

    def scores(self, task: str, system: str, measure: str) -> LangScores:
        m = self.metrics[task][system]
        if measure not in m.get("per_query", {}) or "query_lang" not in m:
            raise InputError(f"no per-query {measure} scores to test", self.paths[task, system])
        return by_language(m["per_query"][measure], m["query_lang"])

    def language_groups(self, task: str, grouping: str) -> dict[str, str]:
        """language -> group under `grouping`, as evaluate_run stored it with the metrics; a
        folder written before groupings were stored is grouped with today's tables."""
        first = next(iter(self.metrics[task].values()))
        stored = first.get("language_groups", {}).get(grouping)
        if stored is not None:
            return stored

        family = first.get("encoder_family") or languages.encoder_family(self.config.get("encoder"))
        return languages.language_groups(first["per_language"], grouping, family)


def macro(metrics: dict, measure: str) -> float:
    """The macro average over languages that evaluate_run stored with the metrics."""
    return metrics.get("macro", {}).get(measure, float("nan"))


def _grid(config: dict, path: Path) -> tuple[list[tuple[str, str]], list[int]]:
    """The resolved config's (label, tuning method) of each method, and its seeds."""
    methods, seeds = config["methods"], config["seeds"]
    if not isinstance(methods, list) or not all(
            isinstance(m, dict) and isinstance(m.get("name"), str) for m in methods):
        raise InputError("methods: expected a list of {name, label, ...}", path)
    if not isinstance(seeds, list) or not all(type(s) is int for s in seeds):
        raise InputError("seeds: expected a list of integers", path)
    return [(m.get("label") or m["name"], m["name"]) for m in methods], seeds


def _groupings(config: dict, root: Path) -> list[str]:
    names = config.get("groupings", ["pretraining"])  # written before groupings were chosen
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{root / 'config.resolved.json'}: groupings: expected a list of names")
    try:
        for name in names:
            grouping(name)
    except ConfigError as e:
        raise ConfigError(f"{root / 'config.resolved.json'}: groupings: {e}") from None
    return list(names)


def _read(path: Path, default: Any = None, keys: tuple[str, ...] = ()) -> Any:
    """A study file: a JSON object (with `keys`), or `default` when the file is absent."""
    if not path.exists():
        if default is not None:
            return default
        raise XlirError(f"{path}: missing")
    data = storage.read_json(path)
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise InputError(f"not a study file (expected a JSON object with {', '.join(keys) or 'fields'})",
                         path)
    return data
