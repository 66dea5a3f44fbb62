"""Results of record (xlir.results) and embedding drift (xlir.drift), on a real tiny study:
frozen, full and lora at two seeds on the tiny models, so the decision table has rows and each
tuned model has embeddings to compare with the frozen model's."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from tiny_study import run_study, tiny_setup

from xlir.storage import write_json


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_st_encoder_dir, tiny_causal_lm_dir):
    tmp = tmp_path_factory.mktemp("results")
    config, env = tiny_setup(tmp, tiny_st_encoder_dir, tiny_causal_lm_dir)
    # dev: null, 2 epochs: the models end where training took them (with the tiny dev set every
    # checkpoint ties at nDCG 1.0 and the earliest, before any update, would be kept)
    config["train"] = {**config["train"], "dev": None, "epochs": 2}
    # without xQG nothing chooses on tiny-dev: both tasks are tasks of the answer
    config["tasks"] = [{**t, "role": "test"} for t in config["tasks"]]
    config.update(seeds=[1, 2], xqg={"enabled": False}, baselines=["bm25"],
                  methods=[{"name": "frozen"}, {"name": "full", "train": {"lr": 1e-3}},
                           {"name": "lora", "train": {"lr": 1e-3}}])
    write_json(tmp / "tiny.yaml", config)
    proc = run_study(tmp / "tiny.yaml", env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "study"


@pytest.fixture(scope="module")
def exported(study, tmp_path_factory):
    from xlir.results import export_results

    out = tmp_path_factory.mktemp("record") / "tiny"
    sizes = export_results(study, out)
    return out, sizes


def test_frozen_seeds_share_one_encoding_and_the_plan_is_seed_major(study):
    assert not (study / "systems" / "frozen-s2" / "embeddings").exists()
    a = json.loads((study / "systems/frozen-s1/tiny/metrics.json").read_text())
    b = json.loads((study / "systems/frozen-s2/tiny/metrics.json").read_text())
    assert a["per_query"] == b["per_query"]
    from xlir.study import Study, load_study_config

    plan = Study(load_study_config(study / "config.resolved.json")).plan()
    trains = [t for s, t in plan if s == "train"]
    assert trains == ["frozen-s1", "full-s1", "lora-s1", "frozen-s2", "full-s2", "lora-s2"]
    assert plan[0] == ("retrieve", "bm25/tiny")  # the baseline needs no model: first
    # a round is complete before the next seed starts: lora-s1 is retrieved before full-s2 trains
    assert plan.index(("retrieve", "lora-s1/tiny")) < plan.index(("train", "full-s2"))


def test_results_hold_what_the_report_reads_and_nothing_heavy(study, exported):
    out, sizes = exported
    assert "config.resolved.json" in sizes and "environment.json" in sizes
    assert "per_query/tiny/nDCG@10.tsv.gz" in sizes or any(f.startswith("per_query/tiny/") for f in sizes)
    assert {"report/report.md", "report/decision.json", "report/decision.csv",
            "report/interaction.csv"} <= set(sizes)
    assert not any(f.endswith((".trec", ".npy", ".safetensors", "index.html")) for f in sizes)
    for p in out.glob("systems/*/*/metrics.json"):
        m = json.loads(p.read_text())
        assert "per_query" not in m and "query_lang" not in m and m["per_query_table"]
    manifest = (out / "MANIFEST.tsv").read_text().splitlines()
    assert manifest[0] == "file\tbytes\tsha256" and len(manifest) == len(sizes) + 1


def test_decision_recomputed_from_results_equals_the_study_s(study, exported):
    from xlir.report_decision import decision

    out, _ = exported
    mine, record = decision(study), decision(out)
    assert record["answer"], record["missing"]  # frozen and full are there: rows exist
    assert json.dumps(mine, sort_keys=True) == json.dumps(record, sort_keys=True)
    committed = json.loads((out / "report" / "decision.json").read_text())
    assert json.dumps(committed, sort_keys=True) == json.dumps(
        json.loads(json.dumps(record)), sort_keys=True)


def test_compare_accepts_the_study_and_names_a_changed_score(study, exported, tmp_path):
    import shutil

    from xlir.results import compare_results

    out, _ = exported
    assert compare_results(study, out) == []
    copy = tmp_path / "study"
    shutil.copytree(study, copy, ignore=shutil.ignore_patterns("embeddings", "model"))
    path = copy / "systems" / "lora-s2" / "tiny" / "metrics.json"
    m = json.loads(path.read_text())
    qid = next(iter(m["per_query"][m["primary"]]))
    m["per_query"][m["primary"]][qid] += 0.01
    path.write_text(json.dumps(m))
    diffs = compare_results(copy, out)
    assert len(diffs) == 1 and diffs[0].startswith("tiny/lora-s2:") and qid in diffs[0]


def test_export_is_byte_identical_when_repeated(study, exported, tmp_path):
    from xlir.results import export_results

    out, _ = exported
    again = tmp_path / "again"
    export_results(study, again)
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.suffix != ".png":  # matplotlib stamps nothing, but fonts may vary
            assert p.read_bytes() == (again / p.relative_to(out)).read_bytes(), p


def test_drift_is_measured_for_every_tuned_model_against_an_independent_recomputation(study, exported):
    out, _ = exported
    drift = json.loads((out / "drift.json").read_text())["systems"]
    assert set(drift) == {"full-s1", "full-s2", "lora-s1", "lora-s2"}
    for system, tasks in drift.items():
        q = tasks["tiny"]["queries"]
        assert q["n"] == 4 and set(q["per_language"]) == {"hau_Latn", "yor_Latn"}
        assert 1e-6 < q["mean"] < 2 and math.isclose(
            q["mean"], np.mean(list(q["per_language"].values())), rel_tol=1e-9)  # 2 per language
        assert tasks["tiny"]["passages"]["n"] == 8
    # against an independent recomputation from the cached vectors of one pair of folders
    # (the tiny task's 4 queries; the folder name ends in the hash of the texts it holds)
    def tiny_queries(system):
        return next(f for f in sorted((study / "systems" / system / "embeddings").glob("queries-*"))
                    if json.loads((f / "manifest.json").read_text())["count"] == 4)

    folders, ref = tiny_queries("full-s1"), tiny_queries("frozen-s1")
    assert folders.name.rsplit("-", 1)[1] == ref.name.rsplit("-", 1)[1]
    a, b = (np.load(f / "shard-00000.npy").astype(np.float64) for f in (folders, ref))
    assert math.isclose(drift["full-s1"]["tiny"]["queries"]["mean"],
                        float(np.mean(1 - (a * b).sum(1))), rel_tol=1e-9)


def test_report_shows_learning_vs_forgetting(exported):
    out, _ = exported
    md = (out / "report" / "report.md").read_text()
    assert "## Learning vs forgetting" in md and "query drift" in md


def test_a_torn_per_query_table_names_file_line_and_field(exported, tmp_path):
    import shutil

    from xlir.errors import InputError
    from xlir.report_files import StudyFiles

    out, _ = exported
    copy = tmp_path / "torn"
    shutil.copytree(out, copy)
    table = next(copy.glob("per_query/tiny/*.tsv.gz"))
    rows = gzip.decompress(table.read_bytes()).decode().splitlines()
    header = rows[0].split("\t")
    fields = rows[2].split("\t")
    fields[3] = "n/a"
    rows[2] = "\t".join(fields)
    table.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    with pytest.raises(InputError, match=rf"line 3: field {header[3]}: not a number") as e:
        StudyFiles(copy)
    assert str(table) in str(e.value)


def test_the_cli_exports_and_compares(study, tmp_path):
    from xlir.cli import main

    assert main(["results", str(study), "--out", str(tmp_path / "r")]) == 0
    assert main(["results", str(study), "--compare", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "systems" / "full-s1" / "tiny" / "metrics.json").read_text())
    m["macro"][m["primary"]] += 0.5
    (tmp_path / "r" / "systems" / "full-s1" / "tiny" / "metrics.json").write_text(json.dumps(m))
    assert main(["results", str(study), "--compare", str(tmp_path / "r")]) == 1


def test_a_grown_copy_of_results_keeps_their_drift_and_notes(study, exported, tmp_path):
    """A study folder grown from results of record has no embeddings for the old systems:
    re-exporting it keeps their drift entries (and the hand-written RESUME.md) instead of
    dropping them, and measures the systems whose embeddings are there."""
    import shutil

    from xlir.drift import write_drift
    from xlir.results import export_results

    out, _ = exported
    grown = tmp_path / "grown"
    shutil.copytree(study, grown)
    old = json.loads((out / "drift.json").read_text())["systems"]
    shutil.rmtree(grown / "systems" / "full-s1" / "embeddings")  # as in results of record
    (grown / "RESUME.md").write_text("killed at stage 3, resumed\n")
    write_drift(grown)
    drift = json.loads((grown / "drift.json").read_text())
    assert drift["carried"] == ["full-s1"]
    assert drift["systems"]["full-s1"] == old["full-s1"]
    assert drift["systems"]["lora-s2"] == old["lora-s2"]  # recomputed, the same
    # a system re-encoded on part of its texts (a grown study re-runs one of its tasks) keeps
    # the entries of the rest
    part = tmp_path / "part"
    shutil.copytree(grown, part)
    for folder in (part / "systems" / "lora-s2" / "embeddings").glob("queries-*"):
        shutil.rmtree(folder)
    write_drift(part)
    again = json.loads((part / "drift.json").read_text())
    assert again["systems"]["lora-s2"] == old["lora-s2"] and again["carried"] == ["full-s1", "lora-s2"]
    write_drift(part)  # the second time nothing changes
    assert json.loads((part / "drift.json").read_text()) == again
    record = tmp_path / "record"
    export_results(grown, record)
    (grown / "RESUME.md").unlink()
    export_results(grown, record)  # exported again: the note comes from the old record
    assert (record / "RESUME.md").read_text() == "killed at stage 3, resumed\n"
    assert json.loads((record / "drift.json").read_text())["carried"] == ["full-s1"]
    # a study folder seeded with the results of record themselves (no per-query scores in its
    # metrics files, only the tables) exports to the same tables and decision
    seeded = tmp_path / "seeded"
    shutil.copytree(out, seeded)
    again = tmp_path / "again"
    export_results(seeded, again)
    for p in sorted((out / "per_query").rglob("*.tsv.gz")) + [out / "report" / "decision.json"]:
        assert p.read_bytes() == (again / p.relative_to(out)).read_bytes(), p

