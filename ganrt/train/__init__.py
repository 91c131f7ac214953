"""ganrt.train: train Pix2Pix, CycleGAN, VAE and DCGAN models into run directories.

``train(family, data=..., out=..., steps=...)`` runs the reference training recipe with ganrt's fused
kernels, writing checkpoints (``ganrt.models.save_run`` + ``train_state/``), sample grids, a loss plot and
``log.jsonl``; ``ganrt train`` is its command line.
"""

from __future__ import annotations

from ganrt.train.loop import train
from ganrt.train.options import DATA_KIND, FAMILIES, TrainError, defaults, lr_factor

__all__ = ["DATA_KIND", "FAMILIES", "TrainError", "defaults", "lr_factor", "train"]
