"""MAD-X language adapters: MLM training saves the adapter alone, once."""

from __future__ import annotations

import json

import pytest

from xlir.errors import InputError
from xlir.tuning.lang_adapters import train_language_adapter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_saves_only_the_adapter_and_skips_a_trained_one(tiny_st_encoder_dir, tmp_path):
    texts = ["where is the river", "the capital of Kenya is Nairobi"]
    out = train_language_adapter(tiny_st_encoder_dir, "eng", texts, tmp_path / "eng",
                                 steps=2, batch_size=2)
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "mlm.json",
                                                     "pytorch_adapter.bin"]
    mlm = json.loads((out / "mlm.json").read_text())
    assert mlm["texts"] == 2 and mlm["steps"] == 2 and len(mlm["loss"]) == 2
    assert all(v is None or v > 0 for v in mlm["loss"])
    stamp = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert train_language_adapter(tiny_st_encoder_dir, "eng", [], out) == out  # no text needed
    assert stamp == {p: p.stat().st_mtime_ns for p in out.iterdir()}


def test_refuses_no_text(tiny_st_encoder_dir, tmp_path):
    with pytest.raises(InputError, match="no text to train the 'hau'"):
        train_language_adapter(tiny_st_encoder_dir, "hau", [], tmp_path / "hau")
