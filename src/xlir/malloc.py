"""Keep freed memory in the process (glibc), so a large tensor allocated every training step
does not fault its pages in afresh every step.

glibc serves each allocation above its mmap threshold (at most 32 MB on 64-bit Linux) with a
fresh `mmap` and gives it back with `munmap` on free. Full fine-tuning of multilingual-e5-small
allocates the dense gradient of the 250,002 x 384 word-embedding matrix (384 MB) once per
forward pass of a step (query, positive and hard negative: three passes) and frees it after
accumulation, so every step the kernel maps, faults in and zeroes about 1.5 GB of pages before
torch zeroes them again. `keep_freed_memory()` turns mmap off for malloc (`M_MMAP_MAX` 0) and
raises the trim threshold (`M_TRIM_THRESHOLD`), so freed blocks stay in the heap and the next
step reuses them. Measured on the 2-core CPU (BENCHMARKS.md, "Memory kept for reuse"): the
embedding's forward and backward alone fall from 0.72-0.85 s to 0.26-0.28 s per step on a loaded
machine, and a full fine-tuning step gets 5-17% faster on an idle one; methods that freeze the
embeddings allocate nothing that large and are unaffected. Only where memory comes from
changes, never an operation or its order: the trained weights are bitwise the same
(benchmarks/malloc_bitwise.py). `xlir.train.train` calls it when a trainable tensor is larger
than MMAP_THRESHOLD_MAX (full fine-tuning), since only then does a step allocate such gradients.

The price is memory: process-wide and one-way, the heap keeps what was freed (up to 1 GiB free
at its top; blocks inside it are reused as sizes allow), so full fine-tuning's peak RSS grew by
0-0.6 GB where measured, and the resident size between steps swings by up to ~2 GB where the
heap fragments.
No-op, returning False, where the C library is not glibc (macOS, musl) or with
`XLIR_MALLOC=default` in the environment. Torch has no caching allocator for CPU tensors that
could do this instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's largest mmap threshold on 64-bit: larger is mmapped
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**30  # keep up to 1 GiB free at the top of the heap: three 384 MB gradients
ENV = "XLIR_MALLOC"

_kept = False


def keep_freed_memory() -> bool:
    """Make this process's malloc keep freed memory for reuse (see the module docstring).
    True when it did (or already had), False where it cannot or `XLIR_MALLOC=default`."""
    global _kept
    if _kept:
        return True
    if os.environ.get(ENV, "keep") == "default":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if libc.mallopt(M_MMAP_MAX, 0) != 1 or libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        logger.warning("mallopt refused; large tensors keep their fresh mmap per allocation")
        return False
    _kept = True
    logger.debug("malloc keeps freed memory (M_MMAP_MAX 0, M_TRIM_THRESHOLD %d)", TRIM_THRESHOLD)
    return True
