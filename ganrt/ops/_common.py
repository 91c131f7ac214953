"""Shared plumbing of the ganrt ops: argument checks and the bridge to the compiled kernels in ``ganrt._C``.

The kernels take raw addresses, so everything that makes a call safe (dtype, device, rank, shapes, contiguity,
value ranges) is checked here in Python, once, before an address leaves PyTorch.
"""

from __future__ import annotations

import math
from typing import Any

import torch

# dtype codes of the ``ganrt._C`` contract (see csrc/ops.h).
DTYPE_CODES: dict[torch.dtype, int] = {
    torch.float32: 0,
    torch.float64: 1,
    torch.float16: 2,
    torch.bfloat16: 3,
    torch.uint8: 4,
}
# Floating dtypes each device's kernels implement.
FLOAT_DTYPES: dict[str, tuple[torch.dtype, ...]] = {
    "cpu": (torch.float32, torch.float64),
    "cuda": (torch.float32, torch.float16, torch.bfloat16),
}
ACTIVATION_CODES: dict[str, int] = {"none": 0, "relu": 1, "leaky_relu": 2}

_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _names(dtypes: tuple[torch.dtype, ...]) -> str:
    names = [dtype_name(d) for d in dtypes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def check_device(name: str, t: torch.Tensor) -> str:
    """Return the device type of ``t`` ("cpu" or "cuda"), or raise for devices without ganrt kernels."""
    kind = t.device.type
    if kind not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be on a CPU or CUDA device, got {t.device}")
    return kind


def check_float(
    name: str, t: torch.Tensor, allowed: dict[str, tuple[torch.dtype, ...]] = FLOAT_DTYPES
) -> None:
    """Check that ``t`` is a floating tensor of a dtype the kernels of its device implement."""
    if t.is_cpu and t.dtype in allowed["cpu"]:
        return  # the common case, without building a torch.device (per-call cost matters for small tensors)
    kind = check_device(name, t)
    if t.dtype not in allowed[kind]:
        raise TypeError(
            f"{name} must be {_names(allowed[kind])} on {kind.upper()}, got {dtype_name(t.dtype)}"
        )


def check_same(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """Check that ``t`` has the dtype and device of ``ref``."""
    if t.dtype is ref.dtype and t.is_cpu and ref.is_cpu:
        return  # fast path: there is one CPU device
    if t.device != ref.device:
        raise ValueError(f"{name} must be on the device of {ref_name} ({ref.device}), got {t.device}")
    if t.dtype != ref.dtype:
        raise TypeError(
            f"{name} must have the dtype of {ref_name} ({dtype_name(ref.dtype)}), got {dtype_name(t.dtype)}"
        )


def check_rank4(name: str, t: torch.Tensor) -> None:
    if t.dim() != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got {t.dim()}-D")


def check_finite_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def check_activation(activation: str, negative_slope: float) -> int:
    """Return the activation code; the backward pass needs ``negative_slope >= 0`` (mask taken from y > 0)."""
    if activation not in ACTIVATION_CODES:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_CODES)}, got {activation!r}")
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
        raise TypeError(f"negative_slope must be a float, got {type(negative_slope).__name__}")
    if not math.isfinite(negative_slope) or negative_slope < 0.0:
        # With a negative slope the sign of y no longer tells which branch x took, and the backward pass
        # recovers the activation mask from the saved output.
        raise ValueError(f"negative_slope must be finite and >= 0, got {negative_slope}")
    return ACTIVATION_CODES[activation]


def check_u64(name: str, value: int) -> int:
    """Check a Philox seed/offset: a Python int in [0, 2**64 - 1]."""
    if isinstance(value, torch.SymInt):
        # Traced by torch.compile as a dynamic int: range-checked by the kernel call at run time.
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [0, 2**64 - 1], got {type(value).__name__}")
    if not 0 <= value < _U64:
        raise ValueError(f"{name} must be in [0, 2**64 - 1], got {value}")
    return value


def u64_to_i64(value: int) -> int:
    """Two's-complement view of a uint64: operator schemas carry int64, Philox seeds use all 64 bits."""
    if isinstance(value, torch.SymInt):
        return value
    return value - _U64 if value > _I64_MAX else value


def i64_to_u64(value: int) -> int:
    return int(value) % _U64


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """The layout of outputs: channels_last when ``x`` is (only) channels_last, else contiguous."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


_KERNELS: dict[str, Any] = {}


def kernel(name: str) -> Any:
    """Look up a kernel entry point of ``ganrt._C`` with an actionable error when the build predates it."""
    fn = _KERNELS.get(name)
    if fn is None:
        from ganrt import _C

        fn = getattr(_C, name, None)
        if fn is None:
            raise RuntimeError(
                f"ganrt._C has no kernel {name!r}: the compiled extension is older than the Python sources; "
                "rebuild it with `.venv/bin/pip install --no-build-isolation -e .`"
            )
        _KERNELS[name] = fn
    return fn


def run_kernel(
    name: str, t: torch.Tensor, *args: Any, threads: int | None = None, workspace: torch.Tensor | None = None
) -> None:
    """Call ``ganrt._C.<name>(device, *args, ...)`` for tensors on ``t``'s device.

    CPU: on ``threads`` threads (default ``torch.get_num_threads()``). CUDA: queued on torch's current stream
    of ``t``'s device, with that device made current for the launch; ``workspace`` (a uint8 tensor on that
    device, from torch's caching allocator) is passed as the kernel's scratch. ``torch.cuda`` is only touched
    for CUDA tensors.
    """
    fn = _KERNELS.get(name) or kernel(name)
    if t.is_cpu:
        # stream and num_threads positionally: pybind11's keyword matching costs ~2 us per call.
        fn("cpu", *args, 0, torch.get_num_threads() if threads is None else threads)
        return
    if t.device.type != "cuda":
        raise ValueError(f"ganrt kernels run on CPU or CUDA tensors, got a tensor on {t.device}")
    from ganrt import _C

    if not _C.cuda_compiled:
        raise RuntimeError(
            "ganrt was built without its CUDA kernels; rebuild on a machine with nvcc: "
            "GANRT_CUDA=ON .venv/bin/pip install --no-build-isolation -e ."
        )
    extra = {} if workspace is None else {"workspace": workspace.data_ptr(), "workspace_bytes": workspace.numel()}
    with torch.cuda.device(t.device):
        fn("cuda", *args, stream=torch.cuda.current_stream(t.device).cuda_stream, **extra)


def cuda_workspace(query: str, t: torch.Tensor, *sizes: Any) -> torch.Tensor | None:
    """Scratch for a CUDA kernel on ``t``'s device: ``ganrt._C.<query>("cuda", *sizes)`` bytes from torch's
    caching allocator (stream-ordered on the current stream, captured into CUDA graphs like any tensor), or
    ``None`` when the kernel needs none."""
    nbytes = kernel(query)("cuda", *sizes)
    return torch.empty(nbytes, dtype=torch.uint8, device=t.device) if nbytes else None


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def eager_fast_path(*tensors: torch.Tensor | None) -> bool:
    """True when nothing traces or intercepts the call: plain tensors, no tracer, compiler, mode or transform.

    The ops then call their implementation directly (with a plain ``torch.autograd.Function`` when gradients
    are needed) instead of going through the dispatcher and ``torch.library``'s autograd wrapper, which costs
    tens of microseconds per call in eager mode. Anything else (torch.compile, torch.export / ONNX export,
    FakeTensor, jit tracing, functorch transforms, ``with torch.device(...)``) takes the registered op, and so
    does a call under the autograd profiler, so profiles show the ``ganrt::`` ops by name.
    """
    # is_compiling() first: under torch.compile it short-circuits before dynamo meets the torch._C queries.
    return (
        not torch.compiler.is_compiling()
        and all(t is None or type(t) in _PLAIN for t in tensors)
        and torch._C._get_tracing_state() is None
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._is_torch_function_mode_enabled()
        and torch._C._functorch.peek_interpreter_stack() is None
        and not torch.autograd.profiler._is_profiler_enabled
    )


def ptr(t: torch.Tensor | None) -> int:
    """Address of a tensor's first element, 0 for an absent (None) tensor."""
    return 0 if t is None else t.data_ptr()
