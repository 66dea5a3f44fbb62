"""The sentence-transformers trainer xlir trains the bi-encoder with (xlir.train runs it): the
training dataset (query, positive, BM25-mined hard negatives), the loss, and a trainer whose
checkpoints hold only the trainable tensors (safetensors: sentence-transformers' own saving
drops AdapterHub adapters and writes peft models in a layout it cannot load back) and no torch
pickle (the optimizer's tensors and the random state in safetensors, param groups, scheduler
and Python/NumPy random state in JSON: xlir.checkpoints' convention), with one max length per
side and a progress bar showing examples per second.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from xlir.bm25 import tokenize
from xlir.checkpoints import load_optimizer, rng_state, save_optimizer, set_rng_state
from xlir.encoder import passage_text  # train on the text the encoder encodes at inference
from xlir.errors import InputError
from xlir.storage import read_json, read_safetensors, write_json
from xlir.tuning import trainable_state_dict

if TYPE_CHECKING:
    from xlir.train import TrainConfig

logger = logging.getLogger(__name__)

TRAINABLE_FILE = "xlir-trainable.safetensors"
OPTIMIZER_FILE = "xlir-optimizer.safetensors"  # the optimizer's tensors
OPTIMIZER_STATE = "xlir-optimizer.json"        # its param groups and the scheduler's state

# transformers writes trainer_state.json last, after the weights and the optimizer state
# (whose files differ between plain, FSDP and DeepSpeed runs): its presence marks a finished
# checkpoint.
CHECKPOINT_FILES = (TRAINABLE_FILE, "trainer_state.json")


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint the trainer finished writing, or None.

    transformers writes a checkpoint folder file by file, so a kill while saving leaves a
    folder that resuming from would fail on. Such torn folders are removed (by rank 0), and
    training resumes from the checkpoint before, or from the start.
    """
    import os

    complete = None
    steps = {int(p.name[11:]): p for p in folder.glob("checkpoint-*") if p.name[11:].isdigit()}
    for path in (steps[k] for k in sorted(steps)):
        if all((path / f).is_file() for f in CHECKPOINT_FILES) and _readable(path / "trainer_state.json"):
            complete = path
        elif int(os.environ.get("RANK", "0")) == 0:
            logger.warning("%s was not completely written (killed while saving?); removed", path)
            shutil.rmtree(path, ignore_errors=True)
    return complete



def _readable(path: Path) -> bool:
    try:
        read_json(path)
        return True
    except (InputError, OSError):
        return False



def mine_hard_negatives(pairs: list[dict], k: int) -> list[list[str]]:
    """For each pair, the k passages of the pool that BM25 ranks highest for its query,
    excluding its own passage (by doc_id and by text). The pool: the pairs' passages. When
    fewer than k passages share a word with the query, the rest are the pool's first others.
    Words as BM25 retrieval splits them (xlir.bm25.tokenize: letters, marks and digits, so an
    Indic vowel sign stays inside its word)."""
    import bm25s

    if not pairs:
        raise InputError("no training pairs")
    if k == 0:
        return [[] for _ in pairs]
    docs = {p["doc_id"]: passage_text(p) for p in pairs}
    ids, texts = list(docs), list(docs.values())
    if len(ids) <= k:
        raise InputError(f"{len(ids)} distinct passages cannot give {k} hard negatives per pair")
    tok = lambda s: tokenize(s) or ["<empty>"]  # noqa: E731
    index = bm25s.BM25()
    index.index([tok(t) for t in texts], show_progress=False)
    found, scores = index.retrieve([tok(p["query"]) for p in pairs], k=min(len(ids), k + 8),
                                   show_progress=False)
    out = []
    for p, row, score in zip(pairs, found, scores):
        own = passage_text(p)
        negs = [texts[j] for j, s in zip(row, score)
                if s > 0 and ids[j] != p["doc_id"] and texts[j] != own][:k]
        rest = (t for t in texts if t != own and t not in negs)  # few BM25 hits: fill in order
        out.append(negs + [next(rest) for _ in range(k - len(negs))])
    return out


def build_dataset(pairs: list[dict], hard_negatives: int):
    """A datasets.Dataset with columns query, positive, negative_1..k (MNRL's order)."""
    from datasets import Dataset

    negs = mine_hard_negatives(pairs, hard_negatives)
    data: dict[str, list[str]] = {"query": [p["query"] for p in pairs],
                                  "positive": [passage_text(p) for p in pairs]}
    for i in range(hard_negatives):
        data[f"negative_{i + 1}"] = [n[i] for n in negs]
    return Dataset.from_dict(data)



def build_loss(st, config: TrainConfig):
    from sentence_transformers.sentence_transformer import losses

    scale = 1.0 / config.temperature
    if config.loss == "cached_mnrl":
        return losses.CachedMultipleNegativesRankingLoss(
            st, scale=scale, mini_batch_size=config.mini_batch_size,
            gather_across_devices=config.gather_across_devices)
    return losses.MultipleNegativesRankingLoss(
        st, scale=scale, gather_across_devices=config.gather_across_devices)


def build_trainer(st, config: TrainConfig, pairs: list[dict], evaluator, out_dir: Path):
    """A SentenceTransformerTrainer that checkpoints only trainable tensors (see module doc)."""
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainingArguments
    from transformers.trainer_callback import ProgressCallback

    import torch

    metric = f"eval_dev_cosine_{config.eval_metric}"
    evaluate = evaluator is not None
    cuda = torch.cuda.is_available()
    # Train with the prefixes the model encodes with at inference (its own prompts), not E5's.
    prompts = getattr(st, "prompts", None) or {}
    q_prefix, p_prefix = prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir), num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr,
        warmup_ratio=config.warmup_ratio, lr_scheduler_type="linear",
        weight_decay=config.weight_decay, seed=config.seed, data_seed=config.seed,
        batch_sampler=config.batch_sampler, prompts={"query": q_prefix, "positive": p_prefix,
        **{f"negative_{i + 1}": p_prefix for i in range(config.hard_negatives)}},
        eval_strategy="steps" if evaluate else "no", eval_steps=config.eval_steps,
        save_strategy="steps", save_steps=config.eval_steps,
        save_total_limit=config.save_total_limit, load_best_model_at_end=evaluate and config.load_best,
        metric_for_best_model=metric if evaluate else None, greater_is_better=True,
        logging_steps=config.logging_steps, report_to="none", use_cpu=not cuda,
        bf16=config.precision == "bf16",
        ddp_backend="gloo" if _world_size() > 1 and not cuda else None, dataloader_drop_last=True, disable_tqdm=False,
        save_safetensors=True)
    trainer = XlirTrainer(model=st, args=args, train_dataset=build_dataset(pairs, config.hard_negatives),
                          loss=build_loss(st, config), evaluator=evaluator)
    # The collator tells the sides apart by prefix only; with equal prefixes both get the longer.
    trainer.lengths = {p_prefix: config.passage_max_length}
    trainer.lengths[q_prefix] = (config.query_max_length if q_prefix != p_prefix
                                 else max(config.query_max_length, config.passage_max_length))
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RateProgress(config.batch_size * config.grad_accum))
    return trainer


def _rng_name(args) -> str:
    """The random state's file name: one per process under torchrun."""
    return "xlir-rng" if args.world_size <= 1 else f"xlir-rng-{args.process_index}"


def _world_size() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun


def _trainer_class():
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainer

    return SentenceTransformerTrainer


class XlirTrainer(_trainer_class()):
    """Checkpoints hold the trainable tensors only, and no torch pickle (xlir.checkpoints'
    convention: the optimizer's tensors and the random state in safetensors, the rest in JSON);
    queries and passages get their own length. A checkpoint transformers wrote before
    (optimizer.pt, rng_state.pth) is still resumed from, read weights-only."""

    lengths: dict[str, int] = {}

    def _save_optimizer_and_scheduler(self, output_dir):
        if not self.args.should_save:  # one copy, from the main process
            return

        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        groups = save_optimizer(self.optimizer, out / OPTIMIZER_FILE)
        write_json(out / OPTIMIZER_STATE, {"param_groups": groups,
                                           "scheduler": self.lr_scheduler.state_dict()})

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is None or not (Path(checkpoint) / OPTIMIZER_STATE).is_file():
            return super()._load_optimizer_and_scheduler(checkpoint)

        fix = f"delete {checkpoint} to resume from the checkpoint before it, or from the start"
        meta = read_json(Path(checkpoint) / OPTIMIZER_STATE)
        load_optimizer(self.optimizer, Path(checkpoint) / OPTIMIZER_FILE, meta["param_groups"], fix)
        self.lr_scheduler.load_state_dict(meta["scheduler"])

    def _save_rng_state(self, output_dir):
        import random

        import numpy as np
        from safetensors.torch import save_file

        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = _rng_name(self.args)
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        save_file(rng_state({}), out / f"{name}.safetensors")
        write_json(out / f"{name}.json", {"python": random.getstate(),
                                          "numpy": [kind, keys.tolist(), pos, has_gauss, gauss]})

    def _load_rng_state(self, checkpoint):
        if checkpoint is None:
            return
        name = _rng_name(self.args)
        if not (Path(checkpoint) / f"{name}.json").is_file():
            return super()._load_rng_state(checkpoint)
        import random

        import numpy as np

        fix = f"delete {checkpoint} to resume from the checkpoint before it, or from the start"
        set_rng_state(read_safetensors(Path(checkpoint) / f"{name}.safetensors", fix), {})
        saved = read_json(Path(checkpoint) / f"{name}.json")
        version, state, gauss = saved["python"]
        random.setstate((version, tuple(state), gauss))
        np.random.set_state(tuple(saved["numpy"]))

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        from safetensors.torch import save_file

        out = Path(output_dir or self.args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file(trainable_state_dict(self.model), str(out / TRAINABLE_FILE))

    def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
        path = Path(checkpoint_path) / TRAINABLE_FILE
        if not path.is_file():
            raise InputError("checkpoint has no trainable tensors", path)
        state = read_safetensors(path, f"delete {checkpoint_path} to resume from the checkpoint "
                                       "before it, or from the start")
        missing = set(state) - set(self.model.state_dict())
        if missing:
            raise InputError(f"checkpoint does not match the model: {sorted(missing)[:3]}", path)
        self.model.load_state_dict(state, strict=False)

    def get_data_collator(self, model, args, processing_class=None):
        collator = super().get_data_collator(model, args, processing_class)
        collator.preprocess_fn = lambda texts, prompt=None, **kw: self._preprocess(model, texts, prompt, **kw)
        return collator

    def _preprocess(self, model, texts, prompt, **kwargs):
        # One max length per side: queries are short, passages long; prompts tell them apart.
        old = model.max_seq_length
        model.max_seq_length = self.lengths.get(prompt, old)
        try:
            return model.preprocess(texts, prompt=prompt, **kwargs)
        finally:
            model.max_seq_length = old


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class RateProgress(_callback_base()):
    """A progress bar showing the running loss and training examples per second."""

    def __init__(self, examples_per_step: int):
        self.examples_per_step, self.bar, self.start, self.first = examples_per_step, None, 0.0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step")
        self.start, self.first = time.perf_counter(), state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs or "loss" not in logs:
            return
        seconds = max(time.perf_counter() - self.start, 1e-9)
        rate = (state.global_step - self.first) * self.examples_per_step * args.world_size / seconds
        self.bar.set_postfix(loss=f"{logs['loss']:.4f}", ex_s=f"{rate:.1f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
