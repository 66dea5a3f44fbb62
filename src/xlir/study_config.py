"""The study's configuration: tasks, tuning methods and seeds as plain data (YAML / JSON).

`StudyConfig` and its parts (`TaskSpec`, `MethodSpec`, `XQGSpec`) validate themselves;
`load_study_config` reads a preset or a YAML file with `key=value` overrides; `changes` says
why a study folder run under one config cannot be resumed under another (a study may grow:
methods and seeds added later run as new stages, the rest must stay as it was).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xlir import lr_grid, presets
from xlir.config import from_dict, load_config, merge, to_dict
from xlir.data.languages import GROUPINGS
from xlir.data.readers import safe_name
from xlir.errors import ConfigError, InputError

DEFAULT_CONFIG = presets.path("quick")


@dataclass
class TaskSpec:
    name: str
    label: str | None = None  # how the study names it (default: name); lets a task appear twice
    split: str = "test"
    languages: list[str] | None = None
    max_queries_per_language: int | None = None
    distractors: int | None = None
    # False: passages are their text alone for every system, as BM25 reads them and as the
    # published AfriQA baselines were run; True: dense encoders read "{title} {text}".
    titles: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    # "test": part of the answer, every system is evaluated on it. "select": held out for a
    # choice (xqg.select_on: the xQG base system and alpha): only the systems that choice
    # needs are evaluated on it, and the report's tables, drift and fertility leave it out.
    role: Literal["test", "select"] = "test"

    def __post_init__(self):
        # A BEIR folder given by path is labelled by its folder name: the label names folders
        # under the study, and a path there would write outside it.
        self.label = _folder_name(self.label or _default_label(self.name), "tasks", "label")
        for key in ("max_queries_per_language", "distractors"):
            if (getattr(self, key) or 0) < 0:
                raise ConfigError(f"tasks.{self.label}.{key} must be >= 0")


def _default_label(name: str) -> str:
    """`bitext:SRC.txt,TGT.txt,hau_Latn,eng_Latn` -> `bitext-hau_Latn-eng_Latn`; a path -> its
    folder name; a task name -> itself."""
    if name.startswith("bitext:"):
        parts = name[len("bitext:"):].split(",")
        if len(parts) == 4:
            return f"bitext-{parts[2].strip()}-{parts[3].strip()}"
    return Path(name.rstrip("/\\")).name


@dataclass
class MethodSpec:
    name: str                 # a tuning method of xlir.tuning ("frozen", "lora", ...)
    label: str | None = None  # how systems are named (default: name); lets a method appear twice
    options: dict[str, Any] = field(default_factory=dict)  # the method's own config
    train: dict[str, Any] = field(default_factory=dict)    # TrainConfig overrides for it
    # The study's seeds this method runs at (None: all of them); e.g. the first seed alone for
    # a learning-rate variant or a method the budget allows once.
    seeds: list[int] | None = None
    # The family of comparisons with full fine-tuning it belongs to: Holm corrects each family
    # on its own, so an exploratory method does not dilute the headline answer ("core").
    family: str = "core"
    # MAD-X only: encode each text through its own language's adapter (queries by their
    # language, passages by theirs) instead of the source language's; the target adapters
    # are trained by MLM on xlir.data.monolingual text. The task adapter is that of the madx
    # method of the same options and train settings at the same seed (its "twin", which
    # keeps the source adapter: madx without the swap), so the two differ in the swap alone.
    swap: bool = False
    # The task labels it is evaluated on (None: every task), e.g. where the swap has target
    # languages with monolingual text.
    tasks: list[str] | None = None
    # Learning rates to choose among on the study's `select_on` task (held out from training):
    # each is trained at the method's first seed as a variant `LABEL-lr<rate>` (family "lr",
    # evaluated on select_on alone), the one with the best macro of its primary measure (a
    # tie: the earlier in this list) is the method's learning rate at every seed, recorded in
    # each system.json. None: `train.lr` (or the study's) fixed beforehand.
    lr_grid: list[float] | None = None

    def __post_init__(self):
        self.label = _folder_name(self.label or self.name, "methods", "label")
        self.family = _folder_name(self.family, "methods", "family")
        if self.swap and self.name != "madx":
            raise ConfigError(f"methods.{self.label}.swap: only madx has language adapters to "
                              f"swap, not {self.name}")
        if self.lr_grid is not None:
            where = f"methods.{self.label}.lr_grid"
            grid = self.lr_grid
            if not all(isinstance(x, (int, float)) and x > 0 for x in grid) or len(grid) < 2 \
                    or len({lr_grid.lr_tag(x) for x in grid}) != len(grid):
                raise ConfigError(f"{where}: {grid} must be two or more distinct learning rates > 0")
            self.lr_grid = [float(x) for x in grid]
            if self.name == "frozen":
                raise ConfigError(f"{where}: frozen trains nothing")
            if self.swap:
                raise ConfigError(f"{where}: a swap uses its twin madx method's task adapter "
                                  f"and trains none of its own; give the twin a fixed train.lr")
            if "lr" in self.train:
                raise ConfigError(f"{where}: the rate is chosen from the grid; drop train.lr "
                                  f"({self.train['lr']}) or the grid")


def lr_variants(method: MethodSpec, seeds: list[int], select_on: str | None) -> list[MethodSpec]:
    """An lr_grid method's variants (xlir.lr_grid); [] for a method without a grid."""
    return [from_dict(MethodSpec, v) for v in lr_grid.variants(to_dict(method), seeds, select_on)]


def _folder_name(name: str, section: str, key: str) -> str:
    """`name` if it can name a folder of the study (no separators, no '..')."""
    try:
        return safe_name(name)
    except InputError:
        raise ConfigError(f"{section}: {key} '{name}' cannot name a folder (it could leave the "
                          f"study folder); give it a plain `{key}`") from None


@dataclass
class XQGSpec:
    enabled: bool = False
    task: str = "afriqa"
    systems: list[str] = field(default_factory=lambda: ["best"])
    languages: list[str] = field(default_factory=list)
    alphas: list[float] = field(default_factory=lambda: [0.01])
    fusion: Literal["sum", "mean"] = "sum"
    renormalize: bool = True
    generator: str | None = None
    # A task held out for choosing: the "best" base system and each base system's alpha are
    # chosen on its queries (xqg/selection.json), never on the xQG task. Its pool gets
    # generated questions too.
    select_on: str | None = None
    # The systems `best` is chosen among: system names (`lora-s13`) or method labels (every
    # seed); None: every trained system. Each is evaluated on select_on.
    candidates: list[str] | None = None
    train: dict[str, Any] = field(default_factory=dict)
    generate: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for a in self.alphas:
            if not 0.0 <= a <= 1.0:
                raise ConfigError(f"xqg.alphas: {a} is outside [0, 1]")


@dataclass
class StudyConfig:
    name: str = "quick"
    out: str = "study/quick"
    encoder: str | None = None
    seeds: list[int] = field(default_factory=lambda: [13])
    methods: list[MethodSpec] = field(default_factory=lambda: [MethodSpec("frozen")])
    train: dict[str, Any] = field(default_factory=dict)
    baselines: list[Literal["bm25", "hybrid"]] = field(default_factory=lambda: ["bm25", "hybrid"])
    hybrid: Literal["rrf", "interpolate"] = "rrf"
    # interpolate only: the dense run's share, fixed beforehand; null: chosen for each dense
    # system on `select_on` (xlir.stages.HYBRID_WEIGHTS, the best macro of its primary measure)
    # and used on every task. RRF has no weight.
    hybrid_weight: float | None = None
    tasks: list[TaskSpec] = field(default_factory=list)
    xqg: XQGSpec = field(default_factory=XQGSpec)
    k: int = 100
    batch_size: int = 32
    max_seq_length: int = 256
    # Encoding arithmetic of every dense system (xlir.encoder backends; int8 is not offered:
    # it fails the quality bar). Training has its own `train.precision`.
    precision: Literal["bf16", "fp32"] = "bf16"
    seed: int = 0
    # How the report groups languages for the answer (xlir.data.languages.GROUPINGS), each
    # grouping answered on its own.
    groupings: list[str] = field(default_factory=lambda: ["pretraining"])
    # The task (label), held out from training, on which a method's learning-rate variants
    # (methods of the same tuning method) are compared and one chosen (xlir.selection); its
    # scores are the in-domain learning measure, never a test.
    select_on: str | None = None
    # Dask resources each stage kind needs (`--executor dask`; xlir.study_dask), e.g.
    # {train: {GPU: 1}}; the serial study ignores them.
    resources: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self):
        if not self.tasks:
            raise ConfigError("tasks: a study needs at least one task")
        if not self.methods:
            raise ConfigError("methods: a study needs at least one method")
        if self.k < 1 or self.batch_size < 1 or self.max_seq_length < 8:
            raise ConfigError("k, batch_size must be >= 1 and max_seq_length >= 8")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: {self.seeds} must be a non-empty list of distinct seeds")
        labels = [m.label for m in self.methods]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"methods: duplicate labels {labels}; give each a `label`")
        for m in self.methods:
            if m.lr_grid and self.select_on is None:
                raise ConfigError(f"methods.{m.label}.lr_grid: the rate is chosen on select_on, "
                                  f"the held-out task; name one (e.g. an English dev split)")
            taken = [v.label for v in lr_variants(m, self.seeds, self.select_on) if v.label in labels]
            if taken:
                raise ConfigError(f"methods.{m.label}.lr_grid: its variants' labels {taken} are "
                                  f"already methods of the study; relabel one")
        names = [t.label for t in self.tasks]
        if len(set(names)) != len(names):
            raise ConfigError(f"tasks: duplicate task names {names}")
        by_name = {t.name: t.label for t in self.tasks}
        self.xqg.task = self.xqg.task if self.xqg.task in names else by_name.get(self.xqg.task, self.xqg.task)
        if self.xqg.enabled and self.xqg.task not in names:
            raise ConfigError(f"xqg.task: '{self.xqg.task}' is not one of the tasks {names}")
        if self.xqg.enabled and self.xqg.select_on is not None and (
                self.xqg.select_on not in names or self.xqg.select_on == self.xqg.task):
            raise ConfigError(f"xqg.select_on: '{self.xqg.select_on}' must be one of the tasks "
                              f"{names} other than xqg.task ('{self.xqg.task}')")
        for t in self.tasks:
            if t.role == "select" and not (self.xqg.enabled and t.label == self.xqg.select_on):
                raise ConfigError(f"tasks.{t.label}.role: 'select' is for the task xqg.select_on "
                                  f"names (here {self.xqg.select_on!r}, xQG "
                                  f"{'on' if self.xqg.enabled else 'off'}); nothing else "
                                  f"chooses on it")
            if t.role == "select" and t.label in (self.select_on, self.xqg.task):
                raise ConfigError(f"tasks.{t.label}.role: 'select' cannot be select_on or "
                                  f"xqg.task, which every system is evaluated on")
        systems = {label for m in self.methods for label in
                   [m.label] + [f"{m.label}-s{s}" for s in (m.seeds or self.seeds)]}
        for key, given in (("systems", self.xqg.systems), ("candidates", self.xqg.candidates or [])):
            unknown = [n for n in given if n not in systems and not (key == "systems" and n == "best")]
            if self.xqg.enabled and unknown:
                raise ConfigError(f"xqg.{key}: {unknown} name no method label or system "
                                  f"(LABEL-sSEED) of this study")
        if self.xqg.candidates is not None and not self.xqg.candidates:
            raise ConfigError("xqg.candidates: name at least one system or method (or leave it "
                              "out: every trained system)")
        for m in self.methods:
            if m.seeds is not None and (not m.seeds or set(m.seeds) - set(self.seeds)):
                raise ConfigError(f"methods.{m.label}.seeds: {m.seeds} must be a non-empty "
                                  f"subset of the study's seeds {self.seeds}")
            if m.tasks is not None and (not m.tasks or set(m.tasks) - set(names)):
                raise ConfigError(f"methods.{m.label}.tasks: {m.tasks} must be a non-empty "
                                  f"subset of the task labels {names}")
        if self.select_on is not None and self.select_on not in names:
            raise ConfigError(f"select_on: '{self.select_on}' is not one of the tasks {names}")
        if self.hybrid == "rrf" and self.hybrid_weight is not None:
            raise ConfigError("hybrid_weight: RRF has no weight (it is for hybrid: interpolate)")
        if self.hybrid_weight is not None and not 0.0 <= self.hybrid_weight <= 1.0:
            raise ConfigError(f"hybrid_weight: {self.hybrid_weight} is not in [0, 1]")
        if self.hybrid == "interpolate" and "hybrid" in self.baselines and self.hybrid_weight is None:
            if self.select_on is None:
                raise ConfigError("hybrid_weight: interpolate needs a weight fixed beforehand or "
                                  "select_on, the held-out task it is chosen on")
            for m in self.methods:
                if m.tasks is not None and self.select_on not in m.tasks:
                    raise ConfigError(f"methods.{m.label}.tasks: must hold select_on "
                                      f"('{self.select_on}'), where its hybrid weight is chosen")
        splits = {t.label: t.split for t in self.tasks}
        for key, label in (("select_on", self.select_on),
                           ("xqg.select_on", self.xqg.select_on if self.xqg.enabled else None)):
            if splits.get(label) == "test":  # nothing is chosen on test data
                raise ConfigError(f"{key}: '{label}' is a test split; choices are made on "
                                  f"held-out data (tasks.{label}.split: dev, or a part of train)")
        x = self.xqg
        chooses = [w for w, yes in (("the `best` base system", "best" in x.systems),
                                    (f"one of {len(x.alphas)} alphas", len(x.alphas) > 1)) if yes]
        if x.enabled and chooses and x.select_on is None and splits.get(x.task) == "test":
            raise ConfigError(f"xqg.select_on: xQG chooses {' and '.join(chooses)}, which "
                              f"without select_on is chosen on the xQG task '{x.task}', a test "
                              f"split; name a held-out task (e.g. its dev split, role: select)")

        for name in self.groupings:
            if name not in GROUPINGS:
                raise ConfigError(f"groupings: unknown language grouping '{name}'; choices: "
                                  f"{sorted(GROUPINGS)}")
        if not self.groupings:
            raise ConfigError(f"groupings: name at least one of {sorted(GROUPINGS)}")
        for kind, need in self.resources.items():
            if kind not in STAGE_KINDS:
                raise ConfigError(f"resources.{kind}: not a stage kind; choices: {list(STAGE_KINDS)}")
            if not isinstance(need, dict) or not all(
                    isinstance(v, (int, float)) and v > 0 for v in need.values()):
                raise ConfigError(f"resources.{kind}: expected {{resource: amount > 0}}, got {need!r}")


# xlir.study_plan.Stage.kind; "xqg" in `resources` stands for every xQG kind
XQG_KINDS = ("qgen-train", "qgen-generate", "augment", "xqg-select")
STAGE_KINDS = ("train", "retrieve", "fuse", *XQG_KINDS, "xqg")


def train_config(config: StudyConfig, method: MethodSpec, seed: int, lr: float | None = None):
    """The TrainConfig of one dense system: the study's `train`, the method's own `train`
    overrides, its method options, its seed and the study's encoder; `lr`: the rate chosen
    for an lr_grid method."""
    from xlir.train import TrainConfig  # torch and the trainer: only once a stage needs it

    data = merge(merge(config.train, method.train), {"method": method.name, "seed": seed})
    if lr is not None:
        data["lr"] = lr
    if method.options:
        data = merge(data, {"method_options": method.options})
    if config.encoder:
        data["model"] = config.encoder
    return from_dict(TrainConfig, data)


def check_stage_configs(config: StudyConfig) -> None:
    """Build every stage's own config (training per method, the generator's training and
    generation) so that a typo in methods[].train/options or xqg.train/generate fails before
    the first stage, naming its key, not after hours of the stages before it."""
    from xlir.qgen import config_from  # torch: only when a study is about to run
    from xlir.qgen_train import QGenTrainConfig  # torch

    def build(where: str, make):
        try:
            return make()
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    for m in config.methods:
        build(f"methods.{m.label}", lambda: train_config(config, m, (m.seeds or config.seeds)[0]))
    x = config.xqg
    if x.enabled:
        base = {"base": x.generator} if x.generator else {}
        build("xqg.train", lambda: from_dict(QGenTrainConfig, {**x.train, **base}))
        build("xqg.generate", lambda: config_from(merge(x.generate, {"languages": list(x.languages)})))


def load_study_config(path: str | Path | None = None, overrides: list[str] = ()) -> StudyConfig:
    return load_config(StudyConfig, path or DEFAULT_CONFIG, list(overrides))


# What a study folder may change between runs without touching any stage output: the
# languages' grouping and the task learning rates are chosen on are read by the report alone.
REPORT_ONLY = ("groupings", "select_on")
EXECUTION_ONLY = ("resources",)  # where stages run, not what they make


def changes(resolved: dict, config: StudyConfig) -> list[str]:
    """The options of `config` that differ from the stored `resolved` config of a study folder
    in a way resuming cannot absorb ([] when it can). Methods and seeds may be added: a new
    method label or seeds after the stored ones are new stages. A method already run must
    keep its every option, the stored seeds their order (the first seed's frozen encoding is
    shared by the others), and everything else its value. xQG may be switched on in a study
    run without it, with a task of role 'select' appended for its choices."""
    old = _with_defaults(resolved)
    new = json.loads(json.dumps(to_dict(config)))
    grows = {"methods", "seeds", "tasks", "xqg", *REPORT_ONLY, *EXECUTION_ONLY}
    changed = sorted(k for k in (set(old) | set(new)) - grows if old.get(k) != new.get(k))
    # xQG may be switched on in a study that ran without it (its stages come last and read
    # the others'); once on, it stays as it was.
    if old.get("xqg", {}).get("enabled") and old.get("xqg") != new.get("xqg"):
        changed.append("xqg")
    # Tasks held out for a choice may be added after the stored ones; the rest stay.
    stored, tasks = old.get("tasks", []), new.get("tasks", [])
    if tasks[:len(stored)] != stored or any(t.get("role") != "select" for t in tasks[len(stored):]):
        changed.append("tasks (the stored ones must stay, in order; only tasks of role "
                       "'select' may be added)")
    if new.get("seeds", [])[:len(old.get("seeds", []))] != old.get("seeds"):
        changed.append("seeds (the stored ones must stay first, in order)")
    now = {m["label"]: m for m in new.get("methods", [])}
    for m in old.get("methods", []):
        label = m.get("label") or m["name"]
        if label not in now:
            changed.append(f"methods.{label} (removed)")
        elif now[label] != m:
            changed.append(f"methods.{label}")
    return changed


# Options whose default changed when they were added: a folder written before them was made
# with the old behaviour, which is what it is compared under (so it is refused, not mixed).
LEGACY_VALUES = {"precision": "fp32"}


def _with_defaults(resolved: dict) -> dict:
    """A stored resolved config read with today's StudyConfig: options added since it was
    written take their defaults (or, for LEGACY_VALUES, the behaviour it was made with), so a
    new option does not make an old folder 'changed'."""
    resolved = {**{k: v for k, v in LEGACY_VALUES.items() if k not in resolved}, **resolved}
    try:
        return json.loads(json.dumps(to_dict(from_dict(StudyConfig, resolved))))
    except ConfigError:
        return resolved  # an option was removed or renamed: compared as it is, so refused


