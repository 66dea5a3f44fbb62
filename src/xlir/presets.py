"""The shipped presets (quick, full, train) by name, in a source checkout and in a wheel.

The presets live in `configs/` at the top of the repository, where the README and users find
them (`xlir study configs/quick.yaml`). A wheel carries the same files as `xlir/configs/`
(pyproject.toml maps that package folder to `configs/`), so an installed xlir has its default
study too. `path(name)` looks in the wheel's copy first, then in the checkout.

It does not parse the presets (xlir.config does) or know what is in them.
"""

from __future__ import annotations

from pathlib import Path

from xlir.errors import ConfigError

PACKAGED = Path(__file__).resolve().parent / "configs"  # in an installed wheel
CHECKOUT = Path(__file__).resolve().parents[2] / "configs"  # in a source (or editable) tree


def folder() -> Path:
    """The folder the presets are read from."""
    return PACKAGED if PACKAGED.is_dir() else CHECKOUT


def names() -> list[str]:
    return sorted(p.stem for p in folder().glob("*.yaml"))


def path(name: str) -> Path:
    """The YAML file of preset `name` ("quick", "full", "train")."""
    file = folder() / f"{name}.yaml"
    if not file.is_file():
        raise ConfigError(f"no preset {name!r} in {folder()}; presets: {names()}")
    return file
