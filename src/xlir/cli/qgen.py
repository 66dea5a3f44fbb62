"""`xlir qgen train|generate|quality`: the xQG generator, its questions and their quality."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "qgen", help="train the question generator, generate queries per passage, check them",
        description="Cross-lingual query generation (xQG): LoRA-tune a causal LM into a "
        "passage-to-question generator on training splits only, write k questions per passage "
        "in each chosen language as JSONL (the input of `xlir index --augment`), and measure "
        "their quality (language-ID agreement, duplicates, length).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  xlir qgen train runs/qgen steps=200 dtype=bfloat16\n"
        "  xlir qgen generate afriqa queries.jsonl samples=2 dtype=bfloat16 "
        "--generator runs/qgen --languages hau_Latn,yor_Latn\n"
        "  xlir qgen quality queries.jsonl\n")
    sub = p.add_subparsers(dest="qgen_command", metavar="STEP", required=True)

    t = sub.add_parser("train", help="LoRA-tune the generator (resumes; skips when complete)")
    t.add_argument("run_dir", help="run folder: adapter/, qgen-manifest.json, checkpoint/")
    t.add_argument("overrides", nargs="*", help="QGenTrainConfig key=value, e.g. r=16 lr=3e-4 "
                   "steps=200 base=DIR sources=[afriqa-native,tydi-en] max_pairs_per_language=500")
    t.add_argument("--config", help="YAML with QGenTrainConfig keys")
    t.add_argument("--pairs", help="JSONL pairs {query, query_lang, title, text} instead of "
                   "the configured sources")
    t.set_defaults(func=run_train)

    g = sub.add_parser("generate", help="questions for every passage of a corpus (resumes)")
    g.add_argument("corpus", help="a task name (afriqa) or a BEIR folder / corpus.jsonl")
    g.add_argument("out", help="output JSONL")
    g.add_argument("overrides", nargs="*", help="GenerateConfig key=value, e.g. samples=5 "
                   "decoding=greedy top_p=0.9 temperature=0.8 dtype=bfloat16 vocabulary=full "
                   "(before options); vocabulary=language (default) restricts each row to its "
                   "language's pieces, built from monolingual text minus the task's own split")
    g.add_argument("--generator", help="a `qgen train` run folder or any HF causal-LM folder "
                   "(default: the packaged gemma-3-270m, untuned)")
    g.add_argument("--languages", help="comma-separated codes (default: the corpus task's "
                   "query languages)")
    g.add_argument("--split", default="test", help="split of a task corpus (default test)")
    g.add_argument("--limit", type=int, help="only the first N passages")
    g.add_argument("--threads", type=int, help="torch threads (1 is faster on a busy machine)")
    g.set_defaults(func=run_generate)

    q = sub.add_parser("quality", help="language-ID agreement, duplicates, length per language")
    q.add_argument("queries", help="JSONL written by `xlir qgen generate`")
    q.add_argument("--out", help="write the summary as JSON here too")
    q.set_defaults(func=run_quality)


def run_train(args) -> int:
    from xlir.config import from_dict, load_yaml, merge, parse_overrides
    from xlir.qgen_train import (QGenTrainConfig, check_leakage, read_pairs_jsonl,
                                 train_generator, training_pairs)

    raw = merge(load_yaml(args.config) if args.config else {}, parse_overrides(args.overrides))
    cfg = from_dict(QGenTrainConfig, raw)
    from xlir.data.tasks import load_task

    evaluated = load_task(cfg.eval_task, "test") if cfg.eval_task else None
    pairs = read_pairs_jsonl(args.pairs) if args.pairs else training_pairs(cfg, evaluated)[0]
    leakage = None
    if evaluated is not None:
        pairs, leakage = check_leakage(pairs, evaluated)
        print(f"leakage vs {cfg.eval_task} test: " + ", ".join(
            f"{k} {v}" for k, v in leakage.items() if k != "examples"))
    print(f"{len(pairs)} training pairs")
    manifest = train_generator(pairs, cfg, args.run_dir, leakage=leakage)
    print(f"generator: {args.run_dir} ({manifest['steps']} steps, "
          f"loss {manifest['losses'][0]:.3f} -> {manifest['losses'][-1]:.3f})")
    return 0


def run_generate(args) -> int:
    from xlir.config import parse_overrides
    from xlir.qgen import config_from, generate_corpus, load_generator, read_corpus

    raw = parse_overrides(args.overrides)
    if args.languages:
        raw["languages"] = args.languages.split(",")
    elif "languages" not in raw:
        from xlir.data.tasks import load_task

        raw["languages"] = load_task(args.corpus, args.split).languages
    cfg = config_from(raw)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    corpus = read_corpus(args.corpus, args.split)
    if args.limit:
        corpus = dict(list(corpus.items())[:args.limit])
    exclude: frozenset[str] = frozenset()
    if cfg.vocabulary == "language" and not Path(args.corpus).exists():
        # A task's own queries and passages never shape the output vocabulary.
        from xlir.data.monolingual import evaluated_texts
        from xlir.data.tasks import load_task

        exclude = evaluated_texts([load_task(args.corpus, args.split)])
    model, tokenizer, name = load_generator(args.generator, cfg.dtype)
    n = generate_corpus(model, tokenizer, corpus, args.out, cfg, name, exclude=exclude)
    print(f"{n} new questions -> {args.out}")
    return 0


def run_quality(args) -> int:
    from xlir.langid import default_classifier, query_quality
    from xlir.qgen import read_generated
    from xlir.storage import write_json

    rows = read_generated(args.queries)
    summary = query_quality(rows, default_classifier())
    for lang, s in summary.items():
        agree = "n/a" if s["langid_agreement"] is None else f"{s['langid_agreement']:.2f}"
        print(f"{lang}: {s['rows']} rows, langid agreement {agree}, duplicates "
              f"{s['duplicate_rate']:.2f}, words mean {s['mean_words']:.1f} median "
              f"{s['median_words']}, identified as {json.dumps(s['identified_as'])}")
    if args.out:
        write_json(args.out, summary)
    return 0
