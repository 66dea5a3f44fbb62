"""xlir.checkpoints, the one checkpoint convention of xlir's own training loops: safetensors
and JSON only, the optimizer and every random state restored, a checkpoint of other settings
or of an older layout refused with one line saying what to do."""

from __future__ import annotations

import json

import pytest
import torch

from xlir import checkpoints
from xlir.errors import ConfigError

SETTINGS = {"lr": 0.01, "steps": 4, "langs": ["hau_Latn"]}


def _model_and_optim(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=0.01)


def _step(model, optim, gen) -> float:
    x = torch.randn(4, 3, generator=gen)
    loss = (torch.nn.functional.dropout(model(x), 0.5) ** 2).mean()  # global RNG: dropout
    optim.zero_grad()
    loss.backward()
    optim.step()
    return float(loss.detach())


def test_a_resumed_loop_continues_on_the_uninterrupted_path(tmp_path):
    model, optim = _model_and_optim(0)
    gen = torch.Generator().manual_seed(1)
    whole = [_step(model, optim, gen) for _ in range(4)]

    model, optim = _model_and_optim(0)
    gen = torch.Generator().manual_seed(1)
    first = [_step(model, optim, gen) for _ in range(2)]
    checkpoints.save(tmp_path / "ckpt", dict(model.named_parameters()), optim, 2,
                     {"losses": first}, SETTINGS, generators={"batches": gen})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "optimizer.safetensors", "rng.safetensors", "state.json", "weights.safetensors"]
    torch.manual_seed(99)  # whatever the process did since: the checkpoint's state wins

    model, optim = _model_and_optim(5)  # another init: the weights come from the checkpoint
    gen = torch.Generator().manual_seed(7)
    assert checkpoints.exists(tmp_path / "ckpt")
    weights, step, record = checkpoints.load(tmp_path / "ckpt", optim, SETTINGS, "delete it",
                                             generators={"batches": gen})
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name])
    rest = [_step(model, optim, gen) for _ in range(step, 4)]
    assert record["losses"] + rest == whole


def test_a_checkpoint_of_other_settings_or_an_older_layout_is_refused(tmp_path):
    model, optim = _model_and_optim(0)
    checkpoints.save(tmp_path / "ckpt", dict(model.named_parameters()), optim, 1, {}, SETTINGS)
    with pytest.raises(ConfigError, match=r"other settings \(changed: langs, lr\); delete it"):
        checkpoints.load(tmp_path / "ckpt", optim, {**SETTINGS, "lr": 0.1, "langs": ["yor_Latn"]},
                         "delete it")
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    del state["settings"]
    (tmp_path / "ckpt" / "state.json").write_text(json.dumps(state))
    with pytest.raises(ConfigError, match=r"older layout \(no settings\); delete it"):
        checkpoints.load(tmp_path / "ckpt", optim, SETTINGS, "delete it")
