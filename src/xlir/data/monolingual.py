"""Monolingual text of one language, from every source the data mirror has: what a MAD-X
language adapter learns the language from (xlir.tuning.lang_adapters).

    monolingual_texts("hau")             source -> sentences, duplicates removed
    monolingual_texts("hau", exclude=evaluated_texts(tasks))   nothing an evaluated split holds

Sources, each read in full (every split it ships):
- sib200: the FLORES-200 sentences of SIB-200 (train, dev, test: 1,004 rows per language);
- masakhaner: the news sentences of MasakhaNER 2.0 (train, dev; tokens joined by spaces, as
  the CoNLL files split them), 20 African languages;
- afriqa: the AfriQA questions written in the language (train, dev, test).

`exclude` (normalised texts, `evaluated_texts`) drops any sentence that an evaluated split holds
as a query or a passage, so an adapter never reads a test sentence: SIB-200's test rows are
FLORES x->en queries, AfriQA's test questions are queries. The counts of what was kept and
dropped go into the adapter's run folder (`mlm.json`).

This module reads; it does not download (fetch.py) or train.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xlir.data.bitext import FLORES_SPLITS, flores_sentences
from xlir.data.checks import normalise
from xlir.data.fetch import fetch
from xlir.data.languages import normalize
from xlir.data.readers import read_lines
from xlir.data.registry import AFRIQA_LANGUAGES, MASAKHANER_LANGUAGES, SIB200_LANGUAGES
from xlir.data.tasks import AFRIQA_SPLITS, afriqa_rows
from xlir.errors import InputError

SOURCES = ("sib200", "masakhaner", "afriqa")
MASAKHANER_SPLITS = ("train", "dev")  # the test splits are not mirrored


def monolingual_texts(lang: str, exclude: frozenset[str] | set[str] = frozenset()
                      ) -> tuple[dict[str, list[str]], dict[str, int]]:
    """-> (source -> sentences of `lang`, source -> sentences dropped because `exclude` holds
    their normalised text). Each sentence appears once over all sources (first source wins)."""
    lang = normalize(lang)
    seen: set[str] = set()
    texts: dict[str, list[str]] = {}
    dropped: dict[str, int] = {}
    for source, sentences in _read(lang):
        for text in sentences:
            key = normalise(text)
            if not key or key in seen:
                continue
            seen.add(key)
            if key in exclude:
                dropped[source] = dropped.get(source, 0) + 1
            else:
                texts.setdefault(source, []).append(text)
    return texts, dropped


def evaluated_texts(tasks: Iterable) -> frozenset[str]:
    """The normalised text of every query and every passage of `tasks` (xlir Task objects)."""
    out: set[str] = set()
    for task in tasks:
        out.update(normalise(q) for q in task.queries.values())
        out.update(normalise(d["text"]) for d in task.corpus.values())
    return frozenset(out)


def _read(lang: str) -> Iterable[tuple[str, list[str]]]:
    if lang in SIB200_LANGUAGES:
        root = fetch("sib200", progress=False)
        yield "sib200", [s for split in FLORES_SPLITS
                         for s in flores_sentences(lang, split, root).values()]
    folder = {code: f for f, code in MASAKHANER_LANGUAGES.items()}.get(lang)
    if folder is not None:
        root = fetch("masakhaner", progress=False)
        yield "masakhaner", [s for split in MASAKHANER_SPLITS for s in conll_sentences(
            root / "MasakhaNER2.0" / "data" / folder / f"{split}.txt")]
    if lang in {code for code, _ in AFRIQA_LANGUAGES.values()}:
        yield "afriqa", [row["question"] for split in AFRIQA_SPLITS
                         for row in afriqa_rows(split) if row["lang"] == lang]


def conll_sentences(path: str | Path) -> list[str]:
    """The sentences of a CoNLL file (one `token TAG` a line, a blank line between
    sentences), tokens joined by single spaces."""
    sentences, tokens = [], []
    for n, line in read_lines(path):
        parts = line.split()
        if not parts:
            if tokens:
                sentences.append(" ".join(tokens))
            tokens = []
        elif len(parts) == 1 and line[:1].isspace():
            continue  # " O": an empty token with its tag (upstream xho train.txt has two)
        elif len(parts) != 2:
            raise InputError(f"expected 'token TAG', got {len(parts)} columns", path, n, "token")
        else:
            tokens.append(parts[0])
    if tokens:
        sentences.append(" ".join(tokens))
    return sentences
