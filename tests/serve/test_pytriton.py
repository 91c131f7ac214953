"""``ganrt serve --backend pytriton``: the same models behind a real Triton server, the same client code."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pytriton") is None,
    reason="nvidia-pytriton is not installed (optional extra `ganrt[pytriton]`; it pins numpy<2, so it lives "
    "in its own environment)",
)


def _free_port_triple() -> int:
    """A port P with P, P+1, P+2 free (HTTP, gRPC, metrics)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 2 > 65535:
            continue
        try:
            for p in (port + 1, port + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no three consecutive free ports found")


def test_pytriton_serves_the_same_results(onnx_models, loaded_models, tmp_path):
    import tritonclient.http as http

    port = _free_port_triple()
    log = open(tmp_path / "pytriton.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ganrt",
            "serve",
            f"dcgan={onnx_models['dcgan']}",
            "--backend",
            "pytriton",
            "--port",
            str(port),
            "--instances",
            "2",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        client = http.InferenceServerClient(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.is_model_ready("dcgan"):
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert proc.poll() is None, (tmp_path / "pytriton.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "Triton did not become ready within 120 s"
            time.sleep(0.5)
        meta = client.get_model_metadata("dcgan")
        assert [i["name"] for i in meta["inputs"]] == ["z"]
        z = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
        tensor = http.InferInput("z", list(z.shape), "FP32")
        tensor.set_data_from_numpy(z)
        got = client.infer("dcgan", [tensor]).as_numpy("image")
        np.testing.assert_allclose(got, loaded_models["dcgan"].infer({"z": z})["image"], atol=1e-6)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
