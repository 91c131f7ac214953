"""The torch backend (run directories): its options on every machine, and its CUDA fast path (own stream ordered
with the caller's, channels_last, a CUDA graph per input shape, fp16/bf16) where a GPU is present.

CUDA tests are marked ``cuda`` and skipped centrally (tests/conftest.py) without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganrt
from ganrt.backends.torch import TorchRunner
from ganrt.ops import images_to_tensor
from tests.tolerances import (
    FORWARD,
    ONNX,
    TORCH_CUDA_FP32_LEVELS,
    TORCH_CUDA_HALF_PSNR_DB,
    assert_close,
    full_fp32,
    psnr,
)


def _levels(a, b) -> int:
    a = np.asarray(a.cpu() if isinstance(a, torch.Tensor) else a).astype(int)
    b = np.asarray(b.cpu() if isinstance(b, torch.Tensor) else b).astype(int)
    assert a.shape == b.shape
    return int(np.abs(a - b).max())


def _as_range(pixels) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [-1, 1], for PSNR."""
    t = torch.as_tensor(np.asarray(pixels.cpu() if isinstance(pixels, torch.Tensor) else pixels))
    return images_to_tensor(t if t.dim() == 4 else t[None])


# ------------------------------------------------------------------------------------------ every machine


def test_load_passes_compile_and_rejects_it_for_artifacts(artifacts):
    with ganrt.load(artifacts["pix2pix_run"], device="cpu", compile="max-autotune") as model:
        info = model.info()
        assert info["compile"] == "max-autotune" and info["backend"] == "torch"
    with pytest.raises(ValueError, match=r"compile must be None or one of .*got 'fastest'"):
        ganrt.load(artifacts["pix2pix_run"], device="cpu", compile="fastest")
    with pytest.raises(ValueError, match=r"compile= runs a run directory's torch backend"):
        ganrt.load(artifacts["pix2pix_onnx"], compile="default")


def test_cpu_runner_has_no_stream_and_no_graphs(artifacts):
    runner = TorchRunner.load(artifacts["pix2pix_run"], device="cpu", cuda_graphs=True)
    try:
        assert runner.stream is None and runner.cuda_graphs is False and runner.channels_last is False
        assert "cuda_graphs" not in runner.info()
    finally:
        runner.close()


def test_channels_last_computes_the_same_function(artifacts):
    """The NHWC layout path (inputs converted, weights in channels_last, the fused op's channels_last
    handling) on the CPU: the same outputs as NCHW up to float32 summation order."""
    x = torch.rand(2, 3, 32, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    nchw = TorchRunner.load(artifacts["pix2pix_run"], device="cpu", channels_last=False)
    nhwc = TorchRunner.load(artifacts["pix2pix_run"], device="cpu", channels_last=True)
    try:
        assert nhwc.channels_last
        out = {"output": torch.full((2, 3, 32, 64), float("nan"))}
        nhwc.run({"image": x}, out)
        expected = nchw.forward({"image": x})["output"]
        assert_close(out["output"], expected, FORWARD[torch.float32], "channels_last vs NCHW")
        got = nhwc.infer({"image": x.numpy()})["output"]
        assert got.flags.c_contiguous
        assert_close(torch.from_numpy(got), expected, FORWARD[torch.float32], "infer, channels_last")
    finally:
        nchw.close()
        nhwc.close()


# ------------------------------------------------------------------------------------------ CUDA


@pytest.mark.cuda
def test_cuda_graph_per_shape_replays_after_switching_shapes(artifacts, photo):
    """Shape A, then B, then A again: each shape keeps its own graph and static buffers, and replaying A's
    graph after B's ran gives A's result."""
    small = np.ascontiguousarray(photo[:32, :32])
    with (
        full_fp32(),  # compared with the CPU below: no TF32 convolutions baked into the graphs
        ganrt.load(artifacts["pix2pix_run"], device="cuda") as graphed,
        ganrt.load(artifacts["pix2pix_run"], device="cuda", cuda_graphs=False) as plain,
        ganrt.load(artifacts["pix2pix_run"], device="cpu") as cpu,
    ):
        first = graphed(photo)
        second = graphed(small)
        third = graphed(photo)
        info = graphed.info()
        assert info["cuda_graph_fallback"] is None, info["cuda_graph_fallback"]
        assert info["cuda_graphs"] is True and info["cuda_graphs_captured"] == 2
        assert plain.info()["cuda_graphs_captured"] == 0
        assert _levels(third, first) <= TORCH_CUDA_FP32_LEVELS
        assert _levels(first, plain(photo)) <= TORCH_CUDA_FP32_LEVELS
        assert _levels(second, plain(small)) <= TORCH_CUDA_FP32_LEVELS
        assert _levels(first, cpu(photo)) <= TORCH_CUDA_FP32_LEVELS
        # Float tensors in, float tensors out, through the same graphs (persistent per-shape buffers).
        x = torch.rand(1, 3, 64, 64, device="cuda") * 2 - 1
        y = graphed(x)
        assert y.is_cuda and y.shape == (1, 3, 64, 64)
        assert graphed.info()["cuda_graphs_captured"] == 2
        assert_close(y, cpu(x.cpu()), ONNX, "float path, CUDA graph vs CPU")


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_fast_path(artifacts, photo, precision):
    batch = np.stack([photo, photo[::-1].copy()])
    with (
        ganrt.load(artifacts["pix2pix_run"], device="cuda", precision=precision) as fast,
        ganrt.load(artifacts["pix2pix_run"], device="cpu") as cpu,
    ):
        info = fast.info()
        assert info["precision"] == precision and info["channels_last"] is True
        got, want = fast(batch), cpu(batch)
        assert fast.info()["cuda_graphs_captured"] == 1, fast.info()["cuda_graph_fallback"]
        assert psnr(_as_range(got), _as_range(want)) >= TORCH_CUDA_HALF_PSNR_DB
        np.testing.assert_array_equal(fast(batch), got)  # the replay


@pytest.mark.cuda
def test_translate_waits_for_the_callers_stream(artifacts, photo):
    """The caller writes the input on its own stream behind a long kernel, without synchronising, and calls
    translate on that stream: the runner's stream must wait for it (else it reads the old zeros)."""
    with ganrt.load(artifacts["pix2pix_run"], device="cuda") as model:
        expected = model(photo)
        source = torch.from_numpy(photo).cuda()
        x = torch.zeros_like(source)
        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        with torch.cuda.stream(side):
            torch.cuda._sleep(100_000_000)  # tens of milliseconds of GPU time queued before the copy
            x.copy_(source)
            y = model(x)
            seen = y.clone()  # used on the caller's stream, right after the call
        torch.cuda.synchronize()
        assert _levels(seen, expected) <= TORCH_CUDA_FP32_LEVELS
        assert _levels(y, expected) <= TORCH_CUDA_FP32_LEVELS


@pytest.mark.cuda
def test_results_stay_valid_for_work_queued_on_the_callers_stream(artifacts, photo):
    """A result handed back on the caller's stream is marked as used there: after the caller drops it, the
    next call (from another stream) must not reuse its memory while the caller's queued reads are pending."""
    other = np.ascontiguousarray(255 - photo)
    with ganrt.load(artifacts["pix2pix_run"], device="cuda") as model:
        expected, expected_other = model(photo), model(other)
        x = torch.from_numpy(photo).cuda()
        x_other = torch.from_numpy(other).cuda()
        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            y = model(x)
            torch.cuda._sleep(100_000_000)
            seen = y.clone()  # runs only after the sleep
            del y
        # Same sizes, the runner's stream, the default stream as caller: reuses y's block unless y was
        # recorded on `side`.
        z = model(x_other)
        torch.cuda.synchronize()
        assert _levels(seen, expected) <= TORCH_CUDA_FP32_LEVELS
        assert _levels(z, expected_other) <= TORCH_CUDA_FP32_LEVELS


@pytest.mark.cuda
def test_vae_parts_share_one_stream_on_cuda(artifacts):
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    with (
        full_fp32(),
        ganrt.load(artifacts["vae_run"], device="cuda") as gpu,
        ganrt.load(artifacts["vae_run"], device="cpu") as cpu,
    ):
        assert gpu._encoder.runner.stream is gpu._main.runner.stream
        assert _levels(gpu.reconstruct(images), cpu.reconstruct(images)) <= TORCH_CUDA_FP32_LEVELS
        mu, _ = gpu.encode(torch.from_numpy(images).cuda())
        mu_cpu, _ = cpu.encode(images)
        assert mu.is_cuda
        assert_close(mu, torch.from_numpy(mu_cpu), ONNX, "VAE encoder mu, CUDA vs CPU")


@pytest.mark.cuda
@pytest.mark.slow
def test_compile_max_autotune_on_cuda(artifacts, photo):
    """The opt-in Inductor variant: no ganrt graphs, the same pictures."""
    with (
        ganrt.load(artifacts["pix2pix_run"], device="cuda", compile="max-autotune") as compiled,
        ganrt.load(artifacts["pix2pix_run"], device="cuda") as graphed,
    ):
        info = compiled.info()
        assert info["compile"] == "max-autotune" and info["cuda_graphs"] is False
        assert _levels(compiled(photo), graphed(photo)) <= TORCH_CUDA_FP32_LEVELS
