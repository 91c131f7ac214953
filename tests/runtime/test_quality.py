"""ganrt's default (``ganrt.load`` with every choice left to it) against the fp32 PyTorch model, for every
family on real bundled images: at least 40 dB PSNR, whichever backend and precision the selection picked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import ganrt
from ganrt.data import sample_images
from ganrt.utils import psnr
from tests.export.conftest import CASES
from tests.tolerances import BF16_PSNR_DB


def _reference(run: Path, key: str) -> ganrt.runtime.Model:
    """The run directory on the torch backend in fp32, as the same part the export holds."""
    options = CASES[key][3]
    net = "G_B" if options.get("direction") == "BtoA" else None
    return ganrt.load(run, **({"net": net} if net else {}))


@pytest.mark.parametrize("key", list(CASES))
def test_the_default_stays_within_40_db_of_pytorch(key: str, family_artifacts: Callable) -> None:
    run, path = family_artifacts(key)
    with ganrt.load(path) as model, _reference(run, key) as reference:
        md = model.metadata
        chose = f"{model.backend} {model.info()['precision']} ({model.info()['selected']})"
        if md.task == "translate":
            images = sample_images(md.image_size, 3, channels=md.in_channels)
            pairs = {"images": (model.translate(images), reference.translate(images), 255.0)}
        elif md.task == "sample":
            pairs = {"images": (model.sample(3, seed=7), reference.sample(3, seed=7), 255.0)}
        else:
            images = sample_images(md.image_size, 3, channels=md.in_channels)
            got, want = model.encode(images), reference.encode(images)
            pairs = {
                name: (g, w, float(np.ptp(w))) for name, g, w in zip(("mu", "logvar"), got, want, strict=True)
            }
    for name, (got, want, peak) in pairs.items():
        assert got.shape == want.shape, name
        db = psnr(want, got, peak)
        assert db >= BF16_PSNR_DB, f"{key} {name}: {db:.1f} dB with {chose}"
