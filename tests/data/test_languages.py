"""languages: canonical codes, normalisation of every form datasets use, metadata, and the
seen-in-pretraining sets."""

from __future__ import annotations

import pytest

from xlir.data import languages as L
from xlir.data.registry import SIB200_LANGUAGES
from xlir.errors import XlirError


@pytest.mark.parametrize("given, canonical", [
    ("hau_Latn", "hau_Latn"), ("HAU-latn", "hau_Latn"), ("hau", "hau_Latn"), ("ha", "hau_Latn"),
    ("sw", "swh_Latn"), ("swa", "swh_Latn"), ("swh", "swh_Latn"), ("ar", "arb_Arab"),
    ("ara", "arb_Arab"), ("fa", "pes_Arab"), ("zh", "zho_Hans"), ("zh-Hant", "zho_Hant"),
    ("zh-TW", "zho_Hant"), ("ms", "zsm_Latn"), ("no", "nob_Latn"), ("om", "gaz_Latn"),
    ("ku", "kmr_Latn"), ("uz", "uzn_Latn"), ("mn", "khk_Cyrl"), ("lv", "lvs_Latn"),
    ("et", "est_Latn"), ("sq", "als_Latn"), ("ne", "npi_Deva"), ("ps", "pbt_Arab"),
    ("or", "ory_Orya"), ("mg", "plt_Latn"), ("az", "azj_Latn"), ("yo", "yor_Latn"),
    ("tw", "twi_Latn"), ("twi", "twi_Latn"), ("bem", "bem_Latn"), ("fon", "fon_Latn"),
    ("am", "amh_Ethi"), ("ben", "ben_Beng"), ("te", "tel_Telu"), ("ko", "kor_Hang"),
    ("kas", "kas_Arab"), ("ace", "ace_Latn"), ("wol", "wol_Latn"), (" en ", "eng_Latn"),
])
def test_normalize(given, canonical):
    assert L.normalize(given) == canonical


def test_unknown_code_suggests_close_ones():
    with pytest.raises(XlirError, match=r"unknown language code 'hauu'; did you mean "
                       r"hau_Latn, hun_Latn\?"):
        L.normalize("hauu")
    with pytest.raises(XlirError, match=r"unknown language code 'xx_Qqqq'$"):
        L.language("xx_Qqqq")


def test_every_sib200_variant_is_described():
    assert L.FLORES_CODES == SIB200_LANGUAGES
    assert len(L.LANGUAGES) == 213  # 205 FLORES variants + bre fry lat + 5 romanized
    regions = {lang.region for lang in L.LANGUAGES.values()}
    assert regions == {"Africa", "Americas", "Asia", "Europe", "Oceania"}
    for code, lang in L.LANGUAGES.items():
        assert lang.code == code and L.normalize(code) == code
        assert lang.script == L.SCRIPTS[code.split("_")[1]]


def test_language_metadata():
    hau = L.language("ha")
    assert (hau.code, hau.name, hau.script, hau.family, hau.region, hau.iso639_1,
            hau.iso639_3) == ("hau_Latn", "Hausa", "Latin", "Afro-Asiatic", "Africa", "ha", "hau")
    assert L.language("zho_Hant").script == "Han (Traditional)"
    assert L.language("yor").family == "Niger-Congo"


def test_xlmr_seen_set():
    # Table 6 of Conneau et al. 2020 lists 100 entries; Burmese Zawgyi is an encoding of
    # mya_Mymr, so they are 99 codes.
    assert len(L.XLMR_LANGUAGES) == 99
    seen = ["sw", "ha", "so", "am", "om", "xh", "te", "bn", "km", "en", "zho_Hant", "ar"]
    unseen = ["ti", "yo", "ig", "zu", "rw", "tw", "bem", "fon", "wo", "prs", "yue", "arz"]
    assert all(L.seen_in_pretraining(c) for c in seen)
    assert not any(L.seen_in_pretraining(c) for c in unseen)
    assert L.seen_set("me5") == L.XLMR_LANGUAGES


def test_custom_seen_sets(tmp_path, monkeypatch):
    assert L.seen_in_pretraining("yo", encoder={"yor", "ibo"})
    path = tmp_path / "seen.txt"
    path.write_text("# my encoder\nyo\nibo_Latn  # Igbo\n\n")
    assert L.seen_set(path) == {"yor_Latn", "ibo_Latn"}
    assert L.seen_in_pretraining("ig", encoder=str(path))
    monkeypatch.setattr(L, "SEEN_SETS", dict(L.SEEN_SETS))  # registration undone after
    L.register_seen_set("afro", ["ha", "yo"])
    assert L.seen_in_pretraining("yor_Latn", "afro")
    with pytest.raises(XlirError, match="no seen-language set 'nope'"):
        L.seen_set("nope")
    bad = tmp_path / "bad.txt"
    bad.write_text("yo\nqqq\n")
    with pytest.raises(XlirError, match=r"bad\.txt, line 2, field 'code': unknown language"):
        L.seen_set(bad)
