"""The peft methods on the tiny encoder: exact LoRA size, pooling over the input's own mask,
merging."""

from __future__ import annotations

import pytest
import torch
from tiny_tuning import encode, steps, tuned

from xlir import tuning
from xlir.errors import ConfigError

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

