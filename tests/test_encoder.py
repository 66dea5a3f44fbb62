"""BiEncoder on the tiny sentence-transformers fixture: agrees with sentence-transformers'
own encode (fp32), keeps input order, bf16 agrees with fp32, fingerprints what changes
embeddings, dispatches loading."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import xlir.encoder as encoder_module
from xlir.encoder import BiEncoder, load_encoder, passage_text
from xlir.errors import ConfigError, ModelNotFoundError


@pytest.fixture(scope="module")
def encoder(tiny_st_encoder_dir):
    return load_encoder(tiny_st_encoder_dir, backend="fp32")


def test_queries_match_sentence_transformers(encoder):
    texts = ["where is the river", "who wrote the book", "Nairobi", "the war ended in the year"]
    got = encoder.encode_queries(texts, batch_size=2)
    ref = encoder.model.encode(texts, prompt_name="query", normalize_embeddings=True,
                               convert_to_numpy=True)
    assert got.dtype == np.float32 and got.shape == (4, encoder.dim)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


def test_passages_title_text_and_order(encoder):
    passages = [{"title": "Kano", "text": "birni ne a Najeriya"}, {"title": "", "text": "the book"},
                {"title": "a poet", "text": ""}]
    assert [passage_text(p) for p in passages] == ["Kano birni ne a Najeriya", "the book", "a poet"]
    got = encoder.encode_passages(passages, batch_size=1)
    ref = encoder.model.encode([passage_text(p) for p in passages], prompt_name="passage",
                               normalize_embeddings=True)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # Batching and length sorting do not change any row.
    np.testing.assert_allclose(encoder.encode_passages(passages, batch_size=64), got, atol=1e-5)


def test_bf16_is_the_default_and_agrees_with_fp32(tiny_st_encoder_dir, encoder, tiny_texts):
    bf16 = load_encoder(tiny_st_encoder_dir)
    assert bf16.backend == "bf16" and bf16.fingerprint != encoder.fingerprint
    passages = [{"title": "Kano", "text": t} for t in tiny_texts]
    for a, b in ((bf16.encode_queries(tiny_texts), encoder.encode_queries(tiny_texts)),
                 (bf16.encode_passages(passages), encoder.encode_passages(passages))):
        assert a.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
        cosine = np.sum(a * b, axis=1)
        # bf16 matmuls keep 8 mantissa bits: close to fp32, yet not bitwise fp32.
        assert cosine.min() > 0.999 and not np.array_equal(a, b)


def test_fingerprint_stable_and_sensitive(tiny_st_encoder_dir, encoder):
    again = load_encoder(tiny_st_encoder_dir, backend="fp32")
    assert again.fingerprint == encoder.fingerprint
    assert load_encoder(tiny_st_encoder_dir, max_length=16, backend="fp32").fingerprint != encoder.fingerprint
    assert load_encoder(tiny_st_encoder_dir, query_prefix="", backend="fp32").fingerprint != encoder.fingerprint
    assert encoder.query_prefix == "query: " and encoder.passage_prefix == "passage: "


def test_max_length_truncates(tiny_st_encoder_dir, tiny_texts):
    short = load_encoder(tiny_st_encoder_dir, max_length=4)
    long_text = " ".join(tiny_texts)
    a = short.encode_queries([long_text])
    b = short.encode_queries([long_text + " the river runs through the city"])
    np.testing.assert_allclose(a, b, atol=1e-6)  # only the first 4 tokens count


def test_int8_close_to_fp32_and_warns_every_time(tiny_st_encoder_dir, encoder, tiny_texts,
                                                 caplog):
    with caplog.at_level(logging.WARNING, logger="xlir.encoder"):
        q8 = load_encoder(tiny_st_encoder_dir, backend="int8")
        load_encoder(tiny_st_encoder_dir, backend="int8")
    assert sum("int8 encoding loses" in r.getMessage() for r in caplog.records) == 2
    assert q8.fingerprint != encoder.fingerprint
    a, b = encoder.encode_queries(tiny_texts), q8.encode_queries(tiny_texts)
    assert np.min(np.sum(a * b, axis=1)) > 0.95
    with pytest.raises(ConfigError):
        load_encoder(tiny_st_encoder_dir, backend="int4")


def test_load_dispatch(tmp_path, tiny_st_encoder_dir, monkeypatch):
    from sentence_transformers import SentenceTransformer

    calls = []
    tuned = tmp_path / "run"
    tuned.mkdir()
    (tuned / "xlir-model.json").write_text("{}")
    monkeypatch.setattr(encoder_module, "load_tuned",
                        lambda p, madx_lang=None: calls.append((p, madx_lang))
                        or SentenceTransformer(str(tiny_st_encoder_dir)))
    assert isinstance(load_encoder(tuned), BiEncoder) and calls == [(tuned, None)]
    load_encoder(tuned, madx_lang="hau_Latn")  # a MAD-X swap's language reaches load_tuned
    assert calls[-1] == (tuned, "hau_Latn")
    with pytest.raises(ModelNotFoundError, match="madx_lang needs a trained MAD-X run"):
        load_encoder(tiny_st_encoder_dir, madx_lang="hau_Latn")
    monkeypatch.setattr(encoder_module, "resolve_encoder", lambda name=None: tiny_st_encoder_dir)
    assert load_encoder().source == str(tiny_st_encoder_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError):
        load_encoder(tmp_path / "empty")
