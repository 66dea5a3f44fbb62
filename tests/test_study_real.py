"""End to end on the real packaged models and the real mirrored data, small enough for CI:
`xlir study` with the zero-shot and a LoRA-tuned multilingual-e5-small, BM25 and hybrid,
and xQG with the packaged gemma-3-270m (fine-tuned for one step) fused into the index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xlir.storage import write_json

pytestmark = pytest.mark.real


def test_real_models_real_data_whole_study(tmp_path):
    from xlir.models import prepare_encoder, prepare_generator

    prepare_encoder(), prepare_generator()
    config = {
        "name": "ci", "out": str(tmp_path / "study"), "seeds": [13], "max_seq_length": 128,
        "batch_size": 16, "k": 20,
        "methods": [{"name": "frozen"}, {"name": "lora", "train": {"lr": 3e-4}}],
        "train": {"train": ["tydi-en"], "dev": "tydi-en", "max_pairs": 16, "max_dev_pairs": 8,
                  "batch_size": 8, "hard_negatives": 1, "query_max_length": 32,
                  "passage_max_length": 96, "eval_steps": 2, "batch_sampler": "batch_sampler"},
        "tasks": [{"name": "afriqa", "split": "test", "languages": ["hau_Latn", "yor_Latn"],
                   "max_queries_per_language": 4, "distractors": 8}],
        "xqg": {"enabled": True, "task": "afriqa", "systems": ["lora"], "languages": ["hau_Latn"],
                "alphas": [0.5],
                "train": {"sources": ["afriqa-native"], "languages": ["hau_Latn"],
                          "max_pairs_per_language": 4, "steps": 1, "batch_size": 2,
                          "max_passage_tokens": 48, "dtype": "bfloat16"},
                "generate": {"max_new_tokens": 8, "max_passage_tokens": 64, "dtype": "bfloat16",
                             "passages_per_batch": 4}},
    }
    path = tmp_path / "ci.yaml"
    write_json(path, config)
    proc = subprocess.run([sys.executable, "-m", "xlir", "study", str(path)], env=dict(os.environ),
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    root = tmp_path / "study"
    metrics = {p.parent.parent.name: json.loads(p.read_text())
               for p in root.glob("systems/*/afriqa/metrics.json")}
    assert set(metrics) == {"frozen-s13", "lora-s13", "bm25", "hybrid-frozen-s13",
                            "hybrid-lora-s13", "xqg-lora-s13-a0.5"}
    task = json.loads((root / "tasks" / "afriqa.json").read_text())
    assert task["queries_per_language"] == {"hau_Latn": 4, "yor_Latn": 4}
    for m in metrics.values():
        assert set(m["per_language"]) == {"hau_Latn", "yor_Latn"}
        assert m["seen"] == {"hau_Latn": True, "yor_Latn": False}
    # The packaged encoder really retrieves: 8 questions against a pool of 16 passages.
    assert metrics["frozen-s13"]["macro"]["RR@10"] > 0.3
    rows = [json.loads(x) for x in (root / "xqg" / "queries.jsonl").read_text().splitlines()]
    assert len(rows) == task["documents"] and {r["lang"] for r in rows} == {"hau_Latn"}
    fused = (root / "systems" / "xqg-lora-s13-a0.5" / "afriqa" / "run.trec").read_text()
    plain = (root / "systems" / "lora-s13" / "afriqa" / "run.trec").read_text()
    assert fused.split()[4::6] != plain.split()[4::6]  # fusion changed the scores
    manifest = json.loads((root / "systems" / "lora-s13" / "model" / "xlir-model.json").read_text())
    assert 0 < manifest["trainable_params"] < manifest["total_params"]
    html = (root / "report" / "index.html").read_text(encoding="utf-8")
    assert "Query-generation augmentation (xQG)" in html and "data:image/png;base64," in html
