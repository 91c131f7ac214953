"""Tiny trained models of every family behind one ``ganrt serve``, for the web page and its endpoints.

Each model is trained for a few seconds with ``ganrt.train`` on a built-in dataset and, where a user would,
exported with ``ganrt.export`` (parity-gated): a Pix2Pix U-Net with dynamic height/width (other sizes are
padded), a CycleGAN ResNet with a fixed 32x32 input (other sizes are resized), a VAE run directory (decoder
and encoder), the same VAE's decoder alone, a DCGAN, a class-conditional DCGAN and the VAE's encoder alone.
The references the page must match are the same files loaded in this process with ``ganrt.load``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import ServerProcess

# The server's limits: small enough that the tests can exceed them with small files.
MAX_PIXELS = 512 * 512


def _train_and_export(root: Path) -> dict[str, Path]:
    import torch

    from ganrt.export import export
    from ganrt.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only adds contention on a shared 2-core machine

    def run(family: str, name: str, steps: int, **options) -> Path:
        # one checkpoint (and loss plot) at the end: plots every few steps would cost more than the training
        return train(
            family,
            out=root / name,
            steps=steps,
            sample_every=steps,
            device="cpu",
            seed=0,
            progress=False,
            **options,
        )

    try:
        pix2pix = run(
            "pix2pix",
            "pix2pix",
            30,
            data="builtin:edges2photos",
            image_size=32,
            ngf=8,
            ndf=8,
            batch_size=4,
            lr=2e-3,
            norm="none",
            lambda_l1=1000.0,
            dropout=False,
        )
        cyclegan = run(
            "cyclegan",
            "cyclegan",
            6,
            data="builtin:edges2photos",
            image_size=32,
            ngf=8,
            ndf=8,
            netG="resnet_6blocks",
        )
        vae = run(
            "vae",
            "vae",
            120,
            data="builtin:faces",
            image_size=16,
            ngf=8,
            latent_dim=8,
            batch_size=16,
            lr=2e-3,
        )
        dcgan = run(
            "dcgan",
            "dcgan",
            30,
            data="builtin:digits",
            image_size=16,
            ngf=8,
            ndf=8,
            latent_dim=8,
            batch_size=16,
        )
        cgan = run(
            "dcgan",
            "cgan",
            120,
            data="builtin:digits",
            image_size=16,
            ngf=16,
            ndf=16,
            latent_dim=16,
            batch_size=32,
            lr=1e-3,
            conditional=True,
        )
    finally:
        torch.set_num_threads(threads)

    def onnx(run: Path, name: str, **kwargs) -> Path:
        return Path(export(run, output=root / name, progress=False, parity_samples=1, **kwargs).path)

    return {
        "pix2pix": onnx(pix2pix, "pix2pix.onnx", height=(32, 32, 128), width=(32, 32, 128)),
        "cyclegan": onnx(cyclegan, "cyclegan.onnx"),
        "vae": vae,
        "vae_decoder": onnx(vae, "vae_decoder.onnx", part="decoder"),
        "dcgan": onnx(dcgan, "dcgan.onnx"),
        "cgan": onnx(cgan, "cgan.onnx"),
        "vae_encoder": onnx(vae, "vae_encoder.onnx", part="encoder"),
    }


@pytest.fixture(scope="session")
def ui_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{served name: artifact path}, in the order the page lists them."""
    return _train_and_export(tmp_path_factory.mktemp("ui_models"))


@pytest.fixture(scope="session")
def ui_reference(ui_models: dict[str, Path]):
    """The served artifacts loaded in this process: what the page's pixels must equal."""
    import ganrt

    models = {name: ganrt.load(path) for name, path in ui_models.items()}
    yield models
    for model in models.values():
        model.close()


@pytest.fixture(scope="session")
def ui_server(ui_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """``ganrt serve`` with every model, on loopback, with a small pixel limit."""
    proc = ServerProcess(
        [*(f"{name}={path}" for name, path in ui_models.items()), "--max-pixels", str(MAX_PIXELS)],
        tmp=tmp_path_factory.mktemp("ui_server"),
    )
    yield proc
    status = proc.stop()
    assert status == 0, f"ganrt serve exited with {status}:\n{proc.log()}"


def png_bytes(image: np.ndarray) -> bytes:
    """PNG of uint8 (H, W, 3) or (H, W, 1)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes, channels: int) -> np.ndarray:
    """uint8 (H, W, channels) from PNG bytes (RGBA canvases and gray PNGs alike)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    return np.array(image.convert("L" if channels == 1 else "RGB")).reshape(
        image.height, image.width, channels
    )


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo crop of an awkward size (40x52: not a multiple of 32, not the native 32x32)."""
    from ganrt.data import sample_images

    return np.ascontiguousarray(sample_images(64, 1)[0][:40, :52])


@pytest.fixture(scope="session")
def faces() -> list[np.ndarray]:
    """Two held-out faces, uint8 (25, 25, 1), unlike the bundled examples."""
    from ganrt.data import fixed_batch, open_dataset, to_uint8

    data = open_dataset(
        "builtin:faces", kind="folder", split="test", image_size=25, augment=False, channels=1
    )
    batch = to_uint8(fixed_batch(data, 10)["image"])
    return [batch[8], batch[9]]
