"""``benchmarks/attention_cost.py``: its paths are the real ones and agree, its fits and its memory figures are right."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "attention_cost.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attention_cost", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


attention_cost = load_script()


def test_every_path_computes_the_same_attention():
    q, k, v, mask = attention_cost.inputs(600, heads=2)  # longer than one chunk of 512 rows
    plain = attention_cost.run("explicit", q, k, v, mask)
    for path in ("ours fused", "torch fused", "chunked"):
        assert torch.allclose(attention_cost.run(path, q, k, v, mask), plain, atol=1e-5), path
    masked = attention_cost.run("ours fused + mask", q, k, v, mask)
    assert torch.allclose(attention_cost.run("torch fused + mask", q, k, v, mask), masked, atol=1e-5)
    assert not torch.allclose(masked, plain, atol=1e-3)  # the mask does hide keys


def test_slope_recovers_the_power():
    sizes = [128, 256, 512, 1024]
    assert attention_cost.slope(sizes, [3e-9 * n**2 for n in sizes]) == pytest.approx(2.0)
    assert attention_cost.slope(sizes, [0.5 * n for n in sizes]) == pytest.approx(1.0)


def test_targets_say_pass_and_fail():
    sizes = [1024, 2048, 4096]
    cells = {n: {"seconds": 1e-9 * n**2, "peak_mib": n / 1024} for n in sizes}
    results = {path: dict(cells) for path in attention_cost.PATHS}
    results["ours fused"] = {n: {"seconds": 1e-9 * n**2, "peak_mib": 2 * n / 1024} for n in sizes}
    slopes = {path: (2.0, 1.0) for path in attention_cost.PATHS}
    lines = attention_cost.targets(results, sizes, slopes)
    assert "FAIL: ours fused peak memory at 4,096 tokens is 2.00 x torch fused's (target <= 1.2)" in lines
    assert any(line.startswith("PASS: ours fused + mask peak memory") for line in lines)
    assert any(line.startswith("FAIL: explicit memory quadratic: slope 1.00") for line in lines)


@pytest.mark.slow
def test_measured_peak_memory_is_that_of_the_matrices_built():
    n, heads = 1024, 4
    explicit = attention_cost.measure("explicit", n, heads, repeats=1, threads=1)
    chunked = attention_cost.measure("chunked", n, heads, repeats=1, threads=1)
    assert isinstance(explicit, dict) and isinstance(chunked, dict)
    matrix_mib = heads * n * n * 4 / 2**20  # one (H, T, S) float32 matrix: 16 MiB
    assert 3 * matrix_mib <= explicit["peak_mib"] < 4 * matrix_mib  # scores, scaled scores, weights
    assert chunked["peak_mib"] < 0.75 * explicit["peak_mib"]  # blocks of 512 rows: half of each matrix
    assert explicit["seconds"] > 0 and chunked["seconds"] > 0
