"""Learning-rate variants and families of methods: a study folder may grow (methods and seeds
added later), a method may run at some seeds only, each family of comparisons is
Holm-corrected on its own, and the learning rate is chosen on the held-out English dev task
alone (xlir.selection), with what each rate costs elsewhere reported beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xlir.data import languages
from xlir.errors import ConfigError
from xlir.storage import write_json

LANGS = ["fra_Latn", "swh_Latn", "hau_Latn", "yor_Latn", "ibo_Latn"]  # 2 seen, 3 unseen
SEEDS = [13, 42, 1234]
CORE = [{"name": "frozen"}, {"name": "full"}, {"name": "lora"}]
VARIANTS = [{"name": "lora", "label": "lora-lr1e-3", "train": {"lr": 1e-3}, "seeds": [13],
             "family": "lr"},
            {"name": "full", "label": "full-lr5e-5", "train": {"lr": 5e-5}, "seeds": [13],
             "family": "lr"}]
# label -> (English dev shift, unseen shift) against the zero-shot model
SHIFT = {"frozen": (0.0, 0.0), "full": (0.05, -0.10), "lora": (0.05, 0.0),
         "lora-lr1e-3": (0.15, -0.20), "full-lr5e-5": (0.05, -0.15)}


def _score(label: str, seed: int, lang: str, i: int) -> float:
    base = float(np.random.default_rng([sum(map(ord, lang)), i]).uniform(0.3, 0.7))
    if label == "frozen":
        return base
    shift = SHIFT[label][0] if lang == "eng_Latn" else (
        0.0 if languages.group_of(lang) == "seen" else SHIFT[label][1])
    return base + shift + np.random.default_rng([len(label), seed, sum(map(ord, lang)), i]).normal(0, 0.01)


def _metrics(system: str, task: str, per_query: dict[str, float]) -> dict:
    query_lang = {q: q.rsplit("-", 1)[0] for q in per_query}
    langs = sorted(set(query_lang.values()))
    per_language = {lang: {"nDCG@10": float(np.mean([s for q, s in per_query.items()
                                                      if query_lang[q] == lang]))}
                    for lang in langs}
    return {"task": task, "system": system, "measures": ["nDCG@10"], "primary": "nDCG@10",
            "per_query": {"nDCG@10": per_query}, "query_lang": query_lang,
            "per_language": per_language,
            "macro": {"nDCG@10": float(np.mean([v["nDCG@10"] for v in per_language.values()]))},
            "encoder_family": "me5",
            "language_groups": {g: languages.language_groups(langs, g, "me5")
                                for g in languages.GROUPINGS}}


def write_study(root: Path, methods: list[dict], n: int = 40) -> Path:
    specs = [{"options": {}, "train": {}, "seeds": None, "family": "core", **m,
              "label": m.get("label", m["name"])} for m in methods]
    tasks = {"afriqa": LANGS, "tydi-en-dev": ["eng_Latn"]}
    write_json(root / "config.resolved.json", {
        "name": "lr", "methods": specs, "seeds": SEEDS, "train": {"lr": 2e-5},
        "tasks": [{"name": t, "label": t} for t in tasks], "select_on": "tydi-en-dev",
        "groupings": ["pretraining"], "xqg": {"enabled": False}})
    for task, langs in tasks.items():
        write_json(root / "tasks" / f"{task}.json",
                   {"name": task, "split": "test", "queries": n * len(langs), "documents": 100,
                    "queries_per_language": {lang: n for lang in langs},
                    "primary_measure": "nDCG@10"})
        for m in specs:
            for seed in m["seeds"] or SEEDS:
                name = f"{m['label']}-s{seed}"
                scores = {f"{lang}-{i}": _score(m["label"], seed, lang, i)
                          for lang in langs for i in range(n)}
                write_json(root / "systems" / name / task / "metrics.json",
                           _metrics(name, task, scores))
    return root


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    from xlir.report import build_report
    from xlir.report_decision import decision

    root = tmp_path_factory.mktemp("lr")
    core = decision(write_study(root / "core", CORE))
    study = write_study(root / "grown", CORE + VARIANTS)
    out = build_report(study).parent
    return core, json.loads((out / "decision.json").read_text()), out


def test_a_family_is_corrected_on_its_own_and_leaves_the_core_answer_as_it_was(grown):
    core, table, _ = grown
    mine = [r for r in table["answer"] if r["family"] == "core"]
    assert mine == core["answer"]  # the variants changed no p_holm and no verdict of the core
    variants = [r for r in table["answer"] if r["family"] == "lr"]
    assert {r["method"] for r in variants} == {"lora-lr1e-3", "full-lr5e-5"}
    unseen = {r["method"]: r for r in variants if r["task"] == "afriqa" and r["group"] == "unseen"}
    assert unseen["lora-lr1e-3"]["answer"] == pytest.approx(-0.10, abs=0.01)
    assert unseen["lora-lr1e-3"]["n_seeds"] == 1 and unseen["lora-lr1e-3"]["verdict"] == "less robust"
    assert unseen["lora-lr1e-3"]["p_holm"] >= unseen["lora-lr1e-3"]["p"]
    # full appears once, in the core family's deltas
    assert [r["family"] for r in table["delta"] if r["method"] == "full"
            and r["task"] == "afriqa" and r["group"] == "unseen"] == ["core"]


def test_dev_chooses_a_learning_rate_only_when_the_difference_is_detectable(grown):
    from xlir.selection import choice_sentence

    _, table, _ = grown
    rows = {r["label"]: r for r in table["selection"]}
    assert set(rows) == {"lora", "lora-lr1e-3", "full", "full-lr5e-5"}
    assert all(r["task"] == "tydi-en-dev" and r["seed"] == 13 for r in rows.values())
    assert rows["lora"]["reference"] and rows["lora-lr1e-3"]["chosen"]
    assert rows["lora-lr1e-3"]["diff"] == pytest.approx(0.10, abs=0.01)
    assert rows["lora-lr1e-3"]["p"] < 0.05 and rows["lora-lr1e-3"]["lr"] == 1e-3
    assert rows["full"]["lr"] == 2e-5  # the study's train.lr, as the method did not set one
    assert abs(rows["full-lr5e-5"]["diff"]) < rows["full-lr5e-5"]["mde"]
    words = " ".join(choice_sentence(table["selection"]))
    assert "lora: on tydi-en-dev (seed 13, nDCG@10), dev prefers lr 0.001" in words
    assert ("full: on tydi-en-dev (seed 13, nDCG@10), dev chooses the learning rate fixed" in words
            or "so the fixed learning rate stands" in words)


def test_each_learning_rate_shows_what_it_costs_in_unseen_languages(grown):
    _, table, out = grown
    sens = {(r["label"], r["task"], r["group"]): r for r in table["sensitivity"]}
    assert sens["lora-lr1e-3", "afriqa", "unseen"]["estimate"] == pytest.approx(-0.20, abs=0.01)
    assert sens["lora", "afriqa", "unseen"]["estimate"] == pytest.approx(0.0, abs=0.01)
    assert sens["lora-lr1e-3", "tydi-en-dev", "seen"]["estimate"] == pytest.approx(0.15, abs=0.01)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Learning rates and other methods" in md
    assert "Learning rate, chosen on held-out English dev" in md and (out / "lr-trade-off-afriqa.png").is_file()
    assert "Family 'lr', languages grouped by pretraining" in md


def test_the_readme_tables_carry_the_learning_rate_choice(grown):
    from xlir.results import readme_tables

    _, table, out = grown
    text = readme_tables(out.parent)
    head = text.split("Learning rates at seed 13")[0]
    assert "lora-lr1e-3" not in head  # the headline tables hold the core family alone
    row = next(line for line in text.splitlines() if line.startswith("| lora | 0.001 |"))
    chosen = next(r for r in table["selection"] if r["label"] == "lora-lr1e-3")
    assert f"**{chosen['score']:.3f}**" in row and "afriqa unseen" in text


# ---- the config: methods at some seeds, and a study folder that grows ----------------------
def _config(**over):
    from xlir.config import from_dict
    from xlir.study_config import StudyConfig

    data = {"tasks": [{"name": "afriqa"}, {"name": "tydi-mono", "label": "tydi-en-dev"}],
            "seeds": [13, 42], "methods": [{"name": "frozen"}, {"name": "lora"}], **over}
    return from_dict(StudyConfig, data)


def test_a_method_runs_at_the_seeds_it_names():
    from xlir.study import Study

    config = _config(methods=[{"name": "frozen"}, {"name": "lora"},
                              {"name": "lora", "label": "lora-hi", "train": {"lr": 1e-3},
                               "seeds": [13], "family": "lr"}])
    assert Study(config, "unused").systems() == ["frozen-s13", "lora-s13", "lora-hi-s13",
                                                 "frozen-s42", "lora-s42"]
    with pytest.raises(ConfigError, match=r"methods.lora-hi.seeds: \[7\] must be a non-empty subset"):
        _config(methods=[{"name": "lora", "label": "lora-hi", "seeds": [7]}])
    with pytest.raises(ConfigError, match=r"methods.lora-hi.seeds: \[\] must be a non-empty"):
        _config(methods=[{"name": "lora", "label": "lora-hi", "seeds": []}])
    for seeds in ([], [13, 13]):  # a study without seeds would have no dense system at all
        with pytest.raises(ConfigError, match=r"^seeds: .* must be a non-empty list of distinct"):
            _config(seeds=seeds)
    with pytest.raises(ConfigError, match="select_on: 'tydi' is not one of the tasks"):
        _config(select_on="tydi")


def test_a_study_folder_may_gain_methods_and_seeds_but_not_change_what_ran():
    from xlir.config import to_dict
    from xlir.study_config import changes

    stored = json.loads(json.dumps(to_dict(_config())))
    grown = _config(seeds=[13, 42, 1234], groupings=["pretraining", "resource"],
                    methods=[{"name": "frozen"}, {"name": "lora"},
                             {"name": "lora", "label": "lora-hi", "seeds": [13]}])
    assert changes(stored, grown) == []
    assert changes(stored, _config(methods=[{"name": "frozen"},
                                            {"name": "lora", "train": {"lr": 1e-3}}])) == ["methods.lora"]
    assert changes(stored, _config(methods=[{"name": "lora"}])) == ["methods.frozen (removed)"]
    assert changes(stored, _config(seeds=[42, 13])) == [
        "seeds (the stored ones must stay first, in order)"]
    assert changes(stored, _config(k=10)) == ["k"]


def test_a_grown_study_runs_only_its_new_stages(tmp_path):
    """The folder check under a grown config: accepted, while a changed method is refused."""
    from xlir.config import to_dict
    from xlir.study import Study

    root = tmp_path / "study"
    write_json(root / "config.resolved.json", to_dict(_config()))
    write_json(root / "systems" / "lora-s13" / "afriqa" / "metrics.json", {"task": "afriqa"})
    grown = _config(methods=[{"name": "frozen"}, {"name": "lora"}, {"name": "bitfit", "seeds": [13]}])
    Study(grown, root)._check_same_config()  # no error
    with pytest.raises(ConfigError, match=r"changed: methods.lora\)"):
        Study(_config(methods=[{"name": "frozen"}, {"name": "lora", "options": {"r": 4}}]),
              root)._check_same_config()


XQG = {"enabled": True, "task": "afriqa", "select_on": "afriqa-dev", "systems": ["frozen-s13", "best"],
       "candidates": ["lora-s13"], "languages": ["hau_Latn"]}
DEV = {"name": "afriqa", "label": "afriqa-dev", "split": "dev", "role": "select"}


def _with_xqg(**over):
    over = {"xqg": XQG, **over}
    return _config(tasks=[{"name": "afriqa"}, {"name": "tydi-mono", "label": "tydi-en-dev"}, DEV],
                   **over)


def test_an_augment_stage_is_done_when_each_system_it_names_is(tmp_path):
    """Study.done, the one skip test: an augment stage of a named system is done when that
    system's fused run has metrics; `best` only once its candidates are evaluated on the
    select task and the chosen one's fused run has metrics (not any other system's); the
    selection stage once selection.json exists. Targets are SYSTEM/aALPHA/TASK whatever the
    task label (a label starting with "a" once split at the wrong "/a")."""
    from xlir.study import Study

    study = Study(_with_xqg(xqg={**XQG, "alphas": [0.1], "candidates": ["lora-s13", "lora-s42"]}),
                  tmp_path)
    stages = {s.key: s for s in study.stages()}
    assert [k for k in stages if k.split(":")[0] in ("qgen-train", "qgen-generate", "augment",
                                                    "xqg-select")] == [
        "qgen-train:generator", "qgen-generate:queries",
        "augment:frozen-s13/a0.1/afriqa", "augment:frozen-s13/a0.1/afriqa-dev",
        "augment:best/a0.1/afriqa", "augment:best/a0.1/afriqa-dev", "xqg-select:selection"]
    assert stages["augment:best/a0.1/afriqa-dev"].deps == (
        "qgen-generate:queries", "retrieve:lora-s13/afriqa", "retrieve:lora-s13/afriqa-dev",
        "retrieve:lora-s42/afriqa", "retrieve:lora-s42/afriqa-dev")
    assert stages["xqg-select:selection"].deps == (
        "augment:frozen-s13/a0.1/afriqa-dev", "augment:best/a0.1/afriqa-dev")

    def metrics(system, task, value=0.5):
        write_json(tmp_path / "systems" / system / task / "metrics.json",
                   {"primary": "RR@10", "macro": {"RR@10": value}})

    frozen = stages["augment:frozen-s13/a0.1/afriqa"]
    assert not study.done(frozen)
    metrics("xqg-frozen-s13-a0.1", "afriqa")
    assert study.done(frozen) and not study.done(stages["augment:frozen-s13/a0.1/afriqa-dev"])
    best = stages["augment:best/a0.1/afriqa"]
    metrics("xqg-lora-s13-a0.1", "afriqa")
    assert not study.done(best)  # no candidate evaluated on afriqa-dev yet: nothing chosen
    metrics("lora-s13", "afriqa-dev", 0.4)
    metrics("lora-s42", "afriqa-dev", 0.6)
    assert not study.done(best)  # lora-s42 is chosen, and its fused run is missing
    metrics("xqg-lora-s42-a0.1", "afriqa")
    assert study.done(best)
    assert not study.done(stages["xqg-select:selection"])
    write_json(tmp_path / "xqg" / "selection.json", {})
    assert study.done(stages["xqg-select:selection"])


def test_a_task_held_out_for_xqg_is_evaluated_only_for_the_systems_that_choose():
    """role select: frozen-s13 and the candidates are evaluated on it, nobody else, and no
    BM25 or hybrid run is made on it; `best` is chosen among the candidates alone."""
    from xlir.study import Study

    study = Study(_with_xqg(), "unused")
    assert study.selection_systems() == ["frozen-s13", "lora-s13"]
    assert study.best_candidates() == ["lora-s13"]
    assert [t.label for t in study.tasks_of("lora-s13")] == ["afriqa", "tydi-en-dev", "afriqa-dev"]
    assert [t.label for t in study.tasks_of("lora-s42")] == ["afriqa", "tydi-en-dev"]
    assert [t.label for t in study.tasks_of("frozen-s42")] == ["afriqa", "tydi-en-dev"]
    keys = {s.key for s in study.stages()}
    assert {"retrieve:frozen-s13/afriqa-dev", "retrieve:lora-s13/afriqa-dev"} <= keys
    assert not {k for k in keys if k.endswith("afriqa-dev") and (
        "bm25" in k or "hybrid" in k or "s42" in k)}
    plan = study.plan()
    assert ("retrieve", "bm25/afriqa-dev") not in plan and ("retrieve", "lora-s42/afriqa-dev") not in plan
    # without candidates, `best` is chosen among every trained system
    every = Study(_with_xqg(xqg={**XQG, "candidates": None}), "unused")
    assert every.best_candidates() == ["lora-s13", "lora-s42"]


@pytest.mark.parametrize("xqg, tasks, message", [
    (XQG, [{"name": "afriqa"}, {**DEV, "label": "other-dev"}, DEV],
     "tasks.other-dev.role: 'select' is for the task xqg.select_on names"),
    ({**XQG, "candidates": ["lora-s7"]}, None, r"xqg.candidates: \['lora-s7'\] name no method"),
    ({**XQG, "systems": ["bitfit"]}, None, r"xqg.systems: \['bitfit'\] name no method"),
    ({**XQG, "candidates": []}, None, "xqg.candidates: name at least one"),
])
def test_a_held_out_task_or_a_candidate_that_names_nothing_is_refused(xqg, tasks, message):
    with pytest.raises(ConfigError, match=message):
        _config(tasks=tasks or [{"name": "afriqa"}, DEV], xqg=xqg)


def test_a_finished_study_may_gain_xqg_and_its_held_out_task_but_nothing_else():
    """How the study of record grows by xQG: the stored tasks stay, a role-select task is
    appended, xQG goes from off to on; once on, it stays as it was."""
    from xlir.config import to_dict
    from xlir.study_config import changes

    stored = json.loads(json.dumps(to_dict(_config())))
    assert changes(stored, _with_xqg()) == []
    test_task = _config(tasks=[{"name": "afriqa"}, {"name": "tydi-mono", "label": "tydi-en-dev"},
                               {"name": "amqa"}])
    assert changes(stored, test_task) == [
        "tasks (the stored ones must stay, in order; only tasks of role 'select' may be added)"]
    with_xqg = json.loads(json.dumps(to_dict(_with_xqg())))
    assert changes(with_xqg, _with_xqg()) == []
    assert changes(with_xqg, _with_xqg(xqg={**XQG, "alphas": [0.5]})) == ["xqg"]


@pytest.mark.parametrize("over, key", [
    ({"seeds": []}, "seeds: [] must be"),
    ({"methods": [{"name": "frozen"}, {"name": "lora", "seeds": []}]}, "methods.lora.seeds: []"),
    ({"select_on": "tydi"}, "select_on: 'tydi' is not one of the tasks"),
    ({"select_on": "afriqa"}, "select_on: 'afriqa' is a test split"),
    ({"xqg": {"enabled": True, "task": "afriqa", "select_on": "tydi-en-dev"}},
     "xqg.select_on: 'tydi-en-dev' is a test split"),
    ({"train": {"dev": "tydi-xx"}}, "methods.frozen: dev: 'tydi-xx' is no pair set"),
    # stage configs are built before the first stage: a typo fails at once, naming its key
    ({"methods": [{"name": "frozen"}, {"name": "lora", "train": {"learning_rate": 1e-3}}]},
     "methods.lora: TrainConfig: unknown key(s) ['learning_rate']"),
    ({"xqg": {"enabled": True, "task": "afriqa", "systems": ["frozen"],
              "generate": {"temprature": 0.7}}},
     "xqg.generate: GenerateConfig: unknown key(s) ['temprature']"),
    ({"xqg": {"enabled": True, "task": "afriqa", "systems": ["frozen"], "train": {"stepz": 5}}},
     "xqg.train: QGenTrainConfig: unknown key(s) ['stepz']"),
    # xQG's choices (the `best` system, the alpha) are never made on its test task
    ({"xqg": {"enabled": True, "task": "afriqa"}},
     "xqg.select_on: xQG chooses the `best` base system, which without select_on is chosen "
     "on the xQG task 'afriqa', a test split"),
    ({"xqg": {"enabled": True, "task": "afriqa", "systems": ["frozen"], "alphas": [0.1, 0.3]}},
     "xqg.select_on: xQG chooses one of 2 alphas, which without select_on"),
])
def test_a_bad_study_config_is_one_line_naming_its_key(tmp_path, over, key):
    """From the command line, before any folder is made or any data read."""
    import subprocess
    import sys

    config = tmp_path / "bad.yaml"
    write_json(config, {"tasks": [{"name": "afriqa"}, {"name": "tydi-mono", "label": "tydi-en-dev"}],
                        "seeds": [13], "methods": [{"name": "frozen"}, {"name": "lora"}],
                        "out": str(tmp_path / "out"), **over})
    proc = subprocess.run([sys.executable, "-m", "xlir", "study", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert key in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_xqg_gain_is_reported_at_the_alpha_the_held_out_task_chose(tmp_path):
    """decision.json's xqg rows: the augmented system at the dev-chosen alpha against its
    base on the xQG task, over all languages, those with generated questions and the others,
    and per language; a base for which dev chose alpha 0 gets one 'not augmented' row."""
    from xlir.report_decision import decision
    from xlir.results import _xqg_lines
    from xlir.storage import read_json

    root = write_study(tmp_path / "study", CORE)
    config = read_json(root / "config.resolved.json")
    config["xqg"] = {"enabled": True, "task": "afriqa", "select_on": "afriqa-dev",
                     "languages": ["hau_Latn", "yor_Latn"]}
    write_json(root / "config.resolved.json", config)
    base = read_json(root / "systems" / "frozen-s13" / "afriqa" / "metrics.json")["per_query"]["nDCG@10"]
    gain = {"hau_Latn": 0.05, "yor_Latn": 0.05}  # languages with generated questions gain
    augmented = {q: s + gain.get(q.rsplit("-", 1)[0], 0.0) for q, s in base.items()}
    write_json(root / "systems" / "xqg-frozen-s13-a0.1" / "afriqa" / "metrics.json",
               {**_metrics("xqg-frozen-s13-a0.1", "afriqa", augmented), "alpha": 0.1,
                "base_system": "frozen-s13"})
    write_json(root / "xqg" / "selection.json", {"select_on": "afriqa-dev", "systems": {
        "frozen-s13": {"alpha": 0.1, "scores": {"0": 0.5, "0.1": 0.6}},
        "lora-s13": {"alpha": 0.0, "scores": {"0": 0.5, "0.1": 0.4}}}})
    rows = decision(root)["xqg"]
    by = {(r["base"], r["grouping"], r["group"]): r for r in rows}
    assert by["lora-s13", "all", "all"]["verdict"] == "not augmented (alpha 0 chosen)"
    assert len([r for r in rows if r["base"] == "lora-s13"]) == 1
    generated, other = by["frozen-s13", "xqg", "generated"], by["frozen-s13", "xqg", "other"]
    assert generated["estimate"] == pytest.approx(0.05) and generated["verdict"] == "xQG helps"
    assert other["estimate"] == pytest.approx(0.0) and other["n_languages"] == 3
    assert by["frozen-s13", "all", "all"]["estimate"] == pytest.approx(0.02)  # 2 of 5 languages
    assert by["frozen-s13", "language", "fra_Latn"]["verdict"] == "no difference detectable"
    assert by["frozen-s13", "language", "hau_Latn"]["p_holm"] is not None
    lines = _xqg_lines(decision(root), "pretraining")
    assert "chosen on afriqa-dev (held out)" in lines[1]
    assert "| frozen-s13 | 0.1 | languages questions were generated in | 80 | +0.050 [+0.050, +0.050] |" in "\n".join(lines)
    assert "| lora-s13 | 0 | all | | | | not augmented (alpha 0 chosen) |" in lines


def test_a_rerun_is_compared_on_its_held_out_task_too(tmp_path):
    """compare_results checks the metrics of a task held out for a choice (role select) as it
    does every other: a rerun that chose on other dev scores does not reproduce the record."""
    import shutil

    from xlir.results import compare_results
    from xlir.storage import read_json

    record = write_study(tmp_path / "record", CORE)
    config = read_json(record / "config.resolved.json")
    config["tasks"].append({"name": "afriqa", "label": "afriqa-dev", "role": "select"})
    write_json(record / "config.resolved.json", config)
    scores = {f"hau_Latn-{i}": 0.5 for i in range(10)}
    write_json(record / "systems" / "lora-s13" / "afriqa-dev" / "metrics.json",
               _metrics("lora-s13", "afriqa-dev", scores))
    rerun = tmp_path / "rerun"
    shutil.copytree(record, rerun)
    assert compare_results(rerun, record) == []
    write_json(rerun / "systems" / "lora-s13" / "afriqa-dev" / "metrics.json",
               _metrics("lora-s13", "afriqa-dev", {**scores, "hau_Latn-3": 0.6}))
    diffs = compare_results(rerun, record)
    assert len(diffs) == 1 and diffs[0].startswith("afriqa-dev/lora-s13:"), diffs
