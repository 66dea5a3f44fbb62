"""What a generator may write in each language: the output vocabulary of language-constrained
query generation (xlir.qgen, `GenerateConfig.vocabulary = "language"`).

A row writing Hausa may emit:
- every token id of the Hausa monolingual text the data mirror has (xlir.data.monolingual:
  SIB-200 sentences, MasakhaNER 2.0 news, AfriQA questions), each sentence tokenized at the
  start of a line and after a space, minus every sentence an evaluated split holds (`exclude`);
- digits, punctuation, symbols and whitespace pieces, and the stop tokens (eos, newlines);
- the pieces of the names and numbers of its own passage (words that start with a capital
  letter or hold a digit), so "Wanene Barack Obama?" stays writable from an English passage.

Everything else (English or French function words, other scripts) is out: the row's logits are
-inf there. Without the restriction a briefly tuned 270M generator drifts into English, French
or a neighbouring language (the issue measured 0.55-0.81 language-ID agreement).

This module builds id sets; xlir.qgen_decode applies them.
"""

from __future__ import annotations

import re
import unicodedata

from xlir.data.monolingual import monolingual_texts

_WORD = re.compile(r"[\w'’-]+")
_BATCH = 512


def _ids(tokenizer, texts: list[str]) -> set[int]:
    out: set[int] = set()
    for i in range(0, len(texts), _BATCH):
        chunk = texts[i:i + _BATCH]
        for variant in (chunk, [" " + t for t in chunk]):
            for ids in tokenizer(variant, add_special_tokens=False)["input_ids"]:
                out.update(ids)
    return out


def language_vocabulary(tokenizer, lang: str, exclude: frozenset[str] = frozenset()) -> dict:
    """-> {lang, ids (sorted), sentences (per source), dropped (per source, as evaluated)}.
    The ids are only those of the language's text: `allowed_ids` adds the shared pieces."""
    texts, dropped = monolingual_texts(lang, exclude)
    sentences = [s for rows in texts.values() for s in rows]
    return {"lang": lang, "ids": sorted(_ids(tokenizer, sentences)),
            "sentences": {k: len(v) for k, v in texts.items()}, "dropped": dropped}


def shared_ids(tokenizer, stops) -> list[int]:
    """Digits, punctuation, symbols and whitespace pieces (any language writes them) + stops."""
    key = (tokenizer.name_or_path, len(tokenizer))
    if key not in _NEUTRAL:
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        _NEUTRAL[key] = tuple(i for i, p in enumerate(pieces) if p and _neutral(p))
    return sorted(set(_NEUTRAL[key]) | set(stops))


_NEUTRAL: dict[tuple, tuple[int, ...]] = {}


def _neutral(piece: str) -> bool:
    """A piece of digits, punctuation, symbols or spaces ("▁" is SentencePiece's space);
    control and byte-fallback pieces (`<pad>`, `<0x41>`) hold letters and are not."""
    text = piece.replace("▁", " ")
    return all(unicodedata.category(c)[0] in "NPSZ" or c.isspace() for c in text)


def passage_name_ids(tokenizer, title: str, text: str) -> set[int]:
    """Pieces of the passage's names and numbers, at a line start and after a space."""
    words = sorted({w for w in _WORD.findall(f"{title} {text}")
                    if w[0].isupper() or any(c.isdigit() for c in w)})
    return _ids(tokenizer, words) if words else set()
