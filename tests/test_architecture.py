"""The shape of the package: the import contracts of pyproject.toml ([tool.importlinter]:
one-way layers, only xlir.tuning imports peft and adapters, qgen never imports qgen_train), the
400-line ceiling on modules, and what the wheel carries (every package, the presets, the
datasets' checksum tables, py.typed)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "xlir"
MAX_LINES = 400
# Over the ceiling when the ceiling was set; each is to be split, then removed from here.
KNOWN_LONG: set[str] = set()


def test_import_contracts_hold(capsys):
    # The use case, not importlinter.cli.lint_imports: that one calls logging.dictConfig, whose
    # disable_existing_loggers silences every logger already made (xlir's among them) for the
    # rest of the test session. Importing the cli module configures import-linter itself.
    import importlinter.cli  # noqa: F401
    from importlinter.application.use_cases import lint_imports

    passed = lint_imports(config_filename=str(REPO / "pyproject.toml"), cache_dir=None,
                          no_logo=True)
    assert passed, capsys.readouterr().out


def test_no_module_grows_past_the_ceiling():
    lines = {str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines())
             for p in SRC.rglob("*.py")}
    long = {name for name, n in lines.items() if n > MAX_LINES}
    assert long - KNOWN_LONG == set(), {name: lines[name] for name in long - KNOWN_LONG}
    assert KNOWN_LONG - long == set(), "now short enough: remove from KNOWN_LONG"


def test_one_ranking_rule_and_one_home_for_runs():
    """Score descending, ties by doc id: written once (xlir.retrieve.rank), so hybrid fusion,
    TREC files and the metrics cannot rank one run two ways; and only retrieve.py builds a
    dense index for a task (DenseIndex.build ... search_task)."""
    import re

    rule = re.compile(r"key=lambda \w+: \(-\w+\[1\], \w+\[0\]\)")
    holders = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if rule.search(p.read_text())}
    assert holders == {"retrieve.py"}, holders
    chains = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
              if "search_task(" in p.read_text() and p.name != "index.py"}
    assert chains <= {"retrieve.py", "cli/search.py"}, chains  # search: a saved index


def test_pyproject_lists_every_package():
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(SRC.parent).parts) for p in SRC.rglob("__init__.py")}
    assert set(setuptools["packages"]) == found | {"xlir.configs"}
    assert setuptools["package-dir"]["xlir.configs"] == "configs"


def test_presets_come_from_the_checkout_here():
    import pytest

    from xlir import presets, study
    from xlir.errors import ConfigError

    assert presets.path("quick") == study.DEFAULT_CONFIG == REPO / "configs" / "quick.yaml"
    assert presets.names() == sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
    with pytest.raises(ConfigError, match=r"no preset 'quik'.*'quick'"):
        presets.path("quik")


def test_the_wheel_carries_the_presets(tmp_path):
    """Built from a copy of the tree (the build writes build/ and *.egg-info beside it)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    tree = tmp_path / "tree"
    shutil.copytree(REPO / "configs", tree / "configs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(SRC, tree / "src" / "xlir", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", str(tree), "-w", str(tmp_path / "wheel")],
                   check=True, capture_output=True)
    [wheel] = (tmp_path / "wheel").glob("xlir-*.whl")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path / "site")
    for preset in (REPO / "configs").glob("*.yaml"):
        assert (tmp_path / "site" / "xlir" / "configs" / preset.name).read_bytes() == preset.read_bytes()
    # the datasets' checksum tables are package data, read by the installed registry
    tables = sorted((SRC / "data" / "sha256").glob("*.txt"))
    assert {t.stem for t in tables} == {"afriqa", "tydi", "amqa", "sib200", "masakhaner"}
    for table in tables:
        assert (tmp_path / "site" / "xlir" / "data" / "sha256" / table.name).read_bytes() == table.read_bytes()
    assert ((tmp_path / "site" / "xlir" / "data" / "languages.txt").read_bytes()
            == (SRC / "data" / "languages.txt").read_bytes())  # the language table
    assert (tmp_path / "site" / "xlir" / "py.typed").is_file()
    found = subprocess.run([sys.executable, "-c", "from xlir import study; print(study.DEFAULT_CONFIG); "
                            "from xlir.data import registry; print(registry.__file__, "
                            "len(registry.DATASETS['sib200'].files))"],
                           env={"PYTHONPATH": str(tmp_path / "site")}, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    assert found[0] == str(tmp_path / "site" / "xlir" / "configs" / "quick.yaml")
    assert found[1] == f"{tmp_path / 'site' / 'xlir' / 'data' / 'registry.py'} 616"


def test_stage_bodies_take_explicit_arguments_never_the_study():
    """xlir.stages, stages_xqg and stages_swap hold the bodies of the study's stages: every
    input is an argument (the layers keep them from importing xlir.study); the Study decides
    what runs and is never handed to them; one loop (Study.run_stage) skips what is done."""
    import inspect

    from xlir import stages, stages_swap, stages_xqg

    for module in (stages, stages_swap, stages_xqg):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__:
                assert "study" not in inspect.signature(fn).parameters, f"{module.__name__}.{name}"
    assert (SRC / "study.py").read_text().count("def done(") == 1


def test_a_function_local_import_of_xlir_says_why():
    """Imports of xlir's own modules sit at the top of a module; one inside a function (to keep
    torch, transformers or faiss from loading where they are not used) says so on its line.
    The CLI's subcommand modules import inside their handlers by design (xlir.cli: `xlir
    --help` stays fast)."""
    import ast

    silent = []
    for path in SRC.rglob("*.py"):
        if path.parent.name == "cli":
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for fn in ast.walk(ast.parse(text)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xlir")
                            and "#" not in lines[node.end_lineno - 1]):
                        silent.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not silent, silent
