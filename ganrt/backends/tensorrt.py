"""TensorRT backend (10.x and 11.x): a deserialized plan on a non-default stream, one execution context per
input shape, a CUDA graph per (shape, buffer addresses) falling back to plain enqueue when capture fails, and
pinned host staging for host I/O.

The only place in ganrt that deserializes TensorRT engines. TensorRT is imported lazily; without it (or
without a CUDA device) loading raises :class:`~ganrt.errors.BackendUnavailableError` that says what is
missing. Engines are executable artifacts: only load plans you built or received over a trusted channel.

Why one context per shape: a CUDA graph captured from ``execute_async_v3`` records the kernels chosen for the
context's shapes at capture time. Switching the same context to another shape and back before replaying an
older graph is not documented as safe, so each cached shape keeps its own context and its graphs; contexts of
evicted shapes are released.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ganrt.backends.base import Runner, TensorSpec, host_tensor, torch_dtype
from ganrt.backends.device import require_cuda
from ganrt.errors import ArtifactError, BackendUnavailableError

log = logging.getLogger("ganrt.tensorrt")

INSTALL_HINT = (
    "on a machine with an NVIDIA GPU run `pip install tensorrt` (TensorRT 10 or 11), or load the .onnx "
    "artifact with backend='onnxruntime'"
)
# TensorRT DataType enum *names* (11.x renumbered the values) -> numpy dtype names.
_TRT_TYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "BOOL": "bool",
}
# Input shapes a runner keeps an execution context (activation memory) and CUDA graphs for.
_SHAPES_KEPT = 4
# Buffer-address sets per shape with a captured graph (a graph replays the addresses it was captured with).
_GRAPHS_PER_SHAPE = 4


def import_tensorrt() -> Any:
    """``import tensorrt`` (10 or newer) or a :class:`BackendUnavailableError` saying how to get it."""
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailableError(f"TensorRT is not installed: {INSTALL_HINT}") from None
    major = int(str(tensorrt.__version__).split(".")[0])
    if major < 10:
        raise BackendUnavailableError(
            f"TensorRT {tensorrt.__version__} is too old: ganrt builds and runs engines with TensorRT 10 or 11"
        )
    return tensorrt


class _Capture:
    """TensorRT uses the logger given to the *first* Builder/Runtime/Refitter for every later one until all are
    destroyed, so ganrt keeps one process-wide logger and lets each operation open a capture window that
    collects the errors logged on its thread while it runs (``with LOGGER.capture() as errors``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[int, list[list[str]]] = collections.defaultdict(list)
        self._logger: Any = None

    def logger(self) -> Any:
        """The shared ``trt.ILogger`` (created on first use)."""
        if self._logger is None:
            trt = import_tensorrt()
            capture = self

            class Logger(trt.ILogger):
                def __init__(self) -> None:
                    trt.ILogger.__init__(self)

                def log(self, severity: Any, msg: str) -> None:
                    if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                        capture._deliver(msg)
                        log.error("TensorRT: %s", msg)
                    elif severity == trt.ILogger.Severity.WARNING:
                        log.warning("TensorRT: %s", msg)

            with self._lock:
                if self._logger is None:
                    self._logger = Logger()
        return self._logger

    def _deliver(self, msg: str) -> None:
        with self._lock:
            for sink in self._sinks.get(threading.get_ident(), ()):
                sink.append(msg)

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect the TensorRT errors logged by this thread inside the block (a fresh list each time)."""
        errors: list[str] = []
        ident = threading.get_ident()
        with self._lock:
            self._sinks[ident].append(errors)
        try:
            yield errors
        finally:
            with self._lock:
                self._sinks[ident].remove(errors)
                if not self._sinks[ident]:
                    del self._sinks[ident]


LOGGER = _Capture()


def _why(errors: list[str]) -> str:
    return errors[-1] if errors else "no reason given"


class _ShapeSlot:
    """An execution context set to one input shape, with the CUDA graphs captured on it (per buffer
    addresses; ``None`` records a failed capture so it is not retried)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.graphs: collections.OrderedDict[tuple, Any] = collections.OrderedDict()


class TensorRTRunner(Runner):
    """Runs a serialized TensorRT engine on ``cuda:<device_index>``."""

    backend = "tensorrt"
    artifacts = ("engine",)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        device: str = "cuda",
        device_index: int = 0,
        threads: int | None = None,
        cuda_graphs: bool = True,
        **options: Any,
    ) -> TensorRTRunner:
        if options:
            raise TypeError(f"tensorrt takes no options {sorted(options)}")
        if device == "cpu":
            raise ValueError(
                f"{path}: TensorRT engines run on CUDA devices only; load the .onnx with device='cpu' instead"
            )
        if threads is not None:
            raise ValueError("threads= sets CPU threads; a TensorRT engine runs on the GPU")
        if not path.is_file():
            raise FileNotFoundError(f"no such TensorRT engine: {path}")
        return cls(path.read_bytes(), source=str(path), device_index=device_index, cuda_graphs=cuda_graphs)

    def __init__(self, plan: bytes, *, source: str, device_index: int = 0, cuda_graphs: bool = True):
        trt = import_tensorrt()
        require_cuda(device_index, what="the TensorRT backend")
        import torch

        if not plan:
            raise ArtifactError(f"{source}: empty file, not a TensorRT engine")
        self._trt = trt
        self._torch_device = torch.device("cuda", device_index)
        self.path = Path(source)
        with torch.cuda.device(self._torch_device), LOGGER.capture() as errors:
            self._runtime = trt.Runtime(LOGGER.logger())
            self.engine = self._runtime.deserialize_cuda_engine(plan)
            if self.engine is None:
                raise ArtifactError(
                    f"{source}: TensorRT {trt.__version__} could not deserialize this engine (truncated, "
                    f"corrupt, or built by another TensorRT version or for another GPU): {_why(errors)}"
                )
            self._stream = torch.cuda.Stream(device=self._torch_device)
        self.device = f"cuda:{device_index}"
        self.threads = None
        self.inputs, self.outputs = [], []
        max_batches = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dtype_name = self.engine.get_tensor_dtype(name).name
            if dtype_name not in _TRT_TYPES:
                raise ArtifactError(
                    f"{source}: tensor {name!r} has TensorRT type {dtype_name}; ganrt feeds "
                    f"{sorted(_TRT_TYPES)}"
                )
            spec = TensorSpec(
                name, _TRT_TYPES[dtype_name], tuple(int(d) for d in self.engine.get_tensor_shape(name))
            )
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.inputs.append(spec)
                if spec.shape:
                    max_shape = (
                        self.engine.get_tensor_profile_shape(name, 0)[2] if spec.shape[0] == -1 else spec.shape
                    )
                    max_batches.append(int(max_shape[0]))
            else:
                self.outputs.append(spec)
        self.max_batch = min(max_batches) if max_batches else None
        floats = {s.dtype for s in self.inputs + self.outputs if s.dtype.startswith("float")}
        self.precision = "fp16" if floats == {"float16"} else "fp32"
        self.cuda_graphs = cuda_graphs
        self._slots: collections.OrderedDict[tuple, _ShapeSlot] = collections.OrderedDict()
        self._graph_error: str | None = None
        self._staging: collections.OrderedDict[tuple, dict[str, Any]] = collections.OrderedDict()

    def metadata_props(self) -> dict[str, str] | None:
        from ganrt.artifact import read_engine_sidecar

        sidecar = read_engine_sidecar(self.path)
        return None if sidecar is None else sidecar.props

    @property
    def stream(self) -> Any:
        return self._stream

    # ------------------------------------------------------------------------------------------ contexts
    def _slot(self, shapes: Mapping[str, tuple[int, ...]]) -> _ShapeSlot:
        key = tuple(sorted(shapes.items()))
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
            return slot
        with LOGGER.capture() as errors:
            context = self.engine.create_execution_context()
        if context is None:
            raise BackendUnavailableError(
                f"{self.path}: TensorRT could not create an execution context (out of device memory?): "
                f"{_why(errors)}"
            )
        for name, shape in shapes.items():
            if not context.set_input_shape(name, shape):
                lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
                raise ValueError(
                    f"input {name!r} shape {shape} is outside this engine's optimization profile "
                    f"[{tuple(lo)} .. {tuple(hi)}]; rebuild the engine with a wider --batch/--height/--width "
                    f"range"
                )
        slot = self._slots[key] = _ShapeSlot(context)
        while len(self._slots) > _SHAPES_KEPT:
            self._slots.popitem(last=False)  # drops its graphs and context (device memory)
        return slot

    def output_shapes(self, feeds: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        context = self._slot(feeds).context
        return {s.name: tuple(int(d) for d in context.get_tensor_shape(s.name)) for s in self.outputs}

    # ------------------------------------------------------------------------------------------ running
    def _enqueue(self, context: Any) -> None:
        with LOGGER.capture() as errors:
            ok = context.execute_async_v3(self._stream.cuda_stream)
        if not ok:
            raise RuntimeError(f"TensorRT execution failed: {_why(errors)}")

    def _capture(self, slot: _ShapeSlot, key: tuple) -> Any:
        """A CUDA graph of one enqueue on ``slot``'s context, or ``None`` when capture fails. Either way the
        outputs of this call are computed."""
        import torch

        # The first enqueue for a shape may allocate and autotune, which cannot happen inside a capture.
        self._enqueue(slot.context)
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: CUDA calls from other threads (a server's request threads) stay legal while
            # capturing.
            with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
                self._enqueue(slot.context)
        except RuntimeError as exc:
            self._graph_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            graph = None
        slot.graphs[key] = graph
        while len(slot.graphs) > _GRAPHS_PER_SHAPE:
            slot.graphs.popitem(last=False)
        if graph is not None:
            with torch.cuda.stream(self._stream):
                graph.replay()
        return graph

    def run(self, feeds: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        import torch

        with torch.cuda.device(self._torch_device):
            slot = self._slot({name: tuple(t.shape) for name, t in feeds.items()})
            context = slot.context
            key = []
            for name, tensor in feeds.items():
                context.set_tensor_address(name, tensor.data_ptr())
                key.append((name, tensor.data_ptr()))
            for name, tensor in outputs.items():
                want = tuple(int(d) for d in context.get_tensor_shape(name))
                if tuple(tensor.shape) != want:
                    raise ValueError(
                        f"output buffer {name!r} has shape {tuple(tensor.shape)}, engine produces {want}"
                    )
                context.set_tensor_address(name, tensor.data_ptr())
                key.append((name, tensor.data_ptr()))
            if not self.cuda_graphs:
                self._enqueue(context)
                return
            graph_key = tuple(key)
            if graph_key not in slot.graphs:
                self._capture(slot, graph_key)
                return
            slot.graphs.move_to_end(graph_key)
            graph = slot.graphs[graph_key]
            if graph is None:
                self._enqueue(context)
            else:
                with torch.cuda.stream(self._stream):
                    graph.replay()

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

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
            while len(self._staging) > _SHAPES_KEPT:
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
        graphs = [g for slot in self._slots.values() for g in slot.graphs.values() if g is not None]
        return {
            "tensorrt_version": self._trt.__version__,
            "cuda_graphs": self.cuda_graphs,
            "cuda_graphs_captured": len(graphs),
            "execution_contexts": len(self._slots),
            "cuda_graph_fallback": self._graph_error,
        }

    def close(self) -> None:
        self._slots.clear()
        self._staging.clear()
        self.engine = None
        self._runtime = None
