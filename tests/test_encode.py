"""Cached, sharded, resumable embeddings: reuse, invalidation, resume after a kill, workers."""

from __future__ import annotations

import numpy as np
import pytest
from counting_encoder import Counting

from xlir.encode import encode_corpus, encode_queries
from xlir.encoder import load_encoder

CORPUS = {f"d{i}": {"title": t.split()[0], "text": t} for i, t in enumerate(
    ["the river runs through the city", "the book was written by a poet", "the war ended",
     "Kano birni ne a Najeriya", "Nairobi ni mji mkuu wa Kenya"])}


@pytest.fixture(scope="module")
def encoder(tiny_st_encoder_dir):
    return load_encoder(tiny_st_encoder_dir)


def test_cache_reuse_and_invalidation(encoder, tmp_path):
    enc = Counting(encoder)
    ids, vecs = encode_corpus(enc, CORPUS, tmp_path, batch_size=2, shard_size=2)
    assert ids == list(CORPUS) and vecs.shape == (5, encoder.dim) and enc.count == 5
    np.testing.assert_allclose(vecs, encoder.encode_passages(list(CORPUS.values())), atol=1e-6)
    assert len(list(next(tmp_path.glob("passages-*")).glob("shard-*.npy"))) == 3
    encode_corpus(enc, CORPUS, tmp_path, shard_size=2)
    assert enc.count == 5  # same model, same content: nothing encoded
    changed = dict(CORPUS, d0={"title": "x", "text": "changed"})
    encode_corpus(enc, changed, tmp_path, shard_size=2)
    assert enc.count == 10 and len(list(tmp_path.glob("passages-*"))) == 2


def test_resume_after_kill(encoder, tmp_path):
    enc = Counting(encoder)
    _, full = encode_corpus(enc, CORPUS, tmp_path, shard_size=2)
    folder = next(tmp_path.glob("passages-*"))
    (folder / "shard-00001.npy").unlink()  # as if killed while writing shard 1
    _, again = encode_corpus(enc, CORPUS, tmp_path, shard_size=2)
    assert enc.count == 5 + 2
    np.testing.assert_array_equal(full, again)


def test_queries_cached(encoder, tmp_path):
    qs = {"q1": "where is the river", "q2": "who wrote the book"}
    ids, vecs = encode_queries(encoder, qs, tmp_path)
    np.testing.assert_allclose(vecs, encoder.encode_queries(list(qs.values())), atol=1e-6)
    assert ids == ["q1", "q2"] and len(list(tmp_path.glob("queries-*"))) == 1


def test_two_workers_match_one(encoder, tmp_path):
    _, one = encode_corpus(encoder, CORPUS, tmp_path / "one", shard_size=2)
    _, two = encode_corpus(encoder, CORPUS, tmp_path / "two", shard_size=2, num_workers=2)
    np.testing.assert_allclose(one, two, atol=1e-6)


@pytest.mark.parametrize("damage", ["manifest", "shard", "ids"])
def test_a_corrupt_cache_file_is_named_and_only_its_shard_redone(tiny_st_encoder_dir, tmp_path, damage):
    from xlir.encode import encode_corpus
    from xlir.encoder import load_encoder
    from xlir.errors import InputError

    enc = load_encoder(str(tiny_st_encoder_dir), max_length=32)
    corpus = {f"d{i}": {"title": "", "text": f"passage number {i}"} for i in range(5)}
    ids, vecs = encode_corpus(enc, corpus, tmp_path, batch_size=2, shard_size=2)
    folder = next(tmp_path.rglob("manifest.json")).parent
    target = {"manifest": folder / "manifest.json", "shard": folder / "shard-00001.npy",
              "ids": folder / "shard-00001.ids.json"}[damage]
    target.write_bytes(b"[1, 2, 3]" if damage != "shard" else target.read_bytes()[:40])
    with pytest.raises(InputError) as e:
        encode_corpus(enc, corpus, tmp_path, batch_size=2, shard_size=2)
    assert e.value.path == target
    if damage != "manifest":  # do what the message says: delete, rerun, get the same vectors
        target.unlink()
        (folder / "shard-00001.npy").unlink(missing_ok=True)
        again_ids, again = encode_corpus(enc, corpus, tmp_path, batch_size=2, shard_size=2)
        assert again_ids == ids and np.allclose(again, vecs, atol=1e-6)
