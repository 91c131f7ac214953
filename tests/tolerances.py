"""The single home of numeric tolerances in ganrt's tests.

Kernels are compared against float64 references. Absolute tolerances are scaled by the magnitude of the
expected tensor (``max(1, max|expected|)``) so that sums over large planes (grad_weight over 65536 elements)
are judged relative to their size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tol:
    atol: float
    rtol: float


# Forward outputs of float kernels against a float64 reference, by kernel dtype.
FORWARD: dict[torch.dtype, Tol] = {
    torch.float32: Tol(atol=2e-5, rtol=1e-5),
    torch.float64: Tol(atol=1e-11, rtol=1e-11),
}
# Gradients: reductions over a plane and an extra rstd factor cost about one more digit.
BACKWARD: dict[torch.dtype, Tol] = {
    torch.float32: Tol(atol=2e-4, rtol=1e-4),
    torch.float64: Tol(atol=1e-10, rtol=1e-10),
}
# Planes with a large mean (|mean| / std = 100): fp32 inputs only carry ~1e-5 relative resolution there.
LARGE_MEAN = Tol(atol=2e-4, rtol=1e-4)

# torch.autograd.gradcheck / gradgradcheck settings for float64 kernels.
GRADCHECK = {"eps": 1e-6, "atol": 1e-6, "rtol": 1e-4}

# fp16/bf16 kernels: error against the fp32 reference at most this many times the error of the plain
# PyTorch computation in the same dtype (plus a floor for results that are exact in both).
HALF_ERROR_FACTOR = 2.0
HALF_ERROR_FLOOR = {torch.float16: 1e-3, torch.bfloat16: 8e-3}

# Philox / Box-Muller sample statistics: |mean| and |var - 1| within this many standard errors, and the
# normality tests' p-values above NORMALITY_P_MIN (fixed seeds: deterministic pass/fail).
STAT_SIGMAS = 5.0
NORMALITY_P_MIN = 1e-4

# float64 Philox normals of the kernel (series log/sincos) against NumPy's libm evaluation of Box-Muller.
PHILOX_STREAM = Tol(atol=1e-13, rtol=1e-13)

# Same Philox numbers on CPU and CUDA: both use the same integer stream; only libm's log/sin/cos differ.
CROSS_DEVICE = Tol(atol=1e-5, rtol=1e-5)

# Image conversion: float results within this; uint8 results exact except at rounding ties.
IMAGE_FLOAT = Tol(atol=1e-6, rtol=0.0)
ROUNDING_TIE_WINDOW = 1e-3

# ONNX Runtime against the eager PyTorch module (float32).
ONNX = Tol(atol=1e-4, rtol=1e-4)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: Tol, what: str = "") -> None:
    """``|actual - expected| <= atol * max(1, max|expected|) + rtol * |expected|`` elementwise, in float64."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a = actual.detach().to(torch.float64).cpu()
    e = expected.detach().to(torch.float64).cpu()
    scale = max(1.0, e.abs().max().item()) if e.numel() else 1.0
    torch.testing.assert_close(a, e, atol=tol.atol * scale, rtol=tol.rtol, msg=lambda m: f"{what}: {m}")


def max_abs_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    diff = (actual.detach().to(torch.float64).cpu() - expected.detach().to(torch.float64).cpu()).abs()
    return diff.max().item() if diff.numel() else 0.0


def psnr(actual: torch.Tensor, expected: torch.Tensor, peak: float = 2.0) -> float:
    """PSNR in dB for images in [-1, 1] (peak-to-peak 2); inf when identical."""
    mse = (actual.detach().double().cpu() - expected.detach().double().cpu()).square().mean().item()
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)
