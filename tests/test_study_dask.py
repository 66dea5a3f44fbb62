"""The study grid on dask.distributed (xlir.study_dask), on the tiny study (every stage kind,
xQG included): a LocalCluster of two workers gives the serial run's per-query metrics (1e-6)
and byte-identical generated questions; a worker killed in the middle of a training stage is
replaced, the stage rerun, and the numbers are still the serial run's; an unreachable
scheduler is one line naming it, and nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny_study import assert_same_metrics, metrics_of, run_study, tiny_setup

from xlir.storage import write_json

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_st_encoder_dir, tiny_causal_lm_dir):
    tmp = tmp_path_factory.mktemp("dask")
    config, env = tiny_setup(tmp, tiny_st_encoder_dir, tiny_causal_lm_dir)
    return tmp, config, env


def _config(tmp: Path, config: dict, name: str) -> Path:
    write_json(tmp / f"{name}.yaml", {**config, "out": str(tmp / name)})
    return tmp / f"{name}.yaml"


def _study(config: Path, env: dict, *args: str) -> list[str]:
    return [sys.executable, "-m", "xlir", "study", str(config), "--no-report", *args]


@pytest.fixture(scope="module")
def serial(setup):
    tmp, config, env = setup
    proc = run_study(_config(tmp, config, "serial"), env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "serial"


def _same_as(root: Path, reference: Path) -> None:
    assert json.loads((root / "study.json").read_text())["finished"] is True
    assert_same_metrics(metrics_of(root), metrics_of(reference))
    assert (root / "xqg" / "queries.jsonl").read_bytes() == \
        (reference / "xqg" / "queries.jsonl").read_bytes()


def test_two_local_workers_give_the_serial_numbers(setup, serial):
    tmp, config, env = setup
    proc = subprocess.run(_study(_config(tmp, config, "local2"), env, "--executor", "dask-local:2"),
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted" in proc.stderr and "2 Dask workers" in proc.stderr
    _same_as(tmp / "local2", serial)
    # every stage of the plan was reported by the client as its future finished
    status = json.loads((tmp / "local2" / "study.json").read_text())
    assert status["stages_done"] == status["stages_total"]


def _workers(pid: int) -> list:
    import psutil

    return [p for p in psutil.Process(pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())]


def test_a_worker_killed_mid_training_is_replaced_and_the_numbers_hold(setup, serial):
    tmp, config, env = setup
    cfg = {**config, "train": {**config["train"], "epochs": 3}}  # a longer stage to land in
    reference = tmp / "serial3"
    proc = run_study(_config(tmp, cfg, "serial3"), env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp / "killed"
    run = subprocess.Popen(_study(_config(tmp, cfg, "killed"), env, "--executor", "dask-local:2"),
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, deadline = [], time.time() + 600
    try:
        while not killed and time.time() < deadline and run.poll() is None:
            for system in ("lora-s1", "bitfit-s1"):
                model = root / "systems" / system / "model"
                if (model / "train_config.json").exists() and not (model / "xlir-model.json").exists():
                    for worker in _workers(run.pid):  # the one training is among them
                        worker.kill()
                        killed.append((system, worker.pid))
                    break
            time.sleep(0.01)
        out, err = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    assert killed, "no training stage was caught in progress"
    assert run.returncode == 0, err[-3000:]
    assert "Restarting worker" in err  # the nanny replaced the killed workers
    _same_as(root, reference)


def test_an_unreachable_scheduler_is_one_line_and_nothing_is_written(setup):
    tmp, config, env = setup
    path = _config(tmp, config, "unreachable")
    proc = subprocess.run(_study(path, env, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"),
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "tcp://127.0.0.1:9" in lines[0] and "scheduler" in lines[0], proc.stderr
    assert not (tmp / "unreachable").exists()


def test_executor_options_and_resources_are_checked(setup):
    from xlir.errors import ConfigError
    from xlir.study import Study, load_study_config
    from xlir.study_dask import DaskExecutor

    assert DaskExecutor.from_cli("serial", None) is None
    assert DaskExecutor.from_cli("dask-local:3", None).local_workers == 3
    for executor, scheduler in (("dask", None), ("dask-local:x", None), ("serial", "tcp://h:1"),
                                ("spark", None)):
        with pytest.raises(ConfigError):
            DaskExecutor.from_cli(executor, scheduler)
    tmp, config, _ = setup
    with pytest.raises(ConfigError, match="resources.encode"):
        load_study_config(_config(tmp, {**config, "resources": {"encode": {"GPU": 1}}}, "bad"))
    study = Study(load_study_config(_config(tmp, {**config, "resources": {"train": {"GPU": 1}}}, "ok")))
    stages = {s.key: s for s in study.stages()}
    # the graph: retrieval waits for its training, fusion for both runs; the generator trains
    # from the start, an augmented index waits for the questions and for the runs of the
    # systems it may augment (`best`: every candidate), the dev choice for the dev indexes
    assert stages["retrieve:lora-s1/tiny"].deps == ("train:lora-s1",)
    assert set(stages["fuse:hybrid-lora-s1/tiny"].deps) == {"retrieve:lora-s1/tiny", "retrieve:bm25/tiny"}
    assert stages["qgen-train:generator"].deps == ()
    assert stages["qgen-generate:queries"].deps == ("qgen-train:generator",)
    assert set(stages["augment:best/a0.5/tiny-dev"].deps) == {"qgen-generate:queries"} | {
        f"retrieve:{s}-s1/{t}" for s in ("lora", "bitfit") for t in ("tiny", "tiny-dev")}
    assert set(stages["augment:frozen/a0.1/tiny"].deps) == {
        "qgen-generate:queries", "retrieve:frozen-s1/tiny", "retrieve:frozen-s1/tiny-dev"}
    assert set(stages["xqg-select:selection"].deps) == {
        f"augment:{s}/a{a}/tiny-dev" for s in ("frozen", "best") for a in (0.1, 0.5)}
    assert [s.kind for s in stages.values()].count("train") == 3
    from xlir.study_dask import _resources

    assert _resources({"xqg": {"GPU": 1}}, "augment") == {"GPU": 1}  # every xQG kind
    assert _resources({"xqg": {"GPU": 1}, "qgen-train": {"GPU": 2}}, "qgen-train") == {"GPU": 2}
    assert _resources({"train": {"GPU": 1}}, "retrieve") is None
