"""Bitext retrieval: sentence i in one language retrieves sentence i in the other.

    load_task("flores-x2en", "test")   X sentence i -> the English pool (Success@1)
    load_task("flores-en2x", "test")   English sentence i, reported under X -> the X pool
    load_task("flores-bitext", "test", direction="x2en" | "en2x")
    load_bitext_task(src_path, tgt_path, src_lang, tgt_lang, direction="src2tgt")
    load_task("bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG")   the same, named in one string

The FLORES-200 sentences come from SIB-200 (205 variants, 701/99/204 train/dev/test rows, the
same `index_id`s in the same order in every language). Ids: documents `<lang>:<index_id>`;
queries `hau_Latn:17` for x2en and `eng_Latn>hau_Latn:17` for en2x (one English sentence is
a query once per X, so the X is part of its id). Both directions report under X. By default
every variant except English itself (204 languages); pass `languages` to choose.

A user's parallel text is two line-aligned UTF-8 files; `bitext_spec_task` reads the name the
CLI's `--task` and a study's task list give (`bitext:hau.txt,eng.txt,hau,eng`; paths without
commas). Every problem with the files is an InputError naming the file and the line.

This module does not download (`fetch.py`) or evaluate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from xlir.data.fetch import fetch
from xlir.data.languages import normalize
from xlir.data.readers import read_lines, read_tsv
from xlir.data.registry import SIB200_LANGUAGES
from xlir.data.task import Task
from xlir.errors import InputError, XlirError

PIVOT = "eng_Latn"
FLORES_SPLITS = ("train", "dev", "test")


def flores_sentences(lang: str, split: str = "test", root: Path | None = None
                     ) -> dict[str, str]:
    """index_id -> sentence of one SIB-200 language variant, in file order. `root`: the
    fetched SIB-200 folder, when the caller already has it (fetching verifies every file)."""
    if split not in FLORES_SPLITS:
        raise XlirError(f"SIB-200 has splits {FLORES_SPLITS}, not '{split}'")
    lang = normalize(lang)
    if lang not in SIB200_LANGUAGES:
        raise XlirError(f"SIB-200 has no language variant {lang}")
    root = root or fetch("sib200", progress=False)
    path = root / f"data/annotated/{lang}/{split}.tsv"
    out: dict[str, str] = {}
    for line, (index_id, _category, text) in read_tsv(path, 3, header="index_id"):
        if index_id in out:
            raise InputError(f"duplicate index_id '{index_id}'", path, line, "index_id")
        out[index_id] = text.strip()
    return out


def flores_task(name: str, split: str = "test", languages: list[str] | None = None,
                direction: Literal["x2en", "en2x"] | None = None) -> Task:
    """The FLORES bitext task `name` ("flores-x2en", "flores-en2x", or "flores-bitext" with
    `direction`)."""
    if name == "flores-bitext":
        if direction not in ("x2en", "en2x"):
            raise XlirError("flores-bitext needs direction='x2en' or 'en2x'")
    elif name in ("flores-x2en", "flores-en2x") and direction in (None, name[7:]):
        direction = name[7:]
    else:
        raise XlirError(f"unknown task '{name}' (or direction {direction!r} contradicts it)")
    langs = ([normalize(c) for c in languages] if languages
             else [c for c in SIB200_LANGUAGES if c != PIVOT])
    root = fetch("sib200", progress=False)
    english = flores_sentences(PIVOT, split, root)
    corpus, queries, qrels, query_lang, doc_lang = {}, {}, {}, {}, {}
    query_pool, doc_pool = {}, {}
    if direction == "x2en":
        for i, text in english.items():
            corpus[f"{PIVOT}:{i}"] = {"title": "", "text": text}
            doc_lang[f"{PIVOT}:{i}"] = doc_pool[f"{PIVOT}:{i}"] = PIVOT
    for lang in langs:
        sentences = flores_sentences(lang, split, root)
        if list(sentences) != list(english):
            raise XlirError(f"SIB-200 {lang}/{split} is not row-aligned with {PIVOT}")
        for i, text in sentences.items():
            if direction == "x2en":
                qid, qtext, did, pool = f"{lang}:{i}", text, f"{PIVOT}:{i}", PIVOT
            else:
                qid, qtext, did, pool = f"{PIVOT}>{lang}:{i}", english[i], f"{lang}:{i}", lang
                corpus[did] = {"title": "", "text": text}
                doc_lang[did] = doc_pool[did] = lang
            queries[qid], qrels[qid], query_lang[qid], query_pool[qid] = qtext, {did: 1}, lang, pool
    return Task(name=f"flores-{direction}", split=split, corpus=corpus, queries=queries,
                qrels=qrels, query_lang=query_lang, doc_lang=doc_lang, query_pool=query_pool,
                doc_pool=doc_pool, primary_measure="Success@1",
                meta={"dataset": "sib200", "direction": direction,
                      **({"query_text_lang": PIVOT} if direction == "en2x" else {})})


BITEXT_PREFIX = "bitext:"


def _aligned_lines(path: str | Path) -> list[str]:
    lines = []
    for number, line in read_lines(path):
        if not line.strip():
            raise InputError("empty text (bitext files must have one sentence a line)",
                             path, number)
        lines.append(line.strip())
    if not lines:
        raise InputError("empty file (bitext files must have one sentence a line)", path)
    return lines


def load_bitext_task(src_path: str | Path, tgt_path: str | Path, src_lang: str, tgt_lang: str,
                     direction: Literal["src2tgt", "tgt2src"] = "src2tgt",
                     split: str = "test") -> Task:
    """Line i of `src_path` and line i of `tgt_path` are translations. src2tgt: each source
    line is a query over all target lines; tgt2src the reverse. Queries are reported under
    `src_lang` in both directions (give the evaluated language as src, like X in FLORES).
    `split` only names the task (the files are the split)."""
    if direction not in ("src2tgt", "tgt2src"):
        raise XlirError(f"direction must be 'src2tgt' or 'tgt2src', not {direction!r}")
    src_lang, tgt_lang = normalize(src_lang), normalize(tgt_lang)
    src, tgt = _aligned_lines(src_path), _aligned_lines(tgt_path)
    if len(src) != len(tgt):
        (longer, n_long), (shorter, n_short) = sorted(
            [(src_path, len(src)), (tgt_path, len(tgt))], key=lambda x: -x[1])
        raise InputError(f"{shorter} ends at line {n_short}, this file has {n_long} lines: "
                         "not line-aligned", longer, n_short + 1)
    (q_texts, q_lang), (d_texts, d_lang) = ((src, src_lang), (tgt, tgt_lang))
    if direction == "tgt2src":
        (q_texts, q_lang), (d_texts, d_lang) = (d_texts, d_lang), (q_texts, q_lang)
    corpus = {f"{d_lang}:{i}": {"title": "", "text": t} for i, t in enumerate(d_texts, 1)}
    queries = {f"{q_lang}>{d_lang}:{i}": t for i, t in enumerate(q_texts, 1)}
    qrels = {f"{q_lang}>{d_lang}:{i}": {f"{d_lang}:{i}": 1} for i in range(1, len(q_texts) + 1)}
    return Task(name=f"bitext-{direction}", split=split, corpus=corpus, queries=queries,
                qrels=qrels, query_lang={q: src_lang for q in queries},
                doc_lang={d: d_lang for d in corpus}, primary_measure="Success@1",
                meta={"src": str(src_path), "tgt": str(tgt_path), "direction": direction,
                      **({"query_text_lang": q_lang} if q_lang != src_lang else {})})


def bitext_spec_task(spec: str, split: str = "test",
                     direction: Literal["src2tgt", "tgt2src"] = "src2tgt") -> Task:
    """The task named `bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG[,DIRECTION]` (see
    `load_bitext_task`); a DIRECTION field (src2tgt or tgt2src) overrides `direction`."""
    fields = [f.strip() for f in spec[len(BITEXT_PREFIX):].split(",")]
    if not spec.startswith(BITEXT_PREFIX) or len(fields) not in (4, 5) or not all(fields):
        raise XlirError(f"task '{spec}': expected bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG"
                        "[,src2tgt|tgt2src] (comma-separated fields; paths without commas)")
    src, tgt, src_lang, tgt_lang = fields[:4]
    if len(fields) == 5:
        if fields[4] not in ("src2tgt", "tgt2src"):
            raise XlirError(f"task '{spec}': DIRECTION: expected src2tgt or tgt2src, "
                            f"got '{fields[4]}'")
        direction = fields[4]
    for role, code in (("SRC_LANG", src_lang), ("TGT_LANG", tgt_lang)):
        try:
            normalize(code)
        except XlirError as e:
            raise XlirError(f"task '{spec}': {role}: {e}") from None
    return load_bitext_task(src, tgt, src_lang, tgt_lang, direction, split)
