"""The compiled core ``ganrt._C``: build configuration, argument validation at the binding boundary, and the
CPU thread pool. Op semantics are tested in tests/ops."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
import torch

from ganrt import _C

F32, F64, F16, BF16, U8 = 0, 1, 2, 3, 4  # dtype codes of the _C contract
NONE, LEAKY = 0, 2  # activation codes


def test_cuda_kernels_built_when_nvcc_present() -> None:
    """A build that silently drops the CUDA sources (nvcc found but not used) must fail CI."""
    if os.environ.get("GANRT_CUDA", "AUTO").upper() == "OFF":
        pytest.skip("GANRT_CUDA=OFF: CUDA kernels deliberately not built")
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH: a CPU-only build is expected")
    assert _C.cuda_compiled is True


def test_cuda_device_count_is_a_non_negative_int() -> None:
    count = _C.cuda_device_count()
    assert isinstance(count, int) and count >= 0
    if not _C.cuda_compiled:
        assert count == 0


class _Norm:
    """Valid CPU buffers for instance_norm_act_forward; tests break one argument at a time."""

    def __init__(self, n: int = 2, c: int = 3, hw: int = 20) -> None:
        self.x = torch.randn(n, c, hw)
        self.y = torch.empty_like(self.x)
        self.mean = torch.empty(n * c)
        self.rstd = torch.empty(n * c)
        self.n, self.c, self.hw = n, c, hw

    def kwargs(self, **override: object) -> dict[str, object]:
        args: dict[str, object] = dict(
            device="cpu", dtype=F32, x=self.x.data_ptr(), weight=0, bias=0, residual=0, y=self.y.data_ptr(),
            mean=self.mean.data_ptr(), rstd=self.rstd.data_ptr(), n=self.n, c=self.c, plane_size=self.hw,
            eps=1e-5, negative_slope=0.2, activation=LEAKY, num_threads=1,
        )
        args.update(override)
        return args


_FORWARD_REJECTS = [
    ({"device": "xpu"}, r"device must be 'cpu' or 'cuda', got 'xpu'"),
    ({"dtype": 7}, r"dtype must be a dtype code .* got 7"),
    ({"dtype": F16}, r"dtype must be float32, float64 or bfloat16 on cpu, got float16"),
    ({"dtype": U8}, r"dtype must be float32, float64 or bfloat16 on cpu, got uint8"),
    ({"activation": 3}, r"activation must be an activation code .* got 3"),
    ({"x": 0}, r"instance_norm_act_forward: x must be a non-null address .* got 0"),
    ({"y": 0}, r"y must be a non-null address"),
    ({"mean": 0}, r"mean must be a non-null address"),
    ({"rstd": 0}, r"rstd must be a non-null address"),
    ({"n": 0}, r"n must be > 0, got 0"),
    ({"c": -1}, r"c must be > 0, got -1"),
    ({"plane_size": 0}, r"plane_size must be > 0, got 0"),
    ({"n": 2**40, "c": 2**40}, r"n \* c \* plane_size overflows int64"),
    ({"eps": float("nan")}, r"eps must be finite and >= 0, got nan"),
    ({"eps": -1e-5}, r"eps must be finite and >= 0, got -1e-05"),
    ({"eps": 1e300}, r"eps must be finite"),
    ({"negative_slope": -0.1}, r"negative_slope must be finite and >= 0, got -0.1"),
    ({"negative_slope": float("inf"), "activation": NONE}, r"negative_slope must be finite, got inf"),
    ({"num_threads": 0}, r"num_threads must be >= 1, got 0"),
]


@pytest.mark.parametrize(
    ("override", "match"),
    _FORWARD_REJECTS,
    ids=["-".join(f"{k}={v}" for k, v in override.items()) for override, _ in _FORWARD_REJECTS],
)
def test_instance_norm_forward_rejects(override: dict[str, object], match: str) -> None:
    buf = _Norm()
    before = buf.y.clone()
    with pytest.raises(ValueError, match=match):
        _C.instance_norm_act_forward(**buf.kwargs(**override))
    assert torch.equal(buf.y.nan_to_num(), before.nan_to_num()), "a rejected call must not write its outputs"


def test_instance_norm_forward_accepts_valid_arguments() -> None:
    buf = _Norm()
    _C.instance_norm_act_forward(**buf.kwargs(activation=NONE))
    assert torch.allclose(buf.y.mean(-1), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(buf.mean, buf.x.mean(-1).flatten(), atol=1e-6)


def test_instance_norm_backward_requires_sums() -> None:
    buf = _Norm()
    grad = torch.empty_like(buf.x)
    args = dict(
        device="cpu", dtype=F32, grad_y=buf.x.data_ptr(), x=buf.x.data_ptr(), y=buf.y.data_ptr(), weight=0,
        mean=buf.mean.data_ptr(), rstd=buf.rstd.data_ptr(), grad_x=grad.data_ptr(), grad_residual=0,
        sum_dy=0, sum_dy_xhat=buf.rstd.data_ptr(), n=2, c=3, plane_size=20, negative_slope=0.2, activation=LEAKY,
    )
    with pytest.raises(ValueError, match=r"instance_norm_act_backward: sum_dy must be a non-null address"):
        _C.instance_norm_act_backward(**args)


def test_sampling_rejects_bad_seed_offset_and_sizes() -> None:
    out = torch.empty(8)
    p = out.data_ptr()
    with pytest.raises(ValueError, match=r"standard_normal: seed must be in \[0, 2\*\*64 - 1\], got -1"):
        _C.standard_normal("cpu", F32, p, 8, -1, 0)
    with pytest.raises(ValueError, match=r"offset must be in \[0, 2\*\*64 - 1\], got 18446744073709551616"):
        _C.standard_normal("cpu", F32, p, 8, 0, 2**64)
    with pytest.raises(TypeError, match=r"seed must be an int .* got float"):
        _C.standard_normal("cpu", F32, p, 8, 1.5, 0)
    with pytest.raises(ValueError, match=r"offset \+ numel must be < 2\*\*64"):
        _C.standard_normal("cpu", F32, p, 8, 0, 2**64 - 4)
    with pytest.raises(ValueError, match=r"numel must be > 0, got 0"):
        _C.standard_normal("cpu", F32, p, 0, 0, 0)
    # bfloat16 on CPU is an instance-norm kernel only.
    with pytest.raises(ValueError, match=r"standard_normal: dtype must be float32 or float64 on cpu, got bf"):
        _C.standard_normal("cpu", BF16, p, 8, 0, 0)
    with pytest.raises(ValueError, match=r"reparameterize_forward: logvar must be a non-null address"):
        _C.reparameterize_forward("cpu", F32, p, 0, p, 0, 8, 0, 0)
    with pytest.raises(ValueError, match=r"reparameterize_backward: grad_logvar must be a non-null address"):
        _C.reparameterize_backward("cpu", F32, p, p, 0, 8, 0, 0)
    # Seeds use all 64 bits, and the stream may run up to position 2**64 - 2 without wrapping around.
    _C.standard_normal("cpu", F32, p, 8, 2**64 - 1, 2**64 - 9)
    longer = torch.empty(13)
    _C.standard_normal("cpu", F32, longer.data_ptr(), 13, 2**64 - 1, 2**64 - 14)
    assert torch.isfinite(out).all() and torch.equal(out, longer[5:])


def test_image_conversions_reject_bad_arguments() -> None:
    img = torch.zeros(1, 2, 2, 3, dtype=torch.uint8)
    t = torch.empty(1, 3, 2, 2)
    with pytest.raises(ValueError, match=r"images_to_tensor: dtype must be float32 or float64 on cpu, got uint8"):
        _C.images_to_tensor("cpu", U8, img.data_ptr(), t.data_ptr(), 1, 2, 2, 3)
    with pytest.raises(ValueError, match=r"images_to_tensor: src must be a non-null address"):
        _C.images_to_tensor("cpu", F32, 0, t.data_ptr(), 1, 2, 2, 3)
    with pytest.raises(ValueError, match=r"tensor_to_images: w must be > 0, got 0"):
        _C.tensor_to_images("cpu", F32, t.data_ptr(), img.data_ptr(), 1, 3, 2, 0)


def test_philox_binding_checks_words() -> None:
    assert _C.philox4x32_10((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    with pytest.raises(ValueError, match=r"counter must have 4 uint32 words, got 3"):
        _C.philox4x32_10((0, 0, 0), (0, 0))
    with pytest.raises(ValueError, match=r"key\[1\] must be in \[0, 2\*\*32 - 1\], got 4294967296"):
        _C.philox4x32_10((0, 0, 0, 0), (0, 2**32))


def test_cuda_device_errors_without_touching_memory() -> None:
    buf = _Norm()
    if not _C.cuda_compiled:
        with pytest.raises(RuntimeError, match=r"built without its CUDA kernels"):
            _C.instance_norm_act_forward(**buf.kwargs(device="cuda"))
        return
    # Dtype rules are checked before anything reaches the GPU.
    with pytest.raises(ValueError, match=r"dtype must be float32, float16 or bfloat16 on cuda, got float64"):
        _C.instance_norm_act_forward(**buf.kwargs(device="cuda", dtype=F64))
    with pytest.raises(ValueError, match=r"channels_last must be false on cuda .* got true"):
        _C.instance_norm_act_forward(**buf.kwargs(device="cuda", channels_last=True))
    if _C.cuda_device_count() > 0:
        return  # launching on CPU addresses would fault on a real device
    # Compiled in but no device: the launch fails and is reported, never a crash.
    with pytest.raises(RuntimeError, match=r"instance_norm_act_forward_cuda: kernel launch failed"):
        _C.instance_norm_act_forward(**buf.kwargs(device="cuda"))


def test_instance_norm_workspace_query() -> None:
    """The CUDA split path takes its scratch from the caller: the query is 0 on CPU and for planes one block
    holds, and otherwise covers the per-(plane, chunk) partial statistics (16 bytes forward, 8 backward, per
    4096-element chunk) plus 4 bytes per plane forward."""
    assert _C.instance_norm_act_workspace("cpu", 2, 3, 10**6) == 0
    with pytest.raises(ValueError, match=r"instance_norm_act_workspace: plane_size must be > 0, got 0"):
        _C.instance_norm_act_workspace("cpu", 1, 1, 0)
    if not _C.cuda_compiled:
        with pytest.raises(RuntimeError, match=r"built without its CUDA kernels"):
            _C.instance_norm_act_workspace("cuda", 1, 1, 10**6)
        return
    assert _C.instance_norm_act_workspace("cuda", 4, 64, 8192) == 0
    assert _C.instance_norm_act_workspace("cuda", 4, 64, 8192, backward=True) == 0
    planes, chunks = 2 * 3, 1024 * 1024 // 4096
    assert _C.instance_norm_act_workspace("cuda", 2, 3, 1024 * 1024) == planes * chunks * 16 + planes * 4
    assert _C.instance_norm_act_workspace("cuda", 2, 3, 1024 * 1024, backward=True) == planes * chunks * 8
    # A plane one element past a chunk boundary needs one more chunk.
    assert _C.instance_norm_act_workspace("cuda", 1, 1, 8193) == 3 * 16 + 4


def test_instance_norm_workspace_arguments_are_checked() -> None:
    buf = _Norm()
    with pytest.raises(ValueError, match=r"workspace_bytes must be >= 0, got -1"):
        _C.instance_norm_act_forward(**buf.kwargs(workspace=buf.y.data_ptr(), workspace_bytes=-1))
    with pytest.raises(ValueError, match=r"workspace must be a non-null address when workspace_bytes > 0"):
        _C.instance_norm_act_forward(**buf.kwargs(workspace=0, workspace_bytes=64))
    # CPU kernels need no workspace and ignore one that is passed.
    _C.instance_norm_act_forward(**buf.kwargs(workspace=buf.rstd.data_ptr(), workspace_bytes=4))
    assert torch.allclose(buf.mean, buf.x.mean(-1).flatten(), atol=1e-6)


def test_cuda_split_path_requires_a_large_enough_workspace() -> None:
    """Checked before anything is launched, so this runs on machines without a GPU too (the launch that would
    follow a valid workspace is never reached there)."""
    if not _C.cuda_compiled:
        pytest.skip("ganrt._C was built without CUDA kernels")
    if _C.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present: CPU addresses must not reach a launch (tests/gpu covers it)")
    big = _Norm(n=1, c=2, hw=9000)  # > 8192 elements per plane: the split path
    need = _C.instance_norm_act_workspace("cuda", 1, 2, 9000)
    with pytest.raises(RuntimeError, match=rf"split path needs a device workspace of {need} bytes, got none"):
        _C.instance_norm_act_forward(**big.kwargs(device="cuda"))
    with pytest.raises(RuntimeError, match=rf"needs a device workspace of {need} bytes, got {need - 8} bytes"):
        _C.instance_norm_act_forward(
            **big.kwargs(device="cuda", workspace=big.y.data_ptr(), workspace_bytes=need - 8)
        )
    with pytest.raises(RuntimeError, match=r"workspace must be 8-byte aligned"):
        _C.instance_norm_act_forward(
            **big.kwargs(device="cuda", workspace=big.y.data_ptr() + 4, workspace_bytes=need)
        )


def test_cpu_results_do_not_depend_on_thread_count_or_concurrency() -> None:
    """Few large planes take the split path (chunks spread over threads); results must be bit-identical."""
    x = torch.randn(1, 2, 300, 300) * 5 + 100
    g = torch.randn_like(x)

    def run(threads: int) -> list[torch.Tensor]:
        y, gx = torch.empty_like(x), torch.empty_like(x)
        mean, rstd, s1, s2 = (torch.empty(2) for _ in range(4))
        common = dict(device="cpu", dtype=F32, n=1, c=2, plane_size=90000, negative_slope=0.2, activation=LEAKY)
        _C.instance_norm_act_forward(
            x=x.data_ptr(), weight=0, bias=0, residual=0, y=y.data_ptr(), mean=mean.data_ptr(),
            rstd=rstd.data_ptr(), eps=1e-5, num_threads=threads, **common,
        )
        _C.instance_norm_act_backward(
            grad_y=g.data_ptr(), x=x.data_ptr(), y=y.data_ptr(), weight=0, mean=mean.data_ptr(),
            rstd=rstd.data_ptr(), grad_x=gx.data_ptr(), grad_residual=0, sum_dy=s1.data_ptr(),
            sum_dy_xhat=s2.data_ptr(), num_threads=threads, **common,
        )
        z = torch.empty(50_001)
        _C.standard_normal("cpu", F32, z.data_ptr(), z.numel(), 5, 3, num_threads=threads)
        return [y, mean, rstd, gx, s1, s2, z]

    reference = run(1)
    for threads in (2, 3, 8):
        assert all(torch.equal(a, b) for a, b in zip(run(threads), reference)), f"num_threads={threads}"

    mismatches: list[int] = []

    def worker() -> None:
        for _ in range(5):
            if not all(torch.equal(a, b) for a, b in zip(run(3), reference)):
                mismatches.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not mismatches
