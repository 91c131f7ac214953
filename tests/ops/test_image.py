"""ganrt.ops.images_to_tensor / tensor_to_images against their references, round trips and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrt.ops import images_to_tensor, images_to_tensor_ref, tensor_to_images, tensor_to_images_ref
from tests.tolerances import IMAGE_FLOAT, ROUNDING_TIE_WINDOW, assert_close

SHAPES = {"n1_1x1_c1": (1, 1, 1, 1), "n2_7x9_c3": (2, 7, 9, 3), "n1_33x65_c4": (1, 33, 65, 4)}


def _images(shape, seed=0):
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


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
    n, h, w, c = shape
    g = torch.Generator().manual_seed(1)
    # Values beyond [-1, 1] included: they must saturate.
    x = torch.rand((n, c, h, w), generator=g) * 2.4 - 1.2
    out = tensor_to_images(x)
    assert out.dtype == torch.uint8 and out.shape == shape and out.is_contiguous()
    ref = tensor_to_images_ref(x)
    diff = (out.int() - ref.int()).abs()
    # Exact except where (x + 1) * 127.5 sits within the float32 rounding window of a .5 tie.
    frac = ((x.double() + 1.0) * 127.5).remainder(1.0).permute(0, 2, 3, 1)
    near_tie = (frac - 0.5).abs() < ROUNDING_TIE_WINDOW
    assert diff.max().item() <= 1
    assert (diff[~near_tie] == 0).all()


def test_round_trip_is_identity_for_every_level():
    levels = torch.arange(256, dtype=torch.uint8).view(1, 16, 16, 1).expand(2, 16, 16, 3).contiguous()
    assert torch.equal(tensor_to_images(images_to_tensor(levels)), levels)


def test_rounds_and_clamps_where_upstream_truncates():
    x = torch.tensor([-1.5, -1.01, -1.0, -0.999, 0.0, 0.999, 1.0, 1.01]).view(1, 1, 1, 8)
    assert tensor_to_images(x).flatten().tolist() == [0, 0, 0, 0, 128, 255, 255, 255]
    # Upstream's ((x + 1) / 2 * 255).astype(uint8) truncates: 127.5 becomes 127, half a level low.
    upstream = ((x.flatten()[2:7].numpy() + 1) / 2 * 255).astype(np.uint8).tolist()
    assert upstream == [0, 0, 127, 254, 255]


def test_float64_input_is_accepted():
    x = torch.linspace(-1, 1, 64, dtype=torch.float64).view(1, 1, 8, 8)
    assert torch.equal(tensor_to_images(x), tensor_to_images(x.float()))


def test_opcheck():
    torch.library.opcheck(torch.ops.ganrt.images_to_tensor.default, (_images((2, 5, 6, 3)), torch.float32))
    torch.library.opcheck(torch.ops.ganrt.tensor_to_images.default, (torch.rand(2, 3, 5, 6) * 2 - 1,))


ERRORS = {
    "images_dtype": (
        lambda: images_to_tensor(torch.zeros(1, 2, 2, 3)),
        TypeError,
        r"images must be uint8, got float32",
    ),
    "images_rank": (
        lambda: images_to_tensor(torch.zeros(2, 2, 3, dtype=torch.uint8)),
        ValueError,
        r"images must be 4-D \(N, H, W, C\), got 3-D",
    ),
    "images_out_dtype": (
        lambda: images_to_tensor(torch.zeros(1, 2, 2, 3, dtype=torch.uint8), dtype=torch.float16),
        TypeError,
        r"dtype must be one of float32 on CPU, got float16",
    ),
    "tensor_rank": (
        lambda: tensor_to_images(torch.zeros(3, 4, 4)),
        ValueError,
        r"x must be 4-D \(N, C, H, W\), got 3-D",
    ),
    "tensor_dtype": (
        lambda: tensor_to_images(torch.zeros(1, 3, 2, 2, dtype=torch.uint8)),
        TypeError,
        r"x must be float32 on CPU, got uint8",
    ),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_errors(case):
    fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn()
