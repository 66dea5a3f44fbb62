"""Typed configs: names and types are checked against the dataclass, overrides merge deeply."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from xlir.config import from_dict, load_yaml, merge, parse_overrides
from xlir.errors import ConfigError


@dataclass
class Inner:
    r: int = 8
    dropout: float = 0.1


@dataclass
class Outer:
    method: Literal["lora", "full"] = "lora"
    lr: float = 1e-4
    langs: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    out: str | None = None

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")


def test_builds_nested_dataclasses_and_coerces_ints_to_floats():
    cfg = from_dict(Outer, {"method": "full", "lr": 1, "langs": ["hau_Latn"], "inner": {"r": 4}})
    assert cfg == Outer("full", 1.0, ["hau_Latn"], Inner(4, 0.1), None)
    assert isinstance(cfg.lr, float)
    assert from_dict(Outer, parse_overrides(["lr=1e-3"])).lr == 0.001  # YAML 1.1: a string


@pytest.mark.parametrize("data, message", [
    ({"methd": "lora"}, "unknown key(s) ['methd']"),
    ({"method": "dora"}, "method: 'dora' is not one of ['lora', 'full']"),
    ({"lr": "fast"}, "lr: expected a number"),
    ({"lr": True}, "lr: expected a number"),
    ({"inner": {"r": 2.5}}, "inner.r: expected an integer"),
    ({"inner": {"rank": 2}}, "inner: unknown key(s) ['rank']"),
    ({"lr": -1.0}, "lr must be > 0, got -1.0"),
])
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, data)
    assert message in str(e.value)


def test_overrides_parse_yaml_scalars_into_nested_keys():
    assert parse_overrides(["inner.r=16", "method=full", "langs=[a, b]", "out="]) == {
        "inner": {"r": 16}, "method": "full", "langs": ["a", "b"], "out": ""}
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides(["lr"])


def test_merge_is_deep_and_leaves_inputs_alone():
    base = {"a": {"x": 1, "y": 2}, "b": 1}
    over = {"a": {"y": 3}}
    assert merge(base, over) == {"a": {"x": 1, "y": 3}, "b": 1}
    assert base == {"a": {"x": 1, "y": 2}, "b": 1}


def test_yaml_is_parsed_safely(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(listy)


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("train:\n" + "\n".join("  " + x for x in lines) + "\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml: more than 100,000 values .*alias"):
        load_yaml(tmp_path / "bomb.yaml")  # 10**9 values if expanded; counting stops at 100,001
    (tmp_path / "fine.yaml").write_text("base: &b {lr: 0.001}\nlora: *b\nfull: *b\n")
    assert load_yaml(tmp_path / "fine.yaml")["full"] == {"lr": 0.001}  # ordinary aliases work
