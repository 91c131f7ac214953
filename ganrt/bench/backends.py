"""The benchmarked backends: PyTorch eager, ganrt's torch backend (on CUDA: channels_last and CUDA graphs),
torch.compile, ONNX Runtime, OpenVINO (fp32 and bf16), the ganrt runtime (on the exported artifact, or on the
run directory) and TensorRT.

Each is a :class:`BenchRunner` around the runner of the shared backend layer (:mod:`ganrt.backends`) that the
runtime and export's parity gate use too; this module only adds what benchmarking needs: the same host inputs
for every backend, phase timing, and optional uint8 pre/post-processing. Latency means the same thing for all:
graph-level inputs in host memory to outputs in host memory (with ``include_io``: uint8 pictures in, uint8
pictures out, pre/post-processing included). A runner that cannot exist here raises
:class:`~ganrt.bench.target.Unavailable` with the reason.

Timing: on CPU every phase is synchronous and timed with ``perf_counter``. On CUDA, CUDA events are recorded
between phases (H2D, pre, compute, post, D2H) on the runner's stream and read after one synchronisation. The
ganrt runtime owns its transfers and pre/post-processing, so it reports a single ``compute`` phase.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganrt.bench.target import Artifacts, Target, Unavailable
from ganrt.errors import BackendUnavailableError

if TYPE_CHECKING:
    import torch

    from ganrt.backends.base import Runner

BACKENDS: tuple[str, ...] = (
    "eager", "torch", "compile", "onnxruntime", "openvino", "openvino-bf16", "ganrt", "ganrt-torch", "tensorrt"
)
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


class _HostTimer:
    """The CPU counterpart of :class:`_CudaTimer`: ``perf_counter`` between synchronous phases."""

    def start(self) -> None:
        self._last = time.perf_counter()
        self._phases: Phases = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self._phases[phase] = self._phases.get(phase, 0.0) + now - self._last
        self._last = now

    def phases(self) -> Phases:
        return self._phases


class _DeviceRunner(BenchRunner):
    """A shared-layer runner driven on device tensors: upload, optional uint8 pre-processing, ``run`` into
    preallocated outputs, optional post-processing, download; phases timed on the runner's stream (CUDA) or
    the host clock (CPU). Subclasses name the ``backend`` and set ``artifact`` (what its ``load`` reads)."""

    backend: str
    artifact: Path

    def _load_options(self) -> dict[str, Any]:
        """Backend options for ``Runner.load`` beyond device and threads."""
        return {}

    def load(self) -> None:
        from ganrt.backends import runner_class

        cuda = self.device.startswith("cuda")
        runner = runner_class(self.backend).load(
            self.artifact,
            device="cuda" if cuda else "cpu",
            device_index=_device_index(self.device),
            threads=None if self.backend == "tensorrt" else self.threads,
            **self._load_options(),
        )
        self._attach(runner)

    def _attach(self, runner: Runner) -> None:
        import torch

        self._torch = torch
        self.runner = runner
        self._torch_device = torch.device(runner.device)
        self._cuda = self._torch_device.type == "cuda"
        stream = runner.stream
        if self._cuda:
            self.timing = "cuda_events"
            self.stream = stream if stream is not None else torch.cuda.current_stream(self._torch_device)
        self._specs = {s.name: s for s in runner.inputs + runner.outputs}
        self._outputs: dict[str, torch.Tensor] = {}
        self._out_key: tuple | None = None

    def _dtype(self, name: str) -> torch.dtype:
        from ganrt.backends.base import torch_dtype

        return torch_dtype(self._specs[name].dtype)

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        torch = self._torch
        out = {}
        for name, value in feeds.items():
            t = torch.from_numpy(np.ascontiguousarray(value))
            if not (self.include_io and name == "image"):
                t = t.to(self._dtype(name))
            out[name] = t.pin_memory() if self._cuda else t
        return out

    def _output_buffers(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        shapes = self.runner.output_shapes({k: tuple(v.shape) for k, v in feeds.items()})
        if shapes is None:
            shapes = _output_shapes(self.target, feeds)
        key = tuple(sorted(shapes.items()))
        if self._out_key != key:
            self._outputs = {
                name: self._torch.empty(shape, dtype=self._dtype(name), device=self._torch_device)
                for name, shape in shapes.items()
            }
            self._out_key = key
        return self._outputs

    def infer(self, prepared: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], Phases]:
        from ganrt.ops import images_to_tensor, tensor_to_images

        torch = self._torch
        timer: _CudaTimer | _HostTimer = _CudaTimer(self.stream) if self._cuda else _HostTimer()
        context = torch.cuda.stream(self.stream) if self._cuda else contextlib.nullcontext()
        with context, torch.inference_mode():
            timer.start()
            feeds = {k: v.to(self._torch_device, non_blocking=True) for k, v in prepared.items()}
            if self._cuda:
                timer.mark("h2d")
            if self.include_io and "image" in feeds:
                feeds["image"] = images_to_tensor(feeds["image"]).to(self._dtype("image"))
                timer.mark("pre")
            outputs = self._output_buffers(feeds)
            self.runner.run(feeds, outputs)
            timer.mark("compute")
            results = dict(outputs)
            if self.include_io and self.image_output in results:
                results[self.image_output] = tensor_to_images(results[self.image_output].float())
                timer.mark("post")
            if self._cuda:
                hosts = {}
                for name, value in results.items():
                    hosts[name] = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
                    hosts[name].copy_(value, non_blocking=True)
                timer.mark("d2h")
                self.stream.synchronize()
                results = hosts
        return {name: value.numpy().copy() for name, value in results.items()}, timer.phases()

    def close(self) -> None:
        if hasattr(self, "runner"):
            self.runner.close()
        self._outputs = {}


def _output_shapes(target: Target, feeds: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Output shapes of the target's graph for these inputs (backends that cannot tell without running)."""
    md = target.metadata
    _, names = target.io_names()
    first = next(iter(feeds.values()))
    n = int(first.shape[0])
    if md.task == "translate":
        _, _, h, w = feeds["image"].shape
        return {names[0]: (n, md.out_channels, int(h), int(w))}
    if md.task == "sample":
        return {names[0]: (n, md.out_channels, md.image_size, md.image_size)}
    return {name: (n, md.latent_dim) for name in names}


# --------------------------------------------------------------------------------------------------- torch


class TorchBench(_DeviceRunner):
    """The target's network through the torch backend of :mod:`ganrt.backends`, in one of three variants:

    - ``torch``: ganrt's fused ops, and on CUDA its fast path (channels_last for fp16/bf16, a CUDA graph per
      input shape);
    - ``eager``: stock PyTorch layers (``fused=False``), NCHW, no graphs: plain PyTorch eager, the baseline;
    - ``compile``: ganrt's network through ``torch.compile(mode=compile_mode)`` (compiled in cold start).
    """

    backend = "torch"
    VARIANTS = ("torch", "eager", "compile")

    def __init__(self, *args: Any, variant: str = "torch", compile_mode: str = "default", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if variant not in self.VARIANTS:
            raise ValueError(f"variant must be one of {self.VARIANTS}, got {variant!r}")
        self.name = self.variant = variant
        self.compile_mode = compile_mode
        if variant == "compile":
            self.fixed_batch = True
        if self.target.task not in ("translate", "sample"):
            raise Unavailable(f"torch backends benchmark translate and sample graphs, not {self.target.task!r}")
        self.artifact = self.artifacts.run_dir()

    def _load_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"precision": self.precision}
        if self.variant == "eager":
            options.update(fused=False, cuda_graphs=False, channels_last=False)
        elif self.variant == "compile":
            options["compile"] = self.compile_mode  # compilation itself happens on the first call
        return options

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "variant": self.variant,
            "mode": self.compile_mode if self.variant == "compile" else "eager",
            "threads": self.threads,
        }
        if hasattr(self, "runner"):
            info.update(self.runner.info())
        return info

    def close(self) -> None:
        super().close()
        if self.variant == "compile" and hasattr(self, "_torch"):
            # Drop compiled graphs: the next case compiles for its own batch without hitting the cache limit.
            self._torch._dynamo.reset()


# --------------------------------------------------------------------------------------------- onnxruntime


class OrtBench(_DeviceRunner):
    """A plain ONNX Runtime session on the ONNX model (CPU or CUDA provider), all graph optimisations on: the
    onnxruntime backend of :mod:`ganrt.backends`, fed through I/O binding."""

    name = backend = "onnxruntime"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.device.startswith("cuda"):
            from ganrt.backends.onnxruntime import cuda_provider_available

            if not cuda_provider_available():
                raise Unavailable("this onnxruntime has no usable CUDAExecutionProvider (pip install onnxruntime-gpu)")
        self.artifact, self.build_s = self.artifacts.onnx(self.precision)

    def info(self) -> dict[str, Any]:
        providers = self.runner.info().get("providers") if hasattr(self, "runner") else None
        return {"providers": providers, "onnx": str(self.artifact), "threads": self.threads}


# ------------------------------------------------------------------------------------------------ openvino


class OpenVinoBench(_DeviceRunner):
    """OpenVINO's CPU plugin compiling the ONNX model (LATENCY hint, the case's threads) at fp32 or, as
    ``openvino-bf16``, bf16 inference precision on CPUs with native bf16: the openvino backend of
    :mod:`ganrt.backends`, fed the same buffers through shared-memory tensors. No compiled-model cache, so
    cold start is a full compilation."""

    backend = "openvino"

    def __init__(self, *args: Any, inference_precision: str = "fp32", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inference_precision = inference_precision
        self.name = "openvino" if inference_precision == "fp32" else f"openvino-{inference_precision}"
        if self.device.startswith("cuda"):
            raise Unavailable("ganrt runs OpenVINO on the CPU only; --device is cuda")
        if inference_precision == "bf16":
            from ganrt.backends.openvino import native_bf16

            try:
                native, why = native_bf16()
            except BackendUnavailableError as exc:
                raise Unavailable(str(exc)) from None
            if not native:
                raise Unavailable(f"bf16 needs a CPU with native bf16 (AMX-BF16 or AVX512_BF16): {why}")
        self.artifact, self.build_s = self.artifacts.onnx(self.precision)

    def _load_options(self) -> dict[str, Any]:
        return {"precision": self.inference_precision}

    def info(self) -> dict[str, Any]:
        details = self.runner.info() if hasattr(self, "runner") else {}
        return {"onnx": str(self.artifact), "threads": self.threads, **details}


# ------------------------------------------------------------------------------------------------ tensorrt


class TensorRTBench(_DeviceRunner):
    """A TensorRT engine driven as trtexec does: preallocated device buffers, one non-default stream,
    ``execute_async_v3`` replayed through a CUDA graph when capture succeeds: the tensorrt backend of
    :mod:`ganrt.backends`."""

    name = backend = "tensorrt"
    fixed_batch = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.device.startswith("cuda"):
            raise Unavailable("TensorRT runs only on CUDA devices; --device is cpu")
        from ganrt.backends.tensorrt import import_tensorrt

        try:
            import_tensorrt()
        except BackendUnavailableError as exc:
            raise Unavailable(str(exc)) from None
        self.artifact, self.build_s = self.artifacts.engine(self.precision, self.batch)

    def info(self) -> dict[str, Any]:
        return {"engine": str(self.artifact), **(self.runner.info() if hasattr(self, "runner") else {})}


def _device_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


# --------------------------------------------------------------------------------------------------- ganrt


class GanrtBench(BenchRunner):
    """``ganrt.load`` as a user would deploy it: on the exported artifact (``ganrt``, backend chosen by the
    runtime), or on the run directory (``ganrt-torch``: the torch backend at the case's precision, on CUDA
    with channels_last and CUDA graphs, the runtime's uint8 pre/post on the runner's stream)."""

    name = "ganrt"

    def __init__(self, *args: Any, source: str = "artifact", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        if source == "run":
            self.name = "ganrt-torch"
            if self.target.task not in ("translate", "sample"):
                raise Unavailable(f"ganrt-torch benchmarks translate and sample graphs, not {self.target.task!r}")
            self.path = self.artifacts.run_dir()
        elif self.target.kind == "engine":
            if not self.device.startswith("cuda"):
                raise Unavailable("a TensorRT engine runs only on a CUDA device; --device is cpu")
            self.path, self.build_s = self.artifacts.engine(self.precision, self.batch)
        else:
            self.path, self.build_s = self.artifacts.onnx(self.precision)

    def load(self) -> None:
        import ganrt

        options = {"precision": self.precision} if self.source == "run" else {}
        self.model = ganrt.load(self.path, device=self.device, threads=self.threads, **options)

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


_RUNNERS: dict[str, Callable[..., BenchRunner]] = {
    "eager": lambda *a, **k: TorchBench(*a, variant="eager", **k),
    "torch": TorchBench,
    "compile": lambda *a, compile_mode="default", **k: TorchBench(
        *a, variant="compile", compile_mode=compile_mode, **k
    ),
    "onnxruntime": OrtBench,
    "openvino": OpenVinoBench,
    "openvino-bf16": lambda *a, **k: OpenVinoBench(*a, inference_precision="bf16", **k),
    "ganrt": GanrtBench,
    "ganrt-torch": lambda *a, **k: GanrtBench(*a, source="run", **k),
    "tensorrt": TensorRTBench,
}


def create_runner(
    backend: str, target: Target, artifacts: Artifacts, *, compile_mode: str = "default", **kwargs: Any
) -> BenchRunner:
    """The runner for ``backend``; raises :class:`Unavailable` (with the reason) when it cannot run here.
    ``compile_mode`` is the ``torch.compile`` mode of the ``compile`` backend."""
    if backend not in _RUNNERS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "compile":
        kwargs["compile_mode"] = compile_mode
    return _RUNNERS[backend](target, artifacts, **kwargs)
