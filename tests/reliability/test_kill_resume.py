"""Kill-anywhere resume: `xlir study` is killed with SIGKILL at 10 points (model preparation,
data fetch, training, a checkpoint write, encoding, metrics, generator training, generation,
indexing, report) and run again with the same command. Every rerun must finish, reproduce
the per-query metrics of an uninterrupted run (to 1e-6: also the determinism check), and
leave no temporary or torn file behind.

The kill is real: tests/reliability/killer.py arms one point in an `xlir` process, which
sends itself SIGKILL there (no `finally` or atexit code runs). Each case first checks that
the killed run reached its point and left the state that point should leave, so a case
cannot pass by killing too early or not at all.

Eight points run the tiny study of tests/tiny_study.py on the tiny fixture models; model
preparation and data fetch need the packaged encoder and the mirrored AmQA (marked `real`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_study import assert_same_metrics, metrics_of, run_study, tiny_setup

from xlir.storage import is_temporary, write_json

KILLER = Path(__file__).with_name("killer.py")


def run_killed(point: str, config: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(KILLER), point, "study", str(config)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == -signal.SIGKILL, (
        f"{point}: the study was not killed (exit {proc.returncode}); stderr:\n{proc.stderr[-3000:]}")
    return proc


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if is_temporary(p.name)]


def assert_complete(root: Path) -> None:
    """Nothing torn or temporary is left, every JSON file parses, the study says finished."""
    assert temporaries(root) == []
    for path in root.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    assert json.loads((root / "study.json").read_text())["finished"] is True
    assert (root / "report" / "index.html").read_text(encoding="utf-8").endswith("</html>")
    assert not list(root.rglob("checkpoints")), "training checkpoints outlived their run"


# ---- the tiny study: 8 points ----------------------------------------------------------------
def _lora_checkpoint(root: Path) -> Path:
    return root / "systems" / "lora-s1" / "model" / "checkpoints" / "checkpoint-1"


def _torn_file(root: Path, pattern: str) -> bool:
    return any(is_temporary(p.name) for p in root.glob(pattern))


# What each point must have left when the process died (proof it died there).
LEFT_BEHIND = {
    "training": lambda root: (_lora_checkpoint(root) / "trainer_state.json").is_file()
    and not (root / "systems" / "lora-s1" / "model" / "xlir-model.json").exists(),
    "checkpoint-write": lambda root: (_lora_checkpoint(root) / "xlir-trainable.safetensors").is_file()
    and not (_lora_checkpoint(root) / "trainer_state.json").exists(),
    "encoding": lambda root: _torn_file(root, "systems/frozen-s1/embeddings/**/.*"),
    # the first run written is bm25's (the study runs the baselines first, then each seed)
    "metrics": lambda root: any(not (p.parent / "metrics.json").exists()
                                for p in root.glob("systems/*/tiny/run.trec")),
    "generator-training": lambda root: (root / "xqg" / "generator" / "checkpoint" / "state.json").is_file()
    and not (root / "xqg" / "generator" / "adapter").exists(),
    "generation": lambda root: len((root / "xqg" / "queries.jsonl").read_text().splitlines()) == 4
    and not (root / "xqg" / "queries.done.json").exists(),
    "indexing": lambda root: any((root / "xqg" / "embeddings").rglob("*.npy"))
    and not list(root.glob("systems/xqg-*/tiny/metrics.json")),
    "report": lambda root: json.loads((root / "study.json").read_text())["finished"]
    and _torn_file(root, ".report.*") and not (root / "report").exists(),
}


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory, tiny_st_encoder_dir, tiny_causal_lm_dir):
    """The uninterrupted tiny study, in its own folder."""
    tmp = tmp_path_factory.mktemp("kill-reference")
    config, env = tiny_setup(tmp, tiny_st_encoder_dir, tiny_causal_lm_dir)
    path = tmp / "tiny.yaml"
    write_json(path, config)
    proc = run_study(path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, env, metrics_of(tmp / "study")


def test_two_uninterrupted_runs_give_the_same_numbers(tiny_reference, tmp_path):
    """Determinism: the same config and seed on CPU, another folder, the same numbers."""
    config, env, reference = tiny_reference
    path = tmp_path / "tiny.yaml"
    write_json(path, {**config, "out": str(tmp_path / "study")})
    proc = run_study(path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_metrics(metrics_of(tmp_path / "study"), reference)
    generated = Path(config["out"]) / "xqg" / "queries.jsonl"
    assert (tmp_path / "study" / "xqg" / "queries.jsonl").read_bytes() == generated.read_bytes()


@pytest.mark.parametrize("point", list(LEFT_BEHIND))
def test_killed_tiny_study_resumes_to_the_same_numbers(tiny_reference, tmp_path, point):
    config, env, reference = tiny_reference
    root = tmp_path / "study"
    path = tmp_path / "tiny.yaml"
    write_json(path, {**config, "out": str(root)})
    run_killed(point, path, env)
    assert LEFT_BEHIND[point](root), f"{point}: the kill did not leave what this point leaves"
    proc = run_study(path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_metrics(metrics_of(root), reference)
    generated = Path(config["out"]) / "xqg" / "queries.jsonl"  # the same questions, too
    assert (root / "xqg" / "queries.jsonl").read_bytes() == generated.read_bytes()
    assert_complete(root)


# ---- the packaged encoder and mirrored AmQA: model preparation and data fetch ----------------
REAL_CONFIG = {
    "name": "kill-real", "encoder": "multilingual-e5-small", "seeds": [1],
    "methods": [{"name": "frozen"}], "baselines": ["bm25"], "k": 10, "batch_size": 8,
    "max_seq_length": 64,
    "tasks": [{"name": "amqa", "split": "test", "max_queries_per_language": 4, "distractors": 12}],
}


@pytest.fixture(scope="module")
def real_reference(tmp_path_factory):
    """The uninterrupted study on the prepared encoder, with a fresh data cache."""
    from xlir.models import prepare_encoder

    prepare_encoder()  # the shared model cache (a no-op when `make models` ran)
    tmp = tmp_path_factory.mktemp("kill-real-reference")
    path = tmp / "real.yaml"
    write_json(path, {**REAL_CONFIG, "out": str(tmp / "study")})
    env = {**os.environ, "XLIR_DATA_CACHE": str(tmp / "data"), "PYTHONHASHSEED": "0"}
    proc = run_study(path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return metrics_of(tmp / "study")


REAL_POINTS = ["model-preparation", "data-fetch"]


@pytest.mark.real
@pytest.mark.parametrize("point", REAL_POINTS)
def test_killed_study_resumes_through_preparation_and_fetch(real_reference, tmp_path, point,
                                                            monkeypatch):
    env = {**os.environ, "XLIR_DATA_CACHE": str(tmp_path / "data"), "PYTHONHASHSEED": "0"}
    if point == "model-preparation":  # a model cache of its own: the study prepares the encoder
        env["XLIR_MODEL_CACHE"] = str(tmp_path / "models")
    cache = Path(env.get("XLIR_MODEL_CACHE") or env["XLIR_DATA_CACHE"])
    path = tmp_path / "real.yaml"
    write_json(path, {**REAL_CONFIG, "out": str(tmp_path / "study")})
    run_killed(point, path, env)
    torn = temporaries(cache)
    assert torn, f"{point}: the kill left no temporary in {cache}"
    proc = run_study(path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_metrics(metrics_of(tmp_path / "study"), real_reference)
    assert_complete(tmp_path / "study")
    if point == "model-preparation":
        assert temporaries(cache) == [], "the killed preparation's folder was not removed"
        assert "left by a killed preparation" in proc.stderr
    else:
        from xlir.data.fetch import is_cached

        monkeypatch.setenv("XLIR_DATA_CACHE", env["XLIR_DATA_CACHE"])
        assert is_cached("amqa", verify=True)  # every file there, with its pinned sha256
