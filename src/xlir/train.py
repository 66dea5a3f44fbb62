"""Train the bi-encoder with any tuning method on sentence-transformers' trainer.

Loss: MultipleNegativesRankingLoss (in-batch negatives plus BM25-mined hard negatives),

    L = -1/B sum_i log( exp(s(q_i, p_i)/t) / sum_j exp(s(q_i, c_j)/t) )

over every candidate c_j in the batch (all positives and negatives; with
`gather_across_devices` those of every rank too), s = cosine, scale = 1/t. `cached_mnrl` computes
the same loss with GradCache in chunks of `mini_batch_size`, so a large batch fits in memory.

A run folder holds `train_config.json`, `checkpoints/` (trainer checkpoints: a killed run
resumes from the last one when called again), `dev_metrics.json`, `train_metrics.json` and the
final tuned model (xlir.tuning.save_tuned). `xlir-model.json` is written last and is the
completion marker: a run folder that has it is returned without training again.

Checkpoints hold only the trainable tensors (safetensors): sentence-transformers' own saving
drops AdapterHub adapters and writes peft models in a layout it cannot load back.

It does not encode corpora or evaluate on test tasks (xlir.encoder / xlir.evaluate do).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xlir.data.checks import drop_leaked
from xlir.encoder import passage_text  # train on the text the encoder encodes at inference
from xlir.errors import ConfigError, InputError
from xlir.storage import read_json, write_json

logger = logging.getLogger(__name__)

TRAINABLE_FILE = "xlir-trainable.safetensors"
METRICS = ("ndcg", "mrr", "map", "accuracy", "precision", "recall")


@dataclass
class TrainConfig:
    model: str | None = None          # sentence-transformers folder; None: the packaged encoder
    method: str = "lora"              # a name of xlir.tuning.METHODS
    method_options: dict[str, Any] = field(default_factory=dict)  # that method's config
    train: list[str] = field(default_factory=lambda: ["tydi-en"])  # xlir.data.tasks.load_pairs
    dev: str | None = "tydi-en"       # dev pairs (split "dev"); None: no evaluation
    max_pairs: int | None = None      # cap on training pairs (after a seeded shuffle)
    max_dev_pairs: int | None = 200
    epochs: float = 1.0
    max_steps: int = -1               # > 0 overrides epochs
    batch_size: int = 32              # per device
    grad_accum: int = 1
    lr: float = 2e-5
    warmup_ratio: float = 0.1         # linear warmup, then linear decay to 0
    weight_decay: float = 0.01
    temperature: float = 0.05         # MNRL scale = 1 / temperature
    loss: Literal["mnrl", "cached_mnrl"] = "mnrl"
    mini_batch_size: int = 8          # cached_mnrl chunk size
    gather_across_devices: bool = False
    hard_negatives: int = 1           # BM25-mined negatives per pair
    batch_sampler: Literal["no_duplicates", "batch_sampler"] = "no_duplicates"
    query_max_length: int = 64
    passage_max_length: int = 256
    # bf16: autocast with fp32 master weights and optimizer state (the trainer's bf16=True);
    # fp32: the reference. BENCHMARKS.md has the speed and dev-metric comparison.
    precision: Literal["bf16", "fp32"] = "bf16"
    seed: int = 13
    eval_metric: str = "ndcg@10"      # ndcg|mrr|map|accuracy|precision|recall @k
    eval_steps: int = 100             # evaluate and checkpoint every so many steps
    load_best: bool = True            # end with the best checkpoint by eval_metric
    save_total_limit: int = 2
    logging_steps: int = 10
    keep_checkpoints: bool = False    # delete checkpoints/ once the run is complete
    # MAD-X: languages whose adapters are trained by MLM on SIB-200 train sentences into
    # RUN_DIR/lang_adapters/ when method_options.lang_adapters lacks them (the source language
    # always; targets so that `load_tuned(run, madx_lang=...)` can swap them in).
    madx_target_langs: list[str] = field(default_factory=list)
    madx_mlm_steps: int = 200

    def __post_init__(self):
        from xlir.tuning import method_config

        self.method_config = method_config(self.method, self.method_options)
        positive = ["batch_size", "grad_accum", "mini_batch_size", "query_max_length",
                    "passage_max_length", "eval_steps", "logging_steps", "save_total_limit"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("set epochs > 0 or max_steps > 0")
        if self.hard_negatives < 0 or (self.max_pairs is not None and self.max_pairs < 2):
            raise ConfigError("hard_negatives must be >= 0 and max_pairs >= 2")
        if not self.train:
            raise ConfigError("train: name at least one source of training pairs")
        if self.madx_mlm_steps < 1:
            raise ConfigError(f"madx_mlm_steps must be >= 1, got {self.madx_mlm_steps}")
        name, _, k = self.eval_metric.partition("@")
        if name not in METRICS or not k.isdigit():
            raise ConfigError(f"eval_metric {self.eval_metric!r}: expected one of {METRICS} @k")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def is_complete(run_dir: str | Path) -> bool:
    return (Path(run_dir) / "xlir-model.json").is_file()


def train(config: TrainConfig, run_dir: str | Path, train_pairs: list[dict] | None = None,
          dev_pairs: list[dict] | None = None, evaluated_tasks=None) -> dict:
    """Train `config` into `run_dir`; returns the manifest (run summary). Skips a complete run.

    train_pairs / dev_pairs (dicts with query, doc_id, title, text) replace the named sources;
    tests pass them directly. `evaluated_tasks` (tasks by label): training pairs whose question
    or passage one of them judges are dropped before the cap (xlir.data.checks.drop_leaked);
    the counts go into the manifest as `leakage`.
    """
    from xlir import tuning

    run_dir = Path(run_dir)
    _check_same_config(run_dir, config)
    if is_complete(run_dir):
        logger.info("%s is complete; not training again", run_dir)
        return read_json(run_dir / "xlir-model.json")
    start = time.perf_counter()
    base = _resolve_model(config.model)
    _check_lengths(base, config)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.method == "madx":
        config = _with_language_adapters(config, base, run_dir / "lang_adapters")
    write_json(run_dir / "train_config.json", config.to_dict())
    st = _load_model(base, config)
    pairs = train_pairs if train_pairs is not None else _load_sources(config.train, "train")
    leakage = {}
    if evaluated_tasks:
        pairs, leakage = drop_leaked(pairs, evaluated_tasks)
    if dev_pairs is None and config.dev:
        dev_pairs = _load_sources([config.dev], "dev")
    pairs = _shuffle_cap(pairs, config.max_pairs, config.seed)
    dev_pairs = _shuffle_cap(dev_pairs or [], config.max_dev_pairs, config.seed)
    evaluator = build_evaluator(dev_pairs, config) if dev_pairs else None
    train_metrics = {}
    if config.method != "frozen":
        trainer = build_trainer(st, config, pairs, evaluator, run_dir / "checkpoints")
        checkpoint = last_complete_checkpoint(run_dir / "checkpoints")
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        train_metrics = {**result.metrics, "log_history": trainer.state.log_history}
        if not trainer.is_world_process_zero():
            return {}
    dev_metrics = evaluate_dev(st, evaluator) if evaluator else {}
    write_json(run_dir / "dev_metrics.json", dev_metrics)
    write_json(run_dir / "train_metrics.json", train_metrics)
    if not config.keep_checkpoints:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    extra = {"dev_metrics": dev_metrics, "eval_metric": config.eval_metric,
             "train_pairs": len(pairs), "leakage": leakage,
             "wall_time_s": round(time.perf_counter() - start, 3),
             "train_samples_per_second": train_metrics.get("train_samples_per_second"),
             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    return tuning.save_tuned(st, config.method_config, run_dir, base_model=base, extra=extra)


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


def _check_lengths(base: Path, config: TrainConfig) -> None:
    """Refuse lengths the encoder has no positions for (it would fail mid-training)."""
    from transformers import AutoConfig

    try:
        model = AutoConfig.from_pretrained(str(base))
    except (OSError, ValueError):
        return  # not a plain transformers folder: sentence-transformers checks it on load
    limit = getattr(model, "max_position_embeddings", None)
    if limit and model.model_type in ("xlm-roberta", "roberta", "camembert"):
        limit -= (model.pad_token_id or 0) + 1  # positions start after the padding index
    for key in ("query_max_length", "passage_max_length"):
        if limit and getattr(config, key) > limit:
            raise ConfigError(f"{key}={getattr(config, key)}: {base.name} encodes at most "
                              f"{limit} tokens")


def _readable(path: Path) -> bool:
    try:
        read_json(path)
        return True
    except (InputError, OSError):
        return False


def _resolve_model(model: str | None) -> Path:
    if model and Path(model).is_dir():
        return Path(model).resolve()
    from xlir.models import resolve_encoder

    return Path(resolve_encoder(model)).resolve()


def _check_same_config(run_dir: Path, config: TrainConfig) -> None:
    """A run folder belongs to one config: resuming or skipping it under another would mix
    or mislabel results. (MAD-X fills in its language-adapter paths itself: not compared.)
    A folder with nothing trained yet (a first attempt that failed early, say on a misspelt
    source) takes the new config."""
    path = run_dir / "train_config.json"
    trained = (is_complete(run_dir) or any((run_dir / "checkpoints").glob("checkpoint-*"))
               or (run_dir / "lang_adapters").is_dir())
    if not path.is_file() or not trained:
        return
    old, new = read_json(path), json.loads(json.dumps(config.to_dict()))
    for key, value in LEGACY_VALUES.items():
        old.setdefault(key, value)
    for d in (old, new):
        d.get("method_options", {}).pop("lang_adapters", None)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise ConfigError(f"{run_dir} was trained with another config (changed: "
                          f"{', '.join(changed)}); use another output folder or delete it")


# Options whose default changed when they were added: a run folder written before them was
# trained with the old behaviour, and is compared under it (so refused, not mixed).
LEGACY_VALUES = {"precision": "fp32"}


def _with_language_adapters(config: TrainConfig, base: Path, root: Path) -> TrainConfig:
    from xlir.tuning import train_language_adapter

    adapters = dict(config.method_config.lang_adapters)
    for lang in [config.method_config.source_lang, *config.madx_target_langs]:
        if lang not in adapters:
            texts = language_texts(lang)
            adapters[lang] = str(train_language_adapter(
                base, lang, texts, root / lang, steps=config.madx_mlm_steps, seed=config.seed))
    options = {**config.method_options, "lang_adapters": adapters}
    return dataclasses.replace(config, method_options=options)


def language_texts(lang: str) -> list[str]:
    """Raw sentences of `lang` for MLM: the SIB-200 (FLORES-200) train split."""
    from xlir.data.bitext import flores_sentences

    return list(flores_sentences(lang, "train").values())


def _load_model(base: Path, config: TrainConfig):
    from sentence_transformers import SentenceTransformer
    from transformers import set_seed

    from xlir import tuning

    set_seed(config.seed)  # the seed fixes the random init of adapters / LoRA matrices
    st = SentenceTransformer(str(base), device="cpu")
    st.max_seq_length = config.passage_max_length
    return tuning.apply_method(st, config.method_config)


def _load_sources(names: list[str], split: str) -> list[dict]:
    from xlir.data.tasks import load_pairs

    return [p for name in names for p in load_pairs(name, split)]


def _shuffle_cap(pairs: list[dict], cap: int | None, seed: int) -> list[dict]:
    import random

    if cap is None or len(pairs) <= cap:
        return list(pairs)
    return random.Random(seed).sample(pairs, cap)


def mine_hard_negatives(pairs: list[dict], k: int) -> list[list[str]]:
    """For each pair, the k passages of the pool that BM25 ranks highest for its query,
    excluding its own passage (by doc_id and by text). The pool: the pairs' passages. When
    fewer than k passages share a word with the query, the rest are the pool's first others."""
    import re

    import bm25s

    if not pairs:
        raise InputError("no training pairs")
    if k == 0:
        return [[] for _ in pairs]
    docs = {p["doc_id"]: passage_text(p) for p in pairs}
    ids, texts = list(docs), list(docs.values())
    if len(ids) <= k:
        raise InputError(f"{len(ids)} distinct passages cannot give {k} hard negatives per pair")
    tok = lambda s: re.findall(r"\w+", s.lower()) or ["<empty>"]  # noqa: E731
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


def build_evaluator(dev_pairs: list[dict], config: TrainConfig):
    """ST's InformationRetrievalEvaluator: dev queries against the pool of dev passages."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    queries = {str(p["qid"]): p["query"] for p in dev_pairs}
    corpus = {p["doc_id"]: passage_text(p) for p in dev_pairs}
    relevant: dict[str, set[str]] = {}
    for p in dev_pairs:
        relevant.setdefault(str(p["qid"]), set()).add(p["doc_id"])
    k = int(config.eval_metric.partition("@")[2])
    return InformationRetrievalEvaluator(
        queries, corpus, relevant, name="dev", score_functions=None, main_score_function="cosine",
        query_prompt_name="query", corpus_prompt_name="passage", show_progress_bar=False,
        mrr_at_k=[k], ndcg_at_k=[k], accuracy_at_k=[k], precision_recall_at_k=[k], map_at_k=[k],
        batch_size=32)


def evaluate_dev(st, evaluator) -> dict[str, float]:
    """Flat metric names ("ndcg@10") of the dev evaluator, model in eval mode."""
    st.eval()
    scores = evaluator(st)
    return {k.removeprefix("dev_cosine_"): float(v) for k, v in scores.items()
            if k.startswith("dev_cosine_")}


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


def _world_size() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun


def _trainer_class():
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainer

    return SentenceTransformerTrainer


class XlirTrainer(_trainer_class()):
    """Checkpoints hold the trainable tensors only; queries and passages get their own length."""

    lengths: dict[str, int] = {}

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        from safetensors.torch import save_file

        from xlir.tuning import trainable_state_dict

        out = Path(output_dir or self.args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file(trainable_state_dict(self.model), str(out / TRAINABLE_FILE))

    def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
        from xlir.storage import read_safetensors

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
