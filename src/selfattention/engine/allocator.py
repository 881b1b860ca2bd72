"""Process-wide settings that make PyTorch faster on a CPU; they change no result.

glibc's allocator returns large blocks to the system as soon as they are freed (anything over
128 KiB is ``mmap``-ed), so a training or decoding loop that allocates the same activation-sized
tensors every step pays for fresh, zeroed pages each time. Raising the mmap and trim thresholds
keeps those blocks in the heap for reuse: on the 2-core benchmark machine the training step ran
about 1.2 times faster (BENCHMARKS.md). Preloading tcmalloc or jemalloc has the same effect.
The command line raises them as it starts, unless the engine is switched off
(``SELFATTENTION_NATIVE=0``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

from selfattention.engine import switched_off

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
_tuned = False


def tune_allocator() -> bool:
    """Keep freed large blocks for reuse (glibc on Linux only, the engine on); True when the setting took effect."""
    global _tuned
    if _tuned:
        return True
    if switched_off() or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    settings = ((_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, (1 << 31) - 1), (_M_TOP_PAD, 1 << 28))
    _tuned = all(mallopt(parameter, value) == 1 for parameter, value in settings)
    log.debug("allocator thresholds raised: %s", _tuned)
    return _tuned


__all__ = ["tune_allocator"]
