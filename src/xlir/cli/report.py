"""`xlir report STUDY_DIR`: the HTML + Markdown report of a study, from its files alone."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write the HTML + Markdown report of a study directory",
        description="Read a study directory (metrics, tasks, fertility, environment, model "
        "manifests, xQG outputs) and write STUDY_DIR/report/index.html (self-contained: plots "
        "inlined, opens in a browser with no server) and report.md with PNG figures beside it. "
        "Loads no model; runs in seconds.")
    p.add_argument("study_dir", help="a folder written by `xlir study`")
    p.add_argument("--out", help="output folder (default: STUDY_DIR/report)")
    p.set_defaults(func=run)


def run(args) -> int:
    from xlir.report import build_report

    print(build_report(args.study_dir, args.out))
    return 0
