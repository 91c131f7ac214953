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

from ganrt.artifact import ArtifactMetadata, io_names
from ganrt.families import FAMILIES, family

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from torch import nn

_T = TypeVar("_T")


class Unavailable(Exception):
    """A backend cannot run this target on this machine; the message says why (it is reported, not hidden)."""


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


def _family_target(name: str, *, size: int | None, width: int | None, workdir: Path) -> Target:
    import torch

    from ganrt import __version__
    from ganrt.models import build_net, save_run

    fam = family(name)
    size = fam.reference_size if size is None else size
    spec = fam.reference(size=size, width=width)
    torch.manual_seed(0)
    net = build_net(spec)
    spec = dict(getattr(net, "spec", spec))
    part = fam.part()
    if part.task == "translate":
        _check_size(size, int(net.multiple), f"{name} ({spec['arch']})")
    run_dir = workdir / f"{name}-run"
    config = {
        "format": "ganrt-run/1",
        "ganrt_version": __version__,
        "family": name,
        "image_size": size,
        "in_channels": 3,
        "out_channels": 3,
        "nets": {part.net: spec},
        "data": {"source": "random weights (ganrt bench)"},
        "train": {},
    }
    save_run(run_dir, config, {part.net: net})
    return Target(
        kind="family",
        name=f"{name} ({spec['arch']}, random weights)",
        metadata=fam.metadata_for(net, part=part, image_size=size),
        size=size,
        run_dir=run_dir,
        arch=str(spec["arch"]),
        parameters=_count_parameters(net),
        spec=spec,
    )


def _run_target(path: Path, *, size: int | None) -> Target:
    from ganrt.models import Run

    run = Run.load(path)
    fam = family(run.family)
    part = fam.part()
    net = run.net(part.net)
    native = int(run.config["image_size"])
    md = fam.metadata_for(net, part=part, image_size=native, config_hash=run.config_hash())
    spec = run.config["nets"].get(part.net)
    return Target(
        kind="run",
        name=str(path),
        metadata=md,
        size=_sized(md, size, str(path)),
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

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf's DecodeError, OSError or ValueError alike
        raise ValueError(f"{path}: not a readable ONNX model (truncated or corrupt?): {exc}") from None
    if model.ir_version == 0 or not model.HasField("graph"):
        raise ValueError(f"{path}: not an ONNX model (no IR version or graph: empty or another format?)")
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
    from ganrt.artifact import read_engine_sidecar, sidecar_path

    sidecar = read_engine_sidecar(path)
    if sidecar is None:
        raise ValueError(
            f"{path}: no ganrt metadata beside it (expected {sidecar_path(path).name}); export engines with "
            f"`ganrt export --format engine`"
        )
    try:
        md = ArtifactMetadata.from_props(sidecar.props)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{sidecar.path}: not ganrt engine metadata ({exc})") from exc
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

    def run_dir(self) -> Path:
        """The target's run directory, for the torch backends."""
        if self.target.run_dir is None:
            raise Unavailable(
                f"needs the weights as a PyTorch module (a run directory or a FAMILY); "
                f"{self.target.name} is a {self.target.kind} artifact"
            )
        return self.target.run_dir

    def onnx(self, precision: str) -> tuple[Path, float]:
        """(path, seconds it took to export) of the ONNX model at ``precision``."""
        return _memo(self._onnx, precision, lambda: self._build_onnx(precision))

    def _given(self, kind: str, precision: str) -> tuple[Path, float] | None:
        """The target itself when it is an artifact of ``kind`` at ``precision`` (nothing to build), ``None``
        when it is a run to build from; :class:`Unavailable` when neither."""
        t = self.target
        what = {"onnx": "ONNX artifact", "engine": "engine"}[kind]
        if t.kind == kind:
            if t.metadata.precision != precision:
                raise Unavailable(
                    f"the {what} is {t.metadata.precision}; precision {precision} needs one exported with "
                    f"--precision {precision}"
                )
            path = t.onnx_path if kind == "onnx" else t.engine_path
            assert path is not None
            return path, 0.0
        if t.run_dir is None:
            raise Unavailable(
                f"needs an ONNX model; {t.name} is a {t.kind} artifact"
                if kind == "onnx"
                else "building a TensorRT engine needs a run directory or a FAMILY (ganrt export builds engines "
                "from a run); pass the .engine exported from this ONNX model instead"
            )
        return None

    def _build_onnx(self, precision: str) -> tuple[Path, float]:
        given = self._given("onnx", precision)
        if given is not None:
            return given
        out = self.workdir / f"model-{precision}.onnx"
        return self._export("onnx", out, precision, (1, self.max_batch, self.max_batch), "ONNX export")

    def engine(self, precision: str, batch: int) -> tuple[Path, float]:
        """(path, seconds it took to build) of a TensorRT engine whose profile covers ``batch``."""
        return _memo(self._engines, (precision, batch), lambda: self._build_engine(precision, batch))

    def _build_engine(self, precision: str, batch: int) -> tuple[Path, float]:
        given = self._given("engine", precision)
        if given is not None:
            return given
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
