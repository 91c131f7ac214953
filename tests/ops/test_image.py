"""ganrt.ops.images_to_tensor / tensor_to_images and their ``_into`` variants against their references, round
trips and errors."""

from __future__ import annotations

import pytest
import torch

from ganrt.ops import (
    images_to_tensor,
    images_to_tensor_into,
    images_to_tensor_ref,
    tensor_to_images,
    tensor_to_images_into,
    tensor_to_images_ref,
)
from tests.tolerances import IMAGE_FLOAT, IMAGE_HALF, ROUNDING_TIE_WINDOW, assert_close

SHAPES = {"n1_1x1_c1": (1, 1, 1, 1), "n2_7x9_c3": (2, 7, 9, 3), "n1_33x65_c4": (1, 33, 65, 4)}
# Float dtypes a CPU ``out`` / ``x`` may have; all but float32 go through float32 (see ganrt/ops/image.py).
CPU_FLOATS = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def _images(shape, seed=0):
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _network_output(shape_nhwc, seed=1, dtype=torch.float32):
    """(N, C, H, W) values in [-1.2, 1.2]: beyond [-1, 1] included, they must saturate."""
    n, h, w, c = shape_nhwc
    x = torch.rand((n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x * 2.4 - 1.2).to(dtype)


def _assert_matches_rounding_reference(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``out`` equals ``tensor_to_images_ref(x)`` (float64 arithmetic) exactly, except where the exact
    ``(x + 1) * 127.5`` lies within ROUNDING_TIE_WINDOW of a .5 tie: the kernel computes in float32, whose
    rounding error (a few 1e-5 levels) may land such a value on the other side of the tie, and there the two
    may differ by one level. Returns the near-tie mask (N, H, W, C)."""
    ref = tensor_to_images_ref(x)
    assert out.dtype == torch.uint8 and out.shape == ref.shape and out.is_contiguous()
    diff = (out.int() - ref.int()).abs()
    frac = ((x.double() + 1.0) * 127.5).remainder(1.0).permute(0, 2, 3, 1)
    near_tie = (frac - 0.5).abs() < ROUNDING_TIE_WINDOW
    assert diff.max().item() <= 1, f"off by {diff.max().item()} levels"
    far = diff[~near_tie]
    assert (far == 0).all(), f"{int((far != 0).sum())} pixels away from a tie differ from the reference"
    return near_tie


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_images_to_tensor_matches_reference(shape):
    images = _images(shape)
    x = images_to_tensor(images)
    assert x.shape == (shape[0], shape[3], shape[1], shape[2]) and x.dtype == torch.float32
    assert x.is_contiguous()
    assert_close(x, images_to_tensor_ref(images), IMAGE_FLOAT, "tensor")
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_images_to_tensor_non_contiguous_input():
    # A channel-first uint8 buffer viewed as NHWC: strided, not contiguous.
    images = _images((2, 3, 10, 12)).permute(0, 2, 3, 1)
    assert not images.is_contiguous()
    assert_close(images_to_tensor(images), images_to_tensor_ref(images), IMAGE_FLOAT, "tensor")


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_tensor_to_images_matches_reference(shape):
    x = _network_output(shape)
    out = tensor_to_images(x)
    assert out.shape == shape
    _assert_matches_rounding_reference(out, x)


def test_round_trip_is_identity_for_every_level():
    levels = torch.arange(256, dtype=torch.uint8).view(1, 16, 16, 1).expand(2, 16, 16, 3).contiguous()
    assert torch.equal(tensor_to_images(images_to_tensor(levels)), levels)


def test_rounds_to_nearest_and_saturates_where_upstream_truncates_and_wraps():
    # Hand-computed (x + 1) * 127.5 of float32-exact inputs; the upstream ((x + 1) / 2 * 255).astype(uint8)
    # would give the value in the comment: truncation (a level low) and, outside [-1, 1], wrap-around.
    cases = [
        (-0.75, 32),  # 31.875: upstream 31
        (-0.5, 64),  # 63.75: upstream 63
        (0.0, 128),  # 127.5, a tie, to even: upstream 127
        (0.5, 191),  # 191.25: upstream 191
        (0.75, 223),  # 223.125: upstream 223
        (0.999, 255),  # 254.8725: upstream 254
        (-0.999, 0),  # 0.1275: upstream 0
        (-1.0, 0),
        (1.0, 255),
        (-1.01, 0),  # -1.275: upstream wraps to 255
        (1.01, 255),  # 256.275: upstream wraps to 0
        (-1.5, 0),
        (1.5, 255),
        (float("-inf"), 0),
        (float("inf"), 255),
    ]
    x = torch.tensor([v for v, _ in cases], dtype=torch.float32).view(1, 1, 1, -1)
    assert tensor_to_images(x).flatten().tolist() == [level for _, level in cases]


def test_never_more_than_half_a_level_off():
    # Round to nearest: within half a level of the exact (x + 1) * 127.5 (truncation is up to a level off).
    x = torch.rand((1, 3, 64, 64), generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 1
    error = tensor_to_images(x.float()).double().permute(0, 3, 1, 2) - (x.float().double() + 1) * 127.5
    assert error.abs().max().item() <= 0.5 + ROUNDING_TIE_WINDOW


def test_float64_input_matches_the_float64_reference():
    # Values placed around every tie k + 0.5: exactly on it, within float32's reach of it (1e-9 of a level),
    # and just outside the tie window, where the nearest level is known without any reference.
    levels = torch.arange(255, dtype=torch.float64)
    offsets = torch.tensor([-2.0, -1e-6, 0.0, 1e-6, 2.0], dtype=torch.float64) * ROUNDING_TIE_WINDOW
    scaled = levels[:, None] + 0.5 + offsets[None, :]  # (255, 5)
    x = (scaled / 127.5 - 1.0).reshape(1, 1, 255, 5)
    near_tie = _assert_matches_rounding_reference(tensor_to_images(x), x)
    assert near_tie.any(), "the tie window must be exercised"
    noise = torch.rand((2, 3, 9, 7), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    noise = noise * 2.4 - 1.2
    _assert_matches_rounding_reference(tensor_to_images(noise), noise)
    out = tensor_to_images(x)[0, :, :, 0].long()  # (255, 5)
    assert torch.equal(out[:, 0], levels.long()), "k + 0.5 - 2 windows rounds down to k"
    assert torch.equal(out[:, -1], levels.long() + 1), "k + 0.5 + 2 windows rounds up to k + 1"


@pytest.mark.parametrize("threads", [None, 1, 2], ids=["default_threads", "1_thread", "2_threads"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_images_to_tensor_into_matches_reference(shape, threads):
    images = _images(shape, seed=2)
    n, h, w, c = shape
    out = torch.full((n, c, h, w), float("nan"))  # any element left unwritten fails the comparison
    assert images_to_tensor_into(images, out, threads=threads) is out
    assert_close(out, images_to_tensor_ref(images), IMAGE_FLOAT, "out")


def test_images_to_tensor_into_non_contiguous_images():
    images = _images((2, 3, 10, 12), seed=4).permute(0, 2, 3, 1)
    out = torch.full((2, 3, 10, 12), float("nan"))
    images_to_tensor_into(images, out)
    assert_close(out, images_to_tensor_ref(images), IMAGE_FLOAT, "out")


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_images_to_tensor_into_other_out_dtypes_use_a_float32_scratch(dtype):
    # The CPU kernel writes float32 only: other floating outs are filled from a float32 scratch tensor, so the
    # result is the float32 value rounded once to out's dtype.
    images = _images((2, 7, 9, 3), seed=6)
    out = torch.full((2, 3, 7, 9), float("nan"), dtype=CPU_FLOATS[dtype])
    assert images_to_tensor_into(images, out) is out
    assert out.dtype == CPU_FLOATS[dtype]
    tol = IMAGE_FLOAT if dtype == "float64" else IMAGE_HALF[CPU_FLOATS[dtype]]
    assert_close(out, images_to_tensor_ref(images), tol, f"{dtype} out")


@pytest.mark.parametrize("dtype", CPU_FLOATS.keys())
@pytest.mark.parametrize("threads", [None, 1, 2], ids=["default_threads", "1_thread", "2_threads"])
def test_tensor_to_images_into_matches_reference(dtype, threads):
    shape = (2, 7, 9, 3)
    x = _network_output(shape, seed=7, dtype=CPU_FLOATS[dtype])
    out = ~tensor_to_images_ref(x)  # every element differs from the answer until written
    assert tensor_to_images_into(x, out, threads=threads) is out
    _assert_matches_rounding_reference(out, x)


def test_tensor_to_images_into_non_contiguous_x():
    x = _network_output((2, 7, 9, 3), seed=8).permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
    assert not x.is_contiguous()
    out = torch.empty((2, 7, 9, 3), dtype=torch.uint8)
    tensor_to_images_into(x, out)
    _assert_matches_rounding_reference(out, x)


def test_opcheck():
    torch.library.opcheck(torch.ops.ganrt.images_to_tensor.default, (_images((2, 5, 6, 3)), torch.float32))
    torch.library.opcheck(torch.ops.ganrt.tensor_to_images.default, (torch.rand(2, 3, 5, 6) * 2 - 1,))


def _u8(*shape):
    return torch.zeros(shape, dtype=torch.uint8)


ERRORS = {
    "images_dtype": (
        lambda: images_to_tensor(torch.zeros(1, 2, 2, 3)),
        TypeError,
        r"images must be uint8, got float32",
    ),
    "images_rank": (
        lambda: images_to_tensor(_u8(2, 2, 3)),
        ValueError,
        r"images must be 4-D \(N, H, W, C\), got 3-D",
    ),
    "images_out_dtype": (
        lambda: images_to_tensor(_u8(1, 2, 2, 3), dtype=torch.float16),
        TypeError,
        r"dtype must be one of float32 on CPU, got float16",
    ),
    "tensor_rank": (
        lambda: tensor_to_images(torch.zeros(3, 4, 4)),
        ValueError,
        r"x must be 4-D \(N, C, H, W\), got 3-D",
    ),
    "tensor_dtype": (
        lambda: tensor_to_images(_u8(1, 3, 2, 2)),
        TypeError,
        r"x must be float32 on CPU, got uint8",
    ),
    # images_to_tensor_into: images (1, 4, 5, 3) -> out (1, 3, 4, 5).
    "into_nhwc_shaped_out": (
        lambda: images_to_tensor_into(_u8(1, 4, 5, 3), torch.empty(1, 4, 5, 3)),
        ValueError,
        r"images_to_tensor_into: out must have shape \(1, 3, 4, 5\), got \(1, 4, 5, 3\)",
    ),
    "into_scratch_path_checks_the_shape": (
        lambda: images_to_tensor_into(_u8(1, 4, 5, 3), torch.empty(1, 3, 5, 4, dtype=torch.float16)),
        ValueError,
        r"images_to_tensor_into: out must have shape \(1, 3, 4, 5\), got \(1, 3, 5, 4\)",
    ),
    "into_non_contiguous_out": (
        lambda: images_to_tensor_into(_u8(1, 4, 5, 3), torch.empty(1, 4, 5, 3).permute(0, 3, 1, 2)),
        ValueError,
        r"images_to_tensor_into: out must be contiguous",
    ),
    "into_channels_last_out": (
        lambda: images_to_tensor_into(
            _u8(2, 4, 5, 3), torch.empty(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
        ),
        ValueError,
        r"images_to_tensor_into: out must be contiguous",
    ),
    "into_integer_out": (
        lambda: images_to_tensor_into(_u8(1, 4, 5, 3), torch.empty(1, 3, 4, 5, dtype=torch.int32)),
        TypeError,
        r"images_to_tensor_into: out must be floating point, got int32",
    ),
    "into_out_on_meta": (
        lambda: images_to_tensor_into(_u8(1, 4, 5, 3), torch.empty(1, 3, 4, 5, device="meta")),
        ValueError,
        r"out must be on a CPU or CUDA device, got meta",
    ),
    "into_float_images": (
        lambda: images_to_tensor_into(torch.zeros(1, 4, 5, 3), torch.empty(1, 3, 4, 5)),
        TypeError,
        r"images must be uint8, got float32",
    ),
    "into_images_rank": (
        lambda: images_to_tensor_into(_u8(4, 5, 3), torch.empty(1, 3, 4, 5)),
        ValueError,
        r"images must be 4-D \(N, H, W, C\), got 3-D",
    ),
    # tensor_to_images_into: x (1, 3, 4, 5) -> out (1, 4, 5, 3).
    "to_images_nchw_shaped_out": (
        lambda: tensor_to_images_into(torch.zeros(1, 3, 4, 5), _u8(1, 3, 4, 5)),
        ValueError,
        r"tensor_to_images_into: out must have shape \(1, 4, 5, 3\), got \(1, 3, 4, 5\)",
    ),
    "to_images_non_contiguous_out": (
        lambda: tensor_to_images_into(torch.zeros(1, 3, 4, 5), _u8(1, 3, 4, 5).permute(0, 2, 3, 1)),
        ValueError,
        r"tensor_to_images_into: out must be contiguous",
    ),
    "to_images_float_out": (
        lambda: tensor_to_images_into(torch.zeros(1, 3, 4, 5), torch.empty(1, 4, 5, 3)),
        TypeError,
        r"tensor_to_images_into: out must be uint8, got float32",
    ),
    "to_images_out_on_meta": (
        lambda: tensor_to_images_into(torch.zeros(1, 3, 4, 5), _u8(1, 4, 5, 3).to("meta")),
        ValueError,
        r"tensor_to_images_into: out must be on the device of the input \(cpu\), got meta",
    ),
    "to_images_integer_x": (
        lambda: tensor_to_images_into(_u8(1, 3, 4, 5), _u8(1, 4, 5, 3)),
        TypeError,
        r"tensor_to_images_into: x must be floating point, got uint8",
    ),
    "to_images_x_rank": (
        lambda: tensor_to_images_into(torch.zeros(3, 4, 5), _u8(1, 4, 5, 3)),
        ValueError,
        r"x must be 4-D \(N, C, H, W\), got 3-D",
    ),
    "to_images_x_on_meta": (
        lambda: tensor_to_images_into(torch.zeros(1, 3, 4, 5, device="meta"), _u8(1, 4, 5, 3)),
        ValueError,
        r"x must be on a CPU or CUDA device, got meta",
    ),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_errors(case):
    fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn()
