"""Tuning methods for the bi-encoder, selected by name: what trains, and how it is saved.

Every method is one `Method` line in `METHODS` (peft-style): its typed config, the function that
turns a sentence-transformers model into its trainable form (in place), and how its weights are
saved and loaded. `apply_method(st, config)` makes a model trainable; `save_tuned` /
`load_tuned` write and read a tuned folder with an `xlir-model.json` manifest (method, base
model, method config, parameter counts, saved size).

    plain.py          full, bitfit, frozen     no extra weights
    peft.py           lora, dora, ia3, prefix, prompt; the generator's LoRA
    adapters.py       bottleneck, madx (AdapterHub)
    lang_adapters.py  MAD-X language adapters, trained by MLM on raw text

This package is the only part of xlir that imports peft or adapters (tests/test_architecture.py
checks it). Apart from MAD-X's language adapters it does not train (see xlir.train), and it does
not export (see xlir.export, which calls `merge_peft`).
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from xlir.config import from_dict
from xlir.errors import ConfigError, InputError
from xlir.storage import read_json, write_json
from xlir.tuning import adapters, peft
from xlir.tuning.adapters import (BottleneckConfig, MadxConfig, apply_bottleneck, apply_madx,
                                  load_bottleneck, load_madx, save_bottleneck, save_madx)
from xlir.tuning.lang_adapters import train_language_adapter
from xlir.tuning.peft import (IA3_FEEDFORWARD, IA3_MODULES, LINEAR_MODULES, DoraConfig, IA3Config,
                              LoraConfig, PeftEncoder, PrefixConfig, PromptConfig, merge_peft)
from xlir.tuning.plain import (BitFitConfig, FrozenConfig, FullConfig, apply_bitfit, apply_frozen,
                               apply_full, load_base, load_whole, save_none, save_whole)

MANIFEST = "xlir-model.json"
LIBRARIES = ("torch", "peft", "adapters")


@dataclass(frozen=True)
class Method:
    """A tuning method. `save` returns what it adds to the manifest; `load` gets `base`, a
    function that loads the base model, and `madx_lang` (only MAD-X uses it)."""

    name: str
    config: type                                  # a dataclass that validates itself
    apply: Callable[[Any, Any], Any]              # (st, cfg) -> st, trainable, in place
    save: Callable[[Any, Any, Path], dict]        # (st, cfg, folder) -> manifest additions
    load: Callable[..., Any]                      # (folder, cfg, base, madx_lang) -> st
    trainable: bool = True                        # False: nothing trains (zero-shot)
    mergeable: bool = False                       # export folds it into plain weights
    library: Literal["torch", "peft", "adapters"] = "torch"
    weights: str | None = None                    # its subfolder, beside a separate base model

    def __post_init__(self):
        if not dataclasses.is_dataclass(self.config):
            raise TypeError(f"{self.name}: config must be a dataclass, got {self.config!r}")
        if self.library not in LIBRARIES:
            raise ValueError(f"{self.name}: library must be one of {LIBRARIES}")


_whole = functools.partial(Method, save=save_whole, load=load_whole, mergeable=True)
_peft = functools.partial(Method, apply=peft.apply, save=peft.save, load=peft.load,
                          library="peft", weights=peft.FOLDER)
_hub = functools.partial(Method, library="adapters", weights=adapters.FOLDER)

METHODS: dict[str, Method] = {m.name: m for m in (
    _whole("full", FullConfig, apply_full),
    _whole("bitfit", BitFitConfig, apply_bitfit),
    Method("frozen", FrozenConfig, apply_frozen, save_none, load_base, trainable=False, mergeable=True),
    _peft("lora", LoraConfig, mergeable=True),
    _peft("dora", DoraConfig, mergeable=True),
    _peft("ia3", IA3Config, mergeable=True),
    _peft("prefix", PrefixConfig),
    _peft("prompt", PromptConfig),
    _hub("bottleneck", BottleneckConfig, apply_bottleneck, save_bottleneck, load_bottleneck),
    _hub("madx", MadxConfig, apply_madx, save_madx, load_madx),
)}
PEFT_METHODS = tuple(name for name, m in METHODS.items() if m.library == "peft")
ADAPTER_METHODS = tuple(name for name, m in METHODS.items() if m.library == "adapters")
MERGEABLE = tuple(name for name, m in METHODS.items() if m.mergeable)


def method_config(method: str, args: dict[str, Any] | None = None):
    """The typed config of `method` built from `args` (unknown keys are an error)."""
    if method not in METHODS:
        raise ConfigError(f"unknown tuning method {method!r}; known: {sorted(METHODS)}")
    return from_dict(METHODS[method].config, dict(args or {}), where=f"method_args ({method})")


def method_of(cfg) -> Method:
    # Subclasses (DoraConfig, PromptConfig) must map to their own method: exact type match.
    return next(m for m in METHODS.values() if type(cfg) is m.config)


def method_name(cfg) -> str:
    return method_of(cfg).name


def apply_method(st, cfg):
    """Make `st` trainable by the method of `cfg`; modifies `st` in place (as peft does)."""
    return method_of(cfg).apply(st, cfg)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts, adapter parameters included in total."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def trainable_state_dict(model) -> dict:
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
    method = method_of(cfg)
    base = Path(base_model or st[0].model.config._name_or_path).resolve()
    before = _stamps(path)
    additions = method.save(st, cfg, path)
    trainable, total = count_parameters(st)
    manifest = {
        "format": "xlir-model", "version": 1, "method": method.name,
        "method_config": dataclasses.asdict(cfg), "base_model": str(base),
        "trainable_params": trainable, "total_params": total,
        "saved_bytes": _written_bytes(path, before),
        **additions, **(extra or {}),
    }
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
    """Load a tuned folder (see save_tuned) as a SentenceTransformer in eval mode, nothing
    trainable (train() applies the method afresh).

    madx_lang: for MAD-X, the language adapter to stack under the task adapter: None keeps the
    source language's adapter; a code in `method_config.lang_adapters` or an adapter folder
    swaps in that one (zero-shot transfer to the target language).
    """
    path = Path(path)
    manifest = read_manifest(path)
    method = METHODS[manifest["method"]]
    cfg = method_config(method.name, manifest["method_config"])
    st = method.load(path, cfg, functools.partial(_open_base, path, manifest, device), madx_lang)
    st.requires_grad_(False)
    return st.to(device).eval()


def _open_base(path: Path, manifest: dict, device: str):
    from sentence_transformers import SentenceTransformer  # seconds to import; only on load

    base = _base_folder(path, manifest)
    if not base.is_dir():
        raise InputError(f"base model folder {base} is missing", path / MANIFEST, field="base_model")
    return SentenceTransformer(str(base), device=device)


def _base_folder(path: Path, manifest: dict) -> Path:
    base = Path(manifest["base_model"])
    return base if base.is_absolute() else path / base


def copy_base(manifest: dict, src: Path, out: Path) -> dict:
    """Copy a non-mergeable tuned folder's adapter into `out` with its base model inside
    (`out/base`), so the folder is standalone; returns the new manifest."""
    sub = METHODS[manifest["method"]].weights
    shutil.copytree(src / sub, out / sub, dirs_exist_ok=True)
    shutil.copytree(_base_folder(src, manifest), out / "base", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(MANIFEST, "checkpoints"))
    manifest = {**manifest, "base_model": "base", "saved_bytes": _folder_bytes(out)}
    write_json(out / MANIFEST, manifest)
    return manifest


def _stamps(path: Path) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in path.rglob("*") if f.is_file()}


def _written_bytes(path: Path, before: dict[Path, int]) -> int:
    # The run folder also holds configs, metrics and checkpoints: count what the save wrote.
    return sum(f.stat().st_size for f, t in _stamps(path).items() if before.get(f) != t)


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


__all__ = [
    "ADAPTER_METHODS", "IA3_FEEDFORWARD", "IA3_MODULES", "LINEAR_MODULES", "MANIFEST", "MERGEABLE",
    "METHODS", "PEFT_METHODS", "BitFitConfig", "BottleneckConfig", "DoraConfig", "FrozenConfig",
    "FullConfig", "IA3Config", "LoraConfig", "MadxConfig", "Method", "PeftEncoder", "PrefixConfig",
    "PromptConfig", "apply_method", "copy_base", "count_parameters", "is_tuned", "load_tuned",
    "merge_peft", "method_config", "method_name", "method_of", "read_manifest", "save_tuned",
    "train_language_adapter", "trainable_state_dict",
]
