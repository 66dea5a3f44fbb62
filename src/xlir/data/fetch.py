"""Get the files of a declared dataset into the data cache, byte-exact, verified by sha256.

Each file lands at `data_cache()/github/<owner>/<repo>/<commit>/<path>`: the raw-file URL's
path, so the cache is itself laid out like a mirror. The source is, in order:
  1. the cache, when the file is there with the right size and checksum (skipped);
  2. the mirror folder `$XLIR_DATA_MIRROR` (`<mirror>/github/<owner>/<repo>/<commit>/<path>`),
     when that variable is set: machines without internet read the same bytes from there;
  3. the network (urllib, with a timeout).
A file is written to a temporary name, checked, and only then renamed into place, so a
mismatch, a missing file or a dropped connection leaves nothing half-written in the cache.

This module does not parse anything (`tasks.py` does) and does not retry.
"""

from __future__ import annotations

import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from xlir import storage
from xlir.data.registry import DataFile, Dataset, dataset
from xlir.errors import XlirError

logger = logging.getLogger(__name__)

TIMEOUT_S = 60


def cache_path(file: DataFile) -> Path:
    return _inside(storage.data_cache() / "github", file.url_path)


def mirror_path(file: DataFile) -> Path | None:
    mirror = storage.data_mirror()
    if mirror is None:
        return None
    # Accept the mirror root (holding `github/`) or the `github/` folder itself.
    root = mirror / "github" if (mirror / "github").is_dir() else mirror
    return _inside(root, file.url_path)


def dataset_root(name: str) -> Path:
    """The cache folder holding the repository files of `name` at its pinned commit."""
    d = dataset(name)
    return storage.data_cache() / "github" / d.repo / d.commit


def is_cached(name: str, verify: bool = False) -> bool:
    """True when every file of `name` is in the cache with the declared size (and, with
    `verify`, checksum)."""
    return all(_is_good(f, verify) for f in dataset(name).files)


def fetch(name: str, progress: bool = True) -> Path:
    """Make sure every file of dataset `name` is in the cache and verified; return its root.

    Raises XlirError naming the file (URL and path) on a checksum mismatch, a missing mirror
    file or a network failure; no partial file is left behind.
    """
    d: Dataset = dataset(name)
    todo = [f for f in d.files if not _is_good(f, verify=True)]
    if todo:
        logger.info("fetching %d of %d files of %s (%.1f MB)", len(todo), len(d.files), name,
                    sum(f.size for f in todo) / 1e6)
    with tqdm(total=sum(f.size for f in todo), unit="B", unit_scale=True, desc=name,
              disable=not progress or not todo) as bar:
        for f in todo:
            bar.set_postfix_str(f.path, refresh=False)
            fetch_file(f)
            bar.update(f.size)
    return dataset_root(name)


def fetch_file(file: DataFile) -> Path:
    """Copy or download one file into the cache, verifying size and sha256 before the rename."""
    target = cache_path(file)
    source = mirror_path(file)
    with storage.atomic_path(target) as tmp:
        if source is not None:
            if not source.is_file():
                raise XlirError(f"{file.url}: not in the data mirror (looked for {source})")
            shutil.copyfile(source, tmp)
        else:
            _download(file, tmp)
        size, sha = tmp.stat().st_size, storage.sha256_file(tmp)
        if (size, sha) != (file.size, file.sha256):
            raise XlirError(
                f"{file.url}: checksum mismatch (got {size} bytes sha256 {sha[:12]}..., "
                f"expected {file.size} bytes {file.sha256[:12]}...) from "
                f"{source or 'the network'}; nothing was written to {target}")
    return target


def _download(file: DataFile, dest: Path) -> None:
    try:
        with urllib.request.urlopen(file.url, timeout=TIMEOUT_S) as response, \
                open(dest, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e
        raise XlirError(f"{file.url}: download failed ({reason}); no network? Set "
                        f"XLIR_DATA_MIRROR to a folder holding github/{file.url_path}") from None


def _is_good(file: DataFile, verify: bool) -> bool:
    path = cache_path(file)
    if not path.is_file() or path.stat().st_size != file.size:
        return False
    return not verify or _sha256_once(path) == file.sha256


# Tasks call `fetch` for every file they read; hash a file once per process, keyed by its
# (size, mtime) so a file changed on disk is hashed again.
_hashed: dict[tuple[str, int, int], str] = {}


def _sha256_once(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hashed:
        _hashed[key] = storage.sha256_file(path)
    return _hashed[key]


def _inside(root: Path, rel: str) -> Path:
    """`root / rel`, refusing a relative path that would climb out of `root`."""
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts:
        raise XlirError(f"refusing path '{rel}': it leaves {root}")
    return root.joinpath(*parts)
