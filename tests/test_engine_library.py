"""The engine's C library: one header, built at install in variants, the best one chosen, checked at load.

A library whose ABI version, struct sizes, field offsets, instruction sets or sources are not what
this package describes is refused, with one WARNING line, and decoding runs through PyTorch.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import HAS_COMPILER, needs_kernels
from selfattention.config import ModelConfig
from selfattention.decoding.translator import start_step
from selfattention.engine import library
from selfattention.engine.variants import FLAGS, GENERIC, SOURCES, VARIANTS, flags_for, sources_digest, variants_for
from selfattention.model import Transformer, build_model
from selfattention.search import TorchStep

pytestmark = pytest.mark.usefixtures("fresh_engine")

X86 = platform.machine().lower() in ("x86_64", "amd64")


def small_model() -> Transformer:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=32, n_heads=4, d_ff=48, encoder_layers=1, decoder_layers=2)
    return build_model(config).eval()


def the_step_runs_through_pytorch() -> bool:
    model = small_model()
    src = torch.randint(3, 40, (2, 5))
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        return isinstance(start_step(model, memory, mask, 2, 4), TorchStep)


def refused(caplog: pytest.LogCaptureFixture, *words: str) -> None:
    """The library is refused, once, with a WARNING holding ``words``, and decoding runs through PyTorch."""
    with caplog.at_level(logging.WARNING, logger=library.__name__):
        assert library.load() is None and library.load() is None
        assert the_step_runs_through_pytorch()
    warnings = [r for r in caplog.records if r.name == library.__name__]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    for word in words:
        assert word in warnings[0].getMessage() and word in str(library.why_not())
    assert "decoding runs through PyTorch" in warnings[0].getMessage()


@pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler: pip install could not have built the kernels")
def test_the_kernels_are_built_and_load_where_there_is_a_compiler() -> None:
    loaded = library.load()
    assert loaded is not None, f"{library.why_not()} (pip install -e . builds them)"
    assert loaded.variant == library.best_variant()
    assert (library.DIRECTORY / GENERIC.file).is_file()  # what every processor of this architecture runs


@needs_kernels
def test_a_library_of_another_abi_version_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(library, "ABI_VERSION", library.ABI_VERSION + 1)
    refused(caplog, f"ABI version {library.ABI_VERSION - 1}", f"expects {library.ABI_VERSION}")


@needs_kernels
def test_a_struct_whose_size_differs_from_its_ctypes_mirror_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    short = type("ShortModel", (ctypes.Structure,), {"_fields_": library.Model._fields_[:-1]})  # no `out`
    monkeypatch.setitem(library.MIRRORS, "model_t", short)
    refused(caplog, "struct model_t is", "ShortModel")


@needs_kernels
def test_a_field_at_another_offset_than_its_mirrors_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fields = list(library.Weight._fields_)
    fields[1], fields[2] = fields[2], fields[1]  # the same size, bias and scales swapped
    swapped = type("SwappedWeight", (ctypes.Structure,), {"_fields_": fields})
    monkeypatch.setitem(library.MIRRORS, "weight_t", swapped)
    refused(caplog, "weight_t.scales lies at byte 16 and its ctypes mirror's at 8")


@needs_kernels
def test_a_library_built_from_other_sources_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkout whose C changed since its libraries were built runs PyTorch until it builds them again."""
    for path in library.DIRECTORY.iterdir():
        if path.suffix in (".c", ".h", ".so"):
            shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(library, "DIRECTORY", tmp_path)
    assert library.load() is not None  # the same sources: loads
    library.forget()
    source = tmp_path / "native_step.c"
    source.write_text(source.read_text() + "\n/* edited */\n")
    refused(caplog, "built from other sources", "pip install -e .")


@needs_kernels
def test_without_any_library_the_warning_says_how_to_build_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(library, "DIRECTORY", tmp_path)
    refused(caplog, "the C kernels are not built", "pip install")


@needs_kernels
@pytest.mark.skipif(not X86, reason="one variant (generic) on this machine")
@pytest.mark.parametrize(
    ("has", "chosen"),
    [
        (set(VARIANTS[0].needs), VARIANTS[0].name),
        ({"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"}, "avx512"),
        ({"avx2", "fma", "avx512f"}, "avx2"),  # AVX-512 F alone (no BW, DQ, VL): the AVX2 build
        ({"avx2"}, "generic"),  # AVX2 without FMA
        (set(), "generic"),
    ],
)
def test_the_best_variant_the_processor_runs_is_chosen(
    has: set[str], chosen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = library.processor_features()
    pretend = {feature: feature in has for feature in real}
    if any(pretend[f] and not real[f] for f in pretend):
        pytest.skip("this processor lacks an instruction set the case pretends to have")
    monkeypatch.setattr(library, "processor_features", lambda directory=None: pretend)
    loaded = library.load()
    assert loaded is not None and loaded.variant.name == chosen
    assert the_step_runs_through_pytorch() is False


@needs_kernels
@pytest.mark.skipif(not X86, reason="one variant (generic) on this machine")
def test_a_library_that_uses_instructions_the_processor_lacks_is_refused() -> None:
    path = library.DIRECTORY / VARIANTS[1].file  # AVX-512 F, BW, DQ, VL
    cdll = library._open(path)
    lacking = dict.fromkeys(library.processor_features(), True) | {"avx512bw": False}
    with pytest.raises(library.LibraryError, match="uses avx512bw, which this processor does not have"):
        library.check(cdll, path, lacking)
    with pytest.raises(library.LibraryError, match="this processor lacks avx512bw"):
        library.open_variant(VARIANTS[1], supports=lacking)


def test_other_machines_build_the_generic_variant_alone_with_the_compilers_defaults() -> None:
    assert variants_for("aarch64") == (GENERIC,) and variants_for("x86_64") == VARIANTS
    assert flags_for(GENERIC, "aarch64") == FLAGS
    assert "-march=x86-64" in flags_for(GENERIC, "x86_64") and "-mavx512vnni" in flags_for(VARIANTS[0], "x86_64")
    assert sources_digest(Path("/nonexistent")) is None


def test_one_header_declares_every_struct_and_prototype_the_loader_mirrors() -> None:
    """engine.h alone declares the structs; every exported function is in it and in the loader's prototypes."""
    header = (library.DIRECTORY / "engine.h").read_text()
    declared = set(re.findall(r"\b(selfattention_\w+)\(", header))
    assert declared == set(library.PROTOTYPES)
    assert f"#define SELFATTENTION_ABI_VERSION {library.ABI_VERSION}\n" in header
    for name in library.MIRRORS:
        assert re.search(rf"}} {name};", header)
    defined: set[str] = set()
    for source in SOURCES:
        text = (library.DIRECTORY / source).read_text()
        assert '#include "engine.h"' in text
        assert "typedef struct" not in text, f"{source} declares a struct: it belongs in engine.h"
        defined |= set(re.findall(r"^\w[\w *]*?\b(selfattention_\w+)\(", text, flags=re.MULTILINE))
    assert defined == declared


@needs_kernels
def test_the_doctor_says_which_engine_runs_and_why_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from selfattention.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    out = capsys.readouterr().out
    assert out.startswith("selfattention ") and "engine: the C model" in out and "the C decoding step" in out
    loaded = library.load()
    assert loaded is not None
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("selfattention ") and "engine: the C model" in out and "the C decoding step" in out
    assert f"kernels: {loaded.variant.name}" in out and "threads:" in out and "decoding workers:" in out
    assert "one process for one batch" in out and "cores this process may use:" in out  # the workers' rule
    assert "decoded by the C step" in out
    monkeypatch.setattr(library, "ABI_VERSION", library.ABI_VERSION + 1)
    library.forget()
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "engine: the reference path" in out and "ABI version" in out and "decoded through PyTorch" in out
