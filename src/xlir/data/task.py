"""The retrieval task: the IR data contract every stage of xlir speaks.

    corpus:  dict[doc_id, {"title": str, "text": str}]
    queries: dict[query_id, str]
    qrels:   dict[query_id, dict[doc_id, int]]
    run:     dict[query_id, dict[doc_id, float]]   (produced by retrieval, not stored here)

Languages are ISO 639-3 + ISO 15924 script codes (`hau_Latn`), one scheme everywhere.
`query_lang[qid]` is the language a query is *reported under* (for bitext en->X it is X, the
language being evaluated, even though the query text is English); `doc_lang[doc_id]` is the
language of the document text.

Pools: by default every query searches the whole corpus. When `query_pool`/`doc_pool` are set,
a query searches only documents with the same pool key (e.g. tydi-mono: each language's
paragraphs form their own pool; flores en->X: the X sentences).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Task:
    name: str
    split: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    query_lang: dict[str, str]
    doc_lang: dict[str, str]
    query_pool: dict[str, str] | None = None
    doc_pool: dict[str, str] | None = None
    # The headline measure for this task, as ir-measures names it ("nDCG@10", "Success@1"...).
    primary_measure: str = "nDCG@10"
    meta: dict = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.query_lang.values()))

    def pools(self) -> dict[str, tuple[list[str], list[str]]]:
        """pool key -> (query ids, doc ids). One pool named "all" when pools are not set."""
        if self.query_pool is None or self.doc_pool is None:
            return {"all": (list(self.queries), list(self.corpus))}
        out: dict[str, tuple[list[str], list[str]]] = {}
        for qid in self.queries:
            out.setdefault(self.query_pool[qid], ([], []))[0].append(qid)
        for did in self.corpus:
            key = self.doc_pool[did]
            if key in out:
                out[key][1].append(did)
        return out

    def subset(self, languages: list[str]) -> "Task":
        """The same task restricted to queries reported under `languages` (corpus unchanged)."""
        keep = {q for q, lang in self.query_lang.items() if lang in set(languages)}
        return Task(
            name=self.name, split=self.split, corpus=self.corpus,
            queries={q: t for q, t in self.queries.items() if q in keep},
            qrels={q: r for q, r in self.qrels.items() if q in keep},
            query_lang={q: lang for q, lang in self.query_lang.items() if q in keep},
            doc_lang=self.doc_lang,
            query_pool=None if self.query_pool is None else
            {q: p for q, p in self.query_pool.items() if q in keep},
            doc_pool=self.doc_pool, primary_measure=self.primary_measure, meta=dict(self.meta))

    def without_titles(self) -> "Task":
        """The same task with every passage reduced to its text (titles emptied): what the
        published AfriQA baselines encode and index (see BENCHMARKS.md)."""
        import dataclasses

        corpus = {d: {**p, "title": ""} for d, p in self.corpus.items()}
        return dataclasses.replace(self, corpus=corpus, meta={**self.meta, "titles": "dropped"})

    def sample(self, max_queries_per_language: int | None = None, distractors: int | None = None,
               seed: int = 0) -> "Task":
        """A smaller task for quick studies, chosen deterministically from `seed`.

        Keeps at most `max_queries_per_language` judged queries per reported language, and a
        corpus of every document judged for a kept query plus up to `distractors` other
        documents drawn from each pool (None keeps the whole corpus). Sizes are recorded in
        `meta["sampled"]` so a report can say the pool was reduced.
        """
        import random

        rng = random.Random(seed)
        by_lang: dict[str, list[str]] = {}
        for qid in sorted(self.queries):
            if self.qrels.get(qid):
                by_lang.setdefault(self.query_lang[qid], []).append(qid)
        keep: set[str] = set()
        for lang in sorted(by_lang):
            qids = by_lang[lang]
            if max_queries_per_language is not None and len(qids) > max_queries_per_language:
                qids = rng.sample(qids, max_queries_per_language)
            keep.update(qids)
        small = self.subset(self.languages)
        small.queries = {q: t for q, t in self.queries.items() if q in keep}
        small.qrels = {q: self.qrels[q] for q in small.queries}
        small.query_lang = {q: self.query_lang[q] for q in small.queries}
        if self.query_pool is not None:
            small.query_pool = {q: self.query_pool[q] for q in small.queries}
        if distractors is not None:
            docs = {d for q in small.qrels for d in small.qrels[q] if d in self.corpus}
            for _, (qids, dids) in self.pools().items():
                if not set(qids) & keep:
                    continue
                others = sorted(set(dids) - docs)
                docs.update(rng.sample(others, min(distractors, len(others))))
            small.corpus = {d: self.corpus[d] for d in self.corpus if d in docs}
            small.doc_lang = {d: self.doc_lang[d] for d in small.corpus}
            if self.doc_pool is not None:
                small.doc_pool = {d: self.doc_pool[d] for d in small.corpus}
        small.meta = {**self.meta, "sampled": {
            "seed": seed, "max_queries_per_language": max_queries_per_language,
            "distractors": distractors, "queries": len(small.queries),
            "documents": len(small.corpus)}}
        return small
