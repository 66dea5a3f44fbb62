"""fetch: copies from a mirror or downloads, verifies sha256, skips good cached files, and on any
failure raises one XlirError naming the file while leaving nothing half-written in the cache.
Uses a tiny made-up dataset in a temporary mirror; one real test checks the embedded checksums
against the shared manifest."""

from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest

from xlir.data import fetch as fetch_mod
from xlir.data import registry
from xlir.errors import XlirError

COMMIT = "0" * 40
FILES = {"data/a.txt": b"alpha\n", "data/sub/b.tsv": b"id\ttext\n1\tbeta\n"}


def _table(files: dict[str, bytes]) -> str:
    return "\n".join(f"{p} {len(b)} {hashlib.sha256(b).hexdigest()}" for p, b in files.items())


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A dataset 'toy' of two files, a mirror holding them and an empty cache."""
    mirror = tmp_path / "mirror"
    for path, data in FILES.items():
        target = mirror / "github" / "me" / "toy" / COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    toy = registry._declare("toy", "me/toy", COMMIT, _table(FILES), licence="CC0",
                            citation="", languages=("eng_Latn",), description="toy")
    monkeypatch.setitem(registry.DATASETS, "toy", toy)
    monkeypatch.setenv("XLIR_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("XLIR_DATA_CACHE", str(tmp_path / "cache"))
    return mirror / "github" / "me" / "toy" / COMMIT


def _cache_files(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path / "cache")) for p in (tmp_path / "cache").rglob("*")
                  if p.is_file())


def test_fetch_copies_every_file_to_its_url_path(toy, tmp_path):
    assert not fetch_mod.is_cached("toy")
    root = fetch_mod.fetch("toy", progress=False)
    assert root == tmp_path / "cache" / "github" / "me" / "toy" / COMMIT
    assert (root / "data/sub/b.tsv").read_bytes() == FILES["data/sub/b.tsv"]
    assert fetch_mod.is_cached("toy") and fetch_mod.is_cached("toy", verify=True)
    assert registry.dataset("toy").files[0].url == \
        f"https://raw.githubusercontent.com/me/toy/{COMMIT}/data/a.txt"


def test_cached_good_files_are_skipped(toy, tmp_path, monkeypatch):
    fetch_mod.fetch("toy", progress=False)
    monkeypatch.setattr(fetch_mod, "fetch_file", lambda f: pytest.fail(f"refetched {f.path}"))
    fetch_mod.fetch("toy", progress=False)


def test_corrupted_cache_file_is_fetched_again(toy, tmp_path):
    root = fetch_mod.fetch("toy", progress=False)
    (root / "data/a.txt").write_bytes(b"alphA\n")  # same size, wrong bytes
    assert fetch_mod.is_cached("toy") and not fetch_mod.is_cached("toy", verify=True)
    fetch_mod.fetch("toy", progress=False)
    assert (root / "data/a.txt").read_bytes() == b"alpha\n"


def test_checksum_mismatch_names_the_file_and_leaves_nothing(toy, tmp_path):
    (toy / "data/sub/b.tsv").write_bytes(b"id\ttext\n1\tBETA\n")
    with pytest.raises(XlirError) as e:
        fetch_mod.fetch("toy", progress=False)
    assert "checksum mismatch" in str(e.value)
    assert f"me/toy/{COMMIT}/data/sub/b.tsv" in str(e.value)
    assert _cache_files(tmp_path) == [f"github/me/toy/{COMMIT}/data/a.txt"]


def test_missing_mirror_file_names_url_and_path(toy, tmp_path):
    (toy / "data/a.txt").unlink()
    with pytest.raises(XlirError, match=r"raw\.githubusercontent\.com/me/toy/.*/data/a\.txt: "
                       r"not in the data mirror \(looked for .*mirror/github/me/toy"):
        fetch_mod.fetch("toy", progress=False)
    assert _cache_files(tmp_path) == []


def test_no_network_is_one_clear_error(toy, tmp_path, monkeypatch):
    monkeypatch.delenv("XLIR_DATA_MIRROR")

    def offline(url, timeout):
        assert timeout == fetch_mod.TIMEOUT_S
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", offline)
    with pytest.raises(XlirError, match=r"toy/0+/data/a\.txt: download failed \(Name or "
                       r"service not known\); no network\?"):
        fetch_mod.fetch("toy", progress=False)
    assert _cache_files(tmp_path) == []


def test_download_path_verifies_too(toy, tmp_path, monkeypatch):
    import io

    monkeypatch.delenv("XLIR_DATA_MIRROR")
    served = {f"https://raw.githubusercontent.com/me/toy/{COMMIT}/{p}": b for p, b in FILES.items()}
    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen",
                        lambda url, timeout: io.BytesIO(served[url]))
    root = fetch_mod.fetch("toy", progress=False)
    assert (root / "data/a.txt").read_bytes() == b"alpha\n"


def test_paths_cannot_leave_the_cache(tmp_path):
    with pytest.raises(XlirError, match="leaves"):
        fetch_mod._inside(tmp_path, "me/toy/../../../etc/passwd")


def test_unknown_dataset_lists_the_built_in_ones():
    with pytest.raises(XlirError, match="unknown dataset 'nope'; built-in: afriqa, tydi, amqa, "
                       "sib200, masakhaner"):
        fetch_mod.fetch("nope")


def test_registry_declares_every_dataset_once_with_pinned_urls():
    assert list(registry.DATASETS) == ["afriqa", "tydi", "amqa", "sib200", "masakhaner"]
    sizes = {n: len(d.files) for n, d in registry.DATASETS.items()}
    # afriqa: 24 gold-passage files + LICENSE; tydi: 9 dev + 3 train + LICENSE;
    # amqa: 3 splits + LICENSE; sib200: 205 variants x 3 splits + LICENSE; masakhaner:
    # 20 languages x (train, dev) + LICENSE + README.
    assert sizes == {"afriqa": 25, "tydi": 13, "amqa": 4, "sib200": 616, "masakhaner": 42}
    for d in registry.DATASETS.values():
        assert len(d.commit) == 40
        for f in d.files:
            assert f.url == f"https://raw.githubusercontent.com/{d.repo}/{d.commit}/{f.path}"
            assert len(f.sha256) == 64 and f.size > 0
    assert len(registry.SIB200_LANGUAGES) == 205


@pytest.mark.real
def test_embedded_checksums_match_the_shared_manifest(shared_dir):
    manifest = {}
    for line in (shared_dir / "data" / "MANIFEST.tsv").read_text().splitlines():
        path, size, sha = line.split("\t")
        manifest[path] = (int(size), sha)
    for d in registry.DATASETS.values():
        for f in d.files:
            assert manifest[f"github/{f.url_path}"] == (f.size, f.sha256), f.path
