"""Query generation on the tiny Gemma-3 fixture: shared-prefix decoding equals plain per-prompt
`generate` token for token, sampling is reproducible per row, the JSONL file resumes after a
kill, and LoRA training lowers the loss, saves, resumes and loads back."""

from __future__ import annotations

import json
import math

import pytest

from xlir import qgen
from xlir.errors import ConfigError, InputError, XlirError

PASSAGES = [("d1", "Kano", "Kano birni ne a Najeriya"),
            ("d2", "", "the river runs through the city of Lagos"),
            ("d3", "Nairobi", "Nairobi ni mji mkuu wa Kenya the capital")]
LANGS = ["hau_Latn", "yor_Latn", "swh_Latn", "eng_Latn"]


@pytest.fixture(scope="module")
def tiny(tiny_causal_lm_dir):
    return qgen.load_generator(tiny_causal_lm_dir)


def _reference(model, tokenizer, title, text, lang, cfg, stops):
    """Per-prompt HF `generate` with the same rules (no repeated n-gram of new tokens)."""
    from test_qgen_decode import _reference as reference

    return reference(model, tokenizer, title, text, lang, cfg, stops)


@pytest.mark.parametrize("stop_pieces", [[], ["l", "p"]])
def test_shared_prefix_greedy_equals_per_prompt_generate(tiny, stop_pieces):
    model, tokenizer, _ = tiny
    cfg = qgen.GenerateConfig(languages=LANGS, decoding="greedy", max_new_tokens=10,
                              passages_per_batch=3)
    # Extra stop tokens make rows finish at different steps, which exercises row pruning.
    stops = [tokenizer.eos_token_id] + [tokenizer.convert_tokens_to_ids(p) for p in stop_pieces]
    rows = qgen.generate_questions(model, tokenizer, PASSAGES, cfg, stops)
    assert [(r["doc_id"], r["lang"], r["sample"]) for r in rows] == [
        (d, lang, 0) for d, _, _ in PASSAGES for lang in LANGS]
    lengths = set()
    for (doc, title, text), i in zip(PASSAGES, range(0, len(rows), len(LANGS))):
        for lang, row in zip(LANGS, rows[i:i + len(LANGS)]):
            expected = _reference(model, tokenizer, title, text, lang, cfg, stops)
            assert row["token_ids"] == expected, (doc, lang)
            lengths.add(len(expected))
    if stop_pieces:
        assert len(lengths) > 1  # rows really stopped at different steps


def test_sampling_is_reproducible_per_row_whatever_the_batch(tiny):
    model, tokenizer, _ = tiny
    cfg = qgen.GenerateConfig(languages=LANGS[:2], samples=3, max_new_tokens=8, seed=7)
    together = qgen.generate_questions(model, tokenizer, PASSAGES, cfg)
    alone = qgen.generate_questions(model, tokenizer, PASSAGES[1:2], cfg)
    assert [r["token_ids"] for r in together[6:12]] == [r["token_ids"] for r in alone]
    assert len({tuple(r["token_ids"]) for r in alone}) > 1  # samples differ from each other


def test_pick_next_top_p_keeps_only_the_nucleus():
    import torch

    logits = torch.tensor([[0.0, 5.0, 4.0, -3.0]]).log_softmax(-1)
    cfg = qgen.GenerateConfig(top_p=0.5, top_k=3)
    gens = [torch.Generator().manual_seed(0)]
    picks = {int(qgen.pick_next(logits, cfg, gens)) for _ in range(50)}
    assert picks == {1}  # token 1 alone holds > 50% of the mass
    cfg = qgen.GenerateConfig(top_p=1.0, top_k=2)
    picks = {int(qgen.pick_next(logits, cfg, gens)) for _ in range(200)}
    assert picks == {1, 2}  # top-k cuts tokens 0 and 3


def test_config_validation():
    with pytest.raises(ConfigError):
        qgen.GenerateConfig(languages=[])
    with pytest.raises(ConfigError):
        qgen.GenerateConfig(decoding="greedy", samples=2)
    with pytest.raises(XlirError):
        qgen.language_name("xxx_Latn")
    assert qgen.language_name("hau_Latn") == "Hausa"


def _corpus():
    return {d: {"title": t, "text": x} for d, t, x in PASSAGES}


def test_generate_corpus_jsonl_schema(tiny, tmp_path):
    model, tokenizer, _ = tiny
    cfg = qgen.GenerateConfig(languages=LANGS[:2], samples=2, max_new_tokens=6)
    out = tmp_path / "q.jsonl"
    assert qgen.generate_corpus(model, tokenizer, _corpus(), out, cfg, "tiny", progress=False) == 12
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12
    assert set(rows[0]) == {"doc_id", "lang", "question", "generator", "settings", "sample"}
    assert rows[0]["generator"] == "tiny" and rows[0]["settings"] == cfg.settings()
    assert [(r["doc_id"], r["lang"], r["sample"]) for r in rows[:4]] == [
        ("d1", "hau_Latn", 0), ("d1", "hau_Latn", 1), ("d1", "yor_Latn", 0), ("d1", "yor_Latn", 1)]
    # Complete: a rerun writes nothing.
    assert qgen.generate_corpus(model, tokenizer, _corpus(), out, cfg, "tiny", progress=False) == 0


def test_generate_corpus_resumes_after_a_torn_write(tiny, tmp_path):
    model, tokenizer, _ = tiny
    cfg = qgen.GenerateConfig(languages=LANGS[:2], samples=1, max_new_tokens=6)
    full = tmp_path / "full.jsonl"
    qgen.generate_corpus(model, tokenizer, _corpus(), full, cfg, "tiny", progress=False)
    lines = full.read_text().splitlines(keepends=True)
    # Killed after passage d1, one row of d2, and half a row of d2.
    part = tmp_path / "part.jsonl"
    part.write_text("".join(lines[:3]) + lines[3][:17])
    assert qgen.generate_corpus(model, tokenizer, _corpus(), part, cfg, "tiny", progress=False) == 4
    assert part.read_text() == full.read_text()
    for other in (qgen.GenerateConfig(languages=LANGS[:2], samples=1, max_new_tokens=7),
                  qgen.GenerateConfig(languages=LANGS[1:3], samples=1, max_new_tokens=6)):
        with pytest.raises(InputError, match="line 1"):
            qgen.generate_corpus(model, tokenizer, _corpus(), part, other, "tiny", progress=False)


def test_read_corpus_beir(tmp_path):
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "a", "title": "T", "text": "x"}\n{"_id": 2, "text": "y"}\n')
    assert qgen.read_corpus(str(tmp_path)) == {"a": {"title": "T", "text": "x"},
                                               "2": {"title": "", "text": "y"}}
    (tmp_path / "bad.jsonl").write_text('{"title": "T"}\n')
    with pytest.raises(InputError, match="line 1"):
        qgen.read_corpus(str(tmp_path / "bad.jsonl"))


# ----------------------------------------------------------------------------- training

PAIRS = [{"query": q, "query_lang": lang, "title": "", "text": t} for q, lang, t in [
    ("what is the capital of Kenya", "eng_Latn", "Nairobi ni mji mkuu wa Kenya"),
    ("Kano birni ne", "hau_Latn", "Kano birni ne a Najeriya"),
    ("who wrote the book", "eng_Latn", "the book was written by a poet"),
    ("Ilu Eko wa ni", "yor_Latn", "Ilu Eko wa ni Naijiria"),
]]


def _train_cfg(base, **kw):
    from xlir.qgen_train import QGenTrainConfig

    args = dict(base=str(base), r=16, alpha=32, dropout=0.0, lr=3e-3, steps=8, batch_size=4,
                target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                "down_proj"],
                save_every=3, seed=0)
    return QGenTrainConfig(**{**args, **kw})


def test_encode_pair_masks_the_prompt(tiny, tiny_causal_lm_dir):
    from xlir.qgen_train import encode_pair

    _, tokenizer, _ = tiny
    ids, labels = encode_pair(tokenizer, PAIRS[0], _train_cfg(tiny_causal_lm_dir))
    n_prompt = len(qgen.passage_ids(tokenizer, "", PAIRS[0]["text"], 128)) + len(
        qgen.tail_ids(tokenizer, "eng_Latn"))
    assert labels[:n_prompt] == [-100] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tokenizer.eos_token_id


def test_train_lowers_loss_saves_and_loads(tiny_causal_lm_dir, tmp_path):
    from xlir.qgen_train import train_generator

    cfg = _train_cfg(tiny_causal_lm_dir)
    manifest = train_generator(PAIRS, cfg, tmp_path / "run", progress=False)
    losses = manifest["losses"]
    assert manifest["complete"] and len(losses) == 8 and losses[-1] < losses[0] - 0.2
    assert manifest["pairs_per_language"] == {"eng_Latn": 2, "hau_Latn": 1, "yor_Latn": 1}
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "run" / "checkpoint").exists()
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert train_generator(PAIRS, cfg, tmp_path / "run", progress=False) == manifest  # skipped
    assert stamp == {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file()}
    model, tokenizer, name = qgen.load_generator(tmp_path / "run")
    assert name == "run"
    rows = qgen.generate_questions(model, tokenizer, PASSAGES[:1], qgen.GenerateConfig(
        languages=["hau_Latn"], decoding="greedy", max_new_tokens=6))
    assert rows[0]["doc_id"] == "d1"


def test_generator_holds_out_whole_passages_for_a_dev_loss_curve(tiny_causal_lm_dir, tmp_path):
    from xlir.data.checks import hold_out as split_dev
    from xlir.qgen_train import train_generator

    # 12 passages, each asked about in two languages: 24 pairs, so 2 (a tenth) are held out.
    pairs = [{"query": f"what about {j}", "query_lang": lang, "title": "",
              "text": f"the river runs through the city number {j}"}
             for j in range(12) for lang in ("hau_Latn", "yor_Latn")]
    train, dev = split_dev(pairs, 64, seed=0)
    assert len(dev) == 2 and len(train) == 22
    assert not {p["text"] for p in dev} & {p["text"] for p in train}  # whole passages
    assert split_dev(pairs, 64, seed=0) == (train, dev)
    assert split_dev(pairs, 0, seed=0) == (pairs, [])
    assert split_dev(pairs[:9], 64, seed=0) == (pairs[:9], [])  # under 10 pairs: no dev set
    manifest = train_generator(pairs, _train_cfg(tiny_causal_lm_dir, steps=6, eval_every=4),
                               tmp_path / "run", progress=False)
    assert [step for step, _ in manifest["dev_losses"]] == [4, 6]  # every 4 steps and the last
    assert all(math.isfinite(loss) for _, loss in manifest["dev_losses"])
    assert sum(manifest["dev_pairs_per_language"].values()) == 2
    assert sum(manifest["pairs_per_language"].values()) == 22


def test_train_resumes_from_checkpoint(tiny_causal_lm_dir, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from xlir import qgen_train

    cfg = _train_cfg(tiny_causal_lm_dir, steps=6, save_every=3, dropout=0.1)
    full = qgen_train.train_generator(PAIRS, cfg, tmp_path / "a", progress=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(qgen_train, "_finish", killed)  # dies after step 6, checkpoint at 3
    with pytest.raises(KeyboardInterrupt):
        qgen_train.train_generator(PAIRS, cfg, tmp_path / "b", progress=False)
    assert (tmp_path / "b" / "checkpoint" / "state.json").is_file()
    monkeypatch.undo()
    resumed = qgen_train.train_generator(PAIRS, cfg, tmp_path / "b", progress=False)
    # Steps 4-6 rerun from the checkpoint (adapter, AdamW and random state) exactly as without
    # the kill: same losses and the same adapter weights (LoRA dropout is on in this config).
    assert cfg.dropout > 0
    assert resumed["losses"] == full["losses"]
    a, b = (load_file(tmp_path / x / "adapter" / "adapter_model.safetensors") for x in "ab")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_train_refuses_test_split_and_leaked_questions():
    from xlir.qgen_train import QGenTrainConfig, check_leakage

    with pytest.raises(ConfigError):
        QGenTrainConfig(split="test")
    from xlir.data.task import Task

    def task(query):
        return Task("t", "test", {"x": {"title": "", "text": "Kano birni ne a Najeriya"}},
                    {"q1": query}, {"q1": {"x": 1}}, {"q1": "eng_Latn"}, {"x": "hau_Latn"})

    kept, report = check_leakage(PAIRS, task("  Who wrote the BOOK "))
    # Its question is judged (up to case and spaces), and so is the Kano pair's passage.
    assert [p["query"] for p in kept] == ["what is the capital of Kenya", "Ilu Eko wa ni"]
    assert report["dropped_questions"] == 1 and report["identical_questions"] == 1
    kept, report = check_leakage(PAIRS, task("who wrote the poem"))
    # The question is new, but the pair's passage is the one the task judges: dropped too.
    assert [p["text"] for p in kept] == [p["text"] for p in PAIRS
                                         if p["text"] != "Kano birni ne a Najeriya"]
    assert report["identical_passages"] == 1 and report["dropped_questions"] == 0
    assert report["dropped_pairs"] == len(PAIRS) - len(kept) > 0


@pytest.mark.real
def test_real_generator_trains_and_generates(tmp_path):
    """The packaged gemma-3-270m: 2 LoRA steps on 4 AfriQA-train pairs, then 2 passages x 2
    languages end to end, greedy rows equal to plain `generate`. (Speed is measured in
    benchmarks/bench_qgen.py, not asserted here.)"""
    from xlir.data.tasks import load_pairs
    from xlir.models import prepare_generator
    from xlir.qgen_train import QGenTrainConfig, train_generator

    base = prepare_generator()
    rows = load_pairs("afriqa-native", "train")
    pairs = [r for r in rows if r["query_lang"] == "hau_Latn"][:2] + [
        r for r in rows if r["query_lang"] == "yor_Latn"][:2]
    cfg = QGenTrainConfig(base=str(base), steps=2, batch_size=2, max_passage_tokens=48,
                          dtype="bfloat16", save_every=100, eval_task="")
    manifest = train_generator(pairs, cfg, tmp_path / "run", progress=False)
    assert manifest["steps"] == 2 and all(math.isfinite(x) for x in manifest["losses"])
    model, tokenizer, name = qgen.load_generator(tmp_path / "run", "bfloat16")
    corpus = {p["doc_id"]: {"title": p["title"], "text": p["text"]} for p in pairs[1:3]}
    gen = qgen.GenerateConfig(languages=["hau_Latn", "yor_Latn"], decoding="greedy",
                              max_new_tokens=8, max_passage_tokens=48)
    assert qgen.generate_corpus(model, tokenizer, corpus, tmp_path / "q.jsonl", gen, name,
                                progress=False) == 4
    written = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [(r["doc_id"], r["lang"]) for r in written] == [
        (d, lang) for d in corpus for lang in gen.languages]
    from test_qgen_decode import _reference as restricted_reference

    # The file was written with each language's scores (the default): the same rows come from
    # generate_questions with those scores, and equal per-prompt `generate` with a logits
    # processor adding the same scores.
    stops = qgen.stop_token_ids(tokenizer)
    vocab = qgen.language_vocabularies(tokenizer, gen.languages, stops, gen.language_bias)
    scores = {lang: v["scores"] for lang, v in vocab.items()}
    assert all(v["language_ids"] > 1000 and v["sentences"]["sib200"] > 900 for v in vocab.values())
    fast = qgen.generate_questions(model, tokenizer, [(d, c["title"], c["text"])
                                                      for d, c in corpus.items()], gen, stops,
                                   scores)
    for row in fast:
        c = corpus[row["doc_id"]]
        ref = restricted_reference(model, tokenizer, c["title"], c["text"], row["lang"], gen,
                                   stops, scores)
        assert row["token_ids"] == ref
    assert [r["question"] for r in fast] == [r["question"] for r in written]


def test_read_generated_validates_rows_and_names_the_line(tmp_path):
    from xlir.errors import InputError

    path = tmp_path / "q.jsonl"
    path.write_text('{"doc_id": "d1", "lang": "hau_Latn", "question": "ina?"}\n\n'
                    '{"passage_id": "d2", "question": "nibo?"}\n', encoding="utf-8")
    rows = qgen.read_generated(path, corpus={"d1": {}, "d2": {}})
    assert [(r["doc_id"], r["line"], r["question"]) for r in rows] == [("d1", 1, "ina?"),
                                                                       ("d2", 3, "nibo?")]
    with pytest.raises(InputError, match=r"q.jsonl, line 3, field 'doc_id': doc id 'd2'"):
        qgen.read_generated(path, corpus={"d1": {}})
    path.write_text('{"doc_id": "d1"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 1.*'question'"):
        qgen.read_generated(path)


def test_encode_generated_groups_vectors_by_passage(tiny_st_encoder_dir, tmp_path):
    from xlir.encoder import load_encoder
    from xlir.index import encode_generated

    encoder = load_encoder(tiny_st_encoder_dir)
    rows = [{"doc_id": "d1", "line": 1, "question": "where is the river"},
            {"doc_id": "d2", "line": 2, "question": "who wrote the book"},
            {"doc_id": "d1", "line": 3, "question": "the river runs"},
            {"doc_id": "d3", "line": 4, "question": "  "}]
    got = encode_generated(encoder, rows, tmp_path, batch_size=2)
    assert sorted(got) == ["d1", "d2"] and got["d1"].shape == (2, 32)
    want = encoder.encode_queries(["where is the river", "the river runs"])
    assert abs(got["d1"] - want).max() < 1e-5
