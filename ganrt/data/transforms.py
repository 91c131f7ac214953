"""The reference preprocessing: resize to ``load_size``, random ``image_size`` crop, random horizontal flip.

Randomness comes from an explicit ``numpy.random.Generator`` so that training can derive it from
``(seed, sample position)`` and a resumed run sees exactly the crops and flips an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


def default_load_size(image_size: int, augment: bool) -> int:
    """The reference resizes 256-pixel crops from 286-pixel images (ratio 286/256); no margin without augmentation."""
    return round(image_size * 286 / 256) if augment else image_size


@dataclass(frozen=True)
class Geometry:
    """How one image becomes a training sample.

    image_size: output side (the crop); load_size: side the image is first resized to (square, as the
    reference does); augment: random crop position + random flip (else centre crop, no flip); flip: whether
    augmentation may mirror (off for data whose meaning changes when mirrored, such as digits).
    """

    image_size: int
    load_size: int
    augment: bool
    flip: bool = True

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {self.image_size}")
        if self.load_size < self.image_size:
            raise ValueError(f"load_size must be >= image_size ({self.image_size}), got {self.load_size}")

    def draw(self, rng: np.random.Generator | None) -> tuple[int, int, bool]:
        """Crop corner ``(x, y)`` and flip flag: drawn from ``rng`` when augmenting; centre crop without flip
        when not augmenting or when ``rng`` is None (deterministic views for evaluation and sample grids)."""
        margin = self.load_size - self.image_size
        if not self.augment or rng is None:
            return margin // 2, margin // 2, False
        x, y = (int(v) for v in rng.integers(0, margin + 1, size=2))
        # Always draw the coin so the random stream does not depend on ``flip``.
        return x, y, bool(rng.random() < 0.5) and self.flip

    def apply(self, im: Image.Image, params: tuple[int, int, bool]) -> np.ndarray:
        """Resize ``im`` to load_size² (bicubic, as the reference), crop and flip → uint8 (H, W, C)."""
        x, y, flip = params
        if im.size != (self.load_size, self.load_size):
            im = im.resize((self.load_size, self.load_size), Image.Resampling.BICUBIC)
        arr = np.asarray(im)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        arr = arr[y : y + self.image_size, x : x + self.image_size]
        if flip:
            arr = arr[:, ::-1]
        return np.ascontiguousarray(arr)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) → float32 (C, H, W) in [-1, 1] (the reference's mean 0.5 / std 0.5 normalisation)."""
    # copy: the source may be a read-only view (cached built-in data), which torch refuses to wrap.
    t = torch.from_numpy(image.transpose(2, 0, 1).copy())
    return t.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (C, H, W) or (N, C, H, W) in [-1, 1] → uint8 (H, W, C) / (N, H, W, C), clamped and rounded."""
    x = x.detach().to("cpu", torch.float32)
    y = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return y.permute(*range(y.dim() - 3), -2, -1, -3).numpy()
