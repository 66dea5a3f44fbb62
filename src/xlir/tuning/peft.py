"""peft methods for the bi-encoder (lora, dora, ia3, prefix, prompt) and the generator's LoRA.

Each config builds its own peft config (`peft_config()`); one `apply`, `save` and `load` serve
all five methods, since peft hides the differences. A tuned folder keeps the adapter in
`adapter/` beside the manifest; the base model stays where it was.

Why the peft model is wrapped (`PeftEncoder`): sentence-transformers extends the attention mask
by the virtual tokens for any prompt-learning PeftModel, which is wrong for prefix tuning (its
outputs are not longer) and makes pooling average over padding. The wrapper returns outputs of
the input's own length (prompt tuning's virtual-token outputs are dropped), so pooling always
uses the input's own mask.

The generator (xlir.qgen_train, xlir.qgen) gets its LoRA here too: `lora_for_causal_lm`,
`save_lora`, `load_lora_state`, `merge_lora`. This module and xlir.tuning.adapters are the only
ones in xlir that import peft or adapters; it does not train anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal

from torch import nn

from xlir.errors import ConfigError

FOLDER = "adapter"
# Attention projections and both FFN linears of every layer; never BERT's pooler.dense.
LAYER = r".*encoder\.layer\.\d+\."
LINEAR_MODULES = LAYER + r"(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
IA3_MODULES = LAYER + r"(attention\.self\.(key|value)|output\.dense)"
IA3_FEEDFORWARD = LAYER + r"output\.dense"


def _peft():
    import peft  # takes seconds (it loads transformers): imported only once a method runs

    return peft


def _check_regex(method: str, key: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"{method}.{key}: not a regular expression ({e})") from None


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str = LINEAR_MODULES  # a regex over module names (peft full-match)
    use_dora: ClassVar[bool] = False

    def __post_init__(self):
        if self.r < 1 or self.alpha < 1:
            raise ConfigError(f"lora: r and alpha must be >= 1, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora: dropout must be in [0, 1), got {self.dropout}")
        _check_regex("lora", "target_modules", self.target_modules)

    def peft_config(self):
        peft = _peft()
        return peft.LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                               target_modules=self.target_modules, use_dora=self.use_dora,
                               task_type=peft.TaskType.FEATURE_EXTRACTION)


@dataclass
class DoraConfig(LoraConfig):
    use_dora: ClassVar[bool] = True


@dataclass
class IA3Config:
    target_modules: str = IA3_MODULES
    feedforward_modules: str = IA3_FEEDFORWARD

    def __post_init__(self):
        _check_regex("ia3", "target_modules", self.target_modules)
        _check_regex("ia3", "feedforward_modules", self.feedforward_modules)

    def peft_config(self):
        peft = _peft()
        return peft.IA3Config(target_modules=self.target_modules,
                              feedforward_modules=self.feedforward_modules,
                              task_type=peft.TaskType.FEATURE_EXTRACTION)


@dataclass
class PrefixConfig:
    num_virtual_tokens: int = 16

    def __post_init__(self):
        if self.num_virtual_tokens < 1:
            raise ConfigError(f"num_virtual_tokens must be >= 1, got {self.num_virtual_tokens}")

    def peft_config(self):
        peft = _peft()
        return peft.PrefixTuningConfig(num_virtual_tokens=self.num_virtual_tokens,
                                       task_type=peft.TaskType.FEATURE_EXTRACTION)


@dataclass
class PromptConfig(PrefixConfig):
    # Virtual tokens start as embeddings of random vocabulary tokens: nearer the pretrained
    # behaviour than peft's default random vectors, which barely train on a small encoder.
    init: Literal["sample_vocab", "random"] = "sample_vocab"

    def __post_init__(self):
        super().__post_init__()
        if self.init not in ("sample_vocab", "random"):
            raise ConfigError(f"prompt.init must be sample_vocab or random, got {self.init!r}")

    def peft_config(self):
        peft = _peft()
        return peft.PromptTuningConfig(num_virtual_tokens=self.num_virtual_tokens,
                                       task_type=peft.TaskType.FEATURE_EXTRACTION,
                                       prompt_tuning_init=self.init.upper())


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


# ---- the Method protocol of xlir.tuning --------------------------------------------------------

def apply(st, cfg):
    st[0].model = PeftEncoder(_peft().get_peft_model(st[0].model, cfg.peft_config()))
    return st


def save(st, cfg, folder: Path) -> dict:
    st[0].model.peft.save_pretrained(str(folder / FOLDER))
    return {}


def load(folder: Path, cfg, base: Callable, madx_lang: str | None):
    st = base()
    st[0].model = PeftEncoder(_peft().PeftModel.from_pretrained(st[0].model, str(folder / FOLDER)))
    return st


def merge_peft(st):
    """Fold a mergeable peft method (lora, dora, ia3) into plain weights, in place."""
    inner = st[0].model
    if not isinstance(inner, PeftEncoder) or inner.is_prompt_learning:
        raise ConfigError("only lora, dora and ia3 adapters can be merged into the base weights")
    st[0].model = inner.peft.merge_and_unload()
    return st


# ---- the generator's LoRA ----------------------------------------------------------------------

def lora_for_causal_lm(model, r: int, alpha: int, targets: list[str], dropout: float):
    """`model` (a transformers causal LM) with LoRA on the modules named in `targets`; only
    the LoRA matrices train. Their random init draws from torch's global generator."""
    peft = _peft()
    lora = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                           target_modules=list(targets), task_type="CAUSAL_LM")
    return peft.get_peft_model(model, lora)


def save_lora(model, folder: str | Path) -> None:
    """Write the LoRA adapter of `lora_for_causal_lm`'s model (safetensors + its config)."""
    model.save_pretrained(folder)


def lora_state(model) -> dict:
    """The LoRA weights of `lora_for_causal_lm`'s model, by name (what `load_lora_state` sets)."""
    return _peft().get_peft_model_state_dict(model)


def load_lora_state(model, tensors: dict) -> None:
    """Set the LoRA weights of `lora_for_causal_lm`'s model from an adapter's tensors."""
    _peft().set_peft_model_state_dict(model, tensors)


def merge_lora(model, folder: str | Path):
    """`model` with the adapter saved by `save_lora` in `folder` merged into its weights."""
    return _peft().PeftModel.from_pretrained(model, folder).merge_and_unload()
