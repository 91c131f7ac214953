"""The networks on a CUDA device: fused kernels vs stock layers, and vs the CPU (skipped without CUDA)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ganrt.models import build_net
from tests.tolerances import (
    FUSED_GRAD_RTOL,
    FUSED_OUTPUT_ATOL,
    HALF_ERROR_FACTOR,
    NETWORK_HALF_ERROR_FLOOR,
    full_fp32,
)

SPECS = {
    "unet_64": ({"arch": "unet_64", "ngf": 8, "norm": "batch"}, (2, 3, 128, 128)),
    "resnet_6blocks": ({"arch": "resnet_6blocks", "ngf": 8, "norm": "instance"}, (2, 3, 64, 64)),
    "patchgan": ({"arch": "patchgan", "in_channels": 6, "ndf": 8}, (2, 6, 64, 64)),
}


@pytest.fixture
def ieee_fp32() -> Iterator[None]:
    """fp32 convolutions without TF32 (cuDNN's default): the comparisons below are at fp32 tolerances."""
    with full_fp32():
        yield


@pytest.mark.cuda
@pytest.mark.parametrize("name", list(SPECS))
def test_fused_cuda_matches_stock_and_cpu(name, ieee_fp32):
    spec, shape = SPECS[name]
    torch.manual_seed(0)
    fused = build_net(spec, fused=True).cuda()
    stock = build_net(spec, fused=False).cuda()
    stock.load_state_dict(fused.state_dict())
    cpu = build_net(spec, fused=True)
    cpu.load_state_dict(fused.state_dict())
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    outs, grads = [], []
    for net, device in ((fused, "cuda"), (stock, "cuda"), (cpu, "cpu")):
        xi = x.to(device).requires_grad_(True)
        y = net(xi)
        y.square().sum().backward()
        outs.append(y.detach().cpu())
        grads.append(xi.grad.cpu())
    for other in (1, 2):
        torch.testing.assert_close(outs[0], outs[other], atol=FUSED_OUTPUT_ATOL, rtol=0)
        scale = grads[other].abs().max()
        assert (grads[0] - grads[other]).abs().max() / scale <= FUSED_GRAD_RTOL


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_error_is_no_worse_than_stock(dtype, ieee_fp32):
    """Low-precision fused network vs float32: at most twice the error of the stock network in that dtype."""
    spec, shape = SPECS["resnet_6blocks"]
    torch.manual_seed(0)
    ref = build_net(spec, fused=False).cuda()
    fused = build_net(spec, fused=True).cuda().to(dtype)
    stock = build_net(spec, fused=False).cuda().to(dtype)
    fused.load_state_dict(ref.state_dict())
    stock.load_state_dict(ref.state_dict())
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 2 - 1).cuda()
    with torch.no_grad():
        expected = ref(x)
        err_fused = (fused(x.to(dtype)).float() - expected).abs().max().item()
        err_stock = (stock(x.to(dtype)).float() - expected).abs().max().item()
    assert err_fused <= HALF_ERROR_FACTOR * err_stock + NETWORK_HALF_ERROR_FLOOR


def test_full_fp32_turns_tf32_off_and_restores_the_setting():
    """Runs without a GPU: the fp32_precision switches are plain settings (and torch raises if this helper ever
    mixed them with the legacy allow_tf32 flags)."""
    before = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    with full_fp32():
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before
