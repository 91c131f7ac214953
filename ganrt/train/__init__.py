"""ganrt.train: train Pix2Pix, CycleGAN, VAE and DCGAN models into run directories.

``train(family, data=..., out=..., steps=...)`` runs the reference training recipe with ganrt's fused
kernels, writing checkpoints (``ganrt.models.save_run`` + ``train_state/``), sample grids, a loss plot and
``log.jsonl``; ``ganrt train`` is its command line.
"""

from __future__ import annotations

from typing import Any

from ganrt.train.options import DATA_KIND, FAMILIES, TrainError, defaults, lr_factor


def __getattr__(name: str) -> Any:
    # The training loop imports torch; load it on first use so `ganrt --help` and the CLI parsers stay fast.
    if name == "train":
        from ganrt.train.loop import train

        return train
    raise AttributeError(f"module 'ganrt.train' has no attribute {name!r}")


__all__ = ["DATA_KIND", "FAMILIES", "TrainError", "defaults", "lr_factor", "train"]
