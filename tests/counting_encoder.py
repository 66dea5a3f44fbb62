"""A BiEncoder wrapper for tests that need to know how much was (re-)encoded."""

from __future__ import annotations


class Counting:
    """Wraps a BiEncoder and counts how many passages it encodes."""

    def __init__(self, inner):
        self.inner, self.count = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_passages(self, passages, batch_size=64, show_progress=False):
        self.count += len(passages)
        return self.inner.encode_passages(passages, batch_size, show_progress)
