"""TensorRT engine build from an exported ONNX graph, and a minimal engine runner for the parity gate.

Written against the TensorRT 10.x / 11.x Python API; ``tensorrt`` is imported only when an engine is built.
Networks are always created strongly typed (the ``STRONGLY_TYPED`` flag: opt-in on 10.x, implied on 11.x,
where the weak-typing builder flags are gone), so precision comes from the graph on both: fp16 convolutions
and fp32 instance-norm statistics exactly where ganrt's fp16 pass put them.

The runner talks to the GPU through the CUDA driver API (``libcuda``, present wherever an NVIDIA driver is)
via ctypes, so the parity check needs nothing beyond TensorRT itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ganrt.export.metadata import ArtifactMetadata
from ganrt.export.result import ExportError
from ganrt.export.trace import GraphPlan

INSTALL_HINT = (
    "install it on a machine with an NVIDIA GPU and driver: `pip install tensorrt` "
    "(see https://docs.nvidia.com/deeplearning/tensorrt/latest/installing-tensorrt/installing.html)"
)


class TensorRTUnavailableError(ExportError):
    """TensorRT or a usable CUDA GPU is missing; the message says which and how to get it."""


class _CudaDriver:
    """The few CUDA driver calls the engine runner needs, on device 0's primary context (the one the CUDA
    runtime, and therefore TensorRT, uses)."""

    def __init__(self) -> None:
        name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            found = ctypes.util.find_library("cuda")
            if found is None:
                raise TensorRTUnavailableError(
                    f"no NVIDIA driver: {name} cannot be loaded; "
                    "a TensorRT engine needs a CUDA GPU with its driver"
                ) from None
            lib = ctypes.CDLL(found)
        self.lib = lib
        u64, vp, sz = ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t
        lib.cuMemcpyHtoD_v2.argtypes = [u64, vp, sz]
        lib.cuMemcpyDtoH_v2.argtypes = [vp, u64, sz]
        lib.cuMemFree_v2.argtypes = [u64]
        lib.cuMemAlloc_v2.argtypes = [ctypes.POINTER(u64), sz]
        lib.cuStreamSynchronize.argtypes = [vp]
        lib.cuStreamDestroy_v2.argtypes = [vp]
        self._check(lib.cuInit(0), "cuInit")
        count = ctypes.c_int()
        self._check(lib.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
        if count.value == 0:
            raise TensorRTUnavailableError("no CUDA GPU visible to the NVIDIA driver (cuDeviceGetCount = 0)")
        self.device = ctypes.c_int()
        self._check(lib.cuDeviceGet(ctypes.byref(self.device), 0), "cuDeviceGet")
        self.context = ctypes.c_void_p()
        self._check(
            lib.cuDevicePrimaryCtxRetain(ctypes.byref(self.context), self.device), "cuDevicePrimaryCtxRetain"
        )
        self._check(lib.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")

    def _check(self, status: int, call: str) -> None:
        if status == 0:
            return
        text = ctypes.c_char_p()
        self.lib.cuGetErrorString(status, ctypes.byref(text))
        message = text.value.decode() if text.value else f"error {status}"
        if call in ("cuInit", "cuDeviceGetCount"):
            raise TensorRTUnavailableError(f"no usable CUDA GPU: {call} failed with {message}")
        raise ExportError(f"CUDA driver call {call} failed: {message}")

    def alloc(self, nbytes: int) -> int:
        ptr = ctypes.c_uint64()
        self._check(self.lib.cuMemAlloc_v2(ctypes.byref(ptr), max(nbytes, 1)), "cuMemAlloc")
        return ptr.value

    def free(self, ptr: int) -> None:
        self._check(self.lib.cuMemFree_v2(ptr), "cuMemFree")

    def upload(self, ptr: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        self._check(self.lib.cuMemcpyHtoD_v2(ptr, array.ctypes.data, array.nbytes), "cuMemcpyHtoD")

    def download(self, array: np.ndarray, ptr: int) -> None:
        self._check(self.lib.cuMemcpyDtoH_v2(array.ctypes.data, ptr, array.nbytes), "cuMemcpyDtoH")

    def stream(self) -> int:
        handle = ctypes.c_void_p()
        self._check(self.lib.cuStreamCreate(ctypes.byref(handle), 0), "cuStreamCreate")
        return handle.value or 0

    def synchronize(self, stream: int) -> None:
        self._check(self.lib.cuStreamSynchronize(stream), "cuStreamSynchronize")

    def destroy_stream(self, stream: int) -> None:
        self._check(self.lib.cuStreamDestroy_v2(stream), "cuStreamDestroy")

    def close(self) -> None:
        self.lib.cuDevicePrimaryCtxRelease_v2(self.device)


def import_tensorrt() -> ModuleType:
    """``tensorrt`` after checking that a CUDA GPU is usable; :class:`TensorRTUnavailableError` otherwise,
    saying whether TensorRT, the driver or the GPU is missing."""
    try:
        import tensorrt as trt
    except ImportError:
        raise TensorRTUnavailableError(f"TensorRT is not installed; {INSTALL_HINT}") from None
    _CudaDriver().close()
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise TensorRTUnavailableError(
            f"TensorRT {trt.__version__} is too old: ganrt builds with TensorRT 10 or 11"
        )
    return trt


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
    trt = import_tensorrt()
    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
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
    if serialized is None:
        raise ExportError(
            f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT messages above); "
            f"profile {shapes}, workspace {workspace_mib} MiB"
        )
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(cache_path, bytes(config.get_timing_cache().serialize()))
    return EngineBuild(bytes(serialized), trt.__version__, shapes, time.perf_counter() - start)


def engine_json(metadata: ArtifactMetadata, build: EngineBuild) -> str:
    """The ``<name>.engine.json`` sidecar: ganrt's metadata props plus the TensorRT version and profile."""
    props: dict[str, Any] = metadata.to_props()
    props["ganrt.tensorrt_version"] = build.tensorrt_version
    props["ganrt.profile"] = {name: [list(s) for s in shapes] for name, shapes in build.profile.items()}
    return json.dumps(props, indent=2, sort_keys=True) + "\n"


def write_engine(path: Path, metadata: ArtifactMetadata, build: EngineBuild) -> list[Path]:
    """Write the plain serialized plan (trtexec loads it) and its ``.engine.json`` beside it, atomically."""
    sidecar = path.with_name(path.name + ".json")
    _atomic_write(path, build.plan)
    _atomic_write(sidecar, engine_json(metadata, build).encode())
    return [path, sidecar]


def run_engine(plan_bytes: bytes, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a serialized engine once on host arrays; returns its outputs as host arrays keyed by name."""
    trt = import_tensorrt()
    cuda = _CudaDriver()
    buffers: list[int] = []
    stream = 0
    try:
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(plan_bytes)
        if engine is None:
            raise ExportError("TensorRT could not deserialize the engine it just built")
        context = engine.create_execution_context()
        outputs: dict[str, np.ndarray] = {}
        output_ptrs: dict[str, int] = {}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        for name in names:
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                array = np.ascontiguousarray(feeds[name], dtype=trt.nptype(engine.get_tensor_dtype(name)))
                context.set_input_shape(name, array.shape)
                ptr = cuda.alloc(array.nbytes)
                buffers.append(ptr)
                cuda.upload(ptr, array)
                context.set_tensor_address(name, ptr)
        for name in names:
            if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                shape = tuple(context.get_tensor_shape(name))
                outputs[name] = np.empty(shape, dtype=trt.nptype(engine.get_tensor_dtype(name)))
                ptr = cuda.alloc(outputs[name].nbytes)
                buffers.append(ptr)
                output_ptrs[name] = ptr
                context.set_tensor_address(name, ptr)
        # A non-default stream: TensorRT synchronizes extra work on the legacy default stream.
        stream = cuda.stream()
        if not context.execute_async_v3(stream):
            raise ExportError("TensorRT execute_async_v3 failed")
        cuda.synchronize(stream)
        for name, array in outputs.items():
            cuda.download(array, output_ptrs[name])
        return outputs
    finally:
        if stream:
            cuda.destroy_stream(stream)
        for ptr in buffers:
            cuda.free(ptr)
        cuda.close()
