"""The fp16 precision pass: convolutions and matmuls in fp16, normalization statistics in fp32, I/O fp32.

Uses onnxconverter-common's ``convert_float_to_float16`` with a node-type block list: blocked nodes keep fp32
inputs/outputs and the converter inserts the Casts around them. Blocked are InstanceNormalization (its
statistics over H*W overflow or lose precision in fp16 -- the known TensorRT accuracy trap; TensorRT 11 takes
precision from the graph, so this placement is what runs) and every reduction (in case a norm reaches the
graph decomposed), plus the converter's own default block list. :func:`check_fp16_policy` verifies the
result, so a converter change that breaks the policy fails the export instead of shipping.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from ganrt.export.result import ExportError

if TYPE_CHECKING:
    import onnx

# Ops that must compute in fp32 under the fp16 policy.
FP32_OPS: frozenset[str] = frozenset(
    {
        "InstanceNormalization",
        "GroupNormalization",
        "LayerNormalization",
        "ReduceMean",
        "ReduceSum",
        "ReduceSumSquare",
        "ReduceL2",
        "ReduceLogSumExp",
        "ReduceProd",
    }
)
# Ops that must compute in fp16 under the policy (where tensor cores pay off).
FP16_OPS: frozenset[str] = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def to_fp16(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """fp32 ``model`` -> (mixed-precision copy under the policy above, notes). Graph inputs/outputs stay fp32.

    The notes summarize the converter's range warnings: weights whose magnitude is below 1e-7 or above 1e4 are
    clamped into fp16's range (the parity gate then judges whether that mattered).
    """
    import onnx
    from onnxconverter_common import float16

    block = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | FP32_OPS)
    source = onnx.ModelProto.FromString(model.SerializeToString())
    _isolate_graph_outputs(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        converted = float16.convert_float_to_float16(source, keep_io_types=True, op_block_list=block)
    clamped = sum(1 for w in caught if "will be truncated" in str(w.message))
    notes = (
        [f"fp16 pass: {clamped} weight tensors had magnitudes outside [1e-7, 1e4], clamped into it"]
        if clamped
        else []
    )
    for w in caught:
        if "will be truncated" not in str(w.message):
            notes.append(f"fp16 pass: {w.message}")
    _restore_fp32_constants(converted, model)
    check_fp16_policy(converted)
    return converted, notes


def _isolate_graph_outputs(model: onnx.ModelProto) -> None:
    """Make every graph output the sole output of an Identity node that nothing else consumes.

    With ``keep_io_types`` the converter appends a Cast-to-fp32 under the output's name, but leaves other
    consumers of that name (the VAE encoder's ``mu`` and ``logvar`` also feed ``z``) reading it, so they would
    mix fp32 and fp16 inputs. Consumers now read the internal tensor, which stays in fp16.
    """
    import onnx

    graph = model.graph
    outputs = {o.name for o in graph.output}
    consumed = {name for node in graph.node for name in node.input}
    shared = outputs & consumed
    if not shared:
        return
    renamed = {name: f"{name}__internal" for name in shared}
    for node in graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
    for vi in graph.value_info:
        if vi.name in renamed:
            vi.name = renamed[vi.name]
    for name, internal in renamed.items():
        graph.node.append(onnx.helper.make_node("Identity", [internal], [name], name=f"{name}__output"))


def _restore_fp32_constants(converted: onnx.ModelProto, original: onnx.ModelProto) -> None:
    """Replace ``Cast(to=float32)`` of an initializer by that initializer's original fp32 values.

    The converter stores every float initializer in fp16 and casts it back in front of blocked nodes, so an
    fp32 op (an affine instance norm's scale and bias) would see weights rounded to fp16. Restoring them keeps
    the fp32 ops exact and drops the casts.
    """
    import onnx
    from onnx import numpy_helper

    graph = converted.graph
    originals = {t.name: t for t in original.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    inits = {t.name: t for t in graph.initializer}
    keep = []
    restored = []
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        source = node.input[0] if node.op_type == "Cast" and node.input else None
        if source in inits and source in originals and to == onnx.TensorProto.FLOAT:
            values = numpy_helper.to_array(originals[source])
            restored.append(numpy_helper.from_array(values, name=node.output[0]))
            continue
        keep.append(node)
    if not restored:
        return
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(restored)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {t.name: t.data_type for t in inferred.graph.initializer}
    for vi in (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info):
        types[vi.name] = vi.type.tensor_type.elem_type
    for node in inferred.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    return types


def policy_violations(model: onnx.ModelProto) -> list[str]:
    """Where ``model`` breaks the fp16 policy: a FP32_OPS node with a non-fp32 data input, a FP16_OPS node
    with a non-fp16 data input, or a float graph input/output that is not fp32."""
    import onnx

    fp32, fp16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    types = _tensor_types(model)
    problems = []
    for node in model.graph.node:
        if not node.input:
            continue
        dtype = types.get(node.input[0])
        if node.op_type in FP32_OPS and dtype != fp32:
            problems.append(f"{node.op_type} {node.name!r} computes in {_name(dtype)}, policy needs float32")
        if node.op_type in FP16_OPS and dtype != fp16:
            problems.append(f"{node.op_type} {node.name!r} computes in {_name(dtype)}, policy needs float16")
    for vi in (*model.graph.input, *model.graph.output):
        dtype = vi.type.tensor_type.elem_type
        if dtype in (fp16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16):
            problems.append(f"graph tensor {vi.name!r} is {_name(dtype)}, policy keeps graph I/O float32")
    return problems


def _name(dtype: int | None) -> str:
    import onnx

    return "unknown" if dtype is None else onnx.TensorProto.DataType.Name(dtype).lower()


def check_fp16_policy(model: onnx.ModelProto) -> None:
    """Raise :class:`ExportError` listing every :func:`policy_violations` entry."""
    problems = policy_violations(model)
    if problems:
        raise ExportError("the fp16 pass broke the precision policy: " + "; ".join(problems))
