"""The artifact schema: what a ganrt model file says about itself, its graph I/O names and roles, and the
TensorRT engine sidecar. Written and read only here.

- :class:`ArtifactMetadata` is stored as ONNX ``metadata_props`` (string key/values prefixed ``ganrt.``) and,
  for TensorRT engines, in ``<name>.engine.json`` beside the plan (:func:`write_engine_sidecar` /
  :func:`read_engine_sidecar`). Run directories derive theirs through
  :meth:`ganrt.families.Family.metadata_for`, the same function export uses, so both agree.
- :data:`IO_NAMES` / :func:`io_names` fix the graph tensor names per task; :class:`Roles` says which tensor
  plays which part (foreign artifacts may use other names, see :mod:`ganrt.runtime.metadata`).
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganrt.errors import MetadataError
from ganrt.families import FAMILIES, TASKS

PREFIX = "ganrt."
SIDECAR_FORMAT = "ganrt-engine/1"


@dataclasses.dataclass(frozen=True)
class ArtifactMetadata:
    """Everything the runtime needs to drive an exported model.

    Image tensors are NCHW with values in ``value_range`` ([-1, 1]); ``image_size`` is the native (training)
    resolution and ``multiple`` the divisibility that H and W must satisfy (1 for samplers, which take no
    image; the native size for fixed-size encoders). ``weights_sha256`` is the sha256 of the weights the
    artifact computes with, recorded at export and checked by ``ganrt info --verify``: for ONNX
    :func:`onnx_weights_digest`, for a TensorRT engine the plan file's bytes; empty in artifacts written
    before it existed (they still load).
    """

    family: str
    task: str
    in_channels: int
    out_channels: int
    image_size: int
    multiple: int
    latent_dim: int = 0
    num_classes: int = 0
    precision: str = "fp32"
    config_hash: str = ""
    weights_sha256: str = ""
    ganrt_version: str = ""
    layout: str = "NCHW"
    value_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.layout != "NCHW":
            raise ValueError(f"layout must be 'NCHW', got {self.layout!r}")
        for name in ("in_channels", "out_channels", "image_size", "multiple"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("latent_dim", "num_classes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.task in ("sample", "encode") and self.latent_dim < 1:
            raise ValueError(f"a {self.task} model needs latent_dim >= 1, got {self.latent_dim}")
        lo, hi = self.value_range
        if not lo < hi:
            raise ValueError(f"value_range must be (low, high) with low < high, got {self.value_range}")

    def to_props(self) -> dict[str, str]:
        """String key/values for ONNX ``metadata_props`` (keys prefixed with ``ganrt.``)."""
        props = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "value_range":
                value = f"{value[0]:g},{value[1]:g}"
            props[PREFIX + field.name] = str(value)
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> ArtifactMetadata:
        """Inverse of :meth:`to_props`. Raises ``KeyError`` naming the missing keys when the props are not
        ganrt's, ``ValueError`` for malformed values."""
        ours = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        kwargs: dict[str, object] = {}
        missing = []
        for field in dataclasses.fields(cls):
            if field.name not in ours:
                if field.default is dataclasses.MISSING:
                    missing.append(PREFIX + field.name)
                continue
            raw = ours[field.name]
            if field.name == "value_range":
                parts = str(raw).split(",")
                if len(parts) != 2:
                    raise ValueError(f"{PREFIX}value_range must be 'low,high', got {raw!r}")
                kwargs[field.name] = (float(parts[0]), float(parts[1]))
            elif field.type == "int":
                try:
                    kwargs[field.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{PREFIX}{field.name} must be an integer, got {raw!r}") from None
            else:
                kwargs[field.name] = raw
        if missing:
            raise KeyError(f"not ganrt metadata: missing {', '.join(missing)}")
        return cls(**kwargs)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """The fields as plain JSON values (what ``Model.info()`` and ``/v1/models`` report)."""
        values = dataclasses.asdict(self)
        values["value_range"] = list(self.value_range)
        return values


def onnx_weights_digest(model: Any) -> str:
    """sha256 (hex) of an ONNX model's weights: every initializer and ``Constant`` tensor of the main graph,
    in graph order, as (kind, name, dtype, shape, little-endian values). Metadata, names of nodes and doc strings
    do not enter it, so writing the digest into the model's own ``metadata_props`` does not change it."""
    import hashlib

    import numpy as np
    from onnx import AttributeProto, numpy_helper

    digest = hashlib.sha256()

    def add(kind: str, name: str, tensor: Any) -> None:
        array = np.ascontiguousarray(numpy_helper.to_array(tensor))
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        digest.update(f"{kind}|{name}|{array.dtype.str}|{list(array.shape)}\n".encode())
        digest.update(array.tobytes())

    for tensor in model.graph.initializer:
        add("initializer", tensor.name, tensor)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.type == AttributeProto.TENSOR:
                    add("constant", node.output[0] if node.output else node.name, attr.t)
    return digest.hexdigest()


# Graph tensor names per task. ONNX forbids a graph output that shares its name with a graph input, so a
# translator reads ``image`` and writes ``output``; everything that produces pixels from a latent writes
# ``image``. Class-conditional samplers (``num_classes > 0``) also take ``label`` (int64, one per sample).
IO_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "translate": (("image",), ("output",)),
    "sample": (("z",), ("image",)),
    "encode": (("image", "eps"), ("mu", "logvar", "z")),
}


def io_names(task: str, num_classes: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input names, output names) of an exported graph for ``task``, in graph order."""
    if task not in IO_NAMES:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    inputs, outputs = IO_NAMES[task]
    if task == "sample" and num_classes > 0:
        inputs = (*inputs, "label")
    return inputs, outputs


@dataclasses.dataclass(frozen=True)
class Roles:
    """Which graph tensor plays which part. Unused roles are ``None``.

    translate: ``image`` -> ``out_image``; sample: ``z`` (+ ``label``) -> ``out_image``;
    encode: ``image``, ``eps`` -> ``mu``, ``logvar``, ``out_z``.
    """

    image: str | None = None
    z: str | None = None
    label: str | None = None
    eps: str | None = None
    out_image: str | None = None
    mu: str | None = None
    logvar: str | None = None
    out_z: str | None = None

    @classmethod
    def standard(cls, task: str, num_classes: int = 0) -> Roles:
        """The roles of a graph with ganrt's own names (:data:`IO_NAMES`)."""
        if task == "translate":
            return cls(image="image", out_image="output")
        if task == "sample":
            return cls(z="z", label="label" if num_classes else None, out_image="image")
        if task == "encode":
            return cls(image="image", eps="eps", mu="mu", logvar="logvar", out_z="z")
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


# ---------------------------------------------------------------------------------------- engine sidecar


def sidecar_path(engine: str | Path) -> Path:
    """``<name>.engine.json`` beside ``<name>.engine``."""
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def engine_sidecar(
    metadata: ArtifactMetadata,
    *,
    tensorrt_version: str,
    profile: Mapping[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
) -> str:
    """The sidecar JSON: ``{"format", "metadata": {ganrt.* strings}, "tensorrt_version", "profile": {input:
    [min, opt, max]}}``."""
    document = {
        "format": SIDECAR_FORMAT,
        "metadata": metadata.to_props(),
        "tensorrt_version": tensorrt_version,
        "profile": {name: [list(map(int, s)) for s in shapes] for name, shapes in profile.items()},
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_engine_sidecar(
    engine: str | Path,
    metadata: ArtifactMetadata,
    *,
    tensorrt_version: str,
    profile: Mapping[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
) -> Path:
    """Write :func:`engine_sidecar` beside ``engine`` atomically; returns its path."""
    from ganrt.utils import atomic_write

    return atomic_write(
        sidecar_path(engine), engine_sidecar(metadata, tensorrt_version=tensorrt_version, profile=profile)
    )


@dataclasses.dataclass(frozen=True)
class EngineSidecar:
    """What a sidecar holds: ``props`` (string metadata, as in ONNX), the TensorRT version and the
    optimization profile the engine was built with (empty for hand-written sidecars), and its ``path``."""

    path: Path
    props: dict[str, str]
    tensorrt_version: str = ""
    profile: dict[str, list[list[int]]] = dataclasses.field(default_factory=dict)


def read_engine_sidecar(engine: str | Path) -> EngineSidecar | None:
    """The sidecar of ``engine`` (``<name>.engine.json``, or ``<stem>.json``), ``None`` when there is none.

    Reads ganrt's format (:func:`engine_sidecar`) and, for engines built elsewhere, a flat JSON object of
    string metadata (``{"ganrt.family": "pix2pix", ...}``). Raises :class:`~ganrt.errors.MetadataError`
    naming the file for anything else.
    """
    engine = Path(engine)
    for candidate in (sidecar_path(engine), engine.with_suffix(".json")):
        if candidate.is_file():
            return _parse_sidecar(candidate)
    return None


def _parse_sidecar(path: Path) -> EngineSidecar:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{path}: unreadable engine metadata: {exc}") from None
    if not isinstance(document, dict):
        raise MetadataError(f"{path}: engine metadata must be a JSON object, got {type(document).__name__}")
    if "format" not in document:
        if not all(isinstance(v, str) for v in document.values()):
            raise MetadataError(
                f"{path}: engine metadata must be ganrt's sidecar ({{\"format\": \"{SIDECAR_FORMAT}\", "
                f"\"metadata\": {{...}}}}) or a flat JSON object of strings"
            )
        return EngineSidecar(path, dict(document))
    if document["format"] != SIDECAR_FORMAT:
        raise MetadataError(
            f"{path}: unknown engine metadata format {document['format']!r}; this ganrt reads {SIDECAR_FORMAT!r}"
        )
    props = document.get("metadata")
    if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
        raise MetadataError(f"{path}: 'metadata' must be a JSON object of strings")
    profile = document.get("profile", {})
    if not isinstance(profile, dict) or not all(
        isinstance(v, list) and len(v) == 3 and all(isinstance(s, list) for s in v) for v in profile.values()
    ):
        raise MetadataError(f"{path}: 'profile' must map each input to [min, opt, max] shapes")
    return EngineSidecar(path, dict(props), str(document.get("tensorrt_version", "")), profile)


# ------------------------------------------------------------------------------------- ONNX metadata_props

# ModelProto field 14 is ``repeated StringStringEntryProto metadata_props`` (key = field 1, value = field 2).
_ONNX_METADATA_FIELD = 14


def onnx_metadata_props(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX model at ``path`` without parsing its graph.

    Walks the top-level fields of the ``ModelProto`` and seeks past all but ``metadata_props``, so a model of
    hundreds of MB costs a few reads (``onnx.load`` parses every initializer; backends that compile straight
    from the file, or from their own cache, never need the graph in Python). Raises
    :class:`~ganrt.errors.MetadataError` naming the file when it is not a well-formed protobuf.
    """
    path = Path(path)
    props: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            while f.tell() < size:
                tag = _varint(f)
                field, wire = tag >> 3, tag & 7
                if wire == 0:
                    _varint(f)
                elif wire == 1:
                    f.seek(8, 1)
                elif wire == 5:
                    f.seek(4, 1)
                elif wire == 2:
                    length = _varint(f)
                    if f.tell() + length > size:
                        raise ValueError(f"field {field} runs past the end of the file")
                    if field == _ONNX_METADATA_FIELD:
                        key, value = _string_pair(f.read(length))
                        props[key] = value
                    else:
                        f.seek(length, 1)
                else:
                    raise ValueError(f"unexpected protobuf wire type {wire} (field {field})")
    except (ValueError, EOFError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{path}: not a well-formed ONNX model (truncated or corrupt?): {exc}") from None
    return props


def _varint(f: Any) -> int:
    value, shift = 0, 0
    while True:
        byte = f.read(1)
        if not byte:
            raise EOFError("the file ends inside a field")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _string_pair(data: bytes) -> tuple[str, str]:
    """(key, value) of a serialized ``StringStringEntryProto``."""
    f, out = io.BytesIO(data), {1: "", 2: ""}
    while f.tell() < len(data):
        tag = _varint(f)
        if tag & 7 != 2:
            raise ValueError("malformed metadata entry")
        length = _varint(f)
        out[tag >> 3] = f.read(length).decode("utf-8")
    return out[1], out[2]
