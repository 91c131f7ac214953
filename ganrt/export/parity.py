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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganrt.backends import runner_class
from ganrt.backends.base import Runner
from ganrt.backends.torch import TorchRunner
from ganrt.export.result import ParityRow
from ganrt.export.trace import GraphPlan
from ganrt.utils import psnr

# Seeds of the parity latents (z, eps): fixed so that a failing gate is reproducible.
Z_SEED, EPS_SEED = 0, 1


def parity_inputs(plan: GraphPlan, n: int) -> dict[str, np.ndarray]:
    """Inputs for ``n`` samples at the plan's optimal H x W, keyed by graph input name."""
    return sample_feeds(
        plan.inputs,
        n,
        height=plan.height[1],
        width=plan.width[1],
        channels=plan.in_channels,
        latent_dim=plan.latent_dim,
        num_classes=plan.num_classes,
    )


def sample_feeds(
    inputs: Sequence[Any],
    n: int,
    *,
    height: int,
    width: int,
    channels: int,
    latent_dim: int,
    num_classes: int,
) -> dict[str, np.ndarray]:
    """The parity inputs for graph ``inputs`` (objects with ``name``, ``dtype``, ``shape``: a plan's
    tensors or a runner's :class:`~ganrt.backends.base.TensorSpec`), ``n`` samples, images at ``height`` x
    ``width``."""
    from ganrt.data import sample_images
    from ganrt.ops import images_to_tensor, standard_normal

    feeds: dict[str, np.ndarray] = {}
    for tensor in inputs:
        if tensor.dtype == "int64":
            feeds[tensor.name] = np.arange(n, dtype=np.int64) % max(num_classes, 1)
        elif len(tensor.shape) == 4:
            side = max(height, width)
            images = sample_images(side, n, channels=channels)
            top, left = (side - height) // 2, (side - width) // 2
            crop = np.ascontiguousarray(images[:, top : top + height, left : left + width])
            feeds[tensor.name] = images_to_tensor(torch.from_numpy(crop)).numpy()
        else:
            seed = EPS_SEED if tensor.name == "eps" else Z_SEED
            feeds[tensor.name] = standard_normal((n, latent_dim), seed=seed).numpy()
    return feeds


def reference_runner(net: nn.Module, plan: GraphPlan) -> TorchRunner:
    """The PyTorch network as a runner of the plan's graph: the torch backend, on CPU."""
    return TorchRunner(net, plan.metadata, part=plan.part)


def run(runner: Runner, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of ``runner`` on host ``feeds``, keyed by graph output name."""
    return dict(runner.infer(feeds))


def run_artifact(
    backend: str, path: str | Path, feeds: Mapping[str, np.ndarray], **options: Any
) -> dict[str, np.ndarray]:
    """Outputs of the artifact at ``path`` under ``backend`` (ONNX Runtime's CPU provider runs fp16 graphs
    too; TensorRT runs on the GPU)."""
    device = "cuda" if backend == "tensorrt" else "cpu"
    runner = runner_class(backend).load(Path(path), device=device, **options)
    try:
        return run(runner, feeds)
    finally:
        runner.close()


def _criteria(
    thresholds: Mapping[str, float],
) -> tuple[str, Callable[[float, float, float, float | None], bool]]:
    parts = []
    for metric, limit in thresholds.items():
        if metric == "psnr":
            parts.append(f"psnr >= {limit:g} dB")
        elif metric == "uint8_mean_abs":
            parts.append(f"uint8_mean_abs <= {limit:g} levels (images)")
        else:
            parts.append(f"{metric} <= {limit:g}")

    def passed(max_abs: float, mean_abs: float, db: float, levels: float | None) -> bool:
        values = {"max_abs": max_abs, "mean_abs": mean_abs, "psnr": db, "uint8_mean_abs": levels}
        return all(
            (values[m] >= limit) if m == "psnr" else (values[m] is None or values[m] <= limit)
            for m, limit in thresholds.items()
        )

    return ", ".join(parts), passed


def _uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] as the uint8 levels ``tensor_to_images`` gives (clamped, rounded to nearest even)."""
    return np.clip(np.round((images.astype(np.float64) + 1.0) * 127.5), 0.0, 255.0)


def compare(
    reference: Mapping[str, np.ndarray],
    actual: Mapping[str, np.ndarray],
    *,
    thresholds: Mapping[str, float],
    image_outputs: frozenset[str],
    backend: str = "onnxruntime",
) -> list[ParityRow]:
    """One :class:`ParityRow` per reference output. A missing output, a shape mismatch or a non-finite value
    in either the reference or the artifact fails its row outright (metrics are then reported as inf / -inf,
    and the criteria column says which side was not finite)."""
    text, passed = _criteria(thresholds)
    rows = []
    for name, ref in reference.items():
        got = actual.get(name)
        if got is None or got.shape != ref.shape:
            why = "missing" if got is None else f"shape {got.shape} != {ref.shape}"
            rows.append(ParityRow(name, math.inf, math.inf, -math.inf, False, f"{text}; {why}", backend))
            continue
        got = got.astype(np.float32)
        bad = [who for who, values in (("PyTorch reference", ref), (backend, got))
               if values.dtype.kind == "f" and not np.all(np.isfinite(values))]  # fmt: skip
        if bad:
            why = f"{text}; non-finite values (NaN/inf) in the {' and the '.join(bad)} output"
            rows.append(ParityRow(name, math.inf, math.inf, -math.inf, False, why, backend))
            continue
        diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        peak = 2.0 if name in image_outputs else float(ref.max() - ref.min()) or 1.0
        max_abs = float(diff.max(initial=0.0))
        mean_abs = float(diff.mean()) if diff.size else 0.0
        db = psnr(ref, got, peak)
        levels = None
        if name in image_outputs and diff.size:
            levels = float(np.abs(_uint8(ref) - _uint8(got)).mean())
        ok = passed(max_abs, mean_abs, db, levels)
        rows.append(ParityRow(name, max_abs, mean_abs, db, ok, text, backend, levels))
    return rows
