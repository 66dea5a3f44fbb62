"""Run the `xlir` command with one kill point armed: at that point the process sends itself
SIGKILL, as an OOM killer, a pre-empted job or a pulled plug would (no cleanup code runs).

    python tests/reliability/killer.py POINT study CONFIG

Each point wraps one function of xlir or of a library it calls; "mid-write" points first
write half of the bytes the real call would have written, so the kill leaves a torn file.
The test (test_kill_resume.py) checks that the point was reached and what it left.
"""

from __future__ import annotations

import functools
import io
import os
import signal
import sys
from pathlib import Path


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def wrap(owner, name: str, nth: int, when: str) -> None:
    """Kill on the `nth` call of owner.name, before it runs or after it returns."""
    original, calls = getattr(owner, name), [0]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if when == "before" and calls[0] == nth:
            die()
        result = original(*args, **kwargs)
        if when == "after" and calls[0] == nth:
            die()
        return result

    setattr(owner, name, wrapper)


def _is_temporary(path) -> bool:
    from xlir.storage import is_temporary

    return is_temporary(Path(path).name)


def torn_copy() -> None:
    """The first copy into a temporary file (a data fetch) stops halfway."""
    import shutil

    original = shutil.copyfile

    def copyfile(src, dst, *args, **kwargs):
        if _is_temporary(dst):
            data = Path(src).read_bytes()
            Path(dst).write_bytes(data[: len(data) // 2])
            die()
        return original(src, dst, *args, **kwargs)

    shutil.copyfile = copyfile


def torn_npy() -> None:
    """The first .npy written to a temporary file (an embedding shard) stops halfway."""
    import numpy

    original = numpy.save

    def save(file, arr, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and _is_temporary(file):
            buffer = io.BytesIO()
            original(buffer, arr, *args, **kwargs)
            Path(file).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            die()
        return original(file, arr, *args, **kwargs)

    numpy.save = save


def torn_page() -> None:
    """The report's index.html stops halfway (its figures and Markdown are already written)."""
    original = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name == "index.html" and _is_temporary(self.parent):
            original(self, data[: len(data) // 2], *args, **kwargs)
            die()
        return original(self, data, *args, **kwargs)

    Path.write_text = write_text


def arm(point: str) -> None:
    if point == "model-preparation":  # the folder is converted, not yet renamed into place
        import xlir.models

        wrap(xlir.models, "_build_encoder", 1, "after")
    elif point == "data-fetch":
        torn_copy()
    elif point == "training":  # second optimizer step: checkpoint-1 is complete
        from xlir.trainer import XlirTrainer

        wrap(XlirTrainer, "training_step", 2, "before")
    elif point == "checkpoint-write":  # weights and optimizer saved, trainer state not yet
        from xlir.trainer import XlirTrainer

        wrap(XlirTrainer, "_save_rng_state", 1, "before")
    elif point == "encoding":
        torn_npy()
    elif point == "metrics":  # run.trec written, metrics.json not yet
        import xlir.evaluate

        wrap(xlir.evaluate, "evaluate_run", 1, "before")
    elif point == "generator-training":  # right after the generator's first checkpoint
        import xlir.checkpoints

        wrap(xlir.checkpoints, "save", 1, "after")
    elif point == "generation":  # the first batch of passages has its questions
        import xlir.qgen

        wrap(xlir.qgen, "generate_questions", 2, "before")
    elif point == "indexing":  # generated-question vectors cached, fused index not searched
        import xlir.index

        wrap(xlir.index, "fuse_passages", 1, "after")
    elif point == "report":
        torn_page()
    else:
        raise SystemExit(f"killer.py: unknown point {point!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from xlir.cli import main

    sys.exit(main(sys.argv[2:]))
