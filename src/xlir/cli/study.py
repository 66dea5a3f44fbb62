"""`xlir study [CONFIG] [key=value ...]`: run a whole study grid; resumes where it stopped."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "study", help="run a study grid (default: the quick preset) and write its report",
        description="Expand a YAML study grid (encoder x tuning method x seed x task x xQG x "
        "alpha) into runs under a study directory, run every stage whose outputs are missing, "
        "then write the report. Killing it and running the same command again resumes: "
        "finished stages are skipped and the numbers are the same as an uninterrupted run. "
        "Without CONFIG it runs configs/quick.yaml.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  xlir study\n  xlir study configs/full.yaml\n"
        "  xlir study configs/quick.yaml seeds=[1,2] out=study/q2\n")
    p.add_argument("config", nargs="?", help="study YAML (default: configs/quick.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. xqg.alphas=[0.01,0.1]")
    p.add_argument("--out", help="study directory (default: the config's `out`)")
    p.add_argument("--no-report", action="store_true", help="skip writing the report")
    p.set_defaults(func=run)


def run(args) -> int:
    from xlir.study import Study, load_study_config

    config_path, overrides = args.config, list(args.overrides)
    if config_path and "=" in config_path and not config_path.endswith((".yaml", ".yml")):
        config_path, overrides = None, [config_path, *overrides]
    study = Study(load_study_config(config_path, overrides), out=args.out)
    root = study.run()
    print(f"study finished: {root}")
    if not args.no_report:
        from xlir.report import build_report

        print(f"report: {build_report(root)}")
    return 0
