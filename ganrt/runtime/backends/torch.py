"""PyTorch backend: ganrt run directories (``config.json`` + ``weights.safetensors``) on the fused ops.

The runner exposes the same graph-level I/O as the exported ONNX (``image`` -> ``image``; ``z`` [+ ``label``]
-> ``image``; ``image``, ``eps`` -> ``mu``, ``logvar``, ``z``), so the rest of the runtime cannot tell
backends apart and ``sample(seed=s)`` gives the same images here as from the exported artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganrt.export.metadata import ArtifactMetadata
from ganrt.runtime._device import require_cuda
from ganrt.runtime.backends.base import Runner, TensorSpec, host_tensor
from ganrt.runtime.errors import ArtifactError

_TASKS = {"pix2pix": "translate", "cyclegan": "translate", "vae": "sample", "dcgan": "sample"}
# Networks of a run that the runtime can drive (discriminators are training-only).
_GENERATORS = {"pix2pix": ("G",), "cyclegan": ("G_A", "G_B"), "vae": ("VAE",), "dcgan": ("G",)}


class TorchRunner(Runner):
    """One ganrt generator in eval mode. ``kind`` picks the graph it stands in for:
    ``translate`` (image -> image), ``sample`` (z [, label] -> image), ``decode`` (VAE z -> image) or
    ``encode`` (VAE image, eps -> mu, logvar, z)."""

    backend = "torch"

    def __init__(
        self,
        module: nn.Module,
        *,
        kind: str,
        device: str,
        threads: int | None,
        in_channels: int,
        out_channels: int,
        latent_dim: int = 0,
        num_classes: int = 0,
        image_size: int = 0,
    ):
        self.module = module.eval().to(device)
        self.kind = kind
        self.device = device
        self._device = torch.device(device)
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)  # process-wide: torch has no per-module thread pool
        self.threads = torch.get_num_threads()
        self.max_batch = None
        dtype = next(self.module.parameters()).dtype
        self.precision = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")
        self._dtype = dtype
        fdt = str(dtype).removeprefix("torch.")
        image_in = TensorSpec(
            "image",
            fdt,
            (-1, in_channels, -1, -1) if kind == "translate" else (-1, in_channels, image_size, image_size),
        )
        # Same names as the exported graphs (ganrt.export.metadata.io_names): a translator writes "output".
        image_out = TensorSpec(
            "output" if kind == "translate" else "image",
            fdt,
            (-1, out_channels, -1, -1) if kind == "translate" else (-1, out_channels, image_size, image_size),
        )
        z = TensorSpec("z", fdt, (-1, latent_dim))
        if kind == "translate":
            self.inputs, self.outputs = [image_in], [image_out]
        elif kind in ("sample", "decode"):
            self.inputs = [z] + ([TensorSpec("label", "int64", (-1,))] if num_classes else [])
            self.outputs = [image_out]
        elif kind == "encode":
            self.inputs = [image_in, TensorSpec("eps", fdt, (-1, latent_dim))]
            self.outputs = [
                TensorSpec("mu", fdt, (-1, latent_dim)),
                TensorSpec("logvar", fdt, (-1, latent_dim)),
                z,
            ]
        else:
            raise ValueError(f"kind must be translate|sample|decode|encode, got {kind!r}")

    @torch.inference_mode()
    def _forward(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.kind == "translate":
            return {"output": self.module(feeds["image"])}
        if self.kind == "sample":
            return {"image": self.module(feeds["z"], feeds.get("label"))}
        if self.kind == "decode":
            return {"image": self.module.decode(feeds["z"])}
        mu, logvar = self.module.encode(feeds["image"])
        # Same arithmetic as the exported encoder graph (reparameterize_ref with eps as an input).
        return {"mu": mu, "logvar": logvar, "z": mu + torch.exp(0.5 * logvar) * feeds["eps"]}

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        for name, value in self._forward(feeds).items():
            outputs[name].copy_(value)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        tensors = {k: host_tensor(np.asarray(v)).to(self._device) for k, v in feeds.items()}
        return {k: v.cpu().numpy() for k, v in self._forward(tensors).items()}

    def info(self) -> dict[str, Any]:
        return {"torch_version": torch.__version__, "fused_ops": True}

    def close(self) -> None:
        self.module = None


def load_run(
    path: Path, *, device: str, device_index: int, threads: int | None, net: str | None = None
) -> tuple[TorchRunner, TorchRunner | None, ArtifactMetadata]:
    """Runner(s) and metadata for a run directory: the family's generator (or ``net``), plus the encoder half
    for VAEs."""
    from ganrt.models import Run

    if device == "cuda":
        require_cuda(device_index, what="the torch backend on CUDA")
    torch_device = "cpu" if device == "cpu" else f"cuda:{device_index}"
    try:
        run = Run.load(path)
        family = run.family
        if net is not None and net not in _GENERATORS.get(family, ()):
            raise ValueError(
                f"net must be one of the {family} generators {_GENERATORS.get(family)}, got {net!r}"
            )
        module = run.net(net, fused=True) if net else run.generator(fused=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: cannot load this run directory: {exc}") from exc
    if family not in _TASKS:
        raise ArtifactError(f"{path}: unknown family {family!r} in config.json")
    config = run.config
    task = _TASKS[family]
    in_channels = int(getattr(module, "in_channels", config.get("in_channels", 3)))
    out_channels = int(getattr(module, "out_channels", config.get("out_channels", in_channels)))
    image_size = int(getattr(module, "image_size", config.get("image_size", 0)))
    latent_dim = int(getattr(module, "latent_dim", 0))
    num_classes = int(getattr(module, "num_classes", 0))
    multiple = int(getattr(module, "multiple", 1))
    metadata = ArtifactMetadata(
        family=family,
        task=task,
        in_channels=in_channels,
        out_channels=out_channels,
        image_size=image_size,
        multiple=multiple if task == "translate" else 1,
        latent_dim=latent_dim,
        num_classes=num_classes,
        precision="fp32",
        config_hash=run.config_hash(),
        ganrt_version=str(config.get("ganrt_version", "")),
    )
    common = dict(
        device=torch_device,
        threads=threads,
        in_channels=in_channels,
        out_channels=out_channels,
        latent_dim=latent_dim,
        num_classes=num_classes,
        image_size=image_size,
    )
    if family == "vae":
        return (
            TorchRunner(module, kind="decode", **common),
            TorchRunner(module, kind="encode", **common),
            metadata,
        )
    return TorchRunner(module, kind=task, **common), None, metadata
