"""Rebuild gemma-3's exact tokenizer from the metadata of a GGUF file.

transformers 4.57 turns a gemma GGUF vocabulary into a Unigram model scored by the GGUF
"scores"; gemma-3's tokenizer is BPE and those scores are ranks, so that tokenizer splits
words wrongly ("Nairobi" becomes 4 pieces). This module builds the BPE tokenizer that
transformers 5 builds (checked id for id against ../shared/fixtures): merges come from every
split of every token, ranked by the token's position in the file.

It reads the GGUF header with `struct` (0.2 s) instead of `gguf.GGUFReader` (about 10 s,
because that one also maps every tensor). It does NOT read weights and does NOT handle any
vocabulary other than gemma's (`tokenizer.ggml.model == "llama"`, no `merges` field).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from xlir.errors import InputError

# GGUF value types (gguf spec, version 3).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?",
          10: "<u8", 11: "<i8", 12: "<f8"}
_STRING, _ARRAY = 8, 9
# token_type values of llama.cpp's vocabulary.
CONTROL, USER_DEFINED = 3, 4
SPACE = "\u2581"  # sentencepiece's visible space


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    return struct.unpack(fmt, f.read(size))[0]


def _read_string(f: BinaryIO) -> str:
    return f.read(_read(f, "<Q")).decode("utf-8")


def _read_value(f: BinaryIO, vtype: int) -> Any:
    if vtype == _STRING:
        return _read_string(f)
    if vtype == _ARRAY:
        etype, count = _read(f, "<I"), _read(f, "<Q")
        if etype in _NUMPY:
            dtype = np.dtype(_NUMPY[etype])
            return np.frombuffer(f.read(dtype.itemsize * count), dtype=dtype)
        return [_read_value(f, etype) for _ in range(count)]
    return _read(f, _SCALARS[vtype])


def read_gguf_metadata(path: str | Path) -> dict[str, Any]:
    """Every key/value field of a GGUF file (arrays of numbers as numpy arrays); a truncated
    or corrupt file is an InputError naming it."""
    try:
        return _read_fields(path)
    except (struct.error, ValueError, MemoryError, OverflowError, UnicodeDecodeError) as e:
        raise InputError(f"not a readable GGUF file ({str(e) or type(e).__name__})", path) from None


def _read_fields(path: str | Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        version = _read(f, "<I")
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is not supported")
        _read(f, "<Q")  # tensor count: not needed
        n_fields = _read(f, "<Q")
        fields = {}
        for _ in range(n_fields):
            key = _read_string(f)
            fields[key] = _read_value(f, _read(f, "<I"))
    return fields


def gemma_vocab(fields: dict[str, Any]) -> list[str]:
    """The token strings, with gemma's whitespace-run tokens respelled as runs of `▁`.

    The GGUF stores tokens 138-167 as real spaces, while the text side replaces every space
    by `▁` before BPE; without respelling, runs of spaces (indented code) split wrongly.
    """
    return [SPACE * len(t) if t and t.strip(" ") == "" else t
            for t in fields["tokenizer.ggml.tokens"]]


def bpe_merges(vocab: list[str]) -> list[tuple[str, str]]:
    """Every split (left, right) of every token with both parts in the vocabulary.

    Ranked by the token's position (earlier tokens merge first); within one token the
    longer left part comes first. This reproduces the reference's 514,906 merges in order;
    ranking by score instead gets runs of spaces wrong.
    """
    index = set(vocab)
    merges = []
    for token in vocab:
        for cut in range(len(token) - 1, 0, -1):
            left, right = token[:cut], token[cut:]
            if left in index and right in index:
                merges.append((left, right))
    return merges


def build_gemma_tokenizer(path: str | Path):
    """A `GemmaTokenizerFast` (left padding, `<bos>` prepended) built from a GGUF file."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers
    from transformers import GemmaTokenizerFast

    fields = read_gguf_metadata(path)
    if fields.get("tokenizer.ggml.model") != "llama" or "tokenizer.ggml.merges" in fields:
        raise ValueError(f"{path}: not a gemma (sentencepiece BPE) vocabulary")
    raw = list(fields["tokenizer.ggml.tokens"])
    vocab = gemma_vocab(fields)
    types = np.asarray(fields["tokenizer.ggml.token_type"])
    name = {k: raw[int(fields[f"tokenizer.ggml.{key}_token_id"])]
            for k, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding"))}

    backend = Tokenizer(models.BPE(
        vocab={t: i for i, t in enumerate(vocab)}, merges=bpe_merges(vocab),
        unk_token=name["unk"], fuse_unk=True, byte_fallback=True))
    backend.normalizer = normalizers.Replace(" ", SPACE)  # no prefix space in gemma 3
    backend.decoder = decoders.Sequence(
        [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()])
    backend.add_special_tokens(
        [AddedToken(raw[i], special=True, normalized=False) for i in np.flatnonzero(types == CONTROL)])
    # User-defined tokens (html tags, newline runs) must match as whole pieces, or text like
    # "<b>x</b>" splits differently; the whitespace runs among them are plain BPE pieces now.
    in_vocab = set(vocab)
    backend.add_tokens([AddedToken(raw[i], special=False, normalized=False)
                        for i in np.flatnonzero(types == USER_DEFINED) if raw[i] in in_vocab])
    # GemmaTokenizerFast installs the `<bos> $A` post-processor from add_bos_token/add_eos_token.
    return GemmaTokenizerFast(
        tokenizer_object=backend, bos_token=name["bos"], eos_token=name["eos"],
        unk_token=name["unk"], pad_token=name["pad"], padding_side="left",
        add_bos_token=bool(fields.get("tokenizer.ggml.add_bos_token", True)),
        add_eos_token=bool(fields.get("tokenizer.ggml.add_eos_token", False)))
