"""The paper's learning-rate schedule (section 5.3): linear warm-up, then 1 / sqrt(step).

The paper writes lr = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5); that is the same
curve as ``peak_lr · min(step / warmup, sqrt(warmup / step))`` with
peak_lr = (d_model · warmup)^-0.5. Stating the peak directly is easier to tune.
"""

from __future__ import annotations

import math


def inverse_sqrt_lr(step: int, peak_lr: float, warmup_steps: int) -> float:
    """Learning rate for optimiser step ``step`` (counted from 1)."""
    step = max(step, 1)
    if warmup_steps <= 0:
        return peak_lr / math.sqrt(step)
    return peak_lr * min(step / warmup_steps, math.sqrt(warmup_steps / step))
