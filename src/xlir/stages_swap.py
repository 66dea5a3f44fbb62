"""The bodies of MAD-X's language-adapter swap stages (methods[].swap, study_config), every
input an explicit argument (xlir.study decides what runs).

A swap system `<label>-s<seed>` encodes each query through its language's adapter and each
passage through its passage language's, under one task adapter: its twin's (study_plan.Plan
.twin: the madx method without the swap, same options and train settings, same seed; so the
pair differs in the swap alone and the task adapter is trained once). Without a twin, the
swap system trains its own MAD-X model first.

    systems/<swap system>/lang_adapters/<lang>/   adapter + mlm.json (text counts, MLM loss)
    systems/<swap system>/embeddings/             one cache entry per language and side

Target adapters train by MLM (xlir.tuning.lang_adapters) on every monolingual text the data
mirror has for the language (xlir.data.monolingual) except any text that one of the study's
evaluated tasks holds as a query or passage. The source language keeps the adapter its model
was trained over.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from xlir.data import monolingual
from xlir.data.languages import normalize
from xlir.errors import InputError
from xlir.retrieve import dense_run_per_language
from xlir.stages import save_run

log = logging.getLogger(__name__)


def source_lang(options: dict) -> str:
    """The source language of a madx method's options (its English adapter by default)."""
    from xlir.tuning.adapters import MadxConfig  # torch

    return normalize(options.get("source_lang", MadxConfig.source_lang))


def target_languages(tasks: list, source: str) -> list[str]:
    """Every language a query or passage of `tasks` is in, but the source."""
    langs = set()
    for task in tasks:
        langs.update(task.query_lang.values())
        langs.update((getattr(task, "doc_lang", None) or {}).values())
    return sorted(lang for lang in {normalize(x) for x in langs} if lang != source)


def missing(adapters: dict[str, Path]) -> list[str]:
    """The languages of `adapters` (language -> folder) whose adapter is not trained yet."""
    return [lang for lang, d in adapters.items() if not (d / "adapter_config.json").is_file()]


def train_adapters(adapters: dict[str, Path], base: Path, config, exclude: frozenset[str],
                   where: str) -> None:
    """Train each language's adapter not yet trained into its folder (each saved atomically:
    a killed run resumes at the next language). config: the system's TrainConfig (MLM steps,
    seed, reduction factor); where: the config key a missing text is reported under."""
    from xlir.tuning import train_language_adapter  # torch, adapters

    todo = missing(adapters)
    for i, lang in enumerate(todo, 1):
        texts, dropped = monolingual.monolingual_texts(lang, exclude)
        sentences = [t for source in texts.values() for t in source]
        if not sentences:
            raise InputError(f"{where}: the data mirror has no monolingual text for {lang} "
                             "(xlir.data.monolingual)")
        log.info("%s: language adapter %s (%d/%d) on %d sentences %s, %d dropped as evaluated",
                 where, lang, i, len(todo), len(sentences),
                 {s: len(v) for s, v in texts.items()}, sum(dropped.values()))
        train_language_adapter(
            base, lang, sentences, adapters[lang], steps=config.madx_mlm_steps,
            seed=config.seed, reduction_factor=config.method_config.reduction_factor,
            info={"sources": {s: len(v) for s, v in texts.items()},
                  "dropped_as_evaluated": dropped})


def retrieve(out: Path, system: str, label: str, task, model: Path, adapters: dict[str, Path],
             source: str, *, k: int, cache_dir: Path, max_length: int, precision: str,
             encoder_name: str | None) -> dict:
    """The swap system's run on `task` (each text through its language's adapter in
    `adapters`, the source language through the model's own) and its metrics."""
    from xlir.encoder import load_encoder  # torch

    def encoder_for(lang: str | None):
        lang = normalize(lang) if lang else source  # a text of no stated language: the source
        adapter = None if lang == source else str(adapters[lang])
        return load_encoder(str(model), madx_lang=adapter, max_length=max_length,
                            backend=precision)

    t0 = time.time()
    run = dense_run_per_language(encoder_for, task, k=k, cache_dir=cache_dir)
    return save_run(out, system, label, task, run, {"retrieve_s": round(time.time() - t0, 2)},
                    encoder_name)
