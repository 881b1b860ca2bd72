"""The engine library's build variants: one shared library per instruction set, built at install.

A wheel runs on other x86-64 processors than the one that built it, so ``setup.py`` compiles the
C kernels (``kernels/``) several times, each into ``kernels/selfattention-<variant>.so``: for
AVX-512 with VNNI (int8 sums in ``vpdpbusd``), for AVX-512 without it, for AVX2 with FMA, and
generic x86-64 (SSE2). On other processors it builds the generic variant alone, with the
compiler's defaults. :mod:`~selfattention.engine.library` loads the best variant the running
processor supports. What each variant needs is what its flags let the compiler use, named as
``__builtin_cpu_supports`` names them; the kernels' own ``#if``\\ s test ``__AVX512F__`` and
``__AVX512VNNI__`` (AVX-512 BF16 is used nowhere, so no variant asks for it).

Plain Python, no imports from the package: ``setup.py`` reads this file before the package (or
torch) can be imported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

KERNELS = Path(__file__).with_name("kernels")  # the C sources, their header, and the built libraries
SOURCES = ("abi.c", "products.c", "encoder.c", "native_step.c", "few_queries.c")  # linked into one library
HEADERS = ("engine.h", "lanes.h", "products.h")
FLAGS = ("-O3", "-ffp-contract=fast", "-std=c99", "-g0", "-Wno-psabi")  # contract: fused multiply-adds
_AVX2 = ("-mavx2", "-mfma")
_AVX512 = (*_AVX2, "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl")


@dataclass(frozen=True)
class Variant:
    """One build of the kernels: its name, its compiler flags (x86-64 only) and what it needs of the processor."""

    name: str
    label: str  # what a person reads
    flags: tuple[str, ...]
    needs: tuple[str, ...]

    @property
    def file(self) -> str:
        return f"selfattention-{self.name}.so"


VARIANTS = (  # best first
    Variant("avx512_vnni", "AVX-512 (F, BW, DQ, VL) with VNNI", (*_AVX512, "-mavx512vnni"),
            ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vnni")),
    Variant("avx512", "AVX-512 (F, BW, DQ, VL)", _AVX512, ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl")),
    Variant("avx2", "AVX2 with FMA", _AVX2, ("avx2", "fma")),
    Variant("generic", "generic (the architecture's baseline: SSE2 on x86-64)", (), ()),
)  # fmt: skip
GENERIC = VARIANTS[-1]
FEATURES = tuple(dict.fromkeys(feature for variant in VARIANTS for feature in variant.needs))
X86_64 = ("x86_64", "amd64")  # platform.machine(), lower-cased


def variants_for(machine: str) -> tuple[Variant, ...]:
    """The variants built on a ``machine`` (``platform.machine()``): all on x86-64, the generic one elsewhere."""
    return VARIANTS if machine.lower() in X86_64 else (GENERIC,)


def flags_for(variant: Variant, machine: str) -> tuple[str, ...]:
    """``variant``'s compiler flags on ``machine``: x86-64's baseline and the variant's extensions, or the defaults."""
    if machine.lower() not in X86_64:
        return FLAGS
    return (*FLAGS, "-march=x86-64", "-mtune=generic", *variant.flags)


def sources_digest(directory: Path = KERNELS) -> str | None:
    """A digest of the C sources and headers in ``directory`` and of every variant's flags; None when a
    source is missing. A library holds the digest of what it was built from."""
    digest = hashlib.sha256(repr([(v.name, FLAGS, v.flags) for v in VARIANTS]).encode())
    for name in (*SOURCES, *HEADERS):
        try:
            digest.update(b"\0" + name.encode() + b"\0" + (directory / name).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()[:16]


__all__ = [
    "FEATURES",
    "FLAGS",
    "GENERIC",
    "HEADERS",
    "KERNELS",
    "SOURCES",
    "VARIANTS",
    "Variant",
    "flags_for",
    "sources_digest",
    "variants_for",
]
