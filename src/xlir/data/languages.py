"""Language metadata for every code xlir meets: name, script, coarse family, region, and
which encoders saw the language in pretraining and in retrieval fine-tuning, and its
resource level.

Canonical codes are ISO 639-3 + ISO 15924 script, as FLORES-200 / SIB-200 write them
(`hau_Latn`, `zho_Hant`). `normalize` accepts what datasets use: the canonical code in any
case with `_` or `-`, a bare 639-3 code (`hau`), a 639-1 code (`ha`), or a macrolanguage /
older code (`swa`, `ara`, `fas`, `msa`, `nor`, ...).

Mapping rule for 639-1 and macrolanguage codes (and for XLM-R's list, which uses 639-1): the
code goes to the variety FLORES-200 uses for the standard written language: sw/swa -> swh_Latn,
ar/ara -> arb_Arab, fa/fas -> pes_Arab, zh -> zho_Hans (zho_Hant is listed separately),
ms/msa -> zsm_Latn, no/nor -> nob_Latn, om/orm -> gaz_Latn, ku/kur -> kmr_Latn,
uz/uzb -> uzn_Latn, mn/mon -> khk_Cyrl, lv/lav -> lvs_Latn, et/est -> est_Latn,
sq/sqi -> als_Latn, ne/nep -> npi_Deva, ps/pus -> pbt_Arab, or/ori -> ory_Orya,
mg/mlg -> plt_Latn, az/aze -> azj_Latn, yi/yid -> ydd_Hebr, qu/que -> quy_Latn,
ay/aym -> ayr_Latn, ff/ful -> fuv_Latn, kr/kau -> knc_Latn. A bare code with several scripts
takes its main script (`zho` -> zho_Hans, `ace` -> ace_Latn, `kas` -> kas_Arab).

Who saw which language (each definition cited where it is declared below):
- MLM pretraining, `SEEN_SETS`: "xlmr" is the 100 CC-100 languages of XLM-R (Conneau et al.,
  ACL 2020, Table 6) mapped by the rule above; only the standard variety counts (Dari, the
  Arabic dialects, Cantonese are not in it); XLM-R's romanized Bengali, Hindi, Tamil, Telugu
  and Urdu are the `_Latn` entries of those languages. "me5" (multilingual-e5-small) is the same
  set: its backbone is Multilingual-MiniLM-L12-H384 (Wang et al., NeurIPS 2020, "MiniLM"),
  distilled from XLM-R on the same CC-100 data and using XLM-R's tokenizer (e5-base and
  e5-large start from XLM-R itself). mE5's weakly-supervised pairs (mC4, CC News, NLLB,
  Wikipedia, ...) cover more languages: "unseen" is a claim about MLM pretraining only.
- Retrieval supervision, `RETRIEVAL_SETS`: the languages with labelled retrieval pairs in the
  encoder's fine-tuning (for "me5": the MIRACL and Mr.TyDi train languages).
- Resource level, `JOSHI_CLASS`: Joshi et al. (ACL 2020) classes 0-5 for the languages whose
  class could be checked; every other language is stratum "unknown", never dropped.
`encoder_family` maps an encoder name to the family these sets are declared for. Register
another family with `register_seen_set` (a file of codes is read by
`xlir.data.readers.read_language_list`).

`GROUPINGS` names the ways a study can split its languages, each a function
(code, encoder family) -> group label; `grouping(name)` refuses an unknown name.

This module only describes languages: it reads no file but its own table (package data,
`languages.txt`), and so imports nothing of `xlir.data.readers` (which imports it).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.resources import files

from xlir.errors import ConfigError, XlirError

SCRIPTS = {
    "Arab": "Arabic", "Armn": "Armenian", "Beng": "Bengali", "Cyrl": "Cyrillic",
    "Deva": "Devanagari", "Ethi": "Ge'ez", "Geor": "Georgian", "Grek": "Greek",
    "Gujr": "Gujarati", "Guru": "Gurmukhi", "Hang": "Hangul", "Hans": "Han (Simplified)",
    "Hant": "Han (Traditional)", "Hebr": "Hebrew", "Jpan": "Japanese", "Khmr": "Khmer",
    "Knda": "Kannada", "Laoo": "Lao", "Latn": "Latin", "Mlym": "Malayalam", "Mymr": "Myanmar",
    "Nkoo": "N'Ko", "Olck": "Ol Chiki", "Orya": "Odia", "Sinh": "Sinhala", "Taml": "Tamil",
    "Telu": "Telugu", "Tfng": "Tifinagh", "Thai": "Thai", "Tibt": "Tibetan",
}

FAMILIES = {"AA": "Afro-Asiatic", "AN": "Austronesian", "AS": "Austroasiatic",
            "AY": "Aymaran", "CR": "Creole", "CO": "Constructed", "DR": "Dravidian",
            "IE": "Indo-European", "IS": "Isolate", "JA": "Japonic", "KA": "Kartvelian",
            "KO": "Koreanic", "MO": "Mongolic", "NC": "Niger-Congo", "NS": "Nilo-Saharan",
            "QU": "Quechuan", "ST": "Sino-Tibetan", "TK": "Tai-Kadai", "TU": "Tupian",
            "TR": "Turkic", "UR": "Uralic"}
REGIONS = {"Af": "Africa", "Am": "Americas", "As": "Asia", "Eu": "Europe", "Oc": "Oceania"}

# code  639-1 (or -)  family  region  name: package data, one language a line. The 205
# SIB-200 / FLORES-200 variants, then languages outside FLORES (XLM-R's extra ones, and
# MasakhaNER's Ghomala').
_TABLE = (files("xlir.data") / "languages.txt").read_text(encoding="utf-8")
N_FLORES = 205  # the first rows of the table are the SIB-200 variants

# Macrolanguage, older and alternative codes -> canonical (see the module docstring).
ALIASES = {
    "swa": "swh_Latn", "ara": "arb_Arab", "fas": "pes_Arab", "per": "pes_Arab",
    "zho": "zho_Hans", "chi": "zho_Hans", "zh-tw": "zho_Hant", "zh-cn": "zho_Hans",
    "msa": "zsm_Latn", "may": "zsm_Latn", "nor": "nob_Latn", "no": "nob_Latn",
    "orm": "gaz_Latn", "kur": "kmr_Latn", "uzb": "uzn_Latn", "mon": "khk_Cyrl",
    "lav": "lvs_Latn", "ekk": "est_Latn", "sqi": "als_Latn", "alb": "als_Latn",
    "nep": "npi_Deva", "pus": "pbt_Arab", "pbu": "pbt_Arab", "ori": "ory_Orya",
    "mlg": "plt_Latn", "aze": "azj_Latn", "yid": "ydd_Hebr", "que": "quy_Latn",
    "aym": "ayr_Latn", "ful": "fuv_Latn", "kau": "knc_Latn", "iw": "heb_Hebr",
    "in": "ind_Latn", "ji": "ydd_Hebr", "fil": "tgl_Latn", "tw": "twi_Latn",
    "aka": "aka_Latn", "ger": "deu_Latn", "fre": "fra_Latn", "dut": "nld_Latn",
    "gre": "ell_Grek", "cze": "ces_Latn", "slo": "slk_Latn", "rum": "ron_Latn",
    "arm": "hye_Armn", "geo": "kat_Geor", "baq": "eus_Latn", "wel": "cym_Latn",
    "ice": "isl_Latn", "mac": "mkd_Cyrl", "mao": "mri_Latn", "bur": "mya_Mymr",
    "tib": "bod_Tibt", "hbs": "hrv_Latn",
}


@dataclass(frozen=True)
class Language:
    code: str  # canonical, e.g. "hau_Latn"
    iso639_1: str | None
    name: str
    script: str  # ISO 15924 name, e.g. "Latin"
    family: str
    region: str

    @property
    def iso639_3(self) -> str:
        return self.code.split("_")[0]


def _parse() -> dict[str, Language]:
    out = {}
    for line in _TABLE.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        code, iso1, family, region, name = line.split(" ", 4)
        out[code] = Language(code, None if iso1 == "-" else iso1, name,
                             SCRIPTS[code.split("_")[1]], FAMILIES[family], REGIONS[region])
    return out


LANGUAGES: dict[str, Language] = _parse()
FLORES_CODES: tuple[str, ...] = tuple(list(LANGUAGES)[:N_FLORES])


def _lookup() -> dict[str, str]:
    """Every accepted spelling (lower case, '_') -> canonical code."""
    table: dict[str, str] = {}
    for code, lang in reversed(list(LANGUAGES.items())):  # earlier rows win for bare codes
        table[code.lower()] = code
        table[lang.iso639_3] = code
    for code, lang in LANGUAGES.items():
        if lang.iso639_1:
            table.setdefault(lang.iso639_1, code)
    # A bare code with several scripts takes the main one.
    table.update({"ace": "ace_Latn", "bjn": "bjn_Latn", "kas": "kas_Arab", "knc": "knc_Latn",
                  "min": "min_Latn", "taq": "taq_Latn", "arb": "arb_Arab", "ben": "ben_Beng",
                  "hin": "hin_Deva", "tam": "tam_Taml", "tel": "tel_Telu", "urd": "urd_Arab",
                  "zho": "zho_Hans"})
    table.update({k.replace("-", "_"): v for k, v in ALIASES.items()})
    for iso1 in ("zh", "sr", "ms"):  # 639-1 with a script: zh-Hant, sr-Cyrl, ...
        for code, lang in LANGUAGES.items():
            if lang.iso639_1 == iso1 or (iso1 == "zh" and code.startswith("zho_")):
                table[f"{iso1}_{code.split('_')[1].lower()}"] = code
    return table


_LOOKUP = _lookup()


def normalize(code: str) -> str:
    """The canonical code for `code` ("ha", "hau", "HAU_latn", "sw", "swa" -> ...). Raises
    XlirError with the closest known codes when it is unknown."""
    key = str(code).strip().replace("-", "_").lower()
    if key in _LOOKUP:
        return _LOOKUP[key]
    close = difflib.get_close_matches(key, list(_LOOKUP), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(sorted({_LOOKUP[c] for c in close}))}?" if close else ""
    raise XlirError(f"unknown language code '{code}'{hint}")


def language(code: str) -> Language:
    return LANGUAGES[normalize(code)]


# XLM-R's 100 pretraining languages (Conneau et al. 2020, Table 6), mapped by the rule above.
XLMR_LANGUAGES = frozenset(normalize(c) for c in (
    "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha "
    "he hi hr hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl "
    "no om or pa pl ps pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi "
    "xh yi zh").split()) | {"zho_Hant", "ben_Latn", "hin_Latn", "tam_Latn", "tel_Latn",
                            "urd_Latn"}

SEEN_SETS: dict[str, frozenset[str]] = {"xlmr": XLMR_LANGUAGES, "me5": XLMR_LANGUAGES}

# Retrieval supervision in multilingual-e5's fine-tuning (Wang et al. 2024, "Multilingual E5
# Text Embeddings: A Technical Report", arXiv 2402.05672, the fine-tuning data table lists
# MIRACL and Mr.TyDi): MIRACL's 16 train languages (Zhang et al., TACL 2023; German and Yoruba
# are its dev/test-only "surprise" languages, so they are not here) and Mr.TyDi's 11 (Zhang et
# al., MRL 2021; all of them MIRACL train languages too). XLM-R had no retrieval fine-tuning.
MIRACL_TRAIN = frozenset(normalize(c) for c in
                         "ar bn en es fa fi fr hi id ja ko ru sw te th zh".split())
MRTYDI_TRAIN = frozenset(normalize(c) for c in "ar bn en fi id ja ko ru sw te th".split())
RETRIEVAL_SETS: dict[str, frozenset[str]] = {"xlmr": frozenset(),
                                             "me5": MIRACL_TRAIN | MRTYDI_TRAIN}

# Joshi, Santy, Budhiraja, Bali, Choudhury (ACL 2020), "The State and Fate of Linguistic
# Diversity and Inclusion in the NLP World": classes 0 (left-behinds) to 5 (winners), by
# language name as the paper's companion file lang2tax.txt gives them. Classes 5, 4 and 3 are
# complete (the paper's sizes: 7, 18 and 28 languages); classes 2 and 1 hold the languages
# named there that xlir evaluates. Names go to codes by the rule of the module docstring (a
# macrolanguage name -> the FLORES standard variety: "persian" -> pes_Arab, "malay" ->
# zsm_Latn, "norwegian" -> nob_Latn; "mandarin" -> zho_Hans and zho_Hant). A language whose
# entry was not checked (kin, bem, fon, gaz, lug, nya, sna, ewe, aka, ... and every class 0
# candidate) is left out: it is stratum "unknown", never a guessed class.
_JOSHI = {
    5: "arb_Arab zho_Hans zho_Hant eng_Latn fra_Latn deu_Latn jpn_Jpan spa_Latn",
    4: "eus_Latn cat_Latn hrv_Latn ces_Latn nld_Latn fin_Latn hin_Deva hun_Latn ita_Latn "
       "kor_Hang pes_Arab pol_Latn por_Latn rus_Cyrl srp_Cyrl swe_Latn tur_Latn vie_Latn",
    3: "afr_Latn ben_Beng bel_Cyrl bos_Latn bul_Cyrl ceb_Latn dan_Latn arz_Arab est_Latn "
       "glg_Latn kat_Geor ell_Grek ind_Latn kaz_Cyrl lat_Latn lvs_Latn lit_Latn zsm_Latn "
       "ron_Latn slk_Latn slv_Latn tgl_Latn tam_Taml tha_Thai ukr_Cyrl urd_Arab uzn_Latn "
       "heb_Hebr",
    2: "amh_Ethi hat_Latn hau_Latn isl_Latn gle_Latn lao_Laoo mlt_Latn mar_Deva pan_Guru "
       "san_Deva swh_Latn tir_Ethi tsn_Latn wol_Latn xho_Latn yor_Latn zul_Latn",
    1: "als_Latn asm_Beng azj_Latn bam_Latn mya_Mymr epo_Latn ibo_Latn jav_Latn khm_Khmr "
       "kik_Latn lin_Latn ltz_Latn mri_Latn nob_Latn oci_Latn quy_Latn smo_Latn sag_Latn "
       "srd_Latn gla_Latn snd_Arab som_Latn ssw_Latn tel_Telu bod_Tibt tpi_Latn tso_Latn "
       "twi_Latn war_Latn cym_Latn fry_Latn",
}
JOSHI_CLASS: dict[str, int] = {code: c for c, codes in _JOSHI.items() for code in codes.split()}


def register_seen_set(name: str, codes: Iterable[str],
                      retrieval: Iterable[str] | None = None) -> None:
    """Declare encoder family `name`: its pretraining languages and, when given, the languages
    it had retrieval supervision in (codes in any accepted form)."""
    SEEN_SETS[name] = frozenset(normalize(c) for c in codes)
    if retrieval is not None:
        RETRIEVAL_SETS[name] = frozenset(normalize(c) for c in retrieval)


def seen_set(encoder: str | Iterable[str] = "xlmr") -> frozenset[str]:
    """A registered set by name, or the given codes."""
    if isinstance(encoder, str) and encoder in SEEN_SETS:
        return SEEN_SETS[encoder]
    if isinstance(encoder, str) or hasattr(encoder, "__fspath__"):
        raise XlirError(f"no seen-language set '{encoder}': registered sets are "
                        f"{sorted(SEEN_SETS)}; a file of codes is read with "
                        "xlir.data.readers.read_language_list")
    return frozenset(normalize(c) for c in encoder)


def seen_in_pretraining(code: str, encoder: str | Iterable[str] = "xlmr") -> bool:
    return normalize(code) in seen_set(encoder)


# Encoder names -> family, matched on the last path component of a name or folder.
_FAMILY_MARKERS = (("multilingual-e5", "me5"), ("xlm-roberta", "xlmr"))


def encoder_family(encoder: str | None) -> str | None:
    """The family whose training defines "seen" for `encoder`: None (the packaged
    multilingual-e5-small) -> "me5"; a registered family -> itself; a model name or folder whose
    last component names a known family (`intfloat/multilingual-e5-small`, `xlm-roberta-base`)
    -> that family; anything else -> None, and its languages are grouped "unknown"."""
    if encoder is None:
        return "me5"
    if encoder in SEEN_SETS:
        return encoder
    last = str(encoder).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    return next((family for marker, family in _FAMILY_MARKERS if marker in last), None)


# ---- groupings: (canonical code, encoder family) -> group label ------------------------------
Grouping = Callable[[str, "str | None"], str]


def _pretraining(code: str, family: str | None) -> str:
    seen = SEEN_SETS.get(family) if family else None
    return "unknown" if seen is None else ("seen" if code in seen else "unseen")


def _retrieval(code: str, family: str | None) -> str:
    supervised = RETRIEVAL_SETS.get(family) if family else None
    return "unknown" if supervised is None else (
        "supervised" if code in supervised else "unsupervised")


def _resource(code: str, family: str | None) -> str:
    c = JOSHI_CLASS.get(code)
    return "unknown" if c is None else ("low" if c <= 2 else "high")  # Joshi 0-2 vs 3-5


def _joshi(code: str, family: str | None) -> str:
    c = JOSHI_CLASS.get(code)
    return "unknown" if c is None else f"class {c}"


GROUPINGS: dict[str, Grouping] = {"pretraining": _pretraining, "retrieval": _retrieval,
                                  "resource": _resource, "joshi": _joshi}


def grouping(name: str) -> Grouping:
    if name not in GROUPINGS:
        raise ConfigError(f"unknown language grouping '{name}'; choices: {sorted(GROUPINGS)}")
    return GROUPINGS[name]


def group_of(code: str, name: str = "pretraining", family: str | None = "me5") -> str:
    """The group of language `code` under grouping `name`; "unknown" for a code xlir cannot
    place (it is reported in its own group, never dropped)."""
    fn = grouping(name)
    try:
        canonical = normalize(code)
    except XlirError:
        return "unknown"
    return fn(canonical, family)


def language_groups(codes: Iterable[str], name: str = "pretraining",
                    family: str | None = "me5") -> dict[str, str]:
    """{code: group} for every code, under grouping `name`."""
    return {c: group_of(c, name, family) for c in codes}
