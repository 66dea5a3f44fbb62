"""xlir.study_plan: what a study config expands to, with no study folder: its systems in
seed-major order, the tasks of each, a MAD-X swap's twin, and what each system is."""

from __future__ import annotations

import pytest

from xlir.config import from_dict
from xlir.errors import ConfigError
from xlir.study_config import StudyConfig
from xlir.study_plan import Plan, Stage


def _plan(**over) -> Plan:
    data = {"tasks": [{"name": "afriqa"}, {"name": "tydi-mono", "label": "tydi-en-dev"}],
            "seeds": [13, 42], "methods": [{"name": "frozen"}, {"name": "lora"},
                                           {"name": "madx", "seeds": [13]},
                                           {"name": "madx", "label": "madx-swap", "swap": True,
                                            "seeds": [13], "tasks": ["afriqa"]}], **over}
    return Plan(from_dict(StudyConfig, data))


def test_systems_tasks_twins_and_the_graph():
    plan = _plan()
    assert plan.systems() == ["frozen-s13", "lora-s13", "madx-s13", "madx-swap-s13",
                              "frozen-s42", "lora-s42"]  # seed-major
    assert [t.label for t in plan.tasks_of("madx-swap-s13")] == ["afriqa"]
    assert plan.twin("madx-swap-s13") == "madx-s13" and plan.twin("madx-s13") is None
    assert plan.embeddings_owner("frozen-s42") == "frozen-s13"  # one encoding for every seed
    stages = {s.key: s for s in plan.stages()}
    assert stages["train:madx-swap-s13"].deps == ("train:madx-s13",)
    assert stages["retrieve:frozen-s42/afriqa"].deps == ("train:frozen-s42",
                                                         "retrieve:frozen-s13/afriqa")
    assert stages["fuse:hybrid-lora-s42/afriqa"].deps == ("retrieve:lora-s42/afriqa",
                                                          "retrieve:bm25/afriqa")
    assert Stage("augment", "best", "afriqa", alpha=0.1).target == "best/a0.1/afriqa"


def test_what_each_system_is():
    plan = _plan()
    lora = plan.system_records(Stage("train", "lora-s42"))["lora-s42"]
    assert lora == {"name": "lora-s42", "kind": "dense", "method": "lora", "label": "lora",
                    "seed": 42, "family": "core", "lr": 2e-5}  # the study's train.lr default
    assert "lr" not in plan.dense_record("frozen-s13")
    assert plan.dense_record("madx-swap-s13")["twin"] == "madx-s13"
    hybrid = plan.system_records(Stage("fuse", "hybrid-lora-s13", "afriqa"))["hybrid-lora-s13"]
    assert (hybrid["kind"], hybrid["base"], hybrid["fusion"], hybrid["seed"]) == (
        "hybrid", "lora-s13", "rrf", 13)
    xqg = plan.system_records(Stage("augment", "best", "afriqa", alpha=0.3), ["lora-s13"])
    assert xqg["xqg-lora-s13-a0.3"]["base"] == "lora-s13" and xqg["xqg-lora-s13-a0.3"]["alpha"] == 0.3
    assert plan.system_records(Stage("retrieve", "bm25", "afriqa")) == {
        "bm25": {"name": "bm25", "kind": "bm25"}}


# ---- hybrid: interpolate, its weight fixed beforehand or chosen on select_on ---------------------
TWO = [{"name": "frozen"}, {"name": "lora"}]
DEV = {"name": "tydi-mono", "label": "tydi-en-dev", "split": "dev"}


def test_an_interpolation_weight_chosen_on_select_on_reads_the_runs_there():
    plan = _plan(methods=TWO, tasks=[{"name": "afriqa"}, DEV], hybrid="interpolate",
                 select_on="tydi-en-dev")
    stages = {s.key: s for s in plan.stages()}
    assert stages["fuse:hybrid-lora-s42/afriqa"].deps == (
        "retrieve:lora-s42/afriqa", "retrieve:bm25/afriqa",
        "retrieve:lora-s42/tydi-en-dev", "retrieve:bm25/tydi-en-dev")
    assert stages["fuse:hybrid-lora-s42/tydi-en-dev"].deps == (
        "retrieve:lora-s42/tydi-en-dev", "retrieve:bm25/tydi-en-dev")
    record = plan.system_records(Stage("fuse", "hybrid-lora-s13", "afriqa"))["hybrid-lora-s13"]
    assert (record["fusion"], record["weight_chosen_on"]) == ("interpolate", "tydi-en-dev")

    fixed = _plan(methods=TWO, hybrid="interpolate", hybrid_weight=0.3)
    assert {s.key: s for s in fixed.stages()}["fuse:hybrid-lora-s42/afriqa"].deps == (
        "retrieve:lora-s42/afriqa", "retrieve:bm25/afriqa")
    record = fixed.system_records(Stage("fuse", "hybrid-lora-s13", "afriqa"))["hybrid-lora-s13"]
    assert record["weight"] == 0.3 and "weight_chosen_on" not in record
    rrf = _plan(methods=TWO).system_records(Stage("fuse", "hybrid-lora-s13", "afriqa"))
    assert not {"weight", "weight_chosen_on"} & set(rrf["hybrid-lora-s13"])


@pytest.mark.parametrize("over, message", [
    ({"hybrid": "interpolate"}, "hybrid_weight: interpolate needs a weight fixed beforehand or "
                                "select_on"),
    ({"hybrid_weight": 0.3}, "hybrid_weight: RRF has no weight"),
    ({"hybrid": "interpolate", "hybrid_weight": 1.5}, r"hybrid_weight: 1.5 is not in \[0, 1\]"),
    ({"hybrid": "interpolate", "select_on": "tydi-en-dev", "tasks": [{"name": "afriqa"}, DEV]},
     "methods.madx-swap.tasks: must hold select_on"),  # a system evaluated without it
])
def test_a_hybrid_weight_that_cannot_be_had_is_refused_naming_its_key(over, message):
    with pytest.raises(ConfigError, match=message):
        _plan(**over)


def test_the_weight_chosen_is_the_best_on_the_held_out_task(tmp_path):
    from xlir.data.task import Task
    from xlir.retrieve import write_trec_run
    from xlir.stages import choose_weight, fuse

    docs = ["d1", "d2", "d3", "d4", "d5", "d6"]
    task = Task("toy", "dev", {d: {"title": "", "text": d} for d in docs},
                {"q1": "one", "q2": "two"}, {"q1": {"d1": 1}, "q2": {"d3": 1}},
                {"q1": "hau_Latn", "q2": "hau_Latn"}, {d: "eng_Latn" for d in docs},
                primary_measure="RR@10")
    # min-max normalised per query: q1 ranks its gold first only for a dense share w > 5/9,
    # q2 only for w < 3/4, so of 0.1..0.9 exactly 0.6 and 0.7 get both right (tie: 0.6)
    write_trec_run({"q1": {"d1": 1.0, "d2": 0.2, "d5": 0.0},
                    "q2": {"d3": 2 / 3, "d4": 1.0, "d5": 0.0}}, tmp_path / "dense.trec")
    write_trec_run({"q1": {"d2": 1.0, "d1": 0.0}, "q2": {"d3": 1.0, "d4": 0.0}},
                   tmp_path / "bm25.trec")
    weight, chosen = choose_weight(tmp_path / "dense.trec", tmp_path / "bm25.trec", task,
                                   "toy-dev", encoder_name=None)
    assert weight == 0.6
    scores = chosen["weight_scores"]
    assert scores["0.6"] == scores["0.7"] == 1.0 and scores["0.5"] < 1.0 and scores["0.8"] < 1.0
    assert (chosen["weight_chosen_on"], chosen["weight_measure"]) == ("toy-dev", "RR@10")
    metrics = fuse(tmp_path / "out", "hybrid-x", "toy", task, tmp_path / "dense.trec",
                   tmp_path / "bm25.trec", method="interpolate", encoder_name=None,
                   weight=weight, chosen=chosen)
    assert metrics["weight"] == 0.6 and metrics["macro"]["RR@10"] == 1.0
    assert metrics["weight_chosen_on"] == "toy-dev"


# ---- lr_grid: a learning rate chosen on select_on and applied at every seed ----------------------
GRID = [{"name": "frozen"}, {"name": "lora", "lr_grid": [1e-4, 3e-4, 1e-3]}]


def test_an_lr_grid_runs_its_variants_first_and_every_seed_waits_for_them():
    plan = _plan(methods=GRID, tasks=[{"name": "afriqa"}, DEV], select_on="tydi-en-dev")
    assert plan.systems() == ["frozen-s13", "lora-lr1e-4-s13", "lora-lr3e-4-s13",
                              "lora-lr1e-3-s13", "lora-s13", "frozen-s42", "lora-s42"]
    assert plan.grids == {"lora": {1e-4: "lora-lr1e-4-s13", 3e-4: "lora-lr3e-4-s13",
                                   1e-3: "lora-lr1e-3-s13"}}
    variant = plan.system_specs["lora-lr3e-4-s13"][0]
    assert (variant.family, variant.train, variant.seeds) == ("lr", {"lr": 3e-4}, [13])
    assert [t.label for t in plan.tasks_of("lora-lr3e-4-s13")] == ["tydi-en-dev"]  # select_on only
    assert [t.label for t in plan.tasks_of("lora-s42")] == ["afriqa", "tydi-en-dev"]
    stages = {s.key: s for s in plan.stages()}
    reads = tuple(f"retrieve:lora-lr{r}-s13/tydi-en-dev" for r in ("1e-4", "3e-4", "1e-3"))
    assert stages["train:lora-s13"].deps == stages["train:lora-s42"].deps == reads
    assert stages["train:lora-lr1e-4-s13"].deps == ()
    record = plan.dense_record("lora-s42")
    assert record["lr_grid"] == [1e-4, 3e-4, 1e-3] and record["lr_chosen_on"] == "tydi-en-dev"
    assert "lr" not in record  # a plan reads no file: the choice is the study's (below)
    assert plan.dense_record("lora-lr1e-3-s13")["lr"] == 1e-3


@pytest.mark.parametrize("over, message", [
    ({}, "methods.lora.lr_grid: the rate is chosen on select_on"),
    ({"methods": [{"name": "lora", "lr_grid": [1e-4]}]}, "two or more distinct"),
    ({"methods": [{"name": "lora", "lr_grid": [1e-4, 0.0001]}]}, "two or more distinct"),
    ({"methods": [{"name": "lora", "lr_grid": [1e-4, -1]}]}, "two or more distinct"),
    ({"methods": [{"name": "frozen", "lr_grid": [1e-4, 1e-3]}]}, "frozen trains nothing"),
    ({"methods": [{"name": "lora", "train": {"lr": 1e-4}, "lr_grid": [1e-4, 1e-3]}]},
     "methods.lora.lr_grid: the rate is chosen from the grid; drop train.lr"),
    ({"methods": [{"name": "madx", "swap": True, "lr_grid": [1e-4, 1e-3]}]},
     "methods.madx.lr_grid: a swap uses its twin"),
    ({"methods": [{"name": "lora", "lr_grid": [1e-4, 1e-3]}, {"name": "lora", "label": "lora-lr1e-4"}],
      "select_on": "tydi-en-dev"}, r"its variants' labels \['lora-lr1e-4'\] are already methods"),
])
def test_an_lr_grid_that_cannot_be_run_is_refused_naming_its_key(over, message):
    with pytest.raises(ConfigError, match=message):
        _plan(**{"methods": GRID, "tasks": [{"name": "afriqa"}, DEV], **over})


def _variant_metrics(root, scores: dict[str, float]) -> None:
    from xlir.storage import write_json

    for tag, score in scores.items():
        write_json(root / "systems" / f"lora-lr{tag}-s13" / "tydi-en-dev" / "metrics.json",
                   {"primary": "nDCG@10", "macro": {"nDCG@10": score}})


def test_the_rate_chosen_is_the_best_variant_on_select_on_and_every_seed_trains_with_it(tmp_path):
    from xlir.errors import XlirError
    from xlir.study import Study

    config = from_dict(StudyConfig, {"tasks": [{"name": "afriqa"}, DEV], "seeds": [13, 42],
                                     "methods": GRID, "select_on": "tydi-en-dev"})
    study = Study(config, tmp_path)
    _variant_metrics(tmp_path, {"1e-4": 0.41, "3e-4": 0.45})
    assert study.lr_chosen(study.system_specs["lora-s42"][0]) == {}  # 1e-3 not evaluated yet
    with pytest.raises(XlirError, match="methods.lora.lr_grid: its variants are not all"):
        study.train_config("lora-s42")
    _variant_metrics(tmp_path, {"1e-3": 0.45})  # a tie with 3e-4: the earlier in the grid
    assert study.train_config("lora-s42").lr == study.train_config("lora-s13").lr == 3e-4
    assert study.train_config("lora-lr1e-3-s13").lr == 1e-3
    record = study.dense_record("lora-s42")
    assert (record["lr"], record["lr_chosen_on"], record["lr_measure"]) == (
        3e-4, "tydi-en-dev", "nDCG@10")
    assert record["lr_scores"] == {"0.0001": 0.41, "0.0003": 0.45, "0.001": 0.45}


def test_each_gridded_method_is_compared_with_its_own_variants_alone():
    """Two lr_grid methods of one tuning method (bottleneck and houlsby) each choose among their
    own rates; fixed-rate variants of another method keep the old grouping by tuning method."""
    from types import SimpleNamespace

    from xlir import lr_grid
    from xlir.report_files import StudyFiles
    from xlir.selection import variants

    config = {"seeds": [13, 42], "select_on": "dev", "methods": [
        {"name": "frozen"}, {"name": "bottleneck", "lr_grid": [1e-4, 1e-3]},
        {"name": "bottleneck", "label": "houlsby", "lr_grid": [1e-4, 1e-3]},
        {"name": "lora", "train": {"lr": 3e-4}},
        {"name": "lora", "label": "lora-lr1e-3", "train": {"lr": 1e-3}, "seeds": [13]}]}
    methods = lr_grid.expanded(config)
    files = SimpleNamespace(methods=[(m.get("label") or m["name"], m["name"]) for m in methods],
                            specs={m.get("label") or m["name"]: m for m in methods},
                            seeds=config["seeds"], config=config)
    files.label_of = lambda method: StudyFiles.label_of(files, method)
    assert variants(files) == {
        "bottleneck": ["bottleneck", "bottleneck-lr1e-4", "bottleneck-lr1e-3"],
        "houlsby": ["houlsby", "houlsby-lr1e-4", "houlsby-lr1e-3"],
        "lora": ["lora", "lora-lr1e-3"]}
