"""Triton Inference Server model repositories: ``REPO/<name>/config.pbtxt`` + ``REPO/<name>/1/model.*``.

The config is built as a ``ModelConfig`` message of Triton's own schema
(``tritonclient.grpc.model_config_pb2``) and written in protobuf text format, so it is schema-valid by
construction. :func:`check_config` adds the checks the schema cannot make: the folder layout and names,
the platform matching the model file, dims and datatypes matching the model's inputs/outputs, and a
consistent batching setup (preferred <= max batch, ...).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ganrt.artifact import ArtifactMetadata
from ganrt.export.result import ExportError

if TYPE_CHECKING:
    import onnx
    from tritonclient.grpc.model_config_pb2 import ModelConfig

    from ganrt.export.trace import GraphPlan, TensorPlan

PLATFORMS: dict[str, str] = {"onnx": "onnxruntime_onnx", "plan": "tensorrt_plan"}
FILENAMES: dict[str, str] = {"onnx": "model.onnx", "plan": "model.plan"}
VERSION = "1"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# numpy dtype name -> Triton datatype.
_TRITON_DTYPES: dict[str, str] = {
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16",
    "int64": "TYPE_INT64",
    "int32": "TYPE_INT32",
    "int8": "TYPE_INT8",
    "uint8": "TYPE_UINT8",
    "bool": "TYPE_BOOL",
}


class TritonConfigError(ExportError):
    """A Triton model config fails the semantic checks; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid Triton model config: " + "; ".join(problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class TritonOptions:
    """How Triton serves the model. ``kind`` is ``gpu`` or ``cpu``; ``model`` is ``onnx`` or ``plan``."""

    name: str
    max_batch: int = 8
    preferred_batch: tuple[int, ...] = (4, 8)
    max_queue_delay_us: int = 100
    instances: int = 1
    kind: str = "gpu"
    model: str = "onnx"


# name -> (Triton datatype, dims including the batch axis; -1 for a dynamic axis)
Signature = dict[str, tuple[str, tuple[int, ...]]]


def require_schema() -> None:
    """Raise :class:`~ganrt.export.result.ExportError` naming the extra to install when Triton's config schema
    (tritonclient, the optional ``ganrt[triton]`` extra) is missing."""
    _load_model_config_pb2()


def _load_model_config_pb2() -> ModuleType:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ExportError(
            "Triton repositories need tritonclient's schema: pip install 'ganrt[triton]' "
            "(tritonclient[grpc] and protobuf>=6.33.5)"
        ) from None
    return model_config_pb2


def onnx_signature(model_path: str | Path) -> tuple[Signature, Signature]:
    """(inputs, outputs) of the ONNX model at ``model_path`` as Triton datatypes and dims."""
    import onnx
    from onnx import helper

    model = onnx.load(str(model_path), load_external_data=False)

    def sig(values: Iterable[onnx.ValueInfoProto]) -> Signature:
        out: Signature = {}
        for vi in values:
            tt = vi.type.tensor_type
            dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type).name
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
            out[vi.name] = (_TRITON_DTYPES.get(dtype, f"unsupported {dtype}"), dims)
        return out

    return sig(model.graph.input), sig(model.graph.output)


def plan_signature(plan: GraphPlan) -> tuple[Signature, Signature]:
    """(inputs, outputs) of the graph described by ``plan`` (what a TensorRT engine built from it exposes)."""

    def sig(tensors: Iterable[TensorPlan]) -> Signature:
        return {
            t.name: (_TRITON_DTYPES[t.dtype], tuple(d if isinstance(d, int) else -1 for d in t.shape))
            for t in tensors
        }

    return sig(plan.inputs), sig(plan.outputs)


def config_dict(
    name: str,
    *,
    platform: str,
    inputs: Iterable[tuple[str, str, Sequence[int]]],
    outputs: Iterable[tuple[str, str, Sequence[int]]],
    max_batch: int,
    instances: int,
    kind: str,
    max_queue_delay_us: int = 0,
    preferred_batch: Sequence[int] = (),
    max_queue_size: int | None = None,
    timeout_us: int | None = None,
    parameters: Mapping[str, str] | None = None,
    default_model_filename: str | None = None,
) -> dict[str, Any]:
    """A Triton model configuration in its JSON form (what ``GET /v2/models/{name}/config`` answers and what
    :func:`build_config` turns into ``config.pbtxt``).

    ``inputs``/``outputs``: (name, numpy dtype name, shape with the batch axis first and -1 for dynamic axes).
    With ``max_batch >= 1`` the model batches along axis 0: dims exclude it, per-sample scalars (``label``) are
    sent as ``[1]`` and reshaped to ``[]``, and dynamic batching is on; ``max_batch = 0`` lists full shapes.
    ``kind``: ``gpu`` or ``cpu``.
    """
    if kind not in ("gpu", "cpu"):
        raise ExportError(f"Triton instance kind must be 'gpu' or 'cpu', got {kind!r}")

    def tensor(entry: tuple[str, str, Sequence[int]]) -> dict[str, Any]:
        tensor_name, dtype, shape = entry
        if dtype not in _TRITON_DTYPES:
            raise ExportError(f"tensor {tensor_name!r} has dtype {dtype}, which Triton configs do not carry")
        dims = [int(d) if int(d) > 0 else -1 for d in (shape[1:] if max_batch else shape)]
        out: dict[str, Any] = {"name": tensor_name, "data_type": _TRITON_DTYPES[dtype], "dims": dims or [1]}
        if not dims:
            out["reshape"] = {"shape": []}
        return out

    config: dict[str, Any] = {
        "name": name,
        "platform": platform,
        "max_batch_size": max_batch,
        "input": [tensor(t) for t in inputs],
        "output": [tensor(t) for t in outputs],
        "instance_group": [{"count": instances, "kind": f"KIND_{kind.upper()}"}],
    }
    if default_model_filename:
        config["default_model_filename"] = default_model_filename
    if max_batch:
        batching: dict[str, Any] = {"max_queue_delay_microseconds": max_queue_delay_us}
        if preferred_batch:
            batching["preferred_batch_size"] = list(preferred_batch)
        if max_queue_size is not None or timeout_us is not None:
            policy = {"max_queue_size": max_queue_size, "default_timeout_microseconds": timeout_us}
            batching["default_queue_policy"] = {k: v for k, v in policy.items() if v is not None}
        config["dynamic_batching"] = batching
    if parameters:
        config["parameters"] = {k: {"string_value": v} for k, v in parameters.items()}
    return config


def _plan_tensors(tensors: Iterable[TensorPlan]) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(t.name, t.dtype, tuple(d if isinstance(d, int) else -1 for d in t.shape)) for t in tensors]


def build_config(plan: GraphPlan, metadata: ArtifactMetadata, options: TritonOptions) -> ModelConfig:
    """The ``ModelConfig`` serving ``plan``'s graph (see :func:`config_dict`), with ganrt's metadata as string
    parameters, parsed into Triton's own schema."""
    from google.protobuf import json_format

    pb = _load_model_config_pb2()
    if options.model not in PLATFORMS:
        raise ExportError(f"Triton model must be one of {tuple(PLATFORMS)}, got {options.model!r}")
    document = config_dict(
        options.name,
        platform=PLATFORMS[options.model],
        inputs=_plan_tensors(plan.inputs),
        outputs=_plan_tensors(plan.outputs),
        max_batch=options.max_batch,
        instances=options.instances,
        kind=options.kind,
        max_queue_delay_us=options.max_queue_delay_us,
        preferred_batch=options.preferred_batch,
        parameters=metadata.to_props(),
        default_model_filename=FILENAMES[options.model],
    )
    return json_format.ParseDict(document, pb.ModelConfig())


def config_text(config: ModelConfig) -> str:
    """``config.pbtxt`` contents (protobuf text format)."""
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def parse_config(text: str) -> ModelConfig:
    """Parse ``config.pbtxt`` against Triton's schema; :class:`TritonConfigError` on schema errors."""
    from google.protobuf import text_format

    pb = _load_model_config_pb2()
    try:
        return text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as exc:
        raise TritonConfigError([f"not a valid ModelConfig: {exc}"]) from None


def check_config(
    config: ModelConfig,
    model_dir: Path,
    inputs: Signature,
    outputs: Signature,
    *,
    profile_max_batch: int | None = None,
) -> list[str]:
    """Semantic problems of ``config`` for the model folder ``model_dir`` whose model has the given I/O
    signatures (dims including the batch axis). Empty when the config is consistent."""
    pb = _load_model_config_pb2()
    problems: list[str] = []
    if not _NAME.fullmatch(config.name):
        problems.append(f"name {config.name!r} must match {_NAME.pattern}")
    if config.name != model_dir.name:
        problems.append(f"name {config.name!r} must equal its folder name {model_dir.name!r}")
    kind = next((k for k, p in PLATFORMS.items() if p == config.platform), None)
    if kind is None:
        problems.append(f"platform {config.platform!r} must be one of {sorted(PLATFORMS.values())}")
    else:
        filename = config.default_model_filename or FILENAMES[kind]
        if not filename.endswith(Path(FILENAMES[kind]).suffix):
            problems.append(f"default_model_filename {filename!r} does not fit platform {config.platform!r}")
        if not (model_dir / VERSION / filename).is_file():
            problems.append(f"model file {model_dir / VERSION / filename} is missing")
        if kind == "plan" and any(g.kind == pb.ModelInstanceGroup.KIND_CPU for g in config.instance_group):
            problems.append("a TensorRT plan cannot run on a KIND_CPU instance group")

    max_batch = config.max_batch_size
    if max_batch < 1:
        problems.append(f"max_batch_size must be >= 1 (the model batches along axis 0), got {max_batch}")
    if profile_max_batch is not None and max_batch > profile_max_batch:
        problems.append(
            f"max_batch_size {max_batch} exceeds the engine profile's max batch {profile_max_batch}"
        )
    if config.HasField("dynamic_batching"):
        preferred = list(config.dynamic_batching.preferred_batch_size)
        too_big = [p for p in preferred if p > max_batch or p < 1]
        if too_big:
            problems.append(f"preferred_batch_size {too_big} must lie in [1, max_batch_size={max_batch}]")
        if preferred != sorted(set(preferred)):
            problems.append(f"preferred_batch_size {preferred} must be strictly increasing")
    for group in config.instance_group:
        if group.count < 1:
            problems.append(f"instance_group count must be >= 1, got {group.count}")

    for what, entries, signature in (("input", config.input, inputs), ("output", config.output, outputs)):
        names = [e.name for e in entries]
        if sorted(names) != sorted(signature):
            problems.append(f"{what} names {sorted(names)} do not match the model's {sorted(signature)}")
        for entry in entries:
            if entry.name not in signature:
                continue
            dtype, model_dims = signature[entry.name]
            got = pb.DataType.Name(entry.data_type)
            if got != dtype:
                problems.append(f"{what} {entry.name!r}: data_type {got} but the model's is {dtype}")
            if not model_dims or model_dims[0] != -1:
                problems.append(
                    f"{what} {entry.name!r}: the model's batch axis is not dynamic ({model_dims})"
                )
                continue
            # The model sees `reshape.shape` when given, otherwise `dims`.
            seen = tuple(entry.reshape.shape) if entry.HasField("reshape") else tuple(entry.dims)
            if seen != model_dims[1:]:
                problems.append(
                    f"{what} {entry.name!r}: dims {list(entry.dims)}"
                    + (f" (reshape {list(entry.reshape.shape)})" if entry.HasField("reshape") else "")
                    + f" do not match the model's per-sample shape {list(model_dims[1:])} (-1 = dynamic)"
                )
    return problems


def check_target(repo: Path, name: str, *, force: bool = False) -> None:
    """Raise :class:`~ganrt.export.result.ExportError` when writing model ``name`` into ``repo`` would
    replace an existing version without ``force``, or when a path in the way is a file (checked before the
    export's slow stages)."""
    if repo.exists() and not repo.is_dir():
        raise ExportError(f"the Triton repository {repo} is a file; give a folder")
    model_dir = repo / name
    if model_dir.exists() and not model_dir.is_dir():
        raise ExportError(f"{model_dir} is a file, where the Triton model folder {name!r} goes")
    version_dir = model_dir / VERSION
    if version_dir.exists() and not version_dir.is_dir():
        raise ExportError(f"{version_dir} is a file, where version {VERSION} of model {name!r} goes")
    if version_dir.is_dir() and any(version_dir.iterdir()) and not force:
        raise ExportError(
            f"version {VERSION} of model {name!r} already exists in {repo} ({version_dir}); pass --force "
            f"(force=True) to replace its model file and config.pbtxt (nothing else there is touched)"
        )


def write_repository(
    repo: Path,
    config: ModelConfig,
    model_file: Path,
    *,
    inputs: Signature,
    outputs: Signature,
    profile_max_batch: int | None = None,
    force: bool = False,
) -> list[Path]:
    """Write ``repo/<name>/config.pbtxt`` and ``repo/<name>/1/<model file>``, and nothing else.

    Other versions and any other files in ``repo/<name>/`` are left alone. An existing version ``1`` is
    replaced only with ``force`` (its model file and ``config.pbtxt``; other files in it stay). Both files are
    assembled and checked (schema round trip + :func:`check_config`) in a staging folder first and then moved
    into place one atomic rename each, so a failure leaves the repository as it was. Raises
    :class:`TritonConfigError` listing the problems, :class:`~ganrt.export.result.ExportError` when the
    version exists and ``force`` is not given.
    """
    if not _NAME.fullmatch(config.name):
        raise TritonConfigError([f"name {config.name!r} must match {_NAME.pattern}"])
    check_target(repo, config.name, force=force)
    final = repo / config.name
    repo.mkdir(parents=True, exist_ok=True)
    filename = config.default_model_filename or model_file.name
    staging = Path(tempfile.mkdtemp(prefix=f".{config.name}.", suffix=".tmp", dir=repo))
    try:
        model_dir = staging / config.name
        (model_dir / VERSION).mkdir(parents=True)
        text = config_text(config)
        (model_dir / "config.pbtxt").write_text(text, encoding="utf-8")
        shutil.copyfile(model_file, model_dir / VERSION / filename)
        problems = check_config(
            parse_config(text), model_dir, inputs, outputs, profile_max_batch=profile_max_batch
        )
        if problems:
            raise TritonConfigError(problems)
        for path in (model_dir / VERSION / filename, model_dir / "config.pbtxt"):
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        final.mkdir(exist_ok=True)
        version_dir = final / VERSION
        if version_dir.is_dir():
            os.replace(model_dir / VERSION / filename, version_dir / filename)
        else:
            os.replace(model_dir / VERSION, version_dir)
        os.replace(model_dir / "config.pbtxt", final / "config.pbtxt")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [final / "config.pbtxt", final / VERSION / filename]


def parameters(config: ModelConfig) -> Mapping[str, str]:
    """The string parameters of ``config`` (ganrt writes its metadata there)."""
    return {k: v.string_value for k, v in config.parameters.items()}
