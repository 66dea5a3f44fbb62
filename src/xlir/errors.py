"""Errors a user can act on. The CLI prints them as one line and exits non-zero.

Anything else that escapes is a bug in xlir and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class XlirError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""


class InputError(XlirError):
    """Bad input data: says which file, which line and which field."""

    def __init__(self, message: str, path: str | Path | None = None,
                 line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class ModelNotFoundError(XlirError):
    """A model name or path that cannot be resolved offline."""


class ConfigError(XlirError):
    """An invalid configuration value."""
