"""Every tuning method through the same checks, on the tiny encoder built in conftest."""

from __future__ import annotations

import pytest
import torch

from xlir import tuning
from xlir.errors import ConfigError

METHODS = list(tuning.METHODS)
QUERIES = ["where is the river", "who wrote the book", "when did the war end", "what is the capital"]
PASSAGES = ["the river runs through the city", "the book was written by a poet",
            "the war ended in the year", "Nairobi ni mji mkuu wa Kenya"]
# Per-method learning rates that move the tiny model in 5 steps (prompt tuning barely moves).
LR = {"ia3": 0.1, "prompt": 0.05, "prefix": 0.1, "bitfit": 0.02}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def load(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def tuned(path, method, seed=0, **options):
    torch.manual_seed(seed)
    cfg = tuning.method_config(method, options)
    return tuning.apply_method(load(path), cfg), cfg


def encode(st, texts=QUERIES + ["Nairobi ni mji mkuu wa Kenya a poet from Lagos wrote the book"]):
    st.eval()
    return st.encode(texts, convert_to_tensor=True, prompt_name="query")


def mnrl_loss(st):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    loss = MultipleNegativesRankingLoss(st)
    features = [st.preprocess(QUERIES, prompt="query: "), st.preprocess(PASSAGES, prompt="passage: ")]
    return loss(features, None)


def steps(st, n, lr):
    params = [p for p in st.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=lr)
    st.train()
    losses = []
    for _ in range(n):
        loss = mnrl_loss(st)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("method", METHODS)
def test_trainable_counts(tiny_st_encoder_dir, method):
    st, _ = tuned(tiny_st_encoder_dir, method)
    trainable, total = tuning.count_parameters(st)
    base_total = sum(p.numel() for p in load(tiny_st_encoder_dir).parameters())
    assert total >= base_total
    if method == "full":
        assert trainable == total == base_total
    elif method == "frozen":
        assert trainable == 0 and total == base_total
    else:
        assert 0 < trainable < total


def test_exact_counts_bitfit_and_lora(tiny_st_encoder_dir):
    base = load(tiny_st_encoder_dir)
    biases = sum(p.numel() for n, p in base.named_parameters() if n.endswith("bias"))
    assert tuning.count_parameters(tuned(tiny_st_encoder_dir, "bitfit")[0])[0] == biases
    # r=8 on 6 linears (q, k, v, attention out 32x32; intermediate 32->64; output 64->32) x 2
    # layers: sum of r * (in + out) = 8 * (4*64 + 96 + 96) * 2 = 7168; the pooler is not hit.
    lora, _ = tuned(tiny_st_encoder_dir, "lora")
    assert tuning.count_parameters(lora)[0] == 7168
    assert not any("pooler" in n and "lora" in n for n, _ in lora.named_parameters())


@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("full", "bitfit", "frozen")])
def test_base_weights_unchanged_after_step(tiny_st_encoder_dir, method):
    st, _ = tuned(tiny_st_encoder_dir, method)
    frozen = {n: p.detach().clone() for n, p in st.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in st.named_parameters() if p.requires_grad}
    steps(st, 1, lr=1e-2)
    named = dict(st.named_parameters())
    assert all(torch.equal(named[n], t) for n, t in frozen.items())
    assert any(not torch.equal(named[n], t) for n, t in trainable.items())
    base_numel = sum(p.numel() for p in load(tiny_st_encoder_dir).parameters())
    assert sum(t.numel() for t in frozen.values()) >= base_numel


@pytest.mark.parametrize("method", METHODS)
def test_save_load_identical(tiny_st_encoder_dir, tmp_path, method):
    st, cfg = tuned(tiny_st_encoder_dir, method)
    if method != "frozen":
        steps(st, 2, lr=1e-2)
    before = encode(st)
    manifest = tuning.save_tuned(st, cfg, tmp_path / method)
    after = encode(tuning.load_tuned(tmp_path / method))
    assert torch.allclose(before, after, atol=1e-6)
    assert manifest["method"] == method
    assert manifest["base_model"] == str(tiny_st_encoder_dir.resolve())
    assert (manifest["trainable_params"], manifest["total_params"]) == tuning.count_parameters(st)
    files = [f for f in (tmp_path / method).rglob("*") if f.is_file() and f.name != tuning.MANIFEST]
    assert manifest["saved_bytes"] == sum(f.stat().st_size for f in files)
    if method not in ("full", "bitfit"):  # adapters only: no copy of the base weights
        assert not (tmp_path / method / "model.safetensors").exists()


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


@pytest.mark.parametrize("method", [m for m in METHODS if m != "frozen"])
def test_steps_lower_loss(tiny_st_encoder_dir, method):
    st, _ = tuned(tiny_st_encoder_dir, method)
    st.eval()  # measured without dropout, on the batch it trains on
    with torch.no_grad():
        before = mnrl_loss(st).item()
    steps(st, 5, lr=LR.get(method, 5e-3))
    st.eval()
    with torch.no_grad():
        after = mnrl_loss(st).item()
    assert after < before - 1e-4


@pytest.mark.parametrize("method", ["lora", "dora", "ia3"])
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


def test_madx_language_adapter_swap(tiny_st_encoder_dir, tmp_path):
    texts = ["where is the river", "the capital of Kenya is Nairobi"]
    swa = ["Nairobi ni mji mkuu wa Kenya", "Kano birni ne a Najeriya"]
    eng = tuning.train_language_adapter(tiny_st_encoder_dir, "eng", texts, tmp_path / "eng",
                                        steps=3, batch_size=2)
    sw = tuning.train_language_adapter(tiny_st_encoder_dir, "swa", swa, tmp_path / "swa",
                                       steps=3, batch_size=2, seed=1)
    assert sorted(p.name for p in eng.iterdir()) == ["adapter_config.json", "pytorch_adapter.bin"]
    st, cfg = tuned(tiny_st_encoder_dir, "madx", lang_adapters={"eng": str(eng), "swa": str(sw)})
    steps(st, 1, lr=1e-2)
    tuning.save_tuned(st, cfg, tmp_path / "run")
    source = tuning.load_tuned(tmp_path / "run")
    target = tuning.load_tuned(tmp_path / "run", madx_lang="swa")
    assert str(target[0].model.active_adapters) == "Stack[swa, task]"
    assert torch.allclose(encode(st), encode(source), atol=1e-6)
    assert not torch.allclose(encode(source), encode(target), atol=1e-4)
    with pytest.raises(ConfigError, match="madx_lang 'yor'"):
        tuning.load_tuned(tmp_path / "run", madx_lang="yor")


@pytest.mark.parametrize("method, options, message", [
    ("lora", {"r": 0}, "r and alpha"), ("lora", {"rank": 8}, "unknown key"),
    ("bottleneck", {"variant": "houlsby"}, "variant"), ("prefix", {"num_virtual_tokens": 0}, ">= 1"),
    ("nope", {}, "unknown tuning method"),
])
def test_config_errors(method, options, message):
    with pytest.raises(ConfigError, match=message):
        tuning.method_config(method, options)


def test_load_rejects_folder_without_manifest(tmp_path):
    from xlir.errors import InputError

    with pytest.raises(InputError, match="file not found"):
        tuning.load_tuned(tmp_path)
