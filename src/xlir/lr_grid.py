"""A learning rate chosen on held-out dev data and applied (a study method's `lr_grid`).

A method `{name: lora, lr_grid: [1.0e-4, 3.0e-4, 1.0e-3]}` expands to one variant per rate,
`lora-lr1e-4` ... (family "lr", the method's first seed, evaluated on the study's `select_on`
task alone), placed just before the method; every seed of the method then trains at the rate
whose variant scored the best macro of select_on's primary measure (a tie: the earlier rate in
the grid). The expansion works on plain dicts, so the plan (xlir.study_plan) and the report
(xlir.report_files, reading config.resolved.json) expand a config the same way; `choose`
reads the variants' metrics.json files, so a resumed study and every Dask worker choose alike.
"""

from __future__ import annotations

from pathlib import Path

from xlir import storage


def lr_tag(lr: float) -> str:
    """A learning rate as a label part: 2e-05 -> '2e-5', 0.0003 -> '3e-4', 2.5e-5 -> '2.5e-5'."""
    mantissa, exponent = f"{float(lr):e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def variants(method: dict, seeds: list[int], select_on: str | None) -> list[dict]:
    """The variant methods (dicts of study_config.MethodSpec's fields) of one method dict with
    an `lr_grid`; [] without one."""
    label = method.get("label") or method["name"]
    seed = (method.get("seeds") or seeds)[:1]
    return [{"name": method["name"], "label": f"{label}-lr{lr_tag(lr)}",
             "options": dict(method.get("options") or {}),
             "train": {**(method.get("train") or {}), "lr": float(lr)}, "seeds": seed,
             "family": "lr", "tasks": [select_on] if select_on else None}
            for lr in method.get("lr_grid") or []]


def expanded(resolved: dict) -> list[dict]:
    """A resolved config's methods (dicts, as config.resolved.json holds them) with each
    lr_grid method's variants just before it: the order the study runs them in."""
    return [v for m in resolved.get("methods") or [] for v in
            [*(variants(m, resolved.get("seeds") or [], resolved.get("select_on"))
               if isinstance(m, dict) else []), m]]


def choose(metrics: dict[float, Path], grid: list[float]) -> dict:
    """rate -> its variant's metrics.json on select_on -> the chosen rate, the measure and every
    rate's score ({} while one is missing)."""
    if not all(p.is_file() for p in metrics.values()):
        return {}
    read = {lr: storage.read_json(p) for lr, p in metrics.items()}
    scores = {lr: m["macro"][m["primary"]] for lr, m in read.items()}
    best = max(scores, key=lambda lr: (round(scores[lr], 9), -grid.index(lr)))
    return {"lr": best, "lr_measure": read[best]["primary"],
            "lr_scores": {f"{lr:g}": round(v, 6) for lr, v in scores.items()}}
