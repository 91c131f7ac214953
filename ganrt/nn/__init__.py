"""Drop-in ``torch.nn`` modules built on the fused ganrt ops."""

from __future__ import annotations

from ganrt.nn.normalization import InstanceNormAct2d

__all__ = ["InstanceNormAct2d"]
