"""ganrt.ops.instance_norm_act against its pure-PyTorch reference: forward, gradients, opcheck, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganrt.ops import instance_norm_act, instance_norm_act_ref
from tests.tolerances import (
    BACKWARD,
    FORWARD,
    GRADCHECK,
    HALF_ERROR_FACTOR,
    HALF_ERROR_FLOOR,
    LARGE_MEAN,
    assert_close,
    max_abs_error,
)

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
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"], ids=str)
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 2, 33, 65)], ids=["n2_c5_7x9", "n1_c2_33x65"])
def test_matches_reference_float64(shape, layout, act):
    _check_against_ref(shape, layout, "affine_residual", act, dtype=torch.float64)


# bf16 shapes: odd channel counts (scalar channel tails of the NHWC kernel), several NHWC blocks
# (16384 elements each: 64 channels at 64x64 make 16), planes of several NCHW chunks (33x65 > 4096).
BF16_SHAPES = {
    "n2_c5_7x9": (2, 5, 7, 9),
    "n1_c7_33x65": (1, 7, 33, 65),
    "n1_c19_17x13": (1, 19, 17, 13),
    "n1_c64_64x64": (1, 64, 64, 64),
    "n2_c256_8x8": (2, 256, 8, 8),
}


def _bf16_normal(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16)


def _stock(x, w, b, r, activation, slope):
    """Plain PyTorch in the dtype of x: what a bf16 kernel is judged against."""
    y = F.instance_norm(x, weight=w, bias=b, eps=1e-5) + r
    if activation == "leaky_relu":
        return F.leaky_relu(y, slope)
    return F.relu(y) if activation == "relu" else y


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"], ids=str)
@pytest.mark.parametrize("shape", BF16_SHAPES.values(), ids=BF16_SHAPES.keys())
def test_bfloat16_error_at_most_twice_plain_torch(shape, layout, act):
    activation, slope = ACTIVATIONS[act]
    x, w, b, r = _inputs(shape, True, True, dtype=torch.float64, mean=3.0)
    # The exact answer for the bf16-rounded inputs, in float64; plain PyTorch runs on the same bf16 inputs.
    xh, wh, bh, rh = (t.to(torch.bfloat16) for t in (x, w, b, r))
    xh, rh = _layout(xh, layout), _layout(rh, layout)
    leaves = [t.clone().requires_grad_() for t in (xh, wh, bh, rh)]
    stock_leaves = [t.clone().requires_grad_() for t in (xh, wh, bh, rh)]
    exact_leaves = [t.double().requires_grad_() for t in (xh, wh, bh, rh)]
    kwargs = {"activation": activation, "negative_slope": slope}
    y = instance_norm_act(leaves[0], leaves[1], leaves[2], residual=leaves[3], **kwargs)
    y_stock = _stock(*stock_leaves, activation, slope)
    y_exact = instance_norm_act_ref(
        exact_leaves[0], exact_leaves[1], exact_leaves[2], residual=exact_leaves[3], **kwargs
    )
    assert y.dtype == torch.bfloat16
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    err, err_stock = max_abs_error(y, y_exact), max_abs_error(y_stock, y_exact)
    assert err <= HALF_ERROR_FACTOR * err_stock + HALF_ERROR_FLOOR[torch.bfloat16], (err, err_stock)

    grad_y = _layout(_bf16_normal(shape, seed=1), layout)
    grads = torch.autograd.grad(y, leaves, grad_y)
    grads_stock = torch.autograd.grad(y_stock, stock_leaves, grad_y)
    grads_exact = torch.autograd.grad(y_exact, exact_leaves, grad_y.double())
    for name, g, gs, ge in zip(("x", "weight", "bias", "residual"), grads, grads_stock, grads_exact):
        assert g.dtype == torch.bfloat16
        scale = max(1.0, ge.abs().max().item())
        err, err_stock = max_abs_error(g, ge) / scale, max_abs_error(gs, ge) / scale
        assert err <= HALF_ERROR_FACTOR * err_stock + HALF_ERROR_FLOOR[torch.bfloat16], (name, err, err_stock)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"], ids=str)
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), *BF16_SHAPES.values()], ids=["n1_c3_1x1", *BF16_SHAPES])
def test_bfloat16_is_float32_math_rounded_once(shape, layout):
    # bf16 is storage only: the kernel computes exactly what the float32 kernel computes on the widened inputs
    # (statistics included) and rounds each output once, to nearest even like Tensor.to(torch.bfloat16).
    x, w, b, r = (None if t is None else t.to(torch.bfloat16) for t in _inputs(shape, True, True, mean=0.5))
    x, r = _layout(x, layout), _layout(r, layout)
    wide = [t.float() for t in (x, w, b, r)]
    y, mean, rstd = torch.ops.ganrt.instance_norm_act(x, w, b, r, 1e-5, "leaky_relu", 0.2)
    y32, mean32, rstd32 = torch.ops.ganrt.instance_norm_act(*wide, 1e-5, "leaky_relu", 0.2)
    assert y.dtype == torch.bfloat16 and mean.dtype == rstd.dtype == torch.float32
    assert torch.equal(y, y32.to(torch.bfloat16)) and torch.equal(mean, mean32) and torch.equal(rstd, rstd32)

    grad_y = _layout(_bf16_normal(shape, seed=2), layout)
    backward = torch.ops.ganrt.instance_norm_act_backward
    out = backward(grad_y, x, y, w, mean, rstd, "leaky_relu", 0.2, True, True)
    out32 = backward(grad_y.float(), wide[0], y.float(), wide[1], mean, rstd, "leaky_relu", 0.2, True, True)
    for name, g, g32 in zip(("grad_x", "grad_residual"), out[:2], out32[:2]):
        assert g.dtype == torch.bfloat16 and torch.equal(g, g32.to(torch.bfloat16)), name
    for name, g, g32 in zip(("sum_dy", "sum_dy_xhat"), out[2:], out32[2:]):
        assert g.dtype == torch.float32 and torch.equal(g, g32), name


def test_bfloat16_rounds_like_torch_and_keeps_nan_and_inf():
    # One element per plane: y = act(0 * rstd + bias + residual) = residual + bias, so the residual passes
    # through the float math and the bf16 rounding unchanged (ties, NaN, infinities, subnormals).
    inf = float("inf")
    values = torch.tensor([1.0, 1.00390625, 1.01171875, -2.5, float("nan"), inf, -inf, 1e-40])
    residual = values.view(1, -1, 1, 1)
    x = torch.zeros_like(residual, dtype=torch.bfloat16)
    y = instance_norm_act(x, residual=residual.to(torch.bfloat16), activation="none")
    expected = residual.to(torch.bfloat16)
    assert torch.equal(y.isnan(), expected.isnan())
    assert torch.equal(y[~y.isnan()], expected[~expected.isnan()])


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


# Shapes big enough that the CPU kernels really split across threads (csrc/common/parallel.h: a piece is at
# least 65536 elements, about four pieces per thread), each taking a different route with 1 and 2 threads:
# - one 300x300 plane: with 1 thread it is reduced whole, with 2 its 22 chunks of 4096 are spread over the
#   threads (grain 16 -> 2 pieces) and merged afterwards, so the two runs share no schedule;
# - 8 planes of 128x128: one plane per item, grain 4 -> 2 pieces on 2 threads;
# - channels_last 64@64x64: 16 blocks of 16384 elements, grain 4 -> 4 pieces.
THREAD_CASES = {
    "one_large_plane": ((1, 1, 300, 300), "contiguous", torch.float32),
    "many_planes": ((1, 8, 128, 128), "contiguous", torch.float32),
    "channels_last": ((1, 64, 64, 64), "channels_last", torch.float32),
    "one_large_plane_bf16": ((1, 1, 300, 300), "contiguous", torch.bfloat16),
    "channels_last_bf16": ((1, 64, 64, 64), "channels_last", torch.bfloat16),
}


@pytest.mark.parametrize("case", THREAD_CASES.values(), ids=THREAD_CASES.keys())
def test_thread_count_does_not_change_results(case):
    shape, layout, dtype = case
    x, w, b, r = _inputs(shape, True, True, dtype=dtype, mean=4.0)
    x, r = _layout(x, layout), _layout(r, layout)
    grad_y = _layout(torch.randn(shape, generator=torch.Generator().manual_seed(5)).to(dtype), layout)

    def run(threads: int) -> list[torch.Tensor]:
        torch.set_num_threads(threads)
        leaves = [t.clone().requires_grad_() for t in (x, w, b, r)]
        y = instance_norm_act(leaves[0], leaves[1], leaves[2], residual=leaves[3])
        return [y, *torch.autograd.grad(y, leaves, grad_y)]

    old = torch.get_num_threads()
    try:
        one, two = run(1), run(2)
    finally:
        torch.set_num_threads(old)
    for name, a, b_ in zip(("y", "grad x", "grad weight", "grad bias", "grad residual"), one, two):
        assert torch.equal(a, b_), f"{name} differs between 1 and 2 threads"


def test_channels_last_runs_without_layout_copies():
    # The NHWC kernels read and write channels_last tensors as they are: no transposing copy in either pass.
    x, w, b, r = _inputs((1, 32, 24, 24), True, True, dtype=torch.bfloat16)
    x, r = _layout(x, "channels_last").requires_grad_(), _layout(r, "channels_last").requires_grad_()
    w.requires_grad_()
    grad_y = _layout(torch.randn(1, 32, 24, 24).to(torch.bfloat16), "channels_last")
    with torch.profiler.profile(record_shapes=True) as prof:
        y = instance_norm_act(x, w, b, residual=r)
        gx, gw, gr = torch.autograd.grad(y, (x, w, r), grad_y)
    ops = {e.name for e in prof.events()}
    assert "ganrt::instance_norm_act" in ops and "ganrt::instance_norm_act_backward" in ops
    # (The (C,) fp32 sums becoming the bf16 weight gradient is the only copy.)
    copies = [(e.name, e.input_shapes) for e in prof.events()
              if e.name in ("aten::copy_", "aten::clone", "aten::_to_copy", "aten::contiguous")
              and any(len(shape) == 4 for shape in e.input_shapes)]
    assert not copies, copies
    for t in (y, gx, gr):
        assert t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def test_autocast_runs_the_op_in_bfloat16_on_cpu():
    # Under autocast the op takes the autocast dtype (like a convolution would) instead of failing on a bf16
    # activation next to fp32 parameters, or being cast up. The eager path and the registered op agree.
    x, w, b, r = _inputs((2, 6, 9, 7), True, True)
    leaves = [t.clone().requires_grad_() for t in (x, w, b, r)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = instance_norm_act(leaves[0], leaves[1], leaves[2], residual=leaves[3])
        y_op, mean, _ = torch.ops.ganrt.instance_norm_act(x, w, b, r, 1e-5, "leaky_relu", 0.2)
        mixed = instance_norm_act(x.to(torch.bfloat16), w, b)  # bf16 activation, fp32 parameters
    expected = instance_norm_act(*(t.to(torch.bfloat16) for t in (x, w, b)), residual=r.to(torch.bfloat16))
    assert y.dtype == y_op.dtype == mixed.dtype == torch.bfloat16 and mean.dtype == torch.float32
    assert torch.equal(y, expected) and torch.equal(y_op, expected)
    # Master parameters stay fp32: the gradients arrive through autocast's casts in their dtype.
    grads = torch.autograd.grad(y.float().square().sum(), leaves)
    assert [g.dtype for g in grads] == [torch.float32] * 4
    with torch.autocast("cpu", dtype=torch.float16):
        # No fp16 kernel on CPU: the op then runs in float32 rather than failing.
        assert instance_norm_act(x, w, b).dtype == torch.float32


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
    "plain": ((2, 3, 4, 5), False, False, "contiguous", torch.float32),
    "affine_residual": ((1, 3, 4, 5), True, True, "contiguous", torch.float32),
    "channels_last": ((2, 4, 3, 3), True, False, "channels_last", torch.float32),
    "bf16_channels_last": ((2, 4, 3, 3), True, True, "channels_last", torch.bfloat16),
}


@pytest.mark.parametrize("case", OPCHECK_CASES.values(), ids=OPCHECK_CASES.keys())
def test_opcheck(case):
    shape, affine, has_res, layout, dtype = case
    x, w, b, r = _inputs(shape, affine, has_res, dtype=dtype)
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
        r"x must be float32, float64 or bfloat16 on CPU, got int32",
    ),
    "half_on_cpu": (
        lambda: instance_norm_act(_x(1, 2, 3, 3, dtype=torch.float16)),
        TypeError,
        r"x must be float32, float64 or bfloat16 on CPU, got float16",
    ),
    "bf16_weight_with_float_x": (
        lambda: instance_norm_act(_x(1, 3, 2, 2), _x(3, dtype=torch.bfloat16)),
        TypeError,
        r"weight must have the dtype of x \(float32\), got bfloat16",
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
