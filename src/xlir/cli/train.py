"""`xlir train --config FILE [key=value ...] --out RUN_DIR`: train one bi-encoder run."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train the bi-encoder with one tuning method into a run folder",
        description="Train the encoder (default: the packaged multilingual-e5-small) on query/"
        "passage pairs with MultipleNegativesRankingLoss (in-batch + BM25 hard negatives) and "
        "one tuning method: full, bitfit, frozen, lora, dora, ia3, prefix, prompt, bottleneck, "
        "madx. RUN_DIR receives train_config.json, checkpoints/, dev_metrics.json, "
        "train_metrics.json and the tuned model with xlir-model.json (written last). Killing "
        "it and running the same command again resumes from the last checkpoint; a complete "
        "run is not trained again. Under `torchrun --nproc_per_node=N` it trains data-parallel "
        "(gloo, CPU).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  xlir train --config configs/train.yaml --out runs/lora\n"
        "  xlir train --config configs/train.yaml method=bottleneck "
        "method_options.variant=double_seq_bn --out runs/houlsby\n"
        "  xlir train method=full max_steps=50 batch_size=16 lr=2e-5 --out runs/full\n"
        "keys (TrainConfig): model method method_options train dev max_pairs max_dev_pairs "
        "epochs max_steps\n  batch_size grad_accum lr warmup_ratio weight_decay temperature "
        "loss mini_batch_size\n  gather_across_devices hard_negatives batch_sampler "
        "query_max_length passage_max_length seed\n  eval_metric eval_steps load_best "
        "save_total_limit logging_steps keep_checkpoints\n")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. method=lora lr=1e-4 method_options.r=16")
    p.add_argument("--config", help="training YAML (e.g. configs/train.yaml); default: "
                   "TrainConfig's defaults")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write")
    p.set_defaults(func=run)


def run(args) -> int:
    from xlir.config import load_config
    from xlir.train import TrainConfig, train

    config = load_config(TrainConfig, args.config, args.overrides)
    summary = train(config, args.out)
    if summary:  # empty on non-zero ranks under torchrun
        dev = summary.get("dev_metrics", {})
        metric = summary.get("eval_metric", config.eval_metric)
        print(f"{summary['method']}: trainable {summary['trainable_params']:,} of "
              f"{summary['total_params']:,} params, saved {summary['saved_bytes'] / 1e6:.2f} MB, "
              f"dev {metric} {dev.get(metric, float('nan')):.4f} -> {args.out}")
    return 0
