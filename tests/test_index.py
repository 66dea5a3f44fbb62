"""FAISS indexes against a numpy reference, HNSW recall measured, save/load, pools, xQG fusion
against a hand-computed vector."""

from __future__ import annotations

import numpy as np
import pytest

from xlir.errors import ConfigError
from xlir.index import DenseIndex, build_index, fuse_passages, load_index, save_index, search


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_equals_numpy_argsort():
    rng = np.random.default_rng(0)
    docs, queries = _unit(rng, 500, 16), _unit(rng, 20, 16)
    scores, ids = search(build_index(docs, "flat"), queries, 10)
    ref = queries @ docs.T  # (20, 500)
    ref_ids = np.argsort(-ref, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, np.take_along_axis(ref, ref_ids, 1), rtol=1e-5)


def test_hnsw_recall_at_10_vs_exact():
    rng = np.random.default_rng(1)
    docs, queries = _unit(rng, 5000, 32), _unit(rng, 100, 32)
    _, exact = search(build_index(docs, "flat"), queries, 10)
    _, approx = search(build_index(docs, "hnsw", m=16, ef_search=64), queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.9


def test_ivfpq_builds_and_finds_itself():
    rng = np.random.default_rng(2)
    docs = _unit(rng, 2000, 32)
    index = build_index(docs, "ivfpq", nprobe=64)
    _, ids = search(index, docs[:50], 10)
    # PQ is lossy, but a vector's own row should almost always be among its top 10.
    assert np.mean([i in row for i, row in enumerate(ids)]) >= 0.9


def test_save_load_and_selector(tmp_path):
    rng = np.random.default_rng(3)
    docs = _unit(rng, 100, 8)
    index = DenseIndex.build(docs, [f"d{i}" for i in range(100)], kind="hnsw")
    index.save(tmp_path / "idx")
    back = DenseIndex.load(tmp_path / "idx")
    assert back.doc_ids == index.doc_ids and back.meta["kind"] == "hnsw"
    hits = back.search(docs[:1], 5, allowed_docs=["d7", "d9", "d0"])[0]
    assert set(hits) == {"d0", "d7", "d9"} and next(iter(hits)) == "d0"
    save_index(build_index(docs), tmp_path / "flat.faiss")
    assert load_index(tmp_path / "flat.faiss").ntotal == 100


def test_search_task_per_pool():
    docs = np.eye(4, dtype=np.float32)
    index = DenseIndex.build(docs, ["a", "b", "c", "d"])
    pools = {"x": (["q1"], ["a", "b"]), "y": (["q2"], ["c", "d"])}
    queries = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], np.float32)  # q1 points at c, q2 at a
    run = index.search_task(["q1", "q2"], queries, pools, 10)
    assert set(run["q1"]) == {"a", "b"} and set(run["q2"]) == {"c", "d"}


def test_fuse_passages_by_hand():
    p = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    gen = {"a": np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32)}
    out = fuse_passages(p, ["a", "b"], gen, alpha=0.1)
    # a: 0.9 * (1, 0) + 0.1 * ((0, 1) + (1, 1)) = (1.0, 0.2); b has none: unchanged.
    np.testing.assert_allclose(out, [[1.0, 0.2], [0.0, 1.0]], rtol=1e-6)
    mean = fuse_passages(p, ["a", "b"], gen, alpha=0.1, mode="mean")
    np.testing.assert_allclose(mean[0], [0.95, 0.1], rtol=1e-6)  # 0.9 (1,0) + 0.1 (.5, 1)
    unit = fuse_passages(p, ["a", "b"], gen, alpha=0.1, renormalize=True)
    np.testing.assert_allclose(unit[0], np.array([1.0, 0.2]) / np.hypot(1.0, 0.2), rtol=1e-6)
    assert p[0, 1] == 0.0  # input untouched
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError):
            fuse_passages(p, ["a", "b"], gen, alpha=bad)
