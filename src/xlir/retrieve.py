"""Where a system becomes a run: the one home of retrieval.

A run is {query id: {doc id: score}}. Every kind of system is made here:
- `dense_run`: encode a task's passages and queries with one encoder, search each query's pool;
- `dense_run_per_language`: each text through its own language's encoder (MAD-X with the
  language-adapter swap), one index;
- `augmented_run`: xQG, passages fused with their generated questions'
  vectors, `(1 - a) p + a * sum(q)` (`fused_passages`, shared with `xlir index --augment`);
- `bm25_run`: BM25 over each pool (xlir.bm25 holds the index and the tokenizer);
- `hybrid_run`: two runs fused by RRF or min-max interpolation (below).

`rank` is the one ordering of a query's documents, score descending and ties by doc id
ascending: hybrid fusion, TREC files and the metrics (xlir.evaluate) all use it, so a run has
one ranking wherever it is read. `write_trec_run` / `read_trec_run` are the TREC format.

Hybrid runs re-implement ranx's two fusions in plain Python because importing ranx compiles
numba kernels for 15-100 s on the 2-core machine; tests/test_evaluate.py checks the
equivalence against ranx (opt-in: XLIR_RANX_TEST=1). "rrf" is ranx `fuse(method="rrf")`
(score = sum 1/(60 + rank), unweighted; `weight` is ignored), "interpolate" is ranx
`fuse(norm="min-max", method="wsum", weights=[w, 1-w])` (per query min-max normalisation; a run
whose scores are all equal normalises to 0, as in ranx; a document missing from a run
contributes 0).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from xlir.bm25 import BM25
from xlir.data.readers import read_lines
from xlir.errors import ConfigError, InputError
from xlir.storage import atomic_path

log = logging.getLogger(__name__)

Run = dict[str, dict[str, float]]


def rank(docs: dict[str, float]) -> list[tuple[str, float]]:
    """(doc id, score) best first; equal scores by doc id ascending."""
    return sorted(docs.items(), key=lambda x: (-x[1], x[0]))


# ---- dense ------------------------------------------------------------------------------------
def passage_vectors(encoder, corpus: dict, cache_dir: str | Path | None = None,
                    batch_size: int = 64, show_progress: bool = False, num_workers: int = 1
                    ) -> tuple[list[str], np.ndarray]:
    """(doc ids, vectors) of a corpus; with `cache_dir`, cached there and reused (encode.py)."""
    from xlir.encode import encode_corpus  # torch: BM25 and hybrid runs never load it

    if cache_dir is not None:
        return encode_corpus(encoder, corpus, cache_dir, batch_size, show_progress=show_progress,
                             num_workers=num_workers)
    doc_ids = list(corpus)
    return doc_ids, encoder.encode_passages([corpus[d] for d in doc_ids], batch_size, show_progress)


def query_vectors(encoder, queries: dict[str, str], cache_dir: str | Path | None = None,
                  batch_size: int = 64, show_progress: bool = False
                  ) -> tuple[list[str], np.ndarray]:
    """(query ids, vectors); with `cache_dir`, cached there and reused."""
    from xlir.encode import encode_queries  # torch: BM25 and hybrid runs never load it

    if cache_dir is not None:
        return encode_queries(encoder, queries, cache_dir, batch_size, show_progress=show_progress)
    q_ids = list(queries)
    return q_ids, encoder.encode_queries([queries[q] for q in q_ids], batch_size, show_progress)


def search_pools(doc_ids: list[str], d_vecs: np.ndarray, q_ids: list[str], q_vecs: np.ndarray,
                 task, k: int = 100, index_kind: str = "flat") -> Run:
    """Each query searches its own pool (`Task.pools()`) of one index over every passage."""
    from xlir.index import DenseIndex  # faiss: BM25 and hybrid runs never load it

    return DenseIndex.build(d_vecs, doc_ids, kind=index_kind).search_task(q_ids, q_vecs,
                                                                          task.pools(), k)


def dense_run(encoder, task, k: int = 100, index_kind: str = "flat",
              cache_dir: str | Path | None = None, batch_size: int = 64,
              show_progress: bool = False) -> Run:
    """Encode the task's corpus and queries with `encoder`, search each pool -> run.
    With `cache_dir` the embeddings are cached there (encode.py) and reused."""
    doc_ids, d_vecs = passage_vectors(encoder, task.corpus, cache_dir, batch_size, show_progress)
    q_ids, q_vecs = query_vectors(encoder, task.queries, cache_dir, batch_size, show_progress)
    return search_pools(doc_ids, d_vecs, q_ids, q_vecs, task, k, index_kind)


def dense_run_per_language(encoder_for, task, k: int = 100, cache_dir: str | Path | None = None,
                           batch_size: int = 64) -> Run:
    """A dense run in which every text is encoded by its own language's encoder: passages by
    `task.doc_lang`, queries by `task.query_lang`; `encoder_for(lang)` gives the encoder (MAD-X
    with the language-adapter swap: the same task adapter over each language's adapter). One
    encoder is loaded at a time; the vectors of all languages share one index."""
    doc_lang = getattr(task, "doc_lang", None) or {}
    langs = sorted({doc_lang.get(d, "") for d in task.corpus} | set(task.query_lang.values()))
    doc_ids, d_vecs, q_ids, q_vecs = [], [], [], []
    for lang in langs:
        docs = {d: p for d, p in task.corpus.items() if doc_lang.get(d, "") == lang}
        queries = {q: t for q, t in task.queries.items() if task.query_lang.get(q) == lang}
        encoder = encoder_for(lang or None)
        for encode, items, ids, vecs in ((passage_vectors, docs, doc_ids, d_vecs),
                                         (query_vectors, queries, q_ids, q_vecs)):
            if items:
                got_ids, got = encode(encoder, items, cache_dir, batch_size)
                ids.extend(got_ids)
                vecs.append(got)
        del encoder
        log.info("encoded %s: %d passages, %d queries", lang or "(no language)", len(docs),
                 len(queries))
    return search_pools(doc_ids, np.concatenate(d_vecs), q_ids, np.concatenate(q_vecs), task, k)


# ---- xQG --------------------------------------------------------------------------------------
def fused_passages(encoder, doc_ids: list[str], d_vecs: np.ndarray, rows: list[dict],
                   alpha: float, cache_dir: str | Path, batch_size: int = 64,
                   fusion: str = "sum", renormalize: bool = False
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(fused passage vectors, generated-question vectors by passage) for the passages
    `doc_ids`: rows from `xlir.qgen.read_generated`, encoded as queries (cached in
    `cache_dir`), each passage's fused as `(1 - alpha) p + alpha * sum (or mean) q`."""
    from xlir.index import encode_generated, fuse_passages  # faiss, torch

    generated = encode_generated(encoder, rows, cache_dir, batch_size)
    mine = set(doc_ids)
    generated = {d: v for d, v in generated.items() if d in mine}
    return (fuse_passages(d_vecs, doc_ids, generated, alpha, mode=fusion, renormalize=renormalize),
            generated)


def augmented_run(encoder, task, rows: list[dict], alpha: float, *,
                  cache_dir: str | Path, generated_cache: str | Path, k: int = 100,
                  batch_size: int = 64, fusion: str = "sum", renormalize: bool = False
                  ) -> tuple[Run, int]:
    """xQG: the task's passages fused with their generated questions, searched with its
    queries -> (run, generated questions fused into the task's passages). `rows` may hold
    other pools' questions too: every pool's rows share one embedding cache."""
    doc_ids, d_vecs = passage_vectors(encoder, task.corpus, cache_dir, batch_size)
    q_ids, q_vecs = query_vectors(encoder, task.queries, cache_dir, batch_size)
    fused, generated = fused_passages(encoder, doc_ids, d_vecs, rows, alpha, generated_cache,
                                      batch_size, fusion, renormalize)
    run = search_pools(doc_ids, fused, q_ids, q_vecs, task, k)
    return run, sum(len(v) for v in generated.values())


# ---- lexical and hybrid -----------------------------------------------------------------------
def bm25_run(task, k: int = 100, k1: float = 0.9, b: float = 0.4,
             stopwords: frozenset[str] = frozenset(), min_len: int = 2,
             use_title: bool = True) -> Run:
    """BM25 over `task`, one index per pool (`Task.pools()`) -> run. Passages are
    "{title} {text}" unless `use_title` is False (or the task has no titles)."""
    run: Run = {}
    for key, (qids, doc_ids) in task.pools().items():
        if not qids or not doc_ids:
            continue
        index = BM25({d: task.corpus[d] for d in doc_ids}, k1=k1, b=b, stopwords=stopwords,
                     min_len=min_len, use_title=use_title)
        run.update(zip(qids, index.search([task.queries[q] for q in qids], k)))
        log.debug("bm25 pool %s: %d queries over %d docs", key, len(qids), len(doc_ids))
    return run


def hybrid_run(run_a: Run, run_b: Run, method: str = "rrf", weight: float = 0.5,
               k: int = 100, rrf_k: int = 60) -> Run:
    """Fuse two runs (see the module docstring). `weight` is run_a's share ("interpolate")."""
    if method not in ("rrf", "interpolate"):
        raise ConfigError(f"fusion method must be 'rrf' or 'interpolate', got {method!r}")
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"weight must be in [0, 1], got {weight}")
    out: Run = {}
    for q in sorted(set(run_a) | set(run_b)):
        a, b = run_a.get(q, {}), run_b.get(q, {})
        if method == "rrf":
            na, nb, wa, wb = _rrf(a, rrf_k), _rrf(b, rrf_k), 1.0, 1.0
        else:
            na, nb, wa, wb = _minmax(a), _minmax(b), weight, 1.0 - weight
        fused = {d: wa * na.get(d, 0.0) + wb * nb.get(d, 0.0) for d in set(a) | set(b)}
        out[q] = dict(rank(fused)[:k])
    return out


def _rrf(scores: dict[str, float], k: int) -> dict[str, float]:
    return {d: 1.0 / (k + r) for r, (d, _) in enumerate(rank(scores), start=1)}


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    return {d: (s - lo) / (hi - lo) if hi > lo else 0.0 for d, s in scores.items()}


# ---- TREC files -------------------------------------------------------------------------------
def write_trec_run(run: Run, path: str | Path, tag: str = "xlir") -> None:
    """TREC format `qid Q0 docid rank score tag`, each query's docs best first."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for q, docs in run.items():
            for position, (d, s) in enumerate(rank(docs), start=1):
                f.write(f"{q} Q0 {d} {position} {s:.6f} {tag}\n")


def read_trec_run(path: str | Path) -> Run:
    run: Run = {}
    for n, line in read_lines(path):  # InputError for a missing, non-UTF-8 or folder path
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            raise InputError(f"expected 6 columns 'qid Q0 docid rank score tag', got "
                             f"{len(parts)}", path, n)
        try:
            run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
        except ValueError:
            raise InputError(f"score {parts[4]!r} is not a number", path, n, "score") from None
    return run
