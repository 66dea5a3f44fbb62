"""languages: canonical codes, normalisation of every form datasets use, metadata, the
seen-in-pretraining and retrieval-supervision sets, Joshi classes and the groupings."""

from __future__ import annotations

import pytest

from xlir.data import languages as L
from xlir.data.registry import SIB200_LANGUAGES
from xlir.errors import ConfigError, XlirError


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
    assert len(L.LANGUAGES) == 214  # 205 FLORES variants + bre fry lat + 5 romanized + bbj
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
    from xlir.data.readers import read_language_list

    assert L.seen_in_pretraining("yo", encoder={"yor", "ibo"})
    path = tmp_path / "seen.txt"
    path.write_text("# my encoder\nyo\nibo_Latn  # Igbo\n\n")
    assert read_language_list(path) == {"yor_Latn", "ibo_Latn"}
    monkeypatch.setattr(L, "SEEN_SETS", dict(L.SEEN_SETS))  # registration undone after
    monkeypatch.setattr(L, "RETRIEVAL_SETS", dict(L.RETRIEVAL_SETS))
    L.register_seen_set("afro", read_language_list(path), retrieval=["yo"])
    assert L.seen_in_pretraining("ig", "afro") and not L.seen_in_pretraining("ha", "afro")
    assert L.group_of("yo", "retrieval", "afro") == "supervised"
    with pytest.raises(XlirError, match="no seen-language set 'nope'.*read_language_list"):
        L.seen_set("nope")
    with pytest.raises(XlirError, match="no seen-language set"):
        L.seen_set(path)  # a file is read by readers, not here
    bad = tmp_path / "bad.txt"
    bad.write_text("yo\nqqq\n")
    with pytest.raises(XlirError, match=r"bad\.txt, line 2, field 'code': unknown language"):
        read_language_list(bad)


def test_languages_reads_no_file():
    # The languages <-> readers import cycle is gone: languages imports nothing of readers.
    import subprocess
    import sys

    code = ("import sys, xlir.data.languages; "
            "print('xlir.data.readers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    source = open(L.__file__, encoding="utf-8").read()
    assert "open(" not in source and "readers import" not in source


def test_retrieval_supervision_is_miracl_and_mrtydi_train():
    me5 = L.RETRIEVAL_SETS["me5"]
    assert len(me5) == 16 and L.MRTYDI_TRAIN <= L.MIRACL_TRAIN
    assert {"swh_Latn", "tel_Telu", "ben_Beng", "eng_Latn", "zho_Hans"} <= me5
    # Yoruba and German are MIRACL's dev-only "surprise" languages.
    assert "yor_Latn" not in me5 and "deu_Latn" not in me5
    assert L.RETRIEVAL_SETS["xlmr"] == frozenset()


def test_joshi_classes():
    assert all(code in L.LANGUAGES for code in L.JOSHI_CLASS)
    assert [L.JOSHI_CLASS[c] for c in ("eng_Latn", "hin_Deva", "dan_Latn", "swh_Latn",
                                        "ibo_Latn")] == [5, 4, 3, 2, 1]
    # Class sizes of the paper's classes 3 and 4 (all of them are FLORES languages).
    assert sum(c == 4 for c in L.JOSHI_CLASS.values()) == 18
    assert sum(c == 3 for c in L.JOSHI_CLASS.values()) == 28


def test_groupings_of_afriqa():
    afriqa = ["hau", "swh", "yor", "ibo", "zul", "kin", "twi", "bem", "fon"]
    seen = L.language_groups(afriqa, "pretraining")
    assert [c for c, g in seen.items() if g == "seen"] == ["hau", "swh"]
    retrieval = L.language_groups(afriqa, "retrieval")
    assert [c for c, g in retrieval.items() if g == "supervised"] == ["swh"]
    resource = L.language_groups(afriqa, "resource")
    assert resource["hau"] == resource["ibo"] == "low"
    # Unchecked classes are their own stratum, never dropped.
    assert list(resource) == afriqa and resource["kin"] == resource["fon"] == "unknown"
    assert L.group_of("eng", "resource") == "high" and L.group_of("yor", "joshi") == "class 2"
    assert L.group_of("xx_Qqqq", "pretraining") == "unknown"
    assert L.group_of("hau", "pretraining", family=None) == "unknown"


def test_grouping_names_are_checked():
    assert set(L.GROUPINGS) == {"pretraining", "retrieval", "resource", "joshi"}
    with pytest.raises(ConfigError, match=r"unknown language grouping 'seen'; choices: "
                       r"\['joshi', 'pretraining', 'resource', 'retrieval'\]"):
        L.grouping("seen")


@pytest.mark.parametrize("encoder, family", [
    (None, "me5"), ("multilingual-e5-small", "me5"), ("intfloat/multilingual-e5-small", "me5"),
    ("/models/xlm-roberta-base/", "xlmr"), ("xlmr", "xlmr"), ("/tmp/my-model", None),
])
def test_encoder_family(encoder, family):
    assert L.encoder_family(encoder) == family
