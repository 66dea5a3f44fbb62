"""`xlir index`: encode a task's corpus with a model and write a FAISS index folder,
optionally augmenting passage vectors with generated queries (xQG)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.cli.evaluate import add_encoder_args, add_task_args, task_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "index", help="encode a task's corpus and build a FAISS index (optionally xQG-augmented)",
        description="Encode every passage of the task's corpus (embeddings cached and reused "
        "in --cache, resumable after a kill) and write an index folder (index.faiss, "
        "doc_ids.json, meta.json) to --out. With --augment, each passage vector p becomes "
        "(1 - alpha) p + alpha * sum (or mean) of its generated queries' vectors, encoded with "
        "the query encoder (Zhuang et al., SIGIR 2023).",
        epilog="example: xlir index --model default --task afriqa --out indexes/afriqa-e5")
    parser.add_argument("--model", default="default",
                        help="encoder folder or name ('default' = packaged e5-small)")
    add_task_args(parser)
    parser.add_argument("--kind", choices=["flat", "hnsw", "ivfpq"], default="flat")
    parser.add_argument("--augment", type=Path, default=None, metavar="QUERIES.jsonl",
                        help="generated queries: rows {doc_id|passage_id, lang, question}")
    parser.add_argument("--alpha", type=float, default=None,
                        help="xQG weight in [0, 1] (default 0.01; only with --augment)")
    parser.add_argument("--fusion", choices=["sum", "mean"], default="sum")
    parser.add_argument("--renormalize", action="store_true",
                        help="L2-normalise fused vectors (the paper does not)")
    add_encoder_args(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="encoding processes")
    parser.add_argument("--cache", type=Path, default=None,
                        help="embedding cache folder (default: $XLIR_HOME/embeddings)")
    parser.add_argument("--out", type=Path, required=True, help="index folder to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xlir.errors import ConfigError

    if args.alpha is not None and not args.augment:
        raise ConfigError("--alpha only applies with --augment QUERIES.jsonl")
    alpha = 0.01 if args.alpha is None else args.alpha
    if not 0.0 <= alpha <= 1.0:  # checked before anything heavy is imported or loaded
        raise ConfigError(f"--alpha must be in [0, 1], got {alpha}")
    from xlir import storage
    from xlir.encoder import load_encoder
    from xlir.index import DenseIndex
    from xlir.qgen import read_generated
    from xlir.retrieve import fused_passages, passage_vectors

    task = task_from_args(args)
    encoder = load_encoder(None if args.model == "default" else args.model,
                           max_length=args.max_length, backend=args.precision)
    cache = args.cache or storage.xlir_home() / "embeddings"
    doc_ids, vecs = passage_vectors(encoder, task.corpus, cache, args.batch_size,
                                    show_progress=True, num_workers=args.workers)
    meta = {"model": encoder.name, "model_source": encoder.source,
            "fingerprint": encoder.fingerprint, "max_length": encoder.max_length,
            "backend": encoder.backend,
            "task": task.name, "split": task.split, "augment": None}
    if args.augment:
        rows = read_generated(args.augment, task.corpus)
        vecs, generated = fused_passages(encoder, doc_ids, vecs, rows, alpha, cache,
                                         args.batch_size, args.fusion, args.renormalize)
        meta["augment"] = {"queries": str(args.augment), "count": len(rows),
                           "passages": len(generated), "alpha": alpha,
                           "fusion": args.fusion, "renormalize": args.renormalize}
    DenseIndex.build(vecs, doc_ids, kind=args.kind, meta=meta).save(args.out)
    print(f"{args.out}: {len(doc_ids)} passages, {args.kind}, dim {vecs.shape[1]}"
          + (f", xQG on {meta['augment']['passages']} passages" if args.augment else ""))
    return 0
