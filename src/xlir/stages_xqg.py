"""The bodies of the study's xQG stages, every input an explicit argument (the study decides
what runs): train the generator, generate questions for every passage of the xQG pools and
measure their quality, index a system with fused passage vectors `(1 - a) p + a * sum(q)` for
one alpha and evaluate it, and make the dev choices.

Files (under STUDY/xqg/): generator/ (LoRA run, resumable), leakage.json, queries.jsonl
(resumable, one passage's rows per write), queries.done.json (written once every passage is
done), quality.json, embeddings/<system>/ (generated-question vectors, cached by content),
selection.json. Retrieval runs and metrics go to systems/xqg-<system>-a<alpha>/<task>/ like
every system's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from xlir import storage
from xlir.langid import default_classifier, query_quality, sib_accuracy
from xlir.retrieve import augmented_run
from xlir.stages import save_run

log = logging.getLogger(__name__)


def train_generator(run_dir: Path, tcfg, evaluated: dict, task) -> None:
    """Train the generator (xlir.qgen_train.QGenTrainConfig `tcfg`) into `run_dir`, never on a
    question or passage that one of `evaluated` (tasks by label) judges; `task`: the xQG
    task, whose pool is checked for near duplicates of the training pairs (leakage.json)."""
    from xlir.qgen_train import check_leakage, train_generator as train, training_pairs  # torch

    pairs, dropped = training_pairs(tcfg, evaluated)
    _, report = check_leakage(pairs, task)  # what still overlaps the xQG pool (near dups)
    storage.write_json(run_dir.parent / "leakage.json", {**report, "dropped_before_capping": dropped})
    train(pairs, tcfg, run_dir)


def generate(root: Path, generator: Path, corpus: dict, gcfg, exclude: frozenset[str]) -> None:
    """Questions for every passage of `corpus` (xlir.qgen.GenerateConfig `gcfg`) into
    root/queries.jsonl, then queries.done.json and quality.json. `exclude`: sentences the
    output vocabulary never learns from (every evaluated query and passage)."""
    from xlir.qgen import generate_corpus, load_generator  # torch

    model, tokenizer, name = load_generator(generator, dtype=gcfg.dtype)
    out = root / "queries.jsonl"
    t0 = time.time()
    written = generate_corpus(model, tokenizer, corpus, out, gcfg, name, exclude=exclude)
    seconds = time.time() - t0
    _quality(out, root / "quality.json")
    storage.write_json(root / "queries.done.json", {
        "passages": len(corpus), "rows_written_now": written, "seconds_now": round(seconds, 1),
        "queries_per_s_now": round(written / max(seconds, 1e-9), 3)})


def _quality(queries: Path, out: Path) -> None:
    """Language-ID agreement, duplicates, lengths and examples per language, plus the
    identifier's own accuracy on SIB-200 test sentences (so its agreement can be trusted)."""
    from xlir.qgen import read_generated  # torch

    classifier = default_classifier()
    accuracy = sib_accuracy(classifier, words=12)
    storage.write_json(out, {
        "per_language": query_quality(read_generated(queries), classifier, examples=10),
        "classifier_accuracy": accuracy,
        "classifier_note": "language ID: character n-gram classifier trained on SIB-200 train "
                           "sentences; its accuracy on SIB-200 test sentences cut to 12 words: "
                           + ", ".join(f"{k} {v:.2f}" for k, v in sorted(accuracy.items()))})


def augment(out: Path, system: str, label: str, task, encoder, rows: Callable[[], list[dict]],
            alpha: float, xqg, *, cache_dir: Path, generated_cache: Path, k: int,
            batch_size: int, encoder_name: str | None) -> dict:
    """`system` with its passages fused with their generated questions (`rows()`: those of
    every xQG pool; their vectors share one cache), on `task`; xqg: the study's XQGSpec
    (fusion, renormalize). -> the metrics of systems/xqg-<system>-a<alpha>/<label>."""
    t0 = time.time()
    run, fused = augmented_run(encoder, task, rows(), alpha, cache_dir=cache_dir,
                               generated_cache=generated_cache, k=k, batch_size=batch_size,
                               fusion=xqg.fusion, renormalize=xqg.renormalize)
    return save_run(out, f"xqg-{system}-a{alpha:g}", label, task, run, {
        "alpha": alpha, "fusion": xqg.fusion, "base_system": system,
        "renormalize": xqg.renormalize, "generated_queries": fused,
        "retrieve_s": round(time.time() - t0, 2)}, encoder_name)


def best(root: Path, candidates: list[str], task: str) -> str:
    """The candidate with the best macro primary measure on `task` (the first of equals)."""
    scores = {s: macro(root, s, task) for s in candidates}
    return max(scores, key=scores.get)


def select(root: Path, systems: list[str], alphas: list[float], task: str) -> dict:
    """Per base system, the alpha (0 = no augmentation) with the highest macro primary measure
    on the held-out `task` (ties: the smaller alpha), and every alpha's score there."""
    out: dict = {"select_on": task, "systems": {}}
    for system in systems:
        scores = {0.0: macro(root, system, task)}
        scores |= {float(a): macro(root, f"xqg-{system}-a{a:g}", task) for a in alphas}
        chosen = max(scores, key=lambda a: (scores[a], -a))
        out["systems"][system] = {"alpha": chosen,
                                  "scores": {f"{a:g}": round(v, 6) for a, v in scores.items()}}
    return out


def macro(root: Path, system: str, task: str) -> float:
    m = storage.read_json(root / "systems" / system / task / "metrics.json")
    return m["macro"][m["primary"]]
