"""GPU backends: TensorRT engines (CUDA graphs, pinned staging) and ONNX Runtime / PyTorch on CUDA.

Skipped centrally (tests/conftest.py) without a CUDA device, CUDA kernels or TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import ganrt
from ganrt.runtime import ArtifactError
from tests.tolerances import TENSORRT, assert_close, full_fp32


def _assert_close_u8(a, b, levels: int = 1) -> None:
    a, b = np.asarray(a).astype(int), np.asarray(b).astype(int)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= levels


@pytest.fixture(scope="module")
def engines(artifacts, tmp_path_factory) -> dict[str, Path]:
    from ganrt.export import export

    root = tmp_path_factory.mktemp("engines")
    return {
        "pix2pix": Path(
            export(
                artifacts["pix2pix_run"],
                format="engine",
                output=root / "pix2pix.engine",
                height=(32, 64, 128),
                width=(32, 64, 128),
                progress=False,
            ).path
        ),
        "cgan": Path(
            export(artifacts["cgan_run"], format="engine", output=root / "cgan.engine", progress=False).path
        ),
    }


@pytest.mark.tensorrt
def test_engine_matches_onnxruntime(artifacts, engines, photo):
    with (
        ganrt.load(engines["pix2pix"]) as trt_model,
        ganrt.load(artifacts["pix2pix_onnx"], device="cpu") as ref,
    ):
        assert trt_model.backend == "tensorrt" and trt_model.device == "cuda:0"
        assert trt_model.metadata.family == "pix2pix"  # from pix2pix.engine.json
        assert trt_model.max_batch == 8
        _assert_close_u8(trt_model(photo), ref(photo), levels=2)
        batch = np.stack([photo, photo[::-1].copy()])
        _assert_close_u8(trt_model(batch), ref(batch), levels=2)


@pytest.mark.tensorrt
def test_cuda_graphs_per_shape(engines, photo):
    with (
        ganrt.load(engines["pix2pix"]) as graphed,
        ganrt.load(engines["pix2pix"], cuda_graphs=False) as plain,
    ):
        first = graphed(photo)
        np.testing.assert_array_equal(graphed(photo), first)  # replayed graph
        small = np.ascontiguousarray(photo[:32, :32])
        graphed(small)
        info = graphed.info()
        assert info["cuda_graphs_captured"] + (info["cuda_graph_fallback"] is not None) >= 2
        np.testing.assert_array_equal(plain(photo), first)
        assert plain.info()["cuda_graphs_captured"] == 0


@pytest.mark.tensorrt
def test_engine_shapes_a_b_a_replay_their_own_graphs(engines, photo):
    """Shape A, then B, then A again on one runner: each shape has its own execution context and graph, so
    replaying A's graph after B's context ran gives A's outputs (compared with a runner without graphs, and
    with the first call)."""
    small = np.ascontiguousarray(photo[:32, :32])
    with (
        ganrt.load(engines["pix2pix"]) as graphed,
        ganrt.load(engines["pix2pix"], cuda_graphs=False) as plain,
    ):
        a1 = graphed(photo)
        b = graphed(small)
        a2 = graphed(photo)
        b2 = graphed(small)
        info = graphed.info()
        assert info["execution_contexts"] == 2
        if info["cuda_graph_fallback"] is None:
            assert info["cuda_graphs_captured"] == 2
        np.testing.assert_array_equal(a2, a1)
        np.testing.assert_array_equal(b2, b)
        np.testing.assert_array_equal(a1, plain(photo))
        np.testing.assert_array_equal(b, plain(small))


@pytest.mark.tensorrt
def test_engine_cuda_tensor_in_cuda_tensor_out(engines, photo):
    with ganrt.load(engines["pix2pix"]) as model:
        x = torch.from_numpy(photo).cuda()
        y = model(x)
        assert y.is_cuda and y.dtype == torch.uint8
        np.testing.assert_array_equal(y.cpu().numpy(), model(photo))


@pytest.mark.tensorrt
def test_engine_samples_match_onnxruntime(artifacts, engines):
    with ganrt.load(engines["cgan"]) as trt_model, ganrt.load(artifacts["cgan_onnx"], device="cpu") as ref:
        _assert_close_u8(trt_model.sample(8, seed=3), ref.sample(8, seed=3), levels=2)
        feeds = {"z": np.zeros((2, 8), np.float32), "label": np.array([0, 2], np.int64)}
        got, expected = trt_model.infer(feeds)["image"], ref.infer(feeds)["image"]
        assert_close(torch.from_numpy(got), torch.from_numpy(expected), TENSORRT, "TensorRT vs ONNX Runtime")


@pytest.mark.tensorrt
def test_truncated_engine(engines, tmp_path):
    broken = tmp_path / "broken.engine"
    broken.write_bytes(engines["pix2pix"].read_bytes()[:4096])
    with pytest.raises(ArtifactError, match="could not deserialize"):
        ganrt.load(broken)


@pytest.mark.tensorrt
def test_foreign_engine_needs_overrides(engines, tmp_path):
    plain = tmp_path / "trtexec.engine"
    plain.write_bytes(engines["pix2pix"].read_bytes())  # no .engine.json beside it
    with pytest.raises(ganrt.runtime.MetadataError, match="family="):
        ganrt.load(plain)
    with ganrt.load(plain, family="pix2pix", image_size=32, multiple=32) as model:
        assert model.info()["metadata_source"].startswith("inferred from I/O")


@pytest.mark.cuda
def test_onnxruntime_cuda_provider(artifacts, photo):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu (CUDA execution provider) is not installed")
    with (
        ganrt.load(artifacts["pix2pix_onnx"]) as gpu,
        ganrt.load(artifacts["pix2pix_onnx"], device="cpu") as cpu,
    ):
        assert gpu.device == "cuda:0" and "CUDA" in gpu.info()["selected"]
        # The provider that really runs the session, not only one compiled into the wheel.
        assert gpu.info()["providers"][0] == "CUDAExecutionProvider"
        _assert_close_u8(gpu(photo), cpu(photo))
        y = gpu(torch.from_numpy(photo).cuda())
        assert y.is_cuda


@pytest.mark.cuda
def test_onnxruntime_on_cuda_without_its_provider_is_a_clear_error(artifacts):
    """The GPU machine's image has the CPU-only onnxruntime: device='cuda' must say what is missing."""
    import onnxruntime

    from ganrt.errors import BackendUnavailableError

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(BackendUnavailableError, match=r"CUDA execution provider: .*pip install onnxruntime-gpu"):
        ganrt.load(artifacts["pix2pix_onnx"], device="cuda")


@pytest.mark.cuda
def test_torch_backend_on_cuda_samples_like_cpu(artifacts):
    with (
        full_fp32(),  # TF32 convolutions would be captured into the CUDA graphs compared with the CPU
        ganrt.load(artifacts["cgan_run"], device="cuda") as gpu,
        ganrt.load(artifacts["cgan_run"], device="cpu") as cpu,
    ):
        assert gpu.device == "cuda:0"
        _assert_close_u8(gpu.sample(4, seed=9), cpu.sample(4, seed=9))
