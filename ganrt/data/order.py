"""Deterministic training order: batch ``step`` is a pure function of ``(seed, step)``.

Sample position ``p = step * batch_size + j`` falls in epoch ``p // len``; each epoch visits the dataset in its
own permutation drawn from ``(seed, epoch)``, and the augmentation of position ``p`` is drawn from
``(seed, p)``. Nothing carries over between steps, so a resumed run sees exactly the data an uninterrupted
run would, without checkpointing any loader state.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ganrt.data.datasets import ImageDataset, Sample

# Distinct stream tags keep order, augmentation (and the trainer's own streams) independent for one seed.
_ORDER_STREAM = 0x0D
_AUGMENT_STREAM = 0xA7


@functools.lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng((seed, _ORDER_STREAM, epoch)).permutation(n)


def sample_positions(n: int, *, step: int, batch_size: int, seed: int) -> list[tuple[int, int]]:
    """``(dataset index, sample position)`` for each item of batch ``step``."""
    out = []
    for p in range(step * batch_size, (step + 1) * batch_size):
        epoch, k = divmod(p, n)
        out.append((int(_permutation(n, seed, epoch)[k]), p))
    return out


def collate(samples: list[Sample]) -> Sample:
    """Stack per-sample tensors: images → (N, C, H, W) float32, labels → (N,) int64."""
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def training_batch(dataset: ImageDataset, *, step: int, batch_size: int, seed: int) -> Sample:
    """Batch number ``step`` (0-based) of a run seeded with ``seed``; see the module docstring."""
    if len(dataset) == 0:
        raise ValueError("cannot draw batches from an empty dataset")
    return collate([dataset.sample(i, np.random.default_rng((seed, _AUGMENT_STREAM, p)))
                    for i, p in sample_positions(len(dataset), step=step, batch_size=batch_size, seed=seed)])


def fixed_batch(dataset: ImageDataset, n: int) -> Sample:
    """The first ``min(n, len)`` samples without randomness (centre crop, no flip): stable inputs for sample
    grids and evaluations."""
    return collate([dataset.sample(i, None) for i in range(min(n, len(dataset)))])
