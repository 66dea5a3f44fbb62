"""full, bitfit, frozen: which parameters train."""

from __future__ import annotations

import pytest
from tiny_tuning import load, tuned

from xlir import tuning

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bitfit_trains_exactly_the_biases(tiny_st_encoder_dir):
    base = load(tiny_st_encoder_dir)
    biases = sum(p.numel() for n, p in base.named_parameters() if n.endswith("bias"))
    st, _ = tuned(tiny_st_encoder_dir, "bitfit")
    assert tuning.count_parameters(st)[0] == biases
    assert all(n.endswith("bias") for n, p in st.named_parameters() if p.requires_grad)


def test_frozen_saves_the_manifest_only(tiny_st_encoder_dir, tmp_path):
    st, cfg = tuned(tiny_st_encoder_dir, "frozen")
    manifest = tuning.save_tuned(st, cfg, tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == [tuning.MANIFEST]
    assert manifest["trainable_params"] == 0 and manifest["saved_bytes"] == 0
