"""oneDNN linear layers for training: the same values and gradients as ``F.linear``, and the switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import selfattention.engine.onednn_linear as onednn_linear
from conftest import with_train
from selfattention.engine import SWITCH
from selfattention.engine.onednn_linear import OneDNNLinear, OneDNNLinears, linear, onednn_available, takes_onednn
from selfattention.training import RunConfig, train
from selfattention.training.metrics import read_metrics

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this PyTorch has no oneDNN linear operator")


def input_of(shape: tuple[int, ...], layout: str) -> torch.Tensor:
    """A float64 input of ``shape``: contiguous, or a transposed (non-contiguous) view of the same shape."""
    if layout == "contiguous":
        return torch.randn(*shape, dtype=torch.float64)
    return torch.randn(*reversed(shape), dtype=torch.float64).permute(*reversed(range(len(shape))))


def value_and_grads(
    fn: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, grad: torch.Tensor
) -> list[torch.Tensor]:
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    b = None if b is None else b.detach().requires_grad_()
    y = fn(x, w, b)
    y.backward(grad)
    return [y, x.grad, w.grad] + ([] if b is None else [b.grad])  # type: ignore[list-item]


@needs_onednn
@pytest.mark.parametrize("shape", [(37, 24), (5, 9, 24)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("out_features", [16, 200])  # both ways of computing grad_W (O <= I and O > I)
def test_values_and_gradients_equal_f_linear_in_float32(
    shape: tuple[int, ...], bias: bool, layout: str, out_features: int
) -> None:
    """Both float32 results are compared with float64 truth; oneDNN's error is no worse than MKL's order."""
    torch.manual_seed(0)
    x = input_of(shape, layout)
    w = torch.randn(out_features, shape[-1], dtype=torch.float64)
    b = torch.randn(out_features, dtype=torch.float64) if bias else None
    grad = torch.randn(*shape[:-1], out_features, dtype=torch.float64)
    truth = value_and_grads(F.linear, x, w, b, grad)

    def as32(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.float()

    x32 = as32(x)
    assert x32 is not None and x32.is_contiguous() == (layout == "contiguous")
    ours = value_and_grads(OneDNNLinear.apply, x32, as32(w), as32(b), grad.float())  # type: ignore[arg-type]
    theirs = value_and_grads(F.linear, x32, as32(w), as32(b), grad.float())  # type: ignore[arg-type]
    for name, t, o, p in zip(["y", "grad_x", "grad_W", "grad_b"], truth, ours, theirs, strict=False):
        assert o.shape == t.shape and o.dtype == torch.float32, name
        t, o, p = t.detach(), o.detach(), p.detach()
        scale = float(t.abs().max())
        ours_error, theirs_error = float((o.double() - t).abs().max()), float((p.double() - t).abs().max())
        assert ours_error <= 1e-5 * scale, f"{name}: oneDNN error {ours_error:.2e} (scale {scale:.2e})"
        assert ours_error <= 10 * theirs_error + 1e-6 * scale, (
            f"{name}: oneDNN {ours_error:.2e}, MKL {theirs_error:.2e}"
        )


@needs_onednn
@pytest.mark.parametrize("needs", [(True, False), (False, True), (False, False)])
def test_only_the_gradients_asked_for_are_computed(needs: tuple[bool, bool]) -> None:
    x = torch.randn(6, 8, requires_grad=needs[0])
    w = torch.randn(4, 8, requires_grad=needs[1])
    b = torch.randn(4, requires_grad=True)
    linear(x, w, b).sum().backward()
    assert (x.grad is not None) == needs[0] and (w.grad is not None) == needs[1]
    assert b.grad is not None and torch.allclose(b.grad, torch.full((4,), 6.0))


@needs_onednn
def test_float32_cpu_takes_onednn_and_everything_else_falls_back() -> None:
    x, w, b = torch.randn(3, 8), torch.randn(4, 8), torch.randn(4)
    assert takes_onednn(x, w, b) and takes_onednn(x, w, None)
    assert not takes_onednn(x.double(), w.double(), b.double())
    assert not takes_onednn(x.bfloat16(), w.bfloat16(), None)
    assert not takes_onednn(x.double(), w, b)  # mixed dtypes: F.linear's own error, not ours
    assert not takes_onednn(torch.randn(0, 8), w, b)  # no rows
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not takes_onednn(x, w, b)
    with OneDNNLinears():
        assert type(torch.nn.Linear(8, 4)(x).grad_fn).__name__ == "OneDNNLinearBackward"
        double = torch.nn.Linear(8, 4).double()(x.double())
        assert double.dtype == torch.float64 and type(double.grad_fn).__name__ != "OneDNNLinearBackward"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.nn.Linear(8, 4)(x).dtype == torch.bfloat16


def test_gradcheck_in_float64_goes_through_the_fallback() -> None:
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert not takes_onednn(x, w, b)
    with OneDNNLinears():
        assert torch.autograd.gradcheck(linear, (x, w, b))
        assert torch.autograd.gradcheck(torch.nn.functional.linear, (x, w, None))


def losses_of(run_dir: Path) -> list[float]:
    """Training loss and NLL at each logged step, one flat list."""
    return [r[key] for r in read_metrics(run_dir) if r["kind"] == "train" for key in ("loss", "nll")]


@needs_onednn
def test_a_tiny_training_run_has_the_same_loss_curve_with_the_switches_on_and_off(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train.onednn_linear`` for one run; the engine's switch, ``SELFATTENTION_NATIVE=0``, for everything."""
    products = 0
    product = onednn_linear._product

    def counted(*args: Any) -> torch.Tensor:
        nonlocal products
        products += 1
        return product(*args)

    monkeypatch.setattr(onednn_linear, "_product", counted)
    curves = {}
    for name, setting, engine in (("on", True, "1"), ("setting off", False, "1"), ("engine off", True, "0")):
        monkeypatch.setenv(SWITCH, engine)
        config = with_train(tiny_run_config, max_steps=50, onednn_linear=setting)
        products = 0
        train(config, tmp_path / name.replace(" ", "-"), show_progress=False)
        assert (products > 0) == (name == "on"), f"{name}: {products} oneDNN products"
        curves[name] = losses_of(tmp_path / name.replace(" ", "-"))
    assert len(curves["on"]) == 4  # loss and NLL at two logged steps
    assert curves["on"] == pytest.approx(curves["setting off"], rel=1e-4)
    assert curves["engine off"] == curves["setting off"]


@needs_onednn
def test_a_non_contiguous_output_gradient_gives_the_same_gradients() -> None:
    """After attention's reshapes the incoming gradient is often a transposed view."""
    torch.manual_seed(1)
    x = torch.randn(6, 5, 24)
    w, b = torch.randn(16, 24), torch.randn(16)
    weights = torch.randn(16, 5, 6)  # multiplies the output seen as (O, 5, 6): its gradient arrives permuted
    results = []
    for fn in (OneDNNLinear.apply, F.linear):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        y = fn(xs, ws, bs)
        (y.permute(2, 1, 0) * weights).sum().backward()
        results.append([xs.grad, ws.grad, bs.grad])
    for ours, theirs in zip(*results, strict=True):
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
