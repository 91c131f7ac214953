"""``ganrt.load``: recognise the artifact, pick backend and device, resolve metadata, return the task's object.

The artifact kind decides which backends can read it (:data:`ganrt.backends.READERS`); each backend's runner
loads it and reports the artifact's own metadata; :func:`ganrt.runtime.metadata.resolve` completes it for
foreign artifacts. The result is a :class:`~ganrt.runtime.translator.Translator`,
:class:`~ganrt.runtime.sampler.Sampler`, :class:`~ganrt.runtime.sampler.VAE` or
:class:`~ganrt.runtime.sampler.Encoder`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

from ganrt.artifact import ArtifactMetadata
from ganrt.backends import READERS, runner_class
from ganrt.backends.base import Runner
from ganrt.backends.device import cuda_device_count, parse_device
from ganrt.cli_checks import thread_count
from ganrt.errors import ArtifactError, MetadataError
from ganrt.runtime.model import Model, Part

BACKENDS = ("auto", *sorted({b for readers in READERS.values() for b in readers}))
PRECISIONS = ("fp32", "fp16", "bf16")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
_HOW_TO_GET = {
    "engine": "build an engine with `ganrt export RUN_DIR --format engine`",
    "onnx": "export one with `ganrt export RUN_DIR --format onnx`",
    "run": "the torch backend reads ganrt run directories (config.json + weights.safetensors)",
}


def classify(path: Path) -> tuple[str, Path]:
    """("engine" | "onnx" | "run", path to open); raises for anything else."""
    if not path.exists():
        raise FileNotFoundError(f"no such model file or run directory: {path}")
    if path.is_dir():
        if (path / "config.json").is_file():
            return "run", path
        raise ArtifactError(
            f"{path}: a directory, but not a ganrt run directory (no config.json); expected a "
            f"run directory, a .onnx model or a .engine/.plan TensorRT engine"
        )
    suffix = path.suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        return "engine", path
    if suffix == ".onnx":
        return "onnx", path
    if suffix == ".safetensors":
        if (path.parent / "config.json").is_file():
            return "run", path.parent
        raise ArtifactError(
            f"{path}: a bare safetensors checkpoint does not say which network it holds; ganrt "
            f"loads it from its run directory (config.json beside weights.safetensors)"
        )
    if suffix in PICKLE_SUFFIXES:
        _refuse_pickle(path)
    raise ArtifactError(
        f"{path}: unknown model file extension {path.suffix!r}; expected .engine/.plan (TensorRT), "
        f".onnx (ONNX Runtime) or a ganrt run directory / its weights.safetensors"
    )


def _refuse_pickle(path: Path) -> None:
    """Explain why a pickle checkpoint is not loaded; always raises. Probes it with torch's restricted
    ``weights_only`` unpickler, which never executes code from the file."""
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            # torch warns about unusual pickle protocols in foreign files; the outcome is reported below.
            warnings.simplefilter("ignore")
            torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "restricted unpickler refused it"
        raise ArtifactError(
            f"{path}: refusing to load: this checkpoint needs unpickling arbitrary Python objects, which "
            f"can run arbitrary code ({reason[:200]}). Re-save only the weights (state_dict) from code you "
            f"trust, then convert with `ganrt import-upstream`"
        ) from None
    except Exception as exc:  # truncated zip archives, bad magic numbers, EOF: all mean "not a checkpoint"
        raise ArtifactError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): "
            f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from exc
    raise ArtifactError(
        f"{path}: a PyTorch state_dict does not say which network it holds; convert it with "
        f"`ganrt import-upstream {path} --netG ... -o RUN_DIR` and load the run directory"
    )


@dataclasses.dataclass(frozen=True)
class _Request:
    """What the caller asked for, checked once."""

    backend: str
    device: str
    index: int
    threads: int | None
    options: dict[str, Any]


def load(
    path: str | os.PathLike,
    *,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    encoder: str | os.PathLike | None = None,
    net: str | None = None,
    precision: str | None = None,
    cuda_graphs: bool = True,
    compile: str | None = None,
    **overrides: Any,
) -> Model:
    """Load a model for inference.

    path: a TensorRT engine (``.engine``/``.plan``, metadata from ``<engine>.json`` beside it), an ONNX model
    (``.onnx``, metadata from its ``metadata_props``) or a ganrt run directory (or its
    ``weights.safetensors``).
    backend: ``"auto"`` (the fastest that can run this artifact here; ``model.info()["selected"]`` says which
    and why), ``"tensorrt"``, ``"onnxruntime"``, ``"openvino"`` or ``"torch"``. For ONNX on the CPU,
    ``"auto"`` picks among ONNX Runtime, OpenVINO fp32 and OpenVINO bf16 (within the recipe's quality bound)
    by a short timed trial on the first load, recorded in ganrt's cache (:mod:`ganrt.runtime.select`).
    device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:<i>"``.
    threads: CPU intra-op threads (default: physical cores).
    encoder: a VAE decoder's encoder artifact, enabling ``encode``/``reconstruct``.
    net: a run directory's inference network other than the family's default (``"G_B"``: CycleGAN B -> A).
    precision: the inference precision, for backends that choose it at load time: the torch backend
    (``"fp32"`` default, ``"fp16"``/``"bf16"`` on CUDA) and OpenVINO (``"fp32"``, or ``"bf16"`` on CPUs with
    native bf16: AMX or AVX512_BF16); ``None`` lets ``backend="auto"``/``"openvino"`` choose (bf16 only within
    the quality bound). ONNX Runtime and TensorRT run an artifact at the precision it was exported with.
    cuda_graphs: TensorRT, and the torch backend on CUDA, replay a CUDA graph per input shape.
    compile: a run directory's torch backend through ``torch.compile(mode=compile)`` (``"default"``,
    ``"reduce-overhead"``, ``"max-autotune"``) instead of ganrt's CUDA graphs; compiled on the first call.
    overrides: metadata fields (``family=``, ``task=``, ``image_size=``, ``multiple=``, ``latent_dim=``,
    ``num_classes=``, ``value_range=``, ...) for foreign artifacts that lack ganrt metadata.

    Returns a :class:`~ganrt.runtime.translator.Translator` (``translate``), a
    :class:`~ganrt.runtime.sampler.Sampler` (``sample``/``decode``/``interpolate``), a
    :class:`~ganrt.runtime.sampler.VAE` (a sampler with ``encode``/``reconstruct``) or an
    :class:`~ganrt.runtime.sampler.Encoder`, each with ``info()``, ``infer()`` and ``close()``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    kind, where = classify(Path(path).expanduser())
    readers = READERS[kind]
    if backend != "auto" and backend not in readers:
        wanted = " or ".join(repr(b) for b in readers)
        needs = next(k for k, names in READERS.items() if backend in names)
        raise ValueError(
            f"{where}: backend={backend!r} cannot run a {kind} artifact (it needs {wanted}); "
            f"for {backend}, {_HOW_TO_GET[needs]}"
        )
    dev, index = parse_device(device)
    thread_count(threads)  # at most the logical CPUs there are (ValueError naming the limit)
    if kind == "run":
        if overrides:
            raise TypeError(
                f"{where}: run directories carry their own config; metadata overrides "
                f"{sorted(overrides)} only apply to foreign .onnx/.engine artifacts"
            )
        if encoder is not None:
            raise TypeError(f"{where}: a VAE run directory already holds its encoder; encoder= is for artifacts")
    elif net is not None:
        raise TypeError("net= selects a network of a run directory; this artifact holds one network")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} or None, got {precision!r}")
    options: dict[str, Any] = {}
    if precision is not None:
        if kind == "engine":
            raise ValueError(
                f"{where}: a TensorRT engine runs at the precision it was built with; precision= chooses the "
                f"precision of OpenVINO (ONNX on the CPU) or of a run directory's torch backend"
            )
        options["precision"] = precision
    if compile is not None and kind != "run":
        raise ValueError(
            f"{where}: compile= runs a run directory's torch backend through torch.compile; a {kind} artifact "
            f"is already compiled for its backend"
        )
    if kind in ("engine", "run"):
        options["cuda_graphs"] = cuda_graphs
    if kind == "run" and compile is not None:
        options["compile"] = compile
    if kind == "run" and net is not None:
        options["net"] = net
    request = _Request(backend, dev, index, threads, options)

    main, selected, selection = _open(kind, where, request, overrides)
    try:
        primary = _part(main, where, overrides)
        enc = None
        if kind == "run" and primary.metadata.family == "vae":
            runner = main.sibling("encoder")  # type: ignore[attr-defined]
            enc = _part(runner, where, {})
        elif encoder is not None:
            enc = _load_encoder(primary.metadata, where, encoder, request, main.device)
    except BaseException:
        main.close()
        raise
    props = main.metadata_props() or {}
    if kind == "run":
        source = "run config"
    elif any(k.startswith("ganrt.") for k in props):
        source = f"ganrt metadata ({_props_source(kind, where)})"
    else:
        source = "inferred from I/O"
    if overrides:
        source += f" + overrides {sorted(overrides)}"
    return _model_class(primary.metadata, enc)(
        primary,
        path=where,
        artifact=kind,
        selected=selected,
        metadata_source=source,
        encoder=enc if enc is not None else (primary if primary.metadata.task == "encode" else None),
        selection=selection,
    )


def _model_class(metadata: ArtifactMetadata, encoder: Part | None) -> type[Model]:
    from ganrt.runtime.sampler import VAE, Encoder, Sampler
    from ganrt.runtime.translator import Translator

    if metadata.task == "translate":
        return Translator
    if metadata.task == "encode":
        return Encoder
    return VAE if encoder is not None else Sampler


def _props_source(kind: str, where: Path) -> str:
    if kind == "engine":
        from ganrt.artifact import read_engine_sidecar

        sidecar = read_engine_sidecar(where)
        return str(sidecar.path) if sidecar is not None else str(where)
    return str(where)


def _open(
    kind: str, where: Path, request: _Request, overrides: dict[str, Any]
) -> tuple[Runner, str, dict[str, Any] | None]:
    """The runner for the artifact, why this backend and device were chosen, and for ONNX on the CPU the
    selection's details (candidates, times, precision and why; :mod:`ganrt.runtime.select`)."""
    backend, dev = request.backend, request.device
    if backend == "auto" and kind != "onnx":
        backend = READERS[kind][0]
    if dev == "auto":
        if backend == "openvino":
            dev, why = "cpu", "OpenVINO runs on the CPU"
        else:
            dev, why = _auto_device(kind, backend)
    else:
        why = f"{dev} requested"
    if kind == "onnx" and dev == "cpu":
        from ganrt.runtime.select import select

        options = dict(request.options)
        chosen = select(
            where, backend=backend, threads=request.threads, precision=options.pop("precision", None),
            overrides=overrides,
        )  # fmt: skip
        details = {"precision_reason": chosen.precision_reason, **(chosen.record or {})}
        device_why = f"; device: {why}" if request.device == "auto" else ""
        return chosen.runner, chosen.reason + device_why, details
    options = dict(request.options)
    if kind == "onnx":
        backend = "onnxruntime" if backend == "auto" else backend
        wanted = options.pop("precision", None)
        exported = _exported_precision(where)
        if wanted is not None and (backend != "onnxruntime" or wanted != exported):
            raise ValueError(
                f"{where}: precision={wanted!r} on {dev}: ONNX Runtime runs this artifact at the precision "
                f"it was exported with ({exported}); OpenVINO's fp32/bf16 run on the CPU (device='cpu')"
            )
    runner = runner_class(backend).load(
        where, device=dev, device_index=request.index, threads=request.threads, **options
    )
    reasons = {
        "engine": "a serialized engine runs only on TensorRT",
        "onnx": why,
        "run": "a run directory is a PyTorch checkpoint (fused ops); export it to ONNX or a TensorRT engine "
        "for the faster backends",
    }
    return runner, f"{backend} on {runner.device}: {reasons[kind]}", None


def _exported_precision(where: Path) -> str:
    from ganrt.artifact import onnx_metadata_props

    try:
        return onnx_metadata_props(where).get("ganrt.precision") or "fp32"
    except MetadataError:
        return "fp32"


def _auto_device(kind: str, backend: str) -> tuple[str, str]:
    if kind == "engine":
        return "cuda", "TensorRT engines run on CUDA devices"
    if kind == "run":
        cuda = cuda_device_count() > 0
        return ("cuda" if cuda else "cpu"), ("a CUDA device is present" if cuda else "no CUDA device")
    from ganrt.backends.onnxruntime import cuda_provider_available

    if cuda_provider_available():
        return "cuda", "CUDA execution provider with I/O binding (GPU present)"
    return "cpu", "CPU execution provider (no CUDA device with onnxruntime-gpu)"


def _part(runner: Runner, where: Path, overrides: dict[str, Any]) -> Part:
    from ganrt.runtime.metadata import resolve

    metadata, roles = resolve(runner.metadata_props(), runner.inputs, runner.outputs, overrides, source=str(where))
    if not runner.chooses_precision:
        # The graph's I/O dtypes cannot show fp16 convolutions behind fp32 I/O; the metadata can.
        runner.precision = metadata.precision
    return Part(runner, metadata, roles)


def _load_encoder(
    md: ArtifactMetadata, where: Path, encoder: str | os.PathLike, request: _Request, device: str
) -> Part:
    """The encoder artifact ``encoder`` of decoder ``where``, on the decoder's device."""
    if md.family != "vae" or md.task != "sample":
        raise TypeError(f"encoder= pairs a VAE decoder with its encoder; {where} is a {md.family} {md.task} model")
    kind, enc_path = classify(Path(encoder).expanduser())
    if kind == "run":
        raise TypeError(f"encoder= takes an exported encoder artifact, got the run directory {enc_path}")
    options = {"cuda_graphs": request.options.get("cuda_graphs", True)} if kind == "engine" else {}
    if kind == "onnx" and "precision" in request.options:
        options["precision"] = request.options["precision"]
    dev, _, index = device.partition(":")
    backend = request.backend if request.backend in READERS[kind] else "auto"
    same_device = dataclasses.replace(
        request, backend=backend, device=dev, index=int(index or 0), options=options
    )
    runner, _, _ = _open(kind, enc_path, same_device, {})
    try:
        part = _part(runner, enc_path, {})
        if part.metadata.task != "encode" or part.metadata.latent_dim != md.latent_dim:
            raise MetadataError(
                f"{enc_path}: not this decoder's encoder: task {part.metadata.task!r}, latent_dim "
                f"{part.metadata.latent_dim} (decoder {where}: latent_dim {md.latent_dim})"
            )
    except BaseException:
        runner.close()
        raise
    return part


__all__ = ["BACKENDS", "classify", "load"]
