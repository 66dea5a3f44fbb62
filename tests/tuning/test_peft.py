"""The peft methods on the tiny encoder (exact LoRA size, pooling over the input's own mask,
merging) and the generator's LoRA on the tiny causal LM."""

from __future__ import annotations

import pytest
import torch
from tiny_tuning import encode, steps, tuned

from xlir import tuning
from xlir.errors import ConfigError
from xlir.tuning import peft

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_exact_lora_count_misses_the_pooler(tiny_st_encoder_dir):
    # r=8 on 6 linears (q, k, v, attention out 32x32; intermediate 32->64; output 64->32) x 2
    # layers: sum of r * (in + out) = 8 * (4*64 + 96 + 96) * 2 = 7168; the pooler is not hit.
    lora, _ = tuned(tiny_st_encoder_dir, "lora")
    assert tuning.count_parameters(lora)[0] == 7168
    assert not any("pooler" in n and "lora" in n for n, _ in lora.named_parameters())


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_pooling_uses_own_mask(tiny_st_encoder_dir, method):
    # The trap: a mask extended by the virtual tokens averages padding into short texts.
    st, _ = tuned(tiny_st_encoder_dir, method)
    st.eval()
    short = "where is the river"
    long = "Nairobi ni mji mkuu wa Kenya a poet from Lagos wrote the book in the year"
    alone = st.encode([short], convert_to_tensor=True)
    batched = st.encode([short, long], convert_to_tensor=True)
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


@pytest.mark.parametrize("method", [m for m in tuning.PEFT_METHODS if tuning.METHODS[m].mergeable])
def test_merge_equals_unmerged(tiny_st_encoder_dir, method):
    st, _ = tuned(tiny_st_encoder_dir, method)
    steps(st, 2, lr=1e-2)
    before = encode(st)
    merged = tuning.merge_peft(st)
    assert not any("lora" in n or "ia3" in n for n, _ in merged.named_parameters())
    assert torch.nn.functional.cosine_similarity(before, encode(merged)).min() >= 0.9999


def test_merge_refuses_prompt_learning(tiny_st_encoder_dir):
    with pytest.raises(ConfigError, match="only lora, dora and ia3"):
        tuning.merge_peft(tuned(tiny_st_encoder_dir, "prefix")[0])


def test_generator_lora_trains_only_lora_saves_loads_and_merges(tiny_causal_lm_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    def base():
        return AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir)

    torch.manual_seed(0)
    model = peft.lora_for_causal_lm(base(), r=4, alpha=8, targets=["q_proj", "v_proj"], dropout=0.0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(0.1)  # B starts at zero: make the adapter change the outputs
    ids = torch.tensor([[1, 5, 7, 9, 11]])
    expected = model(input_ids=ids).logits
    peft.save_lora(model, tmp_path / "adapter")
    fresh = peft.lora_for_causal_lm(base(), r=4, alpha=8, targets=["q_proj", "v_proj"], dropout=0.0)
    peft.load_lora_state(fresh, load_file(tmp_path / "adapter" / "adapter_model.safetensors"))
    merged = peft.merge_lora(base(), tmp_path / "adapter")
    assert torch.allclose(fresh(input_ids=ids).logits, expected, atol=1e-5)
    assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)
    assert not any("lora" in n for n, _ in merged.named_parameters())
