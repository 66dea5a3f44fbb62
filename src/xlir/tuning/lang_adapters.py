"""Train MAD-X language adapters: masked language modelling on raw text of one language.

The encoder has no MLM head (E5 ships none), so a small head (dense, GELU, LayerNorm, decoder
tied to the word embeddings) trains beside the adapter and is discarded: only the adapter, with
its invertible adapter, is saved (safetensors). xlir.tuning.adapters stacks the result under
MAD-X's task adapter. Every `save_every` steps the loop writes a checkpoint beside the output
folder (`<out>.checkpoint/`, xlir.checkpoints: adapter and head weights, AdamW state, the random
state of the masking, dropout and batch draws, the losses); a rerun after a kill continues
from it on the uninterrupted run's path, and the checkpoint goes once the adapter is saved.
This module trains; it does not train the bi-encoder (xlir.train does).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from xlir import checkpoints
from xlir.errors import ConfigError, InputError
from xlir.storage import atomic_dir, read_json, write_json
from xlir.tuning.adapters import _adapters  # cheap: `adapters` loads on the first call


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None


def train_language_adapter(base_model: str | Path, lang: str, texts: list[str],
                           out_dir: str | Path, steps: int = 200, batch_size: int = 16,
                           lr: float = 1e-4, max_seq_length: int = 128,
                           reduction_factor: int = 16, seed: int = 0,
                           info: dict | None = None, save_every: int = 50) -> Path:
    """Train a MAD-X language adapter (seq_bn_inv) by masked language modelling on `texts`
    into `out_dir` (skipped if already there); -> `out_dir`. Beside the adapter, `mlm.json`
    records the settings, the amount of text, the MLM loss of every step and `info` (e.g.
    where the text came from)."""
    # Each of these takes seconds to import; the adapter is trained only for MAD-X runs.
    from sentence_transformers import SentenceTransformer
    from tqdm.auto import tqdm
    from transformers import DataCollatorForLanguageModeling

    out_dir = Path(out_dir)
    hyper = {"steps": steps, "batch_size": batch_size, "lr": lr, "max_seq_length": max_seq_length,
             "reduction_factor": reduction_factor, "seed": seed}
    if (out_dir / "adapter_config.json").is_file():
        done = read_json(out_dir / "mlm.json") if (out_dir / "mlm.json").is_file() else hyper
        changed = sorted(k for k, v in hyper.items() if done.get(k, v) != v)
        if changed:
            raise ConfigError(f"{out_dir} holds a {lang} adapter trained with other settings "
                              f"(changed: {', '.join(changed)}); use another folder or delete it")
        return out_dir
    if not texts:
        raise InputError(f"no text to train the {lang!r} language adapter on")
    torch.manual_seed(seed)
    st = SentenceTransformer(str(base_model), device="cpu")
    inner, tokenizer = st[0].model, st.tokenizer
    adapters = _adapters()
    adapters.init(inner)
    inner.add_adapter(lang, config=adapters.AdapterConfig.load(
        "seq_bn_inv", reduction_factor=reduction_factor))
    inner.train_adapter(lang)
    hidden = inner.config.hidden_size
    head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))
    trainable = {f"inner.{n}": p for n, p in inner.named_parameters() if p.requires_grad}
    trainable |= {f"head.{n}": p for n, p in head.named_parameters()}
    optim = torch.optim.AdamW(list(trainable.values()), lr=lr)
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float | None] = []  # None: a step whose batch drew no masked token
    saved = out_dir.with_name(out_dir.name + ".checkpoint")
    settings = {"base_model": str(base_model), "lang": lang, **hyper, "texts": len(texts),
                "texts_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest()}
    start_step, before = 0, 0.0  # seconds spent before the checkpoint resumed from
    if checkpoints.exists(saved):
        weights, start_step, record = checkpoints.load(
            saved, optim, settings, f"delete {saved} to train the {lang} adapter from the start",
            generators={"batches": gen})
        with torch.no_grad():
            for name, p in trainable.items():
                p.copy_(weights[name])
        losses, before = record["losses"], record["wall_s"]
    start = time.perf_counter()
    inner.train()
    for step in (bar := tqdm(range(start_step, steps), initial=start_step, total=steps,
                             desc=f"MLM {lang} adapter", unit="step")):
        idx = torch.randint(len(texts), (batch_size,), generator=gen).tolist()
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_seq_length)
        batch = collate([{"input_ids": ids} for ids in enc["input_ids"]])
        losses.append(_step(inner, head, optim, batch))
        if losses[-1] is not None:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % save_every == 0 and step + 1 < steps:
            checkpoints.save(saved, trainable, optim, step + 1, {
                "losses": losses, "wall_s": before + time.perf_counter() - start}, settings,
                generators={"batches": gen})
    with atomic_dir(out_dir) as tmp:
        inner.save_adapter(str(tmp), lang, use_safetensors=True)
        write_json(tmp / "mlm.json", {
            "lang": lang, "texts": len(texts), "steps": steps, "batch_size": batch_size,
            "lr": lr, "max_seq_length": max_seq_length, "reduction_factor": reduction_factor,
            "seed": seed, "wall_s": round(before + time.perf_counter() - start, 1),
            "loss_first10": _mean(losses[:10]), "loss_last10": _mean(losses[-10:]),
            "loss": losses, **(info or {})})
    shutil.rmtree(saved, ignore_errors=True)
    return out_dir


def _step(inner, head, optim, batch) -> float | None:
    """One MLM step; -> its loss (None: the batch drew no masked token)."""
    out = inner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    masked = batch["labels"] != -100  # (batch, seq); logits only there: the vocabulary
    if not masked.any():               # is 250k wide, all positions would take GBs
        return None
    # Undo the invertible adapter before the tied decoder, as MAD-X does.
    states = inner.invertible_adapters_forward(head(out.last_hidden_state), rev=True)
    logits = states[masked] @ inner.get_input_embeddings().weight.T  # (masked, vocab)
    loss = nn.functional.cross_entropy(logits, batch["labels"][masked])
    optim.zero_grad()
    loss.backward()
    optim.step()
    return round(loss.item(), 4)
