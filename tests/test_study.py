"""The whole study on tiny models and a tiny BEIR folder: every stage runs, a rerun skips
everything, a study killed midway resumes to the same numbers, and the report renders."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xlir.storage import write_json

DOCS = {
    "d1": ("Kano", "Kano birni ne a Najeriya"),
    "d2": ("Lagos", "a poet from Lagos wrote the book"),
    "d3": ("Nairobi", "the capital of Kenya is Nairobi"),
    "d4": ("River", "the river runs through the city"),
    "d5": ("War", "the war ended in the year"),
    "d6": ("Book", "the book was written by a poet"),
    "d7": ("Eko", "Ilu Eko wa ni Naijiria"),
    "d8": ("Kenya", "Nairobi ni mji mkuu wa Kenya"),
}
QUERIES = {  # qid: (text, lang, gold doc, split)
    "q1": ("where is Kano", "hau_Latn", "d1", "test"),
    "q2": ("who wrote the book", "yor_Latn", "d6", "test"),
    "q3": ("what is the capital of Kenya", "hau_Latn", "d3", "test"),
    "q4": ("where does the river run", "yor_Latn", "d4", "test"),
    "q5": ("when did the war end", "hau_Latn", "d5", "train"),
    "q6": ("a poet from Lagos", "yor_Latn", "d2", "train"),
    "q7": ("Ilu Eko", "yor_Latn", "d7", "train"),
    "q8": ("mji mkuu wa Kenya", "hau_Latn", "d8", "train"),
    "q9": ("the city river", "hau_Latn", "d4", "dev"),
    "q10": ("the poet book", "yor_Latn", "d6", "dev"),
}


def make_beir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as f:
        for did, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": did, "title": title, "text": text, "lang": "eng_Latn"}) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, (text, lang, _, _) in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text, "lang": lang}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    for split in ("train", "dev", "test"):
        rows = [f"{q}\t{d}\t1" for q, (_, _, d, s) in QUERIES.items() if s == split]
        (root / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def study_config(tmp: Path, beir: Path, encoder: Path, generator: Path) -> dict:
    return {
        "name": "tiny", "out": str(tmp / "study"), "encoder": str(encoder), "seeds": [1],
        "methods": [{"name": "frozen"}, {"name": "lora", "train": {"lr": 1e-3}},
                    {"name": "bitfit", "train": {"lr": 1e-3}}],
        "train": {"train": [str(beir)], "dev": str(beir), "max_pairs": 4, "max_dev_pairs": 2,
                  "epochs": 1, "batch_size": 2, "hard_negatives": 0, "eval_steps": 1,
                  "logging_steps": 1, "query_max_length": 16, "passage_max_length": 32},
        "tasks": [{"name": str(beir), "label": "tiny", "split": "test"}],
        "baselines": ["bm25", "hybrid"], "max_seq_length": 32, "batch_size": 4, "k": 10,
        "xqg": {"enabled": True, "task": "tiny", "systems": ["best"],
                "languages": ["hau_Latn", "yor_Latn"], "alphas": [0.1, 0.5],
                "generator": str(generator),
                "train": {"sources": [str(beir)], "eval_task": str(beir), "steps": 2,
                          "batch_size": 2, "max_passage_tokens": 24, "save_every": 1},
                "generate": {"max_new_tokens": 4, "max_passage_tokens": 24}},
    }


def run_study(config: Path, env: dict, kill_when=None) -> subprocess.CompletedProcess | None:
    cmd = [sys.executable, "-m", "xlir", "study", str(config)]
    if kill_when is None:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline:
        if kill_when():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return None
        time.sleep(0.05)
    pytest.fail("the study finished before the kill point was reached")


def metrics_of(root: Path) -> dict:
    out = {}
    for p in sorted(root.glob("systems/*/*/metrics.json")):
        m = json.loads(p.read_text())
        out[f"{m['system']}/{m['task']}"] = m["per_query"]
    return out


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory, tiny_st_encoder_dir, tiny_causal_lm_dir):
    tmp = tmp_path_factory.mktemp("study")
    beir = make_beir(tmp / "beir")
    config = tmp / "tiny.yaml"
    write_json(config, study_config(tmp, beir, tiny_st_encoder_dir, tiny_causal_lm_dir))
    env = {**os.environ, "XLIR_HOME": str(tmp / "home"), "PYTHONHASHSEED": "0"}
    proc = run_study(config, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, config, env, proc


def test_every_stage_writes_its_outputs(tiny_study):
    tmp, _, _, _ = tiny_study
    root = tmp / "study"
    systems = {p.parent.parent.name for p in root.glob("systems/*/tiny/metrics.json")}
    assert {"frozen-s1", "lora-s1", "bitfit-s1", "bm25", "hybrid-frozen-s1", "hybrid-lora-s1",
            "hybrid-bitfit-s1"} <= systems
    assert len([s for s in systems if s.startswith("xqg-")]) == 2
    for name in ("config.resolved.json", "environment.json", "study.json", "fertility.json",
                 "xqg/queries.jsonl", "xqg/quality.json", "report/index.html", "report/report.md"):
        assert (root / name).is_file(), name
    assert (root / "systems" / "lora-s1" / "model" / "xlir-model.json").is_file()
    rows = [json.loads(x) for x in (root / "xqg" / "queries.jsonl").read_text().splitlines()]
    assert len(rows) == len(DOCS) * 2  # every passage x 2 languages x 1 sample
    metrics = json.loads((root / "systems" / "bm25" / "tiny" / "metrics.json").read_text())
    assert set(metrics["per_language"]) == {"hau_Latn", "yor_Latn"}
    assert set(metrics["per_query"]["nDCG@10"]) == {"q1", "q2", "q3", "q4"}


def test_rerun_skips_every_stage_and_changes_nothing(tiny_study):
    tmp, config, env, _ = tiny_study
    before = metrics_of(tmp / "study")
    proc = run_study(config, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "already done, skipped" in proc.stderr
    assert not re.search(r"\] \S+ \S+ done \(", proc.stderr), "a stage ran again"
    assert metrics_of(tmp / "study") == before


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


@pytest.mark.parametrize("point", ["after-first-training", "after-first-metrics"])
def test_killed_study_resumes_to_the_same_numbers(tiny_study, tmp_path, point):
    tmp, config, env, _ = tiny_study
    reference = metrics_of(tmp / "study")
    data = json.loads(Path(config).read_text())
    data["out"] = str(tmp_path / "study")
    cfg2 = tmp_path / "tiny.yaml"
    write_json(cfg2, data)
    root = tmp_path / "study"
    if point == "after-first-training":
        def reached():
            return (root / "systems" / "lora-s1" / "model" / "xlir-model.json").exists()
    else:
        def reached():
            return len(list(root.glob("systems/*/tiny/metrics.json"))) >= 2
    run_study(cfg2, env, kill_when=reached)
    proc = run_study(cfg2, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = metrics_of(root)
    assert resumed.keys() == reference.keys()
    for key in reference:
        for measure, scores in reference[key].items():
            for qid, value in scores.items():
                assert resumed[key][measure][qid] == pytest.approx(value, abs=1e-6), (key, qid)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROBE = """<script>window.addEventListener('load', () => {
  const sizes = [...document.images].map(i => i.naturalWidth + 'x' + i.naturalHeight);
  const heads = [...document.querySelectorAll('h2')].map(h => h.textContent);
  document.title = 'PROBE|' + sizes.join(',') + '|' + heads.join(';');
});</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_a_real_browser(tiny_study, tmp_path):
    from xlir.report import SECTIONS

    tmp, _, _, _ = tiny_study
    page = (tmp / "study" / "report" / "index.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    profile = [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *CHROME_FLAGS, *profile, "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    title = re.search(r"<title>PROBE\|(.*?)\|(.*?)</title>", dom)
    assert title, dom[:2000]
    sizes = [s for s in title.group(1).split(",") if s]
    assert len(sizes) >= 3
    for size in sizes:
        w, h = (int(x) for x in size.split("x"))
        assert w > 100 and h > 100, sizes
    headings = title.group(2).split(";")
    for section in SECTIONS:
        assert section in headings, (section, headings)
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *CHROME_FLAGS, *profile, f"--screenshot={shot}",
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
