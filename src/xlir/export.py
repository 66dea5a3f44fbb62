"""Export a trained run as a standalone model folder.

Mergeable methods become a plain sentence-transformers folder that `SentenceTransformer(path)`
loads with no xlir or peft at all: LoRA, DoRA and IA3 are folded into the weights
(`merge_and_unload`); full, BitFit and frozen are plain weights already. Prefix and prompt
tuning, bottleneck adapters and MAD-X change the computation itself (virtual tokens, extra
layers) and cannot be merged: they are exported as base model + adapter + `xlir-model.json`,
which `xlir.tuning.load_tuned` (and `xlir.encoder.load_encoder`) load. Either way the folder's
tokenizer loads without transformers 4.57's false "incorrect regex pattern" warning
(`xlir.models.pass_tokenizer_check`).

It does not train, quantise or convert to other runtimes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from xlir import tuning
from xlir.errors import InputError
from xlir.models import pass_tokenizer_check
from xlir.storage import atomic_dir, write_json

logger = logging.getLogger(__name__)

EXPORT_INFO = "xlir-export.json"


def export(run_dir: str | Path, out_dir: str | Path) -> dict:
    """Write the standalone folder `out_dir` for the run in `run_dir`; returns what was done:
    {"method", "merged": bool, "loader": "sentence-transformers" | "xlir.tuning.load_tuned",
    "note"}. The folder appears complete or not at all (built under a temporary name)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not tuning.is_tuned(run_dir):
        raise InputError("not a complete training run (no xlir-model.json); train it first", run_dir)
    manifest = tuning.read_manifest(run_dir)
    method = manifest["method"]
    with atomic_dir(out_dir) as tmp:
        if method in tuning.MERGEABLE:
            st = tuning.load_tuned(run_dir)
            if method in tuning.PEFT_METHODS:
                tuning.merge_peft(st)
            st.save(str(tmp))
            pass_tokenizer_check(tmp)
            info = {"method": method, "merged": True, "loader": "sentence-transformers",
                    "note": f"{method}: plain weights; load with SentenceTransformer(path)"}
        else:
            tuning.copy_base(manifest, run_dir, tmp)
            pass_tokenizer_check(tmp / "base")  # a base prepared by an older xlir
            info = {"method": method, "merged": False, "loader": "xlir.tuning.load_tuned",
                    "note": f"{method} cannot be merged into the base weights (it adds "
                            "virtual tokens or layers): exported base + adapter + xlir-model.json; "
                            "load with xlir.tuning.load_tuned(path)"}
        write_json(tmp / EXPORT_INFO, {**info, "source_run": str(run_dir.resolve())})
    if not info["merged"]:
        logger.warning(info["note"])
    return info
