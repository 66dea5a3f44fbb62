"""`xlir data ...` end to end through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from xlir.cli import main


@pytest.fixture
def beir_folder(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "text": "kano birni ne"}\n{"_id": "d2", "text": "ne ne", "lang": "yo"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "kano"}\n'
                                            '{"_id": "q2", "text": "birni ne"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\t1\nq2\td1\t1\nq2\td2\t1\n")
    return tmp_path


def test_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("afriqa", "tydi", "amqa", "sib200", "masakhaner"):
        assert f"\n{name} " in out
    assert "CC BY 4.0" in out and "205 variants" in out


def test_show_beir_folder(beir_folder, capsys):
    assert main(["data", "show", str(beir_folder), "--option", "language=hau"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("(test): 2 queries, 2 documents, primary measure nDCG@10")
    assert lines[2].split() == ["hau_Latn", "2", "3", "2", "seen"]


def test_show_json(beir_folder, capsys):
    assert main(["data", "show", str(beir_folder), "--option", "language=ha", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["languages"]["hau_Latn"] == {"queries": 2, "judgments": 3, "documents": 2,
                                           "seen_by_xlmr": True}


def test_errors_are_one_line_and_exit_2(beir_folder, capsys):
    assert main(["data", "show", "nope"]) == 2
    assert capsys.readouterr().err.startswith("xlir data: error: unknown task 'nope'")
    assert main(["data", "show", str(beir_folder)]) == 2  # no lang fields, no default
    assert "no language" in capsys.readouterr().err
    assert main(["data", "show", str(beir_folder), "--option", "language"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_fertility_with_a_local_tokenizer_folder(beir_folder, tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece({"[UNK]": 0, "ka": 1, "##no": 2, "birni": 3, "ne": 4},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(
        tmp_path / "tok")
    assert main(["data", "fertility", "--model", str(tmp_path / "tok"), "--task",
                 str(beir_folder), "--option", "language=hau"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    # queries hau: "kano" (2 pieces), "birni ne" (2) -> 4 pieces / 3 words;
    # documents hau: "kano birni ne" -> 4 / 3; yor: "ne ne" -> 2 / 2.
    assert rows == [["queries", "hau_Latn", "2", "3", "1.33", "0.0000"],
                    ["documents", "hau_Latn", "1", "3", "1.33", "0.0000"],
                    ["documents", "yor_Latn", "1", "2", "1.00", "0.0000"]]


def test_help_texts():
    for args in (["data", "--help"], ["data", "fertility", "--help"],
                 ["data", "leakage", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0


@pytest.mark.real
def test_show_and_leakage_on_real_data(mirror, capsys):
    assert main(["data", "show", "afriqa", "--languages", "ha,yo"]) == 0
    out = capsys.readouterr().out
    assert "afriqa (test): 553 queries, 6151 documents, primary measure RR@10" in out
    assert main(["data", "leakage", "--train", "tydi-en", "--task", "afriqa", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    near = report["near"][0]
    assert near["identical_passages"] == 0 and near["shared_titles"] == 176
    assert not any(r["eval_queries"] for r in report["counts"])  # TyDi-en: no exact overlap
    assert main(["data", "leakage", "--train", "afriqa-native", "--task", "afriqa",
                 "--languages", "hau"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    # 26 of the 300 hau test questions have a gold passage that 27 train pairs (of any
    # language) have as theirs; by text one more (case and spacing normalised).
    assert ["afriqa-native", "afriqa/test", "hau_Latn", "passage_id", "27", "26", "/", "300",
            "(8.7%)"] in lines
    assert ["afriqa-native", "afriqa/test", "hau_Latn", "passage_text", "28", "27", "/", "300",
            "(9.0%)"] in lines
