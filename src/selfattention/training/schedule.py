"""The paper's learning-rate schedule (section 5.3): linear warm-up, then 1 / sqrt(step).

The paper writes lr = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5); that is the same
curve as ``peak_lr · min(step / warmup, sqrt(warmup / step))`` with
peak_lr = (d_model · warmup)^-0.5. Stating the peak directly is easier to tune.

An optional cool-down ends a run of known length: over its last ``cooldown_steps`` steps the rate
falls linearly from where the curve stood to near zero (the "warm-up, stable, decay" shape), which
settles the weights the way checkpoint averaging does, but within one model.
"""

from __future__ import annotations

import math


def inverse_sqrt_lr(step: int, peak_lr: float, warmup_steps: int) -> float:
    """Learning rate for optimiser step ``step`` (counted from 1)."""
    step = max(step, 1)
    if warmup_steps <= 0:
        return peak_lr / math.sqrt(step)
    return peak_lr * min(step / warmup_steps, math.sqrt(warmup_steps / step))


def scheduled_lr(step: int, peak_lr: float, warmup_steps: int, max_steps: int = 0, cooldown_steps: int = 0) -> float:
    """The inverse-square-root rate, falling linearly over the last ``cooldown_steps`` of ``max_steps``."""
    if not cooldown_steps or not max_steps:
        return inverse_sqrt_lr(step, peak_lr, warmup_steps)
    start = max_steps - cooldown_steps  # the last step at the full curve
    if step <= start:
        return inverse_sqrt_lr(step, peak_lr, warmup_steps)
    remaining = max(max_steps - step + 1, 1)  # cooldown_steps at the first decayed step, 1 at the last
    return inverse_sqrt_lr(start, peak_lr, warmup_steps) * remaining / (cooldown_steps + 1)
