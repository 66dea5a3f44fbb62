"""Language-constrained shared-prefix decoding on the tiny Gemma-3 fixture: greedy output equals
Hugging Face `generate` with a logits processor that allows the same ids, for the fast decoder
and the Hugging Face-cache decoder alike; the output vocabulary of a language is built from
its text minus what an evaluated split holds."""

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


def _allowed(tokenizer):
    """Two disjoint halves of the vocabulary (plus eos): rows of different languages see
    different sets, so a wrong row-to-set mapping changes the output."""
    size = len(tokenizer)
    low = [i for i in range(size // 2)] + [tokenizer.eos_token_id]
    high = [i for i in range(size // 2, size)] + [tokenizer.eos_token_id]
    return {"hau_Latn": low, "swh_Latn": high, "eng_Latn": low[::3]}


def _reference(model, tokenizer, title, text, lang, cfg, stops, allowed):
    """Per-prompt HF `generate`, greedy, with a processor masking every id outside the row's
    set (its language's ids and its passage's names, as generate_questions builds it)."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    ids = (qgen.passage_ids(tokenizer, title, text, cfg.max_passage_tokens)
           + qgen.tail_ids(tokenizer, lang))
    keep = sorted(set(allowed[lang]) | qgen_vocab.passage_name_ids(tokenizer, title, text))

    class Only(LogitsProcessor):
        def __call__(self, input_ids, scores):
            mask = torch.full_like(scores, float("-inf"))
            mask[:, keep] = 0.0
            return scores + mask

    out = model.generate(input_ids=torch.tensor([ids]),
                         attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         do_sample=False, max_new_tokens=cfg.max_new_tokens, eos_token_id=stops,
                         pad_token_id=tokenizer.pad_token_id,
                         logits_processor=LogitsProcessorList([Only()]))
    return [t for t in out[0, len(ids):].tolist() if t not in stops]


@pytest.mark.parametrize("decoder", ["shared-prefix", "hf"])
def test_restricted_greedy_equals_generate_with_the_same_logits_processor(
        tiny, monkeypatch, decoder):
    model, tokenizer, _ = tiny
    if decoder == "hf":  # the fallback for architectures the fast decoder does not know
        monkeypatch.setattr(qgen_decode, "supports", lambda model: False)
    assert qgen_decode.supports(model) == (decoder == "shared-prefix")
    cfg = qgen.GenerateConfig(languages=LANGS, decoding="greedy", max_new_tokens=12,
                              passages_per_batch=3)
    stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("l")]
    allowed = _allowed(tokenizer)
    rows = qgen.generate_questions(model, tokenizer, PASSAGES, cfg, stops, allowed=allowed)
    free = qgen.generate_questions(model, tokenizer, PASSAGES, cfg, stops)
    for row in rows:
        _, title, text = next(p for p in PASSAGES if p[0] == row["doc_id"])
        expected = _reference(model, tokenizer, title, text, row["lang"], cfg, stops, allowed)
        assert row["token_ids"] == expected, (row["doc_id"], row["lang"])
        names = qgen_vocab.passage_name_ids(tokenizer, title, text)
        assert set(row["token_ids"]) <= set(allowed[row["lang"]]) | names
    assert [r["token_ids"] for r in rows] != [r["token_ids"] for r in free]  # it did restrict


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
                                allowed={"hau_Latn": [1], "swh_Latn": [1]})


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


def test_language_vocabulary_leaves_out_evaluated_sentences(tiny, monkeypatch):
    from xlir.data.checks import normalise

    _, tokenizer, _ = tiny
    texts = {"sib200": ["Kano birni ne", "mji mkuu"], "afriqa": ["the river runs"]}

    def fake(lang, exclude=frozenset()):
        kept = {s: [t for t in rows if normalise(t) not in exclude] for s, rows in texts.items()}
        dropped = {s: len(rows) - len(kept[s]) for s, rows in texts.items()
                   if len(rows) != len(kept[s])}
        return {s: v for s, v in kept.items() if v}, dropped

    monkeypatch.setattr(qgen_vocab, "monolingual_texts", fake)
    record = qgen_vocab.language_vocabulary(tokenizer, "hau_Latn",
                                            exclude=frozenset({normalise("the river runs")}))
    assert record["sentences"] == {"sib200": 2} and record["dropped"] == {"afriqa": 1}
    river = set(tokenizer(" river", add_special_tokens=False)["input_ids"])
    kano = set(tokenizer("Kano birni ne", add_special_tokens=False)["input_ids"])
    assert kano <= set(record["ids"])
    assert not river <= set(record["ids"])
