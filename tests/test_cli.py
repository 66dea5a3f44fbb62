"""The `xlir` command: every subcommand exists and has help; user errors are one line."""

import subprocess
import sys

import pytest

from xlir.cli import ORDER, build_parser, main


def test_every_documented_subcommand_is_registered():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 (argparse API)
    assert list(commands) == ORDER


@pytest.mark.parametrize("command", ORDER)
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: xlir {command}") and len(out) > 200


def test_hub_id_without_network_is_one_clear_line():
    proc = subprocess.run([sys.executable, "-m", "xlir", "models", "check", "intfloat/e5-base"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no network" in lines[0] and "Traceback" not in proc.stderr


def test_bitext_task_from_the_command_line(tmp_path, capsys):
    (tmp_path / "hau.txt").write_text("Kano birni ne\nIna ruwa\n")
    (tmp_path / "eng.txt").write_text("Kano is a city\nWhere is water\n")
    task = f"bitext:{tmp_path / 'hau.txt'},{tmp_path / 'eng.txt'},hau,eng"
    assert main(["evaluate", "--task", task, "--bm25", "--measures", "Success@1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bitext-src2tgt test: bm25") and "hau_Latn" in out
    assert main(["data", "show", task]) == 0
    assert "bitext-src2tgt (test): 2 queries, 2 documents" in capsys.readouterr().out


@pytest.mark.parametrize("eng, where", [
    ("Kano is a city\n", "hau.txt, line 2: "),          # one line short
    ("Kano is a city\n\n", "eng.txt, line 2: empty text"),
    (None, "eng.txt: file not found"),
])
def test_bad_bitext_is_one_line_naming_file_and_line(tmp_path, capsys, eng, where):
    (tmp_path / "hau.txt").write_text("Kano birni ne\nIna ruwa\n")
    if eng is not None:
        (tmp_path / "eng.txt").write_text(eng)
    task = f"bitext:{tmp_path / 'hau.txt'},{tmp_path / 'eng.txt'},hau,eng"
    for command in (["evaluate", "--task", task, "--bm25"], ["data", "show", task]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and where in err[0] and "Traceback" not in err[0], err
    assert main(["evaluate", "--task", task.replace(",hau,", ",xx,"), "--bm25"]) == 2
    assert "SRC_LANG: unknown language code 'xx'" in capsys.readouterr().err


def test_the_language_groups_follow_the_encoder_evaluated(tmp_path):
    from argparse import Namespace

    from xlir.cli.evaluate import encoder_family_of

    tuned = tmp_path / "full-s13" / "model"  # a tuned model: the family of the base it came from
    tuned.mkdir(parents=True)
    (tuned / "xlir-model.json").write_text('{"base_model": "/cache/models/multilingual-e5-small"}')
    assert encoder_family_of(Namespace(model=str(tuned), encoder_family=None)) == "me5"
    assert encoder_family_of(Namespace(model="xlm-roberta-base", encoder_family=None)) == "xlmr"
    assert encoder_family_of(Namespace(model=str(tmp_path), encoder_family=None)) is None
    assert encoder_family_of(Namespace(model="default", encoder_family=None)) == "me5"
    assert encoder_family_of(Namespace(model=None, encoder_family=None)) == "me5"  # a run file
    assert encoder_family_of(Namespace(model=str(tmp_path), encoder_family="xlmr")) == "xlmr"


def test_evaluate_and_compare_pass_the_family_to_the_groups(tmp_path, capsys, monkeypatch):
    import xlir.evaluate

    (tmp_path / "hau.txt").write_text("Kano birni ne\nIna ruwa\n")
    (tmp_path / "eng.txt").write_text("Kano is a city\nWhere is water\n")
    task = f"bitext:{tmp_path / 'hau.txt'},{tmp_path / 'eng.txt'},hau,eng"
    run_file = tmp_path / "bm25.trec"
    assert main(["evaluate", "--task", task, "--bm25", "--save-run", str(run_file)]) == 0
    seen = []
    real = xlir.evaluate.evaluate_run

    def spy(*args, **kwargs):
        seen.append((kwargs.get("encoder_family"), kwargs.get("encoder")))
        return real(*args, **kwargs)

    monkeypatch.setattr(xlir.evaluate, "evaluate_run", spy)
    assert main(["evaluate", "--task", task, "--run", str(run_file)]) == 0
    assert main(["evaluate", "--task", task, "--run", str(run_file),
                 "--encoder-family", "xlmr"]) == 0
    assert main(["compare", str(run_file), str(run_file), "--task", task,
                 "--encoder-family", "xlmr", "--permutations", "100"]) == 0
    assert seen == [("me5", None), ("xlmr", None), ("xlmr", None), ("xlmr", None)]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["evaluate", "--task", task, "--run", str(run_file), "--encoder-family", "bert"])
    assert "--encoder-family: invalid choice: 'bert'" in capsys.readouterr().err
