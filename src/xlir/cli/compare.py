"""`xlir compare`: per-language significance of run A against each other run on a task."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.cli.evaluate import add_family_arg, add_task_args, encoder_family_of, task_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="per-language paired significance tests of run A vs other runs",
        description="Score RUN_A and each further run on the task, then per language: the "
        "mean of the measure for both, the delta (A - B), a two-sided paired randomisation "
        "test (10,000 permutations, seeded) and a paired t-test, the randomisation p-value "
        "Holm-Bonferroni corrected across languages, and 95% bootstrap intervals. Markers: "
        "'+' A significantly better, '-' significantly worse (corrected p < --alpha). The "
        "macro row tests the per-query differences weighted so every language counts equally.",
        epilog="example: xlir compare runs/hybrid.trec runs/bm25.trec --task afriqa")
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="TREC run files: the first (A) is compared to each other one")
    add_task_args(parser)
    add_family_arg(parser, "the packaged multilingual-e5-small's (me5)")
    parser.add_argument("--measure", default=None, help="default: the task's primary measure")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--permutations", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the comparison JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xlir.errors import XlirError
    from xlir.evaluate import evaluate_run
    from xlir.retrieve import read_trec_run
    from xlir.stats import compare, comparison_to_json
    from xlir.storage import write_json

    if len(args.runs) < 2:
        raise XlirError("give at least two run files (A and one to compare it with)")
    task = task_from_args(args)
    measure = args.measure or task.primary_measure
    family = encoder_family_of(args)
    results = [evaluate_run(read_trec_run(p), task, [measure], encoder_family=family)
               for p in args.runs]
    report = {}
    for path, other in zip(args.runs[1:], results[1:]):
        rows = compare(results[0], other, measure, args.alpha, args.permutations, seed=args.seed)
        print(format_rows(rows, f"{measure}: A={args.runs[0].name}  B={path.name}", args.alpha))
        report[path.name] = comparison_to_json(rows)
    if args.out:
        write_json(args.out, {"a": str(args.runs[0]), "measure": measure, "vs": report})
    return 0


def format_rows(rows, title: str, alpha: float) -> str:
    head = (f"{'language':<12} {'n':>5} {'A':>7} {'B':>7} {'delta':>8} {'p_rand':>7} "
            f"{'p_t':>7} {'p_holm':>7} {'A 95% CI':>15}  sig")
    lines = [title, head, "-" * len(head)]
    for r in rows:
        sig = "+" if r.a_better else ("-" if r.delta < 0 and r.p_holm < alpha else "")
        ci = f"[{r.ci_a[0]:.3f},{r.ci_a[1]:.3f}]"
        lines.append(f"{r.language:<12} {r.n:>5} {r.mean_a:>7.4f} {r.mean_b:>7.4f} "
                     f"{r.delta:>+8.4f} {r.p_randomization:>7.4f} {r.p_ttest:>7.4f} "
                     f"{r.p_holm:>7.4f} {ci:>15}  {sig}")
    return "\n".join(lines)
