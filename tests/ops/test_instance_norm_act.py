"""ganrt.ops.instance_norm_act against its pure-PyTorch reference: forward, gradients, opcheck, errors."""

from __future__ import annotations

import pytest
import torch

from ganrt.ops import instance_norm_act, instance_norm_act_ref
from tests.tolerances import BACKWARD, FORWARD, GRADCHECK, LARGE_MEAN, assert_close

SHAPES = {
    "n1_c3_1x1": (1, 3, 1, 1),
    "n2_c5_7x9": (2, 5, 7, 9),
    "n1_c7_33x65": (1, 7, 33, 65),
    "n3_c1_2x3": (3, 1, 2, 3),
}
BIG_SHAPE = (1, 3, 256, 256)
LAYOUTS = ("contiguous", "channels_last", "strided")
VARIANTS = {
    "plain": (False, False),
    "affine": (True, False),
    "residual": (False, True),
    "affine_residual": (True, True),
}
ACTIVATIONS = {"none": ("none", 0.2), "relu": ("relu", 0.0), "leaky_relu": ("leaky_relu", 0.2)}


def _layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values as ``t`` in the requested memory layout."""
    if layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    # A strided view: every other column of a wider tensor, neither contiguous nor channels_last.
    n, c, h, w = t.shape
    wide = torch.zeros(n, c, h, 2 * w, dtype=t.dtype)
    wide[..., ::2] = t
    return wide[..., ::2]


def _inputs(shape, affine, residual, dtype=torch.float32, seed=0, mean=0.0):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + mean
    w = torch.randn(c, generator=g, dtype=torch.float64) if affine else None
    b = torch.randn(c, generator=g, dtype=torch.float64) if affine else None
    r = torch.randn(shape, generator=g, dtype=torch.float64) if residual else None
    return tuple(None if t is None else t.to(dtype) for t in (x, w, b, r))


def _check_against_ref(shape, layout, variant, act, dtype=torch.float32):
    affine, has_res = VARIANTS[variant]
    activation, slope = ACTIVATIONS[act]
    x, w, b, r = _inputs(shape, affine, has_res, dtype)
    x = _layout(x, layout)
    if r is not None:
        r = _layout(r, layout)
    leaves = [t.requires_grad_() for t in (x, w, b, r) if t is not None]
    kwargs = {"eps": 1e-5, "activation": activation, "negative_slope": slope}

    y = instance_norm_act(x, w, b, residual=r, **kwargs)
    refs = [t.detach().double().requires_grad_() for t in leaves]
    it = iter(refs)
    xr, wr, br, rr = (None if t is None else next(it) for t in (x, w, b, r))
    y_ref = instance_norm_act_ref(xr, wr, br, residual=rr, **kwargs)

    assert y.dtype == dtype and y.shape == x.shape
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, y_ref, FORWARD[dtype], "y")

    grad_y = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = torch.autograd.grad(y, leaves, grad_y.to(dtype))
    grads_ref = torch.autograd.grad(y_ref, refs, grad_y)
    for name, g, g_ref in zip(("x", "weight", "bias", "residual")[: len(grads)], grads, grads_ref):
        assert_close(g, g_ref, BACKWARD[dtype], f"grad of input {name}")


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_matches_reference_float32(shape, layout, variant, act):
    _check_against_ref(shape, layout, variant, act)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"], ids=str)
def test_matches_reference_256x256(layout):
    _check_against_ref(BIG_SHAPE, layout, "affine_residual", "leaky_relu")


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 2, 33, 65)], ids=["n2_c5_7x9", "n1_c2_33x65"])
def test_matches_reference_float64(shape, act):
    _check_against_ref(shape, "contiguous", "affine_residual", act, dtype=torch.float64)


def test_large_plane_mean_is_stable():
    # A plane mean 100x its standard deviation: naive E[x^2] - E[x]^2 in fp32 loses the variance entirely.
    x, w, b, _ = _inputs((2, 3, 64, 96), True, False, dtype=torch.float32, mean=150.0)
    y = instance_norm_act(x, w, b, activation="none")
    y_ref = instance_norm_act_ref(x.double(), w.double(), b.double(), activation="none")
    assert_close(y, y_ref, LARGE_MEAN, "y")


def test_constant_plane_gives_bias():
    # Zero variance: xhat is 0 (not NaN), so the output is act(bias).
    x = torch.full((1, 2, 5, 5), 3.25)
    b = torch.tensor([0.5, -0.5])
    y = instance_norm_act(x, torch.ones(2), b, activation="leaky_relu", negative_slope=0.1)
    expected = torch.tensor([0.5, -0.05]).view(1, 2, 1, 1).expand(1, 2, 5, 5)
    assert_close(y, expected, FORWARD[torch.float32], "y")


def test_empty_batch():
    x = torch.empty(0, 4, 3, 3)
    assert instance_norm_act(x).shape == (0, 4, 3, 3)


def test_thread_count_does_not_change_results():
    x, w, b, r = _inputs((2, 8, 17, 19), True, True)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = instance_norm_act(x, w, b, residual=r)
        torch.set_num_threads(2)
        y2 = instance_norm_act(x, w, b, residual=r)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(y1, y2)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_gradcheck_float64(act):
    activation, slope = ACTIVATIONS[act]
    x, w, b, r = _inputs((2, 3, 3, 4), True, True, dtype=torch.float64, seed=3)
    inputs = tuple(t.requires_grad_() for t in (x, w, b, r))

    def fn(x, w, b, r):
        return instance_norm_act(x, w, b, residual=r, activation=activation, negative_slope=slope)

    assert torch.autograd.gradcheck(fn, inputs, **GRADCHECK)


def test_gradgradcheck_float64():
    # Double backward (WGAN-GP gradient penalty) runs through the differentiable recomputation path.
    x, w, b, _ = _inputs((1, 2, 3, 3), True, False, dtype=torch.float64, seed=4)
    inputs = tuple(t.requires_grad_() for t in (x, w, b))

    def fn(x, w, b):
        return instance_norm_act(x, w, b, activation="leaky_relu", negative_slope=0.2)

    assert torch.autograd.gradgradcheck(fn, inputs, **GRADCHECK)


def test_grad_only_for_some_inputs():
    x, w, b, r = _inputs((1, 4, 5, 6), True, True)
    w.requires_grad_()
    y = instance_norm_act(x, w, b, residual=r)
    (gw,) = torch.autograd.grad(y.sum(), [w])
    wr = w.detach().double().requires_grad_()
    (gw_ref,) = torch.autograd.grad(
        instance_norm_act_ref(x.double(), wr, b.double(), residual=r.double()).sum(), [wr]
    )
    assert_close(gw, gw_ref, BACKWARD[torch.float32], "grad_weight")


OPCHECK_CASES = {
    "plain": ((2, 3, 4, 5), False, False, "contiguous"),
    "affine_residual": ((1, 3, 4, 5), True, True, "contiguous"),
    "channels_last": ((2, 4, 3, 3), True, False, "channels_last"),
}


@pytest.mark.parametrize("case", OPCHECK_CASES.values(), ids=OPCHECK_CASES.keys())
def test_opcheck(case):
    shape, affine, has_res, layout = case
    x, w, b, r = _inputs(shape, affine, has_res)
    x = _layout(x, layout).requires_grad_()
    torch.library.opcheck(torch.ops.ganrt.instance_norm_act.default, (x, w, b, r, 1e-5, "leaky_relu", 0.2))


def test_opcheck_backward():
    x, w, _, _ = _inputs((2, 3, 4, 5), True, False)
    y, mean, rstd = torch.ops.ganrt.instance_norm_act(x, w, None, None, 1e-5, "relu", 0.0)
    grad_y = torch.randn_like(y)
    args = (grad_y, x, y, w, mean, rstd, "relu", 0.0, True, True)
    torch.library.opcheck(torch.ops.ganrt.instance_norm_act_backward.default, args)


def _x(*shape, dtype=torch.float32, device="cpu"):
    return (
        torch.randn(*shape, dtype=dtype, device=device)
        if dtype.is_floating_point
        else torch.zeros(*shape, dtype=dtype, device=device)
    )


ERRORS = {
    "rank3": (lambda: instance_norm_act(_x(2, 3, 4)), ValueError, r"x must be 4-D \(N, C, H, W\), got 3-D"),
    "int_dtype": (
        lambda: instance_norm_act(_x(1, 2, 3, 3, dtype=torch.int32)),
        TypeError,
        r"x must be float32 or float64 on CPU, got int32",
    ),
    "half_on_cpu": (
        lambda: instance_norm_act(_x(1, 2, 3, 3, dtype=torch.float16)),
        TypeError,
        r"x must be float32 or float64 on CPU, got float16",
    ),
    "meta_device": (
        lambda: instance_norm_act(_x(1, 2, 3, 3, device="meta")),
        ValueError,
        r"x must be on a CPU or CUDA device, got meta",
    ),
    "weight_shape": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), _x(4)),
        ValueError,
        r"weight must have shape \(3,\) \(one value per channel of x\), got \(4,\)",
    ),
    "bias_dtype": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), None, _x(3, dtype=torch.float64)),
        TypeError,
        r"bias must have the dtype of x \(float32\), got float64",
    ),
    "weight_device": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), _x(3, device="meta")),
        ValueError,
        r"weight must be on the device of x \(cpu\), got meta",
    ),
    "residual_shape": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), residual=_x(1, 3, 2, 3)),
        ValueError,
        r"residual must have the shape of x \(1, 3, 2, 2\), got \(1, 3, 2, 3\)",
    ),
    "eps_nan": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), eps=float("nan")),
        ValueError,
        r"eps must be finite and > 0, got nan",
    ),
    "eps_zero": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), eps=0.0),
        ValueError,
        r"eps must be finite and > 0, got 0.0",
    ),
    "eps_str": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), eps="1e-5"),
        TypeError,
        r"eps must be a float, got str",
    ),
    "activation": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), activation="gelu"),
        ValueError,
        r"activation must be one of \['leaky_relu', 'none', 'relu'\], got 'gelu'",
    ),
    "negative_slope": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), negative_slope=-0.1),
        ValueError,
        r"negative_slope must be finite and >= 0, got -0.1",
    ),
    "empty_plane": (lambda: instance_norm_act(_x(1, 3, 0, 2)), ValueError, r"x must have H \* W > 0"),
    "raw_op_weight_shape": (
        lambda: torch.ops.ganrt.instance_norm_act(_x(1, 3, 2, 2), _x(2), None, None, 1e-5, "relu", 0.0),
        ValueError,
        r"weight must have shape \(3,\)",
    ),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_errors(case):
    fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn()


def test_registered_op_and_eager_fast_path_agree():
    # Eager calls skip the dispatcher; torch.compile / export use the registered op. Both must give the same.
    x, w, b, r = _inputs((2, 3, 6, 5), True, True)
    leaves_fast = [t.clone().requires_grad_() for t in (x, w, b, r)]
    leaves_op = [t.clone().requires_grad_() for t in (x, w, b, r)]
    y_fast = instance_norm_act(leaves_fast[0], leaves_fast[1], leaves_fast[2], residual=leaves_fast[3])
    y_op, mean, rstd = torch.ops.ganrt.instance_norm_act(*leaves_op, 1e-5, "leaky_relu", 0.2)
    assert not mean.requires_grad and not rstd.requires_grad
    assert torch.equal(y_fast, y_op)
    grad_y = torch.randn_like(y_op)
    for g_fast, g_op in zip(
        torch.autograd.grad(y_fast, leaves_fast, grad_y), torch.autograd.grad(y_op, leaves_op, grad_y)
    ):
        assert torch.equal(g_fast, g_op)
