"""The benchmarked backends: PyTorch eager, torch.compile, ONNX Runtime, the ganrt runtime and TensorRT.

Each is a :class:`BenchRunner`. Every runner takes the same host arrays and returns host arrays, so latency
means the same thing for all of them: graph-level inputs in host memory to outputs in host memory (with
``include_io``: uint8 pictures in, uint8 pictures out, pre/post-processing included). Frameworks are imported
when a runner is created; a runner that cannot exist here raises :class:`~ganrt.bench.target.Unavailable`
with the reason.

Timing: on CPU every phase is synchronous and timed with ``perf_counter``. On CUDA, runners that own their
stream (torch, torch.compile, TensorRT) record CUDA events between phases (H2D, pre, compute, post, D2H) and
synchronise once; ONNX Runtime's CUDA work runs on its own stream, so its phases are separated by its own
synchronising calls (IOBinding copy in, run, copy out) and timed on the host. The ganrt runtime owns its
transfers and pre/post-processing, so it reports a single ``compute`` phase covering all of them.
"""

from __future__ import annotations

import abc
import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ganrt.bench.target import Artifacts, Target, Unavailable

if TYPE_CHECKING:
    import torch
    from torch import nn

BACKENDS: tuple[str, ...] = ("torch", "compile", "onnxruntime", "ganrt", "tensorrt")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16")

Phases = dict[str, float]


class BenchRunner(abc.ABC):
    """One backend prepared for one (target, batch, precision) case.

    Lifecycle: ``__init__`` checks availability and fetches artifacts (cheap or cached; may raise
    ``Unavailable``), :meth:`load` is the timed part of cold start, :meth:`prepare` converts host feeds into
    what :meth:`infer` consumes (untimed: done once per distinct input), :meth:`infer` runs once.
    """

    name: str = ""
    timing: str = "host"
    #: True when the runner only runs at the case's batch size (compiled graphs, CUDA graphs): LoadGen pads.
    fixed_batch: bool = False

    def __init__(
        self,
        target: Target,
        artifacts: Artifacts,
        *,
        batch: int,
        precision: str,
        device: str,
        include_io: bool,
        threads: int,
    ) -> None:
        self.target = target
        self.artifacts = artifacts
        self.batch = batch
        self.precision = precision
        self.device = device
        self.include_io = include_io
        self.threads = threads
        self.build_s = 0.0
        self.notes: list[str] = []
        _, outputs = target.io_names()
        self.image_output = outputs[0] if target.task != "encode" else None

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model (sessions, engines, modules, device buffers)."""

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """Host feeds -> this runner's input form (cast to its dtypes, pinned, ...). Not timed."""
        return dict(feeds)

    @abc.abstractmethod
    def infer(self, prepared: Any) -> tuple[dict[str, np.ndarray], Phases]:
        """Run once; returns host outputs and seconds per phase."""

    def info(self) -> dict[str, Any]:
        """Backend details for the report (providers, CUDA graphs, compile mode, ...)."""
        return {}

    def close(self) -> None:
        """Release what :meth:`load` acquired."""


class _CudaTimer:
    """CUDA events between phases on one stream, read after a single synchronisation."""

    def __init__(self, stream: torch.cuda.Stream) -> None:
        import torch

        self._torch = torch
        self.stream = stream
        self.marks: list[tuple[str, torch.cuda.Event]] = []

    def start(self) -> None:
        event = self._torch.cuda.Event(enable_timing=True)
        event.record(self.stream)
        self.marks = [("", event)]

    def mark(self, phase: str) -> None:
        event = self._torch.cuda.Event(enable_timing=True)
        event.record(self.stream)
        self.marks.append((phase, event))

    def phases(self) -> Phases:
        """Seconds per phase; call after the stream was synchronised."""
        out: Phases = {}
        for (_, before), (phase, after) in zip(self.marks, self.marks[1:]):
            out[phase] = out.get(phase, 0.0) + before.elapsed_time(after) / 1e3
        return out


# --------------------------------------------------------------------------------------------------- torch


def _graph_module(net: nn.Module, target: Target) -> nn.Module:
    """Wrap a ganrt generator so it takes the exported graph's inputs as keyword arguments.

    translate: ``image`` -> output image; sample: ``z`` (+ ``label``) -> image (a VAE samples through its
    decoder, as its exported ``sample`` graph does).
    """
    from torch import nn

    task, family = target.task, target.metadata.family

    class GraphModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(
            self,
            image: torch.Tensor | None = None,
            z: torch.Tensor | None = None,
            label: torch.Tensor | None = None,
        ) -> torch.Tensor:
            if task == "translate":
                return self.net(image)
            if family == "vae":
                return self.net.decode(z)
            return self.net(z, label)

    return GraphModule().eval()


class TorchRunner(BenchRunner):
    """The target's PyTorch module (ganrt's fused ops inside), eager or through ``torch.compile``."""

    name = "torch"

    def __init__(self, *args: Any, compiled: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compiled = compiled
        if compiled:
            self.name = "compile"
            self.fixed_batch = True
        if self.target.run_dir is None:
            raise Unavailable(
                f"needs the weights as a PyTorch module (a run directory or a FAMILY); "
                f"{self.target.name} is a {self.target.kind} artifact"
            )
        if self.target.task not in ("translate", "sample"):
            raise Unavailable(
                f"torch backends benchmark translate and sample graphs, not {self.target.task!r}"
            )
        self.timing = "cuda_events" if self.device.startswith("cuda") else "host"
        self._module: Callable[..., torch.Tensor] | None = None

    def load(self) -> None:
        import torch

        self._torch = torch
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        module = _graph_module(self.artifacts.module(), self.target).to(self.device, self.dtype)
        if self.compiled:
            with _quiet_inductor_import():
                import torch._inductor.compile_fx
            # Compilation itself happens on the first call, inside cold start.
            module = torch.compile(module)
        self._module = module
        if self.device.startswith("cuda"):
            self.stream = torch.cuda.current_stream(self.device)

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        torch = self._torch
        out = {}
        for name, value in feeds.items():
            t = torch.from_numpy(np.ascontiguousarray(value))
            if t.is_floating_point():
                t = t.to(self.dtype)
            if self.device.startswith("cuda"):
                t = t.pin_memory()
            out[name] = t
        return out

    def _pre(self, images: torch.Tensor) -> torch.Tensor:
        from ganrt.ops import images_to_tensor

        if images.device.type == "cpu":
            # The CPU kernel writes float32 only; a cast follows for fp16 models.
            return images_to_tensor(images).to(self.dtype)
        return images_to_tensor(images, dtype=self.dtype)

    def _post(self, x: torch.Tensor) -> torch.Tensor:
        from ganrt.ops import tensor_to_images

        return tensor_to_images(x.float() if x.device.type == "cpu" else x)

    def infer(self, prepared: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], Phases]:
        assert self._module is not None
        if self.device.startswith("cuda"):
            return self._infer_cuda(prepared)
        torch = self._torch
        phases: Phases = {}
        with torch.inference_mode():
            t0 = time.perf_counter()
            feeds = dict(prepared)
            if self.include_io and "image" in feeds:
                feeds["image"] = self._pre(feeds["image"])
                t1 = time.perf_counter()
                phases["pre"] = t1 - t0
                t0 = t1
            y = self._module(**feeds)
            t1 = time.perf_counter()
            phases["compute"] = t1 - t0
            if self.include_io:
                y = self._post(y)
                phases["post"] = time.perf_counter() - t1
        return {self.image_output: y.numpy()}, phases

    def _infer_cuda(self, prepared: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], Phases]:
        torch = self._torch
        timer = _CudaTimer(self.stream)
        with torch.inference_mode():
            timer.start()
            feeds = {k: v.to(self.device, non_blocking=True) for k, v in prepared.items()}
            timer.mark("h2d")
            if self.include_io and "image" in feeds:
                feeds["image"] = self._pre(feeds["image"])
                timer.mark("pre")
            y = self._module(**feeds)
            timer.mark("compute")
            if self.include_io:
                y = self._post(y)
                timer.mark("post")
            host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
            host.copy_(y, non_blocking=True)
            timer.mark("d2h")
            self.stream.synchronize()
        return {self.image_output: host.numpy()}, timer.phases()

    def info(self) -> dict[str, Any]:
        return {
            "compiled": self.compiled,
            "mode": "default" if self.compiled else "eager",
            "threads": self._torch.get_num_threads() if hasattr(self, "_torch") else None,
        }

    def close(self) -> None:
        self._module = None
        if self.compiled and hasattr(self, "_torch"):
            # Drop compiled graphs: the next case compiles for its own batch without hitting the cache limit.
            self._torch._dynamo.reset()


@contextlib.contextmanager
def _quiet_inductor_import() -> Iterator[None]:
    """Inductor imports torch.jit APIs that emit a DeprecationWarning from inside torch itself; silence
    exactly that one while importing it, so runs under ``-W error`` measure torch.compile, not fail on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.script_method` is deprecated", category=DeprecationWarning
        )
        yield


# --------------------------------------------------------------------------------------------- onnxruntime

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(double)": np.float64,
}


class OrtRunner(BenchRunner):
    """A plain ONNX Runtime session on the ONNX model (CPU or CUDA provider), all graph optimisations on."""

    name = "onnxruntime"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import onnxruntime as ort

        self._ort = ort
        if self.device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise Unavailable(
                    f"this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider "
                    f"(pip install onnxruntime-gpu)"
                )
            self.providers: list[Any] = [("CUDAExecutionProvider", {"device_id": _device_index(self.device)})]
        else:
            self.providers = ["CPUExecutionProvider"]
        self.path, self.build_s = self.artifacts.onnx(self.precision)

    def load(self) -> None:
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=self.providers)
        self.input_dtypes = {i.name: _ORT_DTYPES.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, value in feeds.items():
            if self.include_io and name == "image":
                out[name] = value  # uint8 pictures; converted inside the timed pre phase
            else:
                out[name] = np.ascontiguousarray(value, dtype=self.input_dtypes[name])
        return out

    def _pre(self, images: np.ndarray) -> np.ndarray:
        import torch

        from ganrt.ops import images_to_tensor

        return (
            images_to_tensor(torch.from_numpy(images)).numpy().astype(self.input_dtypes["image"], copy=False)
        )

    def _post(self, y: np.ndarray) -> np.ndarray:
        import torch

        from ganrt.ops import tensor_to_images

        return tensor_to_images(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))).numpy()

    def infer(self, prepared: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Phases]:
        phases: Phases = {}
        t0 = time.perf_counter()
        feeds = dict(prepared)
        if self.include_io and "image" in feeds:
            feeds["image"] = self._pre(feeds["image"])
            t1 = time.perf_counter()
            phases["pre"] = t1 - t0
            t0 = t1
        if self.device.startswith("cuda"):
            outputs = self._run_cuda(feeds, phases)
        else:
            outputs = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
            phases["compute"] = time.perf_counter() - t0
        if self.include_io and self.image_output in outputs:
            t1 = time.perf_counter()
            outputs[self.image_output] = self._post(outputs[self.image_output])
            phases["post"] = time.perf_counter() - t1
        return outputs, phases

    def _run_cuda(self, feeds: dict[str, np.ndarray], phases: Phases) -> dict[str, np.ndarray]:
        ort = self._ort
        index = _device_index(self.device)
        t0 = time.perf_counter()
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", index))
        for name in self.output_names:
            binding.bind_output(name, "cuda", index)
        t1 = time.perf_counter()
        # run_with_iobinding synchronises the CUDA provider's stream before returning.
        self.session.run_with_iobinding(binding)
        t2 = time.perf_counter()
        outputs = dict(zip(self.output_names, binding.copy_outputs_to_cpu()))
        t3 = time.perf_counter()
        phases["h2d"], phases["compute"], phases["d2h"] = t1 - t0, t2 - t1, t3 - t2
        return outputs

    def info(self) -> dict[str, Any]:
        return {
            "providers": self.session.get_providers() if hasattr(self, "session") else None,
            "onnx": str(self.path),
            "threads": self.threads,
        }

    def close(self) -> None:
        self.session = None


def _device_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


# --------------------------------------------------------------------------------------------------- ganrt


class GanrtRunner(BenchRunner):
    """``ganrt.load`` on the exported artifact, as a user would deploy it (backend chosen by the runtime)."""

    name = "ganrt"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.target.kind == "engine":
            if not self.device.startswith("cuda"):
                raise Unavailable("a TensorRT engine runs only on a CUDA device; --device is cpu")
            self.path, self.build_s = self.artifacts.engine(self.precision, self.batch)
        else:
            self.path, self.build_s = self.artifacts.onnx(self.precision)

    def load(self) -> None:
        import ganrt

        self.model = ganrt.load(self.path, device=self.device, threads=self.threads)

    def infer(self, prepared: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Phases]:
        t0 = time.perf_counter()
        if self.include_io and self.target.task == "translate":
            # The runtime's own pre/post: uint8 pictures in, uint8 pictures out.
            images = self.model.translate(prepared["image"])
            return {self.image_output: np.asarray(images)}, {"compute": time.perf_counter() - t0}
        if self.include_io and self.target.task == "sample":
            images = self.model.decode(prepared["z"], labels=prepared.get("label"))
            return {self.image_output: np.asarray(images)}, {"compute": time.perf_counter() - t0}
        return self.model.infer(prepared), {"compute": time.perf_counter() - t0}

    def info(self) -> dict[str, Any]:
        if not hasattr(self, "model"):
            return {"artifact": str(self.path)}
        return {"artifact": str(self.path), **_jsonable(self.model.info())}

    def close(self) -> None:
        if hasattr(self, "model"):
            self.model.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# ------------------------------------------------------------------------------------------------ tensorrt


class TensorRTRunner(BenchRunner):
    """A TensorRT engine driven directly (as trtexec does): preallocated device buffers, one non-default
    stream, ``execute_async_v3``, replayed through a CUDA graph when capture succeeds.

    Buffers are torch CUDA tensors, so pre/post-processing runs on the same stream and CUDA events time it.
    """

    name = "tensorrt"
    timing = "cuda_events"
    fixed_batch = True

    def __init__(self, *args: Any, cuda_graph: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.device.startswith("cuda"):
            raise Unavailable("TensorRT runs only on CUDA devices; --device is cpu")
        try:
            import tensorrt
        except ImportError:
            raise Unavailable(
                "TensorRT is not installed (pip install tensorrt on a machine with a CUDA GPU)"
            ) from None
        self._trt = tensorrt
        self.use_cuda_graph = cuda_graph
        self.graph_note = "disabled"
        self.path, self.build_s = self.artifacts.engine(self.precision, self.batch)

    def load(self) -> None:
        import torch

        trt = self._trt
        self._torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise RuntimeError(
                f"TensorRT could not deserialize {self.path} (built by another TensorRT version "
                f"or for another GPU?)"
            )
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(self.device)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        feeds = self.target.make_feeds(self.batch, include_io=False, seed=0)
        for name in self.input_names:
            self.context.set_input_shape(name, tuple(feeds[name].shape))
        self.device_buffers: dict[str, torch.Tensor] = {}
        self.host_outputs: dict[str, torch.Tensor] = {}
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            self.device_buffers[name] = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, self.device_buffers[name].data_ptr())
        for name in self.output_names:
            out = self.device_buffers[name]
            shape = (
                (out.shape[0], out.shape[2], out.shape[3], out.shape[1])
                if (self.include_io and name == self.image_output)
                else tuple(out.shape)
            )
            dtype = torch.uint8 if self.include_io and name == self.image_output else out.dtype
            self.host_outputs[name] = torch.empty(shape, dtype=dtype, pin_memory=True)
        if self.include_io and "image" in self.input_names:
            buf = self.device_buffers["image"]
            self.image_upload = torch.empty(
                (buf.shape[0], buf.shape[2], buf.shape[3], buf.shape[1]),
                dtype=torch.uint8,
                device=self.device,
            )
        # One enqueue before capture flushes TensorRT's deferred updates (required for graph capture).
        self._enqueue()
        self.stream.synchronize()
        self.graph = None
        if self.use_cuda_graph:
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    self._enqueue()
                self.graph = graph
                self.graph_note = "captured"
            except RuntimeError as exc:
                self.graph_note = f"capture failed, plain enqueue: {exc}"
                self.stream.synchronize()

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        torch = self._torch
        out = {}
        for name, value in feeds.items():
            if self.include_io and name == "image":
                src = torch.from_numpy(np.ascontiguousarray(value))
            else:
                want = self.device_buffers[name].dtype
                src = torch.from_numpy(np.ascontiguousarray(value)).to(want)
            out[name] = src.pin_memory()
        return out

    def infer(self, prepared: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], Phases]:
        from ganrt.ops import images_to_tensor, tensor_to_images

        torch = self._torch
        timer = _CudaTimer(self.stream)
        with torch.cuda.stream(self.stream):
            timer.start()
            for name, host in prepared.items():
                if self.include_io and name == "image":
                    self.image_upload.copy_(host, non_blocking=True)
                else:
                    self.device_buffers[name].copy_(host, non_blocking=True)
            timer.mark("h2d")
            if self.include_io and "image" in prepared:
                buf = self.device_buffers["image"]
                buf.copy_(images_to_tensor(self.image_upload, dtype=buf.dtype))
                timer.mark("pre")
            if self.graph is not None:
                self.graph.replay()
            else:
                self._enqueue()
            timer.mark("compute")
            results = {name: self.device_buffers[name] for name in self.output_names}
            if self.include_io and self.image_output in results:
                results[self.image_output] = tensor_to_images(results[self.image_output])
                timer.mark("post")
            for name, value in results.items():
                self.host_outputs[name].copy_(value, non_blocking=True)
            timer.mark("d2h")
        self.stream.synchronize()
        return {name: self.host_outputs[name].numpy().copy() for name in self.output_names}, timer.phases()

    def info(self) -> dict[str, Any]:
        return {
            "engine": str(self.path),
            "cuda_graph": self.graph_note,
            "tensorrt": getattr(self._trt, "__version__", None),
        }

    def close(self) -> None:
        self.graph = None
        self.context = None
        self.engine = None
        self.device_buffers = {}


def create_runner(backend: str, target: Target, artifacts: Artifacts, **kwargs: Any) -> BenchRunner:
    """The runner for ``backend``; raises :class:`Unavailable` (with the reason) when it cannot run here."""
    if backend == "torch":
        return TorchRunner(target, artifacts, **kwargs)
    if backend == "compile":
        return TorchRunner(target, artifacts, compiled=True, **kwargs)
    if backend == "onnxruntime":
        return OrtRunner(target, artifacts, **kwargs)
    if backend == "ganrt":
        return GanrtRunner(target, artifacts, **kwargs)
    if backend == "tensorrt":
        return TensorRTRunner(target, artifacts, **kwargs)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
