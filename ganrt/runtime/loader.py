"""``ganrt.load``: recognise the artifact, pick backend and device, resolve metadata, return a ``Model``."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from ganrt.export.metadata import ArtifactMetadata
from ganrt.runtime._device import cuda_device_count, parse_device
from ganrt.runtime.backends.base import Runner
from ganrt.runtime.errors import ArtifactError, MetadataError
from ganrt.runtime.metadata import Roles
from ganrt.runtime.model import Model

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
# Which backend can run which artifact kind.
_BACKEND_OF = {"engine": "tensorrt", "onnx": "onnxruntime", "run": "torch"}
_HOW_TO_GET = {
    "tensorrt": "build an engine with `ganrt export RUN_DIR --format engine`",
    "onnxruntime": "export one with `ganrt export RUN_DIR --format onnx`",
    "torch": "the torch backend reads ganrt run directories (config.json + weights.safetensors)",
}


def _classify(path: Path) -> tuple[str, Path]:
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


def _engine_metadata(path: Path) -> tuple[dict[str, str] | None, Path | None]:
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.is_file():
            try:
                props = json.loads(candidate.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise MetadataError(f"{candidate}: unreadable engine metadata: {exc}") from exc
            if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
                raise MetadataError(f"{candidate}: engine metadata must be a JSON object of strings")
            return props, candidate
    return None, None


def load(
    path: str | os.PathLike,
    *,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    encoder: str | os.PathLike | None = None,
    net: str | None = None,
    cuda_graphs: bool = True,
    **overrides: Any,
) -> Model:
    """Load a model for inference.

    path: a TensorRT engine (``.engine``/``.plan``, metadata from ``<engine>.json`` beside it), an ONNX model
    (``.onnx``, metadata from its ``metadata_props``) or a ganrt run directory (or its
    ``weights.safetensors``).
    backend: ``"auto"`` (the fastest that can run this artifact here; ``model.info()["selected"]`` says which
    and why), ``"tensorrt"``, ``"onnxruntime"`` or ``"torch"``.
    device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:<i>"``.
    threads: CPU intra-op threads (default: physical cores).
    encoder: a VAE decoder's encoder artifact, enabling ``encode``/``reconstruct``.
    net: a run directory's network other than the family's generator (``"G_B"``: CycleGAN B -> A).
    cuda_graphs: TensorRT replays a CUDA graph per input shape.
    overrides: metadata fields (``family=``, ``task=``, ``image_size=``, ``multiple=``, ``latent_dim=``,
    ``num_classes=``, ``value_range=``, ...) for foreign artifacts that lack ganrt metadata.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    kind, where = _classify(Path(path).expanduser())
    wanted = _BACKEND_OF[kind]
    if backend not in ("auto", wanted):
        raise ValueError(
            f"{where}: backend={backend!r} cannot run a {kind} artifact (it needs {wanted!r}); "
            f"for {backend}, {_HOW_TO_GET[backend]}"
        )
    dev, index = parse_device(device)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if kind == "run":
        if overrides:
            raise TypeError(
                f"{where}: run directories carry their own config; metadata overrides "
                f"{sorted(overrides)} only apply to foreign .onnx/.engine artifacts"
            )
        if encoder is not None:
            raise TypeError(
                f"{where}: a VAE run directory already holds its encoder; encoder= is for artifacts"
            )
        return _load_run(where, dev, index, threads, net)
    if net is not None:
        raise TypeError("net= selects a network of a run directory; this artifact holds one network")
    main = _load_artifact(kind, where, dev, index, threads, cuda_graphs, overrides)
    runner, metadata, roles, selected, metadata_source = main
    enc = None
    if encoder is not None:
        try:
            enc = _load_encoder(metadata, where, encoder, runner.device, index, threads, cuda_graphs)
        except BaseException:
            runner.close()
            raise
    return Model(
        runner,
        metadata,
        roles,
        path=where,
        artifact=kind,
        selected=selected,
        metadata_source=metadata_source,
        encoder=enc,
    )


def _load_run(where: Path, dev: str, index: int, threads: int | None, net: str | None) -> Model:
    from ganrt.runtime.backends.torch import load_run

    if dev == "auto":
        dev = "cuda" if cuda_device_count() > 0 else "cpu"
    runner, encoder, metadata = load_run(where, device=dev, device_index=index, threads=threads, net=net)
    if metadata.task == "translate":
        roles = Roles(image="image", out_image="output")
    else:
        roles = Roles(z="z", label="label" if metadata.num_classes else None, out_image="image")
    enc = None
    if encoder is not None:
        enc = (encoder, metadata, Roles(image="image", eps="eps", mu="mu", logvar="logvar", out_z="z"))
    selected = (
        f"torch on {runner.device}: a run directory is a PyTorch checkpoint (fused ops); export it to ONNX "
        f"or a TensorRT engine for the faster backends"
    )
    return Model(
        runner,
        metadata,
        roles,
        path=where,
        artifact="run",
        selected=selected,
        metadata_source="run config",
        encoder=enc,
    )


def _load_artifact(
    kind: str,
    where: Path,
    dev: str,
    index: int,
    threads: int | None,
    cuda_graphs: bool,
    overrides: dict[str, Any],
) -> tuple[Runner, ArtifactMetadata, Roles, str, str]:
    """Runner, metadata, tensor roles, why this backend/device, and where the metadata came from."""
    from ganrt.runtime.metadata import resolve

    if kind == "engine":
        from ganrt.runtime.backends.tensorrt import TensorRTRunner

        if dev == "cpu":
            raise ValueError(
                f"{where}: TensorRT engines run on CUDA devices only; load the .onnx with "
                f"device='cpu' instead"
            )
        if threads is not None:
            raise ValueError("threads= sets CPU threads; a TensorRT engine runs on the GPU")
        runner = TensorRTRunner(where, device_index=index, cuda_graphs=cuda_graphs)
        props, source = _engine_metadata(where)
        selected = f"tensorrt on {runner.device}: a serialized engine runs only on TensorRT"
    else:
        from ganrt.runtime.backends.onnxruntime import OnnxRuntimeRunner, cuda_provider_available

        if dev == "auto":
            use_cuda = cuda_provider_available()
            dev = "cuda" if use_cuda else "cpu"
            why = (
                "CUDA execution provider with I/O binding (GPU present)"
                if use_cuda
                else "CPU execution provider (no CUDA device with onnxruntime-gpu)"
            )
        else:
            why = f"{dev} requested"
        runner = OnnxRuntimeRunner(where, device=dev, device_index=index, threads=threads)
        props, source = runner.metadata_props, where
        selected = f"onnxruntime on {runner.device}: {why}"
    try:
        metadata, roles = resolve(props, runner.inputs, runner.outputs, overrides, source=str(where))
    except BaseException:
        runner.close()
        raise
    if any(k.startswith("ganrt.") for k in (props or {})):
        metadata_source = f"ganrt metadata ({source})" + (
            f" + overrides {sorted(overrides)}" if overrides else ""
        )
    else:
        metadata_source = "inferred from I/O" + (f" + overrides {sorted(overrides)}" if overrides else "")
    # The graph's I/O dtypes cannot show fp16 convolutions behind fp32 I/O; the metadata can.
    runner.precision = metadata.precision
    return runner, metadata, roles, selected, metadata_source


def _load_encoder(
    md: ArtifactMetadata,
    where: Path,
    encoder: str | os.PathLike,
    device: str,
    index: int,
    threads: int | None,
    cuda_graphs: bool,
) -> tuple[Runner, ArtifactMetadata, Roles]:
    if md.family != "vae" or md.task != "sample":
        raise TypeError(
            f"encoder= pairs a VAE decoder with its encoder; {where} is a {md.family} {md.task} model"
        )
    kind, enc_path = _classify(Path(encoder).expanduser())
    if kind == "run":
        raise TypeError(f"encoder= takes an exported encoder artifact, got the run directory {enc_path}")
    runner, emd, roles, _, _ = _load_artifact(
        kind, enc_path, device.split(":")[0], index, threads, cuda_graphs, {}
    )
    if emd.task != "encode" or emd.latent_dim != md.latent_dim:
        runner.close()
        raise MetadataError(
            f"{enc_path}: not this decoder's encoder: task {emd.task!r}, latent_dim "
            f"{emd.latent_dim} (decoder {where}: latent_dim {md.latent_dim})"
        )
    return runner, emd, roles
