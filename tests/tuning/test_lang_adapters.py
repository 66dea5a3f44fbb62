"""MAD-X language adapters: MLM training saves the adapter alone, once."""

from __future__ import annotations

import json

import pytest

from xlir.errors import ConfigError, InputError
from xlir.tuning.lang_adapters import train_language_adapter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_saves_only_the_adapter_and_skips_a_trained_one(tiny_st_encoder_dir, tmp_path):
    texts = ["where is the river", "the capital of Kenya is Nairobi"]
    out = train_language_adapter(tiny_st_encoder_dir, "eng", texts, tmp_path / "eng",
                                 steps=2, batch_size=2)
    assert sorted(p.name for p in out.iterdir()) == ["adapter.safetensors",
                                                     "adapter_config.json", "mlm.json"]
    mlm = json.loads((out / "mlm.json").read_text())
    assert mlm["texts"] == 2 and mlm["steps"] == 2 and len(mlm["loss"]) == 2
    assert all(v is None or v > 0 for v in mlm["loss"])
    stamp = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert train_language_adapter(tiny_st_encoder_dir, "eng", [], out, steps=2,
                                  batch_size=2) == out  # no text needed
    assert stamp == {p: p.stat().st_mtime_ns for p in out.iterdir()}


def test_refuses_no_text(tiny_st_encoder_dir, tmp_path):
    with pytest.raises(InputError, match="no text to train the 'hau'"):
        train_language_adapter(tiny_st_encoder_dir, "hau", [], tmp_path / "hau")


TEXTS = ["where is the river", "the capital of Kenya is Nairobi", "a book about the sea",
         "the market opens early", "rain fell on the town"]


def test_a_killed_mlm_run_resumes_from_its_checkpoint_to_the_same_adapter(
        tiny_st_encoder_dir, tmp_path, monkeypatch):
    """Killed right after the checkpoint of step 2 (of 4), the rerun continues from it (the
    batch draws, masks and dropout restored) and ends with the uninterrupted run's losses and
    weights; the checkpoint is gone once the adapter is saved. A checkpoint of other settings
    is refused naming them, and so is a finished adapter asked for with other settings."""
    from safetensors.torch import load_file

    from xlir import checkpoints

    kw = dict(steps=4, batch_size=2, save_every=2, seed=3)
    whole = train_language_adapter(tiny_st_encoder_dir, "eng", TEXTS, tmp_path / "a" / "eng", **kw)
    real_save = checkpoints.save

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # stands in for the kill: nothing after the checkpoint runs

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_language_adapter(tiny_st_encoder_dir, "eng", TEXTS, tmp_path / "b" / "eng", **kw)
    saved = tmp_path / "b" / "eng.checkpoint"
    assert sorted(p.name for p in saved.iterdir()) == [
        "optimizer.safetensors", "rng.safetensors", "state.json", "weights.safetensors"]
    assert json.loads((saved / "state.json").read_text())["step"] == 2
    monkeypatch.setattr(checkpoints, "save", real_save)
    with pytest.raises(ConfigError, match=r"other settings \(changed: lr\); delete .*eng.checkpoint"):
        train_language_adapter(tiny_st_encoder_dir, "eng", TEXTS, tmp_path / "b" / "eng",
                               **kw, lr=5e-4)
    resumed = train_language_adapter(tiny_st_encoder_dir, "eng", TEXTS, tmp_path / "b" / "eng", **kw)
    assert not saved.exists()
    a, b = (json.loads((d / "mlm.json").read_text()) for d in (whole, resumed))
    assert a["loss"] == b["loss"] and len(a["loss"]) == 4
    wa, wb = (load_file(d / "adapter.safetensors") for d in (whole, resumed))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    with pytest.raises(ConfigError, match=r"trained with other settings \(changed: steps\)"):
        train_language_adapter(tiny_st_encoder_dir, "eng", TEXTS, whole, **{**kw, "steps": 8})

