"""The engine's C kernels (``kernels/``), built on first use with the machine's compiler and loaded with ctypes.

A source is compiled for this processor (``-march=native``) into ``$SELFATTENTION_CACHE``
(default ``~/.cache/selfattention``), under a name that hashes the sources (and the headers they
include by a quoted path), the flags, the compiler and the processor's features; later processes
load the built file. Without a compiler, or when the build fails, :func:`build` gives None; the
callers (which also check the engine's switch, ``SELFATTENTION_NATIVE=0``) then run PyTorch's
operators instead, as everywhere else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

CACHE = "SELFATTENTION_CACHE"
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-fPIC", "-shared", "-std=c99")  # contract: fused multiply-adds
KERNELS = Path(__file__).with_name("kernels")  # the C sources and their header


def cache_dir() -> Path:
    """Where built kernels are kept: ``$SELFATTENTION_CACHE``, else ``$XDG_CACHE_HOME/selfattention``."""
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


def _texts(source: Path) -> list[bytes]:
    """The source's bytes and those of the headers it includes by a quoted path (theirs too), for the key."""
    text = source.read_bytes()
    texts = [text]
    for line in text.decode(errors="replace").splitlines():
        match = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if match:
            texts += _texts((source.parent / match.group(1)).resolve())
    return texts


def build(
    name: str, sources: Sequence[Path], fallback: str, directory: Path | None = None, extra: Sequence[str] = ()
) -> Path | None:
    """Compile ``sources`` into one shared library ``name-<hash>.so`` in ``directory`` unless built already.

    ``extra`` flags follow :data:`FLAGS` (tests build without a processor feature so).

    Returns the library's path, or None when no compiler is found or the build fails; the log then
    says why and ``fallback`` (what runs instead).
    """
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler found; %s", fallback)
        return None
    texts = [text for source in sources for text in _texts(source)]
    key = hashlib.sha256(
        b"\0".join([*texts, " ".join([*FLAGS, *extra]).encode(), compiler.encode(), _processor().encode()])
    )
    directory = directory or cache_dir()
    target = directory / f"{name}-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            built = Path(scratch) / target.name
            command = [compiler, *FLAGS, *extra, "-o", str(built), *map(str, sources), "-lm"]
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                log.warning("building %s failed; %s:\n%s", name, fallback, result.stderr)
                return None
            os.replace(built, target)  # atomic: a process building beside this one finds a whole file
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("could not build %s in %s (%s); %s", name, directory, error, fallback)
        return None
    return target


__all__ = ["CACHE", "FLAGS", "KERNELS", "build", "cache_dir"]
