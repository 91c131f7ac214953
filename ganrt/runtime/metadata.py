"""Resolving an artifact's :class:`~ganrt.artifact.ArtifactMetadata` and its graph tensors' roles.

ganrt artifacts carry their metadata. For foreign artifacts (a plain trtexec engine, someone else's ONNX) only
what the I/O names and static shapes determine is inferred; everything else must come from keyword overrides,
and a :class:`~ganrt.errors.MetadataError` lists what is missing instead of guessing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ganrt.artifact import ArtifactMetadata, Roles
from ganrt.backends.base import TensorSpec
from ganrt.errors import MetadataError
from ganrt.families import FAMILIES

_FIELDS = {f.name: f for f in dataclasses.fields(ArtifactMetadata)}


def _static(dim: int) -> int | None:
    return dim if dim > 0 else None


def _by_name(specs: list[TensorSpec], name: str) -> TensorSpec | None:
    return next((s for s in specs if s.name == name), None)


def _is_float(spec: TensorSpec) -> bool:
    return spec.dtype.startswith("float")


def _infer_task(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str | None:
    names = {s.name for s in inputs}
    if names == {"image", "eps"}:
        return "encode"
    floats = [s for s in inputs if _is_float(s)]
    if len(floats) != 1:
        return None
    x = floats[0]
    if x.name == "z" or len(x.shape) == 2 or (len(x.shape) == 4 and x.shape[2:] == (1, 1)):
        return "sample"
    if len(x.shape) == 4 and len(inputs) == 1:
        return "translate"
    return None


def _roles(task: str, inputs: list[TensorSpec], outputs: list[TensorSpec], source: str) -> Roles:
    def single(specs: list[TensorSpec], preferred: str, what: str, *, floats: bool = True) -> str:
        named = _by_name(specs, preferred)
        if named is not None:
            return named.name
        candidates = [s for s in specs if _is_float(s) == floats]
        if len(candidates) != 1:
            raise MetadataError(
                f"{source}: cannot tell which tensor is the {what}: expected one named "
                f"{preferred!r} or exactly one candidate, got {[s.name for s in specs]}"
            )
        return candidates[0].name

    def image_output(preferred: str) -> str:
        named = _by_name(outputs, preferred)
        if named is not None:
            return named.name
        four_d = [s for s in outputs if len(s.shape) == 4 and _is_float(s)]
        if len(four_d) != 1:
            raise MetadataError(
                f"{source}: cannot tell which output is the image: expected one named "
                f"{preferred!r} or exactly one 4-D float output, got "
                f"{[(s.name, s.shape) for s in outputs]}"
            )
        return four_d[0].name

    # Exported names (ganrt.artifact.io_names): translators image -> output, samplers z -> image.
    if task == "translate":
        return Roles(image=single(inputs, "image", "input image"), out_image=image_output("output"))
    if task == "sample":
        label = None
        ints = [s for s in inputs if not _is_float(s)]
        if ints:
            label = single(inputs, "label", "class label input", floats=False)
        return Roles(z=single(inputs, "z", "latent input"), label=label, out_image=image_output("image"))
    required = {"image": inputs, "eps": inputs, "mu": outputs, "logvar": outputs, "z": outputs}
    missing = [n for n, specs in required.items() if _by_name(specs, n) is None]
    if missing:
        raise MetadataError(
            f"{source}: an encode graph needs inputs 'image', 'eps' and outputs 'mu', 'logvar', "
            f"'z'; missing {missing}"
        )
    return Roles(image="image", eps="eps", mu="mu", logvar="logvar", out_z="z")


def _inferred_fields(
    task: str, roles: Roles, inputs: list[TensorSpec], outputs: list[TensorSpec]
) -> dict[str, Any]:
    """Only what the graph's names and static shapes determine."""
    spec_in = {s.name: s for s in inputs}
    spec_out = {s.name: s for s in outputs}
    found: dict[str, Any] = {"task": task}
    float_dtypes = {s.dtype for s in inputs + outputs if _is_float(s)}
    found["precision"] = "fp16" if float_dtypes == {"float16"} else "fp32"
    if task == "translate":
        image, out = spec_in[roles.image], spec_out[roles.out_image]
        if len(image.shape) == 4:
            if _static(image.shape[1]):
                found["in_channels"] = image.shape[1]
            h, w = image.shape[2], image.shape[3]
            if _static(h) and h == w:
                # A static graph takes exactly this size.
                found["image_size"] = h
                found["multiple"] = h
        if len(out.shape) == 4 and _static(out.shape[1]):
            found["out_channels"] = out.shape[1]
    elif task == "sample":
        z, out = spec_in[roles.z], spec_out[roles.out_image]
        if len(z.shape) >= 2 and _static(z.shape[1]):
            found["latent_dim"] = z.shape[1]
        if len(out.shape) == 4:
            if _static(out.shape[1]):
                found["out_channels"] = found["in_channels"] = out.shape[1]
            if _static(out.shape[2]) and out.shape[2] == out.shape[3]:
                found["image_size"] = out.shape[2]
                found["multiple"] = 1
        if roles.label is None:
            found["num_classes"] = 0
        else:
            found["family"] = "dcgan"  # only the class-conditional DCGAN takes labels
    else:
        found["family"] = "vae"  # only VAEs export an encoder
        image, mu = spec_in["image"], spec_out["mu"]
        if len(image.shape) == 4:
            if _static(image.shape[1]):
                found["in_channels"] = found["out_channels"] = image.shape[1]
            if _static(image.shape[2]) and image.shape[2] == image.shape[3]:
                found["image_size"] = image.shape[2]
                found["multiple"] = image.shape[2]
        if len(mu.shape) == 2 and _static(mu.shape[1]):
            found["latent_dim"] = mu.shape[1]
    return found


_HINTS = {
    "family": f"one of {'|'.join(FAMILIES)}",
    "task": "translate|sample|encode",
    "in_channels": "image channels in",
    "out_channels": "image channels out",
    "image_size": "native resolution in pixels",
    "multiple": "required divisibility of H and W",
    "latent_dim": "length of z",
    "num_classes": "number of class labels",
}


def resolve(
    props: Mapping[str, str] | None,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    overrides: Mapping[str, Any],
    *,
    source: str,
) -> tuple[ArtifactMetadata, Roles]:
    """Metadata from ganrt ``props`` (or inferred from the I/O of foreign artifacts), ``overrides`` applied.

    Raises ``TypeError`` for unknown override names and :class:`MetadataError` listing every field that is
    neither in the artifact nor determined by its I/O, or that contradicts the graph's static shapes.
    """
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {unknown} for ganrt.load; metadata overrides are "
            f"{sorted(_FIELDS)}"
        )
    values: dict[str, Any]
    ours = {k: v for k, v in (props or {}).items() if k.startswith("ganrt.")}
    if ours:
        try:
            values = dataclasses.asdict(ArtifactMetadata.from_props(ours))
        except (KeyError, ValueError) as exc:
            raise MetadataError(f"{source}: broken ganrt metadata: {exc}") from exc
        values.update(overrides)
        task = values["task"]
    else:
        task = overrides.get("task") or _infer_task(inputs, outputs)
        if task is None:
            raise MetadataError(
                f"{source}: has no ganrt metadata and its inputs {[(s.name, s.shape) for s in inputs]} "
                f"do not determine the task; pass task='translate'|'sample'|'encode' to ganrt.load"
            )
        values = {}
    roles = _roles(task, inputs, outputs, source)
    if not ours:
        values = {**_inferred_fields(task, roles, inputs, outputs), **overrides}
    needed = [name for name, f in _FIELDS.items() if f.default is dataclasses.MISSING and name not in values]
    if task in ("sample", "encode") and not values.get("latent_dim"):
        needed.append("latent_dim")
    if roles.label is not None and not values.get("num_classes"):
        needed.append("num_classes")
    if needed:
        listed = ", ".join(f"{name}= ({_HINTS.get(name, '')})" for name in needed)
        raise MetadataError(
            f"{source}: has no ganrt metadata, and its inputs/outputs do not determine: {listed}. "
            f"Pass them as keyword arguments, e.g. ganrt.load(path, {needed[0]}=...)"
        )
    if "value_range" in values:
        values["value_range"] = tuple(float(v) for v in values["value_range"])
    try:
        metadata = ArtifactMetadata(**values)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"{source}: invalid metadata: {exc}") from exc
    _check_against_graph(metadata, roles, inputs, outputs, source)
    return metadata, roles


def _check_against_graph(
    md: ArtifactMetadata, roles: Roles, inputs: list[TensorSpec], outputs: list[TensorSpec], source: str
) -> None:
    spec = {s.name: s for s in inputs + outputs}

    def expect(name: str | None, axis: int, value: int, field: str) -> None:
        if name is None:
            return
        shape = spec[name].shape
        if len(shape) > axis and shape[axis] > 0 and shape[axis] != value:
            raise MetadataError(
                f"{source}: {field}={value} contradicts the graph: {name!r} has shape {shape}"
            )

    if md.task == "translate":
        expect(roles.image, 1, md.in_channels, "in_channels")
        expect(roles.out_image, 1, md.out_channels, "out_channels")
    elif md.task == "sample":
        expect(roles.z, 1, md.latent_dim, "latent_dim")
        expect(roles.out_image, 1, md.out_channels, "out_channels")
        expect(roles.out_image, 2, md.image_size, "image_size")
    else:
        expect(roles.image, 1, md.in_channels, "in_channels")
        expect(roles.image, 2, md.image_size, "image_size")
        expect(roles.mu, 1, md.latent_dim, "latent_dim")
