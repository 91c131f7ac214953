"""Pictures written during training: sample grids (PIL) and the loss curve (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganrt.data import to_uint8
from ganrt.utils import atomic_write

PAD = 2


def grid(rows: Sequence[Sequence[torch.Tensor]] | torch.Tensor, *, columns: int | None = None) -> np.ndarray:
    """Tile images (each (C, H, W) in [-1, 1], C = 1 or 3) into one uint8 (H', W', 3) picture.

    ``rows``: a list of rows (e.g. input | output | target per row), or one (N, C, H, W) tensor laid out
    ``columns`` wide (default: square-ish).
    """
    if isinstance(rows, torch.Tensor):
        n = rows.shape[0]
        columns = columns or math.ceil(math.sqrt(n))
        rows = [list(rows[i : i + columns]) for i in range(0, n, columns)]
    cells = [[to_uint8(t) for t in row] for row in rows]
    h, w = cells[0][0].shape[:2]
    ncols = max(len(r) for r in cells)
    out = np.full((len(cells) * (h + PAD) + PAD, ncols * (w + PAD) + PAD, 3), 255, dtype=np.uint8)
    for r, row in enumerate(cells):
        for c, img in enumerate(row):
            y, x = PAD + r * (h + PAD), PAD + c * (w + PAD)
            out[y : y + h, x : x + w] = img if img.shape[2] == 3 else np.repeat(img, 3, axis=2)
    return out


def save_png(path: Path, image: np.ndarray, *, min_side: int = 256) -> None:
    """Save uint8 (H, W, 3) as PNG atomically, upscaled (nearest) so tiny training images stay visible."""
    im = Image.fromarray(image)
    scale = max(1, math.ceil(min_side / max(1, min(image.shape[:2]))))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def save_loss_plot(path: Path, steps: Sequence[int], losses: dict[str, Sequence[float]],
                   evals: dict[str, tuple[Sequence[int], Sequence[float]]] | None = None) -> None:
    """Loss curves (moving average over ~2% of the run) and, in a second panel, held-out metrics."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    evals = evals or {}
    fig = Figure(figsize=(10, 4 if not evals else 7), dpi=100)
    axes = fig.subplots(2 if evals else 1, 1, squeeze=False)[:, 0]
    x = np.asarray(steps)
    window = max(1, len(x) // 50)
    for name, values in losses.items():
        y = _smooth(np.asarray(values, dtype=np.float64), window)
        axes[0].plot(x[len(x) - len(y) :], y, label=name, linewidth=1)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss" + (f" (moving average of {window})" if window > 1 else ""))
    axes[0].grid(alpha=0.3)
    if losses:
        axes[0].legend(loc="upper right", fontsize="small")
    if evals:
        for name, (es, ev) in evals.items():
            axes[1].plot(es, ev, marker="o", label=name)
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("held-out")
        axes[1].grid(alpha=0.3)
        axes[1].legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())

