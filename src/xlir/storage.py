"""Where xlir keeps things, and how it writes them so a kill never leaves a half-written file.

Cache roots come from environment variables (see the README):
  XLIR_HOME         root of every cache (default: ~/.cache/xlir, or $XDG_CACHE_HOME/xlir)
  XLIR_MODEL_CACHE  prepared models (default: $XLIR_HOME/models)
  XLIR_DATA_CACHE   downloaded data (default: $XLIR_HOME/data)
  XLIR_DATA_MIRROR  a folder laid out as raw-file URL paths, read instead of the network

Writes go to a temporary sibling and are renamed into place (`os.replace` is atomic on POSIX),
so a reader sees either the old complete file or the new complete file. Folders are built
under a temporary name and renamed when complete; a `.complete` marker is not needed because
the rename is the commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def xlir_home() -> Path:
    if os.environ.get("XLIR_HOME"):
        return Path(os.environ["XLIR_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xlir"


def model_cache() -> Path:
    env = os.environ.get("XLIR_MODEL_CACHE")
    return Path(env).expanduser() if env else xlir_home() / "models"


def data_cache() -> Path:
    env = os.environ.get("XLIR_DATA_CACHE")
    return Path(env).expanduser() if env else xlir_home() / "data"


def data_mirror() -> Path | None:
    env = os.environ.get("XLIR_DATA_MIRROR")
    return Path(env).expanduser() if env else None


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    On any exception the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    from xlir.errors import InputError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 ({e.reason} at byte {e.start})", path) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path, e.lineno) from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
