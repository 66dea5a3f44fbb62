"""`xlir index`: encode a task's corpus with a model and write a FAISS index folder,
optionally augmenting passage vectors with generated queries (xQG)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xlir.cli.evaluate import add_task_args, task_from_args


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
    parser.add_argument("--alpha", type=float, default=0.01, help="xQG weight (default 0.01)")
    parser.add_argument("--fusion", choices=["sum", "mean"], default="sum")
    parser.add_argument("--renormalize", action="store_true",
                        help="L2-normalise fused vectors (the paper does not)")
    parser.add_argument("--max-length", type=int, default=None, help="encoder max tokens")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="encoding processes")
    parser.add_argument("--cache", type=Path, default=None,
                        help="embedding cache folder (default: $XLIR_HOME/embeddings)")
    parser.add_argument("--out", type=Path, required=True, help="index folder to write")
    parser.set_defaults(func=run)


def read_generated(path: Path, corpus: dict) -> tuple[list[str], list[str]]:
    """(doc id, question) pairs from a JSONL file; unknown doc ids are an input error."""
    from xlir.errors import InputError

    docs, questions = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON: {e.msg}", path, n) from None
        doc = row.get("doc_id", row.get("passage_id"))
        if doc is None or not isinstance(row.get("question"), str):
            raise InputError("needs 'doc_id' (or 'passage_id') and 'question'", path, n)
        if doc not in corpus:
            raise InputError(f"doc id {doc!r} is not in the task's corpus", path, n, "doc_id")
        docs.append(doc)
        questions.append(row["question"])
    return docs, questions


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from xlir import storage
    from xlir.encode import encode_corpus, encode_queries
    from xlir.encoder import load_encoder
    from xlir.index import DenseIndex, fuse_passages

    task = task_from_args(args)
    encoder = load_encoder(None if args.model == "default" else args.model,
                           max_length=args.max_length)
    cache = args.cache or storage.xlir_home() / "embeddings"
    doc_ids, vecs = encode_corpus(encoder, task.corpus, cache, args.batch_size,
                                  num_workers=args.workers)
    meta = {"model": encoder.name, "model_source": encoder.source,
            "fingerprint": encoder.fingerprint, "max_length": encoder.max_length,
            "task": task.name, "split": task.split, "augment": None}
    if args.augment:
        docs, questions = read_generated(args.augment, task.corpus)
        qkeys = [f"{i}" for i in range(len(questions))]
        _, qvecs = encode_queries(encoder, dict(zip(qkeys, questions)), cache, args.batch_size)
        generated: dict[str, list] = {}
        for doc, v in zip(docs, qvecs):
            generated.setdefault(doc, []).append(v)
        vecs = fuse_passages(vecs, doc_ids, {d: np.stack(v) for d, v in generated.items()},
                             args.alpha, args.fusion, args.renormalize)
        meta["augment"] = {"queries": str(args.augment), "count": len(questions),
                           "passages": len(generated), "alpha": args.alpha,
                           "fusion": args.fusion, "renormalize": args.renormalize}
    DenseIndex.build(vecs, doc_ids, kind=args.kind, meta=meta).save(args.out)
    print(f"{args.out}: {len(doc_ids)} passages, {args.kind}, dim {vecs.shape[1]}"
          + (f", xQG on {meta['augment']['passages']} passages" if args.augment else ""))
    return 0
