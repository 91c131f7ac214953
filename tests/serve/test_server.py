"""``ganrt serve`` in a subprocess, driven by the real ``tritonclient.http`` client and by raw HTTP
(httpx)."""

from __future__ import annotations

import io
import json
import threading
import time

import httpx
import numpy as np
import pytest

import ganrt

tritonclient_http = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")


def _client(server):
    return tritonclient_http.InferenceServerClient(server.hostport, connection_timeout=30, network_timeout=60)


def _input(name: str, array: np.ndarray, *, binary: bool = True):
    from ganrt.serve.protocol import datatype_of

    tensor = tritonclient_http.InferInput(name, list(array.shape), datatype_of(array.dtype))
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


# ---- KServe v2 through tritonclient ------------------------------------------------------------------------
def test_health_and_readiness(server):
    client = _client(server)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("dcgan")
    assert client.is_model_ready("pix2pix")
    assert not client.is_model_ready("nope")
    meta = client.get_server_metadata()
    assert meta["name"] == "ganrt" and "binary_tensor_data" in meta["extensions"]


def test_model_metadata(server):
    client = _client(server)
    meta = client.get_model_metadata("dcgan")
    assert meta["name"] == "dcgan"
    assert meta["platform"] == "ganrt_onnxruntime"
    assert meta["inputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, 16]}]
    assert meta["outputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]
    assert meta["parameters"]["ganrt.task"] == "sample"
    meta = client.get_model_metadata("pix2pix")
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, -1, -1]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3, -1, -1]}]
    config = client.get_model_config("pix2pix")
    assert config["max_batch_size"] == 8
    assert config["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]
    assert config["input"] == [{"name": "image", "data_type": "TYPE_FP32", "dims": [3, -1, -1]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_matches_ganrt_load(server, loaded_models, binary):
    client = _client(server)
    z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    outputs = [tritonclient_http.InferRequestedOutput("image", binary_data=binary)]
    result = client.infer("dcgan", [_input("z", z, binary=binary)], outputs=outputs, request_id="req-7")
    expected = loaded_models["dcgan"].infer({"z": z})["image"]
    got = result.as_numpy("image")
    assert got.shape == (3, 3, 32, 32) and got.dtype == np.float32
    # binary data is bit-exact; JSON goes through float64 decimal text and back
    np.testing.assert_allclose(got, expected, rtol=0, atol=0 if binary else 1e-7)
    assert result.get_response()["id"] == "req-7"

    image = np.random.default_rng(1).uniform(-1, 1, (2, 3, 36, 44)).astype(np.float32)
    result = client.infer("pix2pix", [_input("image", image, binary=binary)])
    np.testing.assert_array_equal(
        result.as_numpy("output"), loaded_models["pix2pix"].infer({"image": image})["output"]
    )


def test_infer_with_versions_path(server, loaded_models):
    client = _client(server)
    z = np.ones((1, 16), np.float32)
    result = client.infer("dcgan", [_input("z", z)], model_version="1")
    np.testing.assert_array_equal(result.as_numpy("image"), loaded_models["dcgan"].infer({"z": z})["image"])
    with pytest.raises(tritonclient_http.InferenceServerException, match="no version '2'"):
        client.infer("dcgan", [_input("z", z)], model_version="2")


def test_gzip_request_body(server, loaded_models):
    client = _client(server)
    z = np.full((2, 16), 0.5, np.float32)
    result = client.infer("dcgan", [_input("z", z)], request_compression_algorithm="gzip")
    np.testing.assert_array_equal(result.as_numpy("image"), loaded_models["dcgan"].infer({"z": z})["image"])


def _batch_histogram(server, helpers) -> tuple[float, float]:
    """(executed dcgan calls, of which with more than one row)."""
    samples = helpers.parse_metrics(httpx.get(server.url + "/metrics").text)
    total = samples['ganrt_batch_size_count{model="dcgan"}']
    single = samples['ganrt_batch_size_bucket{model="dcgan",le="1"}']
    return total, total - single


def test_32_concurrent_clients_are_batched(server, loaded_models, helpers):
    clients, per_client = 32, 6
    calls_before, merged_before = _batch_histogram(server, helpers)
    errors: list[str] = []
    results: dict[tuple[int, int], np.ndarray] = {}
    barrier = threading.Barrier(clients)

    def worker(i: int) -> None:
        client = _client(server)
        try:
            barrier.wait(timeout=60)
            for k in range(per_client):
                z = np.random.default_rng(1000 * i + k).standard_normal((1, 16)).astype(np.float32)
                results[i, k] = client.infer("dcgan", [_input("z", z)]).as_numpy("image")
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(f"client {i}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "clients did not finish within 120 s"
    assert errors == []
    assert len(results) == clients * per_client
    model = loaded_models["dcgan"]
    for (i, k), got in results.items():
        z = np.random.default_rng(1000 * i + k).standard_normal((1, 16)).astype(np.float32)
        np.testing.assert_allclose(got, model.infer({"z": z})["image"], atol=1e-5)
    calls_after, merged_after = _batch_histogram(server, helpers)
    assert merged_after - merged_before > 0, "no executed batch had more than one row"
    assert calls_after - calls_before < clients * per_client, "every request ran as its own model call"


# ---- /v1 convenience endpoints -----------------------------------------------------------------------------
def _png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("fmt,media", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_v1_translate(server, loaded_models, fmt, media):
    image = np.random.default_rng(2).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    body = _png(image, fmt)
    response = httpx.post(
        f"{server.url}/v1/models/pix2pix/translate", content=body, headers={"content-type": media}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    sent = _decode(body)  # JPEG is lossy: the server translates what the JPEG decodes to
    expected = loaded_models["pix2pix"].translate(sent[None])[0]
    np.testing.assert_array_equal(_decode(response.content), expected)


def test_v1_sample_grid_is_seeded(server, loaded_models):
    from ganrt.runtime.images import grid

    url = f"{server.url}/v1/models/dcgan/sample"
    first = httpx.post(url, params={"n": 4, "seed": 123})
    assert first.status_code == 200, first.text
    assert first.headers["x-ganrt-seed"] == "123"
    expected = grid(loaded_models["dcgan"].sample(4, seed=123))
    np.testing.assert_array_equal(_decode(first.content), expected)
    second = httpx.post(url, json={"n": 4, "seed": 123})
    assert second.content == first.content
    other = httpx.post(url, json={"n": 4, "seed": 124})
    assert other.content != first.content


# ---- errors ------------------------------------------------------------------------------------------------
def _infer_json(server, model: str, inputs: list[dict], **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json={"inputs": inputs}, **kwargs)


Z_OK = {"name": "z", "shape": [1, 16], "datatype": "FP32", "data": [0.0] * 16}

BAD_INFER = [
    ("unknown-model", "nope", [Z_OK], 404, "unknown model 'nope'"),
    (
        "wrong-shape",
        "dcgan",
        [{**Z_OK, "shape": [1, 15], "data": [0.0] * 15}],
        400,
        "must have shape \\(-1, 16\\)",
    ),
    ("wrong-rank", "dcgan", [{**Z_OK, "shape": [16], "data": [0.0] * 16}], 400, "must be 2-D"),
    ("wrong-datatype", "dcgan", [{**Z_OK, "datatype": "FP64"}], 400, "must be float32, got float64"),
    ("bytes-datatype", "dcgan", [{**Z_OK, "datatype": "BYTES"}], 400, "BYTES .* not supported"),
    (
        "count-mismatch",
        "dcgan",
        [{**Z_OK, "data": [0.0] * 15}],
        400,
        "has 15 elements but shape \\[1, 16\\] needs 16",
    ),
    ("strings", "dcgan", [{**Z_OK, "data": ["a"] * 16}], 400, "do not fit datatype"),
    ("unknown-input", "dcgan", [{**Z_OK, "name": "x"}], 400, "no input 'x'; the inputs are \\['z'\\]"),
    (
        "not-multiple",
        "pix2pix",
        [{"name": "image", "shape": [1, 3, 6, 8], "datatype": "FP32", "data": [0.0] * 144}],
        400,
        "multiples of 4, got 6x8",
    ),
    ("zero-batch", "dcgan", [{**Z_OK, "shape": [0, 16], "data": []}], 400, "dimension 0 must be >= 1"),
]


@pytest.mark.parametrize(
    "model,inputs,status,match", [c[1:] for c in BAD_INFER], ids=[c[0] for c in BAD_INFER]
)
def test_bad_infer_requests_get_4xx_with_message(server, model, inputs, status, match):
    import re

    response = _infer_json(server, model, inputs)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert re.search(match, response.json()["error"]), response.json()


def test_malformed_bodies(server, helpers):
    url = f"{server.url}/v2/models/dcgan/infer"
    r = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = httpx.post(url, content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "Content-Type" in r.json()["error"]
    body, headers = helpers.binary_infer_body({"z": np.zeros((1, 16), np.float32)})
    r = httpx.post(url, content=body + b"xx", headers=headers)
    assert r.status_code == 400 and "2 bytes of binary data" in r.json()["error"]
    r = httpx.post(url, content=body[:-4], headers=headers)
    assert r.status_code == 400 and "binary data ends at byte" in r.json()["error"]
    r = httpx.post(url, content=body, headers={**headers, "Inference-Header-Content-Length": "99999"})
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]
    r = httpx.post(url, json={"inputs": [Z_OK], "outputs": [{"name": "nope"}]})
    assert r.status_code == 400 and "has no output 'nope'" in r.json()["error"]
    r = httpx.get(f"{server.url}/v2/models/dcgan/infer")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]
    r = httpx.get(f"{server.url}/no/such/route")
    assert r.status_code == 404 and "no route" in r.json()["error"]


def test_body_size_limit(server):
    big = b"{" + b" " * (1024 * 1024) + b"}"  # the server was started with --max-body-mb 1
    r = httpx.post(
        f"{server.url}/v2/models/dcgan/infer", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "exceeds the limit" in r.json()["error"]


def test_bad_images(server):
    url = f"{server.url}/v1/models/pix2pix/translate"
    r = httpx.post(url, content=b"definitely not a png", headers={"content-type": "image/png"})
    assert r.status_code == 400 and "cannot decode" in r.json()["error"]
    r = httpx.post(url, content=_png(np.zeros((8, 8, 3), np.uint8)), headers={"content-type": "image/gif"})
    assert r.status_code == 415
    # 300x300 > --max-pixels 65536: refused from the header, before decompression
    r = httpx.post(
        url, content=_png(np.zeros((300, 300, 3), np.uint8)), headers={"content-type": "image/png"}
    )
    assert r.status_code == 413 and "more than the limit of 65536" in r.json()["error"]
    r = httpx.post(
        url, content=_png(np.zeros((8, 8, 3), np.uint8), "JPEG"), headers={"content-type": "image/png"}
    )
    assert r.status_code == 400, "a JPEG declared as PNG must not be decoded"


def test_v1_wrong_task_and_bad_params(server):
    r = httpx.post(
        f"{server.url}/v1/models/dcgan/translate", content=b"x", headers={"content-type": "image/png"}
    )
    assert r.status_code == 400 and "/v1/models/dcgan/sample" in r.json()["error"]
    url = f"{server.url}/v1/models/dcgan/sample"
    assert httpx.post(url, params={"n": 0}).status_code == 400
    assert "must be in 1..64" in httpx.post(url, params={"n": 1000}).json()["error"]
    assert "unknown sample parameter 'size'" in httpx.post(url, json={"size": 3}).json()["error"]
    assert "not class-conditional" in httpx.post(url, json={"n": 2, "labels": [0, 1]}).json()["error"]
    assert "must be an integer" in httpx.post(url, params={"seed": "abc"}).json()["error"]


def test_request_timeout_answers_504_and_server_continues(server, loaded_models):
    body = {
        "inputs": [Z_OK],
        "parameters": {"timeout": 1},
    }  # 1 microsecond, as tritonclient's timeout= sends it
    r = httpx.post(f"{server.url}/v2/models/dcgan/infer", json=body)
    assert r.status_code == 504 and "timed out" in r.json()["error"]
    r = _infer_json(server, "dcgan", [Z_OK])
    assert r.status_code == 200


def test_metrics_exposition(server):
    httpx.get(f"{server.url}/v2/health/ready")
    r = httpx.get(f"{server.url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for family, kind in [
        ("ganrt_requests_total", "counter"),
        ("ganrt_request_duration_seconds", "histogram"),
        ("ganrt_batch_size", "histogram"),
        ("ganrt_queue_depth", "gauge"),
        ("ganrt_inference_duration_seconds", "histogram"),
        ("ganrt_rejected_total", "counter"),
    ]:
        assert f"# TYPE {family} {kind}" in text
    assert 'ganrt_requests_total{model="",endpoint="health_ready",code="200"}' in text
    assert 'ganrt_queue_depth{model="dcgan"} 0' in text
    assert 'ganrt_request_duration_seconds_bucket{model="",endpoint="health_ready",le="+Inf"}' in text


# ---- overload, drain ---------------------------------------------------------------------------------------
def test_overload_answers_503_then_keeps_serving(tight_server, slow_translator, helpers):
    srv = tight_server
    image = np.random.default_rng(3).uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32)
    body, headers = helpers.binary_infer_body({"image": image})
    n = 24
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    retry_after: list[str | None] = []

    def worker() -> None:
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            client.get("/v2/health/live")  # connect before the barrier so the requests really overlap
            barrier.wait(timeout=60)
            r = client.post("/v2/models/pix2pix/infer", content=body, headers=headers)
            statuses.append(r.status_code)
            if r.status_code == 503:
                retry_after.append(r.headers.get("retry-after"))
                assert "--max-queue" in r.json()["error"]

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(statuses) == n
    assert set(statuses) <= {200, 503}
    assert statuses.count(503) > 0, "a queue of 1 under 24 simultaneous requests must overflow"
    assert statuses.count(200) > 0
    assert all(value == "1" for value in retry_after)
    # afterwards: still ready, still correct
    assert httpx.get(f"{srv.url}/v2/health/ready").status_code == 200
    r = httpx.post(f"{srv.url}/v2/models/pix2pix/infer", content=body, headers=headers)
    assert r.status_code == 200
    header_len = int(r.headers["inference-header-content-length"])
    out = np.frombuffer(r.content[header_len:], np.float32).reshape(image.shape)
    with ganrt.load(slow_translator) as model:
        np.testing.assert_array_equal(out, model.infer({"image": image})["output"])
    samples = helpers.parse_metrics(httpx.get(f"{srv.url}/metrics").text)
    assert samples['ganrt_rejected_total{model="pix2pix",reason="queue_full"}'] == statuses.count(503)


def test_slow_request_body_gets_408(tight_server):
    import socket

    host, port = tight_server.hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v2/models/pix2pix/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )  # then nothing: the server must not wait forever (--timeout-s 3)
        t0 = time.monotonic()
        reply = sock.recv(65536)
        waited = time.monotonic() - t0
        for _ in range(10):  # the JSON body may arrive in a second segment
            head, _, body = reply.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(body) >= length:
                break
            reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"not received within 3 s" in reply
    assert 2.5 < waited < 30


def test_sigterm_drains_in_flight_requests(start_server, slow_translator, helpers):
    srv = start_server([f"pix2pix={slow_translator}", "--max-batch", "1"])
    image = np.random.default_rng(4).uniform(-1, 1, (8, 3, 128, 128)).astype(np.float32)
    body, headers = helpers.binary_infer_body({"image": image})
    outcomes: list[object] = []

    def worker() -> None:
        try:
            r = httpx.post(f"{srv.url}/v2/models/pix2pix/infer", content=body, headers=headers, timeout=60)
            outcomes.append(r.status_code)
        except httpx.ConnectError:
            outcomes.append("refused")  # arrived after the listener closed: allowed
        except httpx.HTTPError as exc:
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    in_flight = 0.0
    for _ in range(2000):  # bounded poll, ~10 s at most
        samples = helpers.parse_metrics(httpx.get(f"{srv.url}/metrics").text)
        in_flight = samples.get('ganrt_requests_in_flight{model="pix2pix"}', 0.0)
        if in_flight >= 2:
            break
    assert in_flight >= 2, "requests never overlapped; cannot test draining"
    status = srv.stop()
    for t in threads:
        t.join(timeout=60)
    assert status == 0, srv.log()
    # arrived after SIGTERM: 503 + Retry-After while draining, or refused once the listener closed
    assert all(o in (200, 503, "refused") for o in outcomes), outcomes
    assert outcomes.count(200) >= in_flight, "a request in flight at SIGTERM was not answered"


def test_readiness_json_bodies(server):
    r = httpx.get(f"{server.url}/v2/models/dcgan/ready")
    assert r.status_code == 200 and json.loads(r.content) == {"name": "dcgan", "ready": True}
    r = httpx.get(f"{server.url}/v2/models/nope")
    assert r.status_code == 404 and "this server serves: dcgan, pix2pix" in r.json()["error"]
