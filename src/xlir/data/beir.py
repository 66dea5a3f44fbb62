"""A user's retrieval data in the BEIR folder layout, read strictly into a `Task`:

    <folder>/corpus.jsonl        {"_id", "text", optional "title", optional "lang"}
    <folder>/queries.jsonl       {"_id", "text", optional "lang"}
    <folder>/qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score   (header line optional)

Items without "lang" take the `language` option; every code goes through
`languages.normalize`. Only queries judged in `<split>.tsv` enter the task. Any malformed line,
missing field, empty text, duplicate id, unknown language, or judgment naming an unknown query or
document is an InputError naming file, line and field (`readers.py`).

This module reads files only; it does not fetch or evaluate.
"""

from __future__ import annotations

from pathlib import Path

from xlir.data.readers import (add_unique, language_field, read_jsonl, read_tsv, safe_join,
                               safe_name, text_field)
from xlir.data.task import Task
from xlir.errors import InputError


def _items(path: Path, language: str | None, with_title: bool
           ) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    items: dict[str, dict[str, str]] = {}
    langs: dict[str, str] = {}
    for line, row in read_jsonl(path):
        item_id = text_field(row, "_id", path, line)
        text = text_field(row, "text", path, line)
        title = text_field(row, "title", path, line, optional=True) if with_title else ""
        add_unique(items, item_id, {"title": title, "text": text}, path, line)
        if row.get("lang") is not None:
            langs[item_id] = language_field(text_field(row, "lang", path, line), path, line,
                                            "lang")
        elif language is not None:
            langs[item_id] = language
        else:
            raise InputError("no language: add a 'lang' field or pass language=CODE",
                             path, line, "lang")
    if not items:
        raise InputError("no items", path)
    return items, langs


def read_qrels(path: Path, queries: dict, corpus: dict) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line, (qid, did, score) in read_tsv(path, 3, header="query-id"):
        qid, did = qid.strip(), did.strip()
        if qid not in queries:
            raise InputError(f"unknown query id '{qid}'", path, line, "query-id")
        if did not in corpus:
            raise InputError(f"unknown document id '{did}'", path, line, "corpus-id")
        try:
            value = int(score)
        except ValueError:
            raise InputError(f"score '{score}' is not an integer", path, line,
                             "score") from None
        if did in qrels.get(qid, {}):
            raise InputError(f"duplicate judgment ({qid}, {did})", path, line)
        qrels.setdefault(qid, {})[did] = value
    if not qrels:
        raise InputError("no judgments", path)
    return qrels


def beir_task(folder: str | Path, split: str = "test", language: str | None = None) -> Task:
    folder = Path(folder)
    qrels_path = safe_join(folder / "qrels", safe_name(split, folder, None, "split") + ".tsv")
    if language is not None:
        language = language_field(language, None, None, "language")
    corpus, doc_lang = _items(folder / "corpus.jsonl", language, with_title=True)
    all_queries, all_query_lang = _items(folder / "queries.jsonl", language, with_title=False)
    qrels = read_qrels(qrels_path, all_queries, corpus)
    queries = {q: all_queries[q]["text"] for q in all_queries if q in qrels}
    return Task(name=folder.name, split=split, corpus=corpus, queries=queries, qrels=qrels,
                query_lang={q: all_query_lang[q] for q in queries}, doc_lang=doc_lang,
                primary_measure="nDCG@10", meta={"folder": str(folder)})
