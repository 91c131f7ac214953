"""The KServe v2 / Open Inference Protocol over HTTP: request parsing and response encoding.

Covers JSON tensor data and Triton's binary-data extension, which ``tritonclient.http`` uses by default:

- request: the header ``Inference-Header-Content-Length: N`` says the first N bytes of the body are the JSON
  inference header; an input with ``parameters.binary_data_size = K`` takes the next K raw bytes
  (little-endian, row-major) of what follows, in input order.
- response: an output is sent as raw bytes when the request asks for it
  (``outputs[i].parameters.binary_data``,
  or the request-level ``parameters.binary_data_output`` for outputs without their own flag); the JSON header
  then comes first and the response carries ``Inference-Header-Content-Length``.

Only numeric and boolean tensors are supported (ganrt models have no string tensors): ``BYTES`` and ``BF16``
are refused with a 400 that says so. Nothing here evaluates or unpickles anything: JSON via :mod:`json`, raw
tensor bytes via :func:`numpy.frombuffer`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# KServe v2 datatype <-> numpy dtype (little-endian, as the protocol's binary extension specifies)
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_UNSUPPORTED = {"BYTES": "string tensors", "BF16": "bfloat16 tensors (numpy has no bfloat16)"}
HEADER_LENGTH = "Inference-Header-Content-Length"


class ProtocolError(ValueError):
    """A malformed or inconsistent request; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def datatype_of(dtype: Any) -> str:
    """The KServe v2 datatype name of a numpy dtype (or dtype string such as ``"float32"``)."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    for name, candidate in DATATYPES.items():
        if candidate == dt:
            return name
    raise ProtocolError(f"dtype {np.dtype(dtype)} has no KServe v2 datatype", status=500)


def dtype_of(datatype: str, *, where: str) -> np.dtype:
    """The numpy dtype of a KServe v2 datatype name; ``where`` names the tensor for the error message."""
    if datatype in DATATYPES:
        return DATATYPES[datatype]
    if datatype in _UNSUPPORTED:
        raise ProtocolError(f"{where}: datatype {datatype} ({_UNSUPPORTED[datatype]}) is not supported")
    raise ProtocolError(f"{where}: unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")


@dataclasses.dataclass
class RequestedOutput:
    name: str
    binary: bool


@dataclasses.dataclass
class InferRequest:
    """A parsed ``POST /v2/models/{name}/infer`` body.

    ``inputs`` maps input names to arrays of the shape and dtype the client declared (not yet checked against
    the model); ``outputs`` is None when the client asked for all outputs, in which case ``binary_default``
    says how to send them. ``timeout_s`` is the client's ``parameters.timeout`` (microseconds on the wire), if
    any.
    """

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[RequestedOutput] | None
    binary_default: bool
    timeout_s: float | None


def _shape(value: Any, *, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise ProtocolError(f"{where}: 'shape' must be a list of integers, got {value!r}")
    if any(d < 0 for d in value):
        raise ProtocolError(f"{where}: 'shape' must not contain negative dimensions, got {value}")
    return tuple(value)


def _params(obj: dict[str, Any], *, where: str) -> dict[str, Any]:
    params = obj.get("parameters", {})
    if not isinstance(params, dict):
        raise ProtocolError(f"{where}: 'parameters' must be an object, got {type(params).__name__}")
    return params


def _json_tensor(data: Any, dtype: np.dtype, shape: tuple[int, ...], *, where: str) -> np.ndarray:
    """Tensor from JSON ``data`` (flat row-major or nested lists); rejects strings and out-of-range values."""
    if not isinstance(data, list):
        raise ProtocolError(f"{where}: 'data' must be a list, got {type(data).__name__}")
    try:
        raw = np.array(data)
    except ValueError as exc:
        raise ProtocolError(f"{where}: 'data' is not a regular (non-ragged) array: {exc}") from None
    count = math.prod(shape)
    if raw.size != count:
        raise ProtocolError(f"{where}: 'data' has {raw.size} elements but shape {list(shape)} needs {count}")
    if count == 0:
        return np.zeros(shape, dtype)
    kind = raw.dtype.kind
    if dtype.kind == "b":
        ok = kind == "b"
    elif dtype.kind in "iu":
        ok = kind in "biu"
        if ok and kind != "b":
            info = np.iinfo(dtype)
            ok = bool(raw.min() >= info.min and raw.max() <= info.max)
            if not ok:
                raise ProtocolError(
                    f"{where}: 'data' values outside the range of {dtype} ({info.min}..{info.max})"
                )
    else:
        ok = kind in "biuf"
    if not ok:
        raise ProtocolError(f"{where}: 'data' holds {raw.dtype} values, which do not fit datatype {dtype}")
    return raw.astype(dtype, copy=False).reshape(shape)


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an infer request body (JSON, or JSON header + binary tensor data).

    Args:
        body: the complete (already size-limited and decompressed) request body.
        header_length: the ``Inference-Header-Content-Length`` header value, or None when the body is all
        JSON.
    """
    if header_length is None:
        head, rest = body, b""
    else:
        try:
            n = int(header_length)
        except ValueError:
            raise ProtocolError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 < n <= len(body):
            raise ProtocolError(f"{HEADER_LENGTH} must be in 1..{len(body)} (the body size), got {n}")
        head, rest = body[:n], memoryview(body)[n:]
    try:
        doc = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"the inference header is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"the inference header must be a JSON object, got {type(doc).__name__}")
    req_id = doc.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise ProtocolError(f"'id' must be a string, got {type(req_id).__name__}")
    params = _params(doc, where="request")
    inputs_doc = doc.get("inputs")
    if not isinstance(inputs_doc, list) or not inputs_doc:
        raise ProtocolError("'inputs' must be a non-empty list of tensors")

    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for i, tensor in enumerate(inputs_doc):
        if not isinstance(tensor, dict):
            raise ProtocolError(f"inputs[{i}] must be an object, got {type(tensor).__name__}")
        name = tensor.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"inputs[{i}]: 'name' must be a non-empty string")
        where = f"input {name!r}"
        if name in inputs:
            raise ProtocolError(f"{where} is given twice")
        if not isinstance(tensor.get("datatype"), str):
            raise ProtocolError(f"{where}: 'datatype' must be a string such as 'FP32'")
        dtype = dtype_of(tensor["datatype"], where=where)
        shape = _shape(tensor.get("shape"), where=where)
        tparams = _params(tensor, where=where)
        if "binary_data_size" in tparams:
            size = tparams["binary_data_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ProtocolError(
                    f"{where}: 'binary_data_size' must be a non-negative integer, got {size!r}"
                )
            if "data" in tensor:
                raise ProtocolError(f"{where} has both 'data' and 'binary_data_size'; give one")
            expected = math.prod(shape) * dtype.itemsize
            if size != expected:
                raise ProtocolError(
                    f"{where}: binary_data_size is {size} bytes but shape {list(shape)} of "
                    f"{tensor['datatype']} needs {expected}"
                )
            if offset + size > len(rest):
                raise ProtocolError(
                    f"{where}: binary data ends at byte {offset + size} but the body has only {len(rest)} "
                    f"bytes after the {len(head)}-byte header"
                )
            inputs[name] = np.frombuffer(rest[offset : offset + size], dtype=dtype).reshape(shape)
            offset += size
        elif "data" in tensor:
            inputs[name] = _json_tensor(tensor["data"], dtype, shape, where=where)
        else:
            raise ProtocolError(f"{where} has neither 'data' nor parameters.binary_data_size")
    if offset != len(rest):
        raise ProtocolError(f"{len(rest) - offset} bytes of binary data after the header belong to no input")

    outputs: list[RequestedOutput] | None = None
    binary_default = bool(params.get("binary_data_output", False))
    if "outputs" in doc:
        outs_doc = doc["outputs"]
        if not isinstance(outs_doc, list):
            raise ProtocolError(f"'outputs' must be a list, got {type(outs_doc).__name__}")
        outputs = []
        for i, out in enumerate(outs_doc):
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise ProtocolError(f"outputs[{i}] must be an object with a string 'name'")
            oparams = _params(out, where=f"output {out['name']!r}")
            if "classification" in oparams:
                raise ProtocolError(f"output {out['name']!r}: the classification extension is not supported")
            outputs.append(RequestedOutput(out["name"], bool(oparams.get("binary_data", binary_default))))

    timeout_s = None
    if "timeout" in params:
        t = params["timeout"]
        if not isinstance(t, (int, float)) or isinstance(t, bool) or t <= 0:
            raise ProtocolError(f"parameters.timeout must be a positive number of microseconds, got {t!r}")
        timeout_s = t / 1e6
    return InferRequest(req_id, inputs, outputs, binary_default, timeout_s)


def encode_infer_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[tuple[str, np.ndarray, bool]],
) -> tuple[bytes, dict[str, str]]:
    """Encode ``(name, array, binary)`` outputs as a KServe v2 response body plus the headers it needs.

    The JSON is strict: a non-finite float in an output sent as JSON raises :class:`ProtocolError` (500)
    naming the output, instead of emitting the bare ``NaN``/``Infinity`` tokens strict parsers reject (binary
    outputs carry IEEE values as they are)."""
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        doc["id"] = request_id
    tensors = []
    blobs: list[bytes] = []
    for name, array, binary in outputs:
        datatype = datatype_of(array.dtype)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            blob = np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ProtocolError(
                    f"output {name!r} holds NaN or infinite values, which JSON cannot carry; the model "
                    f"produced them from finite inputs (ask for binary_data to receive the raw values)",
                    status=500,
                )
            tensor["data"] = array.reshape(-1).tolist()
        tensors.append(tensor)
    doc["outputs"] = tensors
    # allow_nan=False: strict JSON only (bare NaN/Infinity tokens are not JSON)
    head = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH.lower(): str(len(head))}
    return b"".join([head, *blobs]), headers


def tensor_metadata(name: str, dtype: str, shape: Sequence[int]) -> dict[str, Any]:
    """KServe v2 ``$metadata_tensor``: -1 marks a dynamic dimension."""
    return {"name": name, "datatype": datatype_of(dtype), "shape": [int(d) for d in shape]}
