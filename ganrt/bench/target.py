"""What is being benchmarked: a model family's reference architecture with random weights, a run directory,
an ONNX model or a TensorRT engine, and the artifacts each backend needs from it (built once, cached).

A FAMILY becomes a real run directory (``ganrt.models.save_run``) in the benchmark's work folder, so every
backend reads the same weights through the same code paths a trained model would take.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ganrt.export.metadata import FAMILIES, ArtifactMetadata, io_names

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from torch import nn

_T = TypeVar("_T")

# The reference architecture each family is benchmarked with.
FAMILY_ARCH: dict[str, str] = {
    "pix2pix": "unet_256",
    "cyclegan": "resnet_9blocks",
    "vae": "vae",
    "dcgan": "dcgan_g",
}
# Default benchmark resolution: translators at the reference 256², samplers at the constructors' 64².
FAMILY_SIZE: dict[str, int] = {"pix2pix": 256, "cyclegan": 256, "vae": 64, "dcgan": 64}


class Unavailable(Exception):
    """A backend cannot run this target on this machine; the message says why (it is reported, not hidden)."""


def family_spec(family: str, *, size: int, width: int | None) -> dict[str, Any]:
    """The ``build_net`` spec of ``family``'s reference generator at ``size`` pixels.

    ``width`` overrides the width parameter (``ngf``; ``base_channels`` for the VAE); ``None`` keeps the
    reference value (64 for the GANs, 32 for the VAE).
    """
    if family not in FAMILY_ARCH:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    spec: dict[str, Any] = {"arch": FAMILY_ARCH[family]}
    if family == "pix2pix":
        spec.update(in_channels=3, out_channels=3, norm="batch")
    elif family == "cyclegan":
        spec.update(in_channels=3, out_channels=3, norm="instance")
    else:
        spec.update(image_size=size, channels=3)
    key = "base_channels" if family == "vae" else "ngf"
    if width is not None:
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        spec[key] = width
    return spec


@dataclasses.dataclass
class Target:
    """A resolved benchmark target.

    ``kind`` is ``family`` | ``run`` | ``onnx`` | ``engine``; ``run_dir`` is set for the first two (a family
    is materialised as a run directory), ``onnx_path`` / ``engine_path`` for the last two. ``size`` is the
    image height and width benchmarked (for samplers: the generator's fixed output size).
    """

    kind: str
    name: str
    metadata: ArtifactMetadata
    size: int
    run_dir: Path | None = None
    onnx_path: Path | None = None
    engine_path: Path | None = None
    arch: str | None = None
    parameters: int | None = None
    spec: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return self.metadata.task

    def io_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(graph input names, graph output names) of the exported graph for this target."""
        return io_names(self.metadata.task, self.metadata.num_classes)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for the report."""
        md = self.metadata
        return {
            "kind": self.kind,
            "name": self.name,
            "family": md.family,
            "task": md.task,
            "arch": self.arch,
            "parameters": self.parameters,
            "size": self.size,
            "in_channels": md.in_channels,
            "out_channels": md.out_channels,
            "latent_dim": md.latent_dim,
            "num_classes": md.num_classes,
            "artifact_precision": md.precision if self.kind in ("onnx", "engine") else None,
            "config_hash": md.config_hash or None,
            "spec": self.spec,
        }

    def make_feeds(self, batch: int, *, include_io: bool, seed: int) -> dict[str, np.ndarray]:
        """Graph-level inputs for one call, identical for every backend.

        translate: ``image`` float32 (N, C, H, W) in [-1, 1], or with ``include_io`` uint8 (N, H, W, C);
        sample: ``z`` float32 (N, latent_dim) (+ ``label`` int64 (N,)); encode: ``image`` and ``eps``
        float32 (N, latent_dim). Backends cast floats to their own precision before timing starts.
        """
        rng = np.random.default_rng(seed)
        md = self.metadata
        feeds: dict[str, np.ndarray] = {}
        inputs, _ = self.io_names()
        for name in inputs:
            if name == "image":
                if include_io:
                    feeds[name] = rng.integers(
                        0, 256, (batch, self.size, self.size, md.in_channels), dtype=np.uint8
                    )
                else:
                    feeds[name] = rng.uniform(
                        -1.0, 1.0, (batch, md.in_channels, self.size, self.size)
                    ).astype(np.float32)
            elif name in ("z", "eps"):
                feeds[name] = rng.standard_normal((batch, md.latent_dim), dtype=np.float32)
            elif name == "label":
                feeds[name] = rng.integers(0, md.num_classes, (batch,), dtype=np.int64)
            else:
                raise ValueError(f"unknown graph input {name!r} for task {md.task!r}")
        return feeds


def _count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _metadata_from_net(net: nn.Module, *, family: str, task: str, image_size: int) -> ArtifactMetadata:
    from ganrt import __version__

    return ArtifactMetadata(
        family=family,
        task=task,
        in_channels=int(getattr(net, "in_channels", 3)) if task != "sample" else int(net.out_channels),
        out_channels=int(net.out_channels),
        image_size=image_size,
        multiple=int(getattr(net, "multiple", 1)) if task != "sample" else 1,
        latent_dim=int(getattr(net, "latent_dim", 0)),
        num_classes=int(getattr(net, "num_classes", 0)),
        ganrt_version=__version__,
    )


def _family_task(family: str) -> str:
    return "translate" if family in ("pix2pix", "cyclegan") else "sample"


def _check_size(size: int, multiple: int, what: str) -> None:
    if size < 1 or size % multiple:
        raise ValueError(f"size must be a positive multiple of {multiple} for {what}, got {size}")


def resolve_target(target: str | Path, *, size: int | None, width: int | None, workdir: Path) -> Target:
    """Turn ``ganrt bench``'s MODEL|FAMILY argument into a :class:`Target`.

    A family is built with random weights (seeded, so reruns benchmark the same network) and saved as a run
    directory under ``workdir``. Paths may be a run directory (``config.json`` + ``weights.safetensors``), an
    ``.onnx`` file or a TensorRT ``.engine``/``.plan`` (with ganrt's ``<name>.engine.json`` metadata beside).
    """
    text = str(target)
    if text in FAMILIES:
        return _family_target(text, size=size, width=width, workdir=workdir)
    if width is not None:
        raise ValueError(f"width (--ngf) only applies to a FAMILY ({', '.join(FAMILIES)}), not to {text!r}")
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"MODEL must be a FAMILY ({', '.join(FAMILIES)}), a run directory, an .onnx or "
            f".engine file; {text!r} is neither a family nor an existing path"
        )
    if path.is_dir():
        return _run_target(path, size=size)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _onnx_target(path, size=size)
    if suffix in (".engine", ".plan"):
        return _engine_target(path, size=size)
    raise ValueError(
        f"MODEL {text!r}: expected a run directory, an .onnx or an .engine/.plan file, "
        f"got a {suffix or 'suffix-less'} file"
    )


def _family_target(family: str, *, size: int | None, width: int | None, workdir: Path) -> Target:
    import torch

    from ganrt import __version__
    from ganrt.models import FAMILY_GENERATOR, build_net, save_run

    size = FAMILY_SIZE[family] if size is None else size
    spec = family_spec(family, size=size, width=width)
    torch.manual_seed(0)
    net = build_net(spec)
    spec = dict(getattr(net, "spec", spec))
    task = _family_task(family)
    if task == "translate":
        _check_size(size, int(net.multiple), f"{family} ({spec['arch']})")
    run_dir = workdir / f"{family}-run"
    net_name = FAMILY_GENERATOR[family]
    config = {
        "format": "ganrt-run/1",
        "ganrt_version": __version__,
        "family": family,
        "image_size": size,
        "in_channels": 3,
        "out_channels": 3,
        "nets": {net_name: spec},
        "data": {"source": "random weights (ganrt bench)"},
        "train": {},
    }
    save_run(run_dir, config, {net_name: net})
    return Target(
        kind="family",
        name=f"{family} ({spec['arch']}, random weights)",
        metadata=_metadata_from_net(net, family=family, task=task, image_size=size),
        size=size,
        run_dir=run_dir,
        arch=str(spec["arch"]),
        parameters=_count_parameters(net),
        spec=spec,
    )


def _run_target(path: Path, *, size: int | None) -> Target:
    from ganrt.models import FAMILY_GENERATOR, Run

    run = Run.load(path)
    family = run.family
    net = run.generator()
    task = _family_task(family)
    native = int(run.config["image_size"])
    if task == "sample":
        if size is not None and size != native:
            raise ValueError(f"size must be the sampler's output size {native} for {path}, got {size}")
        size = native
    else:
        size = native if size is None else size
        _check_size(size, int(net.multiple), str(path))
    spec = run.config["nets"].get(FAMILY_GENERATOR[family])
    md = _metadata_from_net(net, family=family, task=task, image_size=native)
    md = dataclasses.replace(md, config_hash=run.config_hash())
    return Target(
        kind="run",
        name=str(path),
        metadata=md,
        size=size,
        run_dir=path,
        arch=str(spec.get("arch")) if spec else None,
        parameters=_count_parameters(net),
        spec=spec,
    )


def _sized(md: ArtifactMetadata, size: int | None, source: str) -> int:
    if md.task == "sample":
        if size is not None and size != md.image_size:
            raise ValueError(
                f"size must be the sampler's output size {md.image_size} for {source}, got {size}"
            )
        return md.image_size
    size = md.image_size if size is None else size
    _check_size(size, md.multiple, source)
    return size


def _onnx_target(path: Path, *, size: int | None) -> Target:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    try:
        md = ArtifactMetadata.from_props(props)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a ganrt ONNX artifact ({exc}); export it with `ganrt export`") from exc
    parameters = int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
    return Target(
        kind="onnx",
        name=str(path),
        metadata=md,
        size=_sized(md, size, str(path)),
        onnx_path=path,
        parameters=parameters or None,
    )


def _engine_target(path: Path, *, size: int | None) -> Target:
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        raise ValueError(
            f"{path}: no ganrt metadata beside it (expected {sidecar.name}); export engines with "
            f"`ganrt export --format engine`"
        )
    md = ArtifactMetadata.from_json(sidecar.read_text(encoding="utf-8"))
    return Target(
        kind="engine", name=str(path), metadata=md, size=_sized(md, size, str(path)), engine_path=path
    )


class Artifacts:
    """Builds (once) the ONNX model and TensorRT engines the backends need, and remembers how long it took.

    ``build_s`` of each artifact is reported separately from cold start: exporting is a one-off, deploy-time
    cost, while cold start is what every process start pays.
    """

    def __init__(
        self, target: Target, *, workdir: Path, batches: tuple[int, ...], progress: bool = False
    ) -> None:
        self.target = target
        self.workdir = workdir
        self.max_batch = max(batches)
        self.progress = progress
        self._onnx: dict[str, tuple[Path, float] | Exception] = {}
        self._engines: dict[tuple[str, int], tuple[Path, float] | Exception] = {}

    def module(self) -> nn.Module:
        """The target's inference net as a PyTorch module (eval mode), for the torch backends."""
        from ganrt.models import Run

        if self.target.run_dir is None:
            raise Unavailable(
                f"needs the weights as a PyTorch module (a run directory or a FAMILY); "
                f"{self.target.name} is a {self.target.kind} artifact"
            )
        return Run.load(self.target.run_dir).generator()

    def onnx(self, precision: str) -> tuple[Path, float]:
        """(path, seconds it took to export) of the ONNX model at ``precision``."""
        return _memo(self._onnx, precision, lambda: self._build_onnx(precision))

    def _build_onnx(self, precision: str) -> tuple[Path, float]:
        t = self.target
        if t.kind == "onnx":
            assert t.onnx_path is not None
            if t.metadata.precision != precision:
                raise Unavailable(
                    f"the ONNX artifact is {t.metadata.precision}; precision {precision} needs an "
                    f"artifact exported with --precision {precision}"
                )
            return t.onnx_path, 0.0
        if t.run_dir is None:
            raise Unavailable(f"needs an ONNX model; {t.name} is a {t.kind} artifact")
        out = self.workdir / f"model-{precision}.onnx"
        return self._export("onnx", out, precision, (1, self.max_batch, self.max_batch), "ONNX export")

    def engine(self, precision: str, batch: int) -> tuple[Path, float]:
        """(path, seconds it took to build) of a TensorRT engine whose profile covers ``batch``."""
        return _memo(self._engines, (precision, batch), lambda: self._build_engine(precision, batch))

    def _build_engine(self, precision: str, batch: int) -> tuple[Path, float]:
        t = self.target
        if t.kind == "engine":
            assert t.engine_path is not None
            if t.metadata.precision != precision:
                raise Unavailable(
                    f"the engine is {t.metadata.precision}; precision {precision} needs an engine "
                    f"built with --precision {precision}"
                )
            return t.engine_path, 0.0
        if t.run_dir is None:
            raise Unavailable(
                "building a TensorRT engine needs a run directory or a FAMILY (ganrt export builds "
                "engines from a run); pass the .engine exported from this ONNX model instead"
            )
        out = self.workdir / f"model-{precision}-b{batch}.engine"
        return self._export(
            "engine", out, precision, (1, batch, max(batch, self.max_batch)), "TensorRT engine build"
        )

    def _export(
        self, fmt: str, out: Path, precision: str, batch: tuple[int, int, int], what: str
    ) -> tuple[Path, float]:
        """Export the target's run to ``out``; (path, seconds it took)."""
        from ganrt.export import ExportError, export

        t = self.target
        hw = None if t.task == "sample" else t.size
        start = time.perf_counter()
        try:
            result = export(
                t.run_dir,
                format=fmt,
                output=out,
                precision=precision,
                batch=batch,
                height=hw,
                width=hw,
                progress=self.progress,
            )
        except ExportError as exc:
            raise Unavailable(f"{what} failed: {_first_line(exc)}") from exc
        return Path(result.path), time.perf_counter() - start


def _memo(cache: dict[Any, Any], key: Hashable, build: Callable[[], _T]) -> _T:
    """``build()`` once per ``key``; an :class:`Unavailable` is cached too and raised again on each call."""
    if key not in cache:
        try:
            cache[key] = build()
        except Unavailable as exc:
            cache[key] = exc
    found = cache[key]
    if isinstance(found, Exception):
        raise Unavailable(str(found))
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
