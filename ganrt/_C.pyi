"""Type stub for the compiled core ``ganrt._C``.

Every kernel entry point takes raw addresses (``tensor.data_ptr()``, 0 for "absent"), sizes, a dtype code and
a device string. ``device`` is ``"cpu"`` or ``"cuda"``; for ``"cuda"`` the work is queued on ``stream``
(``torch.cuda.current_stream().cuda_stream``), for ``"cpu"`` it runs on ``num_threads`` threads. Arguments are
validated here once (null pointers, sizes, codes); tensor-level checks live in ``ganrt.ops``. The GIL is released
while kernels run.

dtype codes: 0 float32, 1 float64, 2 float16, 3 bfloat16, 4 uint8. CPU kernels take float32 and float64
(images included), the instance-norm kernels also bfloat16; CUDA kernels take float32, float16 and bfloat16.
``channels_last`` (instance norm): the tensors are contiguous (N, H, W, C) instead of (N, C, H, W); CPU only.
activation codes: 0 none, 1 relu, 2 leaky_relu.

Invalid arguments raise ValueError (TypeError for a seed/offset that is not an int); ``device="cuda"`` in a
build without CUDA kernels and failures inside a launcher (CUDA errors) raise RuntimeError. Sizes must be > 0:
skip empty tensors before calling.

Philox normals (``standard_normal``, ``reparameterize_*``): element i of a call is stream position
g = offset + i; counter = g // 4 (low 64 bits of the 128-bit counter, words 2 and 3 zero), key = (seed & 0xFFFFFFFF,
seed >> 32), lane = g % 4. With (x0, x1, x2, x3) = philox4x32_10(counter, key), lanes 0 and 1 come from
(a, b) = (x0, x1), lanes 2 and 3 from (x2, x3), by Box-Muller evaluated in double precision:
u = (a + 0.5) / 2**32 in (0, 1), t = b / 2**32 in [0, 1), r = sqrt(-2 ln u),
lane 0 or 2 = r cos(2 pi t), lane 1 or 3 = r sin(2 pi t); the double is then rounded to the output dtype.
CPU and CUDA compute the same values (the double arithmetic differs at most by fused multiply-adds, which
after rounding to float changes an element with probability ~1e-9).
"""

cuda_compiled: bool
"""True when the module was built with its CUDA kernels."""

def cuda_device_count() -> int:
    """Number of CUDA devices visible to the CUDA runtime; 0 without a build, a driver or a device."""

def instance_norm_act_forward(
    device: str, dtype: int, x: int, weight: int, bias: int, residual: int, y: int, mean: int, rstd: int,
    n: int, c: int, plane_size: int, eps: float, negative_slope: float, activation: int,
    channels_last: bool = False, stream: int = 0, num_threads: int = 1, workspace: int = 0,
    workspace_bytes: int = 0,
) -> None:
    """``workspace``: device scratch of ``workspace_bytes`` bytes for the CUDA split path, at least
    :func:`instance_norm_act_workspace` bytes (allocated by the caller; ignored on CPU)."""
def instance_norm_act_backward(
    device: str, dtype: int, grad_y: int, x: int, y: int, weight: int, mean: int, rstd: int,
    grad_x: int, grad_residual: int, sum_dy: int, sum_dy_xhat: int,
    n: int, c: int, plane_size: int, negative_slope: float, activation: int,
    channels_last: bool = False, stream: int = 0, num_threads: int = 1, workspace: int = 0,
    workspace_bytes: int = 0,
) -> None: ...
def instance_norm_act_workspace(device: str, n: int, c: int, plane_size: int, backward: bool = False) -> int:
    """Workspace bytes the forward (or backward) kernel needs on ``device`` for these sizes: 0 on CPU and for
    planes one CUDA block holds (up to 8192 elements); a host-side query that touches no device."""
def standard_normal(
    device: str, dtype: int, out: int, numel: int, seed: int, offset: int, stream: int = 0, num_threads: int = 1
) -> None: ...
def reparameterize_forward(
    device: str, dtype: int, mu: int, logvar: int, z: int, eps_out: int, numel: int, seed: int, offset: int,
    stream: int = 0, num_threads: int = 1,
) -> None: ...
def reparameterize_backward(
    device: str, dtype: int, grad_z: int, logvar: int, grad_logvar: int, numel: int, seed: int, offset: int,
    stream: int = 0, num_threads: int = 1,
) -> None: ...
def images_to_tensor(
    device: str, dtype: int, src: int, dst: int, n: int, h: int, w: int, c: int, stream: int = 0, num_threads: int = 1
) -> None: ...
def tensor_to_images(
    device: str, dtype: int, src: int, dst: int, n: int, c: int, h: int, w: int, stream: int = 0, num_threads: int = 1
) -> None: ...
def philox4x32_10(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, int, int, int]:
    """One Philox4x32-10 block (Random123's philox4x32_10): uint32 words, word 0 least significant.

    The exact function the kernels use; exposed for the published known-answer tests.
    """
