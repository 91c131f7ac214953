"""TensorRT backend (10.x and 11.x): deserialized plan, one execution context, a non-default stream, a CUDA
graph per input shape (falling back to plain enqueue when capture fails) and pinned host staging for host I/O.

TensorRT is imported lazily; without it (or without a CUDA device) loading raises
:class:`~ganrt.runtime.errors.BackendUnavailableError` that says what is missing. Engines are executable
artifacts: only load plans you built or received over a trusted channel.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ganrt.runtime._device import require_cuda
from ganrt.runtime.backends.base import Runner, TensorSpec
from ganrt.runtime.errors import ArtifactError, BackendUnavailableError

# TensorRT DataType enum *names* (11.x renumbered the values) -> numpy dtype names.
_TRT_TYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "BOOL": "bool",
}
# Distinct (shapes, addresses) keys a runner keeps CUDA graphs and staging buffers for (each holds device
# memory).
_CACHE_SIZE = 8


def import_tensorrt() -> Any:
    """``import tensorrt`` or a :class:`BackendUnavailableError` saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailableError(
            "TensorRT is not installed: on a machine with an NVIDIA GPU run `pip install tensorrt` "
            "(TensorRT 10 or 11), or load the .onnx artifact with backend='onnxruntime'"
        ) from exc
    return tensorrt


def _make_logger(trt: Any) -> Any:
    class CapturingLogger(trt.ILogger):
        """Keeps TensorRT's error messages so a failed deserialize/enqueue can say why."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(msg)

    return CapturingLogger()


class TensorRTRunner(Runner):
    """Runs a serialized TensorRT engine on ``cuda:<device_index>``."""

    backend = "tensorrt"

    def __init__(self, path: Path, *, device_index: int = 0, cuda_graphs: bool = True):
        trt = import_tensorrt()
        require_cuda(device_index, what="the TensorRT backend")
        import torch

        data = path.read_bytes()
        if not data:
            raise ArtifactError(f"{path}: empty file, not a TensorRT engine")
        self._trt = trt
        self._logger = _make_logger(trt)
        self._torch_device = torch.device("cuda", device_index)
        with torch.cuda.device(self._torch_device):
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(data)
            if self.engine is None:
                why = self._logger.errors[-1] if self._logger.errors else "no reason given"
                raise ArtifactError(
                    f"{path}: TensorRT {trt.__version__} could not deserialize this engine (truncated, "
                    f"corrupt, or built by another TensorRT version or for another GPU): {why}"
                )
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise BackendUnavailableError(
                    f"{path}: TensorRT could not create an execution context "
                    f"(out of device memory?): {self._logger.errors[-1:]}"
                )
            self._stream = torch.cuda.Stream(device=self._torch_device)
        self.path = path
        self.device = f"cuda:{device_index}"
        self.threads = None
        self.inputs, self.outputs = [], []
        max_batches = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dtype_name = self.engine.get_tensor_dtype(name).name
            if dtype_name not in _TRT_TYPES:
                raise ArtifactError(
                    f"{path}: tensor {name!r} has TensorRT type {dtype_name}; ganrt feeds "
                    f"{sorted(_TRT_TYPES)}"
                )
            spec = TensorSpec(
                name, _TRT_TYPES[dtype_name], tuple(int(d) for d in self.engine.get_tensor_shape(name))
            )
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.inputs.append(spec)
                if spec.shape:
                    max_shape = (
                        self.engine.get_tensor_profile_shape(name, 0)[2]
                        if spec.shape[0] == -1
                        else spec.shape
                    )
                    max_batches.append(int(max_shape[0]))
            else:
                self.outputs.append(spec)
        self.max_batch = min(max_batches) if max_batches else None
        floats = {s.dtype for s in self.inputs + self.outputs if s.dtype.startswith("float")}
        self.precision = "fp16" if floats == {"float16"} else "fp32"
        self.cuda_graphs = cuda_graphs
        self._graphs: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._graph_error: str | None = None
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._staging: collections.OrderedDict[tuple, dict[str, Any]] = collections.OrderedDict()

    @property
    def stream(self) -> Any:
        return self._stream

    def _set_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        for name, shape in shapes.items():
            if self._shapes.get(name) == shape:
                continue
            if not self.context.set_input_shape(name, shape):
                lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
                raise ValueError(
                    f"input {name!r} shape {shape} is outside this engine's optimization profile "
                    f"[{tuple(lo)} .. {tuple(hi)}]; rebuild the engine with a wider --batch/--height/"
                    f"--width range"
                )
            self._shapes[name] = shape

    def output_shapes(self, feeds: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        self._set_shapes(feeds)
        return {s.name: tuple(int(d) for d in self.context.get_tensor_shape(s.name)) for s in self.outputs}

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution failed: {self._logger.errors[-1:] or 'no reason given'}")

    def _capture(self, key: tuple) -> Any:
        """A CUDA graph of one enqueue for these shapes and addresses, or ``None`` when capture fails."""
        import torch

        # The first enqueue for a shape may allocate and autotune, which cannot happen inside a capture.
        self._enqueue()
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: CUDA calls from other threads (a server's request threads) stay legal while
            # capturing.
            with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
                self._enqueue()
        except RuntimeError as exc:
            self._graph_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            graph = None
        self._graphs[key] = graph
        while len(self._graphs) > _CACHE_SIZE:
            self._graphs.popitem(last=False)
        return graph

    def run(self, feeds: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        import torch

        with torch.cuda.device(self._torch_device):
            self._run(feeds, outputs)

    def _run(self, feeds: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        import torch

        self._set_shapes({name: tuple(t.shape) for name, t in feeds.items()})
        key = []
        for name, tensor in feeds.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
            key.append((name, tuple(tensor.shape), tensor.data_ptr()))
        for name, tensor in outputs.items():
            want = tuple(int(d) for d in self.context.get_tensor_shape(name))
            if tuple(tensor.shape) != want:
                raise ValueError(
                    f"output buffer {name!r} has shape {tuple(tensor.shape)}, engine produces {want}"
                )
            self.context.set_tensor_address(name, tensor.data_ptr())
            key.append((name, want, tensor.data_ptr()))
        if not self.cuda_graphs:
            self._enqueue()
            return
        graph_key = tuple(key)
        if graph_key in self._graphs:
            self._graphs.move_to_end(graph_key)
            graph = self._graphs[graph_key]
            if graph is None:
                self._enqueue()
            else:
                with torch.cuda.stream(self._stream):
                    graph.replay()
        elif self._capture(graph_key) is not None:
            with torch.cuda.stream(self._stream):
                self._graphs[graph_key].replay()
        # A failed capture already ran the enqueue that produced the outputs.

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from ganrt.runtime.backends.base import host_tensor, torch_dtype

        self.check_feeds(feeds)
        shapes = {name: tuple(np.shape(value)) for name, value in feeds.items()}
        out_shapes = self.output_shapes(shapes)
        key = tuple(sorted(shapes.items()))
        slot = self._staging.get(key)
        if slot is None:
            # Pinned host buffers make the copies true async DMA on our stream; kept per shape for reuse.
            specs = {s.name: s for s in self.inputs + self.outputs}

            def pair(name: str, shape: tuple[int, ...]) -> tuple[Any, Any]:
                dtype = torch_dtype(specs[name].dtype)
                return (
                    torch.empty(shape, dtype=dtype, pin_memory=True),
                    torch.empty(shape, dtype=dtype, device=self._torch_device),
                )

            slot = {
                "in": {n: pair(n, s) for n, s in shapes.items()},
                "out": {n: pair(n, s) for n, s in out_shapes.items()},
            }
            self._staging[key] = slot
            while len(self._staging) > _CACHE_SIZE:
                self._staging.popitem(last=False)
        self._staging.move_to_end(key)
        with torch.cuda.device(self._torch_device), torch.cuda.stream(self._stream):
            for name, (host, dev) in slot["in"].items():
                host.copy_(host_tensor(np.asarray(feeds[name])))
                dev.copy_(host, non_blocking=True)
            self.run(
                {n: dev for n, (_, dev) in slot["in"].items()},
                {n: dev for n, (_, dev) in slot["out"].items()},
            )
            for host, dev in slot["out"].values():
                host.copy_(dev, non_blocking=True)
            self._stream.synchronize()
        return {name: host.numpy().copy() for name, (host, _) in slot["out"].items()}

    def info(self) -> dict[str, Any]:
        graphs = [g for g in self._graphs.values() if g is not None]
        return {
            "tensorrt_version": self._trt.__version__,
            "cuda_graphs": self.cuda_graphs,
            "cuda_graphs_captured": len(graphs),
            "cuda_graph_fallback": self._graph_error,
        }

    def close(self) -> None:
        self._graphs.clear()
        self._staging.clear()
        self.context = None
        self.engine = None
        self._runtime = None
