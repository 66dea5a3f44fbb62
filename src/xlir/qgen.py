"""Cross-lingual query generation (xQG): questions about each passage, in each chosen language.

The prompt puts the language name last, so every language shares the passage prefix:
    <bos>{title}: {passage}\\nGenerate a {Language} question for this passage.\\nQuestion:

Prompts are built from token lists (prefix ids + tail ids), never by re-tokenizing a joined
string, so training, shared-prefix generation and a plain `generate` see the same ids.

Decoding (`generate_questions`): each passage prefix runs once; every (language, sample) row
attends to it without a copy (xlir.qgen_decode.SharedPrefixDecoder for Gemma-3; the Hugging
Face cache, copied per row, for other architectures); a row that emits eos or a newline leaves
the batch. With `vocabulary: language` (the default) a row may write only the pieces of its
language's monolingual text, digits and punctuation, and its passage's names and numbers
(xlir.qgen_vocab), biased towards pieces typical of the language (`language_bias`), and never
repeats a pair of its own tokens (`no_repeat_ngram`); the output layer is cut to the allowed
ids. Sampling is top-p restricted to the
top-k logits, with one random generator per row seeded from (seed, doc_id, lang, sample): a
row's output does not depend on which other passages share its batch, so a resumed run writes
the same questions.

`generate_corpus` writes JSONL rows {doc_id, lang, question, generator, settings, sample}, one
passage's rows per write, and resumes after a kill (a torn or partial passage is cut off).
`load_generator` also loads a run folder of `xlir qgen train` (its LoRA merged into the base).

Not here: training the generator (qgen_train.py, which imports this module, never the
reverse), language identification and output quality (langid.py), fusing generated queries into
passage vectors (index.py). Beam search is not implemented: decoding is sampling or greedy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xlir.config import from_dict
from xlir.data.languages import language
from xlir.data.readers import add_unique, read_jsonl, text_field
from xlir.data.tasks import load_task
from xlir.errors import ConfigError, InputError
from xlir import qgen_decode
from xlir.models import resolve_generator
from xlir.qgen_vocab import language_scores, passage_name_ids, row_scores
from xlir.storage import read_json, write_json
from xlir.tuning.peft import merge_lora

log = logging.getLogger(__name__)

MANIFEST = "qgen-manifest.json"  # written by xlir.qgen_train; marks a trained generator
PROMPT_TAIL = "\nGenerate a {language} question for this passage.\nQuestion:"


def language_name(code: str) -> str:
    """`hau_Latn` / `hau` -> "Hausa" (an unknown code's error names the closest known ones)."""
    return language(code).name


@dataclass
class GenerateConfig:
    languages: list[str] = field(default_factory=lambda: ["hau_Latn"])
    samples: int = 1  # questions per passage per language
    decoding: Literal["sample", "greedy"] = "sample"
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 64  # top-p is applied inside the top-k logits only
    max_new_tokens: int = 32
    max_passage_tokens: int = 160
    passages_per_batch: int = 2
    dtype: Literal["float32", "bfloat16"] = "float32"
    seed: int = 0
    # "language": a row writes only its language's pieces (xlir.qgen_vocab); "full": anything.
    vocabulary: Literal["language", "full"] = "language"
    # With vocabulary "language": strength of the bias towards pieces typical of the language
    # over its neighbours (0: restriction alone). On AfriQA dev passages (BENCHMARKS.md,
    # "Language fidelity") 0.5 gave macro language-ID agreement 0.97, every language >= 0.96
    # but Zulu (0.83, read as Xhosa), with the passage's names kept; 1.0 gave 1.00 everywhere
    # but long strings of typical words that crowd the names out.
    language_bias: float = 0.5
    # A question never repeats a pair of its own tokens (0: no such rule); the prompt does not
    # count, so a passage's names can still be copied. Biased decoding otherwise loops.
    no_repeat_ngram: int = 2

    def __post_init__(self):
        if not self.languages:
            raise ConfigError("languages: at least one language is needed")
        if self.samples < 1 or self.max_new_tokens < 1 or self.passages_per_batch < 1:
            raise ConfigError("samples, max_new_tokens and passages_per_batch must be >= 1")
        if not 0.0 < self.top_p <= 1.0 or self.temperature <= 0.0 or self.top_k < 1:
            raise ConfigError("need 0 < top_p <= 1, temperature > 0, top_k >= 1")
        if self.language_bias < 0 or self.no_repeat_ngram < 0:
            raise ConfigError("language_bias and no_repeat_ngram must be >= 0")
        if self.decoding == "greedy" and self.samples != 1:
            raise ConfigError("greedy decoding gives one question per language: samples=1")

    def settings(self) -> dict:
        """What a JSONL row records: everything that changes the questions."""
        keep = ["decoding", "max_new_tokens", "max_passage_tokens", "seed", "vocabulary",
                "no_repeat_ngram"]
        if self.vocabulary == "language":
            keep.append("language_bias")
        if self.decoding == "sample":
            keep += ["temperature", "top_p", "top_k"]
        return {k: getattr(self, k) for k in keep}


# ----------------------------------------------------------------------------- prompts

def passage_ids(tokenizer, title: str, text: str, max_passage_tokens: int) -> list[int]:
    """`<bos>{title}: {passage}` as ids, the passage part cut to `max_passage_tokens`."""
    head = f"{title}: {text}" if title else text
    ids = tokenizer(head, add_special_tokens=False)["input_ids"][:max_passage_tokens]
    return [tokenizer.bos_token_id, *ids]


def tail_ids(tokenizer, language: str) -> list[int]:
    tail = PROMPT_TAIL.format(language=language_name(language))
    return tokenizer(tail, add_special_tokens=False)["input_ids"]


def stop_token_ids(tokenizer) -> list[int]:
    """eos and every token whose text holds a newline: a question is one line."""
    stops = {tokenizer.eos_token_id}
    for piece, idx in tokenizer.get_vocab().items():
        if "\n" in piece or piece == "<0x0A>":
            stops.add(idx)
    return sorted(s for s in stops if s is not None)


# ----------------------------------------------------------------------------- decoding

def row_generator(seed: int, doc_id: str, lang: str, sample: int):
    import torch

    digest = hashlib.sha256(f"{seed}\t{doc_id}\t{lang}\t{sample}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def pick_next(logits, cfg: GenerateConfig, generators: list | None):
    """Next token per row: argmax, or top-p sampling inside the top-k logits."""
    import torch

    if cfg.decoding == "greedy":
        return logits.argmax(-1)
    values, index = logits.float().topk(min(cfg.top_k, logits.shape[-1]), dim=-1)  # (B, k)
    probs = torch.softmax(values / cfg.temperature, dim=-1)
    before = probs.cumsum(-1) - probs  # mass of the better candidates
    probs = probs.masked_fill(before >= cfg.top_p, 0.0)  # the best one always stays
    picks = [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators)]
    return index.gather(1, torch.stack(picks)).squeeze(1)


def generate_questions(model, tokenizer, passages: list[tuple[str, str, str]],
                       cfg: GenerateConfig, stops: Iterable[int] | None = None,
                       scores: dict[str, object] | None = None) -> list[dict]:
    """Questions for `passages` [(doc_id, title, text)] -> rows {doc_id, lang, sample, question,
    token_ids}, in passage, language, sample order. One batch: the caller chooses its size.

    `scores` (language -> a float tensor over the vocabulary, from `language_vocabularies`)
    is added to a row's logits: -inf where its language may not write, its bias elsewhere; the
    names and numbers of its passage are allowed at 0 (xlir.qgen_vocab). None leaves the
    whole vocabulary, unbiased. Gemma-3 generators decode with
    xlir.qgen_decode.SharedPrefixDecoder, others with the Hugging Face cache (HFDecoder)."""
    stops = sorted(stops if stops is not None else stop_token_ids(tokenizer))
    keys = [(d, lang, s) for d, _, _ in passages for lang in cfg.languages
            for s in range(cfg.samples)]
    prefixes = [passage_ids(tokenizer, t, x, cfg.max_passage_tokens) for _, t, x in passages]
    lang_tails = {lang: tail_ids(tokenizer, lang) for lang in cfg.languages}
    tails = [lang_tails[lang] for _, lang, _ in keys]
    window = getattr(model.config, "sliding_window", None)
    longest = max(map(len, prefixes)) + max(map(len, tails)) + cfg.max_new_tokens
    if window and longest >= window:
        raise ConfigError(f"prompt + new tokens ({longest}) must stay under the model's "
                          f"sliding window ({window}): lower max_passage_tokens")
    per_passage = len(cfg.languages) * cfg.samples
    per_row = None
    if scores is not None:
        missing = sorted(set(cfg.languages) - set(scores))
        if missing:
            raise ConfigError(f"no vocabulary scores for {', '.join(missing)}")
        names = [passage_name_ids(tokenizer, t, x) for _, t, x in passages]
        per_row = [row_scores(scores[lang], names[i // per_passage])
                   for i, (_, lang, _) in enumerate(keys)]
    gens = [row_generator(cfg.seed, *k) for k in keys] if cfg.decoding == "sample" else None

    def pick(logits, alive):
        return pick_next(logits, cfg, None if gens is None else [gens[i] for i in alive])

    owner = [i // per_passage for i in range(len(keys))]
    if qgen_decode.supports(model):
        decode = qgen_decode.SharedPrefixDecoder(model).decode
    else:
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        decode = qgen_decode.HFDecoder(model, pad_id).decode
    out = decode(prefixes, tails, owner, cfg.max_new_tokens, stops, pick, per_row,
                 cfg.no_repeat_ngram)
    return [{"doc_id": d, "lang": lang, "sample": s, "token_ids": ids,
             "question": tokenizer.decode(ids, skip_special_tokens=True).strip()}
            for (d, lang, s), ids in zip(keys, out)]


def language_vocabularies(tokenizer, languages: Iterable[str], stops: Iterable[int],
                          strength: float = 0.0,
                          exclude: frozenset[str] = frozenset()) -> dict[str, dict]:
    """language -> xlir.qgen_vocab.language_scores' record: "scores" (what
    `generate_questions` takes, per language), counts of allowed ids, sentences read."""
    return language_scores(tokenizer, list(languages), list(stops), strength, exclude)


# ----------------------------------------------------------------------------- models

def load_generator(path: str | Path | None = None, dtype: str = "float32"):
    """A causal LM + tokenizer: a HF folder, a `xlir qgen train` run folder (LoRA merged into
    its base), or None / "gemma-3-270m" for the prepared packaged model.
    -> (model, tokenizer, name)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    if path is not None and (Path(path) / MANIFEST).is_file():
        return load_trained_generator(Path(path), torch_dtype)

    path = resolve_generator(None if path is None else str(path))  # a name, a folder or None
    if not (path / "config.json").is_file():
        raise InputError("not a Hugging Face model folder (no config.json)", path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    if model.config.is_encoder_decoder:
        raise ConfigError(f"{path}: only decoder-only (causal) generators are supported")
    return model.eval(), tokenizer, path.name


def load_trained_generator(run_dir: Path, torch_dtype):
    """A finished `xlir qgen train` run folder -> (base with the LoRA merged in, tokenizer,
    run name)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = read_json(run_dir / MANIFEST)
    if not manifest.get("complete"):
        raise ConfigError(f"{run_dir}: training is not complete; rerun `xlir qgen train`")
    base = Path(manifest["base"])
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    model = merge_lora(model, run_dir / "adapter")
    return model.eval(), AutoTokenizer.from_pretrained(base), run_dir.name


# ----------------------------------------------------------------------------- corpus files

def _resume_point(path: Path, cfg: GenerateConfig) -> tuple[int, set[str]]:
    """(byte offset after the last complete passage, doc ids complete before it)."""
    settings = cfg.settings()
    expected = [(lang, s) for lang in cfg.languages for s in range(cfg.samples)]
    done: set[str] = set()
    good_end, group, group_doc, offset = 0, 0, None, 0
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            offset += len(raw)
            try:
                row = json.loads(raw) if raw.endswith(b"\n") else None
            except json.JSONDecodeError:
                row = None
            if row is None or (group and row.get("doc_id") != group_doc):
                break  # torn line, or a passage cut short by a kill: resume from here
            if (row.get("settings") != settings
                    or (row.get("lang"), row.get("sample")) != expected[group]):
                raise InputError("written with other settings, languages or samples; use a new "
                                 "output file", path, line_no)
            group, group_doc = group + 1, row["doc_id"]
            if group == len(expected):
                done.add(group_doc)
                good_end, group, group_doc = offset, 0, None
    return good_end, done


def generate_corpus(model, tokenizer, corpus: dict[str, dict], out_path: str | Path,
                    cfg: GenerateConfig, generator_name: str, progress: bool = True,
                    exclude: frozenset[str] = frozenset()) -> int:
    """Write questions for every passage of `corpus` to JSONL; resumes; -> rows written now.
    With `cfg.vocabulary == "language"` each language's vocabulary is built from its
    monolingual text minus `exclude` (normalised texts of evaluated splits) and described in
    `<out>.vocab.json` (sentences per source, dropped, ids)."""
    from tqdm import tqdm

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    settings = cfg.settings()
    per_passage = len(cfg.languages) * cfg.samples
    done: set[str] = set()
    if out_path.exists():
        end, done = _resume_point(out_path, cfg)
        os.truncate(out_path, end)
    todo = [d for d in corpus if d not in done]
    stops = stop_token_ids(tokenizer)
    scores = None
    if cfg.vocabulary == "language" and todo:
        vocab = language_vocabularies(tokenizer, cfg.languages, stops, cfg.language_bias,
                                      exclude)
        scores = {lang: v["scores"] for lang, v in vocab.items()}
        write_json(out_path.with_suffix(".vocab.json"),
                   {lang: {k: v for k, v in rec.items() if k != "scores"}
                    | {"language_bias": cfg.language_bias} for lang, rec in vocab.items()})
    written, start = 0, time.perf_counter()
    bar = tqdm(total=len(corpus), initial=len(done), unit="passage", disable=not progress)
    with open(out_path, "a", encoding="utf-8") as f:
        for i in range(0, len(todo), cfg.passages_per_batch):
            batch = [(d, corpus[d].get("title", ""), corpus[d]["text"])
                     for d in todo[i:i + cfg.passages_per_batch]]
            rows = generate_questions(model, tokenizer, batch, cfg, stops, scores)
            for j in range(0, len(rows), per_passage):  # one write per passage
                f.write("".join(json.dumps(
                    {"doc_id": r["doc_id"], "lang": r["lang"], "question": r["question"],
                     "generator": generator_name, "settings": settings, "sample": r["sample"]},
                    ensure_ascii=False) + "\n" for r in rows[j:j + per_passage]))
                f.flush()
            written += len(rows)
            bar.update(len(batch))
            bar.set_postfix(q_per_s=f"{written / (time.perf_counter() - start):.2f}")
    bar.close()
    return written


def read_generated(path: str | Path, corpus: dict | None = None) -> list[dict]:
    """Rows of a generated-questions JSONL file (as `generate_corpus` writes them, or a user's
    own with `doc_id` or `passage_id` and `question`), each with its line number as `line`.
    With `corpus`, a doc id outside it is an input error naming the line."""
    rows = []
    for n, row in read_jsonl(path):
        doc = row.get("doc_id", row.get("passage_id"))
        if not isinstance(doc, str) or not isinstance(row.get("question"), str):
            raise InputError("needs a string 'doc_id' (or 'passage_id') and 'question'", path, n)
        if corpus is not None and doc not in corpus:
            raise InputError(f"doc id {doc!r} is not in the task's corpus", path, n, "doc_id")
        rows.append({**row, "doc_id": doc, "line": n})
    return rows


def read_corpus(spec: str, split: str = "test") -> dict[str, dict]:
    """A task name (xlir.data.tasks) or a BEIR folder / corpus.jsonl -> corpus."""
    path = Path(spec)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if path.suffix == ".jsonl":  # passages only: no language needed to generate for them

        corpus: dict[str, dict] = {}
        for n, row in read_jsonl(path):
            add_unique(corpus, text_field(row, "_id", path, n),
                       {"title": text_field(row, "title", path, n, optional=True),
                        "text": text_field(row, "text", path, n)}, path, n)
        if not corpus:
            raise InputError("no passages", path)
        return corpus
    return load_task(spec, split).corpus


def config_from(overrides: dict) -> GenerateConfig:
    return from_dict(GenerateConfig, overrides)
