"""Where one training step's time goes, outside the trainer: the loss xlir trains with
(MultipleNegativesRankingLoss) and torch's AdamW in its default (foreach) form, real TyDi
English pairs, 1 BM25 hard negative, batch 16, queries cut to 64 tokens and passages to 128.
The trainer uses the fused AdamW kernel (transformers' `adamw_torch_fused`), so the optimizer
share printed here is an upper bound on the trainer's.

    .venv/bin/python benchmarks/profile_train_step.py METHOD VARIANT [--steps 6] [--compile]   # ~1-2 min

`--compile` compiles the transformer (torch.compile, inductor, dynamic shapes) before the
first step; `--warmup N` leaves the first N steps (compilation included) out of the mean.

VARIANT: fp32 | bf16 (autocast, fp32 weights) | bf16-frozen (autocast, and the frozen
weights stored in bf16: autocast then has nothing to re-cast). Prints one JSON line
(seconds per step over steps 2..N, of which the optimizer step; the losses); `--profile`
adds torch.profiler's table of the last step, ops by self CPU time. Memory as the trainer
has it (xlir.malloc keeps freed memory); `XLIR_MALLOC=default` in the environment leaves glibc
to map and unmap every large tensor afresh, as before 2026-12-07.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from xlir.data.tasks import load_pairs  # noqa: E402
from xlir.encoder import passage_text  # noqa: E402
from xlir.malloc import keep_freed_memory  # noqa: E402
from xlir.models import resolve_encoder  # noqa: E402
from xlir.train import TrainConfig, _load_model  # noqa: E402
from xlir.trainer import build_loss, mine_hard_negatives  # noqa: E402

BATCH = 16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("method")
    p.add_argument("variant", choices=["fp32", "bf16", "bf16-frozen"])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile (inductor, dynamic shapes) the transformer first")
    p.add_argument("--warmup", type=int, default=1, help="first steps left out of the mean")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    keep_freed_memory()
    cfg = TrainConfig(method=a.method, lr=2e-5 if a.method == "full" else 3e-4)
    st = _load_model(resolve_encoder(None), cfg)
    pairs = load_pairs("tydi-en", "train")[: BATCH * a.steps]
    negatives = mine_hard_negatives(pairs, 1)
    loss_fn = build_loss(st, cfg)
    q_prompt = st.prompts.get("query", "")
    p_prompt = st.prompts.get("passage", st.prompts.get("document", ""))
    if a.variant == "bf16-frozen":
        for param in st.parameters():
            if not param.requires_grad:
                param.data = param.data.to(torch.bfloat16)
    if a.compile:
        st[0].model = torch.compile(st[0].model, dynamic=True)  # what forward calls
    optimizer = torch.optim.AdamW([q for q in st.parameters() if q.requires_grad], lr=cfg.lr)

    def features(texts, prompt, length):
        st.max_seq_length = length
        return st.tokenize([prompt + t for t in texts])

    steps, profiler = [], None
    for s in range(a.steps):
        batch = range(BATCH * s, BATCH * (s + 1))
        inputs = [features([pairs[i]["query"] for i in batch], q_prompt, 64),
                  features([passage_text(pairs[i]) for i in batch], p_prompt, 128),
                  features([negatives[i][0] for i in batch], p_prompt, 128)]
        if a.profile and s == a.steps - 1:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            profiler.__enter__()
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.variant != "fp32"):
            loss = loss_fn(inputs, None)
        loss.backward()
        before_step = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        end = time.perf_counter()
        if profiler is not None:
            profiler.__exit__(None, None, None)
        steps.append((end - start, end - before_step, float(loss)))
    timed = steps[a.warmup:]  # warm-up (and compilation) steps left out
    print(json.dumps({"method": a.method, "variant": a.variant, "compiled": a.compile,
                      "step_s": [round(t[0], 3) for t in steps],
                      "s_per_step": round(sum(t[0] for t in timed) / len(timed), 3),
                      "optimizer_s": round(sum(t[1] for t in timed) / len(timed), 3),
                      "losses": [round(t[2], 3) for t in steps]}))
    if profiler is not None:
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
