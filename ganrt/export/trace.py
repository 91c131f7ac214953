"""From a run's network to an fp32 ONNX graph: which part to export, its I/O, and the dynamo export itself.

A :class:`GraphPlan` fixes everything about the graph before tracing: the part (from the family registry), the
artifact metadata (:meth:`ganrt.families.Family.metadata_for`, the one derivation the runtime uses too), tensor
names (:data:`ganrt.artifact.IO_NAMES`), dtypes, which axes are dynamic and the shape ranges later used for
the TensorRT profile and the Triton config. The module traced is
:func:`ganrt.backends.torch.graph_module`, the one the torch backend runs, so the graph has exactly the
plan's inputs and outputs; :func:`export_onnx` traces it with ``torch.onnx.export(dynamo=True)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganrt.artifact import ArtifactMetadata, io_names
from ganrt.export.recipe import Range
from ganrt.export.result import ExportError
from ganrt.families import Part, family

if TYPE_CHECKING:
    import onnx

    from ganrt.models import Run

# Symbolic names of the dynamic axes of graph inputs and outputs.
BATCH, HEIGHT, WIDTH = "batch", "height", "width"


@dataclasses.dataclass(frozen=True)
class TensorPlan:
    """A graph input or output: ``shape`` holds ints for fixed axes, BATCH/HEIGHT/WIDTH for dynamic ones."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


@dataclasses.dataclass(frozen=True)
class GraphPlan:
    """Everything about the graph to export, decided before tracing.

    ``metadata`` describes the artifact (fp32; the export sets its final precision). ``height``/``width`` are
    pixel ranges (min, opt, max); (size, size, size) when H and W are fixed. ``image_outputs`` are the outputs
    in [-1, 1] (their parity PSNR uses peak-to-peak 2).
    """

    metadata: ArtifactMetadata
    part: Part
    batch: Range
    height: Range
    width: Range
    inputs: tuple[TensorPlan, ...]
    outputs: tuple[TensorPlan, ...]

    family = property(lambda self: self.metadata.family)
    task = property(lambda self: self.metadata.task)
    in_channels = property(lambda self: self.metadata.in_channels)
    out_channels = property(lambda self: self.metadata.out_channels)
    image_size = property(lambda self: self.metadata.image_size)
    multiple = property(lambda self: self.metadata.multiple)
    latent_dim = property(lambda self: self.metadata.latent_dim)
    num_classes = property(lambda self: self.metadata.num_classes)
    net = property(lambda self: self.part.net)
    direction = property(lambda self: self.part.direction)

    @property
    def dynamic_hw(self) -> bool:
        return self.height[0] != self.height[2] or self.width[0] != self.width[2]

    @property
    def image_outputs(self) -> frozenset[str]:
        return frozenset(t.name for t in self.outputs if len(t.shape) == 4)

    @property
    def stem(self) -> str:
        """Default artifact name: family plus the part or direction when the family has several."""
        if self.family == "vae":
            return f"vae_{self.part.name}"
        if self.part.direction is not None:
            return f"{self.family}_{self.part.direction}"
        return self.family

    def concrete_shape(self, tensor: TensorPlan, batch: int, height: int, width: int) -> tuple[int, ...]:
        sizes = {BATCH: batch, HEIGHT: height, WIDTH: width}
        return tuple(sizes[d] if isinstance(d, str) else d for d in tensor.shape)


def _check_hw(name: str, rng: Range | None, plan_size: int, multiple: int, fixed: bool, what: str) -> Range:
    if rng is None:
        return (plan_size, plan_size, plan_size)
    if fixed and rng != (plan_size, plan_size, plan_size):
        raise ExportError(
            f"{name} must be {plan_size} (this {what} takes exactly {plan_size}x{plan_size} images), "
            f"got {rng[0]}:{rng[1]}:{rng[2]}"
        )
    bad = [v for v in rng if v % multiple]
    if bad:
        raise ExportError(
            f"{name} values must be multiples of {multiple} (the network's required divisibility), "
            f"got {rng[0]}:{rng[1]}:{rng[2]}"
        )
    return rng


def select_part(run: Run, part: str | None, direction: str | None) -> Part:
    """The family part to export from ``run``; :class:`ExportError` for a part or direction the family does not
    have, or a net the run does not hold."""
    try:
        chosen = family(run.family).part(part, direction=direction)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    if chosen.net not in run.config["nets"]:
        raise ExportError(
            f"run {run.path} has no net {chosen.net!r} to export (nets: {sorted(run.config['nets'])})"
        )
    return chosen


def plan_graph(
    run: Run,
    net: nn.Module,
    *,
    part: Part,
    batch: Range,
    height: Range | None,
    width: Range | None,
) -> GraphPlan:
    """Decide the graph exporting ``net`` (``run``'s net for ``part``, see :func:`select_part`). Raises
    :class:`ExportError` for shape ranges the network cannot take."""
    md = family(run.family).metadata_for(
        net, part=part, image_size=int(run.config["image_size"]), config_hash=run.config_hash()
    )
    in_names, out_names = io_names(md.task, md.num_classes)
    size = md.image_size
    if md.task == "translate":
        h = _check_hw("height", height, size, md.multiple, False, "network")
        w = _check_hw("width", width, size, md.multiple, False, "network")
        hd: int | str = HEIGHT if h[0] != h[2] else h[0]
        wd: int | str = WIDTH if w[0] != w[2] else w[0]
        inputs: tuple[TensorPlan, ...] = (TensorPlan(in_names[0], "float32", (BATCH, md.in_channels, hd, wd)),)
        outputs: tuple[TensorPlan, ...] = (TensorPlan(out_names[0], "float32", (BATCH, md.out_channels, hd, wd)),)
    else:
        if md.task == "sample" and (height is not None or width is not None):
            raise ExportError(
                f"height/width do not apply to a {md.family} {part.name}: it generates {size}x{size} images"
            )
        h = _check_hw("height", height, size, size, True, "VAE encoder")
        w = _check_hw("width", width, size, size, True, "VAE encoder")
        image = (BATCH, md.out_channels, size, size)
        if md.task == "encode":
            inputs = (
                TensorPlan(in_names[0], "float32", image),
                TensorPlan(in_names[1], "float32", (BATCH, md.latent_dim)),
            )
            outputs = tuple(TensorPlan(n, "float32", (BATCH, md.latent_dim)) for n in out_names)
        else:
            inputs = (TensorPlan(in_names[0], "float32", (BATCH, md.latent_dim)),)
            if md.num_classes:
                inputs += (TensorPlan(in_names[1], "int64", (BATCH,)),)
            outputs = (TensorPlan(out_names[0], "float32", image),)
    return GraphPlan(metadata=md, part=part, batch=batch, height=h, width=w, inputs=inputs, outputs=outputs)


def trace_inputs(plan: GraphPlan) -> tuple[torch.Tensor, ...]:
    """Example inputs for tracing. Dynamic axes get at least 2 units so torch.export does not specialize them
    to the constant 1; values are random (tracing does not look at them)."""
    gen = torch.Generator().manual_seed(0)
    batch = 2
    h = (
        plan.height[1]
        if plan.height[1] // plan.multiple >= 2 or plan.height[0] == plan.height[2]
        else 2 * plan.multiple
    )
    w = (
        plan.width[1]
        if plan.width[1] // plan.multiple >= 2 or plan.width[0] == plan.width[2]
        else 2 * plan.multiple
    )
    out = []
    for t in plan.inputs:
        shape = plan.concrete_shape(t, batch, h, w)
        if t.dtype == "int64":
            out.append(torch.randint(0, max(plan.num_classes, 1), shape, generator=gen))
        else:
            out.append(torch.rand(shape, generator=gen) * 2 - 1)
    return tuple(out)


def _dynamic_shapes(plan: GraphPlan) -> dict[str, dict[int, Any]]:
    from torch.export import Dim

    batch = Dim(BATCH, min=1)
    dims: dict[str, Any] = {BATCH: batch}
    if plan.dynamic_hw:
        # H = multiple * h: the divisibility is part of the shape constraint, as the network requires it.
        dims[HEIGHT] = plan.multiple * Dim("h", min=1) if plan.height[0] != plan.height[2] else None
        dims[WIDTH] = plan.multiple * Dim("w", min=1) if plan.width[0] != plan.width[2] else None
    return {
        t.name: {
            axis: dims[d] for axis, d in enumerate(t.shape) if isinstance(d, str) and dims.get(d) is not None
        }
        for t in plan.inputs
    }


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's own chatter: torch.export's internal pytree deprecation warning (raised from
    copyreg, so module-based filters miss it), the notice that inputs sharing the batch Dim keep one axis
    name, and the registration log about optional torchvision ops."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated", category=FutureWarning)
            warnings.filterwarnings(
                "ignore", message=r"# The axis name: .* will not be used", category=UserWarning
            )
            warnings.filterwarnings(
                "ignore", category=DeprecationWarning, module=r"(onnxscript|onnx_ir)(\.|$)"
            )
            yield
    finally:
        registration.setLevel(level)


def _name_io_dims(model: onnx.ModelProto, plan: GraphPlan) -> None:
    """Give the dynamic axes of graph inputs/outputs the plan's names (the exporter writes e.g. ``4*h``)."""
    by_name = {t.name: t for t in (*plan.inputs, *plan.outputs)}
    for vi in (*model.graph.input, *model.graph.output):
        tensor = by_name.get(vi.name)
        if tensor is None:
            continue
        for axis, dim in enumerate(vi.type.tensor_type.shape.dim):
            want = tensor.shape[axis]
            if isinstance(want, str):
                dim.dim_param = want


def check_graph(model: onnx.ModelProto, plan: GraphPlan) -> None:
    """Raise :class:`ExportError` unless the graph has exactly the plan's I/O (names, dtypes, ranks) and only
    standard ONNX operators (the fused ops must have decomposed; no local functions left behind)."""
    import onnx
    from onnx import helper

    problems = []
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        problems.append(f"non-standard operators {custom}")
    unknown = sorted(
        {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type)}
    )
    if unknown:
        problems.append(f"unknown operators {unknown}")
    if len(model.functions):
        problems.append(f"local functions {[f.name for f in model.functions]}")
    for kind, got, want in (
        ("inputs", model.graph.input, plan.inputs),
        ("outputs", model.graph.output, plan.outputs),
    ):
        got_sig = [
            (
                vi.name,
                helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name,
                len(vi.type.tensor_type.shape.dim),
            )
            for vi in got
        ]
        want_sig = [(t.name, t.dtype, len(t.shape)) for t in want]
        if got_sig != want_sig:
            problems.append(f"graph {kind} {got_sig}, expected {want_sig}")
    if problems:
        raise ExportError("the exported graph is not what the runtime expects: " + "; ".join(problems))


def export_onnx(module: nn.Module, plan: GraphPlan, *, opset: int, fused: bool) -> onnx.ModelProto:
    """Trace ``module`` with the dynamo exporter into a single fp32 ONNX ModelProto (weights inline).

    ``fused`` passes ganrt's ONNX translations of its custom ops; the exporter's optimizer then folds
    constants and drops the ops' unused statistics outputs.
    """
    table = None
    if fused:
        from ganrt.ops import onnx_translation_table

        table = onnx_translation_table()
    args = trace_inputs(plan)
    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            opset_version=opset,
            input_names=[t.name for t in plan.inputs],
            output_names=[t.name for t in plan.outputs],
            dynamic_shapes=_dynamic_shapes(plan),
            custom_translation_table=table,
            optimize=True,
            external_data=False,
            verbose=False,
        )
        model = program.model_proto
    _name_io_dims(model, plan)
    check_graph(model, plan)
    return model
