"""Export: merged folders load in plain sentence-transformers and encode like the run's model;
non-mergeable methods export base + adapter + manifest that xlir.tuning loads."""

from __future__ import annotations

import json

import pytest
import torch

from xlir import tuning
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
