"""A learning rate chosen on held-out dev and applied (methods[].lr_grid), end to end on the tiny
models: the variants train and are evaluated on select_on alone, every seed of the method trains
at the rate they chose, the first seed's model is the chosen variant's (linked, not trained
twice), and system.json and the report say so. The plan and the choice rule on hand-written
metrics: tests/test_study_plan.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tiny_study import run_study, tiny_setup

from xlir.storage import write_json

GRID = [1e-3, 3e-2]


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory, tiny_st_encoder_dir, tiny_causal_lm_dir):
    tmp = tmp_path_factory.mktemp("lr-grid")
    data, env = tiny_setup(tmp, tiny_st_encoder_dir, tiny_causal_lm_dir)
    data.update(seeds=[1, 2], baselines=["bm25"], select_on="tiny-dev",
                methods=[{"name": "frozen"}, {"name": "lora", "lr_grid": GRID}],
                xqg={"enabled": False})
    data["tasks"][1]["role"] = "test"  # select_on: every system's learning measure
    data["train"]["dev"] = None  # no checkpoint choice: the model at the end of its epoch
    write_json(tmp / "grid.yaml", data)
    proc = run_study(tmp / "grid.yaml", env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "study", env


def _read(path):
    return json.loads(path.read_text())


def test_every_seed_trains_at_the_rate_the_variants_chose_on_select_on(grid_study):
    root, _ = grid_study
    systems = root / "systems"
    variants = {lr: f"lora-lr{tag}-s1" for lr, tag in zip(GRID, ("1e-3", "3e-2"))}
    for system in variants.values():  # evaluated on select_on alone
        assert sorted(p.name for p in (systems / system).iterdir() if p.is_dir()) == [
            "embeddings", "model", "tiny-dev"], system
    scores = {lr: _read(systems / v / "tiny-dev" / "metrics.json")["macro"]["nDCG@10"]
              for lr, v in variants.items()}
    chosen = max(GRID, key=lambda lr: (round(scores[lr], 9), -GRID.index(lr)))
    for seed in (1, 2):
        system = f"lora-s{seed}"
        assert _read(systems / system / "model" / "train_config.json")["lr"] == chosen
        record = _read(systems / system / "system.json")
        assert (record["lr"], record["lr_grid"], record["lr_chosen_on"]) == (chosen, GRID, "tiny-dev")
        assert record["lr_scores"] == {f"{lr:g}": round(s, 6) for lr, s in scores.items()}
        assert (systems / system / "tiny" / "metrics.json").is_file()
    # seed 1 at the chosen rate is the chosen variant's training: its files, linked, but for
    # the manifest, its own copy naming the variant (the costs table counts one training)
    tried = systems / variants[chosen] / "model"
    for path in tried.rglob("*"):
        if path.is_file() and path.name != "xlir-model.json":
            twin = systems / "lora-s1" / "model" / path.relative_to(tried)
            assert twin.stat().st_ino == path.stat().st_ino, path.name
    manifest = _read(systems / "lora-s1" / "model" / "xlir-model.json")
    assert manifest.pop("linked_from") == f"../../{variants[chosen]}/model"
    assert manifest == _read(tried / "xlir-model.json")
    assert "linked_from" not in _read(systems / "lora-s2" / "model" / "xlir-model.json")
    assert _read(systems / "lora-s1" / "system.json")["linked_from"] == f"../../{variants[chosen]}/model"
    costs = (root / "report" / "report.md").read_text().split("## Costs")[1]
    row = next(line for line in costs.splitlines() if line.startswith("| lora-s1 |"))
    assert f"| 0 (linked: {variants[chosen]}'s training) |" in row
    per_query = {s: _read(systems / s / "tiny-dev" / "metrics.json")["per_query"]
                 for s in ("lora-s1", variants[chosen])}
    assert per_query["lora-s1"] == per_query[variants[chosen]]


def test_the_report_says_the_rate_was_chosen_and_applied(grid_study):
    root, env = grid_study
    md = (root / "report" / "report.md").read_text()
    record = _read(root / "systems" / "lora-s2" / "system.json")
    assert (f"lora: on tiny-dev (seed 1, nDCG@10), dev chose lr {record['lr']:g} among "
            f"0.001, 0.03, and every seed of lora trained with it") in md
    assert "chosen here, applied" in md


def test_a_resumed_grid_study_runs_nothing(grid_study):
    root, env = grid_study
    before = {p: p.stat().st_mtime_ns for p in root.glob("systems/*/*/metrics.json")}
    proc = subprocess.run([sys.executable, "-m", "xlir", "study", str(root.parent / "grid.yaml")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in root.glob("systems/*/*/metrics.json")} == before
    assert " done (" not in proc.stderr  # every stage: "already done, skipped"
