"""From a run's network to an fp32 ONNX graph: which part to export, its I/O, and the dynamo export itself.

A :class:`GraphPlan` fixes everything about the graph before tracing: task, tensor names (contract 6, see
:data:`ganrt.export.metadata.IO_NAMES`), dtypes, which axes are dynamic and the shape ranges later used
for the TensorRT profile and the Triton config. :func:`wrap_module` wraps the network so its ``forward``
has exactly the graph's inputs and outputs; :func:`export_onnx` traces it with
``torch.onnx.export(dynamo=True)``.
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

from ganrt.export.metadata import io_names
from ganrt.export.recipe import Range
from ganrt.export.result import ExportError

if TYPE_CHECKING:
    import onnx

    from ganrt.models import Run

PARTS: dict[str, tuple[str, ...]] = {
    "pix2pix": ("generator",),
    "cyclegan": ("generator",),
    "vae": ("decoder", "encoder"),
    "dcgan": ("generator",),
}
DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")
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

    ``height``/``width`` are pixel ranges (min, opt, max); (size, size, size) when H and W are fixed.
    ``image_outputs`` are the outputs in [-1, 1] (their parity PSNR uses peak-to-peak 2).
    """

    family: str
    part: str
    task: str
    net: str
    direction: str | None
    in_channels: int
    out_channels: int
    image_size: int
    multiple: int
    latent_dim: int
    num_classes: int
    batch: Range
    height: Range
    width: Range
    inputs: tuple[TensorPlan, ...]
    outputs: tuple[TensorPlan, ...]

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
            return f"vae_{self.part}"
        if self.family == "cyclegan":
            return f"cyclegan_{self.direction}"
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


def select_net(run: Run, part: str | None, direction: str) -> tuple[str, str]:
    """(part, net name) to export from ``run``; raises :class:`ExportError` for a part or direction the family
    does not have."""
    family = run.family
    parts = PARTS[family]
    part = part or parts[0]
    if part not in parts:
        raise ExportError(f"part must be one of {parts} for a {family} run, got {part!r}")
    if family == "cyclegan":
        if direction not in DIRECTIONS:
            raise ExportError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        net_name = "G_A" if direction == "AtoB" else "G_B"
    else:
        if direction != "AtoB":
            raise ExportError(f"direction applies to cyclegan runs only; this is a {family} run")
        net_name = {"pix2pix": "G", "vae": "VAE", "dcgan": "G"}[family]
    if net_name not in run.config["nets"]:
        raise ExportError(
            f"run {run.path} has no net {net_name!r} to export (nets: {sorted(run.config['nets'])})"
        )
    return part, net_name


def plan_graph(
    run: Run,
    net: nn.Module,
    *,
    part: str,
    net_name: str,
    direction: str,
    batch: Range,
    height: Range | None,
    width: Range | None,
) -> GraphPlan:
    """Decide the graph exporting ``net`` (``run``'s net ``net_name``, see :func:`select_net`) from the
    network's own attributes (contract 3: ``in_channels``, ``out_channels``, ``multiple``, ``latent_dim``,
    ``num_classes``, ``image_size``). Raises :class:`ExportError` for shape ranges the network cannot take."""
    family = run.family
    task = "translate" if family in ("pix2pix", "cyclegan") else ("encode" if part == "encoder" else "sample")
    latent_dim = int(getattr(net, "latent_dim", 0))
    num_classes = int(getattr(net, "num_classes", 0))
    in_names, out_names = io_names(task, num_classes)
    if task == "translate":
        size = int(run.config["image_size"])
        in_ch, out_ch, multiple = int(net.in_channels), int(net.out_channels), int(net.multiple)
        h = _check_hw("height", height, size, multiple, False, "network")
        w = _check_hw("width", width, size, multiple, False, "network")
        hd: int | str = HEIGHT if h[0] != h[2] else h[0]
        wd: int | str = WIDTH if w[0] != w[2] else w[0]
        inputs: tuple[TensorPlan, ...] = (TensorPlan(in_names[0], "float32", (BATCH, in_ch, hd, wd)),)
        outputs: tuple[TensorPlan, ...] = (TensorPlan(out_names[0], "float32", (BATCH, out_ch, hd, wd)),)
    else:
        # Samplers' images have out_channels channels (a DCGAN's in_channels is its z length).
        size = int(net.image_size)
        in_ch = out_ch = int(net.out_channels)
        multiple = size if task == "encode" else 1
        if task == "sample" and (height is not None or width is not None):
            raise ExportError(
                f"height/width do not apply to a {family} {part}: it generates {size}x{size} images"
            )
        h = _check_hw("height", height, size, size, True, "VAE encoder")
        w = _check_hw("width", width, size, size, True, "VAE encoder")
        image = (BATCH, out_ch, size, size)
        if task == "encode":
            inputs = (
                TensorPlan(in_names[0], "float32", image),
                TensorPlan(in_names[1], "float32", (BATCH, latent_dim)),
            )
            outputs = tuple(TensorPlan(n, "float32", (BATCH, latent_dim)) for n in out_names)
        else:
            inputs = (TensorPlan(in_names[0], "float32", (BATCH, latent_dim)),)
            if num_classes:
                inputs += (TensorPlan(in_names[1], "int64", (BATCH,)),)
            outputs = (TensorPlan(out_names[0], "float32", image),)
    return GraphPlan(
        family=family,
        part=part,
        task=task,
        net=net_name,
        direction=direction if family == "cyclegan" else None,
        in_channels=in_ch,
        out_channels=out_ch,
        image_size=size,
        multiple=multiple,
        latent_dim=latent_dim,
        num_classes=num_classes,
        batch=batch,
        height=h,
        width=w,
        inputs=inputs,
        outputs=outputs,
    )


class _Translator(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class _Sampler(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _ConditionalSampler(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(z, label)


class _VAEDecoder(nn.Module):
    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z)


class _VAEEncoder(nn.Module):
    """image (N, C, S, S), eps (N, latent_dim) -> mu, logvar, z = mu + exp(logvar / 2) * eps.

    The noise is an input because ONNX/TensorRT random ops ignore seeds; callers draw it with
    ``ganrt.ops.standard_normal`` to reproduce training-time sampling exactly.
    """

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(
        self, image: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from ganrt.ops import reparameterize_ref

        mu, logvar = self.vae.encode(image)
        return mu, logvar, reparameterize_ref(mu, logvar, eps)


def wrap_module(net: nn.Module, plan: GraphPlan) -> nn.Module:
    """``net`` wrapped so ``forward`` takes and returns the graph's tensors (in plan order); eval mode,
    gradients off."""
    if plan.task == "translate":
        module: nn.Module = _Translator(net)
    elif plan.task == "encode":
        module = _VAEEncoder(net)
    elif plan.family == "vae":
        module = _VAEDecoder(net)
    else:
        module = _ConditionalSampler(net) if plan.num_classes else _Sampler(net)
    module.eval()
    module.requires_grad_(False)
    return module


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
