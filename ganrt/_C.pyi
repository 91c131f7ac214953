"""Type stub for the compiled core ``ganrt._C``.

Every kernel entry point takes raw addresses (``tensor.data_ptr()``, 0 for "absent"), sizes, a dtype code and
a device string. ``device`` is ``"cpu"`` or ``"cuda"``; for ``"cuda"`` the work is queued on ``stream``
(``torch.cuda.current_stream().cuda_stream``), for ``"cpu"`` it runs on ``num_threads`` threads. Arguments are
validated here once (null pointers, sizes, codes); tensor-level checks live in ``ganrt.ops``. The GIL is released
while kernels run.

dtype codes: 0 float32, 1 float64, 2 float16, 3 bfloat16, 4 uint8. CPU kernels take float32 and float64
(images: float32 only); CUDA kernels take float32, float16 and bfloat16.
activation codes: 0 none, 1 relu, 2 leaky_relu.
"""

cuda_compiled: bool
"""True when the module was built with its CUDA kernels."""

def cuda_device_count() -> int:
    """Number of CUDA devices visible to the CUDA runtime; 0 without a build, a driver or a device."""

def instance_norm_act_forward(
    device: str, dtype: int, x: int, weight: int, bias: int, residual: int, y: int, mean: int, rstd: int,
    n: int, c: int, plane_size: int, eps: float, negative_slope: float, activation: int,
    stream: int = 0, num_threads: int = 1,
) -> None: ...
def instance_norm_act_backward(
    device: str, dtype: int, grad_y: int, x: int, y: int, weight: int, mean: int, rstd: int,
    grad_x: int, grad_residual: int, sum_dy: int, sum_dy_xhat: int,
    n: int, c: int, plane_size: int, negative_slope: float, activation: int,
    stream: int = 0, num_threads: int = 1,
) -> None: ...
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
