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
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xlir.errors import InputError, XlirError


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


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(e: BaseException, tmp: Path, path: Path) -> OSError | None:
    """A disk-full error raised while writing `tmp`, as an OSError naming the target `path`
    (or the file under it), else None. Why: the hidden temp name means nothing to a user,
    numpy and plain file writes leave `filename` unset, and faiss reports a failed fwrite as
    RuntimeError("... (No space left on device)")."""
    if isinstance(e, OSError):
        code = e.errno if e.errno in _DISK_FULL else None
    else:
        code = next((c for c in _DISK_FULL if os.strerror(c) in str(e)), None)
    if code is None:
        return None
    name = Path(e.filename) if getattr(e, "filename", None) else None
    if name is not None and name != tmp and name.is_relative_to(tmp):
        path = path / name.relative_to(tmp)  # a file inside atomic_dir's folder
    return OSError(code, os.strerror(code), str(path))


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    On any exception the temporary file is removed and `path` is untouched; a full disk
    raises OSError(ENOSPC or EDQUOT) naming `path`, not the temporary name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as e:
        if (full := _disk_full(e, tmp_path, path)) is None:
            raise
        raise full from e
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path`.

    A full disk raises OSError(ENOSPC or EDQUOT) naming `path` (or the file under it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.xlir-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if (full := _disk_full(e, tmp, path)) is None:
            raise
        raise full from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    """One JSON document, UTF-8 (a leading byte-order mark is dropped): the project's own
    files and upstream data alike; every problem is an InputError naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, expected a file", path) from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        start = e.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        raise InputError(f"not UTF-8 ({e.reason} at byte {start})", path,
                         raw[:start].count(b"\n") + 1) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path, e.lineno) from None
    except RecursionError:
        raise InputError("invalid JSON: nested too deeply", path) from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# A temporary name of `atomic_path` / `atomic_dir` (mkstemp's 8 random characters), or the
# `.xlir-old` folder `atomic_dir` moves aside; a kill can leave these behind, never a real
# output (and no one else's file: `.bashrc.old` is not one of them).
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.\w+)?$|^\..+\.xlir-old$")


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is one `atomic_path` / `atomic_dir` writes before the
    rename (so never a finished output)."""
    return _TEMPORARY.match(name) is not None


@contextlib.contextmanager
def exclusive(path: str | Path, wait: bool, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if needed) for the block.

    With `wait` a second process blocks until the first is done; without, it gets an
    XlirError naming `what`. The kernel drops the lock when its process dies, so a killed
    run never leaves a stale lock behind.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise XlirError(f"{what} is in use by another xlir process (lock {path})") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_temporaries(folder: str | Path, prefix: str = "") -> list[Path]:
    """Remove what killed writers left under `folder` (temporary files and folders of
    `atomic_path` / `atomic_dir`, whose names start with `.{prefix}`); -> what was removed.

    Call it only while holding the folder's `exclusive` lock: a live writer's temporary
    looks the same as a dead one's.
    """
    removed = []
    for path in sorted(Path(folder).rglob(f".{prefix}*"), key=lambda p: -len(p.parts)):
        if is_temporary(path.name) and (path.is_file() or path.is_dir()):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def make_readable(folder: str | Path) -> None:
    """Give a folder built under a temporary name the usual modes (0755 / 0644): mkdtemp and
    mkstemp create private ones, and caches and reports are meant to be shared."""
    folder = Path(folder)
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def read_safetensors(path: str | Path, fix: str) -> dict:
    """The tensors of a safetensors file xlir wrote (a checkpoint); a corrupt or truncated
    file is an InputError naming it and saying what to do (`fix`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"corrupt checkpoint file ({e}); {fix}", path) from None
