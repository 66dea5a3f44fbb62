"""The bi-encoder: one shared sentence-transformers model encodes queries and passages.

`BiEncoder` adds what retrieval needs on top of a `SentenceTransformer`: the query/passage
prefixes (from the model's saved prompts, or given), a settable max length, L2-normalised
float32 output, a `fingerprint` for cache keys, and the arithmetic it encodes in (`backend`).

Passage text is `f"{title} {text}".strip()` (the E5 / xQG convention "{title} {passage}");
a passage without a title is just its text. The prefix goes in front of the whole string.

Speed: texts are tokenised once, sorted by token count (longest first, so a memory problem
shows on the first batch) and batched, so each batch pads to nearly its own length; the
output comes back in input order. sentence-transformers' own `encode` sorts by character
length, which pads more for scripts whose characters tokenise unevenly.

Backends (BENCHMARKS.md has the measurements behind each sentence):
- `"bf16"` (the default): the forward pass under `torch.autocast(dtype=torch.bfloat16)`, fp32
  weights; matmuls in bf16, LayerNorm/softmax/pooling in fp32. On the avx512_bf16 CPU it is
  2.1x sentence-transformers' fp32 `encode` (1.8x xlir fp32) and moves macro nDCG@10 / RR@10
  on the full AfriQA test by -0.0004 and SIB-200 Success@1 (40 languages) by 0.0000. Weights
  cast to bf16 were slower (2.14x vs 2.34x) and further from fp32 (cosine 0.998) in an
  earlier probe.
  On a CPU without native bf16 it still runs, only slower.
- `"fp32"`: the reference arithmetic.
- `"int8"`: every nn.Linear quantised dynamically (torch.ao quantize_dynamic, per-channel
  weight scales): no faster than bf16 here and 0.12 lower nDCG@10 on the full AfriQA test, so
  a warning is printed every time it is selected: never for reported numbers.

It does NOT train, cache embeddings on disk (encode.py does) or search (index.py does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from xlir.errors import ConfigError, ModelNotFoundError
from xlir.models import resolve_encoder
from xlir.tuning import load_tuned

log = logging.getLogger(__name__)

Backend = Literal["bf16", "fp32", "int8"]
BACKENDS = ("bf16", "fp32", "int8")
DEFAULT_BACKEND: Backend = "bf16"
INT8_WARNING = ("int8 encoding loses 0.12 nDCG@10 against fp32 on the AfriQA test (BENCHMARKS.md): "
                "do not report numbers made with it; bf16 (the default) is as fast and within "
                "0.001")


def passage_text(passage: dict[str, str]) -> str:
    """The string a passage is encoded as: "{title} {text}", or the text alone."""
    return f"{passage.get('title') or ''} {passage.get('text') or ''}".strip()


class BiEncoder:
    """A shared query/passage encoder over a SentenceTransformer (Transformer -> Pooling ->
    Normalize). Prefixes default to the model's `prompts["query"]` / `prompts["passage"]`."""

    def __init__(self, model, name: str | None = None, query_prefix: str | None = None,
                 passage_prefix: str | None = None, max_length: int | None = None,
                 backend: Backend = DEFAULT_BACKEND, source: str | Path | None = None):
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
        prompts = getattr(model, "prompts", None) or {}
        self.query_prefix = prompts.get("query", "") if query_prefix is None else query_prefix
        self.passage_prefix = (prompts.get("passage", "") if passage_prefix is None
                               else passage_prefix)
        if max_length is not None:
            if max_length < 1:
                raise ConfigError(f"max_length must be >= 1, got {max_length}")
            model.max_seq_length = max_length
        if model.max_seq_length is None:  # no limit saved: the tokenizer's, at most 512
            model.max_seq_length = min(int(model.tokenizer.model_max_length), 512)
        self.max_length = int(model.max_seq_length)
        self.backend = backend
        # Where the model can be loaded again (worker processes, cache keys); None if in memory.
        self.source = None if source is None else str(source)
        self.name = name or (Path(self.source).name if self.source else type(model).__name__)
        model.eval()
        self.model = model
        if backend == "int8":
            log.warning(INT8_WARNING)  # every time: an int8 number must never pass unnoticed
            _ = self.fingerprint  # hash the fp32 weights: int8 packed params are not tensors
            with warnings.catch_warnings():  # torch.ao is deprecated but still the CPU int8 path
                warnings.simplefilter("ignore")
                # Per-output-channel weight scales: on e5-small the embeddings agree with
                # fp32 at mean cosine 0.985, vs 0.971 with one scale per tensor.
                from torch.ao.quantization import per_channel_dynamic_qconfig

                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        self.model = model

    @cached_property
    def dim(self) -> int:
        # sentence-transformers 5.x renamed the method; keep working on both names.
        get = getattr(self.model, "get_embedding_dimension", None)
        return int(get() if get else self.model.get_sentence_embedding_dimension())

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over the weights (as loaded, before int8), prefixes, max length, backend and
        module layout: anything that changes an embedding changes the fingerprint."""
        h = hashlib.sha256()
        meta = {"query_prefix": self.query_prefix, "passage_prefix": self.passage_prefix,
                "max_length": self.max_length, "backend": self.backend,
                "modules": [type(m).__name__ for m in self.model]}
        h.update(json.dumps(meta, sort_keys=True).encode())
        for key, value in sorted(self.model.state_dict().items()):
            if isinstance(value, torch.Tensor):
                h.update(key.encode())
                h.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def encode_queries(self, texts: list[str], batch_size: int = 64,
                       show_progress: bool = False) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts], batch_size, show_progress)

    def encode_passages(self, passages: list[dict[str, str]], batch_size: int = 64,
                        show_progress: bool = False) -> np.ndarray:
        texts = [self.passage_prefix + passage_text(p) for p in passages]
        return self._encode(texts, batch_size, show_progress)

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        tokenizer = self.model.tokenizer
        ids = tokenizer(texts, truncation=True, max_length=self.max_length,
                        add_special_tokens=True)["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        starts = range(0, len(texts), batch_size)
        if show_progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc="encode", unit="batch")
        with torch.inference_mode(), self._autocast():
            for start in starts:
                rows = order[start:start + batch_size]
                emb = self.model(_pad([ids[i] for i in rows], tokenizer.pad_token_id))
                out[rows] = emb["sentence_embedding"].float().numpy()  # (b, d)
        # L2 norm again even if the model ends in Normalize: a tuned model may not.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _autocast(self):
        """bf16 autocast on the model's device for the "bf16" backend; a no-op otherwise."""
        device = next(self.model.parameters()).device.type if self.backend == "bf16" else "cpu"
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.backend == "bf16")


def _pad(batch: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token ids to the batch's longest row (encoders read left to right)."""
    width = max(len(x) for x in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, row in enumerate(batch):
        input_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def load_encoder(name_or_path: str | Path | None = None, madx_lang: str | None = None,
                 **kwargs) -> BiEncoder:
    """Load a BiEncoder. None -> the packaged default (`xlir.models.resolve_encoder()`);
    a trained-run folder (it holds `xlir-model.json`) -> `xlir.tuning.load_tuned`; any other
    sentence-transformers folder -> `SentenceTransformer(path)`; a name -> resolve_encoder.
    madx_lang: for a MAD-X run, the language adapter (code or folder) stacked under the task
    adapter instead of the source language's (`load_tuned`); refused for anything else."""
    path = Path(name_or_path) if name_or_path is not None else None
    if path is None or not path.exists():
        path = Path(resolve_encoder(None if name_or_path is None else str(name_or_path)))
    if not path.is_dir():
        raise ModelNotFoundError(f"{path}: not a model folder")
    if (path / "xlir-model.json").exists():
        model = load_tuned(path, madx_lang=madx_lang)
    elif madx_lang is not None:
        raise ModelNotFoundError(f"{path}: madx_lang needs a trained MAD-X run (xlir-model.json)")
    elif (path / "modules.json").exists():
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
    else:
        raise ModelNotFoundError(f"{path}: neither a sentence-transformers folder (modules.json) "
                                 "nor a trained xlir run (xlir-model.json)")
    kwargs.setdefault("name", path.name)
    return BiEncoder(model, source=path, **kwargs)
