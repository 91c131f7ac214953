"""OpenVINO backend: the exported ONNX compiled by OpenVINO's CPU plugin, fp32 or bf16, optionally cached.

The only place in ganrt that creates an ``openvino.Core`` or compiles a model with it. The runner reads the
``.onnx`` file directly (no separate IR step) and compiles it from its path with a LATENCY hint and an
explicit thread count, so that with a ``cache_dir`` a second load imports the compiled blob without reading
the ONNX graph at all. Dynamic batch and H/W stay dynamic as the ONNX declares them.

OpenVINO's blob cache checks a blob's header but not its contents: a blob damaged past the header (a torn
write, a full disk, a stray writer) imports silently and computes wrong outputs (checked with 2026.4). So the
runner keeps a manifest of the size and CRC-32 of every blob it saw written (``ganrt-blobs.json``), removes
any blob that does not match before compiling, and OpenVINO then compiles afresh and writes a new one.

Precision: ``fp32`` (the default here, where OpenVINO itself would pick bf16 on AMX CPUs) or ``bf16``, which
is offered only on CPUs that compute bf16 natively (:func:`native_bf16`: AMX-BF16 or AVX512_BF16); elsewhere
OpenVINO would emulate it, slower than fp32, and the runner refuses with the reason.
"""

from __future__ import annotations

import functools
import json
import mmap
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganrt.backends.base import Runner, TensorSpec
from ganrt.backends.device import cpu_flags, cpu_model, physical_cores
from ganrt.errors import ArtifactError, BackendUnavailableError

if TYPE_CHECKING:
    import torch

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
# ganrt precision -> OpenVINO INFERENCE_PRECISION_HINT
_HINTS = {"fp32": "f32", "bf16": "bf16"}
# OpenVINO element type names -> numpy dtype names, for the dtypes graph I/O uses.
_OV_TYPES = {
    "f32": "float32",
    "f16": "float16",
    "f64": "float64",
    "i64": "int64",
    "i32": "int32",
    "u8": "uint8",
    "boolean": "bool",
}
# /proc/cpuinfo flag -> name, for the instruction sets that compute bf16 natively.
_BF16_FLAGS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512_BF16"))
_MANIFEST = "ganrt-blobs.json"
_MANIFEST_FORMAT = "ganrt-openvino-blobs/1"


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:  # a declared dependency, but a broken environment should still say what to do
        raise BackendUnavailableError("openvino is not installed: pip install 'openvino>=2026.4'") from exc
    return openvino


@functools.cache
def core() -> Any:
    """The process's one ``openvino.Core`` (thread-safe; compiled models share its CPU plugin)."""
    return import_openvino().Core()


@functools.cache
def _onnx_frontend() -> Any:
    """OpenVINO's ONNX frontend: asked first whether a file is ONNX at all, so that ``compile_model`` never
    offers a non-ONNX file to its other frontends (the TensorFlow one prints parse errors on stderr)."""
    import_openvino()
    from openvino.frontend import FrontEndManager

    return FrontEndManager().load_by_framework("onnx")


def native_bf16() -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and the instruction set that does it or why not.

    Needs AMX-BF16 or AVX512_BF16 in the CPU's flags and OpenVINO's CPU plugin offering ``BF16``; without
    them OpenVINO emulates bf16, which is slower than fp32 and gains nothing.
    """
    offered = "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    flags = cpu_flags()
    if flags is None:  # the OS does not list CPU flags: OpenVINO's own probe of the CPU decides
        return (
            (True, "OpenVINO reports BF16")
            if offered
            else (False, f"OpenVINO reports no BF16 on {cpu_model()}")
        )
    have = [name for flag, name in _BF16_FLAGS if flag in flags]
    if not have:
        return (
            False,
            f"this CPU ({cpu_model()}) has neither AMX-BF16 nor AVX512_BF16, so bf16 would be emulated",
        )
    if not offered:
        return (
            False,
            f"this CPU has {' and '.join(have)}, but OpenVINO's CPU plugin does not offer BF16 on it",
        )
    return True, " and ".join(have)


def _spec(port: Any) -> TensorSpec:
    dtype = _OV_TYPES.get(port.get_element_type().get_type_name())
    if dtype is None:
        raise ArtifactError(
            f"graph tensor {port.get_any_name()!r} has unsupported type {port.get_element_type()}"
        )
    shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
    return TensorSpec(port.get_any_name(), dtype, shape)


class OpenVinoRunner(Runner):
    """One compiled OpenVINO model and its infer requests.

    ``run`` hands OpenVINO the caller's tensors as shared-memory ``ov.Tensor`` views, so the model reads its
    input from and writes its output into the runtime's preallocated buffers: no copies. The runner keeps the
    bound tensors alive until it binds others, since the request keeps pointing at their memory. ``infer``
    uses a second request that owns its memory, so host calls never write into (or after) a caller's buffers.
    """

    backend = "openvino"
    artifacts = ("onnx",)
    chooses_precision = True

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        device: str = "cpu",
        device_index: int = 0,
        threads: int | None = None,
        precision: str = "fp32",
        cache_dir: Path | None = None,
        **options: Any,
    ) -> OpenVinoRunner:
        """Compile ``path`` for the CPU at ``precision`` (``fp32``/``bf16``); ``cache_dir``: a folder for
        OpenVINO's compiled-model cache, used through a subfolder per precision and thread count (``None``: no
        cache). Raises ``OSError`` when the cache folder cannot be maintained."""
        if options:
            raise TypeError(f"openvino takes no options {sorted(options)}")
        return cls(path, device=device, threads=threads, precision=precision, cache_dir=cache_dir)

    def __init__(
        self,
        path: Path,
        *,
        device: str = "cpu",
        threads: int | None = None,
        precision: str = "fp32",
        cache_dir: Path | None = None,
    ):
        if device != "cpu":
            raise BackendUnavailableError(
                f"ganrt runs OpenVINO on the CPU only; device {device!r} was requested (use onnxruntime or "
                f"tensorrt on CUDA)"
            )
        if precision not in PRECISIONS:
            raise ValueError(f"openvino precision must be one of {PRECISIONS}, got {precision!r}")
        if precision == "bf16":
            ok, why = native_bf16()
            if not ok:
                raise BackendUnavailableError(
                    f"precision='bf16' needs a CPU with native bf16 (AMX-BF16 or AVX512_BF16): {why}; "
                    f"use precision='fp32'"
                )
        self.threads = threads if threads is not None else physical_cores()
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        config: dict[str, Any] = {
            # One request at a time on every core given, the image's own parallelism inside each op.
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
        }
        self.cache_dir = cache_dir / f"{precision}-{self.threads}t" if cache_dir is not None else None
        self.cache_removed: list[str] = []
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self.cache_removed = _drop_damaged_blobs(self.cache_dir)
            config["CACHE_DIR"] = str(self.cache_dir)
        if not _onnx_frontend().supported(str(path)):  # reads the first bytes only
            raise ArtifactError(
                f"{path}: OpenVINO's ONNX frontend does not recognise this file as an ONNX model "
                f"(corrupt, or not ONNX?)"
            )
        try:
            # From the path, not a read model: with a cache hit OpenVINO then never parses the ONNX graph.
            self.compiled = core().compile_model(str(path), "CPU", config)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise ArtifactError(
                f"{path}: OpenVINO cannot read or compile this model (truncated, corrupt or using operators "
                f"its ONNX frontend lacks?): {_reason(first)}"
            ) from exc
        self.path = path
        self.device = "cpu"
        self.precision = precision
        self.loaded_from_cache = bool(
            self.cache_dir is not None and self.compiled.get_property("LOADED_FROM_CACHE")
        )
        if self.cache_dir is not None and not self.loaded_from_cache:
            _record_blobs(self.cache_dir)
        self.inputs = [_spec(p) for p in self.compiled.inputs]
        self.outputs = [_spec(p) for p in self.compiled.outputs]
        batch_dims = {spec.shape[0] for spec in self.inputs if spec.shape}
        self.max_batch = None if -1 in batch_dims or not batch_dims else min(batch_dims)
        self._request = self.compiled.create_infer_request()
        self._host_request: Any = None  # created by the first infer()
        self._index = {spec.name: i for i, spec in enumerate(self.inputs)}
        self._out_index = {spec.name: i for i, spec in enumerate(self.outputs)}
        # (is_output, index) -> the caller's tensor currently set on the request (kept alive while set)
        self._bound: dict[tuple[bool, int], torch.Tensor] = {}

    def metadata_props(self) -> dict[str, str]:
        """The ONNX model's ``metadata_props``, read from the file (a cached compile never parses it)."""
        from ganrt.artifact import onnx_metadata_props

        return onnx_metadata_props(self.path)

    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        request = self._request
        for name, tensor in feeds.items():
            self._bind(request.set_input_tensor, False, self._index[name], tensor)
        for name, tensor in outputs.items():
            self._bind(request.set_output_tensor, True, self._out_index[name], tensor)
        request.infer()

    def _bind(self, setter: Any, is_output: bool, index: int, tensor: torch.Tensor) -> None:
        key = (is_output, index)
        bound = self._bound.get(key)
        if bound is None or bound is not tensor:
            # A view of the caller's memory; re-set only when the caller hands a different buffer.
            setter(index, import_openvino().Tensor(tensor.numpy(), shared_memory=True))
            self._bound[key] = tensor

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        if self._host_request is None:
            self._host_request = self.compiled.create_infer_request()
        result = self._host_request.infer({self._index[k]: np.ascontiguousarray(v) for k, v in feeds.items()})
        return {spec.name: np.array(result[i]) for i, spec in enumerate(self.outputs)}

    def info(self) -> dict[str, Any]:
        return {
            "openvino_version": import_openvino().__version__,
            "inference_precision": self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "performance_hint": str(self.compiled.get_property("PERFORMANCE_HINT")),
            "cache_dir": str(self.cache_dir) if self.cache_dir is not None else None,
            "loaded_from_cache": self.loaded_from_cache,
            "cache_removed": list(self.cache_removed),
        }

    def close(self) -> None:
        self._request = None
        self._host_request = None
        self._bound.clear()
        self.compiled = None


def _crc32(path: Path) -> int:
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return 0
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return zlib.crc32(view)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        document = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(document, dict) or document.get("format") != _MANIFEST_FORMAT:
        return {}
    blobs = document.get("blobs")
    return blobs if isinstance(blobs, dict) else {}


def _drop_damaged_blobs(folder: Path) -> list[str]:
    """Remove every blob in ``folder`` whose size or CRC-32 differs from the manifest, or that the manifest
    does not know (written by a compile that never finished); returns their names."""
    known = _read_manifest(folder)
    removed = []
    for blob in sorted(folder.glob("*.blob")):
        entry = known.get(blob.name)
        intact = (
            isinstance(entry, dict)
            and entry.get("size") == blob.stat().st_size
            and entry.get("crc32") == _crc32(blob)
        )
        if not intact:
            blob.unlink(missing_ok=True)
            removed.append(blob.name)
    return removed


def _record_blobs(folder: Path) -> None:
    """Write the manifest for the blobs now in ``folder``, after a compile that may have (re)written any of
    them. Atomic: readers see the old manifest or the new one."""
    from ganrt.utils import atomic_write

    blobs = {b.name: {"size": b.stat().st_size, "crc32": _crc32(b)} for b in sorted(folder.glob("*.blob"))}
    atomic_write(
        folder / _MANIFEST, json.dumps({"format": _MANIFEST_FORMAT, "blobs": blobs}, indent=1) + "\n"
    )


def _reason(lines: list[str]) -> str:
    """The informative part of an OpenVINO error, whose first lines name C++ source locations."""
    lines = [line.strip() for line in lines if line.strip()]
    if "Summary:" in lines:  # the frontend's list of operators it could not convert
        return " ".join(lines[lines.index("Summary:") + 1 :])[:400]
    useful = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    return " ".join(useful or lines[-1:] or ["unknown error"])[:400]
