"""xlir.study_plan: what a study config expands to, with no study folder: its systems in
seed-major order, the tasks of each, a MAD-X swap's twin, and what each system is."""

from __future__ import annotations

from xlir.config import from_dict
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
