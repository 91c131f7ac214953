"""Run directories of tiny, randomly initialized networks for every exportable family, and a cache of their
exports so that several tests can inspect one export (tracing dominates these tests' runtime)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ganrt.export import ExportResult, export
from ganrt.models import build_net, save_run

# Export cases: key -> (family, run config extras, {net name: spec}, export kwargs).
SMALL = {"ngf": 8}
CASES: dict[str, tuple[str, dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]] = {
    "pix2pix": (
        "pix2pix",
        {"image_size": 32, "in_channels": 3, "out_channels": 3},
        {"G": {"arch": "unet_32", **SMALL}, "D": {"arch": "patchgan", "in_channels": 6, "ndf": 8}},
        {},
    ),
    "cyclegan": (
        "cyclegan",
        {"image_size": 16, "in_channels": 3, "out_channels": 1},
        {
            "G_A": {"arch": "resnet_2blocks", "in_channels": 3, "out_channels": 1, **SMALL},
            "G_B": {"arch": "resnet_2blocks", "in_channels": 1, "out_channels": 3, **SMALL},
            "D_A": {"arch": "patchgan", "in_channels": 3, "ndf": 8},
            "D_B": {"arch": "patchgan", "in_channels": 1, "ndf": 8},
        },
        {"direction": "BtoA"},
    ),
    "vae_decoder": (
        "vae",
        {"image_size": 16, "in_channels": 3, "out_channels": 3},
        {"VAE": {"arch": "vae", "image_size": 16, "channels": 3, "latent_dim": 8, "base_channels": 8}},
        {"part": "decoder"},
    ),
    "vae_encoder": (
        "vae",
        {"image_size": 16, "in_channels": 3, "out_channels": 3},
        {"VAE": {"arch": "vae", "image_size": 16, "channels": 3, "latent_dim": 8, "base_channels": 8}},
        {"part": "encoder"},
    ),
    "dcgan": (
        "dcgan",
        {"image_size": 16, "in_channels": 3, "out_channels": 3},
        {
            "G": {"arch": "dcgan_g", "latent_dim": 16, "channels": 3, "image_size": 16, **SMALL},
            "D": {"arch": "dcgan_d", "channels": 3, "image_size": 16, "ndf": 8},
        },
        {},
    ),
    "cgan": (
        "dcgan",
        {"image_size": 16, "in_channels": 3, "out_channels": 3},
        {
            "G": {
                "arch": "dcgan_g",
                "latent_dim": 16,
                "channels": 3,
                "image_size": 16,
                "num_classes": 4,
                **SMALL,
            },
            "D": {"arch": "dcgan_d", "channels": 3, "image_size": 16, "ndf": 8, "num_classes": 4},
        },
        {},
    ),
}


def make_run(path: Path, key: str, seed: int = 0) -> Path:
    """Write a run directory of case ``key`` with freshly initialized (seeded) networks."""
    family, extras, specs, _ = CASES[key]
    torch.manual_seed(seed)
    nets = {name: build_net(spec) for name, spec in specs.items()}
    return save_run(path, {"family": family, **extras, "data": {"spec": "builtin:test"}}, nets)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """key -> run directory of that case (created once per session)."""
    made: dict[str, Path] = {}

    def get(key: str) -> Path:
        if key not in made:
            made[key] = make_run(tmp_path_factory.mktemp(f"run-{key}"), key)
        return made[key]

    return get


@pytest.fixture(scope="session")
def exported(
    run_dir: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], ExportResult]:
    """(key, precision) -> the ONNX export of that case (exported once per session)."""
    done: dict[tuple[str, str], ExportResult] = {}

    def get(key: str, precision: str) -> ExportResult:
        if (key, precision) not in done:
            out = tmp_path_factory.mktemp(f"onnx-{key}-{precision}") / f"{key}.onnx"
            done[key, precision] = export(
                run_dir(key), output=out, precision=precision, progress=False, **CASES[key][3]
            )
        return done[key, precision]

    return get


@pytest.fixture(scope="session")
def new_run() -> Callable[..., Path]:
    """:func:`make_run` for tests that need a private run directory (to corrupt or overwrite)."""
    return make_run
