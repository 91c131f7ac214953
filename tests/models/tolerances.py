"""Tolerances of the model tests, in one place (max-abs unless noted).

Fused vs stock layers: the same float32 math in a different summation order (the fused kernel's Welford
statistics vs ATen's), so differences are rounding-level; they grow slightly with depth.
"""

from __future__ import annotations

# Outputs of whole networks in float32, fused vs unfused (tanh outputs in [-1, 1], logits of order 1).
FUSED_OUTPUT_ATOL = 1e-4
# Gradients relative to the largest gradient entry of the same tensor.
FUSED_GRAD_RTOL = 1e-3
# Gradients that are zero up to rounding are compared against this fraction of the network's largest gradient.
GRAD_FLOOR_FRACTION = 1e-2
# float64 networks: near machine precision.
FLOAT64_ATOL = 1e-10
# Imported reference checkpoints vs the reference network (the acceptance bound).
UPSTREAM_ATOL = 1e-4
# Half-precision networks on CUDA: error vs float32 at most this factor times the stock network's error in the
# same dtype, plus a floor for outputs that both get (nearly) exact.
HALF_ERROR_FACTOR = 2.0
HALF_ERROR_FLOOR = 1e-3
