"""Shared test fixtures. Offline by construction: the HF offline variables are set before
anything can import transformers, and every model here is built in the test session, saved to
a temp folder and loaded back through `from_pretrained(path)`.

Markers: tests marked `real` use the real packaged models (after `xlir models prepare`) and the
mirrored data in ../shared/data/mirror; both kinds run in CI.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
if not os.environ.get("XLIR_DATA_MIRROR") and (SHARED / "data" / "mirror").is_dir():
    os.environ["XLIR_DATA_MIRROR"] = str(SHARED / "data" / "mirror")

# Words the tiny tokenizer knows; every test text should draw from them.
TINY_TEXTS = [
    "query: where is the river", "passage: the river runs through the city",
    "query: who wrote the book", "passage: the book was written by a poet",
    "query: when did the war end", "passage: the war ended in the year",
    "Kano birni ne a Najeriya", "Ilu Eko wa ni Naijiria", "Nairobi ni mji mkuu wa Kenya",
    "the capital of Kenya is Nairobi", "a poet from Lagos wrote the book",
    "Generate a Hausa question for this passage", "Question: what is the capital",
]


def _tiny_tokenizer(model_input_names=("input_ids", "attention_mask")):
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "</s>", "<unk>", "<mask>"]
    tok = SentencePieceUnigramTokenizer()
    tok.train_from_iterator(TINY_TEXTS * 4, vocab_size=200, special_tokens=special,
                            unk_token="<unk>", show_progress=False)
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_input_names=list(model_input_names), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
        model_max_length=64)


@pytest.fixture(scope="session")
def tiny_hf_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer XLM-R-style encoder (hidden 32) + tokenizer, saved as a Hugging Face folder."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    path = tmp_path_factory.mktemp("tiny-xlmr")
    tokenizer = _tiny_tokenizer()
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=72, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_st_encoder_dir(tiny_hf_encoder_dir, tmp_path_factory) -> Path:
    """The tiny encoder as a sentence-transformers folder: mean pooling, L2 norm, E5 prefixes."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    path = tmp_path_factory.mktemp("tiny-st")
    word = Transformer(str(tiny_hf_encoder_dir), max_seq_length=64)
    pool = Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    st = SentenceTransformer(modules=[word, pool, Normalize()], device="cpu",
                             prompts={"query": "query: ", "passage": "passage: "})
    st.save(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_causal_lm_dir(tmp_path_factory) -> Path:
    """A 2-layer Gemma-3-style causal LM (hidden 32) + tokenizer, saved as a HF folder."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    path = tmp_path_factory.mktemp("tiny-gemma")
    tokenizer = _tiny_tokenizer()
    tokenizer.padding_side = "left"  # decoder-only: pad on the left for batched generation
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
        sliding_window=128, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    Gemma3ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny-model tests run faster on one thread: on a loaded 2-core machine two torch
    threads spin against each other (measured: a tiny training step 100x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_texts() -> list[str]:
    """Texts drawn from the tiny tokenizer's training vocabulary."""
    return list(TINY_TEXTS)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the repository")
    return SHARED
