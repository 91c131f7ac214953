"""The parity gate: the PyTorch model and the exported artifact on the same real inputs, compared per output.

Inputs: real photos bundled with ganrt's data package (``ganrt.data.sample_images``, center-cropped to the
graph's H x W) for image inputs; fixed-seed latents from ganrt's Philox generator
(``ganrt.ops.standard_normal``) for ``z`` and ``eps``; labels ``0, 1, 2, ...`` (mod num_classes) for
``label``.

Metrics per output: max-abs and mean-abs difference, and PSNR in dB against the output's peak-to-peak range
(2.0 for images in [-1, 1]; the reference's own range for latents).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganrt.export.result import ParityRow
from ganrt.export.trace import GraphPlan

# Seeds of the parity latents (z, eps): fixed so that a failing gate is reproducible.
Z_SEED, EPS_SEED = 0, 1


def parity_inputs(plan: GraphPlan, n: int) -> dict[str, np.ndarray]:
    """Inputs for ``n`` samples at the plan's optimal H x W, keyed by graph input name."""
    from ganrt.data import sample_images
    from ganrt.ops import images_to_tensor, standard_normal

    height, width = plan.height[1], plan.width[1]
    feeds: dict[str, np.ndarray] = {}
    for tensor in plan.inputs:
        if tensor.dtype == "int64":
            feeds[tensor.name] = np.arange(n, dtype=np.int64) % max(plan.num_classes, 1)
        elif len(tensor.shape) == 4:
            side = max(height, width)
            images = sample_images(side, n, channels=plan.in_channels)
            top, left = (side - height) // 2, (side - width) // 2
            crop = np.ascontiguousarray(images[:, top : top + height, left : left + width])
            feeds[tensor.name] = images_to_tensor(torch.from_numpy(crop)).numpy()
        else:
            seed = EPS_SEED if tensor.name == "eps" else Z_SEED
            feeds[tensor.name] = standard_normal((n, plan.latent_dim), seed=seed).numpy()
    return feeds


def run_torch(module: nn.Module, plan: GraphPlan, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The PyTorch reference outputs, keyed by graph output name."""
    args = [torch.from_numpy(feeds[t.name]) for t in plan.inputs]
    with torch.inference_mode():
        out = module(*args)
    outs = out if isinstance(out, tuple) else (out,)
    return {t.name: o.float().numpy() for t, o in zip(plan.outputs, outs, strict=True)}


def run_onnxruntime(path: str | Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of the ONNX model at ``path`` under ONNX Runtime's CPU provider (it runs fp16 graphs too)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds)), strict=True))


def psnr(reference: np.ndarray, actual: np.ndarray, peak: float) -> float:
    """PSNR in dB of ``actual`` against ``reference`` for signal peak-to-peak ``peak``; inf when identical."""
    mse = float(np.mean((reference.astype(np.float64) - actual.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def _criteria(thresholds: Mapping[str, float]) -> tuple[str, Callable[[float, float, float], bool]]:
    parts = []
    for metric, limit in thresholds.items():
        parts.append(f"{metric} >= {limit:g} dB" if metric == "psnr" else f"{metric} <= {limit:g}")

    def passed(max_abs: float, mean_abs: float, db: float) -> bool:
        values = {"max_abs": max_abs, "mean_abs": mean_abs, "psnr": db}
        return all(
            (values[m] >= limit) if m == "psnr" else (values[m] <= limit) for m, limit in thresholds.items()
        )

    return ", ".join(parts), passed


def compare(
    reference: Mapping[str, np.ndarray],
    actual: Mapping[str, np.ndarray],
    *,
    thresholds: Mapping[str, float],
    image_outputs: frozenset[str],
    backend: str = "onnxruntime",
) -> list[ParityRow]:
    """One :class:`ParityRow` per reference output. A missing output, a shape mismatch or a non-finite value
    fails its row outright (metrics are then reported as inf / -inf)."""
    text, passed = _criteria(thresholds)
    rows = []
    for name, ref in reference.items():
        got = actual.get(name)
        if got is None or got.shape != ref.shape:
            why = "missing" if got is None else f"shape {got.shape} != {ref.shape}"
            rows.append(ParityRow(name, math.inf, math.inf, -math.inf, False, f"{text}; {why}", backend))
            continue
        got = got.astype(np.float32)
        if not np.all(np.isfinite(got)):
            rows.append(
                ParityRow(name, math.inf, math.inf, -math.inf, False, f"{text}; non-finite values", backend)
            )
            continue
        diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        peak = 2.0 if name in image_outputs else float(ref.max() - ref.min()) or 1.0
        max_abs = float(diff.max(initial=0.0))
        mean_abs = float(diff.mean()) if diff.size else 0.0
        db = psnr(ref, got, peak)
        rows.append(ParityRow(name, max_abs, mean_abs, db, passed(max_abs, mean_abs, db), text, backend))
    return rows
