"""xlir.malloc: after keep_freed_memory(), a large tensor comes from the heap, not from a fresh
mmap that its free would unmap; XLIR_MALLOC=default leaves glibc alone. Each case runs in its own
interpreter: the setting is process-wide and one-way. (What it saves is measured in
BENCHMARKS.md, "Memory kept for reuse"; that training stays bitwise the same, by
benchmarks/malloc_bitwise.py on the real model.)"""

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")

PROBE = r"""
import ctypes, json, sys
import torch
from xlir.malloc import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
kept = keep_freed_memory()
rows = []
for _ in range(3):  # what one training step does to the embedding gradient: allocate, free
    t = torch.zeros(64 * 2**20 // 4)  # 64 MB, above glibc's largest mmap threshold (32 MB)
    info = libc.mallinfo2()
    rows.append({"mmapped": info.hblkhd, "address": t.data_ptr(), "heap": info.arena})
    del t
print(json.dumps({"kept": kept, "rows": rows}))
"""


def probe(malloc: str) -> dict:
    env = {**os.environ, "XLIR_MALLOC": malloc}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_keep_serves_large_tensors_from_the_heap():
    result = probe("keep")
    assert result["kept"] is True
    rows = result["rows"]
    assert all(r["mmapped"] < 64 * 2**20 for r in rows)  # not in an mmapped block
    assert all(r["heap"] >= 64 * 2**20 for r in rows)  # in the heap


def test_default_leaves_glibc_mmapping_large_tensors():
    result = probe("default")
    assert result["kept"] is False
    assert all(r["mmapped"] >= 64 * 2**20 for r in result["rows"])  # the check above can fail
