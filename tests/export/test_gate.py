"""Failure paths: the parity gate rejecting a broken artifact, nothing written on failure, unreadable runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ganrt.cli import main
from ganrt.export import ExportError, ExportResult, ParityError, export, parity
from ganrt.export.trace import GraphPlan, plan_graph, select_part
from ganrt.models import Run

STRICT_FP16 = """\
family = "dcgan"
[parity.fp16]
psnr = 150.0
"""


def _plan(run: Run) -> GraphPlan:
    return plan_graph(
        run,
        run.net("G"),
        part=select_part(run, None, None),
        batch=(1, 1, 8),
        height=None,
        width=None,
    )


def test_gate_rejects_a_broken_artifact(
    exported: Callable[[str, str], ExportResult], run_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    """Corrupt one convolution weight of a good export: the gate must fail on it and pass on the original."""
    good = exported("dcgan", "fp32").path
    model = onnx.load(str(good))
    conv = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
    init = next(t for t in model.graph.initializer if t.name == conv.input[1])
    weights = numpy_helper.to_array(init).copy()
    weights.flat[0] += 0.5
    init.CopyFrom(numpy_helper.from_array(weights, init.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))

    run = Run.load(run_dir("dcgan"))
    plan = _plan(run)
    feeds = parity.parity_inputs(plan, 3)
    reference = parity.run(parity.reference_runner(run.net("G"), plan), feeds)
    thresholds = {"max_abs": 1e-4}
    ok = parity.compare(
        reference,
        parity.run_artifact("onnxruntime", good, feeds),
        thresholds=thresholds,
        image_outputs=plan.image_outputs,
    )
    bad = parity.compare(
        reference,
        parity.run_artifact("onnxruntime", broken, feeds),
        thresholds=thresholds,
        image_outputs=plan.image_outputs,
    )
    assert [r.passed for r in ok] == [True]
    assert [r.passed for r in bad] == [False]
    assert bad[0].max_abs > 1e-3 and np.isfinite(bad[0].psnr)


def test_compare_fails_missing_wrong_shape_and_nonfinite_outputs() -> None:
    ref = {
        "a": np.zeros((2, 3), np.float32),
        "b": np.zeros((2, 3), np.float32),
        "c": np.zeros((2, 3), np.float32),
    }
    got = {"b": np.zeros((2, 4), np.float32), "c": np.full((2, 3), np.nan, np.float32)}
    rows = parity.compare(ref, got, thresholds={"psnr": 40.0}, image_outputs=frozenset())
    assert [r.passed for r in rows] == [False, False, False]
    assert "missing" in rows[0].criteria and "shape" in rows[1].criteria and "non-finite" in rows[2].criteria


def test_identical_outputs_have_infinite_psnr() -> None:
    ref = {"image": np.linspace(-1, 1, 48, dtype=np.float32).reshape(1, 3, 4, 4)}
    rows = parity.compare(
        ref, dict(ref), thresholds={"max_abs": 0.0, "psnr": 40.0}, image_outputs=frozenset({"image"})
    )
    assert rows[0].passed and rows[0].psnr == float("inf") and rows[0].max_abs == 0.0


def test_failed_gate_exits_nonzero_and_leaves_previous_file(
    run_dir: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fp16 can never reach 150 dB: the gate fails, the CLI exits 1 and the previous file survives intact."""
    recipe = tmp_path / "strict.toml"
    recipe.write_text(STRICT_FP16)
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    out.write_bytes(b"previous artifact")
    code = main(
        [
            "export",
            str(run_dir("dcgan")),
            "-o",
            str(out),
            "--recipe",
            str(recipe),
            "--precision",
            "fp16",
            "-q",
        ]
    )
    assert code == 1
    assert out.read_bytes() == b"previous artifact"
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"], "no temporary files left behind"
    err = capsys.readouterr().err
    assert "FAIL" in err and "parity gate failed for dcgan (fp16); nothing was written" in err


def test_failed_gate_raises_parity_error_with_report(run_dir: Callable[[str], Path], tmp_path: Path) -> None:
    recipe = tmp_path / "strict.toml"
    recipe.write_text(STRICT_FP16)
    out = tmp_path / "never.onnx"
    with pytest.raises(ParityError, match="parity gate failed") as info:
        export(run_dir("dcgan"), output=out, recipe=recipe, precision="fp16", progress=False)
    assert info.value.rows and not any(r.passed for r in info.value.rows)
    assert 40 < info.value.rows[0].psnr < 150
    assert not out.exists()


def test_missing_run_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        export(tmp_path / "nope", progress=False)
    assert main(["export", str(tmp_path / "nope"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1].startswith("ganrt export: error: cannot load run directory") and "does not exist" in err[-1]
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate_weights", "not a readable safetensors file"),
        ("delete_weights", "weights.safetensors: missing"),
        ("garbage_config", "not valid JSON"),
        ("wrong_spec", "do not fit its spec"),
    ],
)
def test_corrupt_run_directory_is_a_clear_error(
    damage: str, message: str, new_run: Callable[..., Path], tmp_path: Path
) -> None:
    run = new_run(tmp_path / "run", "dcgan")
    weights, config = run / "weights.safetensors", run / "config.json"
    if damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "delete_weights":
        weights.unlink()
    elif damage == "garbage_config":
        config.write_text("{not json")
    else:
        cfg = json.loads(config.read_text())
        cfg["nets"]["G"]["ngf"] = 16
        config.write_text(json.dumps(cfg))
    out = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=message):
        export(run, output=out, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "tflite"}, "format must be one of"),
        ({"precision": "int8"}, "precision must be one of"),
        ({"part": "encoder"}, "part must be one of"),
        ({"direction": "BtoA"}, "direction applies to cyclegan runs only"),
        ({"height": "16:32:64"}, "height/width do not apply"),
        ({"batch": "4:2:8"}, "1 <= min <= opt <= max"),
        ({"opset": 13}, "opset must be in"),
        ({"format": "triton"}, "needs repo="),
    ],
)
def test_invalid_options_are_clear_errors(kwargs: dict, message: str, run_dir: Callable[[str], Path]) -> None:
    with pytest.raises(ExportError, match=message):
        export(run_dir("dcgan"), progress=False, **kwargs)


def test_hw_range_must_respect_the_network_multiple(run_dir: Callable[[str], Path]) -> None:
    with pytest.raises(ExportError, match="multiples of 32"):
        export(run_dir("pix2pix"), height="32:48:64", progress=False)
