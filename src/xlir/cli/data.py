"""`xlir data`: list, fetch and inspect the built-in datasets and tasks; tokenizer fertility;
train/eval leakage."""

from __future__ import annotations

import argparse
import json

TASKS_HELP = ("afriqa, afriqa-translate, tydi-mono, amqa, flores-x2en, flores-en2x, a BEIR "
              "folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv), or line-aligned parallel "
              "text: bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG[,tgt2src]")


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
        "leakage", help="training questions or passages that an evaluated split also judges",
        description="Compare training pairs with evaluated splits. Exact, per source, split, "
        "language and kind: training questions equal to a judged question (case and "
        "punctuation normalised), training passages that are a judged passage by doc id or by "
        "text (NFKC, case-folded, whitespace collapsed). Near, per source and split: passages "
        "at character 5-gram Jaccard >= threshold, and shared titles. --study checks every "
        "training source of a study config against every task it evaluates, reduced as the "
        "study reduces them; otherwise give --train and --task.",
        epilog="examples: xlir data leakage --study configs/quick.yaml\n"
        "          xlir data leakage --train afriqa-native,tydi-sw --task afriqa",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    leak.add_argument("--study", metavar="CONFIG", default=None,
                      help="a study config: its dense training sources (train.train of every "
                      "tuned method) and xQG generator sources against its tasks")
    leak.add_argument("--train", default=None, metavar="SOURCES",
                      help="comma-separated training sources: tydi-en, tydi-ko, tydi-sw, "
                      "afriqa-en, afriqa-native, or a BEIR folder")
    leak.add_argument("--train-split", default="train", choices=["train", "dev"],
                      help="split of the --train pairs (default train)")
    _task_args(leak, required=False)
    leak.add_argument("--threshold", type=float, default=0.9,
                      help="Jaccard threshold for near-identical passages (default 0.9)")
    leak.add_argument("--json", action="store_true", help="print the full JSON report")
    leak.set_defaults(func=run_leakage)


def _task_args(parser: argparse.ArgumentParser, positional: bool = False,
               required: bool = True) -> None:
    if positional:
        parser.add_argument("task", metavar="TASK", help=TASKS_HELP)
    else:
        parser.add_argument("--task", required=required, metavar="TASK", help=TASKS_HELP)
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
    from xlir.data.checks import leak_counts, leakage
    from xlir.errors import XlirError

    own = [f"--{name}" for name in ("train", "task", "split", "languages", "option")
           if getattr(args, name)]
    if args.study and own:
        raise XlirError(f"--study takes its sources and tasks from the config; drop "
                        f"{', '.join(own)}")
    if args.study:
        from xlir.study import load_study_config

        config = load_study_config(args.study)
        sources, tasks = _study_sources(config), _study_tasks(config)
    elif not (args.train and args.task):
        raise XlirError("--train and --task go together (or give --study CONFIG)")
    else:
        sources = _load_sources(args.train.split(","), args.train_split)
        task = _load(args)
        tasks = {f"{task.name}/{task.split}": task}
    rows = leak_counts(sources, tasks)
    near = [{"source": name, "split": label, **leakage(pairs, task, threshold=args.threshold)}
            for name, pairs in sources.items() for label, task in tasks.items()]
    if args.json:
        print(json.dumps({"counts": rows, "near": near}, indent=2, ensure_ascii=False))
        return 0
    print(format_leak_counts(rows))
    print(f"\nnear duplicates (character 5-gram Jaccard >= {args.threshold}):")
    for r in near:
        print(f"  {r['source']} vs {r['split']}: {r['train_passages']} training passages, "
              f"{r['identical_passages']} identical and {r['near_identical_passages']} "
              f"near-identical to a document ({r['judged_documents_hit']} judged), "
              f"{r['shared_titles']} shared titles")
        for kind, examples in r["examples"].items():
            for ex in examples:
                print(f"    e.g. {kind}: {json.dumps(ex, ensure_ascii=False)[:160]}")
    return 0


def format_leak_counts(rows: list[dict]) -> str:
    """The rows of `checks.leak_counts` that found something, then each source-split pair
    that found nothing."""
    head = (f"{'source':<16} {'split':<24} {'language':<10} {'kind':<13} {'train pairs':>11} "
            f"{'evaluated queries':>22}")
    lines = ["exact leakage: training pairs vs what each evaluated split judges", head,
             "-" * len(head)]
    clean = []
    for source, split in dict.fromkeys((r["source"], r["split"]) for r in rows):
        hits = [r for r in rows if (r["source"], r["split"]) == (source, split)
                and r["eval_queries"]]
        if not hits:
            clean.append(f"{source} vs {split}")
        for r in hits:
            share = f"{r['eval_queries']} / {r['of']} ({100 * r['eval_queries'] / r['of']:.1f}%)"
            lines.append(f"{source:<16} {split:<24} {r['language']:<10} {r['kind']:<13} "
                         f"{r['train_pairs']:>11} {share:>22}")
    if clean:
        lines.append("no exact overlap: " + "; ".join(clean))
    return "\n".join(lines)


def _load_sources(names: list[str], split: str) -> dict[str, list[dict]]:
    from xlir.data.tasks import load_pairs

    return {name if split == "train" else f"{name}/{split}": load_pairs(name, split)
            for name in (n.strip() for n in names) if name}


def _study_sources(config) -> dict[str, list[dict]]:
    """The pairs every training stage of the study reads: each tuned method's train.train
    sources (train split) and, with xQG on, the generator's sources and split."""
    from xlir.config import from_dict
    from xlir.qgen_train import QGenTrainConfig
    from xlir.study_config import train_config
    from xlir.study_plan import Plan

    plan = Plan(config)  # the systems, no study folder
    dense = [name for method, seed in plan.system_specs.values() if method.name != "frozen"
             for name in train_config(config, method, seed).train]
    sources = _load_sources(list(dict.fromkeys(dense)), "train")
    if config.xqg.enabled:
        qgen = from_dict(QGenTrainConfig, dict(config.xqg.train))
        for split in qgen.split.split("+"):
            sources.update(_load_sources(qgen.sources, split))
    return sources


def _study_tasks(config) -> dict:
    """label/split -> the task as the study evaluates it (sampled with the study's seed)."""
    from xlir.data.tasks import load_task

    tasks = {}
    for spec in config.tasks:
        task = load_task(spec.name, split=spec.split, languages=spec.languages, **spec.options)
        if spec.max_queries_per_language is not None or spec.distractors is not None:
            task = task.sample(spec.max_queries_per_language, spec.distractors, config.seed)
        tasks[f"{spec.label}/{spec.split}"] = task
    return tasks
