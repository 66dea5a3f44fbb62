"""What a generator may write in each language, and how strongly it is pushed towards it: the
output vocabulary of language-constrained query generation (xlir.qgen,
`GenerateConfig.vocabulary = "language"`, `language_bias`).

A row writing Hausa may emit:
- every token id of the Hausa monolingual text the data mirror has (xlir.data.monolingual:
  SIB-200 sentences, MasakhaNER 2.0 news, AfriQA questions), each sentence tokenized at the
  start of a line and after a space, minus every sentence an evaluated split holds (`exclude`);
- digits, punctuation, symbols and whitespace pieces, and the stop tokens (eos, newlines);
- the pieces of the names and numbers of its own passage (words that start with a capital
  letter or hold a digit), so "Wanene Barack Obama?" stays writable from an English passage.
Everything else (other scripts, pieces no Hausa text has) gets -inf.

The restriction alone barely moves language-ID agreement (measured on AfriQA dev passages with
a 160-step generator: macro 0.79 with and 0.80 without): Bantu and Kwa neighbours share most of
their pieces. So each allowed piece of the language's text also gets a bias
`strength * clip(log p_lang(piece) - log p_background(piece), -5, 5)`, p from add-0.5 smoothed
piece counts, the background being every other language of `BACKGROUND` (the identifier's
languages and the neighbours a generator drifts into): pieces typical of the language over its
neighbours are favoured. Shared pieces and passage names get 0. Measured on 48 AfriQA dev
passages x 9 languages (BENCHMARKS.md, "Language fidelity"), with a question never repeating a
pair of its own tokens (`no_repeat_ngram`, without which biased questions loop): macro
agreement 0.79 at strength 0, 0.94 at 0.25, 0.97 at 0.5 (Zulu 0.83, read as Xhosa), 1.00 at 1
(every language; CLD3 agrees on 0.90 where it knows the language), questions getting longer and
less fluent as the strength grows: at 1 they are strings of typical words (27 new tokens on
average against 17 unbiased) that crowd out the passage's names, which a query generated for
retrieval should keep. The default, 0.5, keeps them; its one language under 0.90 is Zulu
(0.83), mostly identified as Xhosa, its closest relative.

This module builds per-language score vectors; xlir.qgen_decode applies them.
"""

from __future__ import annotations

import math
import re
import unicodedata

from xlir.data.monolingual import monolingual_texts

_WORD = re.compile(r"[\w'’-]+")
_BATCH = 512
CLIP = 5.0
# The background of the bias: the languages of xlir.langid's identifier (AfriQA's, their
# neighbours, and the high-resource ones a generator falls back to).
BACKGROUND = (
    "hau_Latn", "ibo_Latn", "kin_Latn", "swh_Latn", "twi_Latn", "yor_Latn", "zul_Latn",
    "bem_Latn", "fon_Latn", "eng_Latn", "fra_Latn", "amh_Ethi", "som_Latn", "xho_Latn",
    "nya_Latn", "sna_Latn", "lin_Latn", "ewe_Latn", "ind_Latn", "fin_Latn",
)


def _counts(tokenizer, texts: list[str]):
    """Piece counts (a float tensor over the vocabulary) of `texts`, each tokenized at a line
    start and after a space."""
    import torch

    flat: list[int] = []
    for i in range(0, len(texts), _BATCH):
        chunk = texts[i:i + _BATCH]
        for variant in (chunk, [" " + t for t in chunk]):
            for ids in tokenizer(variant, add_special_tokens=False)["input_ids"]:
                flat.extend(ids)
    return torch.bincount(torch.tensor(flat, dtype=torch.long),
                          minlength=len(tokenizer)).double()


def language_counts(tokenizer, lang: str, exclude: frozenset[str] = frozenset()):
    """-> (piece counts of `lang`'s monolingual text, {sentences, dropped} per source)."""
    texts, dropped = monolingual_texts(lang, exclude)
    sentences = [s for rows in texts.values() for s in rows]
    return _counts(tokenizer, sentences), {"sentences": {k: len(v) for k, v in texts.items()},
                                           "dropped": dropped}


def language_scores(tokenizer, languages, stops, strength: float,
                    exclude: frozenset[str] = frozenset()) -> dict[str, dict]:
    """language -> {"scores": float tensor over the vocabulary (-inf: not allowed; the bias
    elsewhere, 0 for shared pieces), "ids": allowed count, "language_ids": pieces of the
    language's text, "sentences", "dropped"}."""
    import torch

    needed = list(dict.fromkeys([*languages, *(BACKGROUND if strength else ())]))
    counts, info = {}, {}
    for lang in needed:
        counts[lang], info[lang] = language_counts(tokenizer, lang, exclude)
    shared = torch.tensor(shared_ids(tokenizer, stops), dtype=torch.long)
    out = {}
    for lang in languages:
        scores = torch.full((len(tokenizer),), -math.inf)
        own = counts[lang] > 0
        if strength:
            background = sum(c for other, c in counts.items() if other != lang)
            bias = (_log_p(counts[lang]) - _log_p(background)).clamp(-CLIP, CLIP) * strength
            scores[own] = bias[own].float()
        else:
            scores[own] = 0.0
        scores[shared] = 0.0
        out[lang] = {"scores": scores, "ids": int(torch.isfinite(scores).sum()),
                     "language_ids": int(own.sum()), **info[lang]}
    return out


def _log_p(counts):
    return (counts + 0.5).log() - math.log(float(counts.sum()) + 0.5 * counts.numel())


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
    if not words:
        return set()
    return {int(i) for i in _counts(tokenizer, words).nonzero().flatten()}


def row_scores(language_scores, names: set[int]):
    """One row's scores: its language's, its passage's name pieces allowed at 0."""
    import torch

    scores = language_scores.clone()
    if names:
        scores[torch.tensor(sorted(names), dtype=torch.long)] = 0.0
    return scores
