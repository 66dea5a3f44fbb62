"""Every tuning method of the registry through the same checks, on the tiny encoder built in
tests/conftest.py; and the registry itself (one `Method` per name, derived lists)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tiny_tuning import LR, encode, load, mnrl_loss, steps, tuned

from xlir import tuning
from xlir.errors import ConfigError, InputError
from xlir.tuning.plain import save_whole

METHODS = list(tuning.METHODS)
TRAINABLE = [m for m in METHODS if tuning.METHODS[m].trainable]
SEPARATE = [m for m in METHODS if tuning.METHODS[m].weights]  # adapters beside a frozen base

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registry_lines_agree_with_the_lists_callers_use():
    assert all(name == m.name for name, m in tuning.METHODS.items())
    assert tuning.PEFT_METHODS == ("lora", "dora", "ia3", "prefix", "prompt")
    assert tuning.ADAPTER_METHODS == ("bottleneck", "madx")
    assert tuning.MERGEABLE == ("full", "bitfit", "frozen", "lora", "dora", "ia3")
    assert [m for m in METHODS if not tuning.METHODS[m].trainable] == ["frozen"]
    assert len({m.config for m in tuning.METHODS.values()}) == len(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_default_config_maps_back_to_its_method(method):
    cfg = tuning.method_config(method)
    assert dataclasses.is_dataclass(cfg) and tuning.method_name(cfg) == method  # dora != lora


def test_a_method_needs_a_dataclass_config_and_a_known_library():
    with pytest.raises(TypeError, match="dataclass"):
        tuning.Method("x", dict, None, None, None)
    with pytest.raises(ValueError, match="library"):
        tuning.Method("x", tuning.FullConfig, None, None, None, library="jax")


@pytest.mark.parametrize("method", METHODS)
def test_trainable_counts(tiny_st_encoder_dir, method):
    st, _ = tuned(tiny_st_encoder_dir, method)
    trainable, total = tuning.count_parameters(st)
    base_total = sum(p.numel() for p in load(tiny_st_encoder_dir).parameters())
    assert total >= base_total
    if method == "full":
        assert trainable == total == base_total
    elif not tuning.METHODS[method].trainable:
        assert trainable == 0 and total == base_total
    else:
        assert 0 < trainable < total


@pytest.mark.parametrize("method", SEPARATE)
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
    if tuning.METHODS[method].trainable:
        steps(st, 2, lr=1e-2)
    before = encode(st)
    manifest = tuning.save_tuned(st, cfg, tmp_path / method)
    loaded = tuning.load_tuned(tmp_path / method)
    assert torch.allclose(before, encode(loaded), atol=1e-6)
    assert tuning.count_parameters(loaded)[0] == 0  # an inference model
    assert manifest["method"] == method
    assert manifest["base_model"] == str(tiny_st_encoder_dir.resolve())
    assert (manifest["trainable_params"], manifest["total_params"]) == tuning.count_parameters(st)
    files = [f for f in (tmp_path / method).rglob("*") if f.is_file() and f.name != tuning.MANIFEST]
    assert manifest["saved_bytes"] == sum(f.stat().st_size for f in files)
    # Only full and bitfit copy the base weights; the others save their own weights, if any.
    whole = tuning.METHODS[method].save is save_whole
    assert (tmp_path / method / "model.safetensors").exists() == whole


@pytest.mark.parametrize("method", TRAINABLE)
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


@pytest.mark.parametrize("method, options, message", [
    ("lora", {"r": 0}, "r and alpha"), ("lora", {"rank": 8}, "unknown key"),
    ("lora", {"target_modules": "(query"}, "not a regular expression"),
    ("ia3", {"feedforward_modules": "["}, "not a regular expression"),
    ("bottleneck", {"variant": "houlsby"}, "variant"), ("prefix", {"num_virtual_tokens": 0}, ">= 1"),
    ("nope", {}, "unknown tuning method"),
])
def test_config_errors(method, options, message):
    with pytest.raises(ConfigError, match=message):
        tuning.method_config(method, options)


def test_load_rejects_folder_without_manifest(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        tuning.load_tuned(tmp_path)


def test_load_names_a_missing_base_model(tiny_st_encoder_dir, tmp_path):
    st, cfg = tuned(tiny_st_encoder_dir, "lora")
    manifest = tuning.save_tuned(st, cfg, tmp_path / "run", base_model=tmp_path / "gone")
    assert manifest["base_model"] == str((tmp_path / "gone").resolve())
    with pytest.raises(InputError, match="base model folder .*gone is missing"):
        tuning.load_tuned(tmp_path / "run")
