"""Methods that add no weights: full fine-tuning, BitFit and the frozen zero-shot baseline.

    full      every weight trains            saves the whole sentence-transformers folder
    bitfit    only biases train              saves the whole sentence-transformers folder
    frozen    nothing trains                 saves nothing but the manifest (its base is the model)

Only torch's `requires_grad` is touched; no peft, no adapters. Saving and loading follow the
`Method` protocol of xlir.tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from xlir.models import pass_tokenizer_check


@dataclass
class FullConfig:
    pass


@dataclass
class BitFitConfig:
    pass


@dataclass
class FrozenConfig:
    pass


def apply_full(st, cfg: FullConfig):
    for p in st.parameters():
        p.requires_grad_(True)
    return st


def apply_bitfit(st, cfg: BitFitConfig):
    for name, p in st.named_parameters():
        p.requires_grad_(name.endswith(".bias") or name == "bias")
    return st


def apply_frozen(st, cfg: FrozenConfig):
    for p in st.parameters():
        p.requires_grad_(False)
    return st


def save_whole(st, cfg, folder: Path) -> dict:
    st.save(str(folder))
    pass_tokenizer_check(folder)  # no false "incorrect regex pattern" alarm where it is loaded
    return {}


def load_whole(folder: Path, cfg, base: Callable, madx_lang: str | None):
    from sentence_transformers import SentenceTransformer  # seconds to import; only on load

    return SentenceTransformer(str(folder), device="cpu")


def save_none(st, cfg, folder: Path) -> dict:
    return {}


def load_base(folder: Path, cfg, base: Callable, madx_lang: str | None):
    return base()
