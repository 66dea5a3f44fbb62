"""`xlir export RUN_DIR --out DIR`: a standalone model folder from a training run."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a standalone model folder from a training run",
        description="LoRA, DoRA and IA3 are merged into the base weights; full, BitFit and "
        "frozen are plain weights already: DIR is then a plain sentence-transformers folder "
        "(SentenceTransformer(DIR) loads it, no xlir needed) that encodes like the run's model "
        "(cosine >= 0.9999). Prefix, prompt, bottleneck and MAD-X cannot be merged: DIR holds "
        "the base model, the adapter and xlir-model.json, loaded by xlir.tuning.load_tuned.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a complete `xlir train` run folder")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (replaced)")
    p.set_defaults(func=run)


def run(args) -> int:
    from xlir.export import export

    info = export(args.run_dir, args.out)
    print(f"{info['note']} -> {args.out}")
    return 0
