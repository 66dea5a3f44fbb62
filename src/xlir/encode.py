"""Batched, cached, resumable embeddings of a corpus or a query set.

Layout on disk (open formats, no pickle):

    <out_dir>/<kind>-<model fingerprint[:16]>-<content hash[:16]>/
        manifest.json                  model name, fingerprint, content hash, shard size, count
        shard-00000.ids.json           the ids of the shard's rows, in order
        shard-00000.npy                float32 (rows, dim), L2-normalised

The folder name is the cache key: the same model (weights + prefixes + max length + backend)
on the same content (ids, titles, texts, in order) reuses it; anything else gets a new folder.
Each shard is written atomically (ids first, then the .npy, whose presence marks the shard
done), so a killed run resumes at the first missing shard.

`num_workers > 1` encodes shards in separate processes (multiprocessing "spawn", shards
assigned round-robin, torch threads split between workers); each worker loads the model again
from `encoder.source`, so it needs an encoder loaded from a folder (`load_encoder`).

It does NOT build indexes (index.py) or decide which model to use (the caller does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
from pathlib import Path
from typing import Literal

import numpy as np

from xlir.embedding_cache import cached_shard_size, read_shards, shard_path
from xlir.encoder import BiEncoder, load_encoder
from xlir.errors import ConfigError
from xlir.storage import atomic_path, write_json

log = logging.getLogger(__name__)

Kind = Literal["passages", "queries"]


def content_hash(ids: list[str], items: list) -> str:
    """sha256 over ids and contents in order (dict items are serialised with sorted keys)."""
    h = hashlib.sha256()
    for doc_id, item in zip(ids, items):
        h.update(json.dumps([doc_id, item], sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def encode_corpus(encoder: BiEncoder, corpus: dict[str, dict[str, str]], out_dir: str | Path,
                  batch_size: int = 64, shard_size: int = 10000, num_workers: int = 1,
                  show_progress: bool = True) -> tuple[list[str], np.ndarray]:
    """Embed every passage of `corpus` (cached under out_dir) -> (doc ids, (n, d) float32)."""
    ids = list(corpus)
    return _encode_cached(encoder, "passages", ids, [corpus[i] for i in ids], out_dir,
                          batch_size, shard_size, num_workers, show_progress)


def encode_queries(encoder: BiEncoder, queries: dict[str, str], out_dir: str | Path,
                   batch_size: int = 64, shard_size: int = 10000, num_workers: int = 1,
                   show_progress: bool = True) -> tuple[list[str], np.ndarray]:
    """Embed every query (cached under out_dir) -> (query ids, (n, d) float32)."""
    ids = list(queries)
    return _encode_cached(encoder, "queries", ids, [queries[i] for i in ids], out_dir,
                          batch_size, shard_size, num_workers, show_progress)


def cache_folder(encoder: BiEncoder, kind: Kind, ids: list[str], items: list,
                 out_dir: str | Path) -> Path:
    return Path(out_dir) / f"{kind}-{encoder.fingerprint[:16]}-{content_hash(ids, items)[:16]}"


def _encode_cached(encoder, kind, ids, items, out_dir, batch_size, shard_size, num_workers,
                   show_progress) -> tuple[list[str], np.ndarray]:
    if shard_size < 1 or num_workers < 1:
        raise ConfigError("shard_size and num_workers must be >= 1")
    folder = cache_folder(encoder, kind, ids, items, out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    if manifest.exists():
        shard_size = cached_shard_size(manifest)  # resume with the same cut
    else:
        write_json(manifest, {"kind": kind, "model": encoder.name,
                              "fingerprint": encoder.fingerprint,
                              "content_hash": content_hash(ids, items),
                              "shard_size": shard_size, "count": len(ids), "dim": encoder.dim})
    shards = list(range(0, len(ids), shard_size))
    todo = [s for s in shards if not shard_path(folder, s // shard_size).exists()]
    if todo:
        log.info("%s: encoding %d of %d shards into %s", kind, len(todo), len(shards), folder)
    if todo and num_workers > 1 and encoder.source is not None:
        _encode_parallel(encoder, kind, ids, items, folder, todo, shard_size, batch_size,
                         num_workers)
    else:
        if todo and num_workers > 1:
            log.warning("encoder has no source folder; encoding in one process")
        for start in todo:
            _encode_shard(encoder, kind, ids, items, folder, start, shard_size, batch_size,
                          show_progress)
    return read_shards(folder, len(shards), ids)


def _encode_shard(encoder, kind, ids, items, folder, start, shard_size, batch_size,
                  show_progress) -> None:
    rows = slice(start, start + shard_size)
    if kind == "passages":
        vecs = encoder.encode_passages(items[rows], batch_size, show_progress)
    else:
        vecs = encoder.encode_queries(items[rows], batch_size, show_progress)
    npy = shard_path(folder, start // shard_size)
    write_json(npy.with_suffix(".ids.json"), ids[rows])
    with atomic_path(npy, suffix=".npy") as tmp:
        np.save(tmp, vecs)


def _encode_parallel(encoder, kind, ids, items, folder, todo, shard_size, batch_size,
                     num_workers) -> None:
    import torch

    threads = max(1, torch.get_num_threads() // num_workers)
    config = {"source": encoder.source, "query_prefix": encoder.query_prefix,
              "passage_prefix": encoder.passage_prefix, "max_length": encoder.max_length,
              "backend": encoder.backend, "fingerprint": encoder.fingerprint}
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()  # a worker's OSError (a full disk, say), raised again here
    procs = []
    for w in range(num_workers):
        mine = todo[w::num_workers]
        if not mine:
            continue
        p = ctx.Process(target=_worker, args=(config, kind, ids, items, str(folder), mine,
                                              shard_size, batch_size, threads, errors))
        p.start()
        procs.append(p)
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed and not errors.empty():
        raise OSError(*errors.get())
    if failed:
        raise RuntimeError(f"{len(failed)} encoding worker(s) failed (exit codes {failed}); "
                           "rerun to resume from the finished shards")


def _worker(config, kind, ids, items, folder, starts, shard_size, batch_size, threads,
            errors) -> None:
    import torch

    torch.set_num_threads(threads)
    encoder = load_encoder(config["source"], query_prefix=config["query_prefix"],
                           passage_prefix=config["passage_prefix"],
                           max_length=config["max_length"], backend=config["backend"])
    if encoder.fingerprint != config["fingerprint"]:
        raise RuntimeError("worker loaded a different model than the parent")
    try:
        for start in starts:
            _encode_shard(encoder, kind, ids, items, Path(folder), start, shard_size,
                          batch_size, False)
    except OSError as e:
        errors.put((e.errno, e.strerror, e.filename))
        raise
