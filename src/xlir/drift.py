"""How far each tuned model moved from the zero-shot model: embedding cosine drift on a fixed
probe set, computed after the fact from the embeddings a study already cached.

Every dense system of a study encodes the same texts (each task's queries and passages), and
encode.py caches them under systems/<system>/embeddings/<kind>-<model fingerprint>-<content
hash>/. Two folders with the same kind and content hash hold the same texts in the same order,
so the drift of a tuned model on them is 1 - cos(tuned(x), frozen(x)) per text (vectors are
L2-normalised). The probe set is thus every query and passage of every evaluated task, fixed by
the config and identical for every method and seed; queries are also grouped by language
(SIB-200 gives 204 parallel sentences in each of 100+ languages: drift per language, seen or
unseen, on the same content).

`embedding_drift(study)` returns {"systems": {system: {task: {"queries": {"mean", "n",
"per_language"}, "passages": {"mean", "n"}}}}}; `write_drift(study)` writes it to drift.json.
Nothing is encoded: a study folder without embeddings (results of record) has no drift to add.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xlir import storage
from xlir.embedding_cache import read_cache
from xlir.report_files import held_out_tasks

PROBE = ("1 - cosine between the tuned and the zero-shot model's embedding of the same text, "
         "over every query and passage of every evaluated task (the same texts for every "
         "system), from the embeddings the study cached")


def _folders(embeddings: Path) -> dict[tuple[str, str], Path]:
    """(kind, content hash) -> the cache folder of one system's embeddings."""
    out = {}
    for d in sorted(embeddings.glob("*-*-*")):
        kind, _, content = d.name.split("-", 2)
        if (d / "manifest.json").is_file():
            out[kind, content] = d
    return out


def embedding_drift(study: str | Path) -> dict:
    root = Path(study)
    config = storage.read_json(root / "config.resolved.json")
    seeds, methods = config["seeds"], config["methods"]
    frozen = [m.get("label") or m["name"] for m in methods if m["name"] == "frozen"]
    if not frozen:
        return {"probe": PROBE, "systems": {}, "note": "no frozen system to compare with"}
    reference = _folders(root / "systems" / f"{frozen[0]}-s{seeds[0]}" / "embeddings")
    # Which task a cache folder belongs to: queries by their ids (the task's query_lang),
    # passages by their count (tasks/*.json "documents").
    held = held_out_tasks(config)  # no probe: not every system encodes them
    query_lang, owner = {}, {}
    for p in sorted(root.glob(f"systems/{frozen[0]}-s{seeds[0]}/*/metrics.json")):
        m = storage.read_json(p)
        if m["task"] not in held:
            query_lang[m["task"]] = m.get("query_lang", {})
    documents = {p.stem: storage.read_json(p).get("documents")
                 for p in sorted(root.glob("tasks/*.json")) if p.stem not in held}
    sizes = _passage_sizes(reference)
    out: dict[str, dict] = {}
    for m in methods:
        if m["name"] == "frozen":
            continue
        for seed in m.get("seeds") or seeds:
            system = f"{m.get('label') or m['name']}-s{seed}"
            mine = _folders(root / "systems" / system / "embeddings")
            for (kind, content), folder in mine.items():
                if (kind, content) not in reference:
                    continue
                a, b = read_cache(folder), read_cache(reference[kind, content])
                if a is None or b is None or a[0] != b[0]:
                    continue
                ids, cos = a[0], np.einsum("ij,ij->i", a[1].astype(np.float64), b[1].astype(np.float64))
                drift = 1.0 - cos
                if (kind, content) not in owner:
                    owner[kind, content] = _tasks_of(kind, ids, query_lang, documents, sizes)
                for task in owner[kind, content]:
                    entry = {"mean": float(drift.mean()), "n": len(ids)}
                    if kind == "queries":
                        langs = query_lang[task]
                        per: dict[str, list[float]] = {}
                        for qid, d in zip(ids, drift):
                            per.setdefault(langs[qid], []).append(float(d))
                        entry["per_language"] = {k: float(np.mean(v))
                                                 for k, v in sorted(per.items())}
                    out.setdefault(system, {}).setdefault(task, {})[kind] = entry
    return {"probe": PROBE, "systems": out}


def _tasks_of(kind: str, ids: list[str], query_lang: dict, documents: dict,
              sizes: dict[int, int]) -> list[str]:
    """The tasks a cache folder holds the texts of. Queries: the task with exactly these
    query ids. Passages: the tasks with this many documents, when only one passage folder of
    that size exists (tasks over one corpus, e.g. a test and a dev split, share its folder);
    none when two corpora of one size make the owner ambiguous."""
    if kind == "queries":
        return [t for t, ql in query_lang.items() if set(ql) == set(ids)][:1]
    matches = [t for t, n in documents.items() if n == len(ids)]
    return matches if len(matches) == 1 or sizes.get(len(ids)) == 1 else []


def _passage_sizes(folders: dict[tuple[str, str], Path]) -> dict[int, int]:
    """Number of passage cache folders of each size (texts per folder)."""
    out: dict[int, int] = {}
    for (kind, _), folder in folders.items():
        if kind == "passages":
            n = storage.read_json(folder / "manifest.json").get("count")
            out[n] = out.get(n, 0) + 1
    return out


def write_drift(study: str | Path) -> Path:
    """Write drift.json. What the folder's drift.json already measured and the embeddings now
    there cannot measure again (a system, or one task's queries or passages of it, whose
    embeddings are gone) keeps its entry; the systems holding such entries are listed under
    "carried". So a study folder grown from results of record (which hold no embeddings)
    measures what it encodes anew without losing the old drift."""
    root = Path(study)
    path = root / "drift.json"
    drift = embedding_drift(root)
    old = storage.read_json(path).get("systems", {}) if path.is_file() else {}
    carried = []
    for system, tasks in old.items():
        mine = drift["systems"].setdefault(system, {})
        kept = False
        for task, kinds in tasks.items():
            for kind, entry in kinds.items():
                if kind not in mine.get(task, {}):
                    mine.setdefault(task, {})[kind] = entry
                    kept = True
        carried += [system] if kept else []
    drift["systems"] = {s: v for s, v in sorted(drift["systems"].items()) if v}
    if carried:
        drift["carried"] = sorted(carried)
    storage.write_json(path, drift)
    return path
