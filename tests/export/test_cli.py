"""``ganrt export`` end to end: progress display, summary table, default output path, dynamic H/W."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
import torch

from ganrt.cli import main
from ganrt.models import Run
from tests.tolerances import ONNX, assert_close


def test_export_cli_dynamic_hw(
    new_run: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = new_run(tmp_path / "run", "cyclegan")
    code = main(
        [
            "export",
            str(run),
            "--direction",
            "BtoA",
            "--height",
            "16:24:32",
            "--width",
            "8:16:32",
            "--lint-tensorrt",
            "--samples",
            "2",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    for stage in (
        "load run",
        "export cyclegan_BtoA to ONNX",
        "parity gate on 2 inputs",
        "TensorRT lint",
        "write artifact",
    ):
        assert stage in captured.err, stage
    assert "ganrt export: onnx" in captured.out and "passes: 0 errors, 0 warnings" in captured.out

    path = run / "export" / "cyclegan_BtoA.onnx"
    model = onnx.load(str(path))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]

    net = Run.load(run).net("G_B", fused=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    for n, h, w in ((1, 16, 8), (3, 32, 20), (2, 12, 28)):
        x = torch.rand(n, 1, h, w, generator=gen) * 2 - 1
        (got,) = session.run(None, {"image": x.numpy()})
        with torch.inference_mode():
            ref = net(x).numpy()
        assert got.shape == (n, 3, h, w)
        assert_close(torch.from_numpy(got), torch.from_numpy(ref), ONNX, f"N, H, W = {n}, {h}, {w}")


def test_export_cli_rejects_bad_preferred_batch(
    run_dir: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "export",
            str(run_dir("dcgan")),
            "--format",
            "triton",
            "--repo",
            str(tmp_path),
            "--preferred-batch",
            "4,x",
            "-q",
        ]
    )
    assert code == 2
    assert "--preferred-batch must be comma-separated integers" in capsys.readouterr().err
