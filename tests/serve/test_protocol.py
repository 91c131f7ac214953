"""KServe v2 request parsing / response encoding, checked against tritonclient's own decoder where it has
one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganrt.serve.protocol import (
    DATATYPES,
    ProtocolError,
    datatype_of,
    encode_infer_response,
    parse_infer_request,
)


def _binary(inputs: dict[str, np.ndarray], **extra) -> tuple[bytes, str]:
    head = {
        "inputs": [
            {
                "name": n,
                "shape": list(a.shape),
                "datatype": datatype_of(a.dtype),
                "parameters": {"binary_data_size": a.nbytes},
            }
            for n, a in inputs.items()
        ],
        **extra,
    }
    header = json.dumps(head).encode()
    return header + b"".join(np.ascontiguousarray(a).tobytes() for a in inputs.values()), str(len(header))


@pytest.mark.parametrize("datatype", sorted(DATATYPES))
def test_binary_round_trip_every_datatype(datatype):
    dtype = DATATYPES[datatype]
    values = (np.arange(24) % 2 == 0) if dtype.kind == "b" else np.arange(24) % 7
    array = values.astype(dtype).reshape(2, 3, 4)
    body, header_length = _binary({"x": array})
    req = parse_infer_request(body, header_length)
    np.testing.assert_array_equal(req.inputs["x"], array)
    assert req.inputs["x"].dtype == dtype


def test_json_data_flat_and_nested():
    doc = {
        "inputs": [
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2.5, 3, 4]},
            {"name": "b", "shape": [2, 2], "datatype": "INT64", "data": [[1, 2], [3, 4]]},
            {"name": "c", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        ],
        "id": "r1",
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "z"}],
        "parameters": {"timeout": 2_500_000},
    }
    req = parse_infer_request(json.dumps(doc).encode(), None)
    np.testing.assert_array_equal(req.inputs["a"], np.array([[1, 2.5], [3, 4]], np.float32))
    assert req.inputs["b"].dtype == np.int64 and req.inputs["b"].tolist() == [[1, 2], [3, 4]]
    assert req.inputs["c"].tolist() == [True, False]
    assert req.id == "r1" and req.timeout_s == 2.5
    assert [(o.name, o.binary) for o in req.outputs] == [("y", True), ("z", False)]


def test_mixed_json_and_binary_inputs():
    b = np.arange(6, dtype=np.float32).reshape(2, 3)
    header = json.dumps(
        {
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "INT64", "data": [7, 8]},
                {
                    "name": "b",
                    "shape": [2, 3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": b.nbytes},
                },
            ]
        }
    ).encode()
    req = parse_infer_request(header + b.tobytes(), str(len(header)))
    assert req.inputs["a"].tolist() == [7, 8]
    np.testing.assert_array_equal(req.inputs["b"], b)


BAD = [
    ("not-object", b"[1]", None, "must be a JSON object"),
    ("no-inputs", b'{"inputs": []}', None, "non-empty list"),
    (
        "bad-shape",
        b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}',
        None,
        "negative dimensions",
    ),
    (
        "float-for-int",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]}',
        None,
        "do not fit datatype",
    ),
    (
        "int-overflow",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]}',
        None,
        "outside the range",
    ),
    (
        "ragged",
        b'{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3]]}]}',
        None,
        "ragged",
    ),
    (
        "bool-from-int",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]}',
        None,
        "do not fit datatype",
    ),
    (
        "unknown-datatype",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP8", "data": [1]}]}',
        None,
        "unknown datatype 'FP8'",
    ),
    (
        "duplicate",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},'
        b'{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}',
        None,
        "given twice",
    ),
    ("no-data", b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}', None, "neither 'data'"),
    (
        "size-mismatch",
        b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", '
        b'"parameters": {"binary_data_size": 4}}]}',
        "999",
        "Inference-Header-Content-Length",
    ),
    (
        "bad-timeout",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], '
        b'"parameters": {"timeout": -5}}',
        None,
        "positive number of microseconds",
    ),
    (
        "classification",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], '
        b'"outputs": [{"name": "y", "parameters": {"classification": 3}}]}',
        None,
        "classification",
    ),
]


@pytest.mark.parametrize("body,header_length,match", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_malformed_requests_name_the_problem(body, header_length, match):
    with pytest.raises(ProtocolError, match=match) as info:
        parse_infer_request(body, header_length)
    assert info.value.status == 400


def test_binary_size_must_match_shape():
    header = json.dumps(
        {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}
    ).encode()
    with pytest.raises(ProtocolError, match="binary_data_size is 4 bytes but shape \\[2\\] of FP32 needs 8"):
        parse_infer_request(header + b"\0" * 4, str(len(header)))


def test_response_is_readable_by_tritonclient():
    http = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
    y = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    mu = np.arange(4, dtype=np.float64).reshape(2, 2)
    body, headers = encode_infer_response("m", "1", "id-1", [("y", y, True), ("mu", mu, False)])
    assert headers["content-type"] == "application/octet-stream"
    result = http.InferResult.from_response_body(
        body, header_length=int(headers["inference-header-content-length"])
    )
    np.testing.assert_array_equal(result.as_numpy("y"), y)
    np.testing.assert_array_equal(result.as_numpy("mu"), mu)
    assert result.get_response()["id"] == "id-1"
    body, headers = encode_infer_response("m", "1", None, [("mu", mu, False)])
    assert headers == {"content-type": "application/json"}
    np.testing.assert_array_equal(http.InferResult.from_response_body(body).as_numpy("mu"), mu)
