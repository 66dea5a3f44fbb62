"""The study's xQG stages: train the generator, generate questions for every passage of the
xQG task's pool, measure their quality, then index each chosen system with fused passage
vectors `(1 - a) p + a * sum(q)` for every alpha and evaluate it.

Files (under STUDY/xqg/): generator/ (LoRA run, skipped when complete), queries.jsonl
(resumable, one passage's rows per write), queries.done.json (written once every passage is
done), quality.json, embeddings/<system>/ (generated-question vectors, cached by content).
Retrieval runs and metrics go to systems/xqg-<system>-a<alpha>/<task>/ like every system.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from xlir import storage
from xlir.config import from_dict, merge

log = logging.getLogger(__name__)


def run_xqg(study) -> None:
    cfg = study.config.xqg
    spec = study.spec(cfg.task)
    task = study.task(spec)
    root = study.root / "xqg"
    dev_spec = study.spec(cfg.select_on) if cfg.select_on else None
    specs = [spec] + ([dev_spec] if dev_spec else [])
    corpus = {d: p for s in specs for d, p in study.task(s).corpus.items()}
    generator = _train_generator(study, root / "generator", task)
    queries = _generate(study, generator, corpus, root)
    systems = _chosen_systems(study, (dev_spec or spec).label)

    @functools.cache
    def rows() -> list[dict]:  # read once, when the first augmentation needs them
        from xlir.qgen import read_generated

        return read_generated(queries, corpus)

    for system in systems:
        for alpha in cfg.alphas:
            for s in specs:
                _augment(study, s, system, alpha, rows)
    if dev_spec:
        storage.write_json(root / "selection.json", select(study.root, systems, cfg.alphas,
                                                            dev_spec.label))


def select(root: Path, systems: list[str], alphas: list[float], task: str) -> dict:
    """Per base system, the alpha (0 = no augmentation) with the highest macro primary measure
    on the held-out `task` (ties: the smaller alpha), and every alpha's score there."""
    out: dict = {"select_on": task, "systems": {}}
    for system in systems:
        scores = {0.0: _macro(root, system, task)}
        scores |= {float(a): _macro(root, f"xqg-{system}-a{a:g}", task) for a in alphas}
        chosen = max(scores, key=lambda a: (scores[a], -a))
        out["systems"][system] = {"alpha": chosen,
                                  "scores": {f"{a:g}": round(v, 6) for a, v in scores.items()}}
    return out


def _macro(root: Path, system: str, task: str) -> float:
    m = storage.read_json(root / "systems" / system / task / "metrics.json")
    return m["macro"][m["primary"]]


def _train_generator(study, run_dir: Path, task) -> Path:
    from xlir.qgen_train import (MANIFEST, QGenTrainConfig, check_leakage, train_generator,
                                 training_pairs)

    cfg = study.config.xqg
    data = dict(cfg.train)
    if cfg.generator:
        data["base"] = cfg.generator
    tcfg = from_dict(QGenTrainConfig, data)
    done = (run_dir / MANIFEST).is_file() and storage.read_json(run_dir / MANIFEST).get("complete")
    if not done:
        # Never train on a question or passage that any evaluated split judges.
        evaluated = {s.label: study.task(s) for s in study.config.tasks}
        pairs, dropped = training_pairs(tcfg, evaluated)
        _, report = check_leakage(pairs, task)  # what still overlaps the xQG pool (near dups)
        storage.write_json(run_dir.parent / "leakage.json",
                           {**report, "dropped_before_capping": dropped})
        train_generator(pairs, tcfg, run_dir)
    study.progress("qgen-train", "generator", skipped=done)
    return run_dir


def _generate(study, generator: Path, corpus: dict, root: Path) -> Path:
    from xlir.qgen import config_from, generate_corpus, load_generator

    cfg = study.config.xqg
    out, marker = root / "queries.jsonl", root / "queries.done.json"
    if not marker.is_file():
        gcfg = config_from(merge(cfg.generate, {"languages": list(cfg.languages)}))
        model, tokenizer, name = load_generator(generator, dtype=gcfg.dtype)
        t0 = time.time()
        # The output vocabulary never learns from a sentence an evaluated split holds.
        from xlir.data.monolingual import evaluated_texts

        exclude = evaluated_texts(study.task(s) for s in study.config.tasks)
        written = generate_corpus(model, tokenizer, corpus, out, gcfg, name, exclude=exclude)
        seconds = time.time() - t0
        storage.write_json(marker, {"passages": len(corpus), "rows_written_now": written,
                                    "seconds_now": round(seconds, 1),
                                    "queries_per_s_now": round(written / max(seconds, 1e-9), 3)})
        _quality(out, root / "quality.json")
        study.progress("qgen-generate", "queries", skipped=False)
    else:
        study.progress("qgen-generate", "queries", skipped=True)
    return out


def _quality(queries: Path, out: Path) -> None:
    """Language-ID agreement, duplicates, lengths and examples per language, plus the
    identifier's own accuracy on SIB-200 test sentences (so its agreement can be trusted)."""
    from xlir.langid import default_classifier, query_quality, sib_accuracy
    from xlir.qgen import read_generated

    classifier = default_classifier()
    accuracy = sib_accuracy(classifier, words=12)
    storage.write_json(out, {
        "per_language": query_quality(read_generated(queries), classifier, examples=10),
        "classifier_accuracy": accuracy,
        "classifier_note": "language ID: character n-gram classifier trained on SIB-200 train "
                           "sentences; its accuracy on SIB-200 test sentences cut to 12 words: "
                           + ", ".join(f"{k} {v:.2f}" for k, v in sorted(accuracy.items()))})


def resolve(study, names: list[str]) -> list[str]:
    """System names (`lora-s13`) and method labels (`lora`: every seed) -> systems."""
    out: list[str] = []
    for name in names:
        out += [name] if name in study.system_specs else [
            s for s, (m, _) in study.system_specs.items() if m.label == name]
    return list(dict.fromkeys(out))


def selection_systems(study) -> list[str]:
    """The systems xqg.select_on is evaluated for: xqg.systems other than `best`, and the
    candidates `best` is chosen among."""
    x = study.config.xqg
    if not (x.enabled and x.select_on):
        return []
    out = resolve(study, [n for n in x.systems if n != "best"])
    if "best" in x.systems:
        out += best_candidates(study)
    return list(dict.fromkeys(out))


def best_candidates(study) -> list[str]:
    """xqg.candidates, resolved; default every trained system."""
    x = study.config.xqg
    if x.candidates is not None:
        return resolve(study, x.candidates)
    return [s for s, (m, _) in study.system_specs.items() if m.name != "frozen"] or study.systems()


def _chosen_systems(study, task_label: str) -> list[str]:
    """`best` = the candidate (xqg.candidates; default every trained system) with the best
    macro primary measure on `task_label` (xqg.select_on when set, else the xQG task
    itself); anything else names systems (`lora-s13`) or methods (`lora`, every seed)."""
    chosen: list[str] = []
    for name in study.config.xqg.systems:
        if name == "best":
            scores = {}
            for s in best_candidates(study):
                m = storage.read_json(study.root / "systems" / s / task_label / "metrics.json")
                scores[s] = m["macro"][m["primary"]]
            chosen.append(max(scores, key=scores.get))
        else:
            chosen += resolve(study, [name])
    return list(dict.fromkeys(chosen))


def _augment(study, spec, system: str, alpha: float, rows) -> None:
    """`system` with its passages fused with their generated questions, on `spec`'s task.
    `rows()`: the generated questions of every pool (the xQG and select_on tasks')."""
    name = f"xqg-{system}-a{alpha:g}"
    step = f"{system}/a{alpha:g}/{spec.label}"
    if (study.root / "systems" / name / spec.label / "metrics.json").exists():
        return study.progress("augment", step, skipped=True)
    from xlir.retrieve import augmented_run

    cfg, task = study.config.xqg, study.task(spec)
    t0 = time.time()
    # every pool's rows (xQG task and select_on): their question vectors share one cache
    run, fused = augmented_run(study.encoder_for(system), task, rows(),
                               alpha, cache_dir=study.embeddings_dir(system),
                               generated_cache=study.root / "xqg" / "embeddings" / system,
                               k=study.config.k, batch_size=study.config.batch_size,
                               fusion=cfg.fusion, renormalize=cfg.renormalize)
    study.save_run(name, spec, run, {"alpha": alpha, "fusion": cfg.fusion, "base_system": system,
                                     "renormalize": cfg.renormalize, "generated_queries": fused,
                                     "retrieve_s": round(time.time() - t0, 2)})
    study.progress("augment", step, skipped=False)
