"""RELIABILITY.md is kept current by the suite: every fault case of tests/reliability has its
row there, and the doc names no case that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

from test_bad_input import CASES
from test_kill_resume import LEFT_BEHIND, REAL_POINTS

DOC = Path(__file__).resolve().parents[2] / "RELIABILITY.md"


def test_every_fault_case_has_its_row():
    text = DOC.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")}
    kill_rows = {r for r in rows if re.fullmatch(r"[a-z-]+", r)}
    assert kill_rows == set(LEFT_BEHIND) | set(REAL_POINTS)
    bad_input = set(re.findall(r"\[([a-z0-9-]+)\]", text))
    assert {c.id for c in CASES} <= bad_input, "a bad-input case has no row in RELIABILITY.md"
    for name in re.findall(r"test_[a-z0-9_]+\.py", text):
        assert list(DOC.parent.joinpath("tests").rglob(name)), f"RELIABILITY.md names {name}: gone"
