"""Bad inputs to the Python API (``ganrt.load`` and the task objects, ``export``, ``train``, ``ServeConfig``),
one row each: the exception type, a message naming the problem, and no user file changed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ganrt
from ganrt.export import ExportError, export
from ganrt.train import TrainError, train
from tests.robustness.conftest import LATENT, png_bomb, snapshot

NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    call: Callable[[dict[str, Any], Path], Any]
    error: type[BaseException]
    match: str


def _z(n: int = 2, fill: float | None = None) -> np.ndarray:
    z = np.zeros((n, LATENT), np.float32)
    if fill is not None:
        z[0, 0] = fill
    return z


def _image(n: int = 1, size: int = 32) -> np.ndarray:
    return np.zeros((n, size, size, 3), np.uint8)


def _float_images(fill: float | None = None, n: int = 1) -> torch.Tensor:
    x = torch.zeros((n, 3, 32, 32))
    if fill is not None and n:
        x[0, 1, 2, 3] = fill
    return x


ROWS: list[Row] = [
    # empty batches: every path that can see one
    Row(
        "translate-empty-numpy-batch",
        lambda m, t: m["translator"].translate(_image(0)),
        ValueError,
        r"an empty batch \(0 images",
    ),
    Row(
        "translate-empty-torch-batch",
        lambda m, t: m["translator"].translate(torch.zeros((0, 32, 32, 3), dtype=torch.uint8)),
        ValueError,
        r"an empty batch \(0 images",
    ),
    Row(
        "translate-empty-float-batch",
        lambda m, t: m["translator"].translate(_float_images(n=0)),
        ValueError,
        r"an empty batch \(0 images",
    ),
    Row("translate-empty-list", lambda m, t: m["translator"].translate([]), ValueError, r"got an empty list"),
    Row(
        "translate-zero-width",
        lambda m, t: m["translator"].translate(np.zeros((32, 0, 3), np.uint8)),
        ValueError,
        r"empty image of size 32x0",
    ),
    Row(
        "decode-empty-latents",
        lambda m, t: m["sampler"].decode(_z(0)),
        ValueError,
        r"an empty batch of latents",
    ),
    Row(
        "infer-empty-batch",
        lambda m, t: m["sampler"].infer({"z": _z(0)}),
        ValueError,
        r"input 'z' dimension 0 must be >= 1",
    ),
    # non-finite inputs and latents
    Row(
        "translate-nan-float",
        lambda m, t: m["translator"].translate(_float_images(NAN)),
        ValueError,
        r"images holds 1 NaN or infinite value",
    ),
    Row(
        "translate-inf-float",
        lambda m, t: m["translator"].translate(_float_images(float("inf"))),
        ValueError,
        r"images holds 1 NaN or infinite value",
    ),
    Row(
        "decode-nan-latent",
        lambda m, t: m["sampler"].decode(_z(fill=NAN)),
        ValueError,
        r"z: latents holds 1 NaN or infinite value",
    ),
    Row(
        "decode-inf-latent-torch",
        lambda m, t: m["sampler"].decode(torch.from_numpy(_z(fill=-float("inf")))),
        ValueError,
        r"z: latents holds 1 NaN or infinite value",
    ),
    Row(
        "interpolate-nan-end",
        lambda m, t: m["sampler"].interpolate(0, _z(1, NAN)[0]),
        ValueError,
        r"b: latents holds 1 NaN",
    ),
    Row(
        "infer-nan",
        lambda m, t: m["sampler"].infer({"z": _z(fill=NAN)}),
        ValueError,
        r"input 'z' holds 1 NaN or infinite value",
    ),
    Row(
        "infer-image-inf",
        lambda m, t: m["translator"].infer({"image": _float_images(float("inf")).numpy()}),
        ValueError,
        r"input 'image' holds 1 NaN or infinite value",
    ),
    Row(
        "check-feeds-nan",
        lambda m, t: m["translator"].check_feeds({"image": _float_images(NAN).numpy()}),
        ValueError,
        r"input 'image' holds 1 NaN",
    ),
    # capped counts
    Row(
        "sample-huge",
        lambda m, t: m["sampler"].sample(100_000_000),
        ValueError,
        r"n must be at most 65536 per call",
    ),
    Row(
        "interpolate-huge-steps",
        lambda m, t: m["sampler"].interpolate(0, 1, steps=10**9),
        ValueError,
        r"steps must be at most 65536 per call",
    ),
    Row(
        "interpolate-one-step",
        lambda m, t: m["sampler"].interpolate(0, 1, steps=1),
        ValueError,
        r"steps must be an integer >= 2",
    ),
    Row("sample-float-n", lambda m, t: m["sampler"].sample(2.5), ValueError, r"n must be a positive integer"),
    Row(
        "sample-zero", lambda m, t: m["sampler"].sample(0), ValueError, r"n must be a positive integer, got 0"
    ),
    Row(
        "seed-negative", lambda m, t: m["sampler"].sample(1, seed=-1), ValueError, r"seed must be an integer"
    ),
    # wrong kinds of input
    Row(
        "translate-float-numpy",
        lambda m, t: m["translator"].translate(np.zeros((32, 32, 3), np.float32)),
        TypeError,
        r"numpy images must be uint8",
    ),
    Row(
        "translate-wrong-channels",
        lambda m, t: m["translator"].translate(np.zeros((32, 32, 4), np.uint8)),
        ValueError,
        r"expected \(H, W, 3\)",
    ),
    Row(
        "decode-int-latents",
        lambda m, t: m["sampler"].decode(np.zeros((1, LATENT), np.int64)),
        TypeError,
        r"latents must be floating point",
    ),
    Row(
        "decode-wrong-latent-size",
        lambda m, t: m["sampler"].decode(np.zeros((1, 3), np.float32)),
        ValueError,
        rf"latents must be \(N, {LATENT}\)",
    ),
    Row(
        "translate-file-bomb",
        lambda m, t: m["translator"].translate_file(png_bomb(t / "bomb.png"), t / "o.png"),
        ValueError,
        r"more than the limit of 16777216",
    ),
    Row(
        "translate-file-missing",
        lambda m, t: m["translator"].translate_file(t / "none.png", t / "o.png"),
        FileNotFoundError,
        r"no such image file",
    ),
    # loading
    Row(
        "load-threads-huge",
        lambda m, t: ganrt.load(m["paths"]["pix2pix_onnx"], threads=100_000),
        ValueError,
        r"threads must be at most \d+ \(the logical CPUs",
    ),
    Row(
        "load-threads-zero",
        lambda m, t: ganrt.load(m["paths"]["pix2pix_onnx"], threads=0),
        ValueError,
        r"threads must be a positive integer",
    ),
    Row(
        "load-empty-file",
        lambda m, t: (t / "e.onnx").write_bytes(b"") and None or ganrt.load(t / "e.onnx"),
        ValueError,
        r"not a loadable ONNX model",
    ),
    # export, train, serve configuration
    Row(
        "export-output-folder",
        lambda m, t: export(m["paths"]["pix2pix_run"], output=t, progress=False),
        ExportError,
        r"is a folder; give the artifact's file path",
    ),
    Row(
        "export-force-without-repo",
        lambda m, t: export(m["paths"]["pix2pix_run"], force=True, progress=False),
        ExportError,
        r"force= .* needs repo=",
    ),
    Row(
        "train-nan-lr",
        lambda m, t: train("dcgan", data="builtin:digits", out=t / "r", steps=1, lr=NAN),
        TrainError,
        r"lr must be a finite number, got nan",
    ),
    Row(
        "train-inf-lambda",
        lambda m, t: train(
            "pix2pix", data="builtin:edges2photos", out=t / "r", steps=1, lambda_l1=float("inf")
        ),
        TrainError,
        r"lambda_l1 must be a finite number, got inf",
    ),
    Row(
        "serve-config-nan-timeout",
        lambda m, t: _serve_config(timeout_s=NAN),
        ValueError,
        r"timeout_s must be a finite number > 0, got nan",
    ),
    Row(
        "serve-config-inf-delay",
        lambda m, t: _serve_config(max_delay_ms=float("inf")),
        ValueError,
        r"max_delay_ms must be a finite number >= 0, got inf",
    ),
    Row(
        "serve-config-zero-budget",
        lambda m, t: _serve_config(max_inflight_bytes=0),
        ValueError,
        r"max_inflight_bytes must be >= 1, got 0",
    ),
]


def _serve_config(**kwargs: Any) -> Any:
    from ganrt.serve.config import ServeConfig

    return ServeConfig(**kwargs)


@pytest.fixture(scope="module")
def loaded(models: dict[str, Path]) -> dict[str, Any]:
    translator = ganrt.load(models["pix2pix_onnx"])
    sampler = ganrt.load(models["dcgan_onnx"])
    yield {"translator": translator, "sampler": sampler, "paths": models}
    translator.close()
    sampler.close()


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_api_bad_input(row: Row, loaded: dict[str, Any], models: dict[str, Path], tmp_path: Path) -> None:
    before = snapshot(models["root"])
    with pytest.raises(row.error, match=row.match):
        row.call(loaded, tmp_path)
    assert snapshot(models["root"]) == before
    assert not [p for p in tmp_path.rglob("*") if p.suffix == ".tmp"]


def test_encode_float_tensor_says_it_takes_uint8(tmp_path: Path) -> None:
    """The refactor's fix, verified: no self-contradicting message for a float tensor."""
    vae_run = _vae_run(tmp_path / "vae")
    with ganrt.load(vae_run) as vae:
        with pytest.raises(TypeError, match=r"encode\(\) takes uint8 images .*got a float tensor"):
            vae.encode(torch.zeros((1, 3, 16, 16)))


def _vae_run(path: Path) -> Path:
    from ganrt.models import build_net, save_run

    torch.manual_seed(0)
    net = build_net({"arch": "vae", "image_size": 16, "latent_dim": 4, "base_channels": 4})
    return save_run(
        path,
        {
            "family": "vae",
            "image_size": 16,
            "in_channels": 3,
            "out_channels": 3,
            "nets": {"VAE": dict(net.spec)},
        },
        {"VAE": net},
    )
