"""Tiny random-weight run directories and their exported artifacts, built once per test session.

Artifacts come from the real pipeline: ``ganrt.models.save_run`` for run directories and
``ganrt.export.export`` (parity-gated) for ONNX. Foreign ONNX models are written with ``onnx.helper``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

IMAGE = 32  # training resolution of the tiny translator (unet_32: multiple 32)


def _save(path: Path, family: str, nets: dict[str, dict], image_size: int, channels: int = 3) -> Path:
    from ganrt.models import build_net, save_run

    torch.manual_seed(0)
    modules = {name: build_net(spec) for name, spec in nets.items()}
    config = {
        "family": family,
        "image_size": image_size,
        "in_channels": channels,
        "out_channels": channels,
        "nets": {name: dict(m.spec) for name, m in modules.items()},
    }
    return save_run(path, config, modules)


def _export(run: Path, output: Path, **kwargs) -> Path:
    from ganrt.export import export

    return Path(export(run, output=output, progress=False, parity_samples=1, **kwargs).path)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run directories and ONNX exports: pix2pix (dynamic H/W), class-conditional DCGAN, VAE (both parts)."""
    root = tmp_path_factory.mktemp("runtime_artifacts")
    out: dict[str, Path] = {}
    out["pix2pix_run"] = _save(
        root / "pix2pix",
        "pix2pix",
        {"G": {"arch": "unet_32", "ngf": 8}, "D": {"arch": "patchgan", "in_channels": 6, "ndf": 8}},
        IMAGE,
    )
    out["pix2pix_onnx"] = _export(
        out["pix2pix_run"], root / "pix2pix.onnx", height=(32, 64, 128), width=(32, 64, 128)
    )
    out["cgan_run"] = _save(
        root / "cgan",
        "dcgan",
        {
            "G": {"arch": "dcgan_g", "latent_dim": 8, "image_size": 16, "ngf": 8, "num_classes": 3},
            "D": {"arch": "dcgan_d", "image_size": 16, "ndf": 8, "num_classes": 3},
        },
        16,
    )
    out["cgan_onnx"] = _export(out["cgan_run"], root / "cgan.onnx")
    out["vae_run"] = _save(
        root / "vae",
        "vae",
        {"VAE": {"arch": "vae", "image_size": 16, "latent_dim": 8, "base_channels": 8}},
        16,
    )
    out["vae_decoder_onnx"] = _export(out["vae_run"], root / "vae_decoder.onnx", part="decoder")
    out["vae_encoder_onnx"] = _export(out["vae_run"], root / "vae_encoder.onnx", part="encoder")
    return out


def _invert_onnx(path: Path, shape: list) -> Path:
    """Someone else's translator without ganrt metadata: ``out = 1 - x``, foreign tensor names."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    node = helper.make_node("Sub", ["one", "input.1"], ["out"])
    graph = helper.make_graph(
        [node],
        "invert",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
        initializer=[one],
    )
    # IR version 10: what ONNX Runtime 1.2x reads (onnx 1.23 would default to a newer IR).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def foreign_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dynamic (N, 3, H, W)."""
    return _invert_onnx(tmp_path_factory.mktemp("foreign") / "invert.onnx", ["N", 3, "H", "W"])


@pytest.fixture(scope="session")
def foreign_static_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fully static (2, 3, 16, 16): exactly two 16x16 images per call."""
    return _invert_onnx(tmp_path_factory.mktemp("foreign") / "invert_static.onnx", [2, 3, 16, 16])


@pytest.fixture
def photo() -> np.ndarray:
    """A real bundled photo crop, uint8 (64, 64, 3)."""
    from ganrt.data import sample_images

    return sample_images(64, 1)[0]
