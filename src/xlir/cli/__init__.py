"""The `xlir` command. Each subcommand lives in a module of this package exposing
`register(subparsers)`; modules are found by name, so adding a command adds a file.

Subcommand modules stay thin: parse arguments, call library code, print. Heavy imports happen
inside the handlers, so `xlir --help` is fast. Logging is configured here and only here.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import re
import sys

# The order `xlir --help` lists them in: the pipeline's order.
ORDER = ["models", "data", "train", "export", "index", "search", "evaluate", "compare", "qgen",
         "study", "report", "results", "bench"]


class _MistralRegexFilter(logging.Filter):
    """Drop transformers 4.57's "incorrect regex pattern ... fix_mistral_regex=True" warning
    when it is the false alarm (`xlir.models.trips_tokenizer_check`: a non-Mistral model whose
    config.json was written by 4.57.3+). The folders xlir writes do not trip it
    (`xlir.models.pass_tokenizer_check`), but xlir also loads folders that do: runs trained by
    an earlier xlir, folders a user passes. A Mistral-type folder still warns."""

    def filter(self, record: logging.LogRecord) -> bool:
        match = re.match(r"The tokenizer you are loading from '(.*)' with an incorrect regex",
                         record.getMessage())
        config = os.path.join(match.group(1), "config.json") if match else ""
        if not os.path.isfile(config):
            return True
        from xlir import models, storage
        from xlir.errors import XlirError

        try:
            return not models.trips_tokenizer_check(storage.read_json(config))
        except (XlirError, OSError):  # unreadable: let the warning through
            return True


# Storage errors a user fixes by freeing space or writing elsewhere: (what, what to do).
_FREE = "free space there, or point XLIR_HOME / --out elsewhere"
_STORAGE_ERRORS = {errno.ENOSPC: ("no space left on device", _FREE),
                   errno.EDQUOT: ("disk quota exceeded", _FREE),
                   errno.EROFS: ("read-only file system", "point XLIR_HOME / --out elsewhere")}


def storage_error(e: OSError) -> str | None:
    """One line for a full or read-only disk (naming the file when known), else None."""
    if e.errno not in _STORAGE_ERRORS:
        return None
    what, todo = _STORAGE_ERRORS[e.errno]
    where = f" writing {e.filename}" if e.filename else ""
    return f"{what}{where} ({todo}; rerun the same command to resume: finished parts are kept)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xlir",
        description="Cross-lingual dense retrieval for low-resource languages: prepare the "
        "packaged models, fetch pinned data, train a bi-encoder with full fine-tuning or a "
        "parameter-efficient method, augment passages with generated queries, evaluate per "
        "language against BM25, and report.",
        epilog="Run `xlir COMMAND --help` for each command. Environment: XLIR_HOME, "
        "XLIR_MODEL_CACHE, XLIR_DATA_CACHE, XLIR_DATA_MIRROR (see the README).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    for name in sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Offline by construction: no model hub is reachable, so never try.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("urllib3", "filelock", "httpx", "matplotlib", "numba", "bm25s",
                  "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers.tokenization_utils_base").addFilter(_MistralRegexFilter())
    from xlir.errors import XlirError

    try:
        return int(args.func(args) or 0)
    except XlirError as e:
        print(f"xlir {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if (line := storage_error(e)) is None:
            raise
        print(f"xlir {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xlir {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
