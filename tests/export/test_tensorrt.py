"""TensorRT engines: profile shapes (pure), the clear error without TensorRT, and real builds where TensorRT
and a GPU exist (marked ``tensorrt``, skipped centrally otherwise)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ganrt.export import ArtifactMetadata, ExportError, export
from ganrt.export.tensorrt import profile_shapes
from ganrt.export.trace import plan_graph, select_part
from ganrt.export.triton import parse_config
from ganrt.models import Run


def test_profile_shapes_follow_the_ranges(run_dir: Callable[[str], Path]) -> None:
    run = Run.load(run_dir("pix2pix"))
    part = select_part(run, None, "AtoB")
    plan = plan_graph(
        run,
        run.net(part.net),
        part=part,
        batch=(1, 2, 4),
        height=(32, 64, 96),
        width=None,
    )
    assert profile_shapes(plan) == {"image": ((1, 3, 32, 32), (2, 3, 64, 32), (4, 3, 96, 32))}

    run = Run.load(run_dir("cgan"))
    plan = plan_graph(
        run,
        run.net("G"),
        part=select_part(run, None, None),
        batch=(1, 8, 16),
        height=None,
        width=None,
    )
    assert profile_shapes(plan) == {"z": ((1, 16), (8, 16), (16, 16)), "label": ((1,), (8,), (16,))}


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_engine_without_tensorrt_is_a_clear_error(run_dir: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "model.engine"
    with pytest.raises(ExportError, match=r"TensorRT is not installed: .*pip install tensorrt"):
        export(run_dir("dcgan"), format="engine", output=out, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_build_and_parity(precision: str, run_dir: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "pix2pix.engine"
    cache = tmp_path / "timing.cache"
    result = export(
        run_dir("pix2pix"),
        format="engine",
        output=out,
        precision=precision,
        batch="1:2:4",
        height="32:32:64",
        timing_cache=cache,
        progress=False,
    )
    assert result.files == [out, tmp_path / "pix2pix.engine.json"]
    assert out.stat().st_size > 0 and cache.stat().st_size > 0
    backends = {row.backend for row in result.parity}
    assert backends == {"onnxruntime", "tensorrt", "tensorrt-vs-onnxruntime"}
    assert all(row.passed for row in result.parity)
    sidecar = json.loads(out.with_name("pix2pix.engine.json").read_text())
    assert ArtifactMetadata.from_props(sidecar) == result.metadata
    assert sidecar["ganrt.profile"]["image"] == [[1, 3, 32, 32], [2, 3, 32, 32], [4, 3, 64, 32]]


@pytest.mark.tensorrt
def test_triton_plan_repository(run_dir: Callable[[str], Path], tmp_path: Path) -> None:
    result = export(
        run_dir("cgan"),
        format="triton",
        repo=tmp_path,
        triton_model="plan",
        batch="1:8:16",
        max_batch=16,
        preferred_batch=(8, 16),
        progress=False,
    )
    config = parse_config((result.path / "config.pbtxt").read_text())
    assert config.platform == "tensorrt_plan" and (result.path / "1" / "model.plan").is_file()
