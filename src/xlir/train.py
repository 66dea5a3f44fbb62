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

Checkpoints hold only the trainable tensors (safetensors; xlir.trainer builds the dataset, the
loss and the trainer): sentence-transformers' own saving drops AdapterHub adapters and writes
peft models in a layout it cannot load back.

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

from xlir import tuning
from xlir.data.bitext import flores_sentences
from xlir.data.checks import drop_leaked, hold_out, normalise
from xlir.data.monolingual import evaluated_texts
from xlir.data.tasks import PAIR_SETS, is_pair_source, load_pairs
from xlir.encoder import passage_text  # train on the text the encoder encodes at inference
from xlir.errors import ConfigError
from xlir.malloc import MMAP_THRESHOLD_MAX, keep_freed_memory
from xlir.models import resolve_encoder
from xlir.storage import read_json, write_json
from xlir.trainer import (  # noqa: F401 (re-exported: the training API lives in one module)
    CHECKPOINT_FILES, TRAINABLE_FILE, XlirTrainer, build_dataset, build_loss, build_trainer,
    last_complete_checkpoint, mine_hard_negatives)

logger = logging.getLogger(__name__)

METRICS = ("ndcg", "mrr", "map", "accuracy", "precision", "recall")
HOLDOUT = "holdout"  # TrainConfig.dev: choose checkpoints on pairs held out of the train sources


@dataclass
class TrainConfig:
    model: str | None = None          # sentence-transformers folder; None: the packaged encoder
    method: str = "lora"              # a name of xlir.tuning.METHODS
    method_options: dict[str, Any] = field(default_factory=dict)  # that method's config
    train: list[str] = field(default_factory=lambda: ["tydi-en"])  # xlir.data.tasks.load_pairs
    # Where a checkpoint is chosen: a source's dev split ("tydi-en"); "holdout": pairs of the
    # train sources held out from training (whole passages, at most max_dev_pairs and a tenth;
    # for when the source's dev split is itself evaluated); None: no evaluation, the last model.
    dev: str | None = "tydi-en"
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
        self.method_config = tuning.method_config(self.method, self.method_options)
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
        for key, names in (("train", self.train), ("dev", [self.dev] if self.dev else [])):
            unknown = [n for n in names
                       if not is_pair_source(n) and not (key == "dev" and n == HOLDOUT)]
            if unknown:  # here, not after the model has loaded: a study checks it at its start
                raise ConfigError(f"{key}: {unknown[0]!r} is no pair set ({', '.join(PAIR_SETS)}"
                                  f"{', holdout' if key == 'dev' else ''}) and no BEIR folder")
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
    the counts go into the manifest as `leakage`. Dev pairs too (`dev_leakage`): a checkpoint is
    never chosen on an evaluated question or passage (with none left, the last model is kept).
    """
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
        config = _with_language_adapters(config, base, run_dir / "lang_adapters", evaluated_tasks)
    write_json(run_dir / "train_config.json", config.to_dict())
    st = _load_model(base, config)
    pairs = train_pairs if train_pairs is not None else _load_sources(config.train, "train")
    leakage = {}
    if evaluated_tasks:
        pairs, leakage = drop_leaked(pairs, evaluated_tasks)
    if dev_pairs is None and config.dev == HOLDOUT:  # before the cap: every seed holds out
        pairs, dev_pairs = hold_out(pairs, config.max_dev_pairs or 200, config.seed)
    elif dev_pairs is None and config.dev:
        dev_pairs = _load_sources([config.dev], "dev")
    dev_leakage = {}
    if evaluated_tasks and dev_pairs:  # nor choose a checkpoint on what an evaluated split judges
        dev_pairs, dev_leakage = drop_leaked(dev_pairs, evaluated_tasks)
        if not dev_pairs:
            logger.warning("every dev pair is judged by an evaluated split: no checkpoint is "
                           "chosen, the model at the end of training is kept")
    pairs = _shuffle_cap(pairs, config.max_pairs, config.seed)
    dev_pairs = _shuffle_cap(dev_pairs or [], config.max_dev_pairs, config.seed)
    evaluator = build_evaluator(dev_pairs, config) if dev_pairs else None
    train_metrics = {}
    if config.method != "frozen":
        if any(p.requires_grad and p.numel() * p.element_size() > MMAP_THRESHOLD_MAX
               for p in st.parameters()):  # e.g. full fine-tuning's 384 MB embedding gradient
            keep_freed_memory()
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
             "train_pairs": len(pairs), "dev_pairs": len(dev_pairs), "dev": config.dev,
             "leakage": leakage, "dev_leakage": dev_leakage,
             "wall_time_s": round(time.perf_counter() - start, 3),
             "train_samples_per_second": train_metrics.get("train_samples_per_second"),
             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    return tuning.save_tuned(st, config.method_config, run_dir, base_model=base, extra=extra)


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


def _resolve_model(model: str | None) -> Path:
    if model and Path(model).is_dir():
        return Path(model).resolve()

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


def _with_language_adapters(config: TrainConfig, base: Path, root: Path,
                            evaluated_tasks=None) -> TrainConfig:
    """MAD-X: train the language adapters the config lacks (source, targets) by MLM on their
    language's text minus every sentence an evaluated split holds as a query or passage; what
    was kept and dropped goes into each adapter's mlm.json."""
    adapters = dict(config.method_config.lang_adapters)
    missing = [lang for lang in [config.method_config.source_lang, *config.madx_target_langs]
               if lang not in adapters]
    exclude = evaluated_texts(evaluated_tasks.values()) if missing and evaluated_tasks else set()
    for lang in missing:
        texts = language_texts(lang)
        kept = [t for t in texts if normalise(t) not in exclude]
        info = {"sources": {"sib200-train": len(kept)},
                "dropped_as_evaluated": {"sib200-train": len(texts) - len(kept)}}
        adapters[lang] = str(tuning.train_language_adapter(
            base, lang, kept, root / lang, steps=config.madx_mlm_steps, seed=config.seed,
            info=info))
    options = {**config.method_options, "lang_adapters": adapters}
    return dataclasses.replace(config, method_options=options)


def language_texts(lang: str) -> list[str]:
    """Raw sentences of `lang` for MLM: the SIB-200 (FLORES-200) train split."""
    return list(flores_sentences(lang, "train").values())


def _load_model(base: Path, config: TrainConfig):
    from sentence_transformers import SentenceTransformer
    from transformers import set_seed

    set_seed(config.seed)  # the seed fixes the random init of adapters / LoRA matrices
    st = SentenceTransformer(str(base), device="cpu")
    st.max_seq_length = config.passage_max_length
    return tuning.apply_method(st, config.method_config)


def _load_sources(names: list[str], split: str) -> list[dict]:
    return [p for name in names for p in load_pairs(name, split)]


def _shuffle_cap(pairs: list[dict], cap: int | None, seed: int) -> list[dict]:
    import random

    if cap is None or len(pairs) <= cap:
        return list(pairs)
    return random.Random(seed).sample(pairs, cap)


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
