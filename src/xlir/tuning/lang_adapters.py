"""Train MAD-X language adapters: masked language modelling on raw text of one language.

The encoder has no MLM head (E5 ships none), so a small head (dense, GELU, LayerNorm, decoder
tied to the word embeddings) trains beside the adapter and is discarded: only the adapter, with
its invertible adapter, is saved. xlir.tuning.adapters stacks the result under MAD-X's task
adapter. This module trains; it does not train the bi-encoder (xlir.train does).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from xlir.errors import InputError
from xlir.storage import atomic_dir, write_json


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None


def train_language_adapter(base_model: str | Path, lang: str, texts: list[str],
                           out_dir: str | Path, steps: int = 200, batch_size: int = 16,
                           lr: float = 1e-4, max_seq_length: int = 128,
                           reduction_factor: int = 16, seed: int = 0,
                           info: dict | None = None) -> Path:
    """Train a MAD-X language adapter (seq_bn_inv) by masked language modelling on `texts`
    into `out_dir` (skipped if already there); -> `out_dir`. Beside the adapter, `mlm.json`
    records the settings, the amount of text, the MLM loss of every step and `info` (e.g.
    where the text came from)."""
    # Each of these takes seconds to import; the adapter is trained only for MAD-X runs.
    import adapters
    from sentence_transformers import SentenceTransformer
    from tqdm.auto import tqdm
    from transformers import DataCollatorForLanguageModeling

    out_dir = Path(out_dir)
    if (out_dir / "adapter_config.json").is_file():
        return out_dir
    if not texts:
        raise InputError(f"no text to train the {lang!r} language adapter on")
    torch.manual_seed(seed)
    st = SentenceTransformer(str(base_model), device="cpu")
    inner, tokenizer = st[0].model, st.tokenizer
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
    losses: list[float | None] = []  # None: a step whose batch drew no masked token
    start = time.perf_counter()
    inner.train()
    for _ in (bar := tqdm(range(steps), desc=f"MLM {lang} adapter", unit="step")):
        idx = torch.randint(len(texts), (batch_size,), generator=gen).tolist()
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_seq_length)
        batch = collate([{"input_ids": ids} for ids in enc["input_ids"]])
        out = inner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        masked = batch["labels"] != -100  # (batch, seq); logits only there: the vocabulary
        if not masked.any():               # is 250k wide, all positions would take GBs
            losses.append(None)
            continue
        # Undo the invertible adapter before the tied decoder, as MAD-X does.
        states = inner.invertible_adapters_forward(head(out.last_hidden_state), rev=True)
        logits = states[masked] @ inner.get_input_embeddings().weight.T  # (masked, vocab)
        loss = nn.functional.cross_entropy(logits, batch["labels"][masked])
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(round(loss.item(), 4))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    with atomic_dir(out_dir) as tmp:
        inner.save_adapter(str(tmp), lang)
        write_json(tmp / "mlm.json", {
            "lang": lang, "texts": len(texts), "steps": steps, "batch_size": batch_size,
            "lr": lr, "max_seq_length": max_seq_length, "reduction_factor": reduction_factor,
            "seed": seed, "wall_s": round(time.perf_counter() - start, 1),
            "loss_first10": _mean(losses[:10]), "loss_last10": _mean(losses[-10:]),
            "loss": losses, **(info or {})})
    return out_dir
