"""Query-generation speed: shared-prefix batched decoding vs a per-prompt `generate` loop vs
padded batches of whole prompts, fp32 and bf16, in one run; plus a greedy identity check.

    .venv/bin/python benchmarks/bench_qgen.py --model DIR [--passages 4] [--new-tokens 28]
    .venv/bin/python benchmarks/bench_qgen.py --langid     # language-ID accuracy only
    .venv/bin/python benchmarks/bench_qgen.py --quality RUN --passages 12   # fp32 vs bf16

Every method writes exactly `--new-tokens` tokens per question (stops disabled) with top-p 0.95
inside the top-64 logits, 9 AfriQA languages x 1 sample per passage, passages from AfriQA test
(passage cut to --max-passage-tokens). Each (method, dtype) runs in its own process so its peak
RSS is its own. Wall-clock queries/s depends on what else runs on the machine; CPU seconds per
query (all threads) does much less. Prints a markdown table; paste it into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

LANGS = ["hau_Latn", "ibo_Latn", "kin_Latn", "swh_Latn", "twi_Latn", "yor_Latn", "zul_Latn",
         "bem_Latn", "fon_Latn"]


def _passages(n: int):
    from xlir.data.tasks import load_task

    corpus = load_task("afriqa", "test").corpus
    return [(d, c["title"], c["text"]) for d, c in list(corpus.items())[:n]]


def _warm_up(model, tok, passages, cfg) -> None:
    """One short untimed generation: the first bf16 calls pay one-off kernel set-up."""
    import dataclasses

    from xlir import qgen

    qgen.generate_questions(model, tok, passages[:1], dataclasses.replace(cfg, max_new_tokens=4))


def _run(method: str, dtype: str, args) -> dict:
    import torch

    from xlir import qgen

    torch.set_num_threads(args.threads)
    model, tok, _ = qgen.load_generator(args.model, dtype)
    cfg = qgen.GenerateConfig(languages=LANGS, max_new_tokens=args.new_tokens, top_p=0.95,
                              top_k=64, max_passage_tokens=args.max_passage_tokens,
                              passages_per_batch=args.passages_per_batch, dtype=dtype)
    n = args.passages if method != "per-prompt" else max(1, args.passages // 4)
    passages = _passages(n)
    prompts = [qgen.passage_ids(tok, t, x, cfg.max_passage_tokens) + qgen.tail_ids(tok, lang)
               for _, t, x in passages for lang in LANGS]
    kw = dict(do_sample=True, top_p=0.95, top_k=64, max_new_tokens=args.new_tokens,
              min_new_tokens=args.new_tokens, pad_token_id=tok.pad_token_id)
    _warm_up(model, tok, passages, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        if method == "shared-prefix":
            for i in range(0, len(passages), cfg.passages_per_batch):
                qgen.generate_questions(model, tok, passages[i:i + cfg.passages_per_batch], cfg,
                                        stops=[])
        elif method == "per-prompt":
            for p in prompts:
                model.generate(input_ids=torch.tensor([p]), **kw)
        else:  # padded batches of whole prompts, the usual batched `generate`
            for i in range(0, len(prompts), args.batch):
                ids, mask = qgen._left_pad(prompts[i:i + args.batch], tok.pad_token_id)
                model.generate(input_ids=ids, attention_mask=mask, **kw)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"method": method, "dtype": dtype, "queries": len(prompts),
            "qps": len(prompts) / seconds, "cpu_per_query": cpu / len(prompts),
            "prompt_tokens": sum(map(len, prompts)) / len(prompts),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _greedy_check(args, dtype: str) -> str:
    import torch

    from xlir import qgen

    torch.set_num_threads(args.threads)
    model, tok, _ = qgen.load_generator(args.model, dtype)
    cfg = qgen.GenerateConfig(languages=LANGS, decoding="greedy", max_new_tokens=args.new_tokens,
                              max_passage_tokens=args.max_passage_tokens)
    stops = qgen.stop_token_ids(tok)
    passages = _passages(2)
    rows = qgen.generate_questions(model, tok, passages, cfg, stops)
    same = 0
    for row in rows:
        _, t, x = next(p for p in passages if p[0] == row["doc_id"])
        ids = qgen.passage_ids(tok, t, x, cfg.max_passage_tokens) + qgen.tail_ids(tok, row["lang"])
        out = model.generate(input_ids=torch.tensor([ids]), do_sample=False, eos_token_id=stops,
                             max_new_tokens=args.new_tokens, pad_token_id=tok.pad_token_id)
        ref = [i for i in out[0, len(ids):].tolist() if i not in stops]
        same += ref == row["token_ids"]
    return f"{dtype}: {same}/{len(rows)} greedy rows identical to per-prompt generate"


def langid_accuracy() -> None:
    """Char n-gram classifier on SIB-200 test (whole, first 6 words) and on AfriQA test
    questions (real questions); CLD3 (cld3-py) on the same questions where it has the
    language."""
    import numpy as np

    from xlir import langid
    from xlir.data.tasks import afriqa_rows

    clf = langid.default_classifier()
    full, short = langid.sib_accuracy(clf), langid.sib_accuracy(clf, words=6)
    questions: dict[str, list[str]] = {}
    for row in afriqa_rows("test"):
        questions.setdefault(row["lang"], []).append(row["question"])
    print(f"classifier: {len(clf.languages)} languages, {len(clf.vocabulary)} n-grams")
    print("| language | SIB test | SIB test, 6 words | AfriQA test questions (n) | CLD3 same |")
    print("|---|---|---|---|---|")
    for lang in clf.languages:
        qs = questions.get(lang, [])
        ours = f"{np.mean([p == lang for p in clf.predict(qs)]):.3f} ({len(qs)})" if qs else ""
        cld3 = ""
        if qs and lang.split("_")[0] in langid.CLD3_CODES:
            cld3 = f"{np.mean([langid.cld3_language(q) == lang.split('_')[0] for q in qs]):.3f}"
        print(f"| {lang} | {full[lang]:.3f} | {short[lang]:.3f} | {ours} | {cld3} |")
    macro = [f"{np.mean(list(acc.values())):.3f}" for acc in (full, short)]
    print(f"| macro | {macro[0]} | {macro[1]} | | |")


def _generate_natural(args, dtype: str, decoding: str) -> dict:
    """Questions as `xlir qgen generate` writes them (stops at eos/newline), timed."""
    import torch

    from xlir import qgen

    torch.set_num_threads(args.threads)
    model, tok, _ = qgen.load_generator(args.quality, dtype)
    cfg = qgen.GenerateConfig(languages=LANGS, decoding=decoding, max_new_tokens=args.new_tokens,
                              max_passage_tokens=args.max_passage_tokens, dtype=dtype,
                              passages_per_batch=args.passages_per_batch)
    passages, rows = _passages(args.passages), []
    stops = qgen.stop_token_ids(tok)
    _warm_up(model, tok, passages, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(passages), cfg.passages_per_batch):
        rows += qgen.generate_questions(model, tok, passages[i:i + cfg.passages_per_batch], cfg,
                                        stops)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"rows": rows, "qps": len(rows) / wall, "cpu_per_query": cpu / len(rows),
            "new_tokens": sum(len(r["token_ids"]) for r in rows) / len(rows)}


def quality_by_dtype(args) -> None:
    """fp32 vs bf16 with a trained generator: identical questions, language-ID agreement."""
    import numpy as np

    from xlir import langid

    clf = langid.default_classifier()
    out = {(d, m): _in_child(_generate_natural, args, d, m)
           for m in ("greedy", "sample") for d in ("float32", "bfloat16")}
    print("| decoding | dtype | queries | queries/s (wall) | CPU s / query | new tokens | "
          "langid agreement (macro) |")
    print("|---|---|---|---|---|---|---|")
    for (dtype, decoding), r in out.items():
        q = langid.query_quality(r["rows"], clf)
        agree = np.mean([v["langid_agreement"] for v in q.values()])
        print(f"| {decoding} | {dtype} | {len(r['rows'])} | {r['qps']:.2f} | "
              f"{r['cpu_per_query']:.3f} | {r['new_tokens']:.1f} | {agree:.3f} |")
    for decoding in ("greedy", "sample"):
        a, b = out[("float32", decoding)]["rows"], out[("bfloat16", decoding)]["rows"]
        same = sum(x["question"] == y["question"] for x, y in zip(a, b))
        print(f"{decoding}: {same}/{len(a)} questions identical in fp32 and bf16")


def _in_child(fn, *a):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, a)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--passages", type=int, default=4)
    ap.add_argument("--passages-per-batch", type=int, default=2)
    ap.add_argument("--batch", type=int, default=18, help="prompts per padded batch")
    ap.add_argument("--new-tokens", type=int, default=28)
    ap.add_argument("--max-passage-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1,
                    help="1 avoids OpenMP stragglers when other processes share the cores")
    ap.add_argument("--methods", default="shared-prefix,padded,per-prompt")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--langid", action="store_true", help="language-ID accuracy only")
    ap.add_argument("--quality", help="a trained run folder: fp32 vs bf16 questions")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.langid:
        return langid_accuracy()
    if args.quality:
        return quality_by_dtype(args)
    load0 = f"{os.getloadavg()[0]:.1f}"
    for dtype in args.dtypes.split(","):
        print(_in_child(_greedy_check, args, dtype), flush=True)
    results = [_in_child(_run, m, d, args) for d in args.dtypes.split(",")
               for m in args.methods.split(",")]
    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.1f}; threads {args.threads}")
    print("| method | dtype | queries | queries/s (wall) | CPU s / query | peak RSS GB |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['method']} | {r['dtype']} | {r['queries']} | {r['qps']:.2f} | "
              f"{r['cpu_per_query']:.3f} | {r['peak_rss_gb']:.2f} |")
    print(f"mean prompt length: {results[0]['prompt_tokens']:.0f} tokens")


if __name__ == "__main__":
    main()
