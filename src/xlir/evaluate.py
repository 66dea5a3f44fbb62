"""Runs and their scores: dense and hybrid runs, TREC run files, metrics per language.

Metrics come from ir-measures (names as it writes them: `nDCG@10`, `RR@10`, `R@100`,
`Success@1` = accuracy@1 for bitext mining). Counting rules:
- every query of the task that has at least one judged document counts; a query the run has
  nothing for scores 0 on every measure (ir-measures alone would skip it);
- score ties are broken by doc id, ascending (see `_untie`), for every measure alike;
- a language's score is the mean over its queries; `macro` is the mean over languages;
- `groups[grouping][group]` is the macro over the languages of each group under every grouping
  of `xlir.data.languages.GROUPINGS` ("pretraining": seen / unseen, "retrieval": supervised /
  unsupervised, "resource": Joshi low / high, "joshi": per class), for the family of the
  study's encoder (`encoder_family`; the same for every system of a study, BM25 included, so
  groups line up across systems); a language a grouping cannot place is in group "unknown",
  never dropped. `language_groups[grouping][language]` says which group each language is in.
- `seen_unseen` is `groups["pretraining"]`, kept under its old name for existing readers.
- sizes, so every table can state them: `n_queries` (the queries scored), `pool_size` (the
  documents of the task's corpus, every pool together) and `pool_sizes[lang]` (the documents a
  query of that language searches: its pool, e.g. one TyDi language's paragraphs).

Hybrid runs (`hybrid_run`) re-implement ranx's two fusions in plain Python because importing
ranx compiles numba kernels for 15-100 s on the 2-core machine; tests/test_evaluate.py checks
the equivalence against ranx (opt-in: XLIR_RANX_TEST=1). "rrf" is ranx `fuse(method="rrf")`
(score = sum 1/(60 + rank), unweighted; `weight` is ignored), "interpolate" is ranx
`fuse(norm="min-max", method="wsum", weights=[w, 1-w])` (per query min-max normalisation; a run
whose scores are all equal normalises to 0, as in ranx; a document missing from a run
contributes 0).

BM25 runs are in bm25.py; significance tests in stats.py. This module does NOT train or
choose models.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xlir.errors import ConfigError, InputError
from xlir.storage import atomic_path

log = logging.getLogger(__name__)

Run = dict[str, dict[str, float]]
DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100")


def default_measures(task) -> list[str]:
    primary = getattr(task, "primary_measure", "nDCG@10")
    return [primary] + [m for m in DEFAULT_MEASURES if m != primary]


@dataclass
class Result:
    """Scores of one run on one task. per_query[measure][qid]; per_language[lang][measure]."""
    task: str
    measures: list[str]
    per_query: dict[str, dict[str, float]]
    query_lang: dict[str, str]
    per_language: dict[str, dict[str, float]]
    counts: dict[str, int]
    macro: dict[str, float]
    seen: dict[str, bool | None] = field(default_factory=dict)
    seen_unseen: dict[str, dict[str, float]] = field(default_factory=dict)
    encoder_family: str | None = None
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    language_groups: dict[str, dict[str, str]] = field(default_factory=dict)
    # None in metrics written before sizes were recorded.
    n_queries: int | None = None
    pool_size: int | None = None
    pool_sizes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "Result":
        return cls(**obj)


def evaluate_run(run: Run, task, measures: list[str] | None = None,
                 encoder_family: str | None = None, encoder: str | None = None) -> Result:
    """Score `run` on `task` per query, per language, macro, and per group of languages under
    every grouping. The groups are those of `encoder_family` ("me5", "xlmr", ...), by default
    the family of `encoder` (a model name or folder; None: the packaged multilingual-e5-small)."""
    import ir_measures

    from xlir.data import languages

    names = list(measures or default_measures(task))
    parsed = [ir_measures.parse_measure(m) for m in names]
    qids = [q for q in task.queries if any(v > 0 for v in task.qrels.get(q, {}).values())]
    qrels = {q: {d: int(r) for d, r in task.qrels[q].items()} for q in qids}
    per_query = {m: {q: 0.0 for q in qids} for m in names}
    by_str = {str(p): n for p, n in zip(parsed, names)}
    judged_run = {q: _untie(run[q]) for q in qids if run.get(q)}
    if judged_run:
        for row in ir_measures.iter_calc(parsed, qrels, judged_run):
            per_query[by_str[str(row.measure)]][row.query_id] = float(row.value)
    langs: dict[str, list[str]] = {}
    for q in qids:
        langs.setdefault(task.query_lang[q], []).append(q)
    per_language = {lang: {m: _mean([per_query[m][q] for q in qs]) for m in names}
                    for lang, qs in sorted(langs.items())}
    macro = {m: _mean([per_language[lang][m] for lang in per_language]) for m in names}
    family = encoder_family or languages.encoder_family(encoder)
    if family is None:
        log.warning("no language sets are declared for encoder %r: its languages are grouped "
                    "'unknown' (declare them with xlir.data.languages.register_seen_set)", encoder)
    language_groups = {g: {lang: languages.group_of(lang, g, family) for lang in per_language}
                       for g in languages.GROUPINGS}
    groups = {g: _group_macros(per_language, labels, names)
              for g, labels in language_groups.items()}
    seen = {lang: {"seen": True, "unseen": False}.get(label)
            for lang, label in language_groups["pretraining"].items()}
    return Result(task.name, names, per_query, {q: task.query_lang[q] for q in qids},
                  per_language, {lang: len(qs) for lang, qs in langs.items()}, macro, seen,
                  groups["pretraining"], family, groups, language_groups, len(qids),
                  len(task.corpus), _pool_sizes(task, langs))


def _pool_sizes(task, langs: dict[str, list[str]]) -> dict[str, int]:
    """language -> documents its queries search (the largest pool when they differ)."""
    searched = {q: len(dids) for qs, dids in task.pools().values() for q in qs}
    return {lang: max(searched.get(q, 0) for q in qs) for lang, qs in sorted(langs.items())}


def _group_macros(per_language: dict[str, dict[str, float]], labels: dict[str, str],
                  names: list[str]) -> dict[str, dict[str, float]]:
    """group -> measure -> mean over the group's languages."""
    members: dict[str, list[str]] = {}
    for lang, label in labels.items():
        members.setdefault(label, []).append(lang)
    return {g: {m: _mean([per_language[lang][m] for lang in ls]) for m in names}
            for g, ls in sorted(members.items())}


def _untie(docs: dict[str, float]) -> dict[str, float]:
    """Scores replaced by descending ranks, ties broken by doc id (ascending, the order
    write_trec_run writes). ir-measures' providers break ties differently (pytrec_eval: doc
    id descending; its RR@k: ascending), so without this one run could get two rankings."""
    ranked = sorted(docs.items(), key=lambda x: (-x[1], x[0]))
    return {d: float(len(ranked) - i) for i, (d, _) in enumerate(ranked)}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def dense_run(encoder, task, k: int = 100, index_kind: str = "flat",
              cache_dir: str | Path | None = None, batch_size: int = 64,
              show_progress: bool = False) -> Run:
    """Encode the task's corpus and queries with `encoder`, search each pool -> run.
    With `cache_dir` the embeddings are cached there (encode.py) and reused."""
    from xlir.encode import encode_corpus, encode_queries
    from xlir.index import DenseIndex

    if cache_dir is not None:
        doc_ids, d_vecs = encode_corpus(encoder, task.corpus, cache_dir, batch_size,
                                        show_progress=show_progress)
        q_ids, q_vecs = encode_queries(encoder, task.queries, cache_dir, batch_size,
                                       show_progress=show_progress)
    else:
        doc_ids, q_ids = list(task.corpus), list(task.queries)
        d_vecs = encoder.encode_passages([task.corpus[d] for d in doc_ids], batch_size,
                                         show_progress)
        q_vecs = encoder.encode_queries([task.queries[q] for q in q_ids], batch_size,
                                        show_progress)
    index = DenseIndex.build(d_vecs, doc_ids, kind=index_kind)
    return index.search_task(q_ids, q_vecs, task.pools(), k)


def dense_run_per_language(encoder_for, task, k: int = 100, cache_dir: str | Path | None = None,
                           batch_size: int = 64) -> Run:
    """A dense run in which every text is encoded by its own language's encoder: passages by
    `task.doc_lang`, queries by `task.query_lang`; `encoder_for(lang)` gives the encoder (MAD-X
    with the language-adapter swap: the same task adapter over each language's adapter). One
    encoder is loaded at a time; the vectors of all languages share one index."""
    import numpy as np

    from xlir.encode import encode_corpus, encode_queries
    from xlir.index import DenseIndex

    doc_lang = getattr(task, "doc_lang", None) or {}
    langs = sorted({doc_lang.get(d, "") for d in task.corpus} | set(task.query_lang.values()))
    doc_ids, d_vecs, q_ids, q_vecs = [], [], [], []
    for lang in langs:
        docs = {d: p for d, p in task.corpus.items() if doc_lang.get(d, "") == lang}
        queries = {q: t for q, t in task.queries.items() if task.query_lang.get(q) == lang}
        encoder = encoder_for(lang or None)
        for kind, items, ids, vecs in (("docs", docs, doc_ids, d_vecs),
                                       ("queries", queries, q_ids, q_vecs)):
            if not items:
                continue
            if cache_dir is not None:
                encode = encode_corpus if kind == "docs" else encode_queries
                got_ids, got = encode(encoder, items, cache_dir, batch_size, show_progress=False)
            else:
                got_ids = list(items)
                encode = encoder.encode_passages if kind == "docs" else encoder.encode_queries
                got = encode([items[i] for i in got_ids], batch_size)
            ids.extend(got_ids)
            vecs.append(got)
        del encoder
        log.info("encoded %s: %d passages, %d queries", lang or "(no language)", len(docs),
                 len(queries))
    index = DenseIndex.build(np.concatenate(d_vecs), doc_ids)
    return index.search_task(q_ids, np.concatenate(q_vecs), task.pools(), k)


def hybrid_run(run_a: Run, run_b: Run, method: str = "rrf", weight: float = 0.5,
               k: int = 100, rrf_k: int = 60) -> Run:
    """Fuse two runs (see the module docstring). `weight` is run_a's share ("interpolate")."""
    if method not in ("rrf", "interpolate"):
        raise ConfigError(f"fusion method must be 'rrf' or 'interpolate', got {method!r}")
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"weight must be in [0, 1], got {weight}")
    out: Run = {}
    for q in sorted(set(run_a) | set(run_b)):
        a, b = run_a.get(q, {}), run_b.get(q, {})
        if method == "rrf":
            na, nb, wa, wb = _rrf(a, rrf_k), _rrf(b, rrf_k), 1.0, 1.0
        else:
            na, nb, wa, wb = _minmax(a), _minmax(b), weight, 1.0 - weight
        fused = {d: wa * na.get(d, 0.0) + wb * nb.get(d, 0.0) for d in set(a) | set(b)}
        out[q] = dict(sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k])
    return out


def _rrf(scores: dict[str, float], k: int) -> dict[str, float]:
    ranked = sorted(scores.items(), key=lambda x: (-x[1], x[0]))
    return {d: 1.0 / (k + r) for r, (d, _) in enumerate(ranked, start=1)}


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    return {d: (s - lo) / (hi - lo) if hi > lo else 0.0 for d, s in scores.items()}


def write_trec_run(run: Run, path: str | Path, tag: str = "xlir") -> None:
    """TREC format `qid Q0 docid rank score tag`, each query's docs best first."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for q, docs in run.items():
            ranked = sorted(docs.items(), key=lambda x: (-x[1], x[0]))
            for rank, (d, s) in enumerate(ranked, start=1):
                f.write(f"{q} Q0 {d} {rank} {s:.6f} {tag}\n")


def read_trec_run(path: str | Path) -> Run:
    from xlir.data.readers import read_lines

    run: Run = {}
    for n, line in read_lines(path):  # InputError for a missing, non-UTF-8 or folder path
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            raise InputError(f"expected 6 columns 'qid Q0 docid rank score tag', got "
                             f"{len(parts)}", path, n)
        try:
            run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
        except ValueError:
            raise InputError(f"score {parts[4]!r} is not a number", path, n, "score") from None
    return run
