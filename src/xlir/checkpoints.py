"""One checkpoint convention for the training loops xlir writes itself (the generator's LoRA
loop, xlir.qgen_train; MAD-X's language-adapter MLM, xlir.tuning.lang_adapters): a folder,
written atomically (a kill while saving leaves the previous checkpoint), holding

    weights.safetensors    the trainable tensors, by name
    optimizer.safetensors  the optimizer's per-parameter state
    rng.safetensors        torch's random state (CPU, each GPU) and the loop's own generators
    state.json             the step, the optimizer's param groups, the loop's record (losses)
                           and the settings the run was started under

No torch pickles: a checkpoint is data, never code. `load` restores the optimizer and the random
state, so a resumed run continues on the uninterrupted run's path, and refuses a checkpoint made
under other settings with one line naming the keys that differ. (The bi-encoder's checkpoints
are the sentence-transformers trainer's, with xlir's trainable tensors in safetensors:
xlir.trainer.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xlir.errors import ConfigError
from xlir.storage import atomic_dir, read_json, read_safetensors, write_json

STATE = "state.json"


def exists(path: str | Path) -> bool:
    """Whether `path` holds a complete checkpoint (state.json is written last)."""
    return (Path(path) / STATE).is_file()


def save(path: str | Path, weights: dict, optim, step: int, record: dict[str, Any],
         settings: dict[str, Any], generators: dict | None = None) -> None:
    """Write the checkpoint of `step` to `path` (replacing the one there). `generators`:
    torch.Generator objects the loop draws from besides torch's global one, by name."""
    from safetensors.torch import save_file

    with atomic_dir(Path(path)) as tmp:
        save_file({k: v.detach().contiguous() for k, v in weights.items()},
                  tmp / "weights.safetensors")
        groups = save_optimizer(optim, tmp / "optimizer.safetensors")
        save_file(rng_state(generators or {}), tmp / "rng.safetensors")
        write_json(tmp / STATE, {"step": step, "param_groups": groups, "record": record,
                                 "settings": settings})


def load(path: str | Path, optim, settings: dict[str, Any], fix: str,
         generators: dict | None = None) -> tuple[dict, int, dict[str, Any]]:
    """(weights, step, record) of the checkpoint at `path`, with the optimizer's state and the
    random state restored. `fix`: what to do about a torn or foreign checkpoint (said in the
    error)."""
    path = Path(path)
    meta = read_json(path / STATE)
    if "settings" not in meta:
        raise ConfigError(f"{path} is a checkpoint in an older layout (no settings); {fix}")
    settings, stored = json.loads(json.dumps(settings)), meta["settings"]
    changed = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
    if changed:
        raise ConfigError(f"{path} is a checkpoint of a run with other settings (changed: "
                          f"{', '.join(changed)}); {fix}")
    load_optimizer(optim, path / "optimizer.safetensors", meta["param_groups"], fix)
    set_rng_state(read_safetensors(path / "rng.safetensors", fix), generators or {})
    return read_safetensors(path / "weights.safetensors", fix), meta["step"], meta["record"]


def save_optimizer(optim, path: Path) -> list[dict]:
    """The optimizer's per-parameter tensors to `path` (safetensors); -> its param groups
    (plain data, for the JSON state)."""
    from safetensors.torch import save_file

    state = optim.state_dict()
    save_file({f"{i}.{k}": v.contiguous() for i, s in state["state"].items() for k, v in s.items()},
              path)
    return state["param_groups"]


def load_optimizer(optim, path: Path, param_groups: list[dict], fix: str) -> None:
    state: dict = {}
    for key, value in read_safetensors(path, fix).items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    optim.load_state_dict({"state": state, "param_groups": param_groups})


def rng_state(generators: dict) -> dict:
    """torch's random state (CPU, and each GPU) and that of each named generator: without it
    a resumed run draws other dropout masks (and batches, masks) than an uninterrupted one."""
    import torch

    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    state.update({f"generator.{name}": g.get_state() for name, g in generators.items()})
    return state


def set_rng_state(state: dict, generators: dict) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    cuda = [state[f"cuda.{i}"] for i in range(sum(k.startswith("cuda.") for k in state))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    for name, g in generators.items():
        g.set_state(state[f"generator.{name}"])
