"""MAD-X with the language-adapter swap, as a study runs it (methods[].swap, study_config).

A swap system `<label>-s<seed>` encodes each query through its language's adapter and each
passage through its passage language's, under one task adapter. That task adapter is its
twin's: the madx method without the swap, same options and train settings, at the same seed
(so the pair differs in the swap alone, and the task adapter is trained once). Without a
twin, the swap system trains its own MAD-X model first.

    systems/<swap system>/lang_adapters/<lang>/   adapter + mlm.json (text counts, MLM loss)
    systems/<swap system>/embeddings/             one cache entry per language and side

Target adapters train by MLM (xlir.tuning.lang_adapters) on every monolingual text the data
mirror has for the language (xlir.data.monolingual) except any text that one of the study's
evaluated tasks holds as a query or passage. The source language keeps the adapter its model
was trained over. This module runs stages for xlir.study; it never renders anything.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def twin(study, system: str) -> str | None:
    """The madx system (no swap) whose task adapter the swap system `system` uses, if any."""
    method, seed = study.system_specs[system]
    for name, (other, other_seed) in study.system_specs.items():
        if (other.name == "madx" and not other.swap and other_seed == seed
                and other.options == method.options and other.train == method.train):
            return name
    return None


def source_lang(study, system: str) -> str:
    from xlir.data.languages import normalize
    from xlir.tuning.adapters import MadxConfig

    method, _ = study.system_specs[system]
    return normalize(method.options.get("source_lang", MadxConfig.source_lang))


def target_languages(study, system: str) -> list[str]:
    """Every language a query or passage of the system's tasks is in, but the source."""
    from xlir.data.languages import normalize

    langs = set()
    for spec in study.tasks_of(system):
        task = study.task(spec)
        langs.update(task.query_lang.values())
        langs.update((getattr(task, "doc_lang", None) or {}).values())
    source = source_lang(study, system)
    return sorted(lang for lang in {normalize(x) for x in langs} if lang != source)


def adapter_dir(study, system: str, lang: str) -> Path:
    return study.root / "systems" / system / "lang_adapters" / lang


def adapters_missing(study, system: str) -> list[str]:
    """The target languages whose adapter is not trained yet."""
    return [lang for lang in target_languages(study, system)
            if not (adapter_dir(study, system, lang) / "adapter_config.json").is_file()]


def train_adapters(study, system: str) -> None:
    """Train each target language's adapter not yet trained (each saved atomically: a killed
    run resumes at the next language)."""
    from xlir.data.monolingual import evaluated_texts, monolingual_texts
    from xlir.errors import InputError
    from xlir.models import resolve_encoder
    from xlir.tuning import train_language_adapter

    todo = adapters_missing(study, system)
    if not todo:
        return
    exclude = evaluated_texts(study.task(spec) for spec in study.config.tasks)
    config = study.train_config(system)
    base = resolve_encoder(study.config.encoder)  # the source adapter's base, as in xlir.train
    for i, lang in enumerate(todo, 1):
        texts, dropped = monolingual_texts(lang, exclude)
        sentences = [t for source in texts.values() for t in source]
        if not sentences:
            raise InputError(f"methods.{study.system_specs[system][0].label}.swap: the data "
                             f"mirror has no monolingual text for {lang} (xlir.data.monolingual)")
        log.info("%s: language adapter %s (%d/%d) on %d sentences %s, %d dropped as evaluated",
                 system, lang, i, len(todo), len(sentences),
                 {s: len(v) for s, v in texts.items()}, sum(dropped.values()))
        train_language_adapter(
            base, lang, sentences, adapter_dir(study, system, lang), steps=config.madx_mlm_steps,
            seed=config.seed, reduction_factor=config.method_config.reduction_factor,
            info={"sources": {s: len(v) for s, v in texts.items()},
                  "dropped_as_evaluated": dropped})


def retrieve(study, system: str, spec):
    """The swap system's run on task `spec`: each language through its own adapter."""
    from xlir.data.languages import normalize
    from xlir.encoder import load_encoder
    from xlir.retrieve import dense_run_per_language

    source = source_lang(study, system)
    model = study.model_dir(system)

    def encoder_for(lang: str | None):
        lang = normalize(lang) if lang else source  # a text of no stated language: the source
        adapter = None if lang == source else str(adapter_dir(study, system, lang))
        return load_encoder(str(model), madx_lang=adapter, max_length=study.config.max_seq_length,
                            backend=study.config.precision)

    return dense_run_per_language(encoder_for, study.task(spec), k=study.config.k,
                                  cache_dir=study.embeddings_dir(system))
