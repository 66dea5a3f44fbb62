"""Query-generation speed: xlir's shared-prefix decoder with each row's output cut to its
language's vocabulary, against Hugging Face `generate` on the same prompts with a logits
processor allowing the same ids (padded batches, and a per-prompt loop), in one run; plus a
greedy identity check of the two.

    .venv/bin/python benchmarks/bench_qgen.py [--model DIR] [--passages 8] [--new-tokens 28]
    .venv/bin/python benchmarks/bench_qgen.py --model RUN --natural   # real stops, langid
    .venv/bin/python benchmarks/bench_qgen.py --langid     # language-ID accuracy only
    .venv/bin/python benchmarks/bench_qgen.py --quality RUN --passages 12   # fp32 vs bf16

Methods: `xlir` (generate_questions, vocabulary=language, the default), `xlir-full` (the same
decoder, whole vocabulary), `hf-padded` (left-padded batches of whole prompts through
`generate`), `per-prompt` (one `generate` call per prompt). Without --natural every method
writes exactly `--new-tokens` tokens per question (stops off); with it, questions end at eos or
a newline. Top-p 0.95 inside the top-64 logits, 9 AfriQA languages x 1 sample per passage,
passages from AfriQA dev. Vocabularies leave out every AfriQA dev and test question and
passage. Each
(method, dtype) runs in its own process so its peak RSS is its own. Prints a markdown table.
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

    corpus = load_task("afriqa", "dev").corpus  # nothing here is tuned, but keep off test
    return [(d, c["title"], c["text"]) for d, c in list(corpus.items())[:n]]


def _warm_up(model, tok, passages, cfg, scores) -> None:
    """One short untimed generation: the first bf16 calls pay one-off kernel set-up."""
    import dataclasses

    from xlir import qgen

    qgen.generate_questions(model, tok, passages[:1], dataclasses.replace(cfg, max_new_tokens=4),
                            scores=scores)


def _vocabularies(tok, stops, strength: float):
    from xlir import qgen
    from xlir.data.monolingual import evaluated_texts
    from xlir.data.tasks import load_task

    exclude = evaluated_texts([load_task("afriqa", "test"), load_task("afriqa", "dev")])
    vocab = qgen.language_vocabularies(tok, LANGS, stops, strength, exclude)
    return {lang: v["scores"] for lang, v in vocab.items()}


def _processor(rows_scores, prompt_width: int, no_repeat: int):
    """Logits processors doing what xlir's decoder does: add each row's scores, and ban a
    token that would repeat an n-gram of the row's new tokens (those after `prompt_width`, the
    left-padded prompt)."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    table = torch.stack(rows_scores) if rows_scores[0] is not None else None

    class Rules(LogitsProcessor):
        def __call__(self, input_ids, scores):
            if table is not None:  # in float32, as xlir adds them (bf16 would round them)
                scores = scores.float() + table
            n = no_repeat
            for r, row in enumerate(input_ids[:, prompt_width:].tolist()):
                if n and len(row) >= n - 1:
                    tail = row[len(row) - n + 1:]
                    for j in range(len(row) - n + 1):
                        if row[j:j + n - 1] == tail:
                            scores[r, row[j + n - 1]] = float("-inf")
            return scores

    return LogitsProcessorList([Rules()])


def _row_scores(tok, scores, passage, lang):
    from xlir.qgen_vocab import passage_name_ids, row_scores

    return row_scores(scores[lang], passage_name_ids(tok, passage[1], passage[2]))


def _run(method: str, dtype: str, args) -> dict:
    import torch

    from xlir import qgen, qgen_decode

    torch.set_num_threads(args.threads)
    model, tok, _ = qgen.load_generator(args.model, dtype)
    cfg = qgen.GenerateConfig(languages=LANGS, max_new_tokens=args.new_tokens, top_p=0.95,
                              top_k=64, max_passage_tokens=args.max_passage_tokens,
                              passages_per_batch=args.passages_per_batch, dtype=dtype)
    n = args.passages if method != "per-prompt" else max(1, args.passages // 4)
    passages = _passages(n)
    all_stops = qgen.stop_token_ids(tok)
    stops = all_stops if args.natural else []
    scores = None if method == "xlir-full" else _vocabularies(tok, all_stops, args.bias)
    prompts = [(qgen.passage_ids(tok, t, x, cfg.max_passage_tokens) + qgen.tail_ids(tok, lang),
                _row_scores(tok, scores, (d, t, x), lang) if scores else None)
               for d, t, x in passages for lang in LANGS]
    kw = dict(do_sample=True, top_p=0.95, top_k=64, max_new_tokens=args.new_tokens,
              pad_token_id=tok.pad_token_id)
    kw.update(eos_token_id=all_stops) if args.natural else kw.update(
        min_new_tokens=args.new_tokens)
    _warm_up(model, tok, passages, cfg, scores)
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        if method.startswith("xlir"):
            for i in range(0, len(passages), cfg.passages_per_batch):
                rows += qgen.generate_questions(model, tok, passages[i:i + cfg.passages_per_batch],
                                                cfg, stops=stops, scores=scores)
        elif method == "per-prompt":
            for ids, keep in prompts:
                model.generate(input_ids=torch.tensor([ids]), **kw,
                               logits_processor=_processor([keep], len(ids),
                                                           cfg.no_repeat_ngram))
        else:  # padded batches of whole prompts, the usual batched `generate`
            for i in range(0, len(prompts), args.batch):
                chunk = prompts[i:i + args.batch]
                ids, mask = qgen_decode.left_pad([p for p, _ in chunk], tok.pad_token_id)
                model.generate(input_ids=ids, attention_mask=mask, **kw,
                               logits_processor=_processor([k for _, k in chunk], ids.shape[1],
                                                           cfg.no_repeat_ngram))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"method": method, "dtype": dtype, "queries": len(prompts),
            "qps": len(prompts) / seconds, "cpu_per_query": cpu / len(prompts),
            "prompt_tokens": sum(len(p) for p, _ in prompts) / len(prompts),
            "new_tokens": (sum(len(r["token_ids"]) for r in rows) / len(rows) if rows
                           else None),
            "rows": [{k: r[k] for k in ("doc_id", "lang", "question")} for r in rows],
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _greedy_check(args, dtype: str) -> str:
    """Greedy rows of xlir (language scores) vs per-prompt `generate` adding the same scores."""
    import torch

    from xlir import qgen

    torch.set_num_threads(args.threads)
    model, tok, _ = qgen.load_generator(args.model, dtype)
    cfg = qgen.GenerateConfig(languages=LANGS, decoding="greedy", max_new_tokens=args.new_tokens,
                              max_passage_tokens=args.max_passage_tokens)
    stops = qgen.stop_token_ids(tok)
    scores = _vocabularies(tok, stops, args.bias)
    passages = _passages(2)
    rows = qgen.generate_questions(model, tok, passages, cfg, stops, scores)
    same = 0
    for row in rows:
        p = next(p for p in passages if p[0] == row["doc_id"])
        ids = qgen.passage_ids(tok, p[1], p[2], cfg.max_passage_tokens) + qgen.tail_ids(
            tok, row["lang"])
        out = model.generate(input_ids=torch.tensor([ids]), do_sample=False, eos_token_id=stops,
                             max_new_tokens=args.new_tokens, pad_token_id=tok.pad_token_id,
                             logits_processor=_processor(
                                 [_row_scores(tok, scores, p, row["lang"])], len(ids),
                                 cfg.no_repeat_ngram))
        ref = [i for i in out[0, len(ids):].tolist() if i not in stops]
        same += ref == row["token_ids"]
    return (f"{dtype}: {same}/{len(rows)} greedy rows (language scores, bias {args.bias}) "
            "identical to per-prompt generate with the same logits processor")


def bias_sweep(args) -> None:
    """Language-ID agreement (ours, CLD3), duplicates and repeated words of sampled questions
    at each bias strength, on AfriQA dev passages: how `language_bias` was chosen (the weakest
    strength with every language >= 0.90)."""
    import torch

    from xlir import langid, qgen

    torch.set_num_threads(args.threads)
    model, tok, _ = qgen.load_generator(args.model, "bfloat16")
    stops = qgen.stop_token_ids(tok)
    passages = _passages(args.passages)
    clf = langid.default_classifier()
    print("| bias | vocabulary | macro agreement | lowest language | CLD3 macro | duplicates | "
          "repeated words | q/s |")
    print("|---|---|---|---|---|---|---|---|")
    for strength in [None] + [float(x) for x in args.sweep.split(",")]:
        scores = None if strength is None else _vocabularies(tok, stops, strength)
        cfg = qgen.GenerateConfig(languages=LANGS, max_new_tokens=args.new_tokens,
                                  max_passage_tokens=args.max_passage_tokens, dtype="bfloat16")
        rows, t0 = [], time.perf_counter()
        for i in range(0, len(passages), args.passages_per_batch):
            rows += qgen.generate_questions(model, tok, passages[i:i + args.passages_per_batch],
                                            cfg, stops, scores)
        qps = len(rows) / (time.perf_counter() - t0)
        q = langid.query_quality(rows, clf)
        agree = {lang: v["langid_agreement"] for lang, v in q.items()}
        cld3 = [v["cld3_agreement"] for v in q.values() if v["cld3_agreement"] is not None]
        low = min(agree, key=agree.get)
        print(f"| {'-' if strength is None else strength} | "
              f"{'full' if strength is None else 'language'} | "
              f"{sum(agree.values()) / len(agree):.3f} | {low} {agree[low]:.2f} | "
              f"{sum(cld3) / len(cld3):.3f} | "
              f"{sum(v['duplicate_rate'] for v in q.values()) / len(q):.3f} | "
              f"{sum(v['repetition_rate'] for v in q.values()) / len(q):.3f} | {qps:.1f} |",
              flush=True)
        print("  " + "; ".join(f"{lang} {v:.2f}" for lang, v in agree.items()), flush=True)
        print("  e.g. " + " / ".join(r["question"] for r in rows[:3]), flush=True)


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
    _warm_up(model, tok, passages, cfg, None)
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
    ap.add_argument("--passages", type=int, default=8)
    ap.add_argument("--passages-per-batch", type=int, default=4)
    ap.add_argument("--batch", type=int, default=18, help="prompts per padded batch")
    ap.add_argument("--new-tokens", type=int, default=28)
    ap.add_argument("--max-passage-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2,
                    help="1 avoids OpenMP stragglers when other processes share the cores")
    ap.add_argument("--methods", default="xlir,xlir-full,hf-padded")
    ap.add_argument("--dtypes", default="bfloat16")
    ap.add_argument("--bias", type=float, default=0.5, help="language_bias of the xlir method")
    ap.add_argument("--sweep", help="comma-separated bias strengths: fidelity per strength")
    ap.add_argument("--natural", action="store_true",
                    help="questions stop at eos/newline (a trained --model); language-ID too")
    ap.add_argument("--langid", action="store_true", help="language-ID accuracy only")
    ap.add_argument("--quality", help="a trained run folder: fp32 vs bf16 questions")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.langid:
        return langid_accuracy()
    if args.quality:
        return quality_by_dtype(args)
    if args.sweep:
        return bias_sweep(args)
    load0 = f"{os.getloadavg()[0]:.1f}"
    for dtype in args.dtypes.split(","):
        print(_in_child(_greedy_check, args, dtype), flush=True)
    results = [_in_child(_run, m, d, args) for d in args.dtypes.split(",")
               for m in args.methods.split(",")]
    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.1f}; threads "
          f"{args.threads}; {'questions stop at eos/newline' if args.natural else 'stops off'}")
    print("| method | dtype | queries | queries/s (wall) | x hf-padded | CPU s / query | "
          "new tokens | peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|")
    ref = {r["dtype"]: r["qps"] for r in results if r["method"] == "hf-padded"}
    for r in results:
        ratio = f"{r['qps'] / ref[r['dtype']]:.2f}" if r["dtype"] in ref else ""
        new = f"{r['new_tokens']:.1f}" if r["new_tokens"] else str(args.new_tokens)
        print(f"| {r['method']} | {r['dtype']} | {r['queries']} | {r['qps']:.2f} | {ratio} | "
              f"{r['cpu_per_query']:.3f} | {new} | {r['peak_rss_gb']:.2f} |")
    print(f"mean prompt length: {results[0]['prompt_tokens']:.0f} tokens")
    if args.natural:
        _fidelity(results)


def _fidelity(results) -> None:
    """Language-ID agreement (ours; CLD3 where it knows the language) and duplicates of the
    questions each xlir method wrote, per language."""
    from xlir import langid

    clf = langid.default_classifier()
    print("| method | language | questions | language-ID agreement | CLD3 agrees | duplicates |"
          " identified as | example |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if not r["rows"]:
            continue
        for lang, v in sorted(langid.query_quality(r["rows"], clf).items()):
            cld3 = "-" if v["cld3_agreement"] is None else f"{v['cld3_agreement']:.2f}"
            print(f"| {r['method']} | {lang} | {v['rows']} | {v['langid_agreement']:.2f} | "
                  f"{cld3} | {v['duplicate_rate']:.2f} | {v['identified_as']} | "
                  f"{v['examples'][0] if v['examples'] else ''} |")


if __name__ == "__main__":
    main()
