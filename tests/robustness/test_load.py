"""Load: 64 concurrent clients x 500 requests each against a real ``ganrt serve`` on loopback, every answer
checked, zero errors; the latency percentiles and the throughput are printed with the test's result.

Each client is an asyncio task holding one keep-alive HTTP/1.1 connection (a plain socket protocol, so 64
clients fit in one process next to the server on a 2-core machine) and sending KServe v2 binary infer requests
to a tiny DCGAN-style sampler, whose answers are compared with the model's own output.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from tests.robustness.conftest import LATENT
from tests.serve.conftest import ServerProcess, binary_infer_body

CLIENTS = 64
REQUESTS = 500


async def _client(
    host: str, port: int, request: bytes, expected: bytes, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(REQUESTS):
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != b"200":
                errors.append(f"{status.decode()}: {body[:200]!r}")
            elif not body.endswith(expected):
                errors.append("wrong output bytes")
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.slow
def test_64_clients_500_requests_each(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import ganrt

    z = np.random.default_rng(0).standard_normal((1, LATENT)).astype(np.float32)
    with ganrt.load(models["dcgan_onnx"]) as model:
        expected = model.infer({"z": z})["image"].astype("<f4").tobytes()
    body, headers = binary_infer_body({"z": z})
    proc = ServerProcess(
        [f"dcgan={models['dcgan_onnx']}", "--max-batch", "32", "--max-delay-ms", "2"], tmp=tmp_path
    )
    try:
        host, port = proc.hostport.rsplit(":", 1)
        request = (
            f"POST /v2/models/dcgan/infer HTTP/1.1\r\nHost: {proc.hostport}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        latencies: list[float] = []
        errors: list[str] = []

        async def run_all() -> None:
            await asyncio.gather(
                *(_client(host, int(port), request, expected, latencies, errors) for _ in range(CLIENTS))
            )

        start = time.perf_counter()
        asyncio.run(run_all())
        duration = time.perf_counter() - start
    finally:
        status = proc.stop()
    assert status == 0, proc.log()
    assert errors == [], f"{len(errors)} errors, first: {errors[:3]}"
    assert len(latencies) == CLIENTS * REQUESTS
    p50, p99 = np.percentile(np.asarray(latencies) * 1e3, [50, 99])
    with capsys.disabled():
        print(
            f"\nload: {CLIENTS} clients x {REQUESTS} requests = {len(latencies)} in {duration:.1f} s "
            f"({len(latencies) / duration:.0f} req/s), 0 errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
