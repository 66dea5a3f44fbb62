"""Read JSON, JSONL and TSV input strictly: every problem is an InputError naming the file, the
line and the field (malformed line, missing field, empty text, duplicate id, undecodable bytes,
unknown language code, qrels naming unknown queries or documents, a name that would leave its
folder). Also reads a user's BEIR folder, line-aligned parallel text and lists of language
codes (`read_language_list`, e.g. an encoder's pretraining languages).

This module knows no dataset: upstream quirks (AfriQA rows without a passage, AmQA paragraphs
given as a dict) are handled where the dataset is parsed, in `tasks.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from xlir.data.languages import normalize
from xlir.errors import InputError, XlirError
from xlir.storage import read_json  # noqa: F401  (one JSON reader: storage's)


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without the line break) for each line, streamed; bytes must
    be UTF-8 (a leading byte-order mark is dropped)."""
    path = Path(path)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, expected a file", path) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError as e:
                raise InputError(f"not UTF-8 ({e.reason} at byte {e.start})", path,
                                 number) from None


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; every line must be a JSON object."""
    path = Path(path)
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path, number) from None
        except RecursionError:
            raise InputError("invalid JSON: nested too deeply", path, number) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", path, number)
        yield number, obj


def read_tsv(path: str | Path, columns: int, header: str | None = None
             ) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each non-blank line of a tab-separated file with exactly
    `columns` fields. No quoting: texts may contain quotes. When the first line's first field
    equals `header`, that line is skipped."""
    path = Path(path)
    for number, line in read_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if number == 1 and header is not None and fields[0].strip() == header:
            continue
        if len(fields) != columns:
            raise InputError(f"expected {columns} tab-separated fields, got {len(fields)}",
                             path, number)
        yield number, fields


def text_field(row: dict, field: str, path, line: int, optional: bool = False) -> str:
    """`row[field]` as a non-empty string (stripped of surrounding space). With `optional`, a
    missing field gives ""."""
    if field not in row or row[field] is None:
        if optional:
            return ""
        raise InputError("missing field", path, line, field)
    value = row[field]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and field.endswith("id"):
        value = str(value)  # numeric ids are common in the wild
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {type(value).__name__}", path, line, field)
    if not value.strip() and not optional:
        raise InputError("empty text", path, line, field)
    return value.strip()


def language_field(code: str, path, line: int, field: str) -> str:
    """The canonical form of a language code read from a file, or an InputError."""
    try:
        return normalize(code)
    except XlirError as e:
        raise InputError(str(e), path, line, field) from None


def read_language_list(path: str | Path) -> frozenset[str]:
    """The canonical codes in a file of one language code a line ('#' starts a comment, blank
    lines are skipped): for `languages.register_seen_set(name, read_language_list(path))`."""
    codes = set()
    for number, line in read_lines(path):
        code = line.split("#")[0].strip()
        if code:
            codes.add(language_field(code, path, number, "code"))
    return frozenset(codes)


def add_unique(table: dict, key: str, value, path, line: int, field: str = "_id") -> None:
    if key in table:
        raise InputError(f"duplicate id '{key}'", path, line, field)
    table[key] = value


def safe_name(name: str, path=None, line: int | None = None, field: str | None = None) -> str:
    """`name` when it is usable as one file-name component; refuses '..', separators and
    absolute paths, which would let a dataset write or read outside its folder."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
            or ".." in Path(name).parts):
        raise InputError(f"'{name}' cannot be used as a file name (it could leave its folder)",
                         path, line, field)
    return name


def safe_join(folder: str | Path, relative: str) -> Path:
    """`folder / relative`, refusing a relative path that climbs out of `folder`."""
    folder = Path(folder)
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise InputError(f"'{relative}' would leave the folder", folder)
    return folder / rel
