"""Checks to run before trusting numbers: tokenizer fertility per language, and leakage
between training pairs and the evaluated splits.

Fertility: pieces per whitespace word and the rate of unknown pieces; a language the
tokenizer splits character by character (Yoruba in XLM-R's vocabulary) shows up here.

Leakage, exact (`leak_counts`, `drop_leaked`): a training pair leaks into an evaluated split
when its question is one of the split's judged questions (`normalise`d), or its passage is one
the split judges, by doc id or by text (`text_key`: NFKC, case-folded, whitespace collapsed).
Only judged passages count: AfriQA's pool holds the passages of every split, so a training
passage is always somewhere in the test pool, and only a judged one gives away an answer.
`leak_counts` counts each kind per training source, split and language; `drop_leaked` returns
the pairs that leak nothing, with counts, so training never sees what an evaluated split judges
(research-design.md, "Selection rules").

Leakage, near (`leakage`): a training passage that is also an evaluation document (identical
up to whitespace), or nearly so (Jaccard of the character 5-gram sets of the normalised texts
>= `threshold`; normalised: NFKC, case-folded, runs of non-word characters -> one space), and
training questions identical to evaluation questions (normalised). Near duplicates are only
compared among candidates: documents sharing the normalised title, or a MinHash LSH band
(which two texts at Jaccard 0.9 share with near certainty), so the check stays fast on real
sizes. It reports; near duplicates are not dropped.

Nothing here changes its inputs.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from xlir.data.task import Task

log = logging.getLogger(__name__)

_NON_WORD = re.compile(r"[\W_]+")
LEAK_KINDS = ("question", "passage_id", "passage_text")


def fertility(tokenizer, texts_by_lang: dict[str, list[str]]) -> dict[str, dict]:
    """Per language: n_texts, n_words (whitespace), n_pieces (no special tokens),
    pieces_per_word, unk_rate (unknown pieces / pieces). `tokenizer`: any HF tokenizer."""
    unk = tokenizer.unk_token_id
    out = {}
    for lang, texts in texts_by_lang.items():
        n_words = sum(len(t.split()) for t in texts)
        ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
        n_pieces = sum(len(x) for x in ids)
        n_unk = sum(x.count(unk) for x in ids) if unk is not None else 0
        out[lang] = {"n_texts": len(texts), "n_words": n_words, "n_pieces": n_pieces,
                     "pieces_per_word": n_pieces / n_words if n_words else 0.0,
                     "unk_rate": n_unk / n_pieces if n_pieces else 0.0}
    return out


def task_texts(task: Task, limit: int | None = None) -> dict[str, dict[str, list[str]]]:
    """{"queries": {lang: texts}, "documents": {lang: texts}} grouped by the language the text
    is written in (`meta["query_text_lang"]` when queries are reported under another), at most
    `limit` per language, in task order."""
    out: dict[str, dict[str, list[str]]] = {"queries": {}, "documents": {}}
    text_lang = task.meta.get("query_text_lang")
    for qid, text in task.queries.items():
        out["queries"].setdefault(text_lang or task.query_lang[qid], []).append(text)
    for did, doc in task.corpus.items():
        out["documents"].setdefault(task.doc_lang[did], []).append(doc["text"])
    if limit is not None:
        out = {side: {lang: texts[:limit] for lang, texts in by_lang.items()}
               for side, by_lang in out.items()}
    return out


def normalise(text: str) -> str:
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _exact_key(text: str) -> str:
    """Identity up to whitespace: what 'identical passage' means here."""
    return " ".join(text.split())


def shingles(text: str, n: int = 5) -> np.ndarray:
    """Sorted unique ids (uint64) of the character n-grams of the normalised text; the whole
    text is one gram when shorter than n. Ids are a polynomial hash of the code points."""
    codes = np.frombuffer(normalise(text).encode("utf-32-le"), dtype=np.uint32)
    codes = codes.astype(np.uint64)
    if len(codes) < n:
        codes = np.concatenate([codes, np.zeros(n - len(codes), dtype=np.uint64)])
    ids = np.zeros(len(codes) - n + 1, dtype=np.uint64)
    for j in range(n):  # wraps modulo 2**64 by design
        ids = ids * np.uint64(1_000_003) + codes[j:len(codes) - n + 1 + j]
    return np.unique(ids)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.intersect1d(a, b, assume_unique=True).size
    union = a.size + b.size - inter
    return inter / union if union else 1.0


_P = np.uint64(2**31 - 1)
_RNG = np.random.default_rng(0)
_A = _RNG.integers(1, 2**31 - 1, size=(24, 1), dtype=np.uint64)
_B = _RNG.integers(0, 2**31 - 1, size=(24, 1), dtype=np.uint64)


def _bands(grams: np.ndarray, rows: int = 3) -> list[tuple]:
    """MinHash LSH keys: 24 min-hashes in 8 bands of 3. Two texts at Jaccard 0.9 share a band
    with probability 1 - (1 - 0.9**3)**8 > 0.9999; at 0.3, about 0.2."""
    signature = ((_A * (grams % _P)[None, :] + _B) % _P).min(axis=1)
    return [(i, *signature[i:i + rows].tolist()) for i in range(0, len(signature), rows)]


def _index(task: Task):
    by_text, by_title, by_band, grams = {}, defaultdict(set), defaultdict(set), {}
    for did, doc in task.corpus.items():
        by_text.setdefault(_exact_key(doc["text"]), did)
        if doc.get("title"):
            by_title[normalise(doc["title"])].add(did)
        grams[did] = shingles(doc["text"])
        for key in _bands(grams[did]):
            by_band[key].add(did)
    return by_text, by_title, by_band, grams


def leakage(train_pairs: list[dict], task: Task, threshold: float = 0.9,
            max_examples: int = 5) -> dict:
    """Overlap between training pairs ({query, title, text, ...}) and `task`: counts of unique
    training passages identical (up to whitespace) / near-identical (normalised char-5-gram
    Jaccard >= threshold, not identical) to a task document, judged task documents hit,
    identical questions (normalised), shared titles (normalised), with a few examples."""
    by_text, by_title, by_band, grams = _index(task)
    judged = {d for rel in task.qrels.values() for d, g in rel.items() if g > 0}
    passages = {_exact_key(p["text"]): p for p in train_pairs}
    identical, near, hit = [], [], set()
    for key, pair in passages.items():
        if key in by_text:
            identical.append({"train": pair["text"][:200], "doc_id": by_text[key]})
            hit.add(by_text[key])
            continue
        own = shingles(pair["text"])
        candidates = set(by_title.get(normalise(pair.get("title") or ""), ()))
        for band in _bands(own):
            candidates |= by_band.get(band, set())
        best = max(((jaccard(own, grams[d]), d) for d in sorted(candidates)),
                   default=(0.0, None))
        if best[0] >= threshold:
            near.append({"train": pair["text"][:200], "doc_id": best[1],
                         "jaccard": round(best[0], 4)})
            hit.add(best[1])
    task_questions = {normalise(q): qid for qid, q in task.queries.items()}
    questions = {normalise(p["query"]): p for p in train_pairs}
    same_q = [{"query": p["query"], "qid": task_questions[k]} for k, p in questions.items()
              if k in task_questions]
    train_titles = {normalise(p.get("title") or "") for p in train_pairs} - {""}
    return {"train_passages": len(passages), "task_documents": len(task.corpus),
            "identical_passages": len(identical), "near_identical_passages": len(near),
            "judged_documents_hit": len(hit & judged), "identical_questions": len(same_q),
            "shared_titles": len(train_titles & set(by_title)),
            "examples": {"identical_passages": identical[:max_examples],
                         "near_identical_passages": near[:max_examples],
                         "identical_questions": same_q[:max_examples]}}


# --- exact leakage between training sources and evaluated splits ---------------------------


def text_key(text: str) -> str:
    """A passage's text for comparison: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _pair_keys(pair: dict) -> dict[str, str | None]:
    """kind -> the key a training pair is compared by (None: the pair has no doc id)."""
    return {"question": normalise(pair["query"]), "passage_id": pair.get("doc_id"),
            "passage_text": text_key(pair["text"])}


def judged_items(task: Task) -> dict[str, dict[str, dict[str, frozenset[str]]]]:
    """kind -> language -> {query id: keys} of what `task` judges, per language its queries
    are reported under: each judged query's question ("question") and the passages judged
    relevant for it, by id ("passage_id") and by text ("passage_text")."""
    out: dict[str, dict[str, dict[str, frozenset[str]]]] = {kind: {} for kind in LEAK_KINDS}
    for qid, rels in task.qrels.items():
        docs = [d for d, grade in rels.items() if grade > 0]
        if not docs or qid not in task.queries:
            continue
        lang = task.query_lang[qid]
        keys = {"question": {normalise(task.queries[qid])}, "passage_id": set(docs),
                "passage_text": {text_key(task.corpus[d]["text"]) for d in docs
                                 if d in task.corpus}}
        for kind in LEAK_KINDS:
            out[kind].setdefault(lang, {})[qid] = frozenset(keys[kind])
    return out


def _labelled(tasks) -> dict[str, Task]:
    """A Task, Tasks, or {label: Task} -> {label: Task}; labels default to "name/split"."""
    if isinstance(tasks, Task):
        tasks = [tasks]
    if isinstance(tasks, Mapping):
        return dict(tasks)
    out: dict[str, Task] = {}
    for task in tasks:
        label, n = f"{task.name}/{task.split}", 2
        while label in out:
            label, n = f"{task.name}/{task.split}#{n}", n + 1
        out[label] = task
    return out


def leak_counts(sources: Mapping[str, list[dict]], tasks: Mapping[str, Task] | Iterable[Task]
                ) -> list[dict]:
    """One row per training source, evaluated split, language (of the split's queries) and
    kind: {source, split, language, kind, eval_queries (the language's judged queries whose
    question, or one of whose judged passages, occurs in the source), of (the language's judged
    queries), train_pairs (the source's pairs that carry one of those questions or passages)}."""
    keyed = {name: [_pair_keys(p) for p in pairs] for name, pairs in sources.items()}
    present = {name: {kind: {k[kind] for k in keys} - {None} for kind in LEAK_KINDS}
               for name, keys in keyed.items()}
    rows = []
    for label, task in _labelled(tasks).items():
        items = judged_items(task)
        for name, keys in keyed.items():
            for lang in sorted(items["question"]):
                for kind in LEAK_KINDS:
                    wanted = items[kind][lang]
                    hits = [judged & present[name][kind] for judged in wanted.values()]
                    shared = set().union(*hits)
                    rows.append({"source": name, "split": label, "language": lang,
                                 "kind": kind, "eval_queries": sum(map(bool, hits)),
                                 "of": len(wanted),
                                 "train_pairs": sum(k[kind] in shared for k in keys)})
    return rows


def drop_leaked(pairs: list[dict], evaluated_tasks: Mapping[str, Task] | Iterable[Task] | Task
                ) -> tuple[list[dict], dict[str, dict[str, dict[str, int]]]]:
    """(the pairs that leak into none of `evaluated_tasks`, counts). A pair leaks when its
    question is a judged question of an evaluated split or its passage a judged passage of one
    (by doc id or by `text_key`), in any language. counts[source][query_lang] = {pairs,
    dropped, question, passage_id, passage_text} (a dropped pair can match several kinds);
    the source is the pair's "source" (set by `load_pairs`), else "pairs". Each source that
    loses pairs is logged as a warning."""
    banned: dict[str, set[str]] = {kind: set() for kind in LEAK_KINDS}
    for task in _labelled(evaluated_tasks).values():
        for kind, by_lang in judged_items(task).items():
            for items in by_lang.values():
                banned[kind].update(*items.values())
    kept, counts = [], {}
    for pair in pairs:
        keys = _pair_keys(pair)
        kinds = [kind for kind in LEAK_KINDS
                 if keys[kind] is not None and keys[kind] in banned[kind]]
        row = counts.setdefault(pair.get("source", "pairs"), {}).setdefault(
            pair["query_lang"], {"pairs": 0, "dropped": 0, **{kind: 0 for kind in LEAK_KINDS}})
        row["pairs"] += 1
        row["dropped"] += bool(kinds)
        for kind in kinds:
            row[kind] += 1
        if not kinds:
            kept.append(pair)
    for source, by_lang in counts.items():
        dropped = {lang: r["dropped"] for lang, r in sorted(by_lang.items()) if r["dropped"]}
        if dropped:
            log.warning("dropped %d of %d %s training pair(s) that an evaluated split judges "
                        "(question or passage): %s", sum(dropped.values()),
                        sum(r["pairs"] for r in by_lang.values()), source,
                        ", ".join(f"{lang} {n}" for lang, n in dropped.items()))
    return kept, counts


def hold_out(pairs: list[dict], most: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(kept pairs, held-out pairs): whole passages (by normalised text) are held out, in a
    seeded order, until min(most, len(pairs) // 10) pairs are; no kept pair shares a held-out
    passage. The generator's dev loss and a bi-encoder's checkpoint choice (train.dev:
    holdout) are measured on such pairs."""
    import random

    want = min(most, len(pairs) // 10)
    if want < 1:
        return pairs, []
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault(normalise(p["text"]), []).append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    held: set[int] = set()
    for key in keys:
        if len(held) >= want:
            break
        held.update(groups[key])
    return ([p for i, p in enumerate(pairs) if i not in held],
            [p for i, p in enumerate(pairs) if i in held])
