"""Tuning methods for the bi-encoder, selected by name: what trains, and how it is saved.

Every method is a small typed config plus an `apply` function, registered in `METHODS`
(peft-style). `apply_method(st, config)` turns a sentence-transformers model into its trainable
form; `save_tuned` / `load_tuned` write and read a tuned folder with an `xlir-model.json`
manifest (method, base model, method config, parameter counts, saved size).

    full      every weight trains                     saves the whole model
    bitfit    only biases train                       saves the whole model
    frozen    nothing trains (the zero-shot baseline)  saves the manifest only
    lora, dora, ia3, prefix, prompt  (peft)           saves the peft adapter only
    bottleneck  AdapterHub seq_bn / double_seq_bn     saves the adapter only
    madx      AdapterHub Stack(language adapter with invertible adapters, task adapter);
              language adapters come from `train_language_adapter` (MLM on raw text)

Why the peft model is wrapped (`PeftEncoder`): sentence-transformers extends the attention mask
by the virtual tokens for any prompt-learning PeftModel, which is wrong for prefix tuning (its
outputs are not longer) and makes pooling average over padding. The wrapper returns outputs of
the input's own length (prompt tuning's virtual-token outputs are dropped), so pooling always
uses the input's own mask. AdapterHub adapters are silently dropped by
`SentenceTransformer.save`, so adapters are saved and loaded here, never through it.

This is the only module of xlir that imports peft or adapters. It does not train (see
xlir.train) and does not merge for export (see xlir.export, which calls `merge_peft`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from torch import nn

from xlir.config import from_dict
from xlir.errors import ConfigError, InputError
from xlir.storage import read_json, write_json

logger = logging.getLogger(__name__)

MANIFEST = "xlir-model.json"
# Attention projections and both FFN linears of every layer; never BERT's pooler.dense.
LAYER = r".*encoder\.layer\.\d+\."
LINEAR_MODULES = LAYER + r"(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
IA3_MODULES = LAYER + r"(attention\.self\.(key|value)|output\.dense)"
IA3_FEEDFORWARD = LAYER + r"output\.dense"


@dataclass
class FullConfig:
    pass


@dataclass
class BitFitConfig:
    pass


@dataclass
class FrozenConfig:
    pass


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str = LINEAR_MODULES  # a regex over module names (peft full-match)

    def __post_init__(self):
        if self.r < 1 or self.alpha < 1:
            raise ConfigError(f"lora: r and alpha must be >= 1, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora: dropout must be in [0, 1), got {self.dropout}")


@dataclass
class DoraConfig(LoraConfig):
    pass


@dataclass
class IA3Config:
    target_modules: str = IA3_MODULES
    feedforward_modules: str = IA3_FEEDFORWARD


@dataclass
class PrefixConfig:
    num_virtual_tokens: int = 16

    def __post_init__(self):
        if self.num_virtual_tokens < 1:
            raise ConfigError(f"num_virtual_tokens must be >= 1, got {self.num_virtual_tokens}")


@dataclass
class PromptConfig(PrefixConfig):
    # Virtual tokens start as embeddings of random vocabulary tokens: nearer the pretrained
    # behaviour than peft's default random vectors, which barely train on a small encoder.
    init: Literal["sample_vocab", "random"] = "sample_vocab"

    def __post_init__(self):
        super().__post_init__()
        if self.init not in ("sample_vocab", "random"):
            raise ConfigError(f"prompt.init must be sample_vocab or random, got {self.init!r}")


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



# ---- apply functions: each turns st (in place) into its trainable form ----------------------

def _inner(st) -> nn.Module:
    return st[0].model


def _apply_full(st, cfg: FullConfig):
    for p in st.parameters():
        p.requires_grad_(True)
    return st


def _apply_bitfit(st, cfg: BitFitConfig):
    for name, p in st.named_parameters():
        p.requires_grad_(name.endswith(".bias") or name == "bias")
    return st


def _apply_frozen(st, cfg: FrozenConfig):
    for p in st.parameters():
        p.requires_grad_(False)
    return st


class PeftEncoder(nn.Module):
    """A peft model whose outputs have the input's length (see the module docstring)."""

    def __init__(self, peft_model: nn.Module):
        super().__init__()
        self.peft = peft_model

    @property
    def config(self):
        return self.peft.get_base_model().config

    @property
    def is_prompt_learning(self) -> bool:
        return self.peft.active_peft_config.is_prompt_learning

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        out = self.peft(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = out.last_hidden_state  # (batch, [virtual +] seq, hidden)
        seq = input_ids.shape[1]
        if hidden.shape[1] != seq:  # prompt tuning prepends its virtual tokens' outputs
            out.last_hidden_state = hidden[:, -seq:]
        return out


def _peft_config(method: str, cfg):
    import peft

    task = peft.TaskType.FEATURE_EXTRACTION
    if method in ("lora", "dora"):
        return peft.LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                               target_modules=cfg.target_modules, use_dora=method == "dora",
                               task_type=task)
    if method == "ia3":
        return peft.IA3Config(target_modules=cfg.target_modules,
                              feedforward_modules=cfg.feedforward_modules, task_type=task)
    if method == "prefix":
        return peft.PrefixTuningConfig(num_virtual_tokens=cfg.num_virtual_tokens, task_type=task)
    return peft.PromptTuningConfig(num_virtual_tokens=cfg.num_virtual_tokens, task_type=task,
                                   prompt_tuning_init=cfg.init.upper())


def _make_peft_apply(method: str) -> Callable:
    def apply(st, cfg):
        import peft

        inner = _inner(st)
        st[0].model = PeftEncoder(peft.get_peft_model(inner, _peft_config(method, cfg)))
        return st
    return apply


def _apply_bottleneck(st, cfg: BottleneckConfig):
    import adapters

    inner = _inner(st)
    adapters.init(inner)
    conf = adapters.AdapterConfig.load(cfg.variant, reduction_factor=cfg.reduction_factor)
    inner.add_adapter("task", config=conf)
    inner.train_adapter("task")
    return st


def _apply_madx(st, cfg: MadxConfig):
    import adapters
    from adapters.composition import Stack

    inner = _inner(st)
    adapters.init(inner)
    lang = _add_lang_adapter(inner, cfg, cfg.source_lang)
    conf = adapters.AdapterConfig.load("seq_bn", reduction_factor=cfg.reduction_factor)
    inner.add_adapter("task", config=conf)
    inner.train_adapter("task")  # freezes everything else, the language adapter included
    inner.set_active_adapters(Stack(lang, "task"))
    return st


def _add_lang_adapter(inner, cfg: MadxConfig, lang: str) -> str:
    import adapters

    folder = cfg.lang_adapters.get(lang)
    if folder:
        if not (Path(folder) / "adapter_config.json").is_file():
            raise InputError("not an AdapterHub adapter folder (no adapter_config.json)", folder)
        return inner.load_adapter(str(folder), load_as=lang, set_active=False)
    logger.warning("madx: no trained language adapter for %r; using an untrained one", lang)
    conf = adapters.AdapterConfig.load("seq_bn_inv", reduction_factor=cfg.reduction_factor)
    inner.add_adapter(lang, config=conf)
    return lang


METHODS: dict[str, tuple[type, Callable]] = {
    "full": (FullConfig, _apply_full),
    "bitfit": (BitFitConfig, _apply_bitfit),
    "frozen": (FrozenConfig, _apply_frozen),
    "lora": (LoraConfig, _make_peft_apply("lora")),
    "dora": (DoraConfig, _make_peft_apply("dora")),
    "ia3": (IA3Config, _make_peft_apply("ia3")),
    "prefix": (PrefixConfig, _make_peft_apply("prefix")),
    "prompt": (PromptConfig, _make_peft_apply("prompt")),
    "bottleneck": (BottleneckConfig, _apply_bottleneck),
    "madx": (MadxConfig, _apply_madx),
}
PEFT_METHODS = ("lora", "dora", "ia3", "prefix", "prompt")
ADAPTER_METHODS = ("bottleneck", "madx")
MERGEABLE = ("full", "bitfit", "frozen", "lora", "dora", "ia3")


def method_config(method: str, args: dict[str, Any] | None = None):
    """The typed config of `method` built from `args` (unknown keys are an error)."""
    if method not in METHODS:
        raise ConfigError(f"unknown tuning method {method!r}; known: {sorted(METHODS)}")
    return from_dict(METHODS[method][0], dict(args or {}), where=f"method_args ({method})")


def method_name(cfg) -> str:
    # Subclasses (DoraConfig, PromptConfig) must map to their own name: exact type match.
    return next(name for name, (cls, _) in METHODS.items() if type(cfg) is cls)


def apply_method(st, cfg):
    """Make `st` trainable by the method of `cfg`; modifies `st` in place (as peft does)."""
    st = METHODS[method_name(cfg)][1](st, cfg)
    return st


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, adapter parameters included in total."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint of a tuned model needs: exactly the trainable parameters."""
    keep = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t.detach().clone().contiguous() for n, t in model.state_dict().items() if n in keep}


# ---- save / load ------------------------------------------------------------------------------

def save_tuned(st, cfg, path: str | Path, base_model: str | Path | None = None,
               extra: dict | None = None) -> dict:
    """Write a tuned folder: the weights the method needs plus `xlir-model.json`.

    `base_model` is the folder `st` was loaded from (default: the inner model's
    `_name_or_path`). PEFT and adapter methods save only their adapter weights; full and
    bitfit save a complete sentence-transformers folder; frozen saves the manifest only.
    `extra` is merged into the manifest (run summary). The manifest is written last, so its
    presence means the folder is complete. Returns the manifest.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    method = method_name(cfg)
    base = Path(base_model or _base_config(st)._name_or_path).resolve()
    inner = _inner(st)
    before = _stamps(path)
    if method in ("full", "bitfit"):
        st.save(str(path))
    elif method in PEFT_METHODS:
        inner.peft.save_pretrained(str(path / "adapter"))
    elif method in ADAPTER_METHODS:
        for name in _adapter_names(inner):
            # save_adapter fails unless the parent folder exists.
            (path / "adapters").mkdir(exist_ok=True)
            inner.save_adapter(str(path / "adapters" / name), name)
    trainable, total = count_parameters(st)
    manifest = {
        "format": "xlir-model", "version": 1, "method": method,
        "method_config": dataclasses.asdict(cfg), "base_model": str(base),
        "trainable_params": trainable, "total_params": total,
        "saved_bytes": _written_bytes(path, before),
    }
    if method == "madx":
        manifest["active"] = [cfg.source_lang, "task"]
    manifest.update(extra or {})
    write_json(path / MANIFEST, manifest)
    return manifest


def is_tuned(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(path: str | Path) -> dict:
    manifest = read_json(Path(path) / MANIFEST)
    if (not isinstance(manifest, dict) or manifest.get("format") != "xlir-model"
            or manifest.get("method") not in METHODS):
        raise InputError("not an xlir tuned-model manifest", Path(path) / MANIFEST)
    return manifest


def load_tuned(path: str | Path, madx_lang: str | None = None, device: str = "cpu"):
    """Load a tuned folder (see save_tuned) as a SentenceTransformer in eval mode.

    madx_lang: for MAD-X, the language adapter to stack under the task adapter: None keeps the
    source language's adapter; a code in `method_config.lang_adapters` or an adapter folder
    swaps in that one (zero-shot transfer to the target language).
    """
    from sentence_transformers import SentenceTransformer

    path = Path(path)
    manifest = read_manifest(path)
    method = manifest["method"]
    cfg = method_config(method, manifest["method_config"])
    if method in ("full", "bitfit"):
        return SentenceTransformer(str(path), device=device).eval()
    base = Path(manifest["base_model"])
    base = base if base.is_absolute() else path / base
    if not base.is_dir():
        raise InputError(f"base model folder {base} is missing", path / MANIFEST, field="base_model")
    st = SentenceTransformer(str(base), device=device)
    if method in PEFT_METHODS:
        import peft

        st[0].model = PeftEncoder(peft.PeftModel.from_pretrained(_inner(st), str(path / "adapter")))
    elif method in ADAPTER_METHODS:
        _load_adapters(_inner(st), path, cfg, manifest, madx_lang)
    st.requires_grad_(False)  # an inference model; train() applies the method afresh
    return st.to(device).eval()


def _load_adapters(inner, path: Path, cfg, manifest: dict, madx_lang: str | None) -> None:
    import adapters
    from adapters.composition import Stack

    adapters.init(inner)
    for folder in sorted((path / "adapters").iterdir()):
        inner.load_adapter(str(folder), load_as=folder.name, set_active=False)
    if method_name(cfg) == "bottleneck":
        inner.set_active_adapters("task")
        return
    lang = cfg.source_lang
    if madx_lang is not None and madx_lang != cfg.source_lang:
        folder = cfg.lang_adapters.get(madx_lang, madx_lang)
        if not (Path(folder) / "adapter_config.json").is_file():
            raise ConfigError(f"madx_lang {madx_lang!r}: no language adapter for it in "
                              f"lang_adapters {sorted(cfg.lang_adapters)} and not an adapter folder")
        name = madx_lang if madx_lang in cfg.lang_adapters else Path(folder).name
        lang = inner.load_adapter(str(folder), load_as=name, set_active=False)
    inner.set_active_adapters(Stack(lang, "task"))


def _adapter_names(inner) -> list[str]:
    return list(inner.adapters_config.adapters)


def _base_config(st):
    inner = _inner(st)
    return inner.config


def _stamps(path: Path) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in path.rglob("*") if f.is_file()}


def _written_bytes(path: Path, before: dict[Path, int]) -> int:
    # The run folder also holds configs, metrics and checkpoints: count what the save wrote.
    return sum(f.stat().st_size for f, t in _stamps(path).items() if before.get(f) != t)


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def merge_peft(st):
    """Fold a mergeable peft method (lora, dora, ia3) into plain weights, in place."""
    inner = _inner(st)
    if not isinstance(inner, PeftEncoder) or inner.is_prompt_learning:
        raise ConfigError("only lora, dora and ia3 adapters can be merged into the base weights")
    st[0].model = inner.peft.merge_and_unload()
    return st


def copy_base(manifest: dict, src: Path, out: Path) -> dict:
    """Copy a non-mergeable tuned folder's adapter into `out` with its base model inside
    (`out/base`), so the folder is standalone; returns the new manifest."""
    base = Path(manifest["base_model"])
    base = base if base.is_absolute() else src / base
    sub = "adapter" if manifest["method"] in PEFT_METHODS else "adapters"
    shutil.copytree(src / sub, out / sub, dirs_exist_ok=True)
    shutil.copytree(base, out / "base", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(MANIFEST, "checkpoints"))
    manifest = {**manifest, "base_model": "base", "saved_bytes": _folder_bytes(out)}
    write_json(out / MANIFEST, manifest)
    return manifest


# ---- MAD-X language adapters -----------------------------------------------------------------

def train_language_adapter(base_model: str | Path, lang: str, texts: list[str],
                           out_dir: str | Path, steps: int = 200, batch_size: int = 16,
                           lr: float = 1e-4, max_seq_length: int = 128,
                           reduction_factor: int = 16, seed: int = 0) -> Path:
    """Train a MAD-X language adapter (seq_bn_inv) by masked language modelling on `texts`.

    The encoder has no MLM head (E5 ships none), so a small head (dense, GELU, LayerNorm,
    decoder tied to the word embeddings) is trained beside the adapter and discarded: only the
    adapter, with its invertible adapter, is saved to `out_dir` (skipped if already there).
    """
    import adapters
    from sentence_transformers import SentenceTransformer
    from tqdm.auto import tqdm
    from transformers import DataCollatorForLanguageModeling

    from xlir.storage import atomic_dir

    out_dir = Path(out_dir)
    if (out_dir / "adapter_config.json").is_file():
        return out_dir
    if not texts:
        raise InputError(f"no text to train the {lang!r} language adapter on")
    torch.manual_seed(seed)
    st = SentenceTransformer(str(base_model), device="cpu")
    inner, tokenizer = _inner(st), st.tokenizer
    adapters.init(inner)
    inner.add_adapter(lang, config=adapters.AdapterConfig.load(
        "seq_bn_inv", reduction_factor=reduction_factor))
    inner.train_adapter(lang)
    hidden = inner.config.hidden_size
    head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))
    params = [p for p in inner.parameters() if p.requires_grad] + list(head.parameters())
    optim = torch.optim.AdamW(params, lr=lr)
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    gen = torch.Generator().manual_seed(seed)
    inner.train()
    for _ in (bar := tqdm(range(steps), desc=f"MLM {lang} adapter", unit="step")):
        idx = torch.randint(len(texts), (batch_size,), generator=gen).tolist()
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_seq_length)
        batch = collate([{"input_ids": ids} for ids in enc["input_ids"]])
        out = inner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        masked = batch["labels"] != -100  # (batch, seq); logits only there: the vocabulary
        if not masked.any():               # is 250k wide, all positions would take GBs
            continue
        # Undo the invertible adapter before the tied decoder, as MAD-X does.
        states = inner.invertible_adapters_forward(head(out.last_hidden_state), rev=True)
        logits = states[masked] @ inner.get_input_embeddings().weight.T  # (masked, vocab)
        loss = nn.functional.cross_entropy(logits, batch["labels"][masked])
        optim.zero_grad()
        loss.backward()
        optim.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    with atomic_dir(out_dir) as tmp:
        inner.save_adapter(str(tmp), lang)
    return out_dir
