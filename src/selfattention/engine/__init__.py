"""The CPU engine: the fast ways to run the model, beside the reference path and never inside it.

``attention/``, ``layers.py`` and ``model.py`` are the definition and import nothing from here.
The engine is chosen at two seams: where a :class:`~selfattention.decoding.Translator` picks its
decoding step (:mod:`~selfattention.engine.native_step`, its weights packed by
:mod:`~selfattention.engine.packed`), and where the trainer picks its linear layers
(:mod:`~selfattention.engine.onednn_linear`). Parity tests hold each piece to the reference.

- ``kernels/``: the C sources (``products.c``, the matrix products and LayerNorm, float32 and
  int8; ``native_step.c``, the decoding step; ``encoder.c``, the encoder; ``few_queries.c``, their
  attention; ``abi.c``, what a loader asks first; ``engine.h``, the structs and prototypes they
  share; ``lanes.h``, their vectors), and the libraries ``pip install`` builds from them;
- ``variants.py``: the builds, one per instruction set (AVX-512 with VNNI, AVX-512, AVX2, generic),
  which ``setup.py`` compiles; ``library.py``: loading the best one this processor runs, checked
  (ABI version, struct sizes, instruction sets, sources) against its ctypes mirrors;
- ``native_step.py``: the decoding step in C, float32 and int8; ``c_model.py``: the whole model
  packed for the kernels from numpy arrays, its encoder computed in C (no PyTorch); ``decoder_settings.py``: whether
  it takes a model (every layer checked); ``few_queries.py``: its attention kernel, called from
  Python (tests and benchmarks);
- ``top_k.py``: each row's k largest values through the chunks' maxima (greedy's next token);
- ``packed.py``: Linear weights laid out once for oneDNN at load; ``quantize.py``: int8, every
  Linear an ``Int8Linear`` whose product is the C kernel's int8 product (or the same integers in
  PyTorch without the library);
- ``onednn_linear.py``: training's linear layers on oneDNN;
- ``workers.py``: batches decoded in forked one-thread processes, and how many by default;
- ``allocator.py``: glibc's allocator thresholds raised for the whole process.

One switch turns the engine off: ``SELFATTENTION_NATIVE=0`` (or false, no, off) in the
environment. Then no kernel is loaded, no weight is packed, training's linear layers are
PyTorch's and the allocator is left alone: everything runs through the reference modules. What a
caller asks for by name still happens: ``precision="int8"`` quantises (its products computed in
PyTorch) and ``--workers N`` forks (without it, one process).
"""

from __future__ import annotations

import os

SWITCH = "SELFATTENTION_NATIVE"
PRECISIONS = ("float32", "int8")  # float32 as trained, or int8 Linear layers (engine/quantize.py, c_model.py)


def switched_off() -> bool:
    """Whether ``SELFATTENTION_NATIVE=0`` (or false, no, off) turns the engine off (read at each call)."""
    return os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off")


__all__ = ["PRECISIONS", "SWITCH", "switched_off"]
