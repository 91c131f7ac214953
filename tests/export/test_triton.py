"""Triton model repositories: configs parse against Triton's schema and pass the semantic checks; broken
configs are caught and never replace a working model folder."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ganrt.cli import main
from ganrt.export import export
from ganrt.export.triton import (
    TritonConfigError,
    check_config,
    onnx_signature,
    parameters,
    parse_config,
    write_repository,
)

# Triton's own ModelConfig schema ships with tritonclient[grpc], an optional extra (absent on the GPU image):
# without it this module is skipped, never a collection error that would take the rest of the suite with it.
pb = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] is not installed (pip install 'ganrt[triton]')"
)
text_format = pytest.importorskip("google.protobuf.text_format", reason="protobuf is not installed")


@pytest.fixture(scope="module")
def repo(run_dir: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding the class-conditional DCGAN (its int64 ``label`` needs a reshape), via the CLI."""
    repo = tmp_path_factory.mktemp("triton") / "models"
    code = main(
        [
            "export",
            str(run_dir("cgan")),
            "--format",
            "triton",
            "--repo",
            str(repo),
            "--name",
            "digits",
            "--max-batch",
            "16",
            "--preferred-batch",
            "4,16",
            "--max-queue-delay-us",
            "250",
            "--instances",
            "2",
            "--kind",
            "cpu",
            "-q",
        ]
    )
    assert code == 0
    return repo


def _config(repo: Path) -> pb.ModelConfig:
    return text_format.Parse((repo / "digits" / "config.pbtxt").read_text(), pb.ModelConfig())


def test_layout_and_schema(repo: Path) -> None:
    assert sorted(p.name for p in repo.iterdir()) == ["digits"], "no staging folders left behind"
    assert sorted(str(p.relative_to(repo)) for p in (repo / "digits").rglob("*")) == [
        "digits/1",
        "digits/1/model.onnx",
        "digits/config.pbtxt",
    ]
    config = _config(repo)
    assert config.name == "digits" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 16
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, pb.ModelInstanceGroup.KIND_CPU)]
    io = {t.name: (pb.DataType.Name(t.data_type), list(t.dims)) for t in (*config.input, *config.output)}
    assert io == {"z": ("TYPE_FP32", [16]), "label": ("TYPE_INT64", [1]), "image": ("TYPE_FP32", [3, 16, 16])}
    label = next(t for t in config.input if t.name == "label")
    assert label.HasField("reshape") and list(label.reshape.shape) == []
    props = parameters(config)
    assert props["ganrt.family"] == "dcgan" and props["ganrt.num_classes"] == "4"


def test_semantic_checks_pass(repo: Path) -> None:
    inputs, outputs = onnx_signature(repo / "digits" / "1" / "model.onnx")
    assert check_config(_config(repo), repo / "digits", inputs, outputs) == []


def _mutations() -> list[tuple[str, Callable[[pb.ModelConfig], None], str]]:
    def preferred_too_big(c: pb.ModelConfig) -> None:
        c.dynamic_batching.preferred_batch_size.append(32)

    def unsorted(c: pb.ModelConfig) -> None:
        c.dynamic_batching.preferred_batch_size[:] = [16, 4]

    def wrong_dims(c: pb.ModelConfig) -> None:
        c.output[0].dims[:] = [3, 32, 32]

    def wrong_dtype(c: pb.ModelConfig) -> None:
        c.input[1].data_type = pb.TYPE_INT32

    def wrong_name(c: pb.ModelConfig) -> None:
        c.name = "other"

    def missing_input(c: pb.ModelConfig) -> None:
        del c.input[1]

    def no_batching(c: pb.ModelConfig) -> None:
        c.max_batch_size = 0

    def plan_on_cpu(c: pb.ModelConfig) -> None:
        c.platform = "tensorrt_plan"
        c.default_model_filename = "model.plan"

    def no_reshape(c: pb.ModelConfig) -> None:
        c.input[1].ClearField("reshape")

    return [
        (
            "preferred_too_big",
            preferred_too_big,
            r"preferred_batch_size \[32\] must lie in \[1, max_batch_size=16\]",
        ),
        ("unsorted", unsorted, "strictly increasing"),
        ("wrong_dims", wrong_dims, "do not match the model's per-sample shape"),
        ("wrong_dtype", wrong_dtype, "TYPE_INT32 but the model's is TYPE_INT64"),
        ("wrong_name", wrong_name, "must equal its folder name"),
        ("missing_input", missing_input, "input names"),
        ("no_batching", no_batching, "max_batch_size must be >= 1"),
        ("plan_on_cpu", plan_on_cpu, "cannot run on a KIND_CPU"),
        ("no_reshape", no_reshape, r"dims \[1\] do not match"),
    ]


@pytest.mark.parametrize(
    ("mutate", "message"), [m[1:] for m in _mutations()], ids=[m[0] for m in _mutations()]
)
def test_semantic_checks_catch(repo: Path, mutate: Callable[[pb.ModelConfig], None], message: str) -> None:
    config = _config(repo)
    mutate(config)
    # Still schema-valid: only the semantic checks can see these.
    reparsed = parse_config(text_format.MessageToString(config))
    inputs, outputs = onnx_signature(repo / "digits" / "1" / "model.onnx")
    problems = check_config(reparsed, repo / "digits", inputs, outputs)
    assert any(re.search(message, p) for p in problems), problems


def test_schema_rejects_unknown_fields() -> None:
    with pytest.raises(TritonConfigError, match="not a valid ModelConfig"):
        parse_config('name: "m"\nmax_batch_size: 8\nmax_batch: 4\n')


def test_engine_profile_bounds_max_batch(repo: Path) -> None:
    inputs, outputs = onnx_signature(repo / "digits" / "1" / "model.onnx")
    problems = check_config(_config(repo), repo / "digits", inputs, outputs, profile_max_batch=8)
    assert problems == ["max_batch_size 16 exceeds the engine profile's max batch 8"]


def test_failed_write_keeps_the_previous_model(repo: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in (repo / "digits").rglob("*") if p.is_file()}
    config = _config(repo)
    config.dynamic_batching.preferred_batch_size.append(64)
    model = tmp_path / "model.onnx"
    model.write_bytes((repo / "digits" / "1" / "model.onnx").read_bytes())
    inputs, outputs = onnx_signature(model)
    with pytest.raises(TritonConfigError, match="preferred_batch_size"):
        write_repository(repo, config, model, inputs=inputs, outputs=outputs, force=True)
    assert {p: p.read_bytes() for p in (repo / "digits").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in repo.iterdir()) == ["digits"]


def test_export_result_points_at_the_model_folder(run_dir: Callable[[str], Path], tmp_path: Path) -> None:
    result = export(
        run_dir("vae_encoder"),
        format="triton",
        repo=tmp_path,
        part="encoder",
        precision="fp16",
        progress=False,
    )
    assert result.path == tmp_path / "vae_encoder"
    config = parse_config((result.path / "config.pbtxt").read_text())
    assert [t.name for t in config.input] == ["image", "eps"] and [t.name for t in config.output] == [
        "mu",
        "logvar",
        "z",
    ]
    assert parameters(config)["ganrt.precision"] == "fp16"
    inputs, outputs = onnx_signature(result.path / "1" / "model.onnx")
    assert check_config(config, result.path, inputs, outputs) == []
