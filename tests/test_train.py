"""Training runs end to end on the tiny encoder: config checks, hard negatives, run folder,
skip when complete, resume after a kill."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from xlir.config import from_dict
from xlir.errors import ConfigError
from xlir.train import TrainConfig, build_dataset, build_trainer, mine_hard_negatives, train

TOPICS = ["river", "book", "war", "capital", "poet", "city", "year", "Kenya", "Lagos", "Kano",
          "Nairobi", "Najeriya"]


def make_pairs(n: int, offset: int = 0) -> list[dict]:
    out = []
    for i in range(offset, offset + n):
        a, b = TOPICS[i % 12], TOPICS[(i * 5 + 1) % 12]
        out.append({"qid": f"q{i}", "query": f"where is the {a} {i}", "query_lang": "eng",
                    "doc_id": f"d{i}", "title": a, "text": f"the {a} {i} runs through the {b}"})
    return out


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(model, **over) -> TrainConfig:
    base = dict(model=str(model), method="lora", max_steps=4, batch_size=4, lr=1e-3,
                eval_steps=2, logging_steps=1, query_max_length=16, passage_max_length=32,
                seed=3, batch_sampler="batch_sampler")
    return TrainConfig(**{**base, **over})


@pytest.mark.parametrize("over, message", [
    ({"lr": -1e-4}, "lr must be > 0"), ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"dev": "tydi-xx"}, "dev: 'tydi-xx' is no pair set"),
    ({"train": ["tydi-en", "afriqa"]}, "train: 'afriqa' is no pair set"),
    ({"temperature": 0.0}, "temperature"), ({"warmup_ratio": 1.0}, "warmup_ratio"),
    ({"epochs": 0, "max_steps": -1}, "epochs > 0 or max_steps"),
    ({"eval_metric": "ndcg"}, "eval_metric"), ({"eval_metric": "bleu@10"}, "eval_metric"),
    ({"train": []}, "at least one source"), ({"method": "lora", "method_options": {"r": 0}}, "r and alpha"),
    ({"hard_negatives": -1}, "hard_negatives"),
])
def test_config_validation(over, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**over)


def test_config_from_yaml_dict():
    cfg = from_dict(TrainConfig, {"method": "bottleneck", "method_options": {"variant": "double_seq_bn"},
                                  "lr": 1e-4, "loss": "cached_mnrl"})
    assert cfg.method_config.variant == "double_seq_bn" and cfg.loss == "cached_mnrl"
    with pytest.raises(ConfigError, match="loss"):
        from_dict(TrainConfig, {"loss": "triplet"})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(TrainConfig, {"learning_rate": 1e-4})


def test_hard_negatives_are_bm25_top_excluding_positive():
    pairs = [
        {"qid": "1", "query": "river city", "doc_id": "a", "title": "", "text": "the river city"},
        {"qid": "2", "query": "poet book", "doc_id": "b", "title": "", "text": "a poet wrote a book"},
        {"qid": "3", "query": "war year", "doc_id": "c", "title": "", "text": "the war year river"},
        {"qid": "4", "query": "poet river", "doc_id": "d", "title": "", "text": "book of the poet"},
    ]
    negs = mine_hard_negatives(pairs, 1)
    # q1 "river city": besides its own passage only c has "river". q2 "poet book": d has
    # both words. q3 "war year": no other passage shares a word: the first other one (a).
    # q4 "poet river": a, b, c each share one word of equal idf; the shortest, a, wins.
    assert negs == [["the war year river"], ["book of the poet"], ["the river city"],
                    ["the river city"]]
    data = build_dataset(pairs, 2)
    assert data.column_names == ["query", "positive", "negative_1", "negative_2"]
    assert all(n not in (p, m) for p, n, m in zip(data["positive"], data["negative_1"], data["negative_2"]))


def test_hard_negatives_split_words_as_bm25_does_so_vowel_signs_stay_inside_words():
    """Telugu "కోట" (fort) holds the vowel sign ో, which `\\w` does not match: split there,
    the query would become the one-letter fragments క and ట and find the passage of loose
    fragments; read whole (xlir.bm25.tokenize), it finds the passage with the word."""
    pairs = [
        {"qid": "1", "query": "కోట", "doc_id": "q", "title": "", "text": "కోట చరిత్ర"},
        {"qid": "2", "query": "నది", "doc_id": "w", "title": "", "text": "ఆ కోట పాతది"},
        {"qid": "3", "query": "పుస్తకం", "doc_id": "f", "title": "", "text": "క ట క ట క ట"},
    ]
    assert mine_hard_negatives(pairs, 1)[0] == ["ఆ కోట పాతది"]


def test_query_and_passage_lengths(tiny_st_encoder_dir):
    from sentence_transformers import SentenceTransformer

    cfg = config(tiny_st_encoder_dir, query_max_length=6, passage_max_length=12)
    st = SentenceTransformer(str(tiny_st_encoder_dir), device="cpu")
    long = "Nairobi ni mji mkuu wa Kenya a poet from Lagos wrote the book in the year"
    pairs = [{**p, "query": long, "text": long} for p in make_pairs(8)]
    trainer = build_trainer(st, cfg, pairs, None, tiny_st_encoder_dir / "unused")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    assert batch["query_input_ids"].shape[1] == 6
    assert batch["positive_input_ids"].shape[1] == 12
    assert batch["negative_1_input_ids"].shape[1] == 12


def test_training_uses_the_models_own_prefixes(tiny_st_encoder_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    cfg = config(tiny_st_encoder_dir, query_max_length=6, passage_max_length=12)
    st = SentenceTransformer(str(tiny_st_encoder_dir), device="cpu")
    e5 = build_trainer(st, cfg, make_pairs(8), None, tmp_path / "a")
    assert e5.args.prompts == {"query": "query: ", "positive": "passage: ",
                               "negative_1": "passage: "}
    st.prompts = {}  # a model without prompts must not be trained with E5's
    plain = build_trainer(st, cfg, make_pairs(8), None, tmp_path / "b")
    assert plain.args.prompts == {"query": "", "positive": "", "negative_1": ""}
    assert plain.lengths == {"": 12}


def test_mixed_precision_is_the_default_and_fp32_one_option_away(tiny_st_encoder_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tiny_st_encoder_dir), device="cpu")
    assert TrainConfig().precision == "bf16"
    bf16 = build_trainer(st, config(tiny_st_encoder_dir), make_pairs(8), None, tmp_path / "a")
    fp32 = build_trainer(st, config(tiny_st_encoder_dir, precision="fp32"), make_pairs(8), None,
                         tmp_path / "b")
    assert bf16.args.bf16 and not fp32.args.bf16
    with pytest.raises(ConfigError, match="precision"):
        from_dict(TrainConfig, {"precision": "fp16"})


def test_a_run_folder_from_before_precision_is_compared_as_fp32(tiny_st_encoder_dir, tmp_path):
    cfg = config(tiny_st_encoder_dir, precision="fp32")
    run = tmp_path / "run"
    train(cfg, run, train_pairs=make_pairs(16), dev_pairs=[])
    old = json.loads((run / "train_config.json").read_text())
    del old["precision"]  # as written before the option existed: trained in fp32
    (run / "train_config.json").write_text(json.dumps(old))
    assert train(cfg, run, train_pairs=[], dev_pairs=[])["method"] == "lora"  # same: skipped
    with pytest.raises(ConfigError, match=r"another config \(changed: precision\)"):
        train(config(tiny_st_encoder_dir), run, train_pairs=[], dev_pairs=[])


def test_run_folder_and_skip(tiny_st_encoder_dir, tmp_path):
    cfg = config(tiny_st_encoder_dir)
    summary = train(cfg, tmp_path / "run", train_pairs=make_pairs(16), dev_pairs=make_pairs(8, 16))
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "adapter", "dev_metrics.json", "train_config.json", "train_metrics.json", "xlir-model.json"]
    dev = json.loads((run / "dev_metrics.json").read_text())
    assert set(dev) == {"ndcg@10", "mrr@10", "map@10", "accuracy@10", "precision@10", "recall@10"}
    assert summary["dev_metrics"] == dev and summary["train_pairs"] == 16
    assert summary["trainable_params"] == 7168 and summary["peak_rss_mb"] > 0
    logged = json.loads((run / "train_metrics.json").read_text())
    assert [e["step"] for e in logged["log_history"] if "loss" in e] == [1, 2, 3, 4]
    assert json.loads((run / "train_config.json").read_text())["method"] == "lora"
    stamp = (run / "xlir-model.json").stat().st_mtime_ns
    assert train(cfg, run, train_pairs=[], dev_pairs=[]) == summary  # complete: not trained again
    assert (run / "xlir-model.json").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match=r"another config \(changed: lr, max_steps\)"):
        train(config(tiny_st_encoder_dir, lr=5e-4, max_steps=2), run, train_pairs=[], dev_pairs=[])
    assert (run / "xlir-model.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("method", ["lora", "bottleneck", "full"])
def test_resume_after_kill_matches_uninterrupted(tiny_st_encoder_dir, tmp_path, method):
    from safetensors.torch import load_file, save_file
    from sentence_transformers import SentenceTransformer

    from xlir.train import TRAINABLE_FILE
    from xlir.tuning import load_tuned

    cfg = config(tiny_st_encoder_dir, method=method, keep_checkpoints=True, load_best=False)
    pairs, dev = make_pairs(16), make_pairs(8, 16)
    train(cfg, tmp_path / "a", train_pairs=pairs, dev_pairs=dev)
    train(cfg, tmp_path / "b", train_pairs=pairs, dev_pairs=dev)
    b = tmp_path / "b"
    # xlir.checkpoints' convention: tensors in safetensors, the rest JSON, no torch pickle
    assert sorted(p.name for p in (b / "checkpoints" / "checkpoint-2").iterdir()) == [
        "trainer_state.json", "xlir-optimizer.json", "xlir-optimizer.safetensors",
        "xlir-rng.json", "xlir-rng.safetensors", "xlir-trainable.safetensors"]
    kill(b)
    train(cfg, b, train_pairs=pairs, dev_pairs=dev)
    log = json.loads((b / "train_metrics.json").read_text())["log_history"]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4]
    texts = ["where is the river", "the book was written by a poet"]
    ea, eb = (load_tuned(tmp_path / r).encode(texts, convert_to_tensor=True) for r in "ab")
    assert torch.allclose(ea, eb, atol=1e-6)
    base = SentenceTransformer(str(tiny_st_encoder_dir), device="cpu").eval()
    assert not torch.allclose(ea, base.encode(texts, convert_to_tensor=True), atol=1e-4)
    # And the resumed run really read the step-2 checkpoint: spoil it and the result changes.
    kill(b)
    spoiled = b / "checkpoints" / "checkpoint-2" / TRAINABLE_FILE
    save_file({k: v + 0.5 for k, v in load_file(str(spoiled)).items()}, str(spoiled))
    train(cfg, b, train_pairs=pairs, dev_pairs=dev)
    eb = load_tuned(b).encode(texts, convert_to_tensor=True)
    assert not torch.allclose(ea, eb, atol=1e-4)


def test_a_checkpoint_in_transformers_own_files_still_resumes(tiny_st_encoder_dir, tmp_path):
    """Checkpoints written before xlir saved optimizer and random state itself (optimizer.pt,
    scheduler.pt, rng_state.pth) resume to the same model, read by transformers as before."""
    import random

    import numpy as np

    from xlir.trainer import OPTIMIZER_FILE, OPTIMIZER_STATE
    from xlir.tuning import load_tuned

    cfg = config(tiny_st_encoder_dir, keep_checkpoints=True, load_best=False)
    pairs, dev = make_pairs(16), make_pairs(8, 16)
    train(cfg, tmp_path / "a", train_pairs=pairs, dev_pairs=dev)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    b = tmp_path / "b"
    kill(b)
    old = b / "checkpoints" / "checkpoint-2"
    from safetensors.torch import load_file

    from xlir.storage import read_json

    meta = read_json(old / OPTIMIZER_STATE)
    tensors = load_file(str(old / OPTIMIZER_FILE))
    state: dict = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    torch.save({"state": state, "param_groups": meta["param_groups"]}, old / "optimizer.pt")
    torch.save(meta["scheduler"], old / "scheduler.pt")
    rng = load_file(str(old / "xlir-rng.safetensors"))
    saved = read_json(old / "xlir-rng.json")
    version, py, gauss = saved["python"]
    kind, keys, pos, has_gauss, cached = saved["numpy"]
    torch.save({"python": (version, tuple(py), gauss),
                "numpy": (kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached),
                "cpu": rng["cpu"]}, old / "rng_state.pth")
    for name in (OPTIMIZER_FILE, OPTIMIZER_STATE, "xlir-rng.safetensors", "xlir-rng.json"):
        (old / name).unlink()
    random.seed(0)  # whatever state the process is in: the checkpoint's is restored
    train(cfg, b, train_pairs=pairs, dev_pairs=dev)
    texts = ["where is the river", "the book was written by a poet"]
    ea, eb = (load_tuned(tmp_path / r).encode(texts, convert_to_tensor=True) for r in "ab")
    assert torch.allclose(ea, eb, atol=1e-6)


def kill(run):
    """What a kill after the step-2 checkpoint leaves: no step-4 checkpoint, no final model."""
    shutil.rmtree(run / "checkpoints" / "checkpoint-4")
    (run / "xlir-model.json").unlink()
    for name in ("adapter", "adapters", "model.safetensors"):
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def test_a_first_attempt_that_failed_early_does_not_lock_its_config(tiny_st_encoder_dir, tmp_path):
    from xlir.errors import XlirError

    run, empty = tmp_path / "run", tmp_path / "nosuchsource"
    empty.mkdir()  # a folder without BEIR files: fails while reading, after train_config.json
    with pytest.raises(XlirError, match="nosuchsource"):
        train(config(tiny_st_encoder_dir, train=[str(empty)]), run)
    assert (run / "train_config.json").is_file()
    train(config(tiny_st_encoder_dir, max_steps=1), run, train_pairs=make_pairs(8), dev_pairs=[])
    assert json.loads((run / "train_config.json").read_text())["max_steps"] == 1


@pytest.mark.parametrize("key", ["query_max_length", "passage_max_length"])
def test_lengths_beyond_the_models_positions_are_refused_before_anything_is_written(
        tiny_st_encoder_dir, tmp_path, key):
    from transformers import AutoConfig

    model = AutoConfig.from_pretrained(str(tiny_st_encoder_dir))
    limit = model.max_position_embeddings - model.pad_token_id - 1  # XLM-R: after the padding index
    with pytest.raises(ConfigError, match=rf"{key}={limit + 1}: .* encodes at most {limit} tokens"):
        train(config(tiny_st_encoder_dir, **{key: limit + 1}), tmp_path / "run",
              train_pairs=make_pairs(8), dev_pairs=[])
    assert not (tmp_path / "run").exists()


def test_a_torn_checkpoint_is_removed_and_the_one_before_used(tmp_path):
    from xlir.train import CHECKPOINT_FILES, last_complete_checkpoint

    folder = tmp_path / "checkpoints"
    for step in (2, 4, 6, 10):
        for name in CHECKPOINT_FILES:
            (folder / f"checkpoint-{step}").mkdir(parents=True, exist_ok=True)
            (folder / f"checkpoint-{step}" / name).write_text("{}")
    (folder / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    (folder / "checkpoint-10" / "trainer_state.json").unlink()  # killed before the state
    (folder / "checkpoint-x").mkdir()  # not a trainer checkpoint: left alone
    assert last_complete_checkpoint(folder) == folder / "checkpoint-4"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-2", "checkpoint-4", "checkpoint-x"]
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_frozen_evaluates_without_training(tiny_st_encoder_dir, tmp_path):
    summary = train(config(tiny_st_encoder_dir, method="frozen"), tmp_path / "f",
                    train_pairs=make_pairs(8), dev_pairs=make_pairs(8, 16))
    assert summary["trainable_params"] == 0 and summary["saved_bytes"] == 0
    assert 0.0 < summary["dev_metrics"]["ndcg@10"] <= 1.0
    assert not (tmp_path / "f" / "checkpoints").exists()


def test_cached_mnrl_and_best_checkpoint(tiny_st_encoder_dir, tmp_path):
    cfg = config(tiny_st_encoder_dir, loss="cached_mnrl", mini_batch_size=2, hard_negatives=2,
                 method="bitfit", lr=1e-2)
    summary = train(cfg, tmp_path / "c", train_pairs=make_pairs(16), dev_pairs=make_pairs(8, 16))
    log = json.loads((tmp_path / "c" / "train_metrics.json").read_text())["log_history"]
    evals = {e["step"]: e["eval_dev_cosine_ndcg@10"] for e in log if "eval_dev_cosine_ndcg@10" in e}
    assert sorted(evals) == [2, 4]
    # load_best: the final model is the best checkpoint's, so its dev score is the best one.
    assert summary["dev_metrics"]["ndcg@10"] == pytest.approx(max(evals.values()), abs=1e-9)


def _task_of(pairs: list[dict]):
    from xlir.data.task import Task

    return Task("evaluated", "test", {p["doc_id"]: {"title": p["title"], "text": p["text"]}
                                      for p in pairs},
                {p["qid"]: p["query"] for p in pairs}, {p["qid"]: {p["doc_id"]: 1} for p in pairs},
                {p["qid"]: p["query_lang"] for p in pairs}, {p["doc_id"]: "eng" for p in pairs})


def test_no_checkpoint_is_chosen_on_what_an_evaluated_split_judges(tiny_st_encoder_dir, tmp_path):
    """Dev pairs an evaluated task judges are dropped like training pairs (the study passes
    every evaluated task); with none left, no checkpoint is chosen and the last model kept."""
    dev = make_pairs(8, 16)
    cfg = config(tiny_st_encoder_dir, method="bitfit", lr=1e-2)
    summary = train(cfg, tmp_path / "half", train_pairs=make_pairs(16), dev_pairs=dev,
                    evaluated_tasks={"ev": _task_of(dev[:3])})
    assert summary["dev_leakage"]["pairs"]["eng"]["dropped"] == 3
    assert summary["dev_leakage"]["pairs"]["eng"]["pairs"] == 8
    assert 0.0 < summary["dev_metrics"]["ndcg@10"] <= 1.0  # chosen on the five others
    summary = train(cfg, tmp_path / "all", train_pairs=make_pairs(16), dev_pairs=dev,
                    evaluated_tasks={"ev": _task_of(dev)})
    assert summary["dev_leakage"]["pairs"]["eng"]["dropped"] == 8 and summary["dev_metrics"] == {}
    log = json.loads((tmp_path / "all" / "train_metrics.json").read_text())["log_history"]
    assert not [e for e in log if any(k.startswith("eval_") for k in e)]


def test_a_checkpoint_can_be_chosen_on_pairs_held_out_of_the_train_split(tiny_st_encoder_dir,
                                                                       tmp_path):
    """dev: holdout, for when a source's dev split is itself evaluated: a tenth of the train
    pairs (whole passages, at most max_dev_pairs) never trains and chooses the checkpoint."""
    from xlir.data.checks import hold_out

    pairs = make_pairs(40)
    cfg = config(tiny_st_encoder_dir, dev="holdout", max_dev_pairs=3)
    summary = train(cfg, tmp_path / "run", train_pairs=pairs)
    assert (summary["dev"], summary["dev_pairs"], summary["train_pairs"]) == ("holdout", 3, 37)
    assert 0.0 < summary["dev_metrics"]["ndcg@10"] <= 1.0
    kept, held = hold_out(pairs, 3, cfg.seed)
    assert len(held) == 3 and not {p["text"] for p in held} & {p["text"] for p in kept}
    assert hold_out(pairs, 3, cfg.seed) == (kept, held)  # seeded
    log = json.loads((tmp_path / "run" / "train_metrics.json").read_text())["log_history"]
    assert [e["step"] for e in log if "eval_dev_cosine_ndcg@10" in e] == [2, 4]


def test_cli_train_config_and_errors(tmp_path, capsys):
    from xlir.cli import main
    from xlir.config import load_yaml

    repo_config = load_yaml("configs/train.yaml")
    assert from_dict(TrainConfig, repo_config).method == "lora"
    assert main(["train", "--config", "configs/train.yaml", "lr=-1", "--out", str(tmp_path)]) == 2
    assert "lr must be > 0" in capsys.readouterr().err


@pytest.mark.real
@pytest.mark.parametrize("method", ["lora", "full"])
def test_real_encoder_tydi_english(tmp_path, method):
    """The packaged multilingual-e5-small, 3 steps of 8 real TyDi English pairs."""
    from xlir.models import prepare_encoder
    from xlir.tuning import load_tuned

    cfg = TrainConfig(model=str(prepare_encoder()), method=method, max_steps=3, batch_size=8,
                      max_pairs=24, max_dev_pairs=16, lr=1e-4 if method == "lora" else 2e-5,
                      query_max_length=32, passage_max_length=128, eval_steps=3, logging_steps=1,
                      batch_sampler="batch_sampler")  # no_duplicates drops most of 24 pairs
    summary = train(cfg, tmp_path / method)
    # LoRA r=8: 12 layers x 8 x (4 x (384+384) + 2 x (384+1536)) = 663,552; no pooler.
    trainable = {"lora": 663_552, "full": 117_653_760}[method]
    assert summary["trainable_params"] == trainable and summary["train_pairs"] == 24
    assert 0.3 < summary["dev_metrics"]["ndcg@10"] <= 1.0  # 16 queries vs 16 passages
    log = json.loads((tmp_path / method / "train_metrics.json").read_text())["log_history"]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3]
    st = load_tuned(tmp_path / method)
    emb = st.encode(["Where is Nairobi?"], prompt_name="query")
    assert emb.shape == (1, 384)


def test_madx_trains_language_adapters(tiny_st_encoder_dir, tmp_path, monkeypatch):
    from xlir import train as train_module
    from xlir.tuning import load_tuned

    texts = {"eng": ["where is the river", "the book was written by a poet"],
             "swa": ["Nairobi ni mji mkuu wa Kenya", "Kano birni ne a Najeriya"]}
    monkeypatch.setattr(train_module, "language_texts", lambda lang: texts[lang])
    from xlir.data.task import Task

    # An evaluated split holding one of the English sentences (as a query): MLM never reads it.
    evaluated = Task("t", "test", {"d": {"title": "", "text": "a passage"}},
                     {"q": "Where is the river?"}, {"q": {"d": 1}}, {"q": "eng_Latn"},
                     {"d": "eng_Latn"})
    cfg = config(tiny_st_encoder_dir, method="madx", madx_target_langs=["swa"], madx_mlm_steps=2)
    summary = train(cfg, tmp_path / "m", train_pairs=make_pairs(16), dev_pairs=make_pairs(8, 16),
                    evaluated_tasks={"t": evaluated})
    run = tmp_path / "m"
    assert sorted(summary["method_config"]["lang_adapters"]) == ["eng", "swa"]
    assert (run / "lang_adapters" / "swa" / "adapter_config.json").is_file()
    mlm = {lang: json.loads((run / "lang_adapters" / lang / "mlm.json").read_text())
           for lang in ("eng", "swa")}
    assert mlm["eng"]["texts"] == 1 and mlm["eng"]["dropped_as_evaluated"] == {"sib200-train": 1}
    assert mlm["swa"]["texts"] == 2 and mlm["swa"]["dropped_as_evaluated"] == {"sib200-train": 0}
    assert sorted(p.name for p in (run / "adapters").iterdir()) == ["eng", "task"]
    swapped = load_tuned(run, madx_lang="swa")
    assert str(swapped[0].model.active_adapters) == "Stack[swa, task]"


@pytest.mark.real
def test_sib200_texts_for_language_adapters(shared_dir):
    from xlir.train import language_texts

    english = language_texts("eng_Latn")
    assert len(english) == 701 and english[0].startswith("Turkey is encircled by seas")


def test_freed_memory_is_kept_only_where_a_trainable_tensor_would_be_mmapped(
        tiny_st_encoder_dir, tmp_path, monkeypatch):
    """xlir.malloc pays (in memory) only for gradients above glibc's mmap threshold: the tiny
    model's tensors are all below it; with the threshold at 0 every trainable one is above."""
    import xlir.train

    calls = []
    monkeypatch.setattr(xlir.train, "keep_freed_memory", lambda: calls.append(1) or True)
    train(config(tiny_st_encoder_dir, max_steps=1), tmp_path / "a", train_pairs=make_pairs(8),
          dev_pairs=[])
    assert calls == []
    monkeypatch.setattr(xlir.train, "MMAP_THRESHOLD_MAX", 0)
    train(config(tiny_st_encoder_dir, max_steps=1), tmp_path / "b", train_pairs=make_pairs(8),
          dev_pairs=[])
    assert calls == [1]
