"""`xlir search`: encode a task's queries with the index's model and write a TREC run."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.cli.evaluate import add_task_args, task_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "search", help="search an index folder with a task's queries, write a TREC run",
        description="Encode the task's queries with the model the index was built with (read "
        "from the index's meta.json, or --model), search each query's pool and write the top "
        "--k documents per query as a TREC run file.",
        epilog="example: xlir search --index indexes/afriqa-e5 --task afriqa --out runs/e5.trec")
    parser.add_argument("--index", type=Path, required=True, help="folder written by xlir index")
    add_task_args(parser)
    parser.add_argument("--model", default=None,
                        help="query encoder (default: the one recorded in the index)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, required=True, help="TREC run file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xlir.encoder import load_encoder
    from xlir.errors import XlirError
    from xlir.index import DenseIndex
    from xlir.retrieve import query_vectors, write_trec_run

    index = DenseIndex.load(args.index)
    task = task_from_args(args)
    source = args.model or index.meta.get("model_source")
    # Queries are encoded as the passages were (indexes written before backends were
    # recorded were encoded in fp32).
    encoder = load_encoder(source, max_length=index.meta.get("max_length"),
                           backend=index.meta.get("backend", "fp32"))
    if args.model is None and encoder.fingerprint != index.meta.get("fingerprint"):
        raise XlirError(f"{args.index}: the model at {source} changed since the index was "
                        "built; rebuild the index")
    missing = set(task.corpus) - set(index.doc_ids)
    if missing:
        raise XlirError(f"{args.index}: {len(missing)} of the task's documents are not in the "
                        "index (built for another task?)")
    q_ids, q_vecs = query_vectors(encoder, task.queries, None, args.batch_size, show_progress=True)
    run_ = index.search_task(q_ids, q_vecs, task.pools(), args.k)
    write_trec_run(run_, args.out, tag=index.meta.get("model", "xlir"))
    print(f"{args.out}: {len(run_)} queries, top {args.k}")
    return 0
