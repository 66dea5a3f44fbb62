"""`xlir results STUDY_DIR --out DIR`: results of record; `--compare DIR`: check a rerun."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "results", help="write a study's results of record, or check a rerun against them",
        description="--out DIR: write the small, committable copy of a finished study "
        "(configs, environment, every metrics.json with the per-query headline scores in one "
        "gzipped table per task, model manifests, embedding drift, the decision table and the "
        "report's Markdown and figures; no runs, embeddings or models). --compare DIR: check "
        "that the study folder's metrics equal those results of record (macro, per-language and "
        "per-query scores within --tol); exits 1 and lists what differs otherwise.")
    p.add_argument("study_dir", help="a folder written by `xlir study`")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", metavar="DIR", help="folder to write (replaced)")
    what.add_argument("--compare", metavar="DIR", help="results of record to check against")
    what.add_argument("--readme", action="store_true",
                      help="print the README's answer tables from results of record STUDY_DIR")
    p.add_argument("--tol", type=float, default=1e-6, help="--compare tolerance (default 1e-6)")
    p.set_defaults(func=run)


def run(args) -> int:
    from xlir.results import compare_results, export_results, readme_tables

    if args.readme:
        print(readme_tables(args.study_dir), end="")
        return 0
    if args.out:
        sizes = export_results(args.study_dir, args.out)
        print(f"{args.out}: {len(sizes)} files, {sum(sizes.values()) / 1e6:.2f} MB")
        return 0
    diffs = compare_results(args.study_dir, args.compare, args.tol)
    for line in diffs:
        print(line)
    print(f"{args.study_dir} vs {args.compare}: "
          + (f"{len(diffs)} (task, system) pairs differ" if diffs else f"equal within {args.tol:g}"))
    return 1 if diffs else 0
