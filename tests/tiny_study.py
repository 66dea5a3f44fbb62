"""The tiny study shared by tests/test_study.py and tests/reliability: a BEIR folder of 8
passages and 10 queries in two languages, and a study config over it that runs every stage
(three tuning methods, BM25 and hybrid baselines, xQG with two alphas) on the tiny fixture
models in a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DOCS = {
    "d1": ("Kano", "Kano birni ne a Najeriya"),
    "d2": ("Lagos", "a poet from Lagos wrote the book"),
    "d3": ("Nairobi", "the capital of Kenya is Nairobi"),
    "d4": ("River", "the river runs through the city"),
    "d5": ("War", "the war ended in the year"),
    "d6": ("Book", "the book was written by a poet"),
    "d7": ("Eko", "Ilu Eko wa ni Naijiria"),
    "d8": ("Kenya", "Nairobi ni mji mkuu wa Kenya"),
}
QUERIES = {  # qid: (text, lang, gold doc, split)
    "q1": ("where is Kano", "hau_Latn", "d1", "test"),
    "q2": ("who wrote the book", "yor_Latn", "d6", "test"),
    "q3": ("what is the capital of Kenya", "hau_Latn", "d3", "test"),
    "q4": ("where does the river run", "yor_Latn", "d4", "test"),
    "q5": ("when did the war end", "hau_Latn", "d5", "train"),
    "q6": ("a poet from Lagos", "yor_Latn", "d2", "train"),
    "q7": ("Ilu Eko", "yor_Latn", "d7", "train"),
    "q8": ("mji mkuu wa Kenya", "hau_Latn", "d8", "train"),
    "q9": ("the city river", "hau_Latn", "d4", "dev"),
    "q10": ("the poet book", "yor_Latn", "d6", "dev"),
}


def make_beir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as f:
        for did, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": did, "title": title, "text": text, "lang": "eng_Latn"}) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, (text, lang, _, _) in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text, "lang": lang}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    for split in ("train", "dev", "test"):
        rows = [f"{q}\t{d}\t1" for q, (_, _, d, s) in QUERIES.items() if s == split]
        (root / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def study_config(tmp: Path, beir: Path, encoder: Path, generator: Path) -> dict:
    return {
        "name": "tiny", "out": str(tmp / "study"), "encoder": str(encoder), "seeds": [1],
        "methods": [{"name": "frozen"}, {"name": "lora", "train": {"lr": 1e-3}},
                    {"name": "bitfit", "train": {"lr": 1e-3}}],
        "train": {"train": [str(beir)], "dev": str(beir), "max_pairs": 4, "max_dev_pairs": 2,
                  "epochs": 1, "batch_size": 2, "hard_negatives": 0, "eval_steps": 1,
                  "logging_steps": 1, "query_max_length": 16, "passage_max_length": 32},
        "tasks": [{"name": str(beir), "label": "tiny", "split": "test"},
                  {"name": str(beir), "label": "tiny-dev", "split": "dev", "role": "select"}],
        "baselines": ["bm25", "hybrid"], "max_seq_length": 32, "batch_size": 4, "k": 10,
        "xqg": {"enabled": True, "task": "tiny", "systems": ["frozen", "best"],
                "select_on": "tiny-dev",
                "languages": ["hau_Latn", "yor_Latn"], "alphas": [0.1, 0.5],
                "generator": str(generator),
                "train": {"sources": [str(beir)], "eval_task": str(beir), "steps": 2,
                          "batch_size": 2, "max_passage_tokens": 24, "save_every": 1},
                # The whole vocabulary: the tiny tokenizer knows none of these languages.
                "generate": {"max_new_tokens": 4, "max_passage_tokens": 24,
                             "vocabulary": "full"}},
    }


def tiny_setup(tmp: Path, encoder: Path, generator: Path) -> tuple[dict, dict]:
    """The tiny BEIR folder made under `tmp`, the study config over it (its `out` under `tmp`)
    and the environment a study subprocess runs in (its own XLIR_HOME, a fixed hash seed)."""
    import os

    config = study_config(tmp, make_beir(tmp / "beir"), encoder, generator)
    return config, {**os.environ, "XLIR_HOME": str(tmp / "home"), "PYTHONHASHSEED": "0"}


def run_study(config: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xlir", "study", str(config), *args], env=env,
                          capture_output=True, text=True, timeout=900)


def metrics_of(root: Path) -> dict:
    out = {}
    for p in sorted(root.glob("systems/*/*/metrics.json")):
        m = json.loads(p.read_text())
        out[f"{m['system']}/{m['task']}"] = m["per_query"]
    return out


def assert_same_metrics(resumed: dict, reference: dict) -> None:
    """Every per-query score of every system and task equal to 1e-6 (metrics_of dicts)."""
    import pytest

    assert resumed.keys() == reference.keys()
    for key in reference:
        assert resumed[key].keys() == reference[key].keys(), key
        for measure, scores in reference[key].items():
            assert resumed[key][measure].keys() == scores.keys(), (key, measure)
            for qid, value in scores.items():
                assert resumed[key][measure][qid] == pytest.approx(value, abs=1e-6), (key, measure, qid)
