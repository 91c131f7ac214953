"""One model, three descriptions: a run directory (torch backend), its exported ONNX and the sidecar of a
TensorRT engine built from it must agree on what the model is, for every family and part.

The sidecar half needs no TensorRT: the exporter's writer and the loader's reader are exercised together on
CPU (the plan bytes are not an engine; only the metadata path is under test).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import pytest

import ganrt
from ganrt.artifact import ArtifactMetadata, read_engine_sidecar, sidecar_path
from ganrt.backends.torch import TorchRunner
from ganrt.errors import BackendUnavailableError, MetadataError
from ganrt.export import ExportResult
from ganrt.export.tensorrt import EngineBuild, profile_shapes, write_engine
from ganrt.export.trace import plan_graph, select_part
from ganrt.models import Run
from ganrt.runtime.metadata import resolve
from tests.export.conftest import CASES

# What every description must agree on (precision, hashes and versions are provenance, compared separately).
FIELDS = (
    "family",
    "task",
    "in_channels",
    "out_channels",
    "image_size",
    "multiple",
    "latent_dim",
    "num_classes",
    "value_range",
)


def _fields(md: ArtifactMetadata | dict) -> dict:
    values = md.describe() if isinstance(md, ArtifactMetadata) else md
    return {k: values[k] for k in FIELDS}


def _run_metadata(run_dir: Path, key: str) -> dict:
    """The run directory's description of the part ``key`` exports: through ``ganrt.load(...).info()`` for the
    parts ``ganrt.load`` opens as its primary model, through the torch runner for a VAE's encoder half."""
    options = CASES[key][3]
    if options.get("part") == "encoder":
        runner = TorchRunner.load(run_dir, part="encoder")
        try:
            return _fields(ArtifactMetadata.from_props(runner.metadata_props()))
        finally:
            runner.close()
    net = {"BtoA": "G_B"}.get(options.get("direction", ""))
    with ganrt.load(run_dir, **({"net": net} if net else {})) as model:
        return _fields(model.info())


def _fake_engine(result: ExportResult, run_dir: Path, key: str, where: Path) -> Path:
    """An engine file written by the exporter's own writer: its sidecar is real, the plan bytes are not."""
    run = Run.load(run_dir)
    options = CASES[key][3]
    part = select_part(run, options.get("part"), options.get("direction"))
    plan = plan_graph(run, run.net(part.net), part=part, batch=(1, 2, 4), height=None, width=None)
    build = EngineBuild(plan=b"not a TensorRT plan", tensorrt_version="10.7.0", profile=profile_shapes(plan),
                        seconds=0.0)  # fmt: skip
    path = where / f"{key}.engine"
    assert write_engine(path, result.metadata, build) == [path, sidecar_path(path)]
    return path


@pytest.mark.parametrize("key", list(CASES))
def test_run_onnx_and_engine_sidecar_agree(
    key: str, run_dir: Callable[[str], Path], exported: Callable[[str, str], ExportResult], tmp_path: Path
) -> None:
    result = exported(key, "fp32")
    from_run = _run_metadata(run_dir(key), key)
    with ganrt.load(result.path) as model:
        from_onnx = model.info()
        inputs, outputs = model.inputs, model.outputs
    assert _fields(from_onnx) == from_run
    assert from_onnx["config_hash"] == Run.load(run_dir(key)).config_hash()

    engine = _fake_engine(result, run_dir(key), key, tmp_path)
    sidecar = read_engine_sidecar(engine)
    assert sidecar is not None and sidecar.path == sidecar_path(engine)
    assert ArtifactMetadata.from_props(sidecar.props) == result.metadata
    # An engine built from this ONNX exposes the same tensors; the loader resolves the sidecar against them.
    from_engine, _ = resolve(sidecar.props, inputs, outputs, {}, source=str(engine))
    assert _fields(from_engine) == from_run
    assert sidecar.tensorrt_version == "10.7.0"
    assert all(len(shapes) == 3 for shapes in sidecar.profile.values())


def test_dcgan_run_reports_image_channels_not_latent_size(run_dir: Callable[[str], Path]) -> None:
    """The bug that motivated one derivation: a DCGAN's generator has ``in_channels == latent_dim``."""
    with ganrt.load(run_dir("dcgan")) as model:
        info = model.info()
    assert info["latent_dim"] == 16 and info["in_channels"] == info["out_channels"] == 3


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_loading_an_exported_engine_without_tensorrt_names_tensorrt(
    run_dir: Callable[[str], Path], exported: Callable[[str, str], ExportResult], tmp_path: Path
) -> None:
    engine = _fake_engine(exported("pix2pix", "fp32"), run_dir("pix2pix"), "pix2pix", tmp_path)
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        ganrt.load(engine)


def test_sidecar_reader_rejects_what_it_cannot_read(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    assert read_engine_sidecar(engine) is None
    sidecar = sidecar_path(engine)
    for text, match in (
        ("{not json", "unreadable engine metadata"),
        ("[1, 2]", "must be a JSON object"),
        ('{"ganrt.family": 3}', "flat JSON object of strings"),
        ('{"format": "ganrt-engine/9", "metadata": {}}', "unknown engine metadata format"),
        ('{"format": "ganrt-engine/1", "metadata": {"ganrt.family": 1}}', "'metadata' must be a JSON object"),
        ('{"format": "ganrt-engine/1", "metadata": {}, "profile": {"z": [[1]]}}', "'profile' must map"),
    ):
        sidecar.write_text(text)
        with pytest.raises(MetadataError, match=match):
            read_engine_sidecar(engine)
    # A hand-written flat sidecar (an engine built by trtexec) is read as string metadata.
    md = ArtifactMetadata(family="dcgan", task="sample", in_channels=3, out_channels=3, image_size=16,
                          multiple=1, latent_dim=16)  # fmt: skip
    sidecar.write_text(json.dumps(md.to_props()))
    found = read_engine_sidecar(engine)
    assert found is not None and ArtifactMetadata.from_props(found.props) == md
