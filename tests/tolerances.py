"""The single home of numeric tolerances in ganrt's tests.

Kernels are compared against float64 references. Absolute tolerances are scaled by the magnitude of the
expected tensor (``max(1, max|expected|)``) so that sums over large planes (grad_weight over 65536 elements)
are judged relative to their size.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
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

# One ulp of a float32 x is at most FLOAT32_ULP * |x|.
FLOAT32_ULP = 2.0**-23

# Philox normals on CPU vs CUDA (standard_normal, float32). Both devices run the same integer Philox and the same
# double-precision Box-Muller (csrc/common/philox.h: fdlibm's log and sin/cos kernels written out in +, -, *, /
# and sqrt, each correctly rounded on both; no libm). The one difference is fused multiply-adds: the CPU
# library is compiled with -ffp-contract=off (CMakeLists.txt), while nvcc contracts a * b + c into one FMA by
# default (--fmad=true), so a GPU double may differ from the CPU's in its last few bits. Rounded to float32 the
# two agree except where such a double lies within those bits of a float32 rounding boundary: then by one ulp.
# (Compiling csrc/cuda/reparameterize.cu with --fmad=false would make the doubles, and so these, identical.)
CROSS_DEVICE_NORMALS = Tol(atol=0.0, rtol=FLOAT32_ULP)
# float16 normals on CUDA vs the float32 CPU stream: the above, then one round-to-nearest to float16 (half an
# ulp: 2^-11 relative, 2^-25 absolute in float16's subnormal range).
CROSS_DEVICE_HALF_NORMALS = Tol(atol=2.0**-25, rtol=2.0**-11 + FLOAT32_ULP)
# reparameterize on CPU vs CUDA in float32 (z = mu + std * eps, grad_logvar = grad_z * eps * std * 0.5 with
# std = exp(0.5 * logvar)): besides eps (one ulp, above), std differs (CPU: a double polynomial rounded once to
# float32, within half an ulp and a hair; CUDA: expf, within 2 ulp) and nvcc fuses mu + std * eps into one FMA
# where the CPU rounds the product and the sum separately. That bounds the difference by about 4 ulp of
# |std * eps| plus one of |z| for z, and about 6 ulp of |grad_logvar|. The absolute part is scaled by the
# largest |expected| (assert_close), which covers |std * eps| for inputs where |mu| stays below that.
CROSS_DEVICE_REPARAMETERIZE = Tol(atol=8 * FLOAT32_ULP, rtol=8 * FLOAT32_ULP)

# Image conversion: float results within this; uint8 results exact except at rounding ties.
IMAGE_FLOAT = Tol(atol=1e-6, rtol=0.0)
ROUNDING_TIE_WINDOW = 1e-3
# images_to_tensor into float16/bfloat16: the float32 value v / 127.5 - 1 rounded once to the dtype, at most half
# an ulp of a value in [-1, 1] (the ulp of [0.5, 1): 2^-11 in float16, 2^-8 in bfloat16).
IMAGE_HALF: dict[torch.dtype, Tol] = {
    torch.float16: Tol(atol=2.0**-12, rtol=0.0),
    torch.bfloat16: Tol(atol=2.0**-9, rtol=0.0),
}

# ONNX Runtime against the eager PyTorch module (float32).
ONNX = Tol(atol=1e-4, rtol=1e-4)
# bf16 inference (OpenVINO on CPUs with AMX-BF16/AVX512_BF16) against float32. What ganrt promises is the
# recipes' reduced-precision bound on whole images (PSNR >= 40 dB, mean within 2 uint8 levels, both checked by
# the backend selection); single values drift further: a bf16 product keeps 8 significant bits (relative error
# 2^-9), and through a dozen normalized layers of a random-weight ResNet the worst pixel measured 0.11 (of a
# [-1, 1] range) at 256x256.
BF16_PSNR_DB = 40.0
BF16_MAX_ABS = 0.15
# Translating pictures the network cannot take through the runtime's resize (float32 bilinear, rounded to uint8,
# ONNX Runtime) against the PyTorch generator between independent float64 resizes: one level at rounding ties,
# plus one where a tie flipped in the resized input moves the generator's output across another.
RESIZED_TRANSLATION_LEVELS = 2
# ... and their PSNR (as [-1, 1] images) at least this: correct pipelines measure 63 dB and more against the
# reference; resizing with truncation or align_corners=True measures 54 dB at most, padding instead 27 dB.
RESIZED_TRANSLATION_PSNR_DB = 58.0
# A float32 TensorRT engine (TF32 off, see ganrt/export/tensorrt.py) against ONNX Runtime on the CPU: TensorRT
# picks its own convolution tactics and accumulation orders, so rounding differs about a digit more than ONNX's.
TENSORRT = Tol(atol=1e-3, rtol=0.0)
# The torch backend on CUDA in float32, uint8 pictures out, against the CPU (inside full_fp32()) or against
# itself (graphs vs eager, replays; TF32 allowed, both sides alike): different summation orders move outputs far
# below one uint8 level, so only a rounding tie flips, by one level.
TORCH_CUDA_FP32_LEVELS = 1
# The same network in fp16/bf16 (channels_last, CUDA graphs) against float32 on the CPU, as [-1, 1] images: the
# bound the export recipes put on fp16 artifacts.
TORCH_CUDA_HALF_PSNR_DB = 40.0

# ganrt.bench's memory figures: within this many MiB of what a test allocates (allocator and interpreter noise),
# and sums of figures rounded to 0.1 MiB each within MEMORY_ROUNDING_MB of the rounded sum.
MEMORY_SLACK_MB = 8.0
MEMORY_ROUNDING_MB = 0.11

# Whole networks (tests/models). Fused vs stock layers: the same float32 math in a different summation order
# (the fused kernel's Welford statistics vs ATen's), so differences are rounding-level; they grow slightly with
# depth. All max-abs unless noted.
# Outputs of whole networks in float32, fused vs unfused (tanh outputs in [-1, 1], logits of order 1).
FUSED_OUTPUT_ATOL = 1e-4
# Gradients relative to the largest gradient entry of the same tensor.
FUSED_GRAD_RTOL = 1e-3
# Gradients that are zero up to rounding are compared against this fraction of the network's largest gradient.
GRAD_FLOOR_FRACTION = 1e-2
# float64 networks, fused vs unfused: near machine precision (outputs, and gradients relative to their largest).
FUSED_FLOAT64_ATOL = 1e-10
# Imported reference (pytorch-CycleGAN-and-pix2pix) checkpoints vs the reference network (the bound).
UPSTREAM_ATOL = 1e-4
# Half-precision networks on CUDA: error vs float32 at most HALF_ERROR_FACTOR times the stock network's error in
# the same dtype, plus this floor for outputs that both get (nearly) exact.
NETWORK_HALF_ERROR_FLOOR = 1e-3


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """Full-precision fp32 convolutions and matmuls on CUDA inside the block.

    cuDNN runs fp32 convolutions in TF32 by default (inputs rounded to a 10-bit mantissa: ~1e-3 relative error
    per convolution), far outside the float32 tolerances above; every GPU-vs-CPU fp32 comparison of networks
    runs inside this. Set through the ``fp32_precision`` API only: torch raises when it is mixed with the
    legacy ``allow_tf32`` flags.
    """
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = before


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
