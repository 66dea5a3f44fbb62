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
