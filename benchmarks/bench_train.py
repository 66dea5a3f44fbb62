"""Training throughput, memory and mixed precision of every tuning method on the packaged encoder.

    .venv/bin/python benchmarks/bench_train.py [--steps 6] [--batch 16] [--seq 128]
        [--methods full lora ...] [--repeats 2] [--threads 2] [--precision-steps 30]

Each measurement runs in its own subprocess (clean peak RSS): `xlir.train.train` for a method
on real TyDi English pairs (batch `--batch`, 1 BM25 hard negative, passages cut to `--seq`
tokens), and a bare sentence-transformers loop (SentenceTransformerTrainer +
MultipleNegativesRankingLoss on the same dataset and model, nothing of xlir in the loop).
examples/s counts query/positive pairs over steps 2..N (the first step is warm-up).

Three parts, each printed as a table:
1. every method in xlir's default precision (bf16 autocast): examples/s and peak RSS;
2. bf16 vs fp32 for the `--ratio-methods` (full, lora): `--precision-steps` steps each, runs
   interleaved (fp32, bf16, fp32, bf16, ...) so machine load hits both alike; examples/s
   ratio, English dev nDCG@10 after the same steps (TyDi English dev, 200 pairs, encoded in
   fp32 for both so only the training arithmetic differs) and both loss curves;
3. xlir vs the bare sentence-transformers loop (same precision), the wrapper's overhead.
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


def worker(kind: str, method: str, precision: str, steps: int, batch: int, seq: int,
           dev: bool) -> dict:
    from xlir import train as xt

    timer = step_timer()
    pairs = pairs_dataset(steps * batch)
    lr = 2e-5 if method == "full" else 3e-4
    cfg = xt.TrainConfig(method=method, max_steps=steps, batch_size=batch, dev=None, lr=lr,
                         hard_negatives=1, batch_sampler="batch_sampler", query_max_length=seq,
                         passage_max_length=seq, eval_steps=10_000, logging_steps=1, seed=1,
                         load_best=False, precision=precision,
                         madx_mlm_steps=2)  # the language adapter's MLM is not measured here
    dev_score = None
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "xlir":
            build = xt.build_trainer

            def build_with_timer(*args, **kwargs):
                trainer = build(*args, **kwargs)
                trainer.add_callback(timer)
                return trainer

            xt.build_trainer = build_with_timer
            xt.train(cfg, tmp, train_pairs=pairs, dev_pairs=[])
            if dev:
                dev_score = dev_ndcg(tmp)
            losses = [e["loss"] for e in json.load(open(f"{tmp}/train_metrics.json"))["log_history"]
                      if "loss" in e]
        else:
            bare_loop(cfg, pairs, tmp, timer)
            losses = []
    ends = timer.ends
    return {"kind": kind, "method": method, "precision": precision,
            "examples_per_s": (len(ends) - 1) * batch / (ends[-1] - ends[0]),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "dev_ndcg@10": dev_score, "losses": losses}


def dev_ndcg(run_dir: str) -> float:
    """nDCG@10 of the tuned model (fp32 encoding) on the 440 TyDi English dev questions
    against their 429 passages plus 1,000 train passages never trained on (the last ones of
    the split): the dev pool alone sits near 0.99 and could not show a difference."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from xlir.data.tasks import load_pairs
    from xlir.encoder import passage_text
    from xlir.tuning import load_tuned

    dev, train = load_pairs("tydi-en", "dev"), load_pairs("tydi-en", "train")[-1000:]
    queries = {p["qid"]: p["query"] for p in dev}
    corpus = {p["doc_id"]: passage_text(p) for p in dev + train}
    relevant: dict[str, set[str]] = {}
    for p in dev:
        relevant.setdefault(p["qid"], set()).add(p["doc_id"])
    st = load_tuned(run_dir)
    st.max_seq_length = 256
    evaluator = InformationRetrievalEvaluator(
        queries, corpus, relevant, name="dev", query_prompt_name="query",
        corpus_prompt_name="passage", ndcg_at_k=[10], show_progress_bar=False, batch_size=32)
    return float(evaluator(st)["dev_cosine_ndcg@10"])


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
        bf16=cfg.precision == "bf16",
        report_to="none", save_strategy="no", logging_steps=1, dataloader_drop_last=True,
        prompts={"query": "query: ", "positive": "passage: ", "negative_1": "passage: "})
    trainer = SentenceTransformerTrainer(model=st, args=args, train_dataset=build_dataset(pairs, 1),
                                         loss=MultipleNegativesRankingLoss(st, scale=20.0),
                                         callbacks=[timer])
    trainer.train()


def run_one(kind: str, method: str, a, precision: str = "bf16", steps: int | None = None,
            dev: bool = False, malloc: str = "keep") -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, method, precision,
           "--steps", str(steps or a.steps), "--batch", str(a.batch), "--seq", str(a.seq)]
    cmd += ["--dev"] if dev else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(a.threads),
           "XLIR_MALLOC": malloc}
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
    p.add_argument("--precision-steps", type=int, default=30,
                   help="steps of each bf16-vs-fp32 run (part 2); 0 skips part 2")
    p.add_argument("--skip-bare", action="store_true", help="skip part 3")
    p.add_argument("--threads", type=int, default=2, help="torch threads per run")
    p.add_argument("--malloc", nargs="*", default=["keep"], choices=["keep", "default"],
                   help="part 2 under each: keep = xlir.malloc keeps freed memory (the trainer's "
                        "default), default = glibc's own (XLIR_MALLOC=default)")
    p.add_argument("--worker", nargs=3, metavar=("KIND", "METHOD", "PRECISION"),
                   help=argparse.SUPPRESS)
    p.add_argument("--dev", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker, a.steps, a.batch, a.seq, a.dev)))
        return
    print(f"batch {a.batch}, seq {a.seq}, torch threads {a.threads}, {os.cpu_count()} cores, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    rows = {m: run_one("xlir", m, a) for m in a.methods}
    print(f"\n1. every method, bf16 autocast, {a.steps} steps")
    print("| method | examples/s | peak RSS MB |\n|---|---|---|")
    for m, r in rows.items():
        print(f"| {m} | {r['examples_per_s']:.2f} | {r['peak_rss_mb']:.0f} |" if "error" not in r
              else f"| {m} | failed: {r['error']} | |")
    if a.precision_steps > 0:
        compare_precision(a)
    if a.skip_bare:
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        return
    ratios = {}
    for m in a.ratio_methods:
        xs, bs = [], []
        for _ in range(a.repeats):  # interleaved, so load changes hit both
            bs.append(run_one("bare", m, a))
            xs.append(run_one("xlir", m, a))
        ratios[m] = (xs, bs)
    print(f"\n3. xlir vs a bare sentence-transformers loop, bf16, {a.steps} steps")
    for m, (xs, bs) in ratios.items():
        x = statistics.median(r["examples_per_s"] for r in xs)
        b = statistics.median(r["examples_per_s"] for r in bs)
        print(f"{m}: xlir {x:.2f} ex/s vs bare sentence-transformers {b:.2f} ex/s: ratio {x / b:.3f}"
              f" (runs xlir {[round(r['examples_per_s'], 2) for r in xs]}, "
              f"bare {[round(r['examples_per_s'], 2) for r in bs]})")

    print(f"load average at end {os.getloadavg()[0]:.2f}")


def compare_precision(a) -> None:
    """Part 2: bf16 autocast vs fp32 training, interleaved, same steps and data; under each
    `--malloc` setting (interleaved too)."""
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for i in range(a.repeats):
        for m in a.ratio_methods:
            for malloc in a.malloc:
                for precision in ("fp32", "bf16"):
                    runs.setdefault((m, malloc, precision), []).append(run_one(
                        "xlir", m, a, precision, a.precision_steps, dev=i == 0, malloc=malloc))
    print(f"\n2. bf16 autocast vs fp32 training, {a.precision_steps} steps, {a.repeats} "
          "interleaved runs each; dev = TyDi English dev nDCG@10 after training (fp32 encoding)")
    print("| method | malloc | fp32 ex/s | bf16 ex/s | speed-up | fp32 dev | bf16 dev | "
          "dev delta | peak RSS MB fp32 / bf16 |\n|---|---|---|---|---|---|---|---|---|")
    for m in a.ratio_methods:
        for malloc in a.malloc:
            f, b = runs[(m, malloc, "fp32")], runs[(m, malloc, "bf16")]
            if any("error" in r for r in f + b):
                error = next(r["error"] for r in f + b if "error" in r)
                print(f"| {m} | {malloc} | failed: {error} |")
                continue
            fs = statistics.median(r["examples_per_s"] for r in f)
            bs = statistics.median(r["examples_per_s"] for r in b)
            fd, bd = f[0]["dev_ndcg@10"], b[0]["dev_ndcg@10"]
            print(f"| {m} | {malloc} | {fs:.2f} | {bs:.2f} | {bs / fs:.2f}x | {fd:.4f} | "
                  f"{bd:.4f} | "
                  f"{bd - fd:+.4f} | {max(r['peak_rss_mb'] for r in f):.0f} / "
                  f"{max(r['peak_rss_mb'] for r in b):.0f} |")
    for m in a.ratio_methods:
        for malloc in a.malloc:
            for precision in ("fp32", "bf16"):
                r = runs[(m, malloc, precision)][0]
                if "error" not in r:
                    print(f"loss {m} {malloc} {precision}: "
                          + " ".join(f"{x:.3f}" for x in r["losses"]))


if __name__ == "__main__":
    main()
