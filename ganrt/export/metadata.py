"""What a ganrt artifact says about itself, so a user never re-specifies pre/post-processing.

Stored as ONNX ``metadata_props`` (string key/values, keys prefixed ``ganrt.``) and, for TensorRT engines,
as ``<name>.engine.json`` beside the plan. The runtime reads it back with :meth:`ArtifactMetadata.from_props`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

PREFIX = "ganrt."
Family = Literal["pix2pix", "cyclegan", "vae", "dcgan"]
Task = Literal["translate", "sample", "encode"]
FAMILIES: tuple[str, ...] = ("pix2pix", "cyclegan", "vae", "dcgan")
TASKS: tuple[str, ...] = ("translate", "sample", "encode")


@dataclasses.dataclass(frozen=True)
class ArtifactMetadata:
    """Everything the runtime needs to drive an exported model.

    Image tensors are NCHW with values in [-1, 1] (``value_range``); ``image_size`` is the native (training)
    resolution and ``multiple`` the divisibility that H and W must satisfy (1 for fixed-size samplers).
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
    def from_props(cls, props: dict[str, str]) -> ArtifactMetadata:
        """Inverse of :meth:`to_props`; raises ``KeyError`` naming the missing keys when it is not ganrt's."""
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        kwargs: dict[str, object] = {}
        missing = []
        for field in dataclasses.fields(cls):
            if field.name not in ours:
                if field.default is dataclasses.MISSING:
                    missing.append(PREFIX + field.name)
                continue
            raw = ours[field.name]
            if field.name == "value_range":
                lo, hi = raw.split(",")
                kwargs[field.name] = (float(lo), float(hi))
            elif field.type == "int":
                kwargs[field.name] = int(raw)
            else:
                kwargs[field.name] = raw
        if missing:
            raise KeyError(f"not ganrt metadata: missing {', '.join(missing)}")
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_props(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArtifactMetadata:
        return cls.from_props(json.loads(text))


# Graph tensor names per task (contract 6). ONNX forbids a graph output that shares its name with a graph
# input, so a translator reads ``image`` and writes ``output``; everything that produces pixels from a latent
# writes ``image``. Class-conditional samplers (``num_classes > 0``) take ``label`` (int64, one per sample).
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
