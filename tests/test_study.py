"""The whole study on tiny models and a tiny BEIR folder: every stage runs, a rerun skips
everything, a changed config or a second process is refused, and the report renders. Kills
at 10 points are in tests/reliability/test_kill_resume.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_study import DOCS, make_beir, metrics_of, run_study, tiny_setup

from xlir.storage import write_json


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory, tiny_st_encoder_dir, tiny_causal_lm_dir):
    tmp = tmp_path_factory.mktemp("study")
    config = tmp / "tiny.yaml"
    data, env = tiny_setup(tmp, tiny_st_encoder_dir, tiny_causal_lm_dir)
    write_json(config, data)
    proc = run_study(config, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, config, env, proc


def test_every_stage_writes_its_outputs(tiny_study):
    tmp, _, _, _ = tiny_study
    root = tmp / "study"
    systems = {p.parent.parent.name for p in root.glob("systems/*/tiny/metrics.json")}
    assert {"frozen-s1", "lora-s1", "bitfit-s1", "bm25", "hybrid-frozen-s1", "hybrid-lora-s1",
            "hybrid-bitfit-s1"} <= systems
    # xQG on the zero-shot model and the best tuned system (chosen on tiny-dev), 2 alphas each,
    # on the xQG task and on the task its alpha is chosen on.
    xqg = {s for s in systems if s.startswith("xqg-")}
    assert len(xqg) == 4 and {"xqg-frozen-s1-a0.1", "xqg-frozen-s1-a0.5"} <= xqg
    for name in xqg:
        assert (root / "systems" / name / "tiny-dev" / "metrics.json").is_file(), name
    quality = json.loads((root / "xqg" / "quality.json").read_text())["per_language"]
    assert {len(q["examples"]) for q in quality.values()} == {8}  # up to ten per language
    selection = json.loads((root / "xqg" / "selection.json").read_text())
    assert selection["select_on"] == "tiny-dev" and len(selection["systems"]) == 2
    for base, rec in selection["systems"].items():
        assert set(rec["scores"]) == {"0", "0.1", "0.5"}
        assert rec["scores"][f"{rec['alpha']:g}"] == max(rec["scores"].values())
    for name in ("config.resolved.json", "environment.json", "study.json", "fertility.json",
                 "xqg/queries.jsonl", "xqg/quality.json", "report/index.html", "report/report.md"):
        assert (root / name).is_file(), name
    assert (root / "systems" / "lora-s1" / "model" / "xlir-model.json").is_file()
    # The environment the study itself wrote names every dataset's licence, repo and commit.
    from xlir.data.registry import DATASETS
    data = json.loads((root / "environment.json").read_text())["data"]
    assert set(data) == set(DATASETS)
    for name, spec in DATASETS.items():
        assert data[name]["licence"] == spec.licence and data[name]["repo"], name
    rows = [json.loads(x) for x in (root / "xqg" / "queries.jsonl").read_text().splitlines()]
    assert len(rows) == len(DOCS) * 2  # every passage x 2 languages x 1 sample
    metrics = json.loads((root / "systems" / "bm25" / "tiny" / "metrics.json").read_text())
    assert set(metrics["per_language"]) == {"hau_Latn", "yor_Latn"}
    assert set(metrics["per_query"]["nDCG@10"]) == {"q1", "q2", "q3", "q4"}
    # The report records the seeds and the versions the numbers came from.
    from importlib.metadata import version

    report = (root / "report" / "report.md").read_text(encoding="utf-8")
    assert "Seeds: {'seeds': [1], 'sampling_seed': 0}" in report
    assert ("Dense systems and BM25 both read passages as '{title} {text}' on tasks that keep "
            "titles (tiny, tiny-dev)") in report
    assert "Each base system and its alpha were chosen on tiny-dev (held out from tiny)" in report
    # A task held out for a choice is in no table of the answer: no BM25 or hybrid run on it,
    # no decision row, no drift entry.
    assert not (root / "systems" / "bm25" / "tiny-dev").exists()
    assert not (root / "systems" / "hybrid-lora-s1" / "tiny-dev").exists()
    decision = json.loads((root / "report" / "decision.json").read_text())
    assert "tiny-dev" not in json.dumps(decision["answer"] + decision["delta"])
    # xQG in the decision table: each base system at the alpha tiny-dev chose, on tiny
    rows = decision["xqg"]
    assert {r["base"] for r in rows} == set(selection["systems"])
    for r in rows:
        assert r["task"] == "tiny" and r["select_on"] == "tiny-dev"
        assert r["alpha"] == selection["systems"][r["base"]]["alpha"]
    augmented = [r for r in rows if r["alpha"] > 0]
    assert all({"all", "xqg", "language"} <= {x["grouping"] for x in rows if x["base"] == r["base"]}
               for r in augmented)
    from xlir.results import _xqg_lines

    lines = _xqg_lines(decision, "pretraining")
    assert "chosen on tiny-dev (held out)" in lines[1] and len(lines) == 5 + len(
        [r for r in rows if r["grouping"] in ("all", "xqg", "pretraining", "language")])
    drift = json.loads((root / "drift.json").read_text())["systems"]
    assert drift and all("tiny-dev" not in tasks for tasks in drift.values())
    assert "Chosen: on tiny-dev." in report
    assert re.search(r"xQG generation: 16 questions for 8 passages in 2 languages in \d+ s", report)
    assert "### Generator training" in report
    for package in ("torch", "transformers", "sentence-transformers", "peft"):
        assert f"| {package} | {version(package)} |" in report, package


def test_each_system_says_what_it_is_and_the_report_reads_that(tiny_study, tmp_path):
    """systems/<name>/system.json: kind, method, label, seed, what it is built on, parameters;
    the report takes them (a renamed folder keeps its record's identity; a name alone is
    never parsed: a folder without a record or config entry is "other")."""
    tmp, _, _, _ = tiny_study
    root = tmp / "study" / "systems"
    record = {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/system.json")}
    assert set(record) == {p.parent.parent.name for p in root.glob("*/*/metrics.json")}
    lora = record["lora-s1"]
    model = json.loads((root / "lora-s1" / "model" / "xlir-model.json").read_text())
    assert (lora["kind"], lora["method"], lora["label"], lora["seed"], lora["family"]) == (
        "dense", "lora", "lora", 1, "core")
    assert lora["trainable_params"] == model["trainable_params"] > 0 and lora["lr"] > 0
    assert record["bm25"] == {"name": "bm25", "kind": "bm25"}
    assert (record["hybrid-lora-s1"]["kind"], record["hybrid-lora-s1"]["base"]) == ("hybrid", "lora-s1")
    xqg = record["xqg-frozen-s1-a0.5"]
    assert (xqg["kind"], xqg["base"], xqg["alpha"], xqg["method"]) == ("xqg", "frozen-s1", 0.5, "frozen")
    from xlir.report_files import StudyFiles

    copy = tmp_path / "study"
    shutil.copytree(tmp / "study", copy, ignore=shutil.ignore_patterns("embeddings", "model", "report"))
    (copy / "systems" / "lora-s1").rename(copy / "systems" / "tuned")
    data = json.loads((copy / "systems" / "tuned" / "system.json").read_text())
    write_json(copy / "systems" / "tuned" / "system.json", {**data, "name": "tuned"})
    for p in (copy / "systems" / "tuned").glob("*/metrics.json"):
        write_json(p, {**json.loads(p.read_text()), "system": "tuned"})
    shutil.copytree(copy / "systems" / "bm25", copy / "systems" / "bm25-s7")
    (copy / "systems" / "bm25-s7" / "system.json").unlink()
    for p in (copy / "systems" / "bm25-s7").glob("*/metrics.json"):
        write_json(p, {**json.loads(p.read_text()), "system": "bm25-s7"})
    files = StudyFiles(copy)
    tuned = files.systems["tuned"]
    assert (tuned.kind, tuned.method, tuned.label, tuned.seed) == ("dense", "lora", "lora", 1)
    assert (files.systems["bm25-s7"].kind, files.systems["bm25-s7"].seed) == ("other", None)


def test_rerun_skips_every_stage_and_changes_nothing(tiny_study):
    tmp, config, env, _ = tiny_study
    before = metrics_of(tmp / "study")
    proc = run_study(config, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "already done, skipped" in proc.stderr
    assert not re.search(r"\] \S+ \S+ done \(", proc.stderr), "a stage ran again"
    assert metrics_of(tmp / "study") == before


def test_stages_already_done_are_not_in_the_time_left(tiny_study):
    """A study grown or repaired in the middle of its plan (the record grown by a system whose
    stages come early) used to count every later, finished stage at the mean cost: with one
    early stage to rerun, the time left after it is ~0 s, not hours. (In the module's own
    folder: a study folder is not moved, its config records `out`.)"""
    tmp, config, env, _ = tiny_study
    before = metrics_of(tmp / "study")
    (tmp / "study/systems/frozen-s1/tiny/metrics.json").unlink()
    proc = run_study(config, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = re.findall(r"\] (\S+ \S+) done \(elapsed \d+s, ~(\d+)s left\)", proc.stderr)
    assert ran == [("retrieve frozen-s1/tiny", "0")], proc.stderr[-3000:]
    assert metrics_of(tmp / "study") == before


def test_a_study_grown_from_its_results_of_record_runs_nothing_again(tiny_study, tmp_path):
    """Results of record (xlir results) keep the metrics and each model's manifest, no weights
    and no runs. A study folder started as a copy of them (how results/answer grows by new
    systems) finds every stage done: no model trains again, xQG's candidates included (a
    manifest alone is a record, stages.is_record, read by no stage still to run)."""
    from xlir import stages
    from xlir.results import export_results

    tmp, config, env, _ = tiny_study
    grown = tmp_path / "grown"
    export_results(tmp / "study", grown)
    assert stages.is_record(grown / "systems" / "lora-s1" / "model")
    before = {p: p.read_bytes() for p in (grown / "systems").rglob("*") if p.is_file()}
    proc = run_study(config, env, "--out", str(grown), "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not re.search(r"\] \S+ \S+ done \(", proc.stderr), "a stage ran again"
    assert {p: p.read_bytes() for p in (grown / "systems").rglob("*") if p.is_file()} == before


def test_a_changed_config_is_refused_not_mixed_in(tiny_study, tmp_path):
    tmp, config, env, _ = tiny_study
    before = metrics_of(tmp / "study")
    data = json.loads(Path(config).read_text())
    data["max_seq_length"] = 16
    cfg = tmp_path / "changed.yaml"
    write_json(cfg, data)
    proc = run_study(cfg, env)
    assert proc.returncode == 2
    assert "another config (changed: max_seq_length)" in proc.stderr
    assert metrics_of(tmp / "study") == before


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROBE = """<script>window.addEventListener('load', () => {
  const sizes = [...document.images].map(i => i.naturalWidth + 'x' + i.naturalHeight);
  const heads = [...document.querySelectorAll('h2')].map(h => h.textContent);
  document.title = 'PROBE|' + sizes.join(',') + '|' + heads.join(';');
});</script></body>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser. Missing, the test errors where it is required (`make test` sets
    XLIR_REQUIRE_BROWSER=1 and `make browser` installs it), else skips: a report that was
    never rendered must not pass as tested. Listed first, it is checked before the study."""
    if CHROMIUM is None:
        missing = "Debian's chromium is not installed (`make browser` installs it as root)"
        if os.environ.get("XLIR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{missing}; XLIR_REQUIRE_BROWSER=1 requires it", pytrace=False)
        pytest.skip(missing)
    return CHROMIUM


def test_report_renders_in_a_real_browser(chromium, tiny_study, tmp_path):
    from xlir.report import SECTIONS

    tmp, _, _, _ = tiny_study
    page = (tmp / "study" / "report" / "index.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    profile = [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *CHROME_FLAGS, *profile, "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    title = re.search(r"<title>PROBE\|(.*?)\|(.*?)</title>", dom)
    assert title, dom[:2000]
    sizes = [s for s in title.group(1).split(",") if s]
    assert len(sizes) >= 2  # the parameters plot and the xQG alpha sweep (tiny-dev: no figures)
    for size in sizes:
        w, h = (int(x) for x in size.split("x"))
        assert w > 100 and h > 100, sizes
    headings = title.group(2).split(";")
    for section in SECTIONS:
        assert section in headings, (section, headings)
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *CHROME_FLAGS, *profile, f"--screenshot={shot}",
                    "--window-size=1200,2400", (tmp / "study" / "report" / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.05  # not a blank page


SOCKET_GUARD = """
import os, socket

_LOG = os.environ["XLIR_SOCKET_LOG"]
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _guard(original):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            with open(_LOG, "a") as f:
                f.write(f"{os.getpid()} {address!r}\\n")
            raise OSError("network blocked by xlir's test")
        return original(self, address)
    return connect


socket.socket.connect = _guard(_connect)
socket.socket.connect_ex = _guard(_connect_ex)
"""


def test_whole_pipeline_never_opens_a_network_connection(tiny_study, tmp_path):
    """Every process of a whole study (the study and what it spawns) runs with inet
    connections blocked and logged; nothing may even try."""
    tmp, config, env, _ = tiny_study
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(SOCKET_GUARD, encoding="utf-8")
    data = json.loads(Path(config).read_text())
    data["out"] = str(tmp_path / "study")
    cfg = tmp_path / "tiny.yaml"
    write_json(cfg, data)
    log = tmp_path / "sockets.log"
    log.touch()
    env = {**env, "PYTHONPATH": os.pathsep.join([str(guard), env.get("PYTHONPATH", "")]),
           "XLIR_SOCKET_LOG": str(log)}
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection("
                            "('127.0.0.1', 9), timeout=1)"], env=env, capture_output=True,
                           text=True)
    assert "network blocked" in probe.stderr  # the guard is active in child processes
    log.write_text("")
    proc = run_study(cfg, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert log.read_text() == ""
    assert (tmp_path / "study" / "report" / "index.html").is_file()


def test_one_study_process_per_folder(tiny_study):
    from xlir.storage import exclusive

    tmp, config, env, _ = tiny_study
    before = metrics_of(tmp / "study")
    with exclusive(tmp / "study" / ".lock", wait=False, what="test"):  # as a running study does
        proc = run_study(config, env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("xlir study: error: study folder ")
    assert "in use by another xlir process" in proc.stderr
    assert metrics_of(tmp / "study") == before


def test_report_never_replaces_a_folder_that_is_not_a_report(tiny_study, tmp_path):
    tmp, _, env, _ = tiny_study
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    cmd = [sys.executable, "-m", "xlir", "report", str(tmp / "study"), "--out", str(mine)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "not a report folder (holds notes.txt)" in proc.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    proc = subprocess.run(cmd[:-1] + [str(tmp_path / "new")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert oct((tmp_path / "new").stat().st_mode & 0o777) == "0o755"
    assert (tmp_path / "new" / "index.html").read_text(encoding="utf-8").endswith("</html>")


def test_a_study_that_failed_before_any_stage_takes_the_fixed_config(tmp_path, tiny_st_encoder_dir):
    from xlir.config import from_dict
    from xlir.errors import ConfigError, XlirError
    from xlir.study import Study, StudyConfig

    beir = make_beir(tmp_path / "beir")

    def study(task: str) -> Study:
        return Study(from_dict(StudyConfig, {"out": str(tmp_path / "study"),
                                             "encoder": str(tiny_st_encoder_dir),
                                             "tasks": [{"name": task, "label": "tiny"}]}))

    with pytest.raises(XlirError, match="nosuchtask"):  # a misspelt task: fails on loading it
        study("nosuchtask").run()
    assert (tmp_path / "study" / "config.resolved.json").is_file()
    study(str(beir))._check_same_config()  # nothing was computed: the fixed config is taken
    (tmp_path / "study" / "fertility.json").write_text("{}")  # once a stage has output, not
    with pytest.raises(ConfigError, match=r"another config \(changed: tasks \(the stored ones must stay"):
        study(str(beir))._check_same_config()


def test_labels_never_lead_outside_the_study_folder(tmp_path):
    from xlir.config import from_dict
    from xlir.errors import ConfigError
    from xlir.study import StudyConfig

    beir = str(tmp_path / "data" / "mybeir")
    cfg = from_dict(StudyConfig, {"tasks": [{"name": beir + "/"}],
                                  "xqg": {"enabled": True, "task": beir + "/",
                                          "systems": ["frozen"]}})
    # A task given by path was labelled by the path: its runs went to systems/<s>/<path>,
    # which for an absolute path is the data folder itself.
    assert cfg.tasks[0].label == "mybeir" and cfg.xqg.task == "mybeir"
    for bad in ({"tasks": [{"name": "afriqa", "label": "../../elsewhere"}]},
                {"tasks": [{"name": "afriqa"}], "methods": [{"name": "lora", "label": "a/b"}]},
                {"tasks": [{"name": ".."}]}):
        with pytest.raises(ConfigError, match="cannot name a folder"):
            from_dict(StudyConfig, bad)


def test_titles_false_gives_every_system_the_passage_text_alone(tmp_path, tiny_st_encoder_dir):
    from xlir.config import from_dict
    from xlir.study import Study, StudyConfig

    beir = make_beir(tmp_path / "beir")
    cfg = from_dict(StudyConfig, {"out": str(tmp_path / "study"), "encoder": str(tiny_st_encoder_dir),
                                  "tasks": [{"name": str(beir), "label": "tiny", "titles": False}]})
    study = Study(cfg)
    task = study.task(cfg.tasks[0])
    assert {p["title"] for p in task.corpus.values()} == {""}
    assert task.corpus["d1"]["text"] == DOCS["d1"][1]
    summary = json.loads((tmp_path / "study" / "tasks" / "tiny.json").read_text())
    assert summary["meta"]["titles"] == "dropped"


def test_an_option_added_since_a_study_was_run_does_not_refuse_it(tmp_path, tiny_st_encoder_dir):
    from xlir.config import from_dict, to_dict
    from xlir.errors import ConfigError
    from xlir.study import Study, StudyConfig

    data = {"out": str(tmp_path / "study"), "encoder": str(tiny_st_encoder_dir),
            "tasks": [{"name": "afriqa"}]}
    old = json.loads(json.dumps(to_dict(from_dict(StudyConfig, data))))
    del old["tasks"][0]["titles"]  # written before `titles` existed
    root = tmp_path / "study"
    root.mkdir()
    write_json(root / "config.resolved.json", old)
    (root / "fertility.json").write_text("{}")  # a stage has output: configs are compared
    Study(from_dict(StudyConfig, data))._check_same_config()  # the default: the same study
    with pytest.raises(ConfigError, match=r"changed: tasks"):
        Study(from_dict(StudyConfig, {**data, "tasks": [{"name": "afriqa", "titles": False}]})
              )._check_same_config()


def test_a_study_from_before_bf16_encoding_is_refused_not_mixed(tmp_path, tiny_st_encoder_dir):
    from xlir.config import from_dict, to_dict
    from xlir.errors import ConfigError
    from xlir.study import Study, StudyConfig

    data = {"out": str(tmp_path / "study"), "encoder": str(tiny_st_encoder_dir),
            "tasks": [{"name": "afriqa"}]}
    old = json.loads(json.dumps(to_dict(from_dict(StudyConfig, data))))
    del old["precision"]  # written before `precision` existed: its systems encoded in fp32
    root = tmp_path / "study"
    root.mkdir()
    write_json(root / "config.resolved.json", old)
    (root / "fertility.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"another config \(changed: precision\)"):
        Study(from_dict(StudyConfig, data))._check_same_config()
    Study(from_dict(StudyConfig, {**data, "precision": "fp32"}))._check_same_config()


def test_report_says_when_no_system_reads_titles():
    from types import SimpleNamespace

    from xlir.report_sections import _titles_note

    files = SimpleNamespace(config={"tasks": [{"name": "afriqa", "label": "a", "titles": False}]})
    assert _titles_note(files) == "Every system reads passages as their text alone (titles: false)."
    files = SimpleNamespace(config={"tasks": [{"name": "afriqa", "label": "a"}]})
    assert _titles_note(files).startswith("Dense systems and BM25 both read passages as "
                                          "'{title} {text}' on tasks that keep titles (a)")


def test_the_tiny_study_report_says_why_it_has_no_answer(tiny_study):
    # The tiny study trains no full fine-tuning: there is no answer to state, and it says so.
    tmp, _, _, _ = tiny_study
    report = tmp / "study" / "report"
    decision = json.loads((report / "decision.json").read_text())
    assert decision["answer"] == [] and decision["missing"][0].startswith(
        "tiny: no full fine-tuning run, so no answer")
    assert (report / "decision.csv").read_text().startswith("family,method,task,grouping,group,")
    assert "tiny: no full fine-tuning run, so no answer" in (report / "report.md").read_text()


def test_xqg_alpha_is_chosen_on_the_held_out_task_only(tmp_path):
    """select() reads the select_on task alone: the xQG task's scores (here the opposite
    order) never enter; ties go to the smaller alpha; alpha 0 (no augmentation) can win."""
    from xlir.stages_xqg import select

    def metrics(system, task, value):
        write_json(tmp_path / "systems" / system / task / "metrics.json",
                   {"primary": "RR@10", "macro": {"RR@10": value}})

    dev = {"m-s1": 0.30, "xqg-m-s1-a0.1": 0.35, "xqg-m-s1-a0.5": 0.35,
           "f-s1": 0.40, "xqg-f-s1-a0.1": 0.39, "xqg-f-s1-a0.5": 0.20}
    for system, value in dev.items():
        metrics(system, "dev", value)
        metrics(system, "test", 1.0 - value)
    out = select(tmp_path, ["m-s1", "f-s1"], [0.1, 0.5], "dev")
    assert out["select_on"] == "dev"
    assert out["systems"]["m-s1"]["alpha"] == 0.1  # tie with 0.5: the smaller
    assert out["systems"]["f-s1"]["alpha"] == 0.0  # augmentation hurt on dev
    assert out["systems"]["f-s1"]["scores"] == {"0": 0.4, "0.1": 0.39, "0.5": 0.2}


def test_a_study_evaluates_user_parallel_text(tmp_path, tiny_st_encoder_dir):
    """A bitext task in a study config: labelled bitext-SRC-TGT, evaluated for the dense
    system and BM25 with per-language metrics; a bad line in the user's file stops `xlir
    study` with one line naming the file and line, before any stage."""
    from xlir.config import from_dict
    from xlir.study import StudyConfig

    (tmp_path / "hau.txt").write_text("Kano birni ne\nIna ruwa\nYaya gari\n", encoding="utf-8")
    (tmp_path / "eng.txt").write_text("Kano is a city\nWhere is water\nHow is the town\n",
                                      encoding="utf-8")
    task = f"bitext:{tmp_path / 'hau.txt'},{tmp_path / 'eng.txt'},hau,eng"
    config = {"name": "bitext", "out": str(tmp_path / "study"), "encoder": str(tiny_st_encoder_dir),
              "methods": [{"name": "frozen"}], "tasks": [{"name": task}], "seeds": [1],
              "baselines": ["bm25"], "max_seq_length": 32, "batch_size": 4, "k": 3}
    assert from_dict(StudyConfig, config).tasks[0].label == "bitext-hau-eng"
    write_json(tmp_path / "bitext.yaml", config)
    env = {**os.environ, "XLIR_HOME": str(tmp_path / "home")}
    proc = run_study(tmp_path / "bitext.yaml", env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for system in ("frozen-s1", "bm25"):
        m = json.loads((tmp_path / "study" / "systems" / system / "bitext-hau-eng"
                        / "metrics.json").read_text())
        assert set(m["per_language"]) == {"hau_Latn"} and m["n_queries"] == 3, system
    (tmp_path / "eng.txt").write_text("Kano is a city\n\nHow is the town\n", encoding="utf-8")
    config["out"] = str(tmp_path / "study2")
    write_json(tmp_path / "bitext.yaml", config)
    proc = run_study(tmp_path / "bitext.yaml", env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "eng.txt, line 2: empty text" in lines[-1]
    assert not list((tmp_path / "study2").glob("systems/*/*/metrics.json"))
