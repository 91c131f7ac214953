"""PyTorch backend: ganrt run directories (``config.json`` + ``weights.safetensors``) on the fused ops, eager or
through ``torch.compile``.

On CUDA the runner is built for latency: its own stream (the runtime orders it after the caller's stream and
queues the uint8 pre/post kernels on it), weights in the requested precision, channels_last activations for
fp16/bf16 (cuDNN's tensor-core convolutions are NHWC-native), and a CUDA graph per input shape: static input
and output buffers, a warm-up on the runner's stream, one capture, then every call is copy-in, one replay,
copy-out. A shape whose capture fails runs eagerly and ``info()["cuda_graph_fallback"]`` says why.
``compile="max-autotune"`` (or another ``torch.compile`` mode) replaces the graphs with Inductor's code.

The runner exposes the same graph-level I/O as the exported ONNX (``image`` -> ``output``; ``z`` [+ ``label``]
-> ``image``; ``image``, ``eps`` -> ``mu``, ``logvar``, ``z``), built from the same :func:`graph_module` that
export traces, so the rest of ganrt cannot tell backends apart and ``sample(seed=s)`` gives the same images
here as from the exported artifact. Its metadata comes from :meth:`ganrt.families.Family.metadata_for`, the
function export uses.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ganrt.artifact import ArtifactMetadata, io_names
from ganrt.backends.base import Runner, TensorSpec, host_tensor
from ganrt.backends.device import require_cuda
from ganrt.errors import ArtifactError

if TYPE_CHECKING:
    from ganrt.families import Part

COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Input shapes a CUDA runner keeps a captured graph for; each holds its own memory pool (the activations).
_GRAPHS_KEPT = 4
# Eager calls on the runner's stream before a capture: cuDNN picks its algorithms and allocates workspaces, lazy
# initialisation happens, none of which may happen inside a capture.
_WARMUP_CALLS = 2


class _Translator(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class _Sampler(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _ConditionalSampler(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(z, label)


class _VAEDecoder(nn.Module):
    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z)


class _VAEEncoder(nn.Module):
    """image (N, C, S, S), eps (N, latent_dim) -> mu, logvar, z = mu + exp(logvar / 2) * eps.

    The noise is an input because ONNX/TensorRT random ops ignore seeds; callers draw it with
    ``ganrt.ops.standard_normal`` to reproduce training-time sampling exactly.
    """

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from ganrt.ops import reparameterize_ref

        mu, logvar = self.vae.encode(image)
        return mu, logvar, reparameterize_ref(mu, logvar, eps)


def graph_module(net: nn.Module, metadata: ArtifactMetadata) -> nn.Module:
    """``net`` wrapped so ``forward`` takes the graph inputs and returns the graph outputs of
    :func:`ganrt.artifact.io_names` for ``metadata.task``, in that order (what export traces and this backend
    runs); eval mode, gradients off."""
    if metadata.task == "translate":
        module: nn.Module = _Translator(net)
    elif metadata.task == "encode":
        module = _VAEEncoder(net)
    elif metadata.family == "vae":
        module = _VAEDecoder(net)
    else:
        module = _ConditionalSampler(net) if metadata.num_classes else _Sampler(net)
    module.eval()
    module.requires_grad_(False)
    return module


def graph_specs(metadata: ArtifactMetadata) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) of the graph for ``metadata``, -1 for dynamic axes (batch always; H and W of
    translators); float32 except class labels (int64), at every compute precision."""
    md = metadata
    names_in, names_out = io_names(md.task, md.num_classes)
    size = md.image_size
    if md.task == "translate":
        shapes_in = [(-1, md.in_channels, -1, -1)]
        shapes_out = [(-1, md.out_channels, -1, -1)]
    elif md.task == "sample":
        shapes_in = [(-1, md.latent_dim), (-1,)][: len(names_in)]
        shapes_out = [(-1, md.out_channels, size, size)]
    else:
        shapes_in = [(-1, md.in_channels, size, size), (-1, md.latent_dim)]
        shapes_out = [(-1, md.latent_dim)] * 3
    inputs = [
        TensorSpec(name, "int64" if name == "label" else "float32", shape)
        for name, shape in zip(names_in, shapes_in, strict=True)
    ]
    outputs = [TensorSpec(name, "float32", shape) for name, shape in zip(names_out, shapes_out, strict=True)]
    return inputs, outputs


@contextlib.contextmanager
def _quiet_inductor_import() -> Iterator[None]:
    """Inductor imports torch.jit APIs that emit a DeprecationWarning from inside torch itself; silence exactly
    that one while importing it, so runs under ``-W error`` use torch.compile instead of failing on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.script_method` is deprecated", category=DeprecationWarning
        )
        import torch._inductor.compile_fx  # noqa: F401
        yield


@contextlib.contextmanager
def _cudnn_benchmark() -> Iterator[None]:
    """cuDNN times its convolution algorithms for each new shape (in the warm-up calls before a capture) and the
    capture replays the cached winners; only the benchmark flag changes, and only for the duration."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class _Graph:
    """One captured CUDA graph: the static input buffers it reads and the output tensors it writes."""

    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: list[torch.Tensor], outputs: tuple[torch.Tensor, ...]):
        self.graph = graph
        self.inputs = inputs
        self.outputs = outputs


class TorchRunner(Runner):
    """One ganrt network in eval mode, running one part of its family (see :func:`graph_module`).

    ``threads`` applies to this runner's calls only (set around each call and restored): loading a model
    never changes ``torch.set_num_threads`` for the rest of the process. ``compile`` traces the graph module
    with ``torch.compile(mode=compile)`` on the first call; ``precision`` casts the weights (``fp16``/``bf16``
    are for CUDA; on CPU ganrt's fused kernels take float32). On CUDA: ``cuda_graphs`` captures a graph per
    input shape (not combined with ``compile``, whose ``reduce-overhead`` mode does its own);
    ``channels_last`` (default: on for fp16/bf16) runs the convolutions in NHWC.
    """

    backend = "torch"
    artifacts = ("run",)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        device: str = "cpu",
        device_index: int = 0,
        threads: int | None = None,
        part: str | None = None,
        net: str | None = None,
        direction: str | None = None,
        fused: bool = True,
        compile: str | None = None,
        precision: str = "fp32",
        cuda_graphs: bool = True,
        channels_last: bool | None = None,
        **options: Any,
    ) -> TorchRunner:
        """The run directory at ``path``: its family's default part, or ``part`` (``decoder``/``encoder`` of a
        VAE), ``direction`` (CycleGAN ``BtoA``), or the run's inference net ``net`` (``G_B``)."""
        from ganrt.families import family
        from ganrt.models import Run

        if options:
            raise TypeError(f"the torch backend takes no options {sorted(options)}")
        if device == "cuda":
            require_cuda(device_index, what="the torch backend on CUDA")
        try:
            run = Run.load(path)
            fam = family(run.family)
            if net is not None:
                chosen = fam.part(net=net)
            else:
                chosen = fam.part(part, direction=direction)
            module = run.net(chosen.net, fused=fused)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ArtifactError(f"{path}: cannot load this run directory: {exc}") from exc
        metadata = fam.metadata_for(
            module,
            part=chosen,
            image_size=int(run.config["image_size"]),
            config_hash=run.config_hash(),
            ganrt_version=str(run.config.get("ganrt_version", "")),
        )
        torch_device = "cpu" if device == "cpu" else f"cuda:{device_index}"
        return cls(
            module,
            metadata,
            part=chosen,
            device=torch_device,
            threads=threads,
            compile=compile,
            precision=precision,
            cuda_graphs=cuda_graphs,
            channels_last=channels_last,
            source=str(path),
        )

    def __init__(
        self,
        net: nn.Module,
        metadata: ArtifactMetadata,
        *,
        part: Part,
        device: str = "cpu",
        threads: int | None = None,
        compile: str | None = None,
        precision: str = "fp32",
        cuda_graphs: bool = True,
        channels_last: bool | None = None,
        source: str = "",
        stream: torch.cuda.Stream | None = None,
    ):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"compile must be None or one of {COMPILE_MODES}, got {compile!r}")
        if precision not in _DTYPES:
            raise ValueError(f"precision must be one of {tuple(_DTYPES)}, got {precision!r}")
        if precision == "fp16" and torch.device(device).type == "cpu":
            raise ValueError("precision 'fp16' runs on CUDA devices; on CPU use 'fp32' or 'bf16'")
        self._device = torch.device(device)
        cuda = self._device.type == "cuda"
        if channels_last is None:
            channels_last = cuda and precision != "fp32"
        self._dtype = _DTYPES[precision]
        self.net = net.eval().to(device=device, dtype=self._dtype)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.metadata = dataclasses.replace(metadata, precision=precision)
        self.part = part
        self.device = device
        self.channels_last = channels_last
        self.cuda_graphs = cuda_graphs and cuda and compile is None
        if cuda and stream is None:
            stream = torch.cuda.Stream(device=self._device)
        self._stream = stream if cuda else None
        self._graphs: collections.OrderedDict[tuple, _Graph | None] = collections.OrderedDict()
        self._graph_error: str | None = None
        self._threads = threads
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.max_batch = None
        self.precision = precision
        self.compile = compile
        self.path = Path(source) if source else None
        # float32 graph I/O at every precision, like ganrt's fp16 ONNX artifacts: the casts to and from the
        # compute dtype ride on the copies into and out of the static buffers (inside the captured graph when
        # eager), so the runtime's buffers, pre/post kernels and host arrays stay float32.
        self.inputs, self.outputs = graph_specs(self.metadata)
        self._output_names = [s.name for s in self.outputs]
        module = graph_module(self.net, self.metadata)
        if compile is not None:
            with _quiet_inductor_import():
                module = torch.compile(module, mode=compile)
        self._module = module

    def sibling(self, part: str) -> TorchRunner:
        """A runner for another part of the same network (a VAE's ``encoder`` next to its ``decoder``),
        sharing the weights."""
        from ganrt.families import family

        fam = family(self.metadata.family)
        chosen = fam.part(part)
        metadata = fam.metadata_for(
            self.net,
            part=chosen,
            image_size=self.metadata.image_size,
            config_hash=self.metadata.config_hash,
            ganrt_version=self.metadata.ganrt_version,
        )
        return TorchRunner(
            self.net,
            metadata,
            part=chosen,
            device=self.device,
            threads=self._threads,
            compile=self.compile,
            precision=self.precision,
            cuda_graphs=self.cuda_graphs,
            channels_last=self.channels_last,
            source=str(self.path or ""),
            stream=self._stream,  # one stream per network: the runtime orders a VAE's two parts on it
        )

    def metadata_props(self) -> dict[str, str]:
        return self.metadata.to_props()

    @property
    def stream(self) -> torch.cuda.Stream | None:
        return self._stream

    @contextlib.contextmanager
    def _thread_scope(self) -> Iterator[None]:
        """torch has one intra-op pool per process: use this runner's thread count for the call only."""
        before = torch.get_num_threads()
        if self._threads is None or self._threads == before or self._device.type != "cpu":
            yield
            return
        torch.set_num_threads(self._threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    # ------------------------------------------------------------------------------------------ running
    def _prepare(self, t: torch.Tensor) -> torch.Tensor:
        """A graph input in the dtype and layout the network runs in (float inputs cast to the precision, image
        inputs channels_last when enabled); integer inputs (labels) unchanged."""
        if not t.is_floating_point():
            return t
        t = t.to(self._dtype)
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _eager(self, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), self._thread_scope():
            out = self._module(*(self._prepare(t) for t in inputs))
        return out if isinstance(out, tuple) else (out,)

    def _capture(self, inputs: list[torch.Tensor]) -> _Graph | None:
        """A CUDA graph of the module for these input shapes (static copies of ``inputs`` already filled), or
        ``None`` when capture fails; called with the runner's stream current."""
        static = [self._prepare(t.clone()) for t in inputs]
        graph = torch.cuda.CUDAGraph()
        with _cudnn_benchmark():
            for _ in range(_WARMUP_CALLS):
                self._eager(static)
            try:
                # thread_local: CUDA calls from other threads (a server's request threads) stay legal meanwhile.
                with torch.inference_mode(), torch.cuda.graph(
                    graph, stream=self._stream, capture_error_mode="thread_local"
                ):
                    out = self._module(*static)
            except RuntimeError as exc:
                self._graph_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return None
        return _Graph(graph, static, out if isinstance(out, tuple) else (out,))

    def _execute(self, inputs: list[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], bool]:
        """The outputs for ``inputs`` (device tensors, graph input order), queued on the current stream, and
        whether they are a graph's static outputs (valid until the next call of this runner)."""
        if not self.cuda_graphs:
            return self._eager(inputs), False
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        if key not in self._graphs:
            graph = self._capture(inputs)
            self._graphs[key] = graph
            while len(self._graphs) > _GRAPHS_KEPT:
                self._graphs.popitem(last=False)  # its memory pool goes with it
        else:
            self._graphs.move_to_end(key)
            graph = self._graphs[key]
        if graph is None:
            return self._eager(inputs), False
        for static, value in zip(graph.inputs, inputs, strict=True):
            static.copy_(value)
        graph.graph.replay()
        return graph.outputs, True

    @contextlib.contextmanager
    def _on_stream(self) -> Iterator[None]:
        """Make the runner's stream current, ordered after the caller's current stream on entry and before it
        on exit, also on errors (nothing to order when the runtime already made it current)."""
        if self._stream is None:
            yield
            return
        with torch.cuda.device(self._device):
            caller = torch.cuda.current_stream(self._device)
            if caller == self._stream:
                yield
                return
            self._stream.wait_stream(caller)
            try:
                with torch.cuda.stream(self._stream):
                    yield
            finally:
                caller.wait_stream(self._stream)

    def forward(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Graph outputs for device tensors ``feeds`` (fresh float32 tensors)."""
        with self._on_stream():
            outs, static = self._execute([feeds[s.name] for s in self.inputs])
            outs = tuple(o.float() if o.dtype != torch.float32 else o.clone() if static else o for o in outs)
        return dict(zip(self._output_names, outs, strict=True))

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        with self._on_stream():
            outs, _ = self._execute([feeds[s.name] for s in self.inputs])
            for name, value in zip(self._output_names, outs, strict=True):
                if name in outputs:
                    outputs[name].copy_(value)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        with self._on_stream():
            tensors = [host_tensor(np.asarray(feeds[s.name])).to(self._device) for s in self.inputs]
            outs, _ = self._execute(tensors)
            hosts = [o.float().cpu() for o in outs]
        return {name: h.contiguous().numpy() for name, h in zip(self._output_names, hosts, strict=True)}

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "torch_version": torch.__version__,
            "fused_ops": bool(getattr(self.net, "fused", True)),
            "compile": self.compile,
        }
        if self._stream is not None:
            info.update(
                channels_last=self.channels_last,
                cuda_graphs=self.cuda_graphs,
                cuda_graphs_captured=sum(g is not None for g in self._graphs.values()),
                cuda_graph_fallback=self._graph_error,
            )
        return info

    def close(self) -> None:
        self._graphs.clear()
        self.net = None
        self._module = None
