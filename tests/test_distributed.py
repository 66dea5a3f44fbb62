"""The same `train()` under `torchrun --nproc_per_node=2` (gloo, CPU) follows the loss curve of
one process with the same global batch.

Setup: tiny encoder with dropout 0 (so both runs compute the same function), 2 ranks x batch 4
with `gather_across_devices=True` vs 1 process x batch 8, the plain batch sampler (rank r takes
batches r, r+2, ... of size 4: the same 8 pairs per step as the single process), 1 BM25 hard
negative, 4 steps. With gathering, each rank's loss sees all 16 candidates, as the single
process does; DDP averages the two ranks' gradients, which equals the single process's mean.
Measured on the 2-core CPU machine: the logged per-step losses (the trainer rounds them to 4
decimals) are identical, and the final LoRA weights differ by 2.1e-6 to 1.6e-5 (float32
reduction order, grown by AdamW's normalised step); the test allows 1e-4 on both. About 45 s.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = """
import json, sys
from xlir.train import TrainConfig, train
model, out, batch, gather = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
pairs = json.load(open(sys.argv[5]))
cfg = TrainConfig(model=model, method="lora", max_steps=4, batch_size=batch, lr=1e-2,
                  logging_steps=1, dev=None, hard_negatives=1, batch_sampler="batch_sampler",
                  gather_across_devices=gather, query_max_length=16, passage_max_length=32,
                  seed=5, warmup_ratio=0.0, eval_steps=100,
                  precision="fp32")  # bf16 rounds differently per batch shape: 0.03 in loss
train(cfg, out, train_pairs=pairs, dev_pairs=[])
"""


@pytest.fixture(scope="module")
def no_dropout_model(tiny_st_encoder_dir, tmp_path_factory) -> Path:
    import shutil

    path = tmp_path_factory.mktemp("tiny-st-nodrop") / "st"
    shutil.copytree(tiny_st_encoder_dir, path)
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return path


def run(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def losses(run_dir: Path) -> list[float]:
    log = json.loads((run_dir / "train_metrics.json").read_text())["log_history"]
    return [e["loss"] for e in log if "loss" in e]


def test_two_processes_match_one(no_dropout_model, tmp_path):
    words = ["river", "book", "war", "capital", "poet", "city", "year", "Kenya", "Lagos", "Kano",
             "Nairobi", "Najeriya"]
    combos = list(itertools.permutations(words, 2))[::4][:32]
    pairs = [{"qid": f"q{i}", "query": f"where is the {a} of {b}", "doc_id": f"d{i}", "title": a,
              "text": f"the {a} runs through the {b}"} for i, (a, b) in enumerate(combos)]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    (tmp_path / "runner.py").write_text(RUNNER)
    common = [str(no_dropout_model)]
    run([sys.executable, "runner.py", *common, "one", "8", "0", "pairs.json"], tmp_path)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "runner.py", *common, "two", "4", "1", "pairs.json"], tmp_path)
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 4
    assert one[-1] != one[0]  # the curve moves, so agreement is not trivial
    assert max(abs(a - b) for a, b in zip(one, two)) < 1e-4, (one, two)  # logged to 4 decimals
    from safetensors.torch import load_file

    w1, w2 = (load_file(str(tmp_path / r / "adapter" / "adapter_model.safetensors")) for r in ("one", "two"))
    diff = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    print(f"max |weight difference| after 4 steps: {diff:.2e}")
    # AdamW divides by the gradient's running size, so float32 reduction-order differences on
    # near-zero gradients grow into step-sized ones: measured 2.1e-6 and 1.6e-5 on this machine
    # in two runs of the same code (lr 1e-2, 4 steps: a wrong gradient moves weights ~1e-2).
    assert diff < 1e-4
    manifest = json.loads((tmp_path / "two" / "xlir-model.json").read_text())
    assert manifest["method"] == "lora"
