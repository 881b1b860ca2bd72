"""The engine's C library: the best build the processor runs, checked against its description here.

``pip install`` builds the kernels (``kernels/``) into one library per instruction-set variant
(:mod:`~selfattention.engine.variants`, ``setup.py``), ``kernels/selfattention-<variant>.so``.
:func:`load` asks the generic build which instruction sets the processor has
(``__builtin_cpu_supports``), opens the best variant it can run, and checks it before anything
calls it:

- its ABI version against :data:`ABI_VERSION`, and the size of every struct of ``engine.h`` and
  the offset of each field against the ctypes mirrors below (:class:`Strides`, :class:`Weight`,
  :class:`Model`, :class:`Layer`);
- the instruction sets its code uses, all of them the processor's;
- the digest of the sources it was built from, against the sources beside it (in a checkout
  whose C changed since ``pip install -e .``, the library is stale).

A library that fails a check is refused. Without a library the engine stands aside: the callers
run PyTorch's operators, and one WARNING line says why (once per process; ``selfattention doctor``
says it too). With ``SELFATTENTION_NATIVE=0`` nothing is loaded. Nothing is compiled here: a
checkout without its libraries builds them with ``pip install -e .`` (or
``python setup.py build_ext --inplace``).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import platform
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfattention.engine import SWITCH, switched_off
from selfattention.engine.variants import FEATURES, GENERIC, KERNELS, Variant, sources_digest, variants_for

log = logging.getLogger(__name__)

ABI_VERSION = 2  # engine.h's SELFATTENTION_ABI_VERSION
DIRECTORY = KERNELS  # where the built libraries lie, beside their sources
FALLBACK = "the C engine stands aside and decoding runs through PyTorch (slower)"

_pointer, _size = ctypes.c_void_p, ctypes.c_int64


class Strides(ctypes.Structure):
    """engine.h's ``strides3``: a (B, H, T, Dh) operand's strides, in floats."""

    _fields_ = [("b", _size), ("h", _size), ("t", _size)]


class Weight(ctypes.Structure):
    """engine.h's ``weight_t``: a Linear layer's packed weight, float32 (``scales`` None) or int8."""

    _fields_ = [(name, _pointer) for name in ("w", "bias", "scales", "sums")]


class Model(ctypes.Structure):
    """engine.h's ``model_t``: the decoder's (or the encoder's) settings and its weights outside the layers."""

    _fields_ = [
        *((name, _size) for name in ("d", "heads", "ff", "vocab", "layers")),
        *((name, ctypes.c_int32) for name in ("norm_first", "activation", "final_norm", "pad_")),
        ("eps", ctypes.c_float),
        ("embed_scale", ctypes.c_float),
        *((name, _pointer) for name in ("embed", "final_w", "final_b")),
        ("out", Weight),
    ]


LAYER_WEIGHTS = ("qkv", "self_out", "cross_q", "cross_out", "up", "down")
LAYER_NORMS = ("norm1_w", "norm1_b", "norm2_w", "norm2_b", "norm3_w", "norm3_b")


class Layer(ctypes.Structure):
    """engine.h's ``layer_t``: one decoder layer's weights."""

    _fields_ = [*((name, Weight) for name in LAYER_WEIGHTS), *((name, _pointer) for name in LAYER_NORMS)]


ENCODER_WEIGHTS = ("qkv", "out", "up", "down")
ENCODER_NORMS = ("norm1_w", "norm1_b", "norm2_w", "norm2_b")


class EncoderLayer(ctypes.Structure):
    """engine.h's ``encoder_layer_t``: one encoder layer's weights."""

    _fields_ = [*((name, Weight) for name in ENCODER_WEIGHTS), *((name, _pointer) for name in ENCODER_NORMS)]


MIRRORS: dict[str, type[ctypes.Structure]] = {
    "strides3": Strides,
    "weight_t": Weight,
    "model_t": Model,
    "layer_t": Layer,
    "encoder_layer_t": EncoderLayer,
}

# engine.h's prototypes: (result, arguments) of each function, set on the library when it is opened.
_int, _text = ctypes.c_int, ctypes.c_char_p
_FEW_QUERIES = [_pointer, Strides, _pointer, Strides, _pointer, Strides, _pointer, _size, _size, _pointer,
                _size, _size, _size, _size, _size, ctypes.c_float]  # fmt: skip
_STEP = [ctypes.POINTER(Model), ctypes.POINTER(Layer), _pointer, _pointer, _size, _size, _pointer, _size, _size,
         _pointer, _pointer, _size, _size, _pointer, _pointer]  # fmt: skip
PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "selfattention_abi_version": (_size, []),
    "selfattention_struct_size": (_size, [_text]),
    "selfattention_field_offset": (_size, [_text, _text]),
    "selfattention_cpu_supports": (_int, [_text]),
    "selfattention_built_with": (_int, [_text]),
    "selfattention_sources": (_text, []),
    "selfattention_few_queries": (_int, _FEW_QUERIES),
    "selfattention_few_queries_traced": (_int, [*_FEW_QUERIES, _pointer, _size]),
    "selfattention_packed_size": (_size, [_size, _size]),
    "selfattention_pack": (None, [_pointer, _size, _size, _pointer]),
    "selfattention_packed_size_int8": (_size, [_size, _size]),
    "selfattention_pack_int8": (None, [_pointer, _size, _size, _pointer, _pointer]),
    "selfattention_linear": (_int, [_pointer, _size, _size, ctypes.POINTER(Weight), _size, _pointer]),
    "selfattention_encode": (
        _int,
        [ctypes.POINTER(Model), ctypes.POINTER(EncoderLayer), _pointer, _pointer, _size, _size, _pointer, _pointer],
    ),
    "selfattention_cross_kv": (_int, [ctypes.POINTER(Model), ctypes.POINTER(Weight), _pointer, _size, _size, _pointer]),
    "selfattention_step": (_int, _STEP),
    "selfattention_best": (_int, [_pointer, _size, _size, _size, _pointer, _size, _size, _pointer, _pointer, _pointer]),
}


class LibraryError(Exception):
    """A library that cannot be used here, and why."""


@dataclass(frozen=True)
class Library:
    """An opened, checked engine library: ``cdll`` has every function of ``engine.h`` declared."""

    cdll: ctypes.CDLL
    variant: Variant
    path: Path


def _open(path: Path) -> ctypes.CDLL:
    try:
        cdll = ctypes.CDLL(str(path))
        for name, (result, arguments) in PROTOTYPES.items():
            function = getattr(cdll, name)
            function.restype, function.argtypes = result, arguments
    except (OSError, AttributeError) as error:
        raise LibraryError(f"could not load {path} ({error})") from error
    return cdll


def check(cdll: ctypes.CDLL, path: Path, supports: dict[str, bool]) -> None:
    """Refuse (:class:`LibraryError`) a library whose ABI, structs, instruction sets or sources are not these."""
    version = cdll.selfattention_abi_version()
    if version != ABI_VERSION:
        raise LibraryError(
            f"{path.name} has ABI version {version} and this package expects {ABI_VERSION}: it was built from "
            "other sources (pip install the package again)"
        )
    for name, mirror in MIRRORS.items():
        size = cdll.selfattention_struct_size(name.encode())
        if size != ctypes.sizeof(mirror):
            raise LibraryError(
                f"{path.name}'s struct {name} is {size} bytes and its ctypes mirror {mirror.__name__} "
                f"{ctypes.sizeof(mirror)}: engine.h and library.py disagree"
            )
        for field, *_ in mirror._fields_:
            offset = cdll.selfattention_field_offset(name.encode(), field.encode())
            if offset != getattr(mirror, field).offset:
                raise LibraryError(
                    f"{path.name}'s {name}.{field} lies at byte {offset} and its ctypes mirror's at "
                    f"{getattr(mirror, field).offset}: engine.h and library.py disagree"
                )
    missing = [f for f, has in supports.items() if not has and cdll.selfattention_built_with(f.encode()) == 1]
    if missing:
        raise LibraryError(f"{path.name} uses {', '.join(missing)}, which this processor does not have")
    built_from, here = cdll.selfattention_sources().decode(), sources_digest(path.parent)
    if here is not None and built_from != here:
        raise LibraryError(
            f"{path.name} was built from other sources than those in {path.parent} (they changed since): "
            "build it again with `pip install -e .` (or `python setup.py build_ext --inplace`)"
        )


def processor_features(directory: Path | None = None) -> dict[str, bool]:
    """Which of the variants' instruction sets this processor has, asked of the most generic library built."""
    directory = directory or DIRECTORY
    built = [v for v in reversed(variants_for(platform.machine())) if (directory / v.file).is_file()]
    if not built:
        raise LibraryError(
            f"the C kernels are not built (no selfattention-*.so in {directory}; `pip install` builds them, "
            "with a C compiler)"
        )
    cdll = _open(directory / built[0].file)
    return {feature: cdll.selfattention_cpu_supports(feature.encode()) == 1 for feature in FEATURES}


def open_variant(variant: Variant, directory: Path | None = None, supports: dict[str, bool] | None = None) -> Library:
    """``variant``'s library, checked; :class:`LibraryError` when it is missing, unfit or refused.

    ``supports``: the processor's instruction sets (default: asked of the generic library).
    """
    directory = directory or DIRECTORY
    path = directory / variant.file
    if not path.is_file():
        raise LibraryError(f"{path} is not built")
    supports = supports if supports is not None else processor_features(directory)
    lacking = [feature for feature in variant.needs if not supports.get(feature)]
    if lacking:
        raise LibraryError(f"this processor lacks {', '.join(lacking)}, which {path.name} needs")
    cdll = _open(path)
    check(cdll, path, supports)
    return Library(cdll, variant, path)


def best_variant(directory: Path | None = None, supports: dict[str, bool] | None = None) -> Variant:
    """The best variant built in ``directory`` whose instruction sets this processor has (``supports``)."""
    directory = directory or DIRECTORY
    supports = supports if supports is not None else processor_features(directory)
    for variant in variants_for(platform.machine()):
        if (directory / variant.file).is_file() and all(supports.get(f) for f in variant.needs):
            return variant
    raise LibraryError(f"no library in {directory} runs on this processor (not even {GENERIC.file})")


_opening = threading.Lock()  # threads asking at once open and check the library once


@functools.cache
def _probe(name: str | None) -> Library | str:
    """The library (``name``: that variant; None: the best), or why there is none; cached: said once."""
    if switched_off():
        return f"{SWITCH}=0 turns it off"
    try:
        supports = processor_features()
        if name is None:
            return open_variant(best_variant(supports=supports), supports=supports)
        variant = next((v for v in variants_for(platform.machine()) if v.name == name), None)
        if variant is None:
            raise LibraryError(f"there is no {name} variant on this machine")
        return open_variant(variant, supports=supports)
    except LibraryError as error:
        if name is None:
            log.warning("%s; %s", error, FALLBACK)
        return str(error)


def load(variant: str | None = None) -> Library | None:
    """The engine's library (the best variant, or the one named), or None: the engine stands aside.

    The first call per process opens and checks it; a refusal is logged then, once, as a WARNING.
    """
    with _opening:
        found = _probe(variant)
    return found if isinstance(found, Library) else None


def why_not() -> str | None:
    """Why the engine's library is not loaded (None when it is)."""
    with _opening:
        found = _probe(None)
    return None if isinstance(found, Library) else found


def forget() -> None:
    """Open and check the library again at the next :func:`load` (tests change the switch or the files)."""
    _probe.cache_clear()


__all__ = [
    "ABI_VERSION",
    "DIRECTORY",
    "FALLBACK",
    "MIRRORS",
    "EncoderLayer",
    "Layer",
    "Library",
    "LibraryError",
    "Model",
    "Strides",
    "Weight",
    "best_variant",
    "check",
    "forget",
    "load",
    "open_variant",
    "processor_features",
    "why_not",
]
