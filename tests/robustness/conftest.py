"""Real artifacts for the bad-input suite, built once per session through the real pipeline (``save_run``,
``export``, ``train``), and the helpers every table shares: run the real CLI, snapshot the user's files.

Every row of every table asserts three things: the exit code or HTTP status, that the message names the
problem, and that no user file changed (:func:`snapshot` before and after).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

LATENT = 8


def snapshot(*folders: Path) -> dict[str, str]:
    """{path: sha256} of every file below ``folders``: equal before and after = no user file changed (and no
    file appeared, such as an orphan temporary)."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _save_run(path: Path, family: str, nets: dict[str, dict], image_size: int) -> Path:
    from ganrt.models import build_net, save_run

    torch.manual_seed(0)
    modules = {name: build_net(spec) for name, spec in nets.items()}
    config = {
        "family": family,
        "image_size": image_size,
        "in_channels": 3,
        "out_channels": 3,
        "nets": {name: dict(m.spec) for name, m in modules.items()},
    }
    return save_run(path, config, modules)


def nan_translator(path: Path) -> Path:
    """A translator with ganrt metadata that turns finite inputs into NaN (``sqrt(x - 2)`` of x in [-1, 1]):
    what a model with broken weights answers."""
    from ganrt.artifact import ArtifactMetadata

    shape = ["N", 3, "H", "W"]
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["image", "two"], ["shifted"]),
            helper.make_node("Sqrt", ["shifted"], ["output"]),
        ],
        "nan",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        initializer=[two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(model, ArtifactMetadata("pix2pix", "translate", 3, 3, 8, 4).to_props())
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny real models: a pix2pix run + its ONNX export, a DCGAN run + export, a broken (NaN) translator and
    a DCGAN run trained for two steps (with a training checkpoint). Read-only for the tests: rows that corrupt
    something work on copies (:func:`copy_of`)."""
    from ganrt.export import export
    from ganrt.train import train

    root = tmp_path_factory.mktemp("robustness_models")
    out: dict[str, Path] = {"root": root}
    out["pix2pix_run"] = _save_run(
        root / "pix2pix",
        "pix2pix",
        {"G": {"arch": "unet_32", "ngf": 8}, "D": {"arch": "patchgan", "in_channels": 6, "ndf": 8}},
        32,
    )
    out["pix2pix_onnx"] = Path(
        export(
            out["pix2pix_run"],
            output=root / "pix2pix.onnx",
            progress=False,
            parity_samples=1,
            height=(32, 32, 64),
            width=(32, 32, 64),
        ).path
    )
    out["dcgan_run"] = _save_run(
        root / "dcgan",
        "dcgan",
        {
            "G": {"arch": "dcgan_g", "latent_dim": LATENT, "image_size": 16, "ngf": 8},
            "D": {"arch": "dcgan_d", "image_size": 16, "ndf": 8},
        },
        16,
    )
    out["dcgan_onnx"] = Path(
        export(out["dcgan_run"], output=root / "dcgan.onnx", progress=False, parity_samples=1).path
    )
    out["nan_onnx"] = nan_translator(root / "nan.onnx")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets gain nothing from a second thread
    try:
        out["trained"] = train(
            "dcgan",
            data="builtin:digits",
            out=root / "trained",
            steps=2,
            image_size=16,
            ngf=8,
            ndf=8,
            latent_dim=LATENT,
            progress=False,
            sample_every=2,
        )
    finally:
        torch.set_num_threads(threads)
    return out


def copy_of(src: Path, dst: Path) -> Path:
    """A private copy of a model file or run directory to corrupt."""
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def png_bomb(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A valid PNG of a few hundred bytes that declares ``width`` x ``height`` pixels: its IHDR says so, and
    its zlib stream is cut short (a decoder that trusts the header allocates gigabytes first)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(array).save(path)
    return path
