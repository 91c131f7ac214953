"""ONNX Runtime backend: the CPU execution provider tuned for the machine, CUDA provider with I/O binding.

The only place in ganrt that creates an ``onnxruntime.InferenceSession``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganrt.backends.base import Runner, TensorSpec
from ganrt.backends.device import cuda_device_count, physical_cores, require_cuda
from ganrt.errors import ArtifactError, BackendUnavailableError

if TYPE_CHECKING:
    import torch

# ONNX Runtime's tensor type strings -> numpy dtype names.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # a declared dependency, but a broken environment should still say what to do
        raise BackendUnavailableError(
            "onnxruntime is not installed: pip install onnxruntime "
            "(or onnxruntime-gpu for the CUDA execution provider)"
        ) from exc
    return onnxruntime


def cuda_provider_available() -> bool:
    """True when onnxruntime-gpu's CUDA execution provider and a CUDA device (through torch) are present."""
    ort = _import_ort()
    return "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_count() > 0


def _spec(arg: Any) -> TensorSpec:
    dtype = _ORT_TYPES.get(arg.type)
    if dtype is None:
        raise ArtifactError(f"graph tensor {arg.name!r} has unsupported type {arg.type}")
    # Symbolic (str) or missing (None) dimensions are dynamic.
    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, dtype, shape)


class OnnxRuntimeRunner(Runner):
    """An ``onnxruntime.InferenceSession`` with one reusable I/O binding.

    ``run`` binds caller-owned buffers (host tensors on CPU, device tensors on CUDA) so no copies or
    allocations happen inside ONNX Runtime beyond its own arena.
    """

    backend = "onnxruntime"
    artifacts = ("onnx",)

    @classmethod
    def load(
        cls, path: Path, *, device: str = "cpu", device_index: int = 0, threads: int | None = None, **options: Any
    ) -> OnnxRuntimeRunner:
        if options:
            raise TypeError(f"onnxruntime takes no options {sorted(options)}")
        return cls(path, device=device, device_index=device_index, threads=threads)

    def __init__(self, path: Path, *, device: str = "cpu", device_index: int = 0, threads: int | None = None):
        ort = _import_ort()
        if device == "cuda":
            require_cuda(device_index, what="onnxruntime on CUDA")
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError(
                    "onnxruntime on CUDA needs the CUDA execution provider: pip uninstall onnxruntime && "
                    "pip install onnxruntime-gpu"
                )
        self.threads = threads if threads is not None else physical_cores()
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Batch-1 image generators are one chain of convolutions: parallelism lives inside ops, so one
        # inter-op thread and intra-op threads = physical cores (more only contend for the same cores).
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only; initializer-pruning notices are not the user's business
        self._torch_stream: torch.cuda.Stream | None = None
        if device == "cuda":
            import torch

            self._torch_stream = torch.cuda.Stream(device=device_index)
            # ONNX Runtime computes on our stream, so the pre/post kernels queued there are ordered with it.
            providers: list[Any] = [
                (
                    "CUDAExecutionProvider",
                    {
                        "device_id": device_index,
                        # Implies has_user_compute_stream (torch.cuda.Stream() is never the null stream).
                        "user_compute_stream": str(self._torch_stream.cuda_stream),
                    },
                ),
                "CPUExecutionProvider",
            ]
        else:
            providers = ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own pybind exception types (InvalidProtobuf, Fail, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(
                f"{path}: not a loadable ONNX model (truncated or corrupt?): {first}"
            ) from exc
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            # get_available_providers() lists what was compiled in; whether the CUDA provider really loaded
            # (CUDA/cuDNN libraries present, driver new enough) only shows on the session.
            raise BackendUnavailableError(
                f"onnxruntime could not start its CUDA execution provider (session providers: "
                f"{self.session.get_providers()}); check that the CUDA and cuDNN libraries onnxruntime-gpu "
                f"{ort.__version__} needs are installed"
            )
        self.path = path
        self.device = "cpu" if device == "cpu" else f"cuda:{device_index}"
        self._device_type, self._device_index = ("cpu", 0) if device == "cpu" else ("cuda", device_index)
        self.inputs = [_spec(arg) for arg in self.session.get_inputs()]
        self.outputs = [_spec(arg) for arg in self.session.get_outputs()]
        batch_dims = {spec.shape[0] for spec in self.inputs if spec.shape}
        self.max_batch = None if -1 in batch_dims or not batch_dims else min(batch_dims)
        dtypes = {spec.dtype for spec in self.inputs + self.outputs if spec.dtype.startswith("float")}
        self.precision = "fp16" if dtypes == {"float16"} else "fp32"
        self._binding = self.session.io_binding()

    def metadata_props(self) -> dict[str, str]:
        """The model's ``metadata_props`` (ganrt's keys start with ``ganrt.``)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def stream(self) -> torch.cuda.Stream | None:
        return self._torch_stream

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for bind, tensors in ((binding.bind_input, feeds), (binding.bind_output, outputs)):
            for name, tensor in tensors.items():
                bind(
                    name,
                    self._device_type,
                    self._device_index,
                    _numpy_dtype(tensor),
                    tuple(tensor.shape),
                    tensor.data_ptr(),
                )
        self.session.run_with_iobinding(binding)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        names = [spec.name for spec in self.outputs]
        values = self.session.run(names, {k: np.ascontiguousarray(v) for k, v in feeds.items()})
        return dict(zip(names, values, strict=True))

    def info(self) -> dict[str, Any]:
        return {"providers": self.session.get_providers(), "io_binding": True}

    def close(self) -> None:
        self._binding = None
        self.session = None


def _numpy_dtype(tensor: torch.Tensor) -> type:
    return np.dtype(str(tensor.dtype).removeprefix("torch.")).type
