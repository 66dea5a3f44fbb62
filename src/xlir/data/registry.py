"""The built-in datasets, each declared once: upstream repository pinned to a commit, the raw-file
URL of every file xlir reads, its size and sha256, licence, citation and languages.

A file's URL is https://raw.githubusercontent.com/<owner>/<repo>/<commit>/<path>; its place in
the data cache (and in a mirror) is that URL's path. Checksums are data files, one per dataset:
`sha256/<dataset>.txt`, one "path size sha256" line per file, path relative to the repository
root at the pinned commit (taken from the upstream files at those commits; a file whose bytes
differ is refused by `fetch`).

This module only declares; it does not download (`fetch.py`) or parse (`tasks.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from xlir.errors import XlirError

RAW_URL = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the repository root at the pinned commit
    url: str
    size: int
    sha256: str

    @property
    def url_path(self) -> str:
        """`<owner>/<repo>/<commit>/<path>`: where the file lives in the cache and a mirror."""
        return self.url.removeprefix(RAW_URL + "/")


@dataclass(frozen=True)
class Dataset:
    name: str
    repo: str  # owner/name on GitHub
    commit: str
    licence: str
    citation: str
    languages: tuple[str, ...]  # canonical codes (languages.py) of the text it holds
    description: str
    files: tuple[DataFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> DataFile:
        for f in self.files:
            if f.path == path:
                return f
        raise XlirError(f"dataset '{self.name}' declares no file '{path}'")


def _files(repo: str, commit: str, table: str) -> tuple[DataFile, ...]:
    out = []
    for line in table.splitlines():
        path, size, sha = line.split()
        out.append(DataFile(path, f"{RAW_URL}/{repo}/{commit}/{path}", int(size), sha))
    return tuple(out)


def checksums(name: str) -> str:
    """The checksum table of a built-in dataset (package data, sha256/<name>.txt)."""
    return (files("xlir.data") / "sha256" / f"{name}.txt").read_text(encoding="utf-8")


def _declare(name, repo, commit, table: str | None = None, **kw) -> Dataset:
    """A dataset whose files are listed by `table` (default: its package checksum table)."""
    table = checksums(name) if table is None else table
    return Dataset(name=name, repo=repo, commit=commit, files=_files(repo, commit, table), **kw)


# Language folders of SIB-200, in the order upstream lists them (read off the checksum table).
SIB200_LANGUAGES = tuple(sorted({line.split("/")[2] for line in checksums("sib200").splitlines()
                                 if line.startswith("data/annotated/")}))

# TyDi QA language-specific files: folder name upstream -> canonical code.
TYDI_FOLDERS = {"arabic": "arb_Arab", "bengali": "ben_Beng", "english": "eng_Latn",
                "finnish": "fin_Latn", "indonesian": "ind_Latn", "korean": "kor_Hang",
                "russian": "rus_Cyrl", "swahili": "swh_Latn", "telugu": "tel_Telu"}

# AfriQA language folders -> (canonical code, passage language code upstream).
AFRIQA_LANGUAGES = {"bem": ("bem_Latn", "en"), "fon": ("fon_Latn", "fr"),
                    "hau": ("hau_Latn", "en"), "ibo": ("ibo_Latn", "en"),
                    "kin": ("kin_Latn", "en"), "swa": ("swh_Latn", "en"),
                    "twi": ("twi_Latn", "en"), "yor": ("yor_Latn", "en"),
                    "zul": ("zul_Latn", "en")}

# MasakhaNER 2.0 language folders -> canonical code (bbj, Ghomala', is outside FLORES: its
# ISO 639-3 code with its script, in the same form).
MASAKHANER_LANGUAGES = {
    "bam": "bam_Latn", "bbj": "bbj_Latn", "ewe": "ewe_Latn", "fon": "fon_Latn",
    "hau": "hau_Latn", "ibo": "ibo_Latn", "kin": "kin_Latn", "lug": "lug_Latn",
    "luo": "luo_Latn", "mos": "mos_Latn", "nya": "nya_Latn", "pcm": "pcm_Latn",
    "sna": "sna_Latn", "swa": "swh_Latn", "tsn": "tsn_Latn", "twi": "twi_Latn",
    "wol": "wol_Latn", "xho": "xho_Latn", "yor": "yor_Latn", "zul": "zul_Latn"}

DATASETS: dict[str, Dataset] = {d.name: d for d in [
    _declare(
        "afriqa", "masakhane-io/afriqa", "5c29933753692c28773c34ac1f68482007f1d2bb",
        licence="CC BY 4.0",
        citation="Ogundepo et al. 2023. AfriQA: Cross-lingual Open-Retrieval Question "
        "Answering for African Languages. Findings of EMNLP 2023.",
        languages=tuple(c for c, _ in AFRIQA_LANGUAGES.values()) + ("eng_Latn", "fra_Latn"),
        description="Questions in 9 African languages with their gold Wikipedia passage "
        "(English; French for fon) and a human English translation of each question."),
    _declare(
        "tydi", "sagorbrur/tydiqa-language-specific", "55c6649475e0765f717a6d32a173c6664096a8ce",
        licence="Apache-2.0",
        citation="Clark et al. 2020. TyDi QA: A Benchmark for Information-Seeking Question "
        "Answering in Typologically Diverse Languages. TACL 8.",
        languages=tuple(TYDI_FOLDERS.values()),
        description="TyDi QA GoldP split per language (SQuAD v1.1 format): dev for 9 "
        "languages, train for en, ko, sw."),
    _declare(
        "amqa", "semantic-systems/amharic-qa", "68d06ea20ba0dedfdb99385d44fbdc54b83ad96a",
        licence="MIT",
        citation="Abedissa, Usbeck and Assabie 2023. AmQA: Amharic Question Answering "
        "Dataset. arXiv:2303.03290.",
        languages=("amh_Ethi",),
        description="Amharic reading-comprehension questions over Wikipedia paragraphs "
        "(SQuAD-like), train/dev/test."),
    _declare(
        "sib200", "dadelani/sib-200", "593cea88519930f776c1a4a1980b6a35b39dca57",
        licence="CC BY-SA 4.0 (FLORES-200 text)",
        citation="Adelani et al. 2024. SIB-200: A Simple, Inclusive, and Big Evaluation "
        "Dataset for Topic Classification in 200+ Languages and Dialects. EACL 2024.",
        languages=SIB200_LANGUAGES,
        description="FLORES-200 sentences in 205 language variants, row i of every language "
        "the translation of row i of English: a multiway-parallel corpus (701/99/204)."),
    _declare(
        "masakhaner", "masakhane-io/masakhane-ner", "ba5843cd08aa491d5f96a5e809e71eb9ec461391",
        licence="CC BY-NC 4.0 (research use)",
        citation="Adelani et al. 2022. MasakhaNER 2.0: Africa-centric Transfer Learning for "
        "Named Entity Recognition. EMNLP 2022.",
        languages=tuple(MASAKHANER_LANGUAGES.values()),
        description="News sentences in 20 African languages, CoNLL format (token and NER tag "
        "a line), train and dev splits: xlir reads them as monolingual text (language "
        "adapters), never as an evaluation."),
]}


def dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise XlirError(f"unknown dataset '{name}'; built-in: {', '.join(DATASETS)}") from None
