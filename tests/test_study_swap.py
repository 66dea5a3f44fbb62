"""MAD-X with the language-adapter swap in a study (xlir.stages_swap): the swap system reuses
its twin's task adapter, trains one language adapter per target language on monolingual text
minus every evaluated text, encodes each side through its own language's adapter, and is
evaluated on the tasks it names alone."""

from __future__ import annotations

import json

import pytest

from tiny_study import make_beir

from xlir.config import from_dict
from xlir.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MONOLINGUAL = {  # language -> source -> sentences (the tiny study's stand-in for the mirror)
    # a tiny passage and a tiny test query: both must be dropped
    "hau_Latn": {"masakhaner": ["Kano birni ne a Najeriya", "ina kwana", "yaya aiki",
                                "where is Kano"]},
    "yor_Latn": {"sib200": ["Ilu Eko wa ni Naijiria", "e kaaro"]},
}


def _config(tmp_path, encoder, beir, swap_tasks=None):
    from xlir.study import StudyConfig

    madx = {"name": "madx", "train": {"lr": 1e-3}}
    return from_dict(StudyConfig, {
        "name": "swap", "out": str(tmp_path / "study"), "encoder": str(encoder), "seeds": [1],
        "methods": [{"name": "frozen"}, madx,
                    {**madx, "label": "madx-swap", "swap": True, "tasks": swap_tasks}],
        "train": {"train": [str(beir)], "dev": None, "max_pairs": 4, "epochs": 1,
                  "batch_size": 2, "hard_negatives": 0, "logging_steps": 1,
                  "query_max_length": 16, "passage_max_length": 32, "madx_mlm_steps": 2},
        "tasks": [{"name": str(beir), "label": "tiny", "split": "test"},
                  {"name": str(beir), "label": "tiny-dev", "split": "dev"}],
        "baselines": ["bm25", "hybrid"], "max_seq_length": 32, "batch_size": 4, "k": 10})


@pytest.fixture
def fake_text(monkeypatch):
    from xlir import train as train_module
    from xlir.data import monolingual
    from xlir.data.checks import normalise

    def texts(lang, exclude=frozenset()):
        kept = {s: [t for t in v if normalise(t) not in exclude]
                for s, v in MONOLINGUAL[lang].items()}
        dropped = {s: len(v) - len(kept[s]) for s, v in MONOLINGUAL[lang].items()
                   if len(v) > len(kept[s])}
        return kept, dropped

    monkeypatch.setattr(monolingual, "monolingual_texts", texts)
    monkeypatch.setattr(train_module, "language_texts",
                        lambda lang: ["the river runs through the city", "the book was written"])


def test_swap_reuses_the_twin_and_encodes_each_language_through_its_adapter(
        tmp_path, tiny_st_encoder_dir, fake_text):
    from xlir.retrieve import read_trec_run
    from xlir.study import Study

    beir = make_beir(tmp_path / "beir")
    study = Study(_config(tmp_path, tiny_st_encoder_dir, beir, swap_tasks=["tiny"]))
    stages = {s.key: s for s in study.stages()}
    assert stages["train:madx-swap-s1"].deps == ("train:madx-s1",)
    assert "retrieve:madx-swap-s1/tiny" in stages
    assert "retrieve:madx-swap-s1/tiny-dev" not in stages  # methods[].tasks
    assert "fuse:hybrid-madx-swap-s1/tiny" in stages
    study.run()
    root = tmp_path / "study" / "systems"
    assert study.model_dir("madx-swap-s1") == root / "madx-s1" / "model"
    assert not (root / "madx-swap-s1" / "model").exists()  # the twin's task adapter, not a copy
    assert sorted(p.name for p in (root / "madx-swap-s1" / "lang_adapters").iterdir()) == [
        "hau_Latn", "yor_Latn"]  # the query languages; passages are in the source language
    mlm = json.loads((root / "madx-swap-s1/lang_adapters/hau_Latn/mlm.json").read_text())
    assert mlm["texts"] == 2 and mlm["sources"] == {"masakhaner": 2}
    assert mlm["dropped_as_evaluated"] == {"masakhaner": 2}
    assert len(mlm["loss"]) == 2 and mlm["steps"] == 2
    # Passages (English, the source) through the source adapter: the twin's very embeddings;
    # queries through their own language's adapter: other scores than the twin's.
    cache = {p.name.split("-")[1] for p in (root / "madx-swap-s1/embeddings").glob("passages-*")}
    twin_cache = {p.name.split("-")[1] for p in (root / "madx-s1/embeddings").glob("passages-*")}
    assert cache and cache <= twin_cache
    swap = read_trec_run(root / "madx-swap-s1/tiny/run.trec")
    twin = read_trec_run(root / "madx-s1/tiny/run.trec")
    assert swap.keys() == twin.keys()
    assert any(swap[q] != twin[q] for q in swap)
    metrics = json.loads((root / "madx-swap-s1/tiny/metrics.json").read_text())
    assert metrics["n_queries"] == 4
    # The report and the results of record take a system evaluated on some tasks only.
    from xlir.report import build_report
    from xlir.results import export_results, readme_tables

    report = build_report(tmp_path / "study").with_name("report.md").read_text(encoding="utf-8")
    assert "madx-swap" in report
    export_results(tmp_path / "study", tmp_path / "results")
    assert sorted(p.name for p in (tmp_path / "results/systems/madx-swap-s1").iterdir()) == [
        "lang_adapters", "system.json", "tiny"]
    rows = json.loads((tmp_path / "results/report/decision.json").read_text())["swap"]
    assert {(r["grouping"], r["group"]) for r in rows} == {
        ("all", "all"), ("language", "hau_Latn"), ("language", "yor_Latn")} | {
        (g, "unknown") for g in ("pretraining",)}  # the tiny encoder declares no languages
    every = next(r for r in rows if r["grouping"] == "all")
    assert (every["method"], every["twin"], every["task"], every["n_queries"]) == (
        "madx-swap", "madx", "tiny", 4)
    per_lang = {r["group"]: r["estimate"] for r in rows if r["grouping"] == "language"}
    assert every["estimate"] == pytest.approx(sum(per_lang.values()) / 2)  # the macro
    assert "## MAD-X: the language-adapter swap" in report
    assert "| madx-swap-s1 | hau_Latn | 2 | masakhaner 2 | masakhaner 2 | 2 |" in report
    assert "| madx-swap-s1 | 2 language adapters |" in report  # costs
    assert (tmp_path / "results/systems/madx-swap-s1/lang_adapters/hau_Latn/mlm.json").is_file()
    assert "madx-swap - madx" in readme_tables(tmp_path / "results")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    Study(_config(tmp_path, tiny_st_encoder_dir, beir, swap_tasks=["tiny"])).run()
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    # A study grown from results of record holds the swap's metrics and mlm.json but no
    # adapters: nothing reads them any more, so they are not trained again.
    import shutil

    for lang in ("hau_Latn", "yor_Latn"):
        d = root / "madx-swap-s1" / "lang_adapters" / lang
        for p in d.iterdir():
            if p.name != "mlm.json":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    Study(_config(tmp_path, tiny_st_encoder_dir, beir, swap_tasks=["tiny"])).run()
    assert sorted(p.name for p in (root / "madx-swap-s1/lang_adapters/hau_Latn").iterdir()) == ["mlm.json"]

    # Grown from the results of record themselves, which keep each model's manifest alone
    # (stages.is_record) and no runs: while every metric is there nothing runs; with the swap's
    # folders removed, the twin is trained again (the swap reads its task adapter, a record
    # has none), BM25 retrieves again (the swap's hybrid reads its run) and the swap's scores
    # come back equal, nothing else rewritten.
    from xlir import stages as stage_bodies

    grown = tmp_path / "grown"
    shutil.copytree(tmp_path / "results", grown)
    twin_model = grown / "systems" / "madx-s1" / "model"
    assert stage_bodies.is_record(twin_model) and not stage_bodies.has_model(twin_model)
    Study(_config(tmp_path, tiny_st_encoder_dir, beir, swap_tasks=["tiny"]), out=grown).run()
    assert stage_bodies.is_record(twin_model)
    for name in ("madx-swap-s1", "hybrid-madx-swap-s1"):
        shutil.rmtree(grown / "systems" / name)
    reported = {p: p.read_bytes() for p in (grown / "systems").glob("*/*/metrics.json")}
    bm25 = grown / "systems" / "bm25" / "tiny"
    Study(_config(tmp_path, tiny_st_encoder_dir, beir, swap_tasks=["tiny"]), out=grown).run()
    assert stage_bodies.has_model(twin_model)
    assert (bm25 / "run.trec").is_file() and not (grown / "systems/madx-s1/tiny/run.trec").exists()
    assert json.loads((bm25 / "metrics.json").read_text())["per_language"] == json.loads(
        reported.pop(bm25 / "metrics.json"))["per_language"]
    assert {p: p.read_bytes() for p in reported} == reported
    again = json.loads((grown / "systems/madx-swap-s1/tiny/metrics.json").read_text())
    assert again["n_queries"] == 4
    assert again["macro"] == pytest.approx(metrics["macro"], abs=1e-6)
    for lang, scores in metrics["per_language"].items():
        assert again["per_language"][lang] == pytest.approx(scores, abs=1e-6)


def test_a_swap_without_a_twin_trains_its_own_task_adapter(tmp_path, tiny_st_encoder_dir,
                                                           fake_text):
    from xlir.study import Study

    beir = make_beir(tmp_path / "beir")
    config = _config(tmp_path, tiny_st_encoder_dir, beir)
    config.methods = [m for m in config.methods if m.swap]
    study = Study(config)
    assert study.stages()[0].key == "retrieve:bm25/tiny"
    assert next(s for s in study.stages() if s.kind == "train").deps == ()
    study.run()
    root = tmp_path / "study" / "systems" / "madx-swap-s1"
    assert (root / "model" / "xlir-model.json").is_file()
    assert (root / "tiny-dev" / "metrics.json").is_file()  # tasks: None, every task


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in xlir catches a BaseException that is not an Exception."""


def test_a_swap_killed_between_language_adapters_resumes_at_the_next_language(
        tmp_path, tiny_st_encoder_dir, fake_text, monkeypatch):
    """The study of record was killed after two of its ten target adapters: the rerun kept
    them and trained the other eight. Here: killed after the first, the rerun trains only the
    second and leaves the first's files as they were."""
    from xlir import tuning
    from xlir.study import Study

    real, trained = tuning.train_language_adapter, []

    def kill_after_first(base, lang, *args, **kwargs):  # madx-s1 trains eng first
        if lang == "yor_Latn":
            raise Killed
        trained.append(lang)
        return real(base, lang, *args, **kwargs)

    beir = make_beir(tmp_path / "beir")
    config = _config(tmp_path, tiny_st_encoder_dir, beir, swap_tasks=["tiny"])
    monkeypatch.setattr(tuning, "train_language_adapter", kill_after_first)
    with pytest.raises(Killed):
        Study(config).run()
    adapters = tmp_path / "study/systems/madx-swap-s1/lang_adapters"
    assert [p.name for p in adapters.iterdir()] == ["hau_Latn"]
    assert trained == ["eng", "hau_Latn"]
    kept = {p: p.read_bytes() for p in (adapters / "hau_Latn").iterdir()}

    def record(base, lang, *args, **kwargs):
        trained.append(lang)
        return real(base, lang, *args, **kwargs)

    monkeypatch.setattr(tuning, "train_language_adapter", record)
    Study(_config(tmp_path, tiny_st_encoder_dir, beir, swap_tasks=["tiny"])).run()
    assert trained == ["eng", "hau_Latn", "yor_Latn"]  # the twin's model was kept too
    assert {p: p.read_bytes() for p in (adapters / "hau_Latn").iterdir()} == kept
    assert sorted(p.name for p in adapters.iterdir()) == ["hau_Latn", "yor_Latn"]  # no temporaries
    assert (tmp_path / "study/systems/madx-swap-s1/tiny/metrics.json").is_file()


@pytest.mark.parametrize("method, message", [
    ({"name": "lora", "swap": True}, r"methods\.lora\.swap: only madx"),
    ({"name": "madx", "tasks": ["nope"]}, r"methods\.madx\.tasks: \['nope'\] must be"),
    ({"name": "madx", "tasks": []}, r"methods\.madx\.tasks: \[\] must be"),
])
def test_swap_and_tasks_are_checked_naming_the_key(method, message):
    from xlir.study import StudyConfig

    with pytest.raises(ConfigError, match=message):
        from_dict(StudyConfig, {"methods": [method], "tasks": [{"name": "afriqa"}]})
