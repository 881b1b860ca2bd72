"""Attention for a decoding step: a few query rows against cached keys, in a small C kernel.

Shapes: ``q`` ``(B, H, T, Dh)`` with T small (1 for a new position, K for beam search's K
hypotheses of one source), ``k`` and ``v`` ``(B, H, S, Dh)``, the mask per key ``(B or 1, 1, 1, S)``.

A decoding step asks each (row, head) pair for one softmax-weighted sum over at most a few hundred
keys. PyTorch's fused kernel treats the single query row as a matrix product (a matrix-vector
product per pair); ``few_queries.c`` does the same arithmetic in plain vectorised loops, reads the
keys and values through their strides (the caches are views), and writes the output with the heads
already merged (``(B, T, H, Dh)``, returned as its ``(B, H, T, Dh)`` view), so the output projection
reads it without a copy. What that is worth for a whole search: ``benchmarks/decoding_levers.py``.

The kernel is compiled on first use with the machine's C compiler (``$CC``, else ``cc``), for this
processor (``-march=native``), into ``$SELFATTENTION_CACHE`` (default ``~/.cache/selfattention``),
under a name that hashes the source, the flags and the processor's features; later processes load
the built file. Without a compiler, when the build fails, or with ``SELFATTENTION_NATIVE=0``,
:func:`applies` answers False and PyTorch's kernel runs, as everywhere else. It is for inference:
float32 on the CPU, no dropout, no gradients; the fused and explicit paths of ``core.py`` stay the
definition (a test holds the kernel to PyTorch's result).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

SWITCH = "SELFATTENTION_NATIVE"
CACHE = "SELFATTENTION_CACHE"
SOURCE = Path(__file__).with_name("few_queries.c")
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=c99")
MAX_QUERIES = 16  # more query rows than this are a matrix product, where PyTorch's kernel is the faster


class _Strides(ctypes.Structure):
    _fields_ = [("b", ctypes.c_int64), ("h", ctypes.c_int64), ("t", ctypes.c_int64)]


def _strides(x: Tensor) -> _Strides:
    return _Strides(*x.stride()[:3])


def cache_dir() -> Path:
    """Where the built kernel is kept: ``$SELFATTENTION_CACHE``, else ``$XDG_CACHE_HOME/selfattention``."""
    if os.environ.get(CACHE):
        return Path(os.environ[CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "selfattention"


def _processor() -> str:
    """The processor's model and feature flags (``-march=native`` builds for them), or the machine name."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.machine()
    lines = [line for line in text.splitlines() if line.startswith(("flags", "model name", "Features"))]
    return "\n".join(sorted(set(lines))) or platform.machine()


def build(directory: Path | None = None) -> Path | None:
    """Compile ``few_queries.c`` into ``directory`` (default :func:`cache_dir`) unless built already.

    Returns the shared library's path, or None (logged) when no compiler is found or the build fails.
    """
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler found; decoding uses PyTorch's attention kernel")
        return None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(), _processor().encode()]))
    directory = directory or cache_dir()
    target = directory / f"few_queries-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            built = Path(scratch) / target.name
            command = [compiler, *FLAGS, "-o", str(built), str(SOURCE), "-lm"]
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                log.warning(
                    "building %s failed; decoding uses PyTorch's attention kernel:\n%s", SOURCE.name, result.stderr
                )
                return None
            os.replace(built, target)  # atomic: a process building beside this one finds a whole file
    except (OSError, subprocess.SubprocessError) as error:
        log.warning(
            "could not build %s in %s (%s); decoding uses PyTorch's attention kernel", SOURCE.name, directory, error
        )
        return None
    return target


@functools.cache
def _kernel() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    library = build()
    if library is None:
        return None
    try:
        function = ctypes.CDLL(str(library)).selfattention_few_queries
    except (OSError, AttributeError) as error:
        log.warning("could not load %s (%s); decoding uses PyTorch's attention kernel", library, error)
        return None
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    function.argtypes = [pointer, _Strides, pointer, _Strides, pointer, _Strides, pointer, size, size, pointer]
    function.argtypes += [size, size, size, size, size, ctypes.c_float]
    function.restype = ctypes.c_int
    return function


def available() -> bool:
    """Whether the kernel is built and loaded here (it is built on the first call)."""
    return _kernel() is not None


def applies(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> bool:
    """Whether :func:`attend` computes this call: inference on the CPU, few queries, a per-key mask."""
    if dropout_p > 0.0 or q.dim() != 4 or k.dim() != 4 or v.dim() != 4 or q.shape[-2] > MAX_QUERIES:
        return False
    if not (q.dtype == k.dtype == v.dtype == torch.float32) or q.device.type != "cpu":
        return False
    if k.device.type != "cpu" or v.device.type != "cpu":
        return False
    if q.shape[:2] != k.shape[:2] or k.shape[:2] != v.shape[:2] or v.shape[-1] != q.shape[-1]:
        return False
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:  # each head's vector contiguous
        return False
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return False
    if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2] != 1):
        return False
    return _kernel() is not None


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """softmax(q kᵀ / sqrt(Dh)) v, ``(B, H, T, Dh)``; a query that may attend to nothing gets zeros.

    Call only where :func:`applies` is True. The result is a view of a ``(B, T, H, Dh)`` tensor.
    """
    kernel = _kernel()
    assert kernel is not None, "attend() called where applies() is False"
    batch, heads, queries, width = q.shape
    keys = k.shape[-2]
    out = torch.empty(batch, queries, heads, width)
    if mask is None:
        mask_pointer, mask_stride_b, mask_stride_s = None, 0, 0
    else:
        expanded = mask.expand(batch, 1, 1, keys)
        mask_pointer, mask_stride_b, mask_stride_s = expanded.data_ptr(), expanded.stride(0), expanded.stride(3)
    failed = kernel(
        q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v),
        mask_pointer, mask_stride_b, mask_stride_s, out.data_ptr(),
        batch, heads, queries, keys, width, 1.0 / math.sqrt(width),
    )  # fmt: skip
    if failed:
        raise MemoryError(f"the attention kernel could not allocate {keys} scores")
    return out.transpose(1, 2)


__all__ = ["MAX_QUERIES", "applies", "attend", "available", "build", "cache_dir"]
