"""`xlir data`: list, fetch and inspect the built-in datasets and tasks; tokenizer fertility;
train/eval leakage."""

from __future__ import annotations

import argparse
import json

TASKS_HELP = ("afriqa, afriqa-translate, tydi-mono, amqa, flores-x2en, flores-en2x, a BEIR "
              "folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv), or line-aligned parallel "
              "text: bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="list, fetch and inspect datasets; fertility and leakage checks",
        description="Built-in datasets are pinned to upstream commits and verified by sha256. "
        "Files go to the data cache ($XLIR_DATA_CACHE, default $XLIR_HOME/data); with "
        "XLIR_DATA_MIRROR set they are copied from that folder instead of downloaded.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list", help="every built-in dataset: languages, files, size, licence, cached or not",
        description="Show each built-in dataset with its pinned repository, languages, number "
        "of files and megabytes, licence, and whether it is already in the data cache.")
    listing.set_defaults(func=run_list)

    fetch = actions.add_parser(
        "fetch", help="download (or copy from the mirror) a dataset and verify its checksums",
        description="Fetch every file of NAME into the data cache, checking each sha256. Files "
        "already cached and correct are skipped; a failure names the file and leaves no "
        "partial file behind. Rerun to resume.")
    fetch.add_argument("name", metavar="NAME", help="afriqa, tydi, amqa, sib200, or all")
    fetch.set_defaults(func=run_fetch)

    show = actions.add_parser(
        "show", help="per-language query, judgment and document counts of a task",
        description="Load TASK and print, for each language queries are reported under: the "
        "number of queries, of judgments, and of documents each query searches.")
    _task_args(show, positional=True)
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(func=run_show)

    fert = actions.add_parser(
        "fertility", help="tokenizer pieces per word and unknown-piece rate per language",
        description="Tokenize the queries and documents of TASK, grouped by the language the "
        "text is written in, and print pieces per whitespace word, the unknown-piece rate and "
        "the number of words. High fertility means the tokenizer barely knows the language.")
    fert.add_argument("--model", required=True, metavar="PATH_OR_NAME",
                      help="multilingual-e5-small (after `xlir models prepare`) or any local "
                      "Hugging Face folder with a tokenizer")
    _task_args(fert)
    fert.add_argument("--max-texts", type=int, default=500, metavar="N",
                      help="texts per language and side (default 500)")
    fert.set_defaults(func=run_fertility)

    leak = actions.add_parser(
        "leakage", help="training passages or questions that also occur in an evaluation task",
        description="Compare the training pairs TRAIN with TASK: passages identical up to "
        "whitespace, near-identical passages (character 5-gram Jaccard >= threshold after "
        "normalising case and punctuation), identical questions, and shared titles.")
    leak.add_argument("--train", required=True, metavar="TRAIN",
                      help="tydi-en, tydi-ko, tydi-sw, afriqa-en, afriqa-native")
    leak.add_argument("--train-split", default="train", choices=["train", "dev"],
                      help="split of the training pairs (default train)")
    _task_args(leak)
    leak.add_argument("--threshold", type=float, default=0.9,
                      help="Jaccard threshold for near-identical passages (default 0.9)")
    leak.add_argument("--json", action="store_true", help="print the full JSON report")
    leak.set_defaults(func=run_leakage)


def _task_args(parser: argparse.ArgumentParser, positional: bool = False) -> None:
    if positional:
        parser.add_argument("task", metavar="TASK", help=TASKS_HELP)
    else:
        parser.add_argument("--task", required=True, metavar="TASK", help=TASKS_HELP)
    parser.add_argument("--split", default=None,
                        help="split (default test; for tydi-mono, test is TyDi's dev split)")
    parser.add_argument("--languages", default=None, metavar="L1,L2",
                        help="comma-separated language codes (any form: ha, hau, hau_Latn)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="task option, e.g. direction=en2x (flores-bitext), "
                        "direction=tgt2src (bitext:...) or language=hau_Latn (BEIR folder "
                        "without lang fields)")


def _load(args: argparse.Namespace):
    from xlir.data.tasks import load_task
    from xlir.errors import XlirError

    name = args.task
    split = args.split or "test"
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise XlirError(f"--option expects KEY=VALUE, got '{item}'")
        options[key.strip()] = value.strip()
    languages = [c for c in (args.languages or "").split(",") if c.strip()] or None
    return load_task(name, split, languages, **options)


def run_list(args: argparse.Namespace) -> int:
    from xlir.data.fetch import is_cached
    from xlir.data.registry import DATASETS

    print(f"{'dataset':<8} {'files':>5} {'MB':>6} {'cached':<6} {'licence':<30} languages")
    for d in DATASETS.values():
        langs = " ".join(d.languages) if len(d.languages) <= 12 else \
            f"{len(d.languages)} variants ({' '.join(d.languages[:3])} ...)"
        print(f"{d.name:<8} {len(d.files):>5} {d.size / 1e6:>6.1f} "
              f"{'yes' if is_cached(d.name) else 'no':<6} {d.licence:<30} {langs}")
        print(f"{'':<8} {d.repo}@{d.commit[:7]}: {d.description}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from xlir.data.fetch import fetch
    from xlir.data.registry import DATASETS

    names = list(DATASETS) if args.name == "all" else [args.name]
    for name in names:
        print(f"{name}: {fetch(name)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from xlir.data.languages import seen_in_pretraining

    task = _load(args)
    pools = task.pools()
    rows = {}
    for lang in task.languages:
        qids = [q for q in task.queries if task.query_lang[q] == lang]
        searched = {len(pools[task.query_pool[q]][1] if task.query_pool else task.corpus)
                    for q in qids}
        rows[lang] = {"queries": len(qids),
                      "judgments": sum(len(task.qrels.get(q, {})) for q in qids),
                      "documents": max(searched) if searched else 0,
                      "seen_by_xlmr": seen_in_pretraining(lang)}
    if args.json:
        print(json.dumps({"task": task.name, "split": task.split, "documents": len(task.corpus),
                          "primary_measure": task.primary_measure, "languages": rows}, indent=2))
        return 0
    print(f"{task.name} ({task.split}): {len(task.queries)} queries, {len(task.corpus)} "
          f"documents, primary measure {task.primary_measure}")
    print(f"{'language':<10} {'queries':>8} {'judgments':>10} {'documents':>10}  xlmr")
    for lang, r in rows.items():
        print(f"{lang:<10} {r['queries']:>8} {r['judgments']:>10} {r['documents']:>10}  "
              f"{'seen' if r['seen_by_xlmr'] else 'unseen'}")
    return 0


def _tokenizer(model: str):
    from pathlib import Path

    from transformers import AutoTokenizer

    if Path(model).expanduser().is_dir():
        return AutoTokenizer.from_pretrained(str(Path(model).expanduser()))
    from xlir.models import resolve_encoder

    return AutoTokenizer.from_pretrained(str(resolve_encoder(model)))


def run_fertility(args: argparse.Namespace) -> int:
    from xlir.data.checks import fertility, task_texts

    tokenizer = _tokenizer(args.model)
    texts = task_texts(_load(args), limit=args.max_texts)
    print(f"{'side':<10} {'language':<10} {'texts':>6} {'words':>8} {'pieces/word':>12} "
          f"{'unk rate':>9}")
    for side, by_lang in texts.items():
        for lang, r in sorted(fertility(tokenizer, by_lang).items()):
            print(f"{side:<10} {lang:<10} {r['n_texts']:>6} {r['n_words']:>8} "
                  f"{r['pieces_per_word']:>12.2f} {r['unk_rate']:>9.4f}")
    return 0


def run_leakage(args: argparse.Namespace) -> int:
    from xlir.data.checks import leakage
    from xlir.data.tasks import load_pairs

    task = _load(args)
    report = leakage(load_pairs(args.train, args.train_split), task, threshold=args.threshold)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"{args.train} ({args.train_split}) vs {task.name} ({task.split}):")
    for key, value in report.items():
        if key != "examples":
            print(f"  {key:<24} {value}")
    for kind, examples in report["examples"].items():
        for ex in examples:
            print(f"  e.g. {kind}: {json.dumps(ex, ensure_ascii=False)[:160]}")
    return 0
