"""The CycleGAN image pool (Shrivastava et al.): discriminators see a history of generated images.

Same behaviour as the reference: while the pool holds fewer than ``size`` images every fake is stored and
returned as is; afterwards each fake, with probability 0.5, is swapped for a random stored one (which is
returned) and otherwise returned directly. Randomness comes from an explicit generator and the contents are
plain tensors, so the pool checkpoints and resumes exactly.
"""

from __future__ import annotations

import numpy as np
import torch


class ImagePool:
    """History buffer of at most ``size`` images, each (C, H, W); ``size=0`` disables it."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, fakes: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """fakes: (N, C, H, W) → (N, C, H, W) detached mix of current and past fakes."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = []
        for image in fakes:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif rng.random() > 0.5:
                k = int(rng.integers(self.size))
                out.append(self.images[k])
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> torch.Tensor | None:
        """Contents as one (n, C, H, W) tensor, None while empty."""
        return torch.stack(self.images).contiguous() if self.images else None

    def load_state(self, images: torch.Tensor | None, device: torch.device | str) -> None:
        """Restore contents saved by :meth:`state`."""
        self.images = [] if images is None else [im.to(device).clone() for im in images]
        if len(self.images) > self.size:
            raise ValueError(f"saved pool holds {len(self.images)} images, more than its size {self.size}")
