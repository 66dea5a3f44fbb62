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
        "  xlir study configs/quick.yaml seeds=[1,2] out=study/q2\n"
        "  xlir study configs/full.yaml --executor dask --scheduler tcp://head:8786\n"
        "  xlir study configs/quick.yaml --executor dask-local:2\n")
    p.add_argument("config", nargs="?", help="study YAML (default: configs/quick.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. xqg.alphas=[0.01,0.1]")
    p.add_argument("--out", help="study directory (default: the config's `out`)")
    p.add_argument("--no-report", action="store_true", help="skip writing the report")
    p.add_argument("--executor", default="serial",
                   help="serial (default), dask (a running cluster: --scheduler) or dask-local:N "
                   "(N worker processes on this machine); stages run as Dask tasks")
    p.add_argument("--scheduler", help="Dask scheduler address for --executor dask, e.g. "
                   "tcp://host:8786 (the study folder and XLIR_HOME on a shared filesystem)")
    p.set_defaults(func=run)


def run(args) -> int:
    from xlir.study import Study, load_study_config

    config_path, overrides = args.config, list(args.overrides)
    if config_path and "=" in config_path and not config_path.endswith((".yaml", ".yml")):
        config_path, overrides = None, [config_path, *overrides]
    study = Study(load_study_config(config_path, overrides), out=args.out)
    executor = None
    if args.executor != "serial" or args.scheduler:
        from xlir.study_dask import DaskExecutor

        executor = DaskExecutor.from_cli(args.executor, args.scheduler)
        executor.connect(study.config.resources)  # before anything is written
    try:
        root = study.run(executor)
    finally:
        if executor is not None:
            executor.close()
    print(f"study finished: {root}")
    if not args.no_report:
        from xlir.report import build_report

        print(f"report: {build_report(root)}")
    return 0
