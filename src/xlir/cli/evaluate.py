"""`xlir evaluate`: score a run file, a model (dense, exact search) or BM25 on a task, per
language (seen/unseen marked) and macro; optionally fused with a second run (hybrid).

Also holds the task arguments the retrieval commands share (index, search, compare)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def add_task_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True,
                        help="afriqa, afriqa-translate, tydi-mono, amqa, flores-*, a BEIR "
                        "folder, or your parallel text: bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG "
                        "[,tgt2src] (line i of SRC is translated by line i of TGT; each SRC "
                        "line retrieves from the TGT lines, or with tgt2src each TGT line from "
                        "the SRC lines; reported under SRC_LANG)")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--languages", default=None,
                        help="comma-separated query languages to keep (default: all)")
    parser.add_argument("--no-titles", action="store_true",
                        help="passages as their text alone, titles dropped, for every system "
                        "(default: '{title} {text}' for dense encoders and BM25 alike; with "
                        "--bm25 this is the published AfriQA lexical baseline's setting)")


def add_encoder_args(parser: argparse.ArgumentParser) -> None:
    """How a dense encoder runs: its max length and the arithmetic it encodes in."""
    parser.add_argument("--max-length", type=int, default=None, help="encoder max tokens")
    parser.add_argument("--precision", choices=["bf16", "fp32", "int8"], default="bf16",
                        help="bf16 autocast (default: ~2x fp32 on a bf16 CPU, metrics within "
                        "0.001 of fp32), fp32 (the reference), int8 (no faster, -0.12 nDCG@10; "
                        "warns)")


def add_family_arg(parser: argparse.ArgumentParser, derived: str) -> None:
    """--encoder-family: whose pretraining languages count as seen in the groups."""
    from xlir.data.languages import SEEN_SETS

    parser.add_argument("--encoder-family", choices=sorted(SEEN_SETS), default=None,
                        help="the encoder family whose pretraining and retrieval training define "
                        f"the language groups (seen/unseen, ...); default: {derived}")


def encoder_family_of(args) -> str | None:
    """--encoder-family, else the family of --model (a tuned model: of the base model it was
    tuned from, as its xlir-model.json records), else the packaged encoder's ("me5")."""
    from xlir.data.languages import encoder_family
    from xlir.storage import read_json

    if getattr(args, "encoder_family", None):
        return args.encoder_family
    model = getattr(args, "model", None)
    if model in (None, "default"):
        return encoder_family(None)
    manifest = Path(model) / "xlir-model.json"
    if manifest.is_file():
        return encoder_family(read_json(manifest).get("base_model") or model)
    return encoder_family(model)


def task_from_args(args):
    from xlir.data.tasks import load_task

    langs = args.languages.split(",") if args.languages else None
    task = load_task(args.task, split=args.split, languages=langs)
    return task.without_titles() if args.no_titles else task


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a run, a model or BM25 per language (+ macro, seen/unseen)",
        description="Evaluate one system on a task: a TREC run file (--run), a model encoded "
        "and searched exactly (--model; embeddings cached in --cache), or BM25 (--bm25, k1 0.9, "
        "b 0.4, Unicode word tokens). --fuse RUN.trec fuses the system with a second run "
        "(hybrid). Prints per-language scores, languages the encoder saw in pretraining "
        "marked 'seen', the macro average, and the seen/unseen macros.",
        epilog="example: xlir evaluate --task afriqa --bm25 --save-run runs/bm25.trec")
    add_task_args(parser)
    system = parser.add_mutually_exclusive_group(required=True)
    system.add_argument("--run", type=Path, help="a TREC run file")
    system.add_argument("--model", help="encoder folder or name ('default' = packaged e5-small)")
    system.add_argument("--bm25", action="store_true",
                        help="BM25 baseline over '{title} {text}' (the text alone with "
                        "--no-titles)")
    add_encoder_args(parser)
    add_family_arg(parser, "that of --model (a tuned model: of its base), else the packaged "
                   "multilingual-e5-small's (me5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=None,
                        help="embedding cache folder (default: $XLIR_HOME/embeddings)")
    parser.add_argument("--fuse", type=Path, default=None, help="a second run to fuse with")
    parser.add_argument("--fusion", choices=["rrf", "interpolate"], default="rrf")
    parser.add_argument("--weight", type=float, default=0.5,
                        help="share of this system in 'interpolate' fusion (default 0.5)")
    parser.add_argument("--measures", default=None,
                        help="comma-separated ir-measures names (default: the task's primary "
                        "measure, nDCG@10, RR@10, R@100)")
    parser.add_argument("--k", type=int, default=100, help="documents retrieved per query")
    parser.add_argument("--save-run", type=Path, default=None, help="write the run (TREC)")
    parser.add_argument("--out", type=Path, default=None, help="write metrics JSON here")
    parser.set_defaults(func=run)


def system_run(args, task):
    from xlir.retrieve import dense_run, read_trec_run

    if args.run:
        return read_trec_run(args.run), args.run.stem
    if args.bm25:
        from xlir.retrieve import bm25_run

        return bm25_run(task, k=args.k), "bm25"
    from xlir import storage
    from xlir.encoder import load_encoder

    encoder = load_encoder(None if args.model == "default" else args.model,
                           max_length=args.max_length, backend=args.precision)
    cache = args.cache or storage.xlir_home() / "embeddings"
    return dense_run(encoder, task, k=args.k, cache_dir=cache, batch_size=args.batch_size,
                     show_progress=True), encoder.name


def run(args: argparse.Namespace) -> int:
    from xlir.evaluate import evaluate_run
    from xlir.retrieve import hybrid_run, read_trec_run, write_trec_run
    from xlir.storage import write_json

    task = task_from_args(args)
    result_run, tag = system_run(args, task)
    if args.fuse:
        result_run = hybrid_run(result_run, read_trec_run(args.fuse), args.fusion, args.weight,
                                k=args.k)
        tag = f"{tag}+{args.fuse.stem}-{args.fusion}"
    if args.save_run:
        write_trec_run(result_run, args.save_run, tag=tag)
    measures = args.measures.split(",") if args.measures else None
    model = None if args.model in (None, "default") else args.model  # unknown: groups "unknown"
    result = evaluate_run(result_run, task, measures, encoder_family=encoder_family_of(args),
                          encoder=model)
    print(format_result(result, f"{task.name} {task.split}: {tag}"))
    if args.out:
        write_json(args.out, result.to_json())
    return 0


def format_result(result, title: str) -> str:
    ms = result.measures
    head = f"{'language':<12} {'seen':<7} {'n':>5} " + " ".join(f"{m:>9}" for m in ms)
    lines = [title, head, "-" * len(head)]
    for lang, scores in result.per_language.items():
        seen = {True: "seen", False: "unseen", None: "?"}[result.seen.get(lang)]
        lines.append(f"{lang:<12} {seen:<7} {result.counts[lang]:>5} "
                     + " ".join(f"{_fmt(scores[m]):>9}" for m in ms))
    lines.append("-" * len(head))
    total = sum(result.counts.values())
    lines.append(f"{'macro':<12} {'':<7} {total:>5} " + " ".join(f"{_fmt(result.macro[m]):>9}"
                                                                for m in ms))
    for group, scores in result.seen_unseen.items():
        lines.append(f"{'macro-' + group:<20} {'':>5} " + " ".join(f"{_fmt(scores[m]):>9}"
                                                                 for m in ms))
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.4f}"
