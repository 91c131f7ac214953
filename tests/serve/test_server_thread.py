"""The embedded server on a background thread of the calling process (notebooks, benchmarks, tests)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from ganrt.serve import ServeConfig, ServerThread


def test_server_thread_serves_and_stops(loaded_models):
    model = loaded_models["dcgan"]
    z = np.linspace(-1, 1, 32, dtype=np.float32).reshape(2, 16)
    with ServerThread({"g": model}, config=ServeConfig(max_batch=4)) as srv:
        assert srv.port > 0 and srv.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{srv.url}/v2/health/ready").status_code == 200
        body = {"inputs": [{"name": "z", "shape": [2, 16], "datatype": "FP32", "data": z.ravel().tolist()}]}
        r = httpx.post(f"{srv.url}/v2/models/g/infer", json=body)
        assert r.status_code == 200
        out = r.json()["outputs"][0]
        assert out["shape"] == [2, 3, 32, 32] and out["datatype"] == "FP32"
        got = np.asarray(out["data"], np.float32).reshape(out["shape"])
        np.testing.assert_allclose(got, model.infer({"z": z})["image"], atol=1e-7)
        url = srv.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v2/health/live", timeout=2)
    # the caller's model stays open: whoever loaded it closes it
    assert model.infer({"z": z})["image"].shape == (2, 3, 32, 32)
