"""AdapterHub methods: MAD-X swaps the language adapter under the task adapter at load time."""

from __future__ import annotations

import pytest
import torch
from tiny_tuning import encode, steps, tuned

from xlir import tuning
from xlir.errors import ConfigError, InputError
from xlir.tuning.lang_adapters import train_language_adapter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_madx_language_adapter_swap(tiny_st_encoder_dir, tmp_path):
    texts = ["where is the river", "the capital of Kenya is Nairobi"]
    swa = ["Nairobi ni mji mkuu wa Kenya", "Kano birni ne a Najeriya"]
    eng = train_language_adapter(tiny_st_encoder_dir, "eng", texts, tmp_path / "eng",
                                 steps=3, batch_size=2)
    sw = train_language_adapter(tiny_st_encoder_dir, "swa", swa, tmp_path / "swa",
                                steps=3, batch_size=2, seed=1)
    st, cfg = tuned(tiny_st_encoder_dir, "madx", lang_adapters={"eng": str(eng), "swa": str(sw)})
    steps(st, 1, lr=1e-2)
    manifest = tuning.save_tuned(st, cfg, tmp_path / "run")
    assert manifest["active"] == ["eng", "task"]
    source = tuning.load_tuned(tmp_path / "run")
    target = tuning.load_tuned(tmp_path / "run", madx_lang="swa")
    assert str(target[0].model.active_adapters) == "Stack[swa, task]"
    assert torch.allclose(encode(st), encode(source), atol=1e-6)
    assert not torch.allclose(encode(source), encode(target), atol=1e-4)
    with pytest.raises(ConfigError, match="madx_lang 'yor'"):
        tuning.load_tuned(tmp_path / "run", madx_lang="yor")


def test_adapters_saved_as_torch_files_still_load(tiny_st_encoder_dir, tmp_path):
    """Adapters are saved in safetensors; folders written before (pytorch_adapter.bin, task
    and language adapters alike) load to the same model, read weights-only."""
    from safetensors.torch import load_file

    eng = train_language_adapter(tiny_st_encoder_dir, "eng", ["where is the river", "a city"],
                                 tmp_path / "eng", steps=1, batch_size=2)
    swa = train_language_adapter(tiny_st_encoder_dir, "swa", ["Kano birni ne", "mji mkuu"],
                                 tmp_path / "swa", steps=1, batch_size=2, seed=1)
    st, cfg = tuned(tiny_st_encoder_dir, "madx", lang_adapters={"eng": str(eng), "swa": str(swa)})
    steps(st, 1, lr=1e-2)
    tuning.save_tuned(st, cfg, tmp_path / "run")
    before = encode(tuning.load_tuned(tmp_path / "run", madx_lang="swa"))
    folders = [eng, swa, *(tmp_path / "run" / "adapters").iterdir()]
    for folder in folders:
        new = folder / "adapter.safetensors"
        torch.save(load_file(new), folder / "pytorch_adapter.bin")
        new.unlink()
    assert torch.equal(before, encode(tuning.load_tuned(tmp_path / "run", madx_lang="swa")))


def test_madx_refuses_a_language_adapter_folder_without_its_config(tiny_st_encoder_dir, tmp_path):
    with pytest.raises(InputError, match="no adapter_config.json"):
        tuned(tiny_st_encoder_dir, "madx", lang_adapters={"eng": str(tmp_path)})


def test_bottleneck_saves_only_its_task_adapter(tiny_st_encoder_dir, tmp_path):
    st, cfg = tuned(tiny_st_encoder_dir, "bottleneck", variant="double_seq_bn")
    tuning.save_tuned(st, cfg, tmp_path / "run")
    assert [p.name for p in (tmp_path / "run" / "adapters").iterdir()] == ["task"]
    loaded = tuning.load_tuned(tmp_path / "run", madx_lang="swa")  # ignored: not MAD-X
    assert torch.allclose(encode(st), encode(loaded), atol=1e-6)


def test_activation_logs_no_false_alarm_but_a_real_inactive_pass_still_warns(
        tiny_st_encoder_dir, tmp_path, caplog):
    """adapters warns "none are activated" from inside set_active_adapters itself (an empty
    reset pass before the setup is active): every load logged it. Only that one is dropped."""
    st, cfg = tuned(tiny_st_encoder_dir, "bottleneck")
    tuning.save_tuned(st, cfg, tmp_path / "run")
    with caplog.at_level("WARNING", logger="adapters.model_mixin"):
        loaded = tuning.load_tuned(tmp_path / "run")
        assert str(loaded[0].model.active_adapters) == "Stack[task]"
        assert "none are activated" not in caplog.text
        loaded[0].model.set_active_adapters(None)
        caplog.clear()
        encode(loaded)
    assert "none are activated for the forward pass" in caplog.text
