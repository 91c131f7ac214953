"""PyTorch backend: ganrt run directories (``config.json`` + ``weights.safetensors``) on the fused ops, eager or
through ``torch.compile``.

The runner exposes the same graph-level I/O as the exported ONNX (``image`` -> ``output``; ``z`` [+ ``label``]
-> ``image``; ``image``, ``eps`` -> ``mu``, ``logvar``, ``z``), built from the same :func:`graph_module` that
export traces, so the rest of ganrt cannot tell backends apart and ``sample(seed=s)`` gives the same images
here as from the exported artifact. Its metadata comes from :meth:`ganrt.families.Family.metadata_for`, the
function export uses.
"""

from __future__ import annotations

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


def graph_specs(metadata: ArtifactMetadata, dtype: str = "float32") -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) of the graph for ``metadata``, -1 for dynamic axes (batch always; H and W of
    translators)."""
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
        TensorSpec(name, "int64" if name == "label" else dtype, shape)
        for name, shape in zip(names_in, shapes_in, strict=True)
    ]
    outputs = [TensorSpec(name, dtype, shape) for name, shape in zip(names_out, shapes_out, strict=True)]
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


class TorchRunner(Runner):
    """One ganrt network in eval mode, running one part of its family (see :func:`graph_module`).

    ``threads`` applies to this runner's calls only (set around each call and restored): loading a model
    never changes ``torch.set_num_threads`` for the rest of the process. ``compile`` traces the graph module
    with ``torch.compile(mode=compile)`` on the first call; ``precision`` casts the weights (``fp16``/``bf16``
    are for CUDA; on CPU ganrt's fused kernels take float32).
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
        source: str = "",
    ):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"compile must be None or one of {COMPILE_MODES}, got {compile!r}")
        if precision not in _DTYPES:
            raise ValueError(f"precision must be one of {tuple(_DTYPES)}, got {precision!r}")
        if precision == "fp16" and torch.device(device).type == "cpu":
            raise ValueError("precision 'fp16' runs on CUDA devices; on CPU use 'fp32' or 'bf16'")
        self._dtype = _DTYPES[precision]
        self.net = net.eval().to(device=device, dtype=self._dtype)
        self.metadata = dataclasses.replace(metadata, precision=precision)
        self.part = part
        self.device = device
        self._device = torch.device(device)
        self._threads = threads
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.max_batch = None
        self.precision = precision
        self.compile = compile
        self.path = Path(source) if source else None
        self.inputs, self.outputs = graph_specs(self.metadata, str(self._dtype).removeprefix("torch."))
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
            source=str(self.path or ""),
        )

    def metadata_props(self) -> dict[str, str]:
        return self.metadata.to_props()

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

    def forward(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Graph outputs for device tensors ``feeds`` (fresh tensors)."""
        with torch.inference_mode(), self._thread_scope():
            out = self._module(*(feeds[s.name] for s in self.inputs))
        outs = out if isinstance(out, tuple) else (out,)
        return dict(zip(self._output_names, outs, strict=True))

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        for name, value in self.forward(feeds).items():
            if name in outputs:
                outputs[name].copy_(value)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        tensors = {k: host_tensor(np.asarray(v)).to(self._device) for k, v in feeds.items()}
        return {k: v.float().cpu().numpy() if v.dtype == torch.bfloat16 else v.cpu().numpy()
                for k, v in self.forward(tensors).items()}  # fmt: skip

    def info(self) -> dict[str, Any]:
        return {
            "torch_version": torch.__version__,
            "fused_ops": bool(getattr(self.net, "fused", True)),
            "compile": self.compile,
        }

    def close(self) -> None:
        self.net = None
        self._module = None
