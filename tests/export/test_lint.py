"""The TensorRT lint: exported graphs pass; hand-built graphs with unsupported nodes are flagged."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ganrt.cli import main
from ganrt.export import ExportResult, lint
from ganrt.export.lint import SUPPORTED_TYPES, UNSUPPORTED_OPS


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    opset: int = 18,
    extra_opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    imports = [helper.make_opsetid("", opset)] + [
        helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()
    ]
    return helper.make_model(graph, opset_imports=imports)


def _x(
    name: str = "x", dtype: int = TensorProto.FLOAT, shape: tuple[int, ...] = (1, 3, 8, 8)
) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(shape))


@pytest.mark.parametrize("key", ["pix2pix", "cyclegan", "vae_encoder", "cgan"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_exported_graphs_pass(key: str, precision: str, exported: Callable[[str, str], ExportResult]) -> None:
    report = lint(exported(key, precision).path)
    assert report.ok, report.issues
    assert report.opset >= 18 and report.nodes == sum(report.op_counts.values())


def test_flags_each_kind_of_problem(tmp_path: Path) -> None:
    axes = helper.make_node("Shape", ["x"], ["computed_axes"], name="shape")
    nodes = [
        helper.make_node("Unique", ["x"], ["u"], name="unique"),
        helper.make_node("Resize", ["x", "", "scales"], ["r"], name="resize_cubic", mode="cubic"),
        helper.make_node(
            "Resize",
            ["x", "", "scales"],
            ["r2"],
            name="resize_crop",
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        helper.make_node("Frobnicate", ["x"], ["f"], name="custom", domain="com.example"),
        helper.make_node(
            "Frobnicate",
            ["x"],
            ["p"],
            name="plugin",
            domain="com.example",
            plugin_namespace="ganrt",
            plugin_version="1",
        ),
        axes,
        helper.make_node("ReduceMean", ["x", "computed_axes"], ["m"], name="reduce_dynamic_axes"),
        helper.make_node("MaxPool", ["x"], ["mp", "mp_idx"], name="maxpool_indices", kernel_shape=[2, 2]),
        helper.make_node("Cast", ["x"], ["xd"], name="to_double", to=TensorProto.DOUBLE),
        helper.make_node("Relu", ["xd"], ["rd"], name="relu_double"),
        helper.make_node("Cast", ["x"], ["xs"], name="to_int16", to=TensorProto.INT16),
        helper.make_node("RandomNormalLike", ["x"], ["noise"], name="noise", seed=3.0),
        helper.make_node("Pad", ["x", "pads"], ["padded"], name="pad_reflect", mode="reflect"),
    ]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    model = _model(
        nodes, [_x()], [_x("padded", shape=(1, 3, 10, 10))], [scales, pads], extra_opsets={"com.example": 1}
    )
    report = lint(model)
    assert not report.ok
    by_node = {}
    for issue in report.issues:
        by_node.setdefault(issue.node, []).append(issue)
    sev = {node: {i.severity for i in issues} for node, issues in by_node.items()}
    assert sev["unique"] == {"error"} and "not supported" in by_node["unique"][0].message
    assert sev["resize_cubic"] == {"error"} and "'cubic'" in by_node["resize_cubic"][0].message
    assert sev["resize_crop"] == {"error"} and "tf_crop_and_resize" in by_node["resize_crop"][0].message
    assert sev["custom"] == {"error"} and "names no TensorRT plugin" in by_node["custom"][0].message
    assert sev["plugin"] == {"warning"}
    assert (
        sev["reduce_dynamic_axes"] == {"error"}
        and "must be an initializer" in by_node["reduce_dynamic_axes"][0].message
    )
    assert sev["maxpool_indices"] == {"error"}
    assert sev["relu_double"] == {"warning"} and "DOUBLE" in by_node["relu_double"][0].message
    assert sev["to_int16"] == {"error"} and "INT16" in by_node["to_int16"][0].message
    assert sev["noise"] == {"warning"} and "seed" in by_node["noise"][0].message
    assert "pad_reflect" not in by_node and "shape" not in by_node


@pytest.mark.parametrize(("opset", "ok"), [(8, False), (18, True), (24, True), (25, False)])
def test_opset_range(opset: int, ok: bool) -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_x()], [_x("y")], opset=opset)
    report = lint(model)
    assert report.ok is ok
    if not ok:
        assert "outside TensorRT's range 9..24" in report.errors[0].message


def test_pad_and_resize_modes() -> None:
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad_bogus", mode="mirror"),
        helper.make_node(
            "Resize",
            ["x", "", "scales"],
            ["r"],
            name="resize_ok",
            mode="linear",
            coordinate_transformation_mode="asymmetric",
        ),
        helper.make_node(
            "Resize", ["x", "", "scales"], ["a"], name="resize_antialias", mode="linear", antialias=1
        ),
        helper.make_node(
            "Resize", ["x", "", "scales"], ["k"], name="resize_keep", keep_aspect_ratio_policy="not_larger"
        ),
    ]
    inits = [
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
    ]
    report = lint(_model(nodes, [_x()], [_x("r", shape=(1, 3, 16, 16))], inits))
    flagged = {i.node for i in report.errors}
    assert flagged == {"pad_bogus", "resize_antialias", "resize_keep"}


def test_table_covers_the_ops_ganrt_exports() -> None:
    for op in (
        "Conv",
        "ConvTranspose",
        "InstanceNormalization",
        "LeakyRelu",
        "Relu",
        "Tanh",
        "Pad",
        "Concat",
        "Gemm",
        "MatMul",
        "Exp",
        "Cast",
        "Gather",
        "Reshape",
    ):
        assert {"FP32", "FP16"} <= SUPPORTED_TYPES[op], op
    assert not set(SUPPORTED_TYPES) & UNSUPPORTED_OPS


def test_lint_cli(
    tmp_path: Path, exported: Callable[[str, str], ExportResult], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", str(exported("pix2pix", "fp16").path)]) == 0
    assert "passes with TensorRT" in capsys.readouterr().out

    bad = tmp_path / "bad.onnx"
    onnx.save(
        _model(
            [helper.make_node("MaxUnpool", ["x", "i"], ["y"], name="unpool", kernel_shape=[2, 2])],
            [_x(), _x("i", TensorProto.INT64)],
            [_x("y")],
        ),
        str(bad),
    )
    assert main(["lint", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["issues"][0]["node"] == "unpool"
    assert report["issues"][0]["op_type"] == "MaxUnpool"

    assert main(["lint", str(tmp_path / "missing.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
