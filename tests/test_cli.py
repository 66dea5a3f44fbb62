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
