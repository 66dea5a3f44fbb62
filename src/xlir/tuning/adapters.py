"""AdapterHub methods: bottleneck adapters and MAD-X.

    bottleneck  one task adapter, seq_bn (Pfeiffer) or double_seq_bn (Houlsby)
    madx        Stack(language adapter with invertible adapters, task adapter): only the task
                adapter trains; at load time another language's adapter can be stacked under it
                (zero-shot transfer). Language adapters come from xlir.tuning.lang_adapters.

A tuned folder keeps every adapter in `adapters/NAME/` beside the manifest, its weights in
safetensors (a folder saved before as `pytorch_adapter.bin` still loads, read weights-only).
AdapterHub adapters are silently dropped by `SentenceTransformer.save`, so they are saved and
loaded here, never through it. This module does not train.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from xlir.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

FOLDER = "adapters"


def _adapters():
    import adapters  # takes seconds (it loads transformers): imported only once a method runs

    logger_ = logging.getLogger("adapters.model_mixin")
    if not any(isinstance(f, _ResetWarningFilter) for f in logger_.filters):
        logger_.addFilter(_ResetWarningFilter())
    return adapters


class _ResetWarningFilter(logging.Filter):
    """Drops adapters' "none are activated for the forward pass" warning when it comes from
    `reset_adapter`: `set_active_adapters` (and `train_adapter`) open an empty ForwardContext
    (`torch.empty(0, 1)`) before the new setup is active, so every activation logged it, a
    false alarm at each load. A real forward pass without an active adapter still warns."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "none are activated" not in record.getMessage():
            return True
        frame = sys._getframe()
        while frame is not None:
            if frame.f_code.co_name == "reset_adapter":
                return False
            frame = frame.f_back
        return True


@dataclass
class BottleneckConfig:
    variant: Literal["seq_bn", "double_seq_bn"] = "seq_bn"  # Pfeiffer / Houlsby
    reduction_factor: int = 16

    def __post_init__(self):
        if self.variant not in ("seq_bn", "double_seq_bn"):
            raise ConfigError(f"bottleneck.variant must be seq_bn or double_seq_bn, got {self.variant!r}")
        if self.reduction_factor < 1:
            raise ConfigError(f"reduction_factor must be >= 1, got {self.reduction_factor}")


@dataclass
class MadxConfig:
    source_lang: str = "eng"
    # language code -> folder written by train_language_adapter. A missing source adapter is
    # created untrained (identity-like) with a warning, so MAD-X runs without MLM pretraining.
    lang_adapters: dict[str, str] = field(default_factory=dict)
    reduction_factor: int = 16

    def __post_init__(self):
        if self.reduction_factor < 1:
            raise ConfigError(f"reduction_factor must be >= 1, got {self.reduction_factor}")


def apply_bottleneck(st, cfg: BottleneckConfig):
    adapters, inner = _adapters(), st[0].model
    adapters.init(inner)
    conf = adapters.AdapterConfig.load(cfg.variant, reduction_factor=cfg.reduction_factor)
    inner.add_adapter("task", config=conf)
    inner.train_adapter("task")
    return st


def apply_madx(st, cfg: MadxConfig):
    adapters, inner = _adapters(), st[0].model
    adapters.init(inner)
    lang = _add_lang_adapter(inner, cfg, cfg.source_lang)
    conf = adapters.AdapterConfig.load("seq_bn", reduction_factor=cfg.reduction_factor)
    inner.add_adapter("task", config=conf)
    inner.train_adapter("task")  # freezes everything else, the language adapter included
    inner.set_active_adapters(adapters.composition.Stack(lang, "task"))
    return st


def _add_lang_adapter(inner, cfg: MadxConfig, lang: str) -> str:
    folder = cfg.lang_adapters.get(lang)
    if folder:
        if not (Path(folder) / "adapter_config.json").is_file():
            raise InputError("not an AdapterHub adapter folder (no adapter_config.json)", folder)
        return inner.load_adapter(str(folder), load_as=lang, set_active=False,
                                  use_safetensors=True)
    logger.warning("madx: no trained language adapter for %r; using an untrained one", lang)
    conf = _adapters().AdapterConfig.load("seq_bn_inv", reduction_factor=cfg.reduction_factor)
    inner.add_adapter(lang, config=conf)
    return lang


# ---- the Method protocol of xlir.tuning --------------------------------------------------------

def save_bottleneck(st, cfg: BottleneckConfig, folder: Path) -> dict:
    inner = st[0].model
    for name in list(inner.adapters_config.adapters):
        # save_adapter fails unless the parent folder exists.
        (folder / FOLDER).mkdir(exist_ok=True)
        inner.save_adapter(str(folder / FOLDER / name), name, use_safetensors=True)
    return {}


def save_madx(st, cfg: MadxConfig, folder: Path) -> dict:
    save_bottleneck(st, cfg, folder)
    return {"active": [cfg.source_lang, "task"]}


def load_bottleneck(folder: Path, cfg: BottleneckConfig, base: Callable, madx_lang: str | None):
    st = base()
    _load_all(st[0].model, folder)
    st[0].model.set_active_adapters("task")
    return st


def load_madx(folder: Path, cfg: MadxConfig, base: Callable, madx_lang: str | None):
    """madx_lang: None keeps the source language's adapter; a code in `cfg.lang_adapters` or
    an adapter folder stacks that one under the task adapter instead."""
    st = base()
    inner = st[0].model
    _load_all(inner, folder)
    lang = cfg.source_lang
    if madx_lang is not None and madx_lang != cfg.source_lang:
        path = cfg.lang_adapters.get(madx_lang, madx_lang)
        if not (Path(path) / "adapter_config.json").is_file():
            raise ConfigError(f"madx_lang {madx_lang!r}: no language adapter for it in "
                              f"lang_adapters {sorted(cfg.lang_adapters)} and not an adapter folder")
        name = madx_lang if madx_lang in cfg.lang_adapters else Path(path).name
        lang = inner.load_adapter(str(path), load_as=name, set_active=False, use_safetensors=True)
    inner.set_active_adapters(_adapters().composition.Stack(lang, "task"))
    return st


def _load_all(inner, folder: Path) -> None:
    _adapters().init(inner)
    for path in sorted((folder / FOLDER).iterdir()):
        inner.load_adapter(str(path), load_as=path.name, set_active=False, use_safetensors=True)
