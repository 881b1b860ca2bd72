"""The k largest values of each row of a wide matrix, faster than ``torch.topk`` for small k.

Greedy search needs each row's best token out of the whole vocabulary at every step (the C step
gives it through :meth:`NativeStep.best_token <selfattention.engine.native_step.NativeStep.best_token>`;
beam search's best tokens are C's own pass). ``torch.topk`` and ``torch.argmax`` on a CPU scan
every row element by element, while a row maximum is a vectorised reduction, faster per element. So
:func:`top_k` first cuts each row into chunks of :data:`CHUNK` values and takes every chunk's
maximum; the k largest values of a row lie in the k chunks with the largest maxima (any other
chunk's values are all below k chunk maxima, that is below k values of the row), so
``torch.topk`` then scans those k chunks only.
(``benchmarks/decoding_levers.py`` measures it against ``torch.topk`` and ``torch.argmax``.)

The result is ``torch.topk``'s: the same values, largest first, and the same indices unless
values tie.
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK = 64  # values per chunk


def top_k(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``(values, indices)``, each ``(R, k)``: the k largest values of each row of ``x`` ``(R, V)``, largest first.

    The last ``V % CHUNK`` columns (a partial chunk) are always among the candidates.
    """
    rows, width = x.shape
    chunks = width // CHUNK
    if chunks <= k:  # no more whole chunks than values wanted: nothing to skip
        return x.topk(k, dim=-1)
    whole = chunks * CHUNK
    blocks = x[:, :whole].reshape(rows, chunks, CHUNK)  # (R, C, CHUNK)
    best_chunks = blocks.amax(dim=-1).topk(k, dim=-1).indices  # (R, k)
    picked = blocks.gather(1, best_chunks[..., None].expand(rows, k, CHUNK)).reshape(rows, k * CHUNK)
    candidates = torch.cat([picked, x[:, whole:]], dim=1) if whole < width else picked
    values, within = candidates.topk(k, dim=-1)  # (R, k)
    in_chunks = best_chunks.gather(1, (within // CHUNK).clamp(max=k - 1)) * CHUNK + within % CHUNK
    indices = torch.where(within < k * CHUNK, in_chunks, within - k * CHUNK + whole)
    return values, indices
