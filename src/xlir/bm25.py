"""BM25 lexical retrieval (bm25s, Lucene scoring) with a script-neutral tokeniser.

Tokenisation: lowercase, then maximal runs of Unicode letters, combining marks and digits
(`[\\p{L}\\p{M}\\p{N}]+` with the `regex` module), keeping tokens of at least `min_len` = 2
characters (scikit-learn's and bm25s's default `\\w\\w+` rule: one-letter particles such as
Yoruba "a", "ó" or Swahili "a" are noise). Marks (categories Mn/Mc) stay inside words, which
matters for Bengali/Telugu/Devanagari vowel signs and viramas and for Yoruba/Fon tone marks
written as combining characters; Ethiopic syllables are letters (Lo). Text is NFC normalised
first so precomposed and decomposed accents give the same token. No stemming and no stopwords
by default: both are language-specific and the languages here mostly have neither.
Defaults k1=0.9, b=0.4 are Pyserini's.

Documents are `"{title} {text}"` by default (`use_title=True`), the text the dense encoders
read, so a comparison of BM25 with a dense system gives both the same passages. On AfriQA test
the title is worth +.042 macro RR@10 to BM25 (.380 vs .339). A task built without titles
(`Task.without_titles`, a study task with `titles: false`) has empty titles, so BM25 then reads
the text alone like every other system. `use_title=False` is the published AfriQA lexical
baseline's setting (shared/data/README.md; text only, matched within 0.03 on every language).

It does NOT translate queries or documents, and does not evaluate runs (evaluate.py does).
"""

from __future__ import annotations

import logging
import unicodedata

import regex

log = logging.getLogger(__name__)

WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def tokenize(text: str, stopwords: frozenset[str] = frozenset(), min_len: int = 2) -> list[str]:
    """Lowercased Unicode word tokens (letters, marks, digits) of >= min_len characters,
    minus `stopwords`."""
    tokens = WORD.findall(unicodedata.normalize("NFC", text).lower())
    return [t for t in tokens if len(t) >= min_len and t not in stopwords]


class BM25:
    """A BM25 index over a corpus dict; `search` returns {doc_id: score} per query."""

    def __init__(self, corpus: dict[str, dict[str, str]], k1: float = 0.9, b: float = 0.4,
                 stopwords: frozenset[str] = frozenset(), min_len: int = 2,
                 use_title: bool = True):
        import bm25s

        self.doc_ids = list(corpus)
        self.stopwords, self.min_len = stopwords, min_len
        docs = [tokenize(_doc_text(corpus[d], use_title), stopwords, min_len)
                for d in self.doc_ids]
        self.retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        self.retriever.index(self._as_ids(docs, build=True), show_progress=False)

    def _as_ids(self, docs: list[list[str]], build: bool = False):
        import bm25s

        if build:
            self.vocab: dict[str, int] = {"": 0}  # bm25s reserves an empty token
            for doc in docs:
                for t in doc:
                    self.vocab.setdefault(t, len(self.vocab))
        ids = [[self.vocab[t] for t in doc if t in self.vocab] for doc in docs]
        return bm25s.tokenization.Tokenized(ids=ids, vocab=self.vocab)

    def search(self, queries: list[str], k: int = 100) -> list[dict[str, float]]:
        k = min(k, len(self.doc_ids))
        toks = [tokenize(q, self.stopwords, self.min_len) for q in queries]
        out: list[dict[str, float]] = [{} for _ in queries]
        # Queries with no known token score nothing; bm25s needs at least one token.
        live = [i for i, t in enumerate(toks) if any(w in self.vocab for w in t)]
        if not live or k == 0:
            return out
        rows, scores = self.retriever.retrieve(self._as_ids([toks[i] for i in live]), k=k,
                                               show_progress=False, n_threads=0)
        for i, r, s in zip(live, rows, scores):
            out[i] = {self.doc_ids[int(d)]: float(v) for d, v in zip(r, s) if v > 0}
        return out


def _doc_text(doc: dict[str, str], use_title: bool) -> str:
    title = (doc.get("title") or "") if use_title else ""
    return f"{title} {doc.get('text') or ''}"
