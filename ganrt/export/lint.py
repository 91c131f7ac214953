"""TensorRT lint: check an ONNX graph against TensorRT's documented ONNX operator support, without TensorRT.

The table below transcribes the operator support matrix of the ONNX-TensorRT parser as documented for
TensorRT 10.15 (onnx/onnx-tensorrt ``docs/operators.md``: opsets 9 to 24; per operator: supported or not,
supported data types, restrictions), plus the Pad modes the parser's importer accepts (constant, reflect,
edge, wrap). Every node is checked for: its operator being supported, the data type of its data tensor, and
the documented attribute / constant-input restrictions. Errors mean the TensorRT build would fail; warnings
mean it builds but behaves differently (ignored seeds, DOUBLE cast down, plugins that must be registered).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import onnx

DOC_SOURCE = "onnx-tensorrt docs/operators.md, TensorRT 10.15"
OPSET_RANGE: tuple[int, int] = (9, 24)

# (supported data types, operators), transcribed from DOC_SOURCE.
_SUPPORTED_GROUPS: tuple[tuple[str, str], ...] = (
    (
        "FP32 FP16 BF16 INT32 INT64",
        """Abs Add ArgMax ArgMin DepthToSpace Div Equal Greater GreaterOrEqual IsNaN
        Less LessOrEqual Max Min Mod Mul Neg Pad Pow Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
        ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Scatter ScatterElements
        ScatterND Shrink Sign SpaceToDepth Sub Sum TopK""",
    ),
    (
        "FP32 FP16 BF16",
        """Acos Acosh Asin Asinh Atan Atanh AveragePool BatchNormalization Ceil Celu Clip Conv
        ConvTranspose Cos Cosh CumSum Dropout Einsum Elu Erf Exp Floor Gemm GlobalAveragePool GlobalLpPool
        GlobalMaxPool GroupNormalization GRU HardSigmoid HardSwish Hardmax ImageScaler InstanceNormalization
        IsInf LayerNormalization LeakyRelu Log LogSoftmax LRN LSTM LpNormalization LpPool MatMul MaxPool
        MeanVarianceNormalization ParametricSoftplus PRelu QuantizeLinear RandomNormal RandomNormalLike
        RandomUniform RandomUniformLike Reciprocal Resize RMSNormalization RNN RotaryEmbedding Round
        ScaledTanh Scan Selu Sigmoid Sin Sinh Softmax Softplus Softsign Sqrt Tan Tanh ThresholdedRelu
        Upsample""",
    ),
    ("BOOL", "And Not Or Xor"),
    ("FP32 FP16 BF16 INT8 FP8", "Attention"),
    (
        "FP32 FP16",
        "BlackmanWindow DeformConv GridSample HammingWindow HannWindow Mish NonMaxSuppression NonZero"
        " RoiAlign",
    ),
    ("FP32 FP16 BF16 INT32 INT64 UINT8 BOOL", "Cast CastLike"),
    (
        "FP32 FP16 BF16 INT32 INT64 BOOL",
        """Concat Expand EyeLike Flatten Gather GatherElements GatherND Identity If
        Loop OneHot Reshape ReverseSequence Shape Size Slice Split Squeeze Tile Transpose Trilu Unsqueeze
        Where""",
    ),
    ("FP32 FP16 BF16 FP8 FP4 INT4 INT32 INT64 BOOL", "Constant ConstantOfShape"),
    ("INT8 FP8 FP4 INT4", "DequantizeLinear"),
    ("FP32 FP16 BF16 INT8 INT32 INT64", "Gelu"),
    ("FP32 FP16 BF16 FP8 INT32 INT64", "Mean"),
    ("FP32", "STFT"),
    ("FP32 FP16 BF16 INT32", "TensorScatter"),
)

# Operators the matrix lists as not supported.
UNSUPPORTED_OPS: frozenset[str] = frozenset(
    """AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr
    BitwiseXor Col2Im CenterCropPad Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear
    ImageDecoder MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix Multinomial NegativeLogLikelihoodLoss
    Optional OptionalGetElement OptionalHasElement QLinearConv QLinearMatMul RegexFullMatch SequenceAt
    SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap
    SoftmaxCrossEntropyLoss SplitToSequence StringConcat StringNormalizer StringSplit TfIdfVectorizer
    Unique""".split()
)

SUPPORTED_TYPES: dict[str, frozenset[str]] = {
    op: frozenset(types.split()) for types, ops in _SUPPORTED_GROUPS for op in ops.split()
}

# ONNX TensorProto element type -> the names the matrix uses.
_DTYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.FLOAT16: "FP16",
    onnx.TensorProto.BFLOAT16: "BF16",
    onnx.TensorProto.DOUBLE: "DOUBLE",
    onnx.TensorProto.INT4: "INT4",
    onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.INT16: "INT16",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.UINT8: "UINT8",
    onnx.TensorProto.UINT16: "UINT16",
    onnx.TensorProto.UINT32: "UINT32",
    onnx.TensorProto.UINT64: "UINT64",
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.STRING: "STRING",
    onnx.TensorProto.FLOAT8E4M3FN: "FP8",
    onnx.TensorProto.FLOAT4E2M1: "FP4",
}

PAD_MODES = frozenset({"constant", "reflect", "edge", "wrap"})
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATE_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
_REDUCE_OPS = frozenset(op for op in SUPPORTED_TYPES if op.startswith("Reduce"))

Severity = Literal["error", "warning"]


@dataclasses.dataclass(frozen=True)
class LintIssue:
    """One finding: ``node`` is the node name (or ``<model>`` for graph-level findings)."""

    severity: Severity
    node: str
    op_type: str
    message: str


@dataclasses.dataclass
class LintReport:
    """All findings for one model; ``ok`` when there is no error (warnings allowed)."""

    path: str
    opset: int
    nodes: int
    issues: list[LintIssue]
    op_counts: dict[str, int]
    source: str = DOC_SOURCE

    @property
    def errors(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        verdict = "passes" if self.ok else "would fail to build"
        return (
            f"{self.path}: {self.nodes} nodes, opset {self.opset}: {verdict} with TensorRT "
            f"({len(self.errors)} errors, {len(self.warnings)} warnings; checked against {self.source})"
        )


class _Graph:
    """Name -> element type and constant-ness of every tensor of the main graph (after shape inference)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.types: dict[str, int] = {}
        for vi in (*graph.input, *graph.output, *graph.value_info):
            if vi.type.HasField("tensor_type"):
                self.types[vi.name] = vi.type.tensor_type.elem_type
        self.initializers: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        for t in graph.initializer:
            self.types[t.name] = t.data_type
        self.constants: dict[str, onnx.TensorProto] = dict(self.initializers)
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = attr.t
                        self.types[node.output[0]] = attr.t.data_type
        self.io_names = {vi.name for vi in (*graph.input, *graph.output)}

    def dtype(self, name: str) -> str | None:
        code = self.types.get(name)
        if code is None or code == onnx.TensorProto.UNDEFINED:
            return None
        return _DTYPE_NAMES.get(code, onnx.TensorProto.DataType.Name(code))

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def constant(self, name: str) -> list[float] | None:
        if name not in self.constants:
            return None
        return onnx.numpy_helper.to_array(self.constants[name]).reshape(-1).tolist()


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _input(node: onnx.NodeProto, i: int) -> str | None:
    """Name of optional input ``i``, or None when absent/empty."""
    return node.input[i] if len(node.input) > i and node.input[i] else None


# Each checker yields (severity, message) for one node's documented restrictions.
Finding = tuple[Severity, str]
Checker = Callable[[onnx.NodeProto, dict[str, Any], _Graph], Iterator[Finding]]
_CHECKERS: dict[str, Checker] = {}


def _checks(*ops: str) -> Callable[[Checker], Checker]:
    def register(fn: Checker) -> Checker:
        for op in ops:
            _CHECKERS[op] = fn
        return fn

    return register


@_checks("Pad")
def _pad(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    mode = _text(attrs.get("mode", b"constant"))
    if mode not in PAD_MODES:
        yield "error", f"Pad mode {mode!r} is not supported (supported: {', '.join(sorted(PAD_MODES))})"


@_checks("Resize")
def _resize(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    mode = _text(attrs.get("mode", b"nearest"))
    if mode not in RESIZE_MODES:
        yield "error", f"Resize mode {mode!r} is not supported (supported: {', '.join(sorted(RESIZE_MODES))})"
    ctm = _text(attrs.get("coordinate_transformation_mode", b"half_pixel"))
    if ctm not in RESIZE_COORDINATE_MODES:
        yield (
            "error",
            (
                f"Resize coordinate_transformation_mode {ctm!r} is not supported "
                f"(supported: {', '.join(sorted(RESIZE_COORDINATE_MODES))})"
            ),
        )
    nearest = _text(attrs.get("nearest_mode", b"round_prefer_floor"))
    if mode == "nearest" and nearest not in RESIZE_NEAREST_MODES:
        yield "error", f"Resize nearest_mode {nearest!r} is not supported"
    policy = _text(attrs.get("keep_aspect_ratio_policy", b"stretch"))
    if policy != "stretch":
        yield "error", f"Resize keep_aspect_ratio_policy {policy!r} is not supported (only 'stretch')"
    if attrs.get("antialias", 0):
        yield "error", "Resize antialias=1 is not supported (antialiasing is not implemented)"
    axes = attrs.get("axes")
    scales = _input(node, 2)
    if axes is not None and scales is not None and not g.is_constant(scales):
        if list(axes) != list(range(len(axes))):
            yield (
                "error",
                "Resize with a scales tensor requires axes to be an iota vector of length rank(input)",
            )


@_checks(*_REDUCE_OPS)
def _reduce(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    axes = _input(node, 1)
    if axes is not None and not g.is_constant(axes):
        yield "error", f"{node.op_type} input 'axes' must be an initializer, got the computed tensor {axes!r}"


@_checks("AveragePool", "MaxPool", "LpPool")
def _pool(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    kernel = list(attrs.get("kernel_shape", []))
    if node.op_type != "LpPool" and len(kernel) not in (2, 3):
        yield "error", f"{node.op_type} supports 2D or 3D pooling only, got kernel_shape {kernel}"
    dilations = list(attrs.get("dilations", []))
    if any(d != 1 for d in dilations):
        yield "error", f"{node.op_type} dilations must be empty or all ones, got {dilations}"
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        yield "error", "MaxPool output 'Indices' is not supported"


@_checks("Dropout")
def _dropout(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    training = _input(node, 2)
    if training is not None:
        value = g.constant(training)
        if value is None or any(value):
            yield "error", "Dropout input 'training_mode' must be an initializer that evaluates to False"


@_checks("CumSum")
def _cumsum(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    axis = _input(node, 1)
    if axis is not None and not g.is_constant(axis):
        yield "error", "CumSum input 'axis' must be a build-time constant"


@_checks("OneHot")
def _onehot(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    depth = _input(node, 1)
    if depth is not None and not g.is_constant(depth):
        yield "error", "OneHot input 'depth' must be a build-time constant"


@_checks("Squeeze", "Unsqueeze")
def _squeeze(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    axes = _input(node, 1)
    if axes is not None and not g.is_constant(axes):
        yield "error", f"{node.op_type} input 'axes' must be resolvable to a constant"


@_checks("TopK")
def _topk(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    if attrs.get("sorted", 1) != 1:
        yield "error", "TopK attribute 'sorted' must be 1"
    k = _input(node, 1)
    value = g.constant(k) if k is not None else None
    if value is not None and value and value[0] >= 3840:
        yield "error", f"TopK input 'K' must be less than 3840, got {int(value[0])}"


@_checks("ScatterND")
def _scatternd(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    reduction = _text(attrs.get("reduction", b"none"))
    if reduction != "none":
        yield "error", f"ScatterND reduction {reduction!r} is not supported (only 'none')"


@_checks("Constant")
def _constant(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    for name in ("sparse_value", "value_string", "value_strings"):
        if name in attrs:
            yield "error", f"Constant attribute {name!r} is not supported"


@_checks("LayerNormalization")
def _layernorm(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    if any(node.output[1:]):
        yield "error", "LayerNormalization: only the first output 'Y' is supported"


@_checks("LSTM")
def _lstm(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    for name in ("input_forget", "layout"):
        if attrs.get(name, 0) != 0:
            yield "error", f"LSTM attribute {name!r} must be 0"


@_checks("QuantizeLinear", "DequantizeLinear")
def _quant(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    zero = _input(node, 2)
    if zero is not None:
        value = g.constant(zero)
        if value is None or any(value):
            yield "error", f"{node.op_type} zero point must be a zero initializer"


@_checks("STFT")
def _stft(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    for i, name in ((1, "frame_step"), (2, "window")):
        inp = _input(node, i)
        if inp is not None and not g.is_constant(inp):
            yield "error", f"STFT input {name!r} must be an initializer"


@_checks("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike")
def _random(node: onnx.NodeProto, attrs: dict[str, Any], g: _Graph) -> Iterator[Finding]:
    if "seed" in attrs:
        yield (
            "warning",
            f"{node.op_type}: TensorRT ignores the 'seed' attribute (outputs are not reproducible)",
        )


def _data_tensors(node: onnx.NodeProto) -> list[str]:
    """The tensors whose type the matrix's 'Supported Types' column constrains (not index/shape inputs)."""
    op = node.op_type
    if op in ("Constant", "ConstantOfShape", "RandomNormal", "RandomUniform", "EyeLike", "Range"):
        return [n for n in node.output[:1] if n]
    if op == "Where":
        return [n for n in node.input[1:2] if n]
    if op == "OneHot":
        return [n for n in node.input[2:3] if n]
    if op in ("Cast", "CastLike"):
        return [n for n in (*node.input[:1], *node.output[:1]) if n]
    return [n for n in node.input[:1] if n]


def _check_node(node: onnx.NodeProto, g: _Graph) -> Iterator[Finding]:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        attrs = _attrs(node)
        if "plugin_namespace" in attrs or "plugin_version" in attrs:
            yield (
                "warning",
                (
                    f"custom op {node.domain}::{op} needs a TensorRT plugin registered as {op!r} "
                    f"(namespace {_text(attrs.get('plugin_namespace', b''))!r}) at build time"
                ),
            )
        else:
            yield (
                "error",
                (
                    f"custom op {node.domain}::{op} is not an ONNX operator and names no TensorRT plugin "
                    "(plugin_namespace / plugin_version attributes)"
                ),
            )
        return
    if op in UNSUPPORTED_OPS:
        yield "error", f"{op} is not supported by TensorRT's ONNX parser"
        return
    if op not in SUPPORTED_TYPES:
        yield "error", f"{op} is not in TensorRT's ONNX operator support matrix"
        return
    allowed = SUPPORTED_TYPES[op]
    for name in _data_tensors(node):
        dtype = g.dtype(name)
        if dtype is None or dtype in allowed:
            continue
        if dtype == "DOUBLE":
            yield (
                "warning",
                f"tensor {name!r} is DOUBLE; TensorRT casts it down to FP32 (clamped to +-FLT_MAX)",
            )
        elif dtype == "UINT8" and name in g.io_names:
            continue
        else:
            yield (
                "error",
                f"{op} does not support {dtype} (tensor {name!r}); supported: {', '.join(sorted(allowed))}",
            )
    checker = _CHECKERS.get(op)
    if checker is not None:
        yield from checker(node, _attrs(node), g)


def lint_model(model: onnx.ModelProto | str | Path, *, name: str | None = None) -> LintReport:
    """Check every node of ``model`` (a ModelProto or a path) against TensorRT's ONNX support matrix.

    ``name`` labels the report (default: the path, or ``<model>`` for a ModelProto).
    """
    path = name or "<model>"
    if not isinstance(model, onnx.ModelProto):
        file = str(model)
        path = name or file
        try:
            model = onnx.load(file)
        except FileNotFoundError:
            raise FileNotFoundError(f"ONNX model {file} does not exist") from None
        except Exception as exc:  # onnx raises DecodeError / OSError / ValueError subclasses alike
            raise ValueError(f"{file} is not a readable ONNX model: {exc}") from None
        if model.ir_version == 0 or not model.HasField("graph"):
            # protobuf parses an empty (or foreign, all-unknown-fields) file as an empty message
            raise ValueError(
                f"{file} is not an ONNX model: it has no IR version or graph (empty or not ONNX?)"
            )
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # type information is a bonus: lint the raw graph when inference fails
        inferred = model
    issues: list[LintIssue] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    lo, hi = OPSET_RANGE
    if not lo <= opset <= hi:
        issues.append(
            LintIssue("error", "<model>", "", f"opset {opset} is outside TensorRT's range {lo}..{hi}")
        )
    g = _Graph(inferred)
    counts: collections.Counter[str] = collections.Counter()
    for i, node in enumerate(inferred.graph.node):
        counts[node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"] += 1
        label = node.name or f"#{i}"
        for severity, message in _check_node(node, g):
            issues.append(LintIssue(severity, label, node.op_type, message))
    return LintReport(path, opset, len(inferred.graph.node), issues, dict(sorted(counts.items())))
