"""Export: merged folders load in plain sentence-transformers and encode like the run's model;
non-mergeable methods export base + adapter + manifest that xlir.tuning loads; either kind loads
without a warning (the false "incorrect regex pattern" one included) and keeps the exact ids."""

from __future__ import annotations

import json

import pytest
import torch

from test_models import nothing_said, read_fixture

from xlir import models, tuning
from xlir.errors import InputError
from xlir.export import EXPORT_INFO, export

TEXTS = ["where is the river", "Nairobi ni mji mkuu wa Kenya a poet from Lagos wrote the book"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def trained_run(model_dir, method, path):
    """A run folder as train() leaves it, with trainable weights moved off their init."""
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    cfg = tuning.method_config(method)
    st = tuning.apply_method(SentenceTransformer(str(model_dir), device="cpu"), cfg)
    with torch.no_grad():
        for p in st.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    (path / "checkpoints").mkdir(parents=True)  # leftovers that must not be exported
    tuning.save_tuned(st, cfg, path)
    return path


@pytest.mark.parametrize("method", list(tuning.METHODS))
def test_export_encodes_like_run(tiny_st_encoder_dir, tmp_path, method):
    from sentence_transformers import SentenceTransformer

    run = trained_run(tiny_st_encoder_dir, method, tmp_path / "run")
    info = export(run, tmp_path / "out")
    out = tmp_path / "out"
    assert info["merged"] == (method in tuning.MERGEABLE)
    assert json.loads((out / EXPORT_INFO).read_text())["method"] == method
    before = tuning.load_tuned(run).encode(TEXTS, convert_to_tensor=True)
    if info["merged"]:
        assert not (out / tuning.MANIFEST).exists()
        loaded = SentenceTransformer(str(out), device="cpu")  # no xlir, no peft needed
        assert not any("lora" in n or "ia3" in n for n, _ in loaded.named_parameters())
    else:
        assert "cannot be merged" in info["note"]
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["adapter" if method in tuning.PEFT_METHODS else "adapters", "base", EXPORT_INFO,
             tuning.MANIFEST])
        assert json.loads((out / tuning.MANIFEST).read_text())["base_model"] == "base"
        loaded = tuning.load_tuned(out)
    after = loaded.encode(TEXTS, convert_to_tensor=True)
    assert torch.nn.functional.cosine_similarity(before, after).min() >= 0.9999


def test_exported_folder_moves_with_its_base(tiny_st_encoder_dir, tmp_path):
    import shutil

    run = trained_run(tiny_st_encoder_dir, "bottleneck", tmp_path / "run")
    export(run, tmp_path / "out")
    shutil.move(tmp_path / "out", tmp_path / "moved")
    before = tuning.load_tuned(run).encode(TEXTS, convert_to_tensor=True)
    after = tuning.load_tuned(tmp_path / "moved").encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(before, after, atol=1e-6)


def test_export_refuses_incomplete_run(tmp_path):
    with pytest.raises(InputError, match="not a complete training run"):
        export(tmp_path, tmp_path / "out")


def test_cli_export(tiny_st_encoder_dir, tmp_path, capsys):
    from xlir.cli import main

    run = trained_run(tiny_st_encoder_dir, "lora", tmp_path / "run")
    assert main(["export", str(run), "--out", str(tmp_path / "out")]) == 0
    assert "lora: plain weights" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 2


@pytest.fixture(scope="module")
def xlmr_vocab_st_dir(tmp_path_factory):
    """A tiny BERT (hidden 16) behind the real multilingual-e5-small tokenizer (250,002 pieces,
    large enough for transformers' regex check), saved by plain transformers 4.57.6 as a
    sentence-transformers folder: a base that trips the check, like one prepared by an older xlir."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, XLMRobertaTokenizerFast

    hf_dir, path = tmp_path_factory.mktemp("xlmr-vocab-hf"), tmp_path_factory.mktemp("xlmr-vocab-st")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=250037, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, pad_token_id=1,
                        tokenizer_class="XLMRobertaTokenizer")
    BertModel(config, add_pooling_layer=False).save_pretrained(hf_dir)
    XLMRobertaTokenizerFast(tokenizer_file=str(models.e5_tokenizer_file()),
                            model_max_length=512).save_pretrained(hf_dir)
    word = Transformer(str(hf_dir), max_seq_length=128)
    st = SentenceTransformer(modules=[word, Pooling(16, pooling_mode="mean"), Normalize()],
                             device="cpu", prompts=dict(models.E5_PROMPTS))
    st.save(str(path))
    assert models.trips_tokenizer_check(json.loads((path / "config.json").read_text()))
    return path


def assert_fixture_ids(tokenizer, shared_dir):
    for row in read_fixture(shared_dir, "me5-small.tokenizer-reference.jsonl"):
        assert tokenizer(row["text"])["input_ids"] == row["ids"], row["lang"]


@pytest.mark.parametrize("method", ["full", "lora", "bottleneck"])
def test_export_loads_without_a_warning(xlmr_vocab_st_dir, tmp_path, shared_dir, method):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    run = trained_run(xlmr_vocab_st_dir, method, tmp_path / "run")
    info = export(run, tmp_path / "out")
    # A merged export is the model; an unmerged one holds its base as a plain folder.
    folder = tmp_path / "out" if info["merged"] else tmp_path / "out" / "base"
    with nothing_said():
        tokenizers = [AutoTokenizer.from_pretrained(folder),
                      SentenceTransformer(str(folder), device="cpu").tokenizer]
    if not info["merged"]:
        tokenizers.append(tuning.load_tuned(tmp_path / "out").tokenizer)
    for tokenizer in tokenizers:
        assert_fixture_ids(tokenizer, shared_dir)


@pytest.mark.real
def test_real_export_loads_without_a_warning(tmp_path, shared_dir):
    from sentence_transformers import SentenceTransformer

    run = trained_run(models.prepare_encoder(), "lora", tmp_path / "run")
    export(run, tmp_path / "out")
    with nothing_said():  # what a user's own code sees
        loaded = SentenceTransformer(str(tmp_path / "out"), device="cpu")
    assert_fixture_ids(loaded.tokenizer, shared_dir)


@pytest.mark.parametrize("method", ["full", "bitfit"])
def test_a_whole_model_run_folder_loads_without_a_warning(xlmr_vocab_st_dir, tmp_path, shared_dir,
                                                          method):
    from sentence_transformers import SentenceTransformer

    run = trained_run(xlmr_vocab_st_dir, method, tmp_path / "run")  # the model is the run folder
    with nothing_said():
        loaded = SentenceTransformer(str(run), device="cpu")
    assert_fixture_ids(loaded.tokenizer, shared_dir)
