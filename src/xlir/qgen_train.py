"""Fine-tune a causal LM into a passage-to-question generator with LoRA (`xlir qgen train`).

Examples are (passage, target language) -> question pairs from training splits only: the
prompt is qgen's (`<bos>{title}: {passage}\\nGenerate a {Language} question for this
passage.\\nQuestion:`), the target ` {question}<eos>`, and the loss covers the target tokens
only. A run folder holds:
    qgen-manifest.json   base model, config, pair counts, losses; "complete" when finished
    adapter/             the peft LoRA adapter (safetensors)
    checkpoint/          LoRA weights, AdamW state, torch's random state, step and losses,
                         every `save_every` steps (xlir.checkpoints: safetensors + JSON; a
                         checkpoint of other settings is refused, naming them)

A tenth of the pairs (at most `dev_pairs`), whole passages at a time, is held out: the
manifest records the held-out loss every `eval_every` steps and after the last (`dev_losses`,
[step, loss]) beside the training losses, and the pairs per language of both sides.
A rerun continues from the checkpoint (same data order: batches come from a seeded permutation
per epoch, the random state from the checkpoint); a complete run is skipped.

The LoRA itself comes from xlir.tuning.peft (the only wrapper of peft); loading a finished run
folder for generation is xlir.qgen's `load_generator`.

Not here: generation (qgen.py), pair loading rules beyond "never a test split" (xlir.data).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xlir import checkpoints
from xlir.data.checks import drop_leaked, hold_out, leakage
from xlir.data.readers import language_field, read_jsonl, text_field
from xlir.data.tasks import load_pairs
from xlir.errors import ConfigError
from xlir.models import resolve_generator
from xlir.qgen import MANIFEST, load_generator, passage_ids, tail_ids
from xlir.storage import atomic_dir, read_json, write_json
from xlir.tuning.peft import load_lora_state, lora_for_causal_lm, lora_state, save_lora

log = logging.getLogger(__name__)


@dataclass
class QGenTrainConfig:
    base: str | None = None  # HF causal-LM folder; None = the packaged gemma-3-270m
    sources: list[str] = field(default_factory=lambda: ["afriqa-native", "tydi-en", "tydi-ko",
                                                        "tydi-sw"])
    split: str = "train"
    eval_task: str = "afriqa"  # its test queries must not appear among training questions
    languages: list[str] | None = None  # keep only these query languages
    max_pairs_per_language: int | None = None
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj",
                                                               "o_proj"])
    lr: float = 3e-4
    epochs: float = 1.0
    steps: int | None = None  # overrides epochs when set
    batch_size: int = 8
    max_passage_tokens: int = 128
    max_question_tokens: int = 48
    dtype: Literal["float32", "bfloat16"] = "float32"
    seed: int = 0
    save_every: int = 50
    # Held out from training for a dev loss curve: pairs of passages that no training pair
    # shares, at most this many and a tenth of the pairs (0: no dev loss).
    dev_pairs: int = 64
    eval_every: int = 50  # dev loss every this many steps, and after the last

    def __post_init__(self):
        if self.split == "test" or "test" in self.split.split("+"):
            raise ConfigError("split: the generator never trains on a test split")
        if (self.r < 1 or self.batch_size < 1 or self.save_every < 1 or self.eval_every < 1
                or self.lr <= 0 or self.dev_pairs < 0):
            raise ConfigError("r, batch_size, save_every, eval_every must be >= 1, lr > 0 and "
                              "dev_pairs >= 0")
        if self.steps is None and self.epochs <= 0:
            raise ConfigError("epochs must be > 0 (or set steps)")


def training_pairs(cfg: QGenTrainConfig, evaluated=None) -> tuple[list[dict], dict]:
    """(pairs {query, query_lang, title, text} from `cfg.sources`, capped per language,
    leakage counts). With `evaluated` (a Task, or tasks by label) every pair whose question or
    passage an evaluated split judges is dropped first (xlir.data.checks.drop_leaked), before
    the cap, so the cap still fills; the counts are drop_leaked's ({} without `evaluated`)."""
    pairs = [p for s in cfg.sources for p in load_pairs(s, cfg.split)]
    counts: dict = {}
    if evaluated is not None:
        pairs, counts = drop_leaked(pairs, evaluated)
    if cfg.languages:
        pairs = [p for p in pairs if p["query_lang"] in set(cfg.languages)]
    if cfg.max_pairs_per_language:
        rng, by_lang = random.Random(cfg.seed), {}
        for p in pairs:
            by_lang.setdefault(p["query_lang"], []).append(p)
        pairs = [p for rows in by_lang.values()
                 for p in rng.sample(rows, min(len(rows), cfg.max_pairs_per_language))]
    return pairs, counts


def check_leakage(pairs: list[dict], task) -> tuple[list[dict], dict]:
    """(pairs that `task` does not judge, report): a pair is dropped when its question is one
    of the task's judged questions or its passage one of its judged passages, by id or by
    normalised text (xlir.data.checks.drop_leaked). The report is xlir.data.checks.leakage's
    overlap counts (near-duplicates are reported, not dropped) plus `dropped_pairs` and
    `dropped_questions`. Upstream AfriQA repeats questions and passages across splits, so
    overlaps are dropped, not fatal."""
    report = leakage(pairs, task)
    kept, counts = drop_leaked(pairs, task)
    report["dropped_pairs"] = len(pairs) - len(kept)
    report["dropped_questions"] = sum(r["question"] for by_lang in counts.values()
                                      for r in by_lang.values())
    return kept, report


def encode_pair(tokenizer, pair: dict, cfg: QGenTrainConfig) -> tuple[list[int], list[int]]:
    """-> (input ids, labels) with labels -100 on the prompt."""
    prompt = (passage_ids(tokenizer, pair.get("title", ""), pair["text"], cfg.max_passage_tokens)
              + tail_ids(tokenizer, pair["query_lang"]))
    target = tokenizer(" " + pair["query"].strip(), add_special_tokens=False)["input_ids"]
    target = target[:cfg.max_question_tokens] + [tokenizer.eos_token_id]
    return prompt + target, [-100] * len(prompt) + target


def _batch(examples: list[tuple[list[int], list[int]]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in examples)  # right padding: labels mask the pads
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = (
            torch.tensor(x), torch.tensor(y), 1)
    return ids, mask, labels


def _order(n: int, batch_size: int, total_steps: int, seed: int) -> list[list[int]]:
    """Batches for every step: a fresh seeded permutation per epoch."""
    batches, epoch = [], 0
    while len(batches) < total_steps:
        perm = list(range(n))
        random.Random(seed * 1000 + epoch).shuffle(perm)
        batches += [perm[i:i + batch_size] for i in range(0, n, batch_size)]
        epoch += 1
    return batches[:total_steps]


def _build(cfg: QGenTrainConfig):
    import torch

    model, tokenizer, _ = load_generator(cfg.base, cfg.dtype)
    torch.manual_seed(cfg.seed)  # the LoRA init draws from it
    model = lora_for_causal_lm(model, cfg.r, cfg.alpha, cfg.target_modules, cfg.dropout)
    return model, tokenizer


def train_generator(pairs: list[dict], cfg: QGenTrainConfig, run_dir: str | Path,
                    progress: bool = True, leakage: dict | None = None) -> dict:
    """LoRA-tune `cfg.base` on `pairs`; resumable; -> the manifest (skips a complete run)."""
    import torch
    from tqdm import tqdm

    run_dir = Path(run_dir)
    if (run_dir / MANIFEST).is_file() and read_json(run_dir / MANIFEST).get("complete"):
        log.info("%s is complete; skipping", run_dir)
        return read_json(run_dir / MANIFEST)
    if not pairs:
        raise ConfigError("no training pairs")
    pairs, dev = hold_out(pairs, cfg.dev_pairs, cfg.seed)
    model, tokenizer = _build(cfg)
    examples = [encode_pair(tokenizer, p, cfg) for p in pairs]
    dev_examples = [encode_pair(tokenizer, p, cfg) for p in dev]
    steps = cfg.steps or math.ceil(cfg.epochs * math.ceil(len(examples) / cfg.batch_size))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    start, losses, dev_losses = 0, [], []
    settings = dataclasses.asdict(cfg)
    if checkpoints.exists(run_dir / "checkpoint"):
        weights, start, record = checkpoints.load(
            run_dir / "checkpoint", optim, settings,
            f"delete {run_dir / 'checkpoint'} to train the generator from the start")
        load_lora_state(model, weights)
        losses, dev_losses = record["losses"], record["dev_losses"]
        log.info("resuming %s at step %d", run_dir, start)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.train()
    t0 = time.perf_counter()
    order = _order(len(examples), cfg.batch_size, steps, cfg.seed)
    for step in tqdm(range(start, steps), initial=start, total=steps, disable=not progress):
        ids, mask, labels = _batch([examples[i] for i in order[step]], pad_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        losses.append(round(float(loss.detach()), 4))
        if dev_examples and ((step + 1) % cfg.eval_every == 0 or step + 1 == steps):
            dev_losses.append([step + 1, dev_loss(model, dev_examples, cfg.batch_size, pad_id)])
            log.info("step %d: held-out dev loss %.4f", step + 1, dev_losses[-1][1])
        if (step + 1) % cfg.save_every == 0 and step + 1 < steps:
            checkpoints.save(run_dir / "checkpoint", lora_state(model), optim, step + 1,
                             {"losses": losses, "dev_losses": dev_losses}, settings)
    return _finish(model, cfg, pairs, losses, run_dir, time.perf_counter() - t0, leakage,
                   dev, dev_losses)


def dev_loss(model, examples, batch_size: int, pad_id: int) -> float:
    """Mean loss per target token over `examples`, dropout off (it draws no random numbers,
    so a resumed run stays on the uninterrupted run's path)."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            ids, mask, labels = _batch(examples[i:i + batch_size], pad_id)
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
            tokens += n
    model.train()
    return round(total / max(tokens, 1), 4)


def _per_language(pairs: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p["query_lang"]] = counts.get(p["query_lang"], 0) + 1
    return counts


def _finish(model, cfg, pairs, losses, run_dir: Path, seconds: float, leakage, dev,
            dev_losses) -> dict:
    import shutil

    base = resolve_generator(cfg.base)
    counts = _per_language(pairs)
    with atomic_dir(run_dir / "adapter") as tmp:
        save_lora(model, tmp)
    manifest = {"base": str(base.resolve()), "method": "lora",
                "config": dataclasses.asdict(cfg), "pairs_per_language": counts,
                "dev_pairs_per_language": _per_language(dev), "dev_losses": dev_losses,
                "steps": len(losses), "losses": losses, "seconds_this_run": round(seconds, 1),
                "leakage": leakage, "complete": True}
    write_json(run_dir / MANIFEST, manifest)
    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
    return manifest


def read_pairs_jsonl(path: str | Path) -> list[dict]:
    """Pairs from a JSONL file (keys: query, query_lang, title, text), for custom data."""
    pairs = []
    for n, row in read_jsonl(path):
        lang = language_field(text_field(row, "query_lang", path, n), path, n, "query_lang")
        pairs.append({"query": text_field(row, "query", path, n), "query_lang": lang,
                      "title": text_field(row, "title", path, n, optional=True),
                      "text": text_field(row, "text", path, n)})
    return pairs
