"""The OpenVINO runner: parity with ONNX Runtime and PyTorch on every family (dynamic batch and H/W), bf16
and its refusal without native support, the compiled-model cache, unreadable artifacts."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from ganrt.artifact import ArtifactMetadata, onnx_metadata_props
from ganrt.backends import openvino as ov_backend
from ganrt.backends.onnxruntime import OnnxRuntimeRunner
from ganrt.backends.openvino import OpenVinoRunner, native_bf16
from ganrt.backends.torch import TorchRunner
from ganrt.errors import ArtifactError, BackendUnavailableError, MetadataError
from ganrt.export.parity import compare, sample_feeds
from ganrt.export.recipe import load_recipe
from tests.conftest import DYNAMIC_HW
from tests.export.conftest import CASES
from tests.tolerances import BF16_PSNR_DB, ONNX, assert_close

KEYS = list(CASES)
NATIVE_BF16, WHY_NOT_BF16 = native_bf16()

Artifacts = Callable[[str], tuple[Path, Path]]


def _sizes(key: str, md: ArtifactMetadata) -> list[tuple[int, int]]:
    """The native size, and for dynamic translators a larger, non-square one."""
    if key in DYNAMIC_HW:
        lo, _, hi = DYNAMIC_HW[key]
        return [(lo, lo), (lo * 2, hi)]
    return [(md.image_size, md.image_size)]


def _feeds(runner: OpenVinoRunner, md: ArtifactMetadata, n: int, h: int, w: int) -> dict[str, np.ndarray]:
    return sample_feeds(
        runner.inputs, n, height=h, width=w, channels=md.in_channels, latent_dim=md.latent_dim,
        num_classes=md.num_classes,
    )  # fmt: skip


@pytest.mark.parametrize("key", KEYS)
def test_fp32_matches_onnxruntime_and_pytorch(key: str, family_artifacts: Artifacts) -> None:
    run, path = family_artifacts(key)
    ov = OpenVinoRunner.load(path, threads=2)
    ort = OnnxRuntimeRunner.load(path)
    reference = TorchRunner.load(run, **CASES[key][3])
    try:
        md = ArtifactMetadata.from_props(ov.metadata_props())
        assert ov.metadata_props() == ort.metadata_props()
        assert ov.inputs == ort.inputs and ov.outputs == ort.outputs
        assert all(s.shape[0] == -1 for s in ov.inputs + ov.outputs), "batch must stay dynamic"
        if key in DYNAMIC_HW:
            assert ov.inputs[0].shape[2:] == (-1, -1)
        assert ov.max_batch is None and ov.precision == "fp32" and ov.threads == 2
        assert ov.info()["inference_precision"] == "f32" and ov.info()["performance_hint"] == "LATENCY"
        for n in (1, 3):
            for h, w in _sizes(key, md):
                feeds = _feeds(ov, md, n, h, w)
                got, want, peer = ov.infer(feeds), reference.infer(feeds), ort.infer(feeds)
                assert sorted(got) == sorted(want)
                for name, value in got.items():
                    what = f"{key} {name} batch {n} {h}x{w}"
                    assert value.dtype == np.float32 and value.shape == want[name].shape, what
                    assert_close(
                        torch.from_numpy(value), torch.from_numpy(want[name]), ONNX, f"{what} vs torch"
                    )
                    assert_close(
                        torch.from_numpy(value), torch.from_numpy(peer[name]), ONNX, f"{what} vs ORT"
                    )
    finally:
        for r in (ov, ort, reference):
            r.close()


@pytest.mark.skipif(not NATIVE_BF16, reason=f"no native bf16 on this CPU: {WHY_NOT_BF16}")
@pytest.mark.parametrize("key", KEYS)
def test_bf16_stays_within_the_recipes_reduced_precision_bound(key: str, family_artifacts: Artifacts) -> None:
    run, path = family_artifacts(key)
    ov = OpenVinoRunner.load(path, precision="bf16")
    reference = TorchRunner.load(run, **CASES[key][3])
    try:
        assert ov.precision == "bf16" and ov.info()["inference_precision"] == "bf16"
        md = ArtifactMetadata.from_props(ov.metadata_props())
        feeds = _feeds(ov, md, 3, md.image_size, md.image_size)
        images = (
            frozenset({"output", "image"} & {s.name for s in ov.outputs})
            if md.task != "encode"
            else frozenset()
        )
        bound = load_recipe(None, md.family).thresholds["fp16"]
        rows = compare(
            reference.infer(feeds), ov.infer(feeds), thresholds=bound, image_outputs=images, backend="openvino"
        )
        assert all(r.passed for r in rows), [str(r) for r in rows]
        assert min(r.psnr for r in rows) >= BF16_PSNR_DB
    finally:
        ov.close()
        reference.close()


def test_run_writes_into_the_callers_buffers_and_infer_leaves_them_alone(family_artifacts: Artifacts) -> None:
    _, path = family_artifacts("pix2pix")
    ov = OpenVinoRunner.load(path)
    md = ArtifactMetadata.from_props(ov.metadata_props())
    try:
        for n, side in ((1, 32), (2, 64), (1, 32)):  # a new shape, then back: every call binds fresh buffers
            feeds = _feeds(ov, md, n, side, side)
            x = torch.from_numpy(feeds["image"]).clone()
            y = torch.full((n, 3, side, side), 7.0)
            address = y.data_ptr()
            ov.run({"image": x}, {"output": y})
            assert y.data_ptr() == address
            np.testing.assert_array_equal(y.numpy(), ov.infer(feeds)["output"])
            before = y.clone()
            ov.infer({"image": -feeds["image"]})  # another request: the caller's buffers stay as they were
            assert torch.equal(y, before)
            del x, y
            gc.collect()  # the runner keeps what it bound alive; the next call rebinds
    finally:
        ov.close()


def test_metadata_is_read_without_parsing_the_graph(family_artifacts: Artifacts, tmp_path: Path) -> None:
    for key in KEYS:
        _, path = family_artifacts(key)
        expected = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert onnx_metadata_props(path) == expected and expected["ganrt.family"] == CASES[key][0]
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(family_artifacts("pix2pix")[1].read_bytes()[:5000])
    with pytest.raises(MetadataError, match="not a well-formed ONNX model"):
        onnx_metadata_props(truncated)


def test_native_bf16_detection_agrees_with_the_cpu_and_openvino() -> None:
    """The real detection on this machine: the kernel's CPU flags and OpenVINO's own capability list."""
    import openvino

    flags: set[str] = set()
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    have = [
        name for flag, name in (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512_BF16")) if flag in flags
    ]
    offered = "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    native, why = native_bf16()
    assert native == (bool(have) and offered)
    if native:
        assert why == " and ".join(have)
    elif not have:
        assert "neither AMX-BF16 nor AVX512_BF16" in why
    else:
        assert "does not offer BF16" in why


def test_bf16_is_refused_without_native_bf16(
    family_artifacts: Artifacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, path = family_artifacts("pix2pix")
    why = "this CPU (simulated) has neither AMX-BF16 nor AVX512_BF16, so bf16 would be emulated"
    monkeypatch.setattr(ov_backend, "native_bf16", lambda: (False, why))
    with pytest.raises(
        BackendUnavailableError, match=r"needs a CPU with native bf16 .*simulated.*use precision='fp32'"
    ):
        OpenVinoRunner.load(path, precision="bf16")


@pytest.mark.skipif(not NATIVE_BF16, reason=f"no native bf16 on this CPU: {WHY_NOT_BF16}")
def test_bf16_runs_where_the_cpu_has_it(family_artifacts: Artifacts) -> None:
    _, path = family_artifacts("cyclegan")
    runner = OpenVinoRunner.load(path, precision="bf16", threads=1)
    try:
        assert runner.info()["inference_precision"] == "bf16" and runner.threads == 1
    finally:
        runner.close()


def test_options_and_devices_are_checked(family_artifacts: Artifacts) -> None:
    _, path = family_artifacts("pix2pix")
    with pytest.raises(BackendUnavailableError, match="OpenVINO on the CPU only; device 'cuda'"):
        OpenVinoRunner.load(path, device="cuda")
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16'\), got 'fp16'"):
        OpenVinoRunner.load(path, precision="fp16")
    with pytest.raises(TypeError, match=r"openvino takes no options \['cuda_graphs'\]"):
        OpenVinoRunner.load(path, cuda_graphs=True)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        OpenVinoRunner.load(path, threads=0)


def inverse_onnx(path: Path) -> Path:
    """A translator ONNX Runtime runs but OpenVINO cannot read: ``output = image * sum(Inverse(I2)) / 2``
    through the com.microsoft contrib op Inverse, which OpenVINO's ONNX frontend has no conversion for."""
    eye = helper.make_tensor("eye", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [
        helper.make_node("Inverse", ["eye"], ["inv"], domain="com.microsoft"),
        helper.make_node("ReduceSum", ["inv"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "half"], ["one"]),
        helper.make_node("Mul", ["image", "one"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "inverse",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=[eye, half],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)],
        ir_version=10,
    )
    md = ArtifactMetadata(
        family="pix2pix", task="translate", in_channels=3, out_channels=3, image_size=16, multiple=4
    )
    helper.set_model_props(model, md.to_props())
    onnx.save(model, path)
    return path


def test_unreadable_artifacts_name_the_problem(
    family_artifacts: Artifacts, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"user: not a protobuf at all\n" * 40)
    capfd.readouterr()
    with pytest.raises(ArtifactError, match=r"garbage.onnx: OpenVINO's ONNX frontend does not recognise"):
        OpenVinoRunner.load(garbage)
    # Only the ONNX frontend saw it: no other frontend's parse errors on the process's stderr.
    assert capfd.readouterr().err == ""
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(family_artifacts("pix2pix")[1].read_bytes()[:5000])
    with pytest.raises(ArtifactError, match=r"truncated.onnx: OpenVINO cannot read or compile this model"):
        OpenVinoRunner.load(truncated)
    foreign = inverse_onnx(tmp_path / "inverse.onnx")
    OnnxRuntimeRunner.load(foreign).close()  # a valid model, just not for OpenVINO
    with pytest.raises(ArtifactError, match="No conversion rule found for operations: com.microsoft.Inverse"):
        OpenVinoRunner.load(foreign)


def test_compiled_model_cache_is_reused_and_a_corrupt_blob_is_rebuilt(
    family_artifacts: Artifacts, tmp_path: Path
) -> None:
    _, path = family_artifacts("cyclegan")
    cache = tmp_path / "ov-cache"
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 16, 16)).astype(np.float32)  # G_B: 1 channel in

    def load_and_run() -> tuple[dict, np.ndarray]:
        runner = OpenVinoRunner.load(path, cache_dir=cache, threads=2)
        try:
            return runner.info(), runner.infer({"image": x})["output"]
        finally:
            runner.close()

    cold, first = load_and_run()
    folder = cache / "fp32-2t"
    blobs = sorted(folder.glob("*.blob"))
    assert cold["cache_dir"] == str(folder) and not cold["loaded_from_cache"] and len(blobs) == 1
    warm, second = load_and_run()
    assert warm["loaded_from_cache"] and warm["cache_removed"] == []
    np.testing.assert_array_equal(first, second)
    # Damage past the header: OpenVINO itself would import this blob and compute garbage.
    data = bytearray(blobs[0].read_bytes())
    data[len(data) // 4 : len(data) // 4 + 64] = b"\xff" * 64
    blobs[0].write_bytes(bytes(data))
    rebuilt, third = load_and_run()
    assert not rebuilt["loaded_from_cache"] and rebuilt["cache_removed"] == [blobs[0].name]
    np.testing.assert_array_equal(first, third)
    again, fourth = load_and_run()
    assert again["loaded_from_cache"], (
        f"the damaged blob was not replaced: {again} {sorted(p.name for p in folder.iterdir())}"
    )
    np.testing.assert_array_equal(first, fourth)
    # A blob the manifest does not know (a compile that died before recording it) is not trusted either.
    (folder / "ganrt-blobs.json").unlink()
    unknown, fifth = load_and_run()
    assert not unknown["loaded_from_cache"] and unknown["cache_removed"] == [blobs[0].name]
    np.testing.assert_array_equal(first, fifth)
