"""The bodies of the study's stages: one function per stage kind, every input an explicit
argument. None of them sees the Study (xlir.study decides what runs, skips what is done and
keeps the books); each writes its outputs atomically, the metrics file last, so a stage
killed midway leaves nothing a rerun would take for done.

    train     a dense system's model (xlir.train; nothing for frozen), or a link to the same
              training done for an lr_grid variant; a model folder that is only a record
              (`is_record`) is trained again
    retrieve  a dense, per-language (MAD-X swap) or BM25 run of one task, and its metrics
    fuse      a hybrid of a dense run and the BM25 run of one task

and what a study writes before its stages: fertility.json (tokenizer pieces per word per
language) and a task's summary (tasks/<label>.json).

The xQG stages are in xlir.stages_xqg, the MAD-X swap's language adapters and runs in
xlir.stages_swap.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from xlir import storage
from xlir.data.checks import fertility as pieces_per_word
from xlir.errors import XlirError
from xlir.evaluate import evaluate_run
from xlir.models import resolve_encoder
from xlir.retrieve import bm25_run, dense_run, hybrid_run, read_trec_run, write_trec_run


MANIFEST = "xlir-model.json"  # xlir.tuning.MANIFEST, named here without importing torch


def is_record(model_dir: Path) -> bool:
    """A model folder holding its manifest alone: what results of record keep of a trained
    model (xlir.results copies every systems/*/model/xlir-model.json, never the weights). A
    study grown from them has the record, not the model."""
    return (model_dir / MANIFEST).is_file() and len(list(model_dir.iterdir())) == 1


def has_model(model_dir: Path) -> bool:
    """A trained model is on disk: its manifest, written last, beside its weights."""
    return (model_dir / MANIFEST).is_file() and not is_record(model_dir)


def train(model_dir: Path, config, evaluated_tasks: dict, same_as: Path | None = None) -> None:
    """Train `config` (xlir.train.TrainConfig) into `model_dir`, never on a question or
    passage that one of `evaluated_tasks` (tasks by label) judges. `same_as`: a model folder
    trained with this very config (an lr_grid variant, same seed: training is deterministic),
    linked instead of trained twice (MAD-X trains again: its language adapters' paths are the
    other folder's). A record in `model_dir` (`is_record`) is replaced by the model it records
    (xlir.train would take its manifest for a finished run)."""
    from xlir.train import train as train_model  # torch and the trainer: when training

    if is_record(model_dir):
        (model_dir / MANIFEST).unlink()
    if same_as is not None and has_model(same_as) and config.method != "madx":
        copy_model(same_as, model_dir, config)
    else:
        train_model(config, model_dir, evaluated_tasks=evaluated_tasks)


def copy_model(src: Path, dst: Path, config) -> None:
    """`dst` becomes the trained model in `src` (files hard-linked, copied across devices), which
    must have been trained with `config`. Trainer checkpoints stay behind; `dst` appears
    complete or not at all. Its manifest is its own copy, naming `src` as `linked_from`
    (relative to `dst`), so no table counts the one training twice."""
    trained = storage.read_json(src / "train_config.json")
    if trained != json.loads(json.dumps(config.to_dict())):
        raise XlirError(f"{src} was trained with another config than {dst} needs; not linked")

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    with storage.atomic_dir(dst) as tmp:
        shutil.copytree(src, tmp, copy_function=link, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("checkpoints"))
        manifest = storage.read_json(tmp / MANIFEST)  # write_json replaces the link
        storage.write_json(tmp / MANIFEST, {**manifest, "linked_from": os.path.relpath(src, dst)})


def retrieve_dense(out: Path, system: str, label: str, task, encoder, *, k: int,
                   cache_dir: Path, encoder_name: str | None) -> dict:
    """A dense system's run on `task` (passage vectors cached in `cache_dir`) and its metrics."""
    t0 = time.time()
    run = dense_run(encoder, task, k=k, cache_dir=cache_dir)
    return save_run(out, system, label, task, run, {"retrieve_s": round(time.time() - t0, 2)},
                    encoder_name)


def retrieve_bm25(out: Path, label: str, task, *, k: int, encoder_name: str | None) -> dict:
    t0 = time.time()
    run = bm25_run(task, k=k)
    return save_run(out, "bm25", label, task, run, {"retrieve_s": round(time.time() - t0, 2)},
                    encoder_name)


HYBRID_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the dense run's share


def fuse(out: Path, system: str, label: str, task, dense: Path, lexical: Path, *, method: str,
         encoder_name: str | None, weight: float = 0.5, chosen: dict | None = None) -> dict:
    """`system` (hybrid-<dense system>): the TREC runs `dense` and `lexical` fused by `method`;
    "interpolate" gives the dense run the share `weight` (`chosen`: how it was chosen, into the
    metrics beside it)."""
    run = hybrid_run(read_trec_run(dense), read_trec_run(lexical), method=method, weight=weight)
    extra = {"fusion": method} if method == "rrf" else {"fusion": method, "weight": weight,
                                                        **(chosen or {})}
    return save_run(out, system, label, task, run, extra, encoder_name)


def choose_weight(dense: Path, lexical: Path, task, label: str, *, encoder_name: str | None,
                  weights: tuple[float, ...] = HYBRID_WEIGHTS) -> tuple[float, dict]:
    """The interpolation weight whose hybrid of the TREC runs `dense` and `lexical` scores the
    best macro of `task`'s primary measure (a held-out task, `label`); a tie goes to the weight
    nearest 0.5, then the smaller. -> (weight, what the metrics record about the choice)."""
    a, b = read_trec_run(dense), read_trec_run(lexical)
    measure = task.primary_measure
    scores = {w: evaluate_run(hybrid_run(a, b, "interpolate", w), task, [measure],
                              encoder=encoder_name).macro[measure] for w in weights}
    best = max(weights, key=lambda w: (round(scores[w], 9), -abs(w - 0.5), -w))
    return best, {"weight_chosen_on": label, "weight_measure": measure,
                  "weight_scores": {str(w): round(v, 6) for w, v in scores.items()}}


def save_run(out: Path, system: str, label: str, task, run: dict, extra: dict[str, Any],
             encoder_name: str | None) -> dict:
    """TREC run, then metrics (per query, per language, macro, per language group) written
    last: the marker that the stage is done."""
    write_trec_run(run, out / "run.trec", tag=system)
    result = evaluate_run(run, task,  # the task's primary measure first, then the rest
                          encoder=encoder_name)
    metrics = {**result.to_json(), "system": system, "task": label, "task_name": task.name,
               "primary": task.primary_measure, **extra}
    storage.write_json(out / "metrics.json", metrics)
    return metrics


def fertility(path: Path, encoder: str | None, tasks: list) -> None:
    """Tokenizer pieces per word of every query language of `tasks`, with the encoder's
    tokenizer (None: the packaged model's)."""
    from transformers import AutoTokenizer  # seconds to import: only where a study starts

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_encoder(encoder)))
    texts: dict[str, list[str]] = {}
    for task in tasks:
        for qid, text in task.queries.items():
            texts.setdefault(task.query_lang[qid], []).append(text)
    storage.write_json(path, pieces_per_word(tokenizer, texts))


def task_summary(task) -> dict:
    """Sizes, languages and primary measure of a task as the study evaluates it."""
    langs: dict[str, int] = {}
    for lang in task.query_lang.values():
        langs[lang] = langs.get(lang, 0) + 1
    return {"name": task.name, "split": task.split, "queries": len(task.queries),
            "documents": len(task.corpus), "queries_per_language": langs,
            "primary_measure": task.primary_measure, "meta": task.meta}
