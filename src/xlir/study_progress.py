"""The time a study has left, for its progress line: each stage kind at its mean cost so far in
this run (a kind not yet seen at the mean of all stages run). Stages whose outputs are on disk
cost nothing, whether already ticked or not: a study grown by a system whose stages come early
in the plan (the record grown by madx-swap) has every later stage done, and counting those at
the mean cost of a 58-minute training stage said ~80 hours left when none were."""

from __future__ import annotations


def time_left(study, stages: list[tuple[str, str]]) -> float:
    """Seconds left for the (stage, target) entries of `study.plan()` not yet ticked."""
    spent = [c for costs in study._cost.values() for c in costs]
    if not spent:
        return 0.0
    mean = {k: sum(v) / len(v) for k, v in study._cost.items()}
    default = sum(spent) / len(spent)
    return sum(mean.get(s, default) for s, target in stages if not finished(study, s, target))


def finished(study, stage: str, target: str) -> bool:
    """Whether a plan() entry's outputs are on disk (the tests its stage skips by)."""
    systems = study.root / "systems"
    if stage in ("retrieve", "fuse"):
        return (systems / target / "metrics.json").is_file()
    if stage == "train":
        method, _ = study.system_specs[target]
        if method.name == "frozen":
            return True
        if not (study.model_dir(target) / "xlir-model.json").is_file():
            return False
        if method.swap:  # its languages need its tasks loaded: not loaded for an estimate alone
            from xlir.study_swap import adapters_missing

            loaded = all(t.label in study._tasks for t in study.tasks_of(target))
            return loaded and not adapters_missing(study, target)
        return True
    if stage in ("qgen-train", "qgen-generate"):  # generation done implies training done
        return (study.root / "xqg" / "queries.done.json").is_file()
    if stage == "augment":  # `best` and method labels name their system(s) only once run
        system, alpha, task = target.split("/")  # labels never hold "/": task may be "afriqa"
        alpha = alpha[1:]
        name = system if system in study.system_specs else "*"
        return any(systems.glob(f"xqg-{name}-a{alpha}/{task}/metrics.json"))
    return False
