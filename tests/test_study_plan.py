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
