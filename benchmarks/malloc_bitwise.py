"""Does xlir.malloc change what training computes? Full fine-tuning of the packaged encoder,
3 steps of 8 real TyDi English pairs (1 BM25 hard negative), once with glibc's own malloc
(`XLIR_MALLOC=default`) and once as the trainer runs it (freed memory kept), in bf16 and fp32,
each run in its own process; prints whether the trained weights are bitwise equal.

    .venv/bin/python benchmarks/malloc_bitwise.py   # ~4 min on 2 idle cores
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def train_once(out: str, precision: str) -> None:
    from xlir import train as xt
    from xlir.data.tasks import load_pairs

    pairs = load_pairs("tydi-en", "train")[:24]
    cfg = xt.TrainConfig(method="full", max_steps=3, batch_size=8, dev=None, lr=2e-5,
                         hard_negatives=1, batch_sampler="batch_sampler", query_max_length=64,
                         passage_max_length=128, eval_steps=10_000, logging_steps=1, seed=1,
                         load_best=False, precision=precision)
    xt.train(cfg, out, train_pairs=pairs, dev_pairs=[])


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.safetensors"))}


def main() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("bf16", "fp32"):
            found = {}
            for malloc in ("default", "keep"):
                out = Path(tmp) / f"{precision}-{malloc}"
                subprocess.run([sys.executable, __file__, "--worker", str(out), precision],
                               check=True, capture_output=True, env={**env, "XLIR_MALLOC": malloc})
                found[malloc] = digests(out)
            same = found["default"] == found["keep"] and bool(found["keep"])
            print(f"{precision}: trained weights bitwise equal: {same} "
                  f"({', '.join(f'{k} {v[:12]}' for k, v in found['keep'].items())})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        train_once(sys.argv[2], sys.argv[3])
    else:
        main()
