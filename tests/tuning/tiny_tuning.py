"""Helpers of the tuning tests: the tiny encoder (built in tests/conftest.py) tuned by a method,
a few MNRL steps on four pairs, and embeddings to compare."""

from __future__ import annotations

import torch

from xlir import tuning

QUERIES = ["where is the river", "who wrote the book", "when did the war end", "what is the capital"]
PASSAGES = ["the river runs through the city", "the book was written by a poet",
            "the war ended in the year", "Nairobi ni mji mkuu wa Kenya"]
# Per-method learning rates that move the tiny model in 5 steps (prompt tuning barely moves).
LR = {"ia3": 0.1, "prompt": 0.05, "prefix": 0.1, "bitfit": 0.02}


def load(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def tuned(path, method, seed=0, **options):
    torch.manual_seed(seed)
    cfg = tuning.method_config(method, options)
    return tuning.apply_method(load(path), cfg), cfg


def encode(st, texts=QUERIES + ["Nairobi ni mji mkuu wa Kenya a poet from Lagos wrote the book"]):
    st.eval()
    return st.encode(texts, convert_to_tensor=True, prompt_name="query")


def mnrl_loss(st):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    loss = MultipleNegativesRankingLoss(st)
    features = [st.preprocess(QUERIES, prompt="query: "), st.preprocess(PASSAGES, prompt="passage: ")]
    return loss(features, None)


def steps(st, n, lr):
    params = [p for p in st.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=lr)
    st.train()
    losses = []
    for _ in range(n):
        loss = mnrl_loss(st)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    return losses
