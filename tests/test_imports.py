"""Every module of the package imports, the layers of the package only import downwards, and the
engine (``selfattention.engine``) is reached only at its seams.

The modules are found by walking the package, so modules added later (``selfattention.inspection.*``,
``selfattention.cli``) are checked without touching this file.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

# Found without importing the package, so that a package that cannot be imported (a circular
# import, say) fails the tests below by name instead of breaking their collection.
PACKAGE_DIR = Path(importlib.util.find_spec("selfattention").submodule_search_locations[0])  # type: ignore[union-attr]


def modules_on_disk(directory: Path, prefix: str) -> list[str]:
    names = []
    for info in pkgutil.iter_modules([str(directory)], prefix):
        names.append(info.name)
        if info.ispkg:
            names += modules_on_disk(directory / info.name.rpartition(".")[2], info.name + ".")
    return names


def all_modules() -> list[str]:
    broken: list[str] = []
    names = {info.name for info in pkgutil.walk_packages([str(PACKAGE_DIR)], "selfattention.", onerror=broken.append)}
    # walk_packages cannot look inside a package that fails to import: list those modules from disk,
    # so that each module still gets (and fails) its own test.
    for package in broken:
        names.update(modules_on_disk(PACKAGE_DIR.joinpath(*package.split(".")[1:]), package + "."))
    return sorted({"selfattention", *names})


MODULES = all_modules()


def test_walk_finds_the_package() -> None:
    """Guard against a walk that silently finds nothing (which would make the tests below vacuous)."""
    for name in (
        "selfattention",
        "selfattention.config",
        "selfattention.model",
        "selfattention.model_io",
        "selfattention.layers",
        "selfattention.attention",
        "selfattention.attention.core",
    ):
        assert name in MODULES
    assert set(MODULES) == {"selfattention", *modules_on_disk(PACKAGE_DIR, "selfattention.")}


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name == "selfattention.__main__":
        # Importing __main__ runs the command line; ask it for --help, which must exit cleanly.
        monkeypatch.setattr(sys, "argv", ["selfattention", "--help"])
        monkeypatch.delitem(sys.modules, name, raising=False)
        with pytest.raises(SystemExit) as exit_info:
            importlib.import_module(name)
        assert exit_info.value.code in (0, None)
        return
    module = importlib.import_module(name)
    assert module.__name__ == name


# --- layering -------------------------------------------------------------------------------------


class Rule(NamedTuple):
    """Modules named ``modules`` (or below it) must not import anything named in ``forbidden`` (or below).

    Modules under ``exempt`` are not bound by the rule; imports under ``allowed`` are let through (a seam).
    """

    modules: str
    forbidden: tuple[str, ...]
    exempt: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()


ENGINE = "selfattention.engine"
TRAINING_SEAM = "selfattention.engine.onednn_linear"  # the trainer's linear layers

RULES: tuple[Rule, ...] = (
    Rule(
        "selfattention.attention",
        (
            "selfattention.layers",
            "selfattention.model",
            "selfattention.model_io",
            "selfattention.inspection",
            "selfattention.cli",
        ),
    ),
    Rule(
        "selfattention.layers",
        ("selfattention.model", "selfattention.model_io", "selfattention.inspection", "selfattention.cli"),
    ),
    Rule("selfattention.model", ("selfattention.model_io", "selfattention.inspection", "selfattention.cli")),
    # STYLE.md's order, from data down: each layer may use those above it, never those below.
    Rule(
        "selfattention.data",
        _BELOW_DATA := (
            "selfattention.training",
            "selfattention.search",
            "selfattention.decoding",
            "selfattention.evaluation",
            "selfattention.inspection",
            "selfattention.interop",
            "selfattention.cli",
            "selfattention.web",
        ),
    ),
    Rule("selfattention.training", _BELOW_DATA[1:]),
    Rule("selfattention.search", _BELOW_DATA[2:]),
    Rule("selfattention.decoding", _BELOW_DATA[3:]),
    Rule("selfattention.evaluation", _BELOW_DATA[4:]),
    Rule("selfattention.inspection", _BELOW_DATA[5:]),
    Rule("selfattention.interop", ("selfattention.cli", "selfattention.web")),
    # The engine lies beside the stack: the reference path (and the layers that are not its seams)
    # never import it. Its seams: the translator (decoding/) picks its step, the trainer its linears.
    *(
        Rule(name, (ENGINE,))
        for name in (
            "selfattention.attention",
            "selfattention.layers",
            "selfattention.model",
            "selfattention.config",
            "selfattention.model_io",
            "selfattention.data",
            "selfattention.search",
            "selfattention.evaluation",
            "selfattention.inspection",
        )
    ),
    Rule("selfattention.training", (ENGINE,), exempt=("selfattention.training.trainer",)),
    Rule("selfattention.training.trainer", (ENGINE,), allowed=(TRAINING_SEAM,)),
    # The engine runs the model; it never imports what uses it.
    Rule(ENGINE, ("selfattention.model_io", *_BELOW_DATA, "selfattention.data")),
    # Only the command line itself (and ``python -m selfattention``) may import the command line.
    Rule("selfattention", ("selfattention.cli",), exempt=("selfattention.cli", "selfattention.__main__")),
)


def is_under(name: str, prefix: str) -> bool:
    """``selfattention.model`` is under itself, but ``selfattention.model_io`` is not under it."""
    return name == prefix or name.startswith(prefix + ".")


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every dotted name a module's source imports, anywhere in the file (lazy imports included).

    ``from a.b import c`` counts as importing both ``a.b`` and ``a.b.c`` (``c`` may be a module).
    """
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (
                importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                if node.level
                else node.module
            )
            assert base is not None
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def violations(module: str, imports: set[str]) -> list[str]:
    found = []
    for rule in RULES:
        if not is_under(module, rule.modules) or any(is_under(module, exempt) for exempt in rule.exempt):
            continue
        for name in sorted(imports):
            if any(is_under(name, allowed) for allowed in rule.allowed):
                continue
            for forbidden in rule.forbidden:
                if is_under(name, forbidden):
                    found.append(f"{module} imports {name} (modules under {rule.modules} must not import {forbidden})")
    return found


def module_source(name: str) -> tuple[str, bool]:
    """The source of a module, read from disk (so a module that fails to import is still checked)."""
    path = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    if path.is_dir():
        return (path / "__init__.py").read_text(encoding="utf-8"), True
    return path.with_suffix(".py").read_text(encoding="utf-8"), False


@pytest.mark.parametrize("name", MODULES)
def test_layering(name: str) -> None:
    source, is_package = module_source(name)
    assert violations(name, imported_names(source, name, is_package)) == []


@pytest.mark.parametrize(
    ("module", "is_package", "source", "bad"),
    [
        ("selfattention.attention.core", False, "from selfattention.model import Transformer", True),
        ("selfattention.attention.core", False, "from selfattention import layers", True),
        ("selfattention.attention.core", False, "from ..inspection import recorder", True),
        ("selfattention.attention", True, "from ..model_io import save_model", True),
        ("selfattention.attention.core", False, "def f():\n    import selfattention.cli\n", True),
        ("selfattention.attention.core", False, "from .masks import causal_mask", False),
        ("selfattention.layers", False, "from selfattention.model import build_model", True),
        ("selfattention.layers", False, "from selfattention.attention import MultiHeadAttention", False),
        ("selfattention.model", False, "from selfattention.model_io import save_model", True),
        ("selfattention.model", False, "from selfattention.layers import EncoderLayer", False),
        ("selfattention.model_io", False, "from selfattention.model import build_model", False),
        ("selfattention.training.trainer", False, "from selfattention.cli import main", True),
        ("selfattention.inspection.explain", False, "from selfattention import cli", True),
        ("selfattention.__main__", False, "from selfattention.cli import main", False),
        ("selfattention.cli", False, "from selfattention.cli import CommandError", False),
        ("selfattention.attention.core", False, "from selfattention.engine import few_queries", True),
        ("selfattention.model", False, "def f():\n    from selfattention.engine.native_step import start\n", True),
        ("selfattention.search.greedy", False, "from selfattention.engine.top_k import top_k", True),
        ("selfattention.evaluation.scores", False, "import selfattention.engine.packed", True),
        ("selfattention.training.trainer", False, "from selfattention.engine.onednn_linear import linear", False),
        ("selfattention.training.trainer", False, "from selfattention.engine import native_step", True),
        ("selfattention.training.loss", False, "from selfattention.engine.onednn_linear import linear", True),
        ("selfattention.decoding.translator", False, "from selfattention.engine import native_step", False),
        ("selfattention.engine.native_step", False, "from selfattention.search import TorchStep", True),
        ("selfattention.engine.native_step", False, "from selfattention.model import Transformer", False),
    ],
)
def test_layering_checker_itself(module: str, is_package: bool, source: str, bad: bool) -> None:
    """The checker catches each kind of forbidden import (so an empty result above means something)."""
    assert bool(violations(module, imported_names(source, module, is_package))) is bad


def test_the_reference_path_runs_without_loading_the_engine() -> None:
    """Importing the model, its layers, attention and the search (in a fresh process) loads no engine module."""
    code = (
        "import sys\n"
        "import selfattention.model, selfattention.layers, selfattention.attention, selfattention.model_io\n"
        "import selfattention.search, selfattention.data\n"
        "print(sorted(m for m in sys.modules if m.startswith('selfattention.engine')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- what translating imports ---------------------------------------------------------------------

HEAVY = (
    "torch",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "transformers",
    "ctranslate2",
    "pandas",
    "scipy",
    "sacrebleu",
    "sympy",
    "google",  # protobuf: only adding the case marker to a vocabulary reads a model file's ModelProto
)
NOT_FOR_TRANSLATING = (
    "selfattention.evaluation",
    "selfattention.training",
    "selfattention.web",
    "selfattention.inspection.plots",
)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_translating_imports_nothing_heavy(precision: str) -> None:
    """`selfattention translate` (in a fresh process) loads no PyTorch (the engine's C model translates), no
    plotting, web, Hugging Face, CTranslate2, scoring or symbolic-maths package, and none of the package's modules for those; every command's
    parser is still built (`--help` lists them all)."""
    code = (
        "import contextlib, io, sys\n"
        "from selfattention.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    assert main(['translate', '--precision', '{precision}', 'Hello.']) == 0\n"
        "assert out.getvalue().strip()\n"
        f"heavy = {HEAVY!r}\n"
        f"ours = {NOT_FOR_TRANSLATING!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(ours)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from selfattention.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out
    commands = ["explain", "translate", "attention", "heads", "context", "train", "curves", "download", "evaluate"]
    commands += ["serve", "import-hf", "export-hf", "export-ct2", "doctor"]
    assert [command for command in commands if f"    {command} " not in listed] == []
