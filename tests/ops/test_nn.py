"""ganrt.nn.InstanceNormAct2d: fused and stock paths agree, state dicts carry over, torch.compile works."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganrt.nn import InstanceNormAct2d
from ganrt.ops import reparameterize
from tests.tolerances import BACKWARD, FORWARD, assert_close


@pytest.mark.parametrize(
    "activation,affine,residual",
    [("leaky_relu", True, False), ("relu", False, False), ("none", True, True), ("relu", False, True)],
    ids=["leaky_affine", "relu", "none_affine_residual", "relu_residual"],
)
def test_fused_matches_stock(activation, affine, residual):
    torch.manual_seed(0)
    fused = InstanceNormAct2d(6, affine=affine, activation=activation, negative_slope=0.1, fused=True)
    stock = InstanceNormAct2d(6, affine=affine, activation=activation, negative_slope=0.1, fused=False)
    if affine:
        with torch.no_grad():
            fused.weight.normal_()
            fused.bias.normal_()
    stock.load_state_dict(fused.state_dict())
    x = torch.randn(2, 6, 9, 11)
    r = torch.randn(2, 6, 9, 11) if residual else None
    xs = [x.clone().requires_grad_() for _ in range(2)]
    ys = [m(xi, r) for m, xi in zip((fused, stock), xs)]
    assert_close(ys[0], ys[1], FORWARD[torch.float32], "y")
    for y in ys:
        y.square().sum().backward()
    assert_close(xs[0].grad, xs[1].grad, BACKWARD[torch.float32], "grad x")
    if affine:
        assert_close(fused.weight.grad, stock.weight.grad, BACKWARD[torch.float32], "grad weight")
        assert_close(fused.bias.grad, stock.bias.grad, BACKWARD[torch.float32], "grad bias")


def test_state_dict_matches_torch_instance_norm():
    ours = InstanceNormAct2d(5, affine=True)
    theirs = nn.InstanceNorm2d(5, affine=True)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 5, 8, 8)
    assert_close(ours(x), nn.functional.leaky_relu(theirs(x), 0.2), FORWARD[torch.float32], "y")
    assert InstanceNormAct2d(5).state_dict() == {}


def test_repr():
    assert repr(InstanceNormAct2d(8, activation="relu", fused=False)) == (
        "InstanceNormAct2d(8, eps=1e-05, affine=False, activation=relu, fused=False)"
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_features": 0}, r"num_features must be a positive int, got 0"),
        ({"num_features": 4, "activation": "tanh"}, r"activation must be one of"),
        ({"num_features": 4, "eps": -1.0}, r"eps must be finite and > 0, got -1.0"),
        ({"num_features": 4, "negative_slope": -0.2}, r"negative_slope must be finite and >= 0"),
    ],
    ids=["zero_features", "activation", "eps", "slope"],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InstanceNormAct2d(**kwargs)


def test_forward_errors():
    m = InstanceNormAct2d(4)
    with pytest.raises(ValueError, match=r"x must have 4 channels \(dim 1\), got 3"):
        m(torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\), got 2-D"):
        m(torch.randn(4, 4))


class _Tiny(nn.Module):
    """Conv -> fused norm (affine, leaky) -> fused norm (residual, no activation) -> reparameterize."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm1 = InstanceNormAct2d(4, affine=True)
        self.norm2 = InstanceNormAct2d(4, activation="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(self.conv(x))
        h = self.norm2(h, residual=h)
        return reparameterize(h, h * 0.1, seed=7, offset=3)


@pytest.mark.filterwarnings(
    # Inductor's CPU backend touches torch.jit.script_method internally, which warns about its deprecation.
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
)
def test_torch_compile_fullgraph():
    torch.manual_seed(0)
    model = _Tiny()
    x = torch.randn(2, 3, 8, 8)
    compiled = torch.compile(model, fullgraph=True)
    y_eager = model(x)
    y_compiled = compiled(x)
    assert_close(y_compiled, y_eager, FORWARD[torch.float32], "compiled forward")
    grads_eager = torch.autograd.grad(y_eager.square().sum(), list(model.parameters()))
    grads_compiled = torch.autograd.grad(y_compiled.square().sum(), list(model.parameters()))
    for ge, gc in zip(grads_eager, grads_compiled):
        assert_close(gc, ge, BACKWARD[torch.float32], "compiled backward")


def test_parameters_follow_the_input_dtype():
    # float64 activations with float32 parameters (as under mixed precision): cast, not an error.
    m = InstanceNormAct2d(3, affine=True)
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    y = m(x, torch.zeros(1, 3, 4, 4))
    assert y.dtype == torch.float64
    y.sum().backward()
    assert m.weight.grad is not None and m.weight.grad.dtype == torch.float32
