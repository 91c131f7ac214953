"""TensorRT engine build from an exported ONNX graph (TensorRT 10.x / 11.x Python API).

``tensorrt`` is imported only when an engine is built. Networks are always created strongly typed (the
``STRONGLY_TYPED`` flag: opt-in on 10.x, implied on 11.x, where the weak-typing builder flags are gone), so
precision comes from the graph on both: fp16 convolutions and fp32 instance-norm statistics exactly where
ganrt's fp16 pass put them. Running the engine (for the parity gate too) is the backend layer's
:class:`~ganrt.backends.tensorrt.TensorRTRunner`; the sidecar schema is :mod:`ganrt.artifact`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import ModuleType

from ganrt.artifact import ArtifactMetadata, write_engine_sidecar
from ganrt.errors import BackendUnavailableError
from ganrt.export.result import ExportError
from ganrt.export.trace import GraphPlan
from ganrt.utils import atomic_write


class TensorRTUnavailableError(ExportError):
    """TensorRT or a usable CUDA GPU is missing; the message says which and how to get it."""


def import_tensorrt() -> ModuleType:
    """``tensorrt`` after checking that a CUDA GPU is usable; :class:`TensorRTUnavailableError` otherwise,
    saying whether TensorRT or the GPU is missing."""
    from ganrt.backends.device import require_cuda
    from ganrt.backends.tensorrt import import_tensorrt as _import

    try:
        trt = _import()
        require_cuda(0, what="building a TensorRT engine")
    except BackendUnavailableError as exc:
        raise TensorRTUnavailableError(str(exc)) from None
    return trt


def profile_shapes(plan: GraphPlan) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Input name -> (min, opt, max) shapes of the optimization profile, from the plan's ranges."""
    shapes = {}
    for tensor in plan.inputs:
        lo = plan.concrete_shape(tensor, plan.batch[0], plan.height[0], plan.width[0])
        opt = plan.concrete_shape(tensor, plan.batch[1], plan.height[1], plan.width[1])
        hi = plan.concrete_shape(tensor, plan.batch[2], plan.height[2], plan.width[2])
        shapes[tensor.name] = (lo, opt, hi)
    return shapes


@dataclasses.dataclass(frozen=True)
class EngineBuild:
    """A built engine: ``plan`` is the serialized engine (what is written to the ``.engine`` file)."""

    plan: bytes
    tensorrt_version: str
    profile: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
    seconds: float


def build_engine(
    onnx_path: str | Path,
    plan: GraphPlan,
    *,
    precision: str,
    workspace_mib: int,
    timing_cache: str | Path | None,
) -> EngineBuild:
    """Parse ``onnx_path`` and build a serialized engine with one optimization profile covering the plan's
    batch/H/W ranges, a workspace limit and a persistent timing cache (read if present, updated after the
    build). For ``precision="fp32"`` TF32 is switched off, so fp32 layers really compute in fp32 (TensorRT
    enables TF32 by default on Ampere and newer, which would blow the fp32 parity gate). Raises
    :class:`TensorRTUnavailableError` without TensorRT or a GPU, :class:`ExportError` when parsing or building
    fails (with TensorRT's messages)."""
    from ganrt.backends.tensorrt import LOGGER

    trt = import_tensorrt()
    start = time.perf_counter()
    with LOGGER.capture() as errors:
        serialized, cache, shapes = _build(trt, onnx_path, plan, precision, workspace_mib, timing_cache)
    if serialized is None:
        raise ExportError(
            f"TensorRT failed to build an engine from {onnx_path}: {'; '.join(errors) or 'no reason given'}; "
            f"profile {shapes}, workspace {workspace_mib} MiB"
        )
    if timing_cache:
        atomic_write(Path(timing_cache).expanduser(), cache)
    return EngineBuild(serialized, trt.__version__, shapes, time.perf_counter() - start)


def _build(
    trt: ModuleType,
    onnx_path: str | Path,
    plan: GraphPlan,
    precision: str,
    workspace_mib: int,
    timing_cache: str | Path | None,
) -> tuple[bytes | None, bytes, dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]]:
    """(serialized engine or ``None`` on failure, the updated timing cache, the profile shapes); everything
    TensorRT-owned is released when this returns."""
    from ganrt.backends.tensorrt import LOGGER

    builder = trt.Builder(LOGGER.logger())
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, LOGGER.logger())
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(f"TensorRT could not parse {onnx_path}: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)

    cache_path = Path(timing_cache).expanduser() if timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path is not None and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=True)

    shapes = profile_shapes(plan)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)

    serialized = builder.build_serialized_network(network, config)
    cache_out = bytes(config.get_timing_cache().serialize())
    return (None if serialized is None else bytes(serialized)), cache_out, shapes


def write_engine(path: Path, metadata: ArtifactMetadata, build: EngineBuild) -> list[Path]:
    """Write the plain serialized plan (trtexec loads it) and its ``.engine.json`` sidecar beside it,
    atomically."""
    atomic_write(path, build.plan)
    sidecar = write_engine_sidecar(path, metadata, tensorrt_version=build.tensorrt_version, profile=build.profile)
    return [path, sidecar]
