"""Language-constrained shared-prefix decoding on the tiny Gemma-3 fixture: greedy output equals
Hugging Face `generate` with a logits processor that adds the same per-row scores (-inf where
a row may not write, a bias elsewhere), for the fast decoder and the Hugging Face-cache
decoder alike; a language's scores come from its text minus what an evaluated split holds,
biased towards pieces typical of it over the background languages."""

from __future__ import annotations

import pytest

from xlir import qgen, qgen_decode, qgen_vocab
from xlir.errors import ConfigError

PASSAGES = [("d1", "Kano", "Kano birni ne a Najeriya"),
            ("d2", "", "the river runs through the city of Lagos in 1999"),
            ("d3", "Nairobi", "Nairobi ni mji mkuu wa Kenya the capital")]
LANGS = ["hau_Latn", "swh_Latn", "eng_Latn"]


@pytest.fixture(scope="module")
def tiny(tiny_causal_lm_dir):
    return qgen.load_generator(tiny_causal_lm_dir)


def _scores(tokenizer, bias: bool):
    """Per language a score vector: two disjoint halves of the vocabulary (plus eos), so rows
    of different languages see different sets and a wrong row-to-set mapping changes the
    output; with `bias`, allowed ids also get distinct non-zero biases."""
    import torch

    size = len(tokenizer)
    out = {}
    for lang, keep in (("hau_Latn", range(size // 2)), ("swh_Latn", range(size // 2, size)),
                       ("eng_Latn", range(0, size // 2, 3))):
        scores = torch.full((size,), float("-inf"))
        idx = torch.tensor([*keep, tokenizer.eos_token_id])
        generator = torch.Generator().manual_seed(len(out))
        scores[idx] = torch.randn(len(idx), generator=generator) * 3 if bias else 0.0
        out[lang] = scores
    return out


def _reference(model, tokenizer, title, text, lang, cfg, stops, scores=None):
    """Per-prompt HF `generate`, greedy, with processors adding the row's scores (its
    language's, its passage's names at 0, as generate_questions builds them) and banning a
    repeated n-gram of new tokens (cfg.no_repeat_ngram; HF's own rule would also count the
    prompt)."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    ids = (qgen.passage_ids(tokenizer, title, text, cfg.max_passage_tokens)
           + qgen.tail_ids(tokenizer, lang))
    processors = []
    if scores is not None:
        row = qgen_vocab.row_scores(scores[lang],
                                    qgen_vocab.passage_name_ids(tokenizer, title, text))

        class Add(LogitsProcessor):
            def __call__(self, input_ids, logits):
                return logits.float() + row  # in float32, as the decoders add it

        processors.append(Add())
    n = cfg.no_repeat_ngram

    class NoRepeatNew(LogitsProcessor):
        def __call__(self, input_ids, logits):
            gen = input_ids[0, len(ids):].tolist()
            if n and len(gen) >= n - 1:
                tail = gen[len(gen) - n + 1:]
                for j in range(len(gen) - n + 1):
                    if gen[j:j + n - 1] == tail:
                        logits[0, gen[j + n - 1]] = float("-inf")
            return logits

    processors.append(NoRepeatNew())
    out = model.generate(input_ids=torch.tensor([ids]),
                         attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         do_sample=False, max_new_tokens=cfg.max_new_tokens, eos_token_id=stops,
                         pad_token_id=tokenizer.pad_token_id,
                         logits_processor=LogitsProcessorList(processors))
    return [t for t in out[0, len(ids):].tolist() if t not in stops]


@pytest.mark.parametrize("bias, no_repeat", [(False, 0), (True, 2), (True, 1)])
@pytest.mark.parametrize("decoder", ["shared-prefix", "hf"])
def test_restricted_greedy_equals_generate_with_the_same_logits_processor(
        tiny, monkeypatch, decoder, bias, no_repeat):
    import math

    model, tokenizer, _ = tiny
    if decoder == "hf":  # the fallback for architectures the fast decoder does not know
        monkeypatch.setattr(qgen_decode, "supports", lambda model: False)
    assert qgen_decode.supports(model) == (decoder == "shared-prefix")
    cfg = qgen.GenerateConfig(languages=LANGS, decoding="greedy", max_new_tokens=12,
                              passages_per_batch=3, no_repeat_ngram=no_repeat)
    stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("l")]
    scores = _scores(tokenizer, bias)
    rows = qgen.generate_questions(model, tokenizer, PASSAGES, cfg, stops, scores=scores)
    free = qgen.generate_questions(model, tokenizer, PASSAGES, cfg, stops)
    for row in rows:
        _, title, text = next(p for p in PASSAGES if p[0] == row["doc_id"])
        expected = _reference(model, tokenizer, title, text, row["lang"], cfg, stops, scores)
        assert row["token_ids"] == expected, (row["doc_id"], row["lang"])
        names = qgen_vocab.passage_name_ids(tokenizer, title, text)
        allowed = {i for i, v in enumerate(scores[row["lang"]].tolist()) if not math.isinf(v)}
        assert set(row["token_ids"]) <= allowed | names
        grams = [tuple(row["token_ids"][j:j + no_repeat])
                 for j in range(len(row["token_ids"]) - no_repeat + 1)] if no_repeat else []
        assert len(grams) == len(set(grams))
    assert [r["token_ids"] for r in rows] != [r["token_ids"] for r in free]  # it did restrict
    if no_repeat:  # and the rule did bite: without it some row repeats itself
        import dataclasses

        loose = qgen.generate_questions(model, tokenizer, PASSAGES,
                                        dataclasses.replace(cfg, no_repeat_ngram=0), stops,
                                        scores=scores)
        assert [r["token_ids"] for r in loose] != [r["token_ids"] for r in rows]


def test_fast_decoder_equals_the_hf_cache_decoder_with_uneven_prefixes_and_stops(tiny):
    import torch

    model, tokenizer, _ = tiny
    prefixes = [qgen.passage_ids(tokenizer, t, x, 64) for _, t, x in PASSAGES]
    assert len({len(p) for p in prefixes}) > 1
    tails = [qgen.tail_ids(tokenizer, lang) for _ in PASSAGES for lang in LANGS]
    owner = [i for i in range(len(PASSAGES)) for _ in LANGS]

    def greedy(logits, alive):
        return logits.argmax(-1)

    free = qgen_decode.SharedPrefixDecoder(model).decode(prefixes, tails, owner, 10,
                                                         [tokenizer.eos_token_id], greedy)
    # Stop on tokens the rows write at different steps, so rows leave the batch one by one.
    stops = [tokenizer.eos_token_id, free[0][2], free[-1][6]]
    fast = qgen_decode.SharedPrefixDecoder(model).decode(prefixes, tails, owner, 10, stops,
                                                         greedy)
    slow = qgen_decode.HFDecoder(model, tokenizer.pad_token_id).decode(
        prefixes, tails, owner, 10, stops, greedy)
    assert fast == slow
    assert len({len(o) for o in fast}) > 1  # rows left the batch at different steps
    with pytest.raises(ValueError, match="contiguous"):
        qgen_decode.SharedPrefixDecoder(model).decode(prefixes, tails, owner[::-1], 2, stops,
                                                      greedy)
    assert torch.is_inference_mode_enabled() is False


def test_a_language_without_a_vocabulary_is_refused(tiny):
    model, tokenizer, _ = tiny
    cfg = qgen.GenerateConfig(languages=LANGS, decoding="greedy", max_new_tokens=2)
    with pytest.raises(ConfigError, match="eng_Latn"):
        qgen.generate_questions(model, tokenizer, PASSAGES[:1], cfg,
                                scores={k: v for k, v in _scores(tokenizer, False).items()
                                        if k != "eng_Latn"})


def test_passage_names_and_neutral_pieces(tiny):
    _, tokenizer, _ = tiny
    names = qgen_vocab.passage_name_ids(tokenizer, "Kano", "the city of Lagos in 1999 grew")
    expected = set()
    for word in ("Kano", "Lagos", "1999"):
        for variant in (word, " " + word):
            expected.update(tokenizer(variant, add_special_tokens=False)["input_ids"])
    assert names == expected
    assert qgen_vocab.passage_name_ids(tokenizer, "", "only lower case words") == set()
    assert qgen_vocab._neutral("▁1999,") and qgen_vocab._neutral("?")
    assert not qgen_vocab._neutral("▁Kano") and not qgen_vocab._neutral("<0x41>")
    shared = qgen_vocab.shared_ids(tokenizer, [tokenizer.eos_token_id])
    assert tokenizer.eos_token_id in shared
    assert all(qgen_vocab._neutral(p) for p in tokenizer.convert_ids_to_tokens(shared)
               if p != tokenizer.eos_token)


TEXTS = {"hau_Latn": ["Kano birni ne", "Kano birni ne a Najeriya"],
         "swh_Latn": ["mji mkuu wa Kenya", "Nairobi ni mji mkuu"],
         "eng_Latn": ["the river runs", "the city of Lagos"]}


def _fake_texts(lang, exclude=frozenset()):
    from xlir.data.checks import normalise

    rows = TEXTS.get(lang, [])
    kept = [t for t in rows if normalise(t) not in exclude]
    return ({"sib200": kept} if kept else {}), (
        {"sib200": len(rows) - len(kept)} if len(kept) != len(rows) else {})


def test_language_scores_leave_out_evaluated_sentences(tiny, monkeypatch):
    import math

    import torch

    from xlir.data.checks import normalise

    _, tokenizer, _ = tiny
    monkeypatch.setattr(qgen_vocab, "monolingual_texts", _fake_texts)
    stops = [tokenizer.eos_token_id]
    out = qgen_vocab.language_scores(tokenizer, ["hau_Latn"], stops, 0.0,
                                     exclude=frozenset({normalise("Kano birni ne a Najeriya")}))
    record = out["hau_Latn"]
    assert record["sentences"] == {"sib200": 1} and record["dropped"] == {"sib200": 1}
    scores = record["scores"]
    kano = tokenizer("Kano birni ne", add_special_tokens=False)["input_ids"]
    assert all(scores[i] == 0.0 for i in kano)  # strength 0: allowed, unbiased
    only_dropped = (set(tokenizer(" a Najeriya", add_special_tokens=False)["input_ids"])
                    - set(kano) - set(tokenizer(" Kano birni ne", add_special_tokens=False)[
                        "input_ids"]) - set(qgen_vocab.shared_ids(tokenizer, stops)))
    assert only_dropped and all(math.isinf(scores[i]) for i in only_dropped)
    assert record["ids"] == int(torch.isfinite(scores).sum())


def test_the_bias_favours_pieces_typical_of_the_language(tiny, monkeypatch):
    """log p_lang - log p_background, clipped and scaled: a piece only Hausa text has gets a
    positive score; shared pieces stay 0; twice the strength doubles every bias."""
    import torch

    _, tokenizer, _ = tiny
    monkeypatch.setattr(qgen_vocab, "monolingual_texts", _fake_texts)
    monkeypatch.setattr(qgen_vocab, "BACKGROUND", ("hau_Latn", "swh_Latn", "eng_Latn"))
    stops = [tokenizer.eos_token_id]
    half = qgen_vocab.language_scores(tokenizer, ["hau_Latn"], stops, 0.5)["hau_Latn"]["scores"]
    one = qgen_vocab.language_scores(tokenizer, ["hau_Latn"], stops, 1.0)["hau_Latn"]["scores"]
    finite = torch.isfinite(one)
    assert (one[finite] == 2 * half[finite]).all()
    assert (one[finite].abs() <= qgen_vocab.CLIP).all()
    kano = tokenizer(" Kano", add_special_tokens=False)["input_ids"]
    assert all(one[i] > 0 for i in kano)
    for i in qgen_vocab.shared_ids(tokenizer, stops):
        assert one[i] == 0.0
