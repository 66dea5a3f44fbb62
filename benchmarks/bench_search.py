"""Search latency of the three index kinds on synthetic 384-d vectors (e5-small's width):
ms/query for flat (exact), HNSW and IVF-PQ at 10k, 100k and 1M vectors, build time, and
recall@10 of the approximate kinds against flat, measured in one run.

    python benchmarks/bench_search.py --sizes 10000 100000 1000000

Vectors are clustered (1,000 random unit centres plus Gaussian noise, L2-normalised), closer
to real embeddings than uniform noise, on which no ANN index does well. Queries are fresh
draws from the same distribution. Index parameters are xlir's defaults (index.build_index).
At 1M, HNSW is skipped unless --hnsw-1m is given (its build takes many minutes on 2 cores),
and IVF-PQ is trained on a 100k sample.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def clustered(n: int, d: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):  # chunks keep peak memory near the output's size
        m = min(100_000, n - start)
        x = centres[rng.integers(0, len(centres), m)] + 0.08 * rng.standard_normal((m, d))
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def time_search(index, q: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    from xlir.index import search

    search(index, q[:4], k)  # warm-up
    start = time.perf_counter()
    _, ids = search(index, q, k)
    return (time.perf_counter() - start) * 1000 / len(q), ids


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def main() -> None:
    import faiss

    from xlir.index import build_index

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--hnsw-1m", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, dim {args.dim}, "
          f"k {args.k}")
    print(f"{'n':>9} {'kind':<6} {'build s':>8} {'ms/query':>9} {'recall@10':>9} {'queries':>8}")
    for n in args.sizes:
        docs = clustered(n, args.dim, rng, centres)
        nq = args.queries if n < 1_000_000 else min(args.queries, 50)
        q = clustered(nq, args.dim, rng, centres)
        exact = None
        for kind in ("flat", "hnsw", "ivfpq"):
            if kind == "hnsw" and n >= 1_000_000 and not args.hnsw_1m:
                print(f"{n:>9} {kind:<6} {'skipped (build too slow on 2 cores; --hnsw-1m)':>40}")
                continue
            start = time.perf_counter()
            if kind == "ivfpq" and n > 100_000:
                index = _ivfpq_sampled(docs, rng)
            else:
                index = build_index(docs, kind)
            build = time.perf_counter() - start
            ms, ids = time_search(index, q, args.k)
            if kind == "flat":
                exact = ids
            r = recall(ids, exact) if exact is not None else float("nan")
            print(f"{n:>9} {kind:<6} {build:>8.1f} {ms:>9.3f} {r:>9.3f} {nq:>8}", flush=True)
            del index


def _ivfpq_sampled(docs: np.ndarray, rng: np.random.Generator):
    """IVF-PQ with xlir's default parameters, trained on a 100k sample, then filled."""
    import faiss

    from xlir.index import build_index

    sample = docs[rng.choice(len(docs), 100_000, replace=False)]
    trained = build_index(sample, "ivfpq", nlist=int(4 * np.sqrt(len(docs))))
    trained.reset()
    trained.add(np.ascontiguousarray(docs))
    faiss.extract_index_ivf(trained).nprobe = 16
    return trained


if __name__ == "__main__":
    main()
