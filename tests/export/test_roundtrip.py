"""Export round trips for every family and precision, checked independently of the exporter's own gate:
ONNX Runtime against the stock-PyTorch network (``fused=False``) at batch 1 and 3, metadata, I/O and the fp16
precision placement."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ganrt.data import sample_images
from ganrt.export import ArtifactMetadata, ExportResult, io_names
from ganrt.export.precision import policy_violations
from ganrt.export.recipe import load_recipe
from ganrt.models import Run
from ganrt.ops import reparameterize_ref

KEYS = ("pix2pix", "cyclegan", "vae_decoder", "vae_encoder", "dcgan", "cgan")
# What each case's artifact must say about itself (family, task, in/out channels, image_size, multiple,
# latent_dim, num_classes).
EXPECTED = {
    "pix2pix": ("pix2pix", "translate", 3, 3, 32, 32, 0, 0),
    "cyclegan": ("cyclegan", "translate", 1, 3, 16, 4, 0, 0),
    "vae_decoder": ("vae", "sample", 3, 3, 16, 1, 8, 0),
    "vae_encoder": ("vae", "encode", 3, 3, 16, 16, 8, 0),
    "dcgan": ("dcgan", "sample", 3, 3, 16, 1, 16, 0),
    "cgan": ("dcgan", "sample", 3, 3, 16, 1, 16, 4),
}
NET = {
    "pix2pix": "G",
    "cyclegan": "G_B",
    "vae_decoder": "VAE",
    "vae_encoder": "VAE",
    "dcgan": "G",
    "cgan": "G",
}


def _inputs(md: ArtifactMetadata, n: int, seed: int) -> dict[str, np.ndarray]:
    """Real photos in [-1, 1] for image inputs; seeded normal latents; labels 0..n-1 mod num_classes."""
    gen = torch.Generator().manual_seed(seed)
    feeds: dict[str, np.ndarray] = {}
    names, _ = io_names(md.task, md.num_classes)
    for name in names:
        if name == "image":
            photos = sample_images(md.image_size, n + seed, channels=md.in_channels)[seed:]
            feeds[name] = (photos.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0).copy()
        elif name == "label":
            feeds[name] = np.arange(n, dtype=np.int64) % md.num_classes
        else:
            feeds[name] = torch.randn(n, md.latent_dim, generator=gen).numpy()
    return feeds


def _reference(run_dir: Path, key: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stock-PyTorch network's outputs, computed without the exporter's code."""
    net = Run.load(run_dir).net(NET[key], fused=False)
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.inference_mode():
        if key == "vae_encoder":
            mu, logvar = net.encode(t["image"])
            return {
                "mu": mu.numpy(),
                "logvar": logvar.numpy(),
                "z": reparameterize_ref(mu, logvar, t["eps"]).numpy(),
            }
        if key == "vae_decoder":
            return {"image": net.decode(t["z"]).numpy()}
        if key in ("dcgan", "cgan"):
            return {"image": net(t["z"], t.get("label")).numpy()}
        return {"output": net(t["image"]).numpy()}


def _psnr(ref: np.ndarray, got: np.ndarray, peak: float) -> float:
    mse = float(np.mean((ref.astype(np.float64) - got) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("key", KEYS)
def test_roundtrip_matches_pytorch_at_batch_1_and_3(
    key: str, precision: str, exported: Callable[[str, str], ExportResult], run_dir: Callable[[str], Path]
) -> None:
    result = exported(key, precision)
    assert result.path.is_file() and result.files == [result.path]
    assert result.fused, f"the fused-op translation path was not used: {result.notes}"
    assert all(row.passed for row in result.parity)
    limits = load_recipe(None, EXPECTED[key][0]).thresholds[precision]
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        feeds = _inputs(result.metadata, n, seed=n)
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
        ref = _reference(run_dir(key), key, feeds)
        assert sorted(got) == sorted(ref)
        for name, expected in ref.items():
            assert got[name].shape == expected.shape and got[name].dtype == np.float32
            diff = np.abs(got[name].astype(np.float64) - expected)
            peak = 2.0 if expected.ndim == 4 else float(expected.max() - expected.min())
            if "max_abs" in limits:
                assert diff.max() <= limits["max_abs"], f"{name} at batch {n}: max abs {diff.max():.3g}"
            if "psnr" in limits:
                db = _psnr(expected, got[name], peak)
                assert db >= limits["psnr"], f"{name} at batch {n}: PSNR {db:.1f} dB"


@pytest.mark.parametrize("key", KEYS)
def test_metadata_is_complete(
    key: str, exported: Callable[[str, str], ExportResult], run_dir: Callable[[str], Path]
) -> None:
    result = exported(key, "fp32")
    model = onnx.load(str(result.path))
    props = {p.key: p.value for p in model.metadata_props}
    for field in dataclasses.fields(ArtifactMetadata):
        assert f"ganrt.{field.name}" in props, f"metadata lacks ganrt.{field.name}"
    md = ArtifactMetadata.from_props(props)
    assert md == result.metadata
    family, task, cin, cout, size, multiple, latent, classes = EXPECTED[key]
    assert (md.family, md.task, md.in_channels, md.out_channels) == (family, task, cin, cout)
    assert (md.image_size, md.multiple, md.latent_dim, md.num_classes) == (size, multiple, latent, classes)
    assert md.precision == "fp32" and md.layout == "NCHW" and md.value_range == (-1.0, 1.0)
    assert md.config_hash == Run.load(run_dir(key)).config_hash()
    assert md.ganrt_version


@pytest.mark.parametrize("key", KEYS)
def test_graph_io_names_and_dynamic_batch(key: str, exported: Callable[[str, str], ExportResult]) -> None:
    result = exported(key, "fp32")
    model = onnx.load(str(result.path))
    md = result.metadata
    names_in, names_out = io_names(md.task, md.num_classes)
    assert [i.name for i in model.graph.input] == list(names_in)
    assert [o.name for o in model.graph.output] == list(names_out)
    for vi in (*model.graph.input, *model.graph.output):
        assert vi.type.tensor_type.shape.dim[0].dim_param == "batch", vi.name
        expected = onnx.TensorProto.INT64 if vi.name == "label" else onnx.TensorProto.FLOAT
        assert vi.type.tensor_type.elem_type == expected, vi.name
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
    path = result.path
    assert [p.name for p in path.parent.iterdir()] == [path.name], "a single self-contained file"


@pytest.mark.parametrize("key", ["pix2pix", "cyclegan", "vae_encoder", "cgan"])
def test_fp16_places_convs_in_fp16_and_norm_in_fp32(
    key: str, exported: Callable[[str, str], ExportResult]
) -> None:
    model = onnx.load(str(exported(key, "fp16").path))
    assert policy_violations(model) == []
    inits = {t.name: t.data_type for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert convs and all(inits[n.input[1]] == onnx.TensorProto.FLOAT16 for n in convs)
    for vi in (*model.graph.input, *model.graph.output):
        assert vi.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64)
    assert any(n.op_type == "InstanceNormalization" for n in model.graph.node)
    assert exported(key, "fp16").metadata.precision == "fp16"
