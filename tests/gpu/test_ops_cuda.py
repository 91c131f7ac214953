"""CUDA kernels of ganrt.ops: agreement with the CPU kernels and references, half precision, streams.

Every test is marked ``cuda`` and skipped centrally (tests/conftest.py) without a GPU, without ganrt's CUDA
kernels or with a CPU-only torch. Nothing here touches CUDA at import or collection time.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganrt.ops import (
    images_to_tensor,
    images_to_tensor_into,
    images_to_tensor_ref,
    instance_norm_act,
    instance_norm_act_ref,
    reparameterize,
    standard_normal,
    tensor_to_images,
    tensor_to_images_into,
    tensor_to_images_ref,
)
from tests.tolerances import (
    BACKWARD,
    CROSS_DEVICE_HALF_NORMALS,
    CROSS_DEVICE_NORMALS,
    CROSS_DEVICE_REPARAMETERIZE,
    FORWARD,
    HALF_ERROR_FACTOR,
    HALF_ERROR_FLOOR,
    IMAGE_FLOAT,
    IMAGE_HALF,
    ROUNDING_TIE_WINDOW,
    assert_close,
    max_abs_error,
)

pytestmark = pytest.mark.cuda

SHAPES = {
    "n2_c5_7x9": (2, 5, 7, 9),
    "n1_c3_1x1": (1, 3, 1, 1),
    "n1_c7_33x65": (1, 7, 33, 65),
    "n1_c64_256x256": (1, 64, 256, 256),
    # A plane too large for one block's shared memory: exercises the split (multi-block) path.
    "n1_c2_1024x1024": (1, 2, 1024, 1024),
}
ACTIVATIONS = {"none": 0.2, "relu": 0.0, "leaky_relu": 0.2}


def _inputs(shape, seed=0, mean=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + mean
    w = torch.randn(shape[1], generator=g, dtype=torch.float64)
    b = torch.randn(shape[1], generator=g, dtype=torch.float64)
    r = torch.randn(shape, generator=g, dtype=torch.float64)
    return x, w, b, r


def _stock(x, w, b, r, activation, slope):
    """Plain PyTorch in the dtype of x: what fp16/bf16 kernels are judged against."""
    y = F.instance_norm(x, weight=w, bias=b, eps=1e-5) + r
    if activation == "leaky_relu":
        return F.leaky_relu(y, slope)
    return F.relu(y) if activation == "relu" else y


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_float32_matches_reference(shape, channels_last, activation):
    slope = ACTIVATIONS[activation]
    x, w, b, r = _inputs(shape)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dev = [
        t.float().cuda().contiguous(memory_format=fmt) if t.dim() == 4 else t.float().cuda()
        for t in (x, w, b, r)
    ]
    for t in dev:
        t.requires_grad_()
    y = instance_norm_act(
        dev[0], dev[1], dev[2], residual=dev[3], activation=activation, negative_slope=slope
    )
    refs = [t.detach().clone().requires_grad_() for t in (x, w, b, r)]
    y_ref = instance_norm_act_ref(
        refs[0], refs[1], refs[2], residual=refs[3], activation=activation, negative_slope=slope
    )
    assert y.is_cuda and (not channels_last or y.is_contiguous(memory_format=torch.channels_last))
    assert_close(y, y_ref, FORWARD[torch.float32], "y")
    grad_y = torch.randn(shape, dtype=torch.float64)
    grads = torch.autograd.grad(y, dev, grad_y.float().cuda())
    grads_ref = torch.autograd.grad(y_ref, refs, grad_y)
    for name, g, g_ref in zip(("x", "weight", "bias", "residual"), grads, grads_ref):
        assert_close(g, g_ref, BACKWARD[torch.float32], f"grad {name}")


def test_split_path_in_waves_matches_reference():
    """Planes past one block's size are normalized in waves of at most 16 MB of x (so the second read of x
    comes from L2): 9 planes of 4 MB run as waves of 4, 4 and 1, and every plane must come out right, with
    its statistics and gradients."""
    x, w, b, r = _inputs((3, 3, 1024, 1024), seed=5, mean=2.0)
    dev = [t.float().cuda().requires_grad_() for t in (x, w, b, r)]
    y = instance_norm_act(dev[0], dev[1], dev[2], residual=dev[3])
    refs = [t.cuda().requires_grad_() for t in (x, w, b, r)]  # float64 reference on the GPU (fast)
    y_ref = instance_norm_act_ref(refs[0], refs[1], refs[2], residual=refs[3])
    assert_close(y, y_ref, FORWARD[torch.float32], "y, split path in waves")
    grad_y = torch.randn_like(y_ref)
    for name, g, g_ref in zip(
        ("x", "weight", "bias", "residual"),
        torch.autograd.grad(y, dev, grad_y.float()),
        torch.autograd.grad(y_ref, refs, grad_y),
        strict=True,
    ):
        assert_close(g, g_ref, BACKWARD[torch.float32], f"grad {name}")


def test_cpu_and_cuda_kernels_agree():
    x, w, b, r = (t.float() for t in _inputs((2, 16, 40, 24)))
    y_cpu = instance_norm_act(x, w, b, residual=r)
    y_gpu = instance_norm_act(x.cuda(), w.cuda(), b.cuda(), residual=r.cuda())
    assert_close(y_gpu, y_cpu, FORWARD[torch.float32], "CUDA vs CPU")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize(
    "shape", [(2, 8, 33, 65), (1, 64, 128, 128), (1, 4, 512, 512)], ids=["33x65", "128x128", "512x512"]
)
def test_half_error_at_most_twice_plain_torch(shape, dtype):
    x, w, b, r = _inputs(shape, mean=3.0)
    # The exact answer for the half-precision inputs (rounded once), computed in float64.
    xh, wh, bh, rh = (t.to(dtype).cuda() for t in (x, w, b, r))
    exact = instance_norm_act_ref(*(t.double() for t in (xh, wh, bh)), residual=rh.double())
    leaves = [t.clone().requires_grad_() for t in (xh, wh, bh, rh)]
    stock_leaves = [t.clone().requires_grad_() for t in (xh, wh, bh, rh)]
    exact_leaves = [t.double().requires_grad_() for t in (xh, wh, bh, rh)]
    y = instance_norm_act(leaves[0], leaves[1], leaves[2], residual=leaves[3])
    y_stock = _stock(*stock_leaves, "leaky_relu", 0.2)
    assert y.dtype == dtype
    err, err_stock = max_abs_error(y, exact), max_abs_error(y_stock, exact)
    assert err <= HALF_ERROR_FACTOR * err_stock + HALF_ERROR_FLOOR[dtype], (err, err_stock)

    grad_y = torch.randn(shape, dtype=torch.float64).to(dtype).cuda()
    grads = torch.autograd.grad(y, leaves, grad_y)
    grads_stock = torch.autograd.grad(y_stock, stock_leaves, grad_y)
    y_exact = instance_norm_act_ref(
        exact_leaves[0], exact_leaves[1], exact_leaves[2], residual=exact_leaves[3]
    )
    grads_exact = torch.autograd.grad(y_exact, exact_leaves, grad_y.double())
    for name, g, gs, ge in zip(("x", "weight", "bias", "residual"), grads, grads_stock, grads_exact):
        scale = max(1.0, ge.abs().max().item())
        err, err_stock = max_abs_error(g, ge) / scale, max_abs_error(gs, ge) / scale
        assert err <= HALF_ERROR_FACTOR * err_stock + HALF_ERROR_FLOOR[dtype], (name, err, err_stock)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_autocast_runs_the_op_in_the_autocast_dtype(dtype):
    # Eager path and registered op alike: fp32 activations and parameters are cast to the autocast dtype.
    x, w, b, r = (t.float().cuda() for t in _inputs((2, 8, 12, 10)))
    with torch.autocast("cuda", dtype=dtype):
        y = instance_norm_act(x, w, b, residual=r)
        y_op, mean, _ = torch.ops.ganrt.instance_norm_act(x, w, b, r, 1e-5, "leaky_relu", 0.2)
    expected = instance_norm_act(*(t.to(dtype) for t in (x, w, b)), residual=r.to(dtype))
    assert y.dtype == y_op.dtype == dtype and mean.dtype == torch.float32
    assert torch.equal(y, expected) and torch.equal(y_op, expected)


def test_channels_last_input_keeps_its_layout():
    # The CUDA kernels are NCHW: a channels_last input is copied in and the result copied back.
    x = torch.randn(1, 16, 9, 11, device="cuda").contiguous(memory_format=torch.channels_last)
    y = instance_norm_act(x, activation="relu")
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, instance_norm_act(x.contiguous(), activation="relu"), FORWARD[torch.float32], "y")


def test_kernels_are_queued_on_the_current_stream():
    """Captured into a CUDA graph on a side stream, every launch must go to that (the current) stream. A kernel
    sent to the legacy default stream instead either breaks the capture or runs once, eagerly, outside the
    graph: then the replays below, which start from cleared outputs and new inputs, do not recompute it."""
    g = torch.Generator().manual_seed(11)
    x, w, b, r = (t.float().cuda() for t in _inputs((1, 32, 96, 96)))
    mu, logvar = torch.randn(4, 300, generator=g).cuda(), torch.randn(4, 300, generator=g).cuda() * 0.5
    images = torch.randint(0, 256, (2, 31, 17, 3), generator=g, dtype=torch.uint8).cuda()
    inputs = (x, w, b, r, mu, logvar, images)

    names = ("instance_norm_act", "reparameterize", "standard_normal", "images_to_tensor", "tensor_to_images")

    def ops() -> tuple[torch.Tensor, ...]:
        return (
            instance_norm_act(x, w, b, residual=r),
            reparameterize(mu, logvar, seed=7, offset=3),
            standard_normal((3, 257), seed=5, offset=1, device="cuda"),
            images_to_tensor(images),
            tensor_to_images(x[:, :3]),
        )

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        ops()  # first calls outside the capture: lazy initialisation
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        outs = ops()
    for replay in (1, 2):
        for t in inputs:
            fresh = (
                torch.randint(0, 256, t.shape, generator=g, dtype=t.dtype)
                if t.dtype == torch.uint8
                else torch.randn(t.shape, generator=g)
            )
            t.copy_(fresh.to(t.device))
        for out in outs:
            out.fill_(0 if out.dtype == torch.uint8 else float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        for name, got, want in zip(names, outs, ops(), strict=True):
            assert torch.equal(got, want), f"{name}: replay {replay} did not recompute the output"


def test_philox_numbers_match_across_devices():
    for seed, offset in [(0, 0), (12345, 7), (2**64 - 1, 2**40 + 3)]:
        cpu = standard_normal((4, 1001), seed=seed, offset=offset)
        gpu = standard_normal((4, 1001), seed=seed, offset=offset, device="cuda")
        assert gpu.is_cuda
        assert_close(gpu, cpu, CROSS_DEVICE_NORMALS, f"seed {seed} offset {offset}")
    half = standard_normal(4096, seed=3, dtype=torch.float16, device="cuda")
    assert_close(half, standard_normal(4096, seed=3), CROSS_DEVICE_HALF_NORMALS, "float16")


def test_reparameterize_matches_across_devices():
    mu, logvar = torch.randn(8, 256), torch.randn(8, 256) * 0.5
    mu_g, lv_g = mu.cuda().requires_grad_(), logvar.cuda().requires_grad_()
    mu_c, lv_c = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
    z_g = reparameterize(mu_g, lv_g, seed=99, offset=12)
    z_c = reparameterize(mu_c, lv_c, seed=99, offset=12)
    assert_close(z_g, z_c, CROSS_DEVICE_REPARAMETERIZE, "z")
    grad = torch.randn(8, 256)
    g_g = torch.autograd.grad(z_g, (mu_g, lv_g), grad.cuda())
    g_c = torch.autograd.grad(z_c, (mu_c, lv_c), grad)
    assert_close(g_g[1], g_c[1], CROSS_DEVICE_REPARAMETERIZE, "grad logvar")


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["float32", "float16", "bfloat16"]
)
def test_image_conversions(dtype):
    images = torch.randint(0, 256, (2, 31, 17, 3), dtype=torch.uint8)
    x = images_to_tensor(images.cuda(), dtype=dtype)
    assert x.dtype == dtype and x.shape == (2, 3, 31, 17)
    tol = IMAGE_FLOAT if dtype == torch.float32 else IMAGE_HALF[dtype]
    assert_close(x, images_to_tensor_ref(images), tol, "images_to_tensor")
    assert torch.equal(tensor_to_images(x).cpu(), images)


@pytest.mark.parametrize(
    "dtype",
    [torch.float32, torch.float16, torch.bfloat16, torch.float64],
    ids=["float32", "float16", "bfloat16", "float64"],
)
def test_image_conversions_into_preallocated_buffers(dtype):
    images = torch.randint(
        0, 256, (2, 31, 17, 3), generator=torch.Generator().manual_seed(4), dtype=torch.uint8
    )
    out = torch.full((2, 3, 31, 17), float("nan"), dtype=dtype, device="cuda")  # float64: via float32 scratch
    assert images_to_tensor_into(images.cuda(), out) is out
    tol = IMAGE_HALF.get(dtype, IMAGE_FLOAT)
    assert_close(out, images_to_tensor_ref(images), tol, "images_to_tensor_into")
    x = (
        torch.rand((2, 3, 31, 17), generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2.4
        - 1.2
    )
    x = x.to(dtype)
    pixels = torch.zeros((2, 31, 17, 3), dtype=torch.uint8, device="cuda")
    assert tensor_to_images_into(x.cuda(), pixels) is pixels
    # float32 arithmetic on the device: equal to the float64 reference except within a tie's rounding window.
    ref = tensor_to_images_ref(x)
    diff = (pixels.cpu().int() - ref.int()).abs()
    frac = ((x.double() + 1.0) * 127.5).remainder(1.0).permute(0, 2, 3, 1)
    assert diff.max().item() <= 1 and (diff[(frac - 0.5).abs() >= ROUNDING_TIE_WINDOW] == 0).all()


def test_image_conversions_into_a_buffer_on_another_device():
    with pytest.raises(
        ValueError, match=r"images_to_tensor_into: out must be on the device of the input \(cpu\), got cuda:0"
    ):
        images_to_tensor_into(
            torch.zeros(1, 4, 5, 3, dtype=torch.uint8), torch.empty(1, 3, 4, 5, device="cuda")
        )
    with pytest.raises(
        ValueError, match=r"tensor_to_images_into: out must be on the device of the input \(cuda:0\), got cpu"
    ):
        tensor_to_images_into(
            torch.zeros(1, 3, 4, 5, device="cuda"), torch.empty(1, 4, 5, 3, dtype=torch.uint8)
        )


def test_opcheck_cuda():
    x, w, b, r = (t.float().cuda() for t in _inputs((2, 3, 5, 6)))
    torch.library.opcheck(
        torch.ops.ganrt.instance_norm_act.default, (x.requires_grad_(), w, b, r, 1e-5, "leaky_relu", 0.2)
    )
    torch.library.opcheck(torch.ops.ganrt.reparameterize.default, (x, r, 3, 0))


def test_device_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"weight must be on the device of x \(cuda:0\), got cpu"):
        instance_norm_act(torch.randn(1, 3, 4, 4, device="cuda"), torch.ones(3))
