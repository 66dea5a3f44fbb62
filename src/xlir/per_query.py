"""The per-query tables of results of record: per_query/<task>/<measure>.tsv.gz, a row per
query (id, language, then one column per system; a system without a score for a query leaves
its field empty), values as Python writes them (an exact round trip), gzip with mtime 0 (the
same table gives the same bytes). xlir.results writes them; StudyFiles (xlir.report_files)
reads them back into each metrics dict.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from xlir.errors import InputError


def read_per_query(root: Path, metrics: dict, tables: dict[Path, dict]) -> None:
    """Fill a results-of-record metrics dict's `per_query` and `query_lang` from its task
    table (in place; `tables` holds the tables already read, one per task, for the caller's
    other systems); a study folder's own metrics.json, which holds them, is left alone."""
    rel = metrics.get("per_query_table")
    if rel is None or "per_query" in metrics:
        return
    if root / rel not in tables:
        tables[root / rel] = read_table(root / rel)
    table = tables[root / rel]
    system = metrics["system"]
    if system not in table:
        raise InputError(f"no column for system {system}", root / rel)
    metrics["query_lang"] = table[""]
    metrics["per_query"] = {metrics["primary"]: table[system]}


def read_table(path: Path) -> dict:
    if not path.is_file():
        raise InputError("missing per-query table (results of record are incomplete)", path)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = rows[0]
    if header[:2] != ["query_id", "language"]:
        raise InputError("line 1: expected columns query_id, language, <system>...", path)
    table: dict[str, dict] = {name: {} for name in [""] + header[2:]}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(f"line {line}: {len(row)} fields, header has {len(header)}", path)
        qid, lang = row[0], row[1]
        table[""][qid] = lang
        for name, value in zip(header[2:], row[2:]):
            if value == "":
                continue  # that system has no score for that query
            try:
                table[name][qid] = float(value)
            except ValueError:
                raise InputError(f"line {line}: field {name}: not a number: {value!r}", path) from None
    return table


def write_table(path: Path, table: dict) -> None:
    systems = sorted(k for k in table if k)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["query_id", "language", *systems])
    for qid in sorted(table[""]):
        w.writerow([qid, table[""][qid], *(repr(float(table[s][qid])) if qid in table[s] else ""
                                          for s in systems)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                 filename="") as f:
        f.write(buf.getvalue().encode("utf-8"))
