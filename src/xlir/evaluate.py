"""The scores of a run: metrics per query, per language, per group of languages.

Metrics come from ir-measures (names as it writes them: `nDCG@10`, `RR@10`, `R@100`,
`Success@1` = accuracy@1 for bitext mining). Counting rules:
- every query of the task that has at least one judged document counts; a query the run has
  nothing for scores 0 on every measure (ir-measures alone would skip it);
- score ties are broken by doc id, ascending (`xlir.retrieve.rank`, see `_untie`), for every
  measure alike;
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

Runs of every kind (dense, xQG, BM25, hybrid) and TREC files are made in xlir.retrieve;
significance tests in stats.py. This module scores runs: it does not retrieve, train or choose.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xlir.data import languages
from xlir.errors import ConfigError, InputError
from xlir.retrieve import Run, rank

log = logging.getLogger(__name__)

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
    ranked = rank(docs)
    return {d: float(len(ranked) - i) for i, (d, _) in enumerate(ranked)}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
