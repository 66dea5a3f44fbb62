"""FAISS indexes over passage vectors, search per pool, and xQG fusion of passage vectors.

Scores are inner products; with L2-normalised vectors that is cosine similarity.
Index kinds: "flat" (exact), "hnsw" (graph, M / efConstruction / efSearch), "ivfpq"
(inverted lists + product quantisation, nlist / m / nbits / nprobe).

`DenseIndex` is the small Tevatron-style wrapper: a faiss index plus the doc id of each row,
saved as a folder `index.faiss` + `doc_ids.json` + `meta.json`. Searching a pool (a query may
only see its pool's documents: `Task.pools()`) passes a faiss ID selector, so one index serves
every pool.

xQG (Zhuang et al., SIGIR 2023): a passage vector becomes `(1 - a) * p + a * sum_i q_i` over
the vectors of the queries generated for it ("mean" mode: `a * mean_i q_i`). A passage with no
generated query keeps `p` unchanged, as in the paper's code, which only touches passages that
have generated queries. `renormalize=True` L2-normalises the fused vectors (the paper does not).

It does NOT encode text (encoder.py / encode.py) or compute metrics (evaluate.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from xlir.errors import ConfigError, InputError
from xlir.storage import atomic_dir, atomic_path, read_json

IndexKind = Literal["flat", "hnsw", "ivfpq"]
INDEX_KINDS = ("flat", "hnsw", "ivfpq")


def build_index(vectors: np.ndarray, kind: IndexKind = "flat", *, m: int = 32,
                ef_construction: int = 200, ef_search: int = 128, nlist: int | None = None,
                pq_m: int | None = None, nbits: int = 8, nprobe: int = 16) -> faiss.Index:
    """An inner-product index holding `vectors` (n, d) in row order."""
    if kind not in INDEX_KINDS:
        raise ConfigError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    else:
        # Rules of thumb from the faiss wiki: ~4 sqrt(n) lists, >= 39 training points per list.
        nlist = nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
        pq_m = pq_m or next(c for c in (d // 8, d // 4, d // 2, d) if c and d % c == 0)
        if d % pq_m:
            raise ConfigError(f"pq_m={pq_m} must divide the dimension {d}")
        nbits = min(nbits, max(1, int(np.log2(max(2, n // 39)))))  # enough points per centroid
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, pq_m, nbits,
                                 faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.nprobe = min(nprobe, nlist)
    index.add(x)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int,
           allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows per query -> (scores (nq, k), row ids (nq, k)); id -1 marks an empty slot.
    `allowed` restricts the search to those row ids."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = max(1, min(k, index.ntotal))
    if allowed is None:
        return index.search(q, k)
    sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    if isinstance(index, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=index.hnsw.efSearch)
    elif isinstance(index, faiss.IndexIVF):
        params = faiss.SearchParametersIVF(sel=sel, nprobe=index.nprobe)
    else:
        params = faiss.SearchParameters(sel=sel)
    return index.search(q, min(k, len(allowed)), params=params)


def save_index(index: faiss.Index, path: str | Path) -> None:
    with atomic_path(path, suffix=".faiss") as tmp:
        faiss.write_index(index, str(tmp))


def load_index(path: str | Path) -> faiss.Index:
    if not Path(path).exists():
        raise InputError("index file not found", path)
    return faiss.read_index(str(path))


class DenseIndex:
    """A faiss index plus the doc id of every row."""

    def __init__(self, index: faiss.Index, doc_ids: list[str], meta: dict | None = None):
        if index.ntotal != len(doc_ids):
            raise ConfigError(f"index has {index.ntotal} rows but {len(doc_ids)} doc ids")
        self.index, self.doc_ids, self.meta = index, list(doc_ids), dict(meta or {})
        self._row = {d: i for i, d in enumerate(self.doc_ids)}

    @classmethod
    def build(cls, vectors: np.ndarray, doc_ids: list[str], kind: IndexKind = "flat",
              meta: dict | None = None, **params) -> "DenseIndex":
        return cls(build_index(vectors, kind, **params), doc_ids,
                   {**(meta or {}), "kind": kind, "params": params})

    def search(self, q_vecs: np.ndarray, k: int,
               allowed_docs: list[str] | None = None) -> list[dict[str, float]]:
        """One {doc_id: score} per query row, best first, restricted to `allowed_docs`."""
        allowed = None
        if allowed_docs is not None and len(allowed_docs) < len(self.doc_ids):
            allowed = np.array([self._row[d] for d in allowed_docs], dtype=np.int64)
            if len(allowed) == 0:
                return [{} for _ in range(len(q_vecs))]
        scores, rows = search(self.index, q_vecs, k, allowed)
        return [{self.doc_ids[r]: float(s) for s, r in zip(srow, rrow) if r >= 0}
                for srow, rrow in zip(scores, rows)]

    def search_task(self, q_ids: list[str], q_vecs: np.ndarray, pools: dict, k: int = 100
                    ) -> dict[str, dict[str, float]]:
        """A run over `Task.pools()`: each query searches only its pool's documents."""
        row = {q: i for i, q in enumerate(q_ids)}
        run: dict[str, dict[str, float]] = {}
        for pool_qids, pool_docs in pools.values():
            qs = [q for q in pool_qids if q in row]
            if not qs:
                continue
            hits = self.search(q_vecs[[row[q] for q in qs]], k, pool_docs)
            run.update(zip(qs, hits))
        return run

    def save(self, folder: str | Path) -> None:
        with atomic_dir(folder) as tmp:
            faiss.write_index(self.index, str(tmp / "index.faiss"))
            (tmp / "doc_ids.json").write_text(json.dumps(self.doc_ids), encoding="utf-8")
            (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> "DenseIndex":
        folder = Path(folder)
        meta = read_json(folder / "meta.json") if (folder / "meta.json").exists() else {}
        return cls(load_index(folder / "index.faiss"), read_json(folder / "doc_ids.json"), meta)


def fuse_passages(passage_vecs: np.ndarray, doc_ids: list[str],
                  generated: dict[str, np.ndarray], alpha: float,
                  mode: Literal["sum", "mean"] = "sum", renormalize: bool = False) -> np.ndarray:
    """xQG: row i becomes (1-alpha) p_i + alpha * sum (or mean) of generated[doc_ids[i]].
    Rows without generated queries stay p_i. Returns a new array; inputs are not modified."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
    if mode not in ("sum", "mean"):
        raise ConfigError(f"fusion mode must be 'sum' or 'mean', got {mode!r}")
    if len(doc_ids) != len(passage_vecs):
        raise ConfigError(f"{len(doc_ids)} doc ids for {len(passage_vecs)} passage vectors")
    out = np.array(passage_vecs, dtype=np.float32, copy=True)  # (n, d)
    for i, doc_id in enumerate(doc_ids):
        q = generated.get(doc_id)
        if q is None or len(q) == 0:
            continue
        q = np.asarray(q, dtype=np.float32).reshape(-1, out.shape[1])  # (m_i, d)
        agg = q.sum(axis=0) if mode == "sum" else q.mean(axis=0)
        out[i] = (1.0 - alpha) * out[i] + alpha * agg
    if renormalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def encode_generated(encoder, rows: list[dict], cache_dir: str | Path,
                     batch_size: int = 64) -> dict[str, np.ndarray]:
    """Query-encoder vectors of generated questions, grouped by passage: {doc_id: (m, d)}.
    Rows come from `xlir.qgen.read_generated`; empty questions are left out. Vectors are
    cached like any query set (keyed by row line and text)."""
    from xlir.encode import encode_queries  # torch: a saved index searched alone never loads it

    texts = {f"{r['doc_id']}|{r['line']}": r["question"] for r in rows if r["question"].strip()}
    ids, vecs = encode_queries(encoder, texts, cache_dir, batch_size)
    grouped: dict[str, list[np.ndarray]] = {}
    for key, vec in zip(ids, vecs):
        grouped.setdefault(key.rsplit("|", 1)[0], []).append(vec)
    return {doc: np.stack(v) for doc, v in grouped.items()}
