"""The embedding cache's files, read without any model (encode.py writes them; the report's
drift reads them back): <folder>/manifest.json, shard-00000.ids.json, shard-00000.npy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xlir.errors import ConfigError, InputError
from xlir.storage import read_json


def cached_shard_size(manifest: Path) -> int:
    data = read_json(manifest)
    size = data.get("shard_size") if isinstance(data, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InputError("not an embedding-cache manifest (no shard_size); delete its folder "
                         "to encode again", manifest, field="shard_size")
    return size


def shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard-{index:05d}.npy"


def read_cache(folder: str | Path) -> tuple[list[str], np.ndarray] | None:
    """The ids and vectors of a complete cache folder, whatever texts it holds (None while a
    shard is missing): for reading back embeddings a study made (xlir.drift)."""
    folder = Path(folder)
    manifest = read_json(folder / "manifest.json")
    shards = -(-manifest["count"] // cached_shard_size(folder / "manifest.json"))
    if not all(shard_path(folder, i).exists() for i in range(shards)):
        return None
    return read_shards(folder, shards, None)


def read_shards(folder: Path, count: int, ids: list[str] | None) -> tuple[list[str], np.ndarray]:
    out_ids: list[str] = []
    parts = []
    for i in range(count):
        npy = shard_path(folder, i)
        shard_ids = read_json(npy.with_suffix(".ids.json"))
        try:
            parts.append(np.load(npy, allow_pickle=False))
        except (ValueError, OSError, EOFError) as e:
            raise InputError(f"corrupt embedding shard ({e}); delete it and rerun: only this "
                             "shard is encoded again", npy) from None
        if not isinstance(shard_ids, list) or len(shard_ids) != len(parts[-1]):
            raise InputError("ids do not match the shard's vectors; delete both files and "
                             "rerun", npy.with_suffix(".ids.json"))
        out_ids.extend(shard_ids)
    if ids is not None and out_ids != ids:
        raise ConfigError(f"{folder}: cached ids do not match the input; delete the folder")
    dim = parts[0].shape[1] if parts else 0
    return out_ids, (np.concatenate(parts) if parts else np.zeros((0, dim), np.float32))
