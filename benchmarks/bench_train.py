"""Training throughput and memory of every tuning method on the packaged encoder.

    .venv/bin/python benchmarks/bench_train.py [--steps 6] [--batch 16] [--seq 128]
        [--methods full lora ...] [--repeats 2] [--threads 1]

Each measurement runs in its own subprocess (clean peak RSS): `xlir.train.train` for a method
on real TyDi English pairs (batch `--batch`, 1 BM25 hard negative, passages cut to `--seq`
tokens, no dev evaluation), and a bare sentence-transformers loop (SentenceTransformerTrainer
+ MultipleNegativesRankingLoss on the same dataset and model, nothing of xlir in the loop).
examples/s counts query/positive pairs over steps 2..N (the first step is warm-up). Prints a
markdown table and the xlir / bare throughput ratio for LoRA and full fine-tuning, repeats
interleaved so machine load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

METHODS = ["full", "bitfit", "lora", "dora", "ia3", "prefix", "prompt", "bottleneck", "madx"]


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    return StepTimer()


def pairs_dataset(n: int):
    from xlir.data.tasks import load_pairs

    return load_pairs("tydi-en", "train")[:n]


def worker(kind: str, method: str, steps: int, batch: int, seq: int) -> dict:
    from xlir import train as xt

    timer = step_timer()
    pairs = pairs_dataset(steps * batch)
    cfg = xt.TrainConfig(method=method, max_steps=steps, batch_size=batch, dev=None, lr=1e-4,
                         hard_negatives=1, batch_sampler="batch_sampler", query_max_length=seq,
                         passage_max_length=seq, eval_steps=10_000, logging_steps=1, seed=1,
                         madx_mlm_steps=2)  # the language adapter's MLM is not measured here
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "xlir":
            build = xt.build_trainer

            def build_with_timer(*args, **kwargs):
                trainer = build(*args, **kwargs)
                trainer.add_callback(timer)
                return trainer

            xt.build_trainer = build_with_timer
            xt.train(cfg, tmp, train_pairs=pairs, dev_pairs=[])
        else:
            bare_loop(cfg, pairs, tmp, timer)
    ends = timer.ends
    return {"kind": kind, "method": method,
            "examples_per_s": (len(ends) - 1) * batch / (ends[-1] - ends[0]),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bare_loop(cfg, pairs, out, timer) -> None:
    """sentence-transformers as its docs show it; only the model setup is shared with xlir."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import (SentenceTransformerTrainer,
                                                            SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    from xlir import tuning
    from xlir.models import resolve_encoder
    from xlir.train import build_dataset

    set_seed(cfg.seed)
    st = SentenceTransformer(str(resolve_encoder()), device="cpu")
    st.max_seq_length = cfg.passage_max_length
    st = tuning.apply_method(st, cfg.method_config)
    args = SentenceTransformerTrainingArguments(
        output_dir=out, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr, warmup_ratio=cfg.warmup_ratio, seed=cfg.seed, use_cpu=True,
        report_to="none", save_strategy="no", logging_steps=1, dataloader_drop_last=True,
        prompts={"query": "query: ", "positive": "passage: ", "negative_1": "passage: "})
    trainer = SentenceTransformerTrainer(model=st, args=args, train_dataset=build_dataset(pairs, 1),
                                         loss=MultipleNegativesRankingLoss(st, scale=20.0),
                                         callbacks=[timer])
    trainer.train()


def run_one(kind: str, method: str, a) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, method, "--steps", str(a.steps),
           "--batch", str(a.batch), "--seq", str(a.seq)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(a.threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"kind": kind, "method": method, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--ratio-methods", nargs="*", default=["lora", "full"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per run (default 1: on a shared 2-core machine two "
                   "spinning threads are several times slower than one)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "METHOD"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker, a.steps, a.batch, a.seq)))
        return
    rows = {m: run_one("xlir", m, a) for m in a.methods}
    ratios = {}
    for m in a.ratio_methods:
        xs, bs = [], []
        for _ in range(a.repeats):  # interleaved, so load changes hit both
            bs.append(run_one("bare", m, a))
            xs.append(run_one("xlir", m, a))
        ratios[m] = (xs, bs)
    print(f"\nbatch {a.batch}, seq {a.seq}, {a.steps} steps, torch threads {a.threads}, {os.cpu_count()} cores")
    print("| method | examples/s | peak RSS MB |\n|---|---|---|")
    for m, r in rows.items():
        print(f"| {m} | {r['examples_per_s']:.2f} | {r['peak_rss_mb']:.0f} |" if "error" not in r
              else f"| {m} | failed: {r['error']} | |")
    for m, (xs, bs) in ratios.items():
        x = statistics.median(r["examples_per_s"] for r in xs)
        b = statistics.median(r["examples_per_s"] for r in bs)
        print(f"{m}: xlir {x:.2f} ex/s vs bare sentence-transformers {b:.2f} ex/s: ratio {x / b:.3f}"
              f" (runs xlir {[round(r['examples_per_s'], 2) for r in xs]}, "
              f"bare {[round(r['examples_per_s'], 2) for r in bs]})")


if __name__ == "__main__":
    main()
