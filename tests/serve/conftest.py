"""Tiny real models for the serving tests: a DCGAN-style sampler (z -> 32x32 image) and an image translator.

Built with torch, exported to ONNX (dynamo exporter, weights inline) with ganrt metadata, loaded through
``ganrt.load`` exactly as a user's exported artifact would be. Session-scoped: exported once per test run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

LATENT = 16
SAMPLE_SIZE = 32
MULTIPLE = 4


def _export(module, example, path: Path, *, input_name: str, dynamic: dict, props: dict[str, str]) -> Path:
    import torch

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # torch.export deep-copies pytree specs through a deprecated typing_extensions path (FutureWarning)
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=[input_name],
            output_names=["output" if input_name == "image" else "image"],
            dynamic_shapes=({**dynamic},),
        )
    for key, value in props.items():
        program.model.metadata_props[key] = value
    program.save(str(path))
    return path


def build_sampler(path: Path) -> Path:
    """z: (N, 16) float32 -> image: (N, 3, 32, 32) float32 in [-1, 1]."""
    import torch
    from torch import nn

    from ganrt.artifact import ArtifactMetadata

    torch.manual_seed(0)

    class Sampler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.ConvTranspose2d(LATENT, 32, 4, 1, 0),
                nn.ReLU(),  # 4x4
                nn.ConvTranspose2d(32, 16, 4, 2, 1),
                nn.ReLU(),  # 8x8
                nn.ConvTranspose2d(16, 8, 4, 2, 1),
                nn.ReLU(),  # 16x16
                nn.ConvTranspose2d(8, 3, 4, 2, 1),
                nn.Tanh(),  # 32x32
            )

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.net(z[:, :, None, None])

    md = ArtifactMetadata(
        family="dcgan",
        task="sample",
        in_channels=3,
        out_channels=3,
        image_size=SAMPLE_SIZE,
        multiple=1,
        latent_dim=LATENT,
    )
    batch = torch.export.Dim("batch", min=1, max=1024)
    return _export(
        Sampler(), torch.randn(2, LATENT), path, input_name="z", dynamic={0: batch}, props=md.to_props()
    )


def build_translator(path: Path, *, width: int = 8) -> Path:
    """image: (N, 3, H, W) float32, H and W multiples of 4 -> output: same shape, in [-1, 1]."""
    import torch
    from torch import nn

    from ganrt.artifact import ArtifactMetadata

    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, width, 3, 1, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 2 * width, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(width, 3, 4, 2, 1),
        nn.Tanh(),
    )
    md = ArtifactMetadata(
        family="pix2pix", task="translate", in_channels=3, out_channels=3, image_size=64, multiple=MULTIPLE
    )
    d = torch.export.Dim
    dynamic = {
        0: d("batch", min=1, max=1024),
        2: MULTIPLE * d("h", min=1, max=1024),
        3: MULTIPLE * d("w", min=1, max=1024),
    }
    return _export(
        net, torch.randn(2, 3, 64, 64), path, input_name="image", dynamic=dynamic, props=md.to_props()
    )


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"dcgan": sampler.onnx, "pix2pix": translator.onnx} exported once per session."""
    root = tmp_path_factory.mktemp("serve_models")
    return {
        "dcgan": build_sampler(root / "dcgan.onnx"),
        "pix2pix": build_translator(root / "pix2pix.onnx"),
    }


class ServerProcess:
    """``python -m ganrt serve ...`` in a subprocess on a free port; stopped by its own pid (SIGTERM, then
    kill)."""

    def __init__(self, args: list[str], *, tmp: Path, startup_s: float = 120.0) -> None:
        import queue
        import subprocess
        import sys
        import threading

        self.log_path = tmp / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ganrt", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def pump() -> None:
            for out in iter(stdout.readline, b""):
                lines.put(out)
            lines.put(b"")  # EOF: the process exited (before announcing its address, if this comes first)

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = lines.get(timeout=startup_s).decode()
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"ganrt serve did not start within {startup_s} s:\n{self.log()}") from None
        if "listening on http://" not in line:
            self.stop()
            raise RuntimeError(
                f"ganrt serve exited or printed {line!r} instead of its address:\n{self.log()}"
            )
        self.url = line.split("listening on ", 1)[1].split()[0]
        self.hostport = self.url.removeprefix("http://")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (graceful drain) and wait; kill if it hangs. Returns the exit status."""
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode


def binary_infer_body(inputs: dict, *, binary_output: bool = True) -> tuple[bytes, dict[str, str]]:
    """A KServe v2 infer body using the binary-data extension, built by hand (independent of tritonclient)."""
    import json

    import numpy as np

    from ganrt.serve.protocol import datatype_of

    head = {"inputs": [], "parameters": {"binary_data_output": binary_output}}
    blobs = []
    for name, array in inputs.items():
        array = np.ascontiguousarray(array)
        blob = array.tobytes()
        head["inputs"].append(
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype_of(array.dtype),
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    header = json.dumps(head).encode()
    return header + b"".join(blobs), {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (sample lines only)."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


@pytest.fixture(scope="session")
def slow_translator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wider translator (64 channels): slow enough per request that concurrent requests pile up even on a
    fast machine, so queue overflow and draining are exercised deterministically."""
    return build_translator(tmp_path_factory.mktemp("serve_slow") / "pix2pix_wide.onnx", width=64)


@pytest.fixture(scope="session")
def loaded_models(onnx_models: dict[str, Path]):
    """The test models loaded in this process with ``ganrt.load``: the reference the server must match.

    ONNX Runtime here and in the shared ``server``: its CPU kernels give bit-identical rows whatever the batch
    and thread count, so merged batches and the server's split threads can be checked for exact equality
    (OpenVINO differs in the last bits; the backend selection has its own serve test)."""
    import ganrt

    models = {name: ganrt.load(path, backend="onnxruntime") for name, path in onnx_models.items()}
    yield models
    for model in models.values():
        model.close()


@pytest.fixture(scope="session")
def server(onnx_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """One ``ganrt serve`` subprocess shared by the API tests: both models, two instances each, small
    body/pixel limits."""
    proc = ServerProcess(
        [
            f"dcgan={onnx_models['dcgan']}",
            f"pix2pix={onnx_models['pix2pix']}",
            "--max-batch",
            "8",
            "--max-delay-ms",
            "5",
            "--max-body-mb",
            "1",
            "--max-pixels",
            str(256 * 256),
            "--instances",
            "2",
            "--runtime",
            "onnxruntime",
        ],
        tmp=tmp_path_factory.mktemp("server"),
    )
    yield proc
    status = proc.stop()
    assert status == 0, f"ganrt serve exited with {status}:\n{proc.log()}"


@pytest.fixture(scope="session")
def tight_server(slow_translator: Path, tmp_path_factory: pytest.TempPathFactory):
    """The slow translator behind a queue of 1, no batching and a 3 s timeout (overload, slow clients)."""
    proc = ServerProcess(
        [f"pix2pix={slow_translator}", "--max-queue", "1", "--max-batch", "1", "--timeout-s", "3"],
        tmp=tmp_path_factory.mktemp("tight_server"),
    )
    yield proc
    status = proc.stop()
    assert status == 0, f"ganrt serve exited with {status}:\n{proc.log()}"


@pytest.fixture
def start_server(tmp_path: Path):
    """Factory for extra servers with their own flags; each is stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(args: list[str]) -> ServerProcess:
        folder = tmp_path / f"server{len(started)}"
        folder.mkdir()
        proc = ServerProcess(args, tmp=folder)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def helpers():
    """Request/metrics helpers shared by the test modules."""
    import types

    return types.SimpleNamespace(binary_infer_body=binary_infer_body, parse_metrics=parse_metrics)
