"""The time a study has left, for its progress line: each stage kind at its mean cost so far in
this run (a kind not yet seen at the mean of all stages run). Only stages whose outputs are not
on disk count (the study says which: `Study.done`): a study grown by a system whose stages come
early in the plan (the record grown by madx-swap) has every later stage done, and counting
those at the mean cost of a 58-minute training stage said ~80 hours left when none were."""

from __future__ import annotations


def time_left(costs: dict[str, list[float]], pending: list[str]) -> float:
    """Seconds left for the stages of kinds `pending` (one entry per stage not yet done), from
    `costs` (kind -> seconds of each stage of that kind run so far)."""
    spent = [c for kind in costs.values() for c in kind]
    if not spent:
        return 0.0
    mean = {k: sum(v) / len(v) for k, v in costs.items()}
    default = sum(spent) / len(spent)
    return sum(mean.get(kind, default) for kind in pending)
