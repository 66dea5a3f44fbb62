"""Retrieval tasks from the built-in datasets and from user files, as `Task` objects.

    load_task("afriqa", "test")            question in its language -> shared passage pool
    load_task("afriqa-translate", "test")  the same with the human English translation
    load_task("tydi-mono", "dev")          question -> paragraphs of its own language
    load_task("amqa", "test")              Amharic question -> paragraph
    load_task("flores-x2en" | "flores-en2x" | "flores-bitext", ...)   see `bitext.py`
    load_task("bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG")              a user's parallel text
    load_task("/path/to/beir-folder", "test")                          see `beir.py`
    load_pairs("tydi-en" | "tydi-ko" | "tydi-sw" | "afriqa-en" | "afriqa-native", "train")

Document ids are content hashes (`afriqa-<sha256[:12]>` of the stripped passage), so the same
passage has the same id in every split and every release of xlir; passages are deduplicated
by stripped content. Query ids keep the upstream id with language and split
(`hau-test-17`). Languages are canonical codes (`languages.py`). When the query text is not
in the language it is reported under (afriqa-translate, flores-en2x), `meta["query_text_lang"]`
says which language the text is in.

TyDi QA GoldP has no public test split: its dev split is the evaluation set, so
`load_task("tydi-mono", "test")` returns the dev questions (`meta["upstream_split"]` says so).

Files come through `fetch` (cached, verified); this module parses and assembles, and does not
evaluate.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from xlir.data.beir import beir_task
from xlir.data.bitext import bitext_spec_task, flores_task
from xlir.data.fetch import fetch
from xlir.data.languages import normalize
from xlir.data.readers import read_jsonl, text_field
from xlir.data.registry import AFRIQA_LANGUAGES, TYDI_FOLDERS
from xlir.data.task import Task
from xlir.errors import InputError, XlirError
from xlir.storage import read_json

AFRIQA_SPLITS = ("train", "dev", "test")
TYDI_DEFAULT = ("swh_Latn", "tel_Telu", "ben_Beng")
TYDI_TRAIN = ("eng_Latn", "kor_Hang", "swh_Latn")


def doc_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(text.strip().encode('utf-8')).hexdigest()[:12]}"


def load_task(name: str, split: str = "test", languages: list[str] | None = None,
              **options) -> Task:
    """The retrieval task `name` (a built-in name, a BEIR folder path, or
    `bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG` for line-aligned parallel files) for `split`,
    restricted to queries in `languages` (any code form, a list or "ha,yo"; default: the
    task's own set). `options`: `direction` for flores-bitext ("x2en" / "en2x") and bitext
    files ("src2tgt" / "tgt2src"), `language` (the default for items without "lang") for a
    BEIR folder."""
    if isinstance(languages, str):
        languages = [c for c in languages.split(",") if c.strip()]
    languages = list(languages) if languages else None
    if name in ("afriqa", "afriqa-translate"):
        _no_options(name, options)
        task = afriqa_task(split, translated=name == "afriqa-translate")
    elif name == "tydi-mono":
        _no_options(name, options)
        return tydi_task(split, languages)
    elif name == "amqa":
        _no_options(name, options)
        task = amqa_task(split)
    elif name.startswith("flores-"):
        _no_options(name, options, allowed=("direction",))
        return flores_task(name, split, languages, **options)
    elif name.startswith("bitext:"):
        _no_options(name, options, allowed=("direction",))
        task = bitext_spec_task(name, split, **options)
    elif Path(name).is_dir():
        _no_options(name, options, allowed=("language",))
        task = beir_task(name, split, **options)
    else:
        raise XlirError(f"unknown task '{name}': built-in tasks are afriqa, afriqa-translate, "
                        "tydi-mono, amqa, flores-x2en, flores-en2x, flores-bitext; or give a "
                        "BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or "
                        "parallel text as bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG")
    return task if languages is None else _restrict(task, languages)


def _no_options(name: str, options: dict, allowed: tuple[str, ...] = ()) -> None:
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise XlirError(f"task '{name}' takes no option {', '.join(extra)}"
                        + (f" (it takes {', '.join(allowed)})" if allowed else ""))


def _restrict(task: Task, languages: list[str]) -> Task:
    wanted = [normalize(code) for code in languages]
    missing = sorted(set(wanted) - set(task.languages))
    if missing:
        raise XlirError(f"task '{task.name}' ({task.split}) has no queries in {missing}; "
                        f"it has {task.languages}")
    return task.subset(wanted)


# --- AfriQA -------------------------------------------------------------------------------


def afriqa_rows(split: str) -> list[dict]:
    """Every usable gold row of `split`: {qid, lang, question, translated, title, context,
    passage_lang}, languages in registry order. Rows upstream left without a passage or a
    question are skipped (they have no judgment to evaluate)."""
    if split not in AFRIQA_SPLITS:
        raise XlirError(f"AfriQA has splits {AFRIQA_SPLITS}, not '{split}'")
    root = fetch("afriqa", progress=False)
    rows = []
    for folder, (lang, pivot) in AFRIQA_LANGUAGES.items():
        path = (root / "data/gold_passages" / folder
                / f"gold_span_passages.afriqa.{folder}.{pivot}.{split}.json")
        if not path.exists():  # swa and yor have no dev split, swa no train split
            continue
        rows.extend(afriqa_file_rows(path, f"{folder}-{split}", lang, pivot))
    return rows


def afriqa_file_rows(path: Path, qid_prefix: str, lang: str, pivot: str) -> list[dict]:
    """The usable rows of one AfriQA gold-passage JSONL file (see `afriqa_rows`)."""
    rows = []
    for line, row in read_jsonl(path):
        context, question = row.get("context"), row.get("question_lang")
        if not _nonempty(context) or not _nonempty(question):
            continue
        rows.append({
            "qid": f"{qid_prefix}-{text_field(row, 'id', path, line)}", "lang": lang,
            "question": question.strip(),
            "translated": text_field(row, "question_translated", path, line, optional=True),
            "title": text_field(row, "title", path, line, optional=True),
            "context": context.strip(),
            "passage_lang": "fra_Latn" if pivot == "fr" else "eng_Latn"})
    return rows


def afriqa_corpus() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The shared pool: every unique gold passage of every split and language (6,151)."""
    corpus: dict[str, dict[str, str]] = {}
    doc_lang: dict[str, str] = {}
    for split in AFRIQA_SPLITS:
        for row in afriqa_rows(split):
            did = doc_id("afriqa", row["context"])
            if did not in corpus or (not corpus[did]["title"] and row["title"]):
                corpus[did] = {"title": row["title"], "text": row["context"]}
                doc_lang[did] = row["passage_lang"]
    return corpus, doc_lang


def afriqa_task(split: str = "test", translated: bool = False) -> Task:
    if split not in AFRIQA_SPLITS:
        raise XlirError(f"AfriQA has splits {AFRIQA_SPLITS}, not '{split}'")
    corpus, doc_lang = afriqa_corpus()
    queries, qrels, query_lang = {}, {}, {}
    for row in afriqa_rows(split):
        text = row["translated"] if translated else row["question"]
        if not text:
            continue
        queries[row["qid"]] = text
        qrels[row["qid"]] = {doc_id("afriqa", row["context"]): 1}
        query_lang[row["qid"]] = row["lang"]
    return Task(name="afriqa-translate" if translated else "afriqa", split=split,
                corpus=corpus, queries=queries, qrels=qrels, query_lang=query_lang,
                doc_lang=doc_lang, primary_measure="RR@10",
                meta={"dataset": "afriqa", "query_text": "question_translated" if translated
                      else "question_lang", **({"query_text_lang": "eng_Latn"} if translated
                                               else {})})


def _nonempty(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


# --- TyDi QA GoldP and AmQA (SQuAD-format) ----------------------------------------------


def squad_items(path: Path) -> list[dict]:
    """{qid, question, title, context} for each question of a SQuAD-format file. AmQA gives
    some articles' `paragraphs` as one dict instead of a list; both are accepted."""
    articles = _squad_get(read_json(path), "", "data", list, path)
    items = []
    for a, article in enumerate(articles):
        paragraphs = _squad_get(article, f"data[{a}]", "paragraphs", (list, dict), path)
        title = _squad_get(article, f"data[{a}]", "title", (str, type(None)), path) or ""
        for p, paragraph in enumerate([paragraphs] if isinstance(paragraphs, dict)
                                      else paragraphs):
            where = f"data[{a}].paragraphs" + ("" if isinstance(paragraphs, dict) else f"[{p}]")
            context = _squad_get(paragraph, where, "context", str, path)
            for q, qa in enumerate(_squad_get(paragraph, where, "qas", list, path)):
                at = f"{where}.qas[{q}]"
                items.append({"qid": str(_squad_get(qa, at, "id", (str, int), path)),
                              "question": _squad_get(qa, at, "question", str, path).strip(),
                              "title": title.strip(), "context": context.strip()})
    return items


def _squad_get(parent, where: str, key: str, kinds, path: Path):
    """`parent[key]` when `parent` is an object and the value one of `kinds`; otherwise an
    InputError whose field is the JSON path (`data[3].paragraphs[0].qas`)."""
    if not isinstance(parent, dict):
        raise InputError(f"expected a JSON object, got {type(parent).__name__}", path,
                         field=where or None)
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    field = f"{where}.{key}" if where else key
    if key not in parent and type(None) not in kinds:
        raise InputError("missing field", path, field=field)
    value = parent.get(key)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise InputError(f"expected {names}, got {type(value).__name__}", path, field=field)
    return value


def tydi_file(lang: str, split: str) -> Path:
    folders = {code: folder for folder, code in TYDI_FOLDERS.items()}
    if lang not in folders:
        raise XlirError(f"TyDi QA has no language {lang}; it has {sorted(folders)}")
    if split not in ("dev", "train") or (split == "train" and lang not in TYDI_TRAIN):
        raise XlirError(f"TyDi QA has a dev split for {sorted(folders)} and a train split for "
                        f"{list(TYDI_TRAIN)} only, not {split} for {lang}")
    folder = folders[lang]
    return fetch("tydi", progress=False) / f"language_data/{folder}/{folder}_tydiqa_{split}.json"


def tydi_task(split: str = "dev", languages: list[str] | None = None) -> Task:
    """In-language question -> paragraphs of the same language and split (one pool each)."""
    upstream = "dev" if split == "test" else split
    langs = [normalize(c) for c in languages] if languages else list(TYDI_DEFAULT)
    corpus, queries, qrels, query_lang, doc_lang = {}, {}, {}, {}, {}
    for lang in langs:
        for item in squad_items(tydi_file(lang, upstream)):
            did = doc_id(f"tydi-{lang.split('_')[0]}", item["context"])
            corpus.setdefault(did, {"title": item["title"], "text": item["context"]})
            doc_lang[did] = lang
            queries[item["qid"]] = item["question"]
            qrels[item["qid"]] = {did: 1}
            query_lang[item["qid"]] = lang
    return Task(name="tydi-mono", split=split, corpus=corpus, queries=queries, qrels=qrels,
                query_lang=query_lang, doc_lang=doc_lang, query_pool=dict(query_lang),
                doc_pool=dict(doc_lang), primary_measure="nDCG@10",
                meta={"dataset": "tydi", "upstream_split": upstream})


AMQA_SPLITS = ("train", "dev", "test")


def amqa_task(split: str = "test") -> Task:
    """Amharic question -> one pool of every AmQA paragraph (375, from all three splits)."""
    if split not in AMQA_SPLITS:
        raise XlirError(f"AmQA has splits {AMQA_SPLITS}, not '{split}'")
    root = fetch("amqa", progress=False)
    corpus: dict[str, dict[str, str]] = {}
    queries, qrels = {}, {}
    for name in AMQA_SPLITS:
        for item in squad_items(root / f"{name}_data.json"):
            did = doc_id("amqa", item["context"])
            corpus.setdefault(did, {"title": item["title"], "text": item["context"]})
            if name == split:
                qid = f"amqa-{split}-{item['qid']}"
                queries[qid] = item["question"]
                qrels[qid] = {did: 1}
    return Task(name="amqa", split=split, corpus=corpus, queries=queries, qrels=qrels,
                query_lang={q: "amh_Ethi" for q in queries},
                doc_lang={d: "amh_Ethi" for d in corpus}, primary_measure="nDCG@10",
                meta={"dataset": "amqa"})


# --- Training pairs -----------------------------------------------------------------------

# name -> language of the TyDi file (None: AfriQA). Sizes train / dev: tydi-en 3,696 / 440,
# tydi-ko 1,625 / 276, tydi-sw 2,755 / 499; afriqa-en and afriqa-native 2,092 / 1,855.
PAIR_SETS = {"tydi-en": "eng_Latn", "tydi-ko": "kor_Hang", "tydi-sw": "swh_Latn",
             "afriqa-en": None, "afriqa-native": None}


def load_pairs(name: str, split: str = "train") -> list[dict]:
    """(query, gold passage) pairs {qid, query, query_lang, doc_id, title, text, source} of
    `name` for `split` ("train" or "dev"). afriqa-en: AfriQA questions' human English
    translations (query_lang eng_Latn); afriqa-native: the questions in their own language (the
    query-generation training data). `doc_id` is the passage's id in the matching task, so
    pairs and tasks can be checked for overlap (`checks.drop_leaked`); `query_lang` is the
    language of the text; `source` is `name`, so pairs of several sources can be counted apart.
    A BEIR folder path gives one pair per positive judgment of qrels/<split>.tsv, so a user's
    own training data needs no code."""
    return [{**pair, "source": str(name)} for pair in _pairs(name, split)]


def is_pair_source(name: str) -> bool:
    """Whether `load_pairs` can read `name`: a built-in pair set or a BEIR folder."""
    return name in PAIR_SETS or Path(name).is_dir()


def _pairs(name: str, split: str) -> list[dict]:
    if Path(name).is_dir():
        return beir_pairs(name, split)
    if name not in PAIR_SETS:  # is_pair_source's other half: the folder case returned above
        raise XlirError(f"unknown pair set '{name}'; built-in: {', '.join(PAIR_SETS)}")
    if split not in ("train", "dev"):
        raise XlirError(f"pair sets have splits train and dev, not '{split}'")
    if name.startswith("tydi-"):
        lang = PAIR_SETS[name]
        return [{"qid": item["qid"], "query": item["question"], "query_lang": lang,
                 "doc_id": doc_id(f"tydi-{lang.split('_')[0]}", item["context"]),
                 "title": item["title"], "text": item["context"]}
                for item in squad_items(tydi_file(lang, split))]
    english = name == "afriqa-en"
    return [{"qid": row["qid"], "query": row["translated"] if english else row["question"],
             "query_lang": "eng_Latn" if english else row["lang"],
             "doc_id": doc_id("afriqa", row["context"]), "title": row["title"],
             "text": row["context"]}
            for row in afriqa_rows(split) if (row["translated"] if english else row["question"])]


def beir_pairs(folder: str | Path, split: str, language: str | None = None) -> list[dict]:
    """Training pairs from a user's BEIR folder: each (query, judged document) with score > 0."""
    task = load_task(str(folder), split, **({"language": language} if language else {}))
    return [{"qid": qid, "query": task.queries[qid], "query_lang": task.query_lang[qid],
             "doc_id": did, "title": task.corpus[did].get("title", ""),
             "text": task.corpus[did]["text"]}
            for qid in task.queries for did, rel in task.qrels.get(qid, {}).items() if rel > 0]
