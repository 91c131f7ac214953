"""``ganrt serve`` on CPU: latency percentiles and throughput vs concurrency, dynamic batching on and off.

Models: a DCGAN generator (ngf 64, z of 100 -> 64x64) and a Pix2Pix U-Net (unet_256, ngf 64, 256x256), random
weights, written as run directories and exported with ``ganrt.export`` exactly as a trained run would be.

For each model and mode (no batching: ``--max-batch 1``; batching: ``--max-batch 8 --max-delay-ms 2``; the
same with ``--instances 2``, two model copies with half the threads each) one ``ganrt serve`` subprocess is
started; a closed-loop load generator in this process keeps C requests in flight (C = 1, 4, 16, 64) of
KServe v2 ``infer`` calls with binary tensor data (z (1, 100) -> image, or image (1, 3, 256, 256) ->
image). After ``--warmup`` a window of ``--duration`` seconds opens (kept open until at least max(8, C)
requests completed in it, capped by ``--max-run``); throughput = completions inside the window / its length,
latency percentiles over the requests issued inside it. The client is a minimal keep-alive HTTP/1.1 client
on asyncio so that load generation costs the shared cores as little as possible. The first response of every
server is checked bit-exactly against ``ganrt.load(...).infer`` on the same input.

Overhead at concurrency 1 = p50 of the served request minus p50 of the bare ``model.infer`` call on the same
input (same threads), measured right before. All modes' servers run at once and the measurements interleave
(for each C, every mode in turn), so drifting load on a shared machine hits the modes alike. Executed batch
sizes come from the servers' ``/metrics``.

Targets: at concurrency 16 with batching, DCGAN throughput >= 3x the concurrency-1 unbatched throughput;
server overhead at concurrency 1 <= 3 ms p50 above the bare model call.

Writes benchmarks/results/serve_cpu.json and serve_cpu.png.
Usage: python benchmarks/serve.py [--duration 3] [--max-run 60] [--concurrency 1 4 16 64]
                                  [--models dcgan pix2pix] [--workdir DIR] [--output PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

import ganrt
from ganrt.utils import atomic_path, atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "serve_cpu.json"
TARGET_BATCHING_SPEEDUP = 3.0  # DCGAN: c=16 batched throughput / c=1 unbatched throughput
TARGET_OVERHEAD_MS = 3.0  # p50 above the bare model call at concurrency 1
# server flags per mode; every mode uses all cores (one instance with every thread, or two with half each)
MODES: dict[str, list[str]] = {
    "no_batching": ["--max-batch", "1"],
    "batching": ["--max-batch", "8", "--max-delay-ms", "2"],
    "batching_2_instances": ["--max-batch", "8", "--max-delay-ms", "2", "--instances", "2"],
}
MODE_LABELS = {
    "no_batching": "no batching",
    "batching": "batching (max 8, 2 ms)",
    "batching_2_instances": "batching, 2 instances",
}
MODE_COLORS = {"no_batching": "tab:orange", "batching": "tab:blue", "batching_2_instances": "tab:green"}
MODEL_SPECS: dict[str, dict[str, Any]] = {
    "dcgan": {"family": "dcgan", "image_size": 64, "input": ("z", (1, 100))},
    "pix2pix": {"family": "pix2pix", "image_size": 256, "input": ("image", (1, 3, 256, 256))},
}


# ---- artifacts ---------------------------------------------------------------------------------------------
def build_artifact(name: str, workdir: Path) -> Path:
    """Run directory with random weights -> ONNX through ganrt.export (reused when already there)."""
    import torch

    from ganrt.export import export
    from ganrt.models import DCGANDiscriminator, DCGANGenerator, NLayerDiscriminator, UnetGenerator, save_run

    run_dir = workdir / name
    artifact = run_dir / "export" / f"{name}.onnx"
    if artifact.exists():
        return artifact
    torch.manual_seed(0)
    spec = MODEL_SPECS[name]
    if name == "dcgan":
        nets = {
            "G": DCGANGenerator(latent_dim=100, channels=3, image_size=64, ngf=64),
            "D": DCGANDiscriminator(channels=3, image_size=64, ndf=64),
        }
    else:
        nets = {
            "G": UnetGenerator(in_channels=3, out_channels=3, num_downs=8, ngf=64),
            "D": NLayerDiscriminator(6, ndf=64),
        }
    save_run(
        run_dir,
        {"family": spec["family"], "image_size": spec["image_size"], "in_channels": 3, "out_channels": 3},
        nets,
    )
    result = export(run_dir, format="onnx", output=artifact, progress=False)
    return Path(result.path)


# ---- the load generator ------------------------------------------------------------------------------------
def infer_body(input_name: str, array: np.ndarray) -> tuple[bytes, int]:
    """KServe v2 binary-data request: JSON header + raw little-endian tensor bytes."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": input_name,
                    "shape": list(array.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": array.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return header + array.tobytes(), len(header)


class Connection:
    """One keep-alive HTTP/1.1 connection (requests are sequential on it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        response_headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            response_headers[key.strip().lower()] = value.strip()
        content = await self.reader.readexactly(int(response_headers.get("content-length", "0")))
        return status, response_headers, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def closed_loop(
    host: str,
    port: int,
    path: str,
    bodies: list[tuple[bytes, int]],
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    max_run_s: float,
) -> dict[str, Any]:
    """``concurrency`` clients each sending back-to-back requests.

    The window opens after ``warmup_s`` and stays open for ``duration_s``, longer if needed until
    ``concurrency`` requests (at least 8) completed inside it, but never past ``max_run_s``; then the clients
    stop issuing and the requests in flight finish. Throughput counts completions inside the window (steady
    state, independent of how long one round of C requests takes); latency covers requests issued inside it.
    """
    latencies: list[float] = []
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    hard_stop = start + max_run_s
    min_done = max(8, concurrency)
    done_in_window = 0
    window_end: list[float] = []

    def keep_issuing() -> bool:
        now = loop.time()
        if window_end:
            return False
        if now < stop_at or (done_in_window < min_done and now < hard_stop):
            return True
        window_end.append(now)
        return False

    async def client(i: int) -> None:
        nonlocal done_in_window
        conn = Connection(host, port)
        k = i
        headers = {"Content-Type": "application/octet-stream"}
        try:
            while keep_issuing():
                body, header_len = bodies[k % len(bodies)]
                k += concurrency
                t0 = loop.time()
                headers["Inference-Header-Content-Length"] = str(header_len)
                status, _, content = await conn.request("POST", path, body, headers)
                t1 = loop.time()
                if status != 200:
                    errors.append(f"{status}: {content[:200]!r}")
                    continue
                if t0 >= measure_from:
                    latencies.append(t1 - t0)
                if t1 >= measure_from and not window_end:
                    done_in_window += 1
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    window = (window_end[0] if window_end else loop.time()) - measure_from
    return {
        "latencies": latencies,
        "errors": errors,
        "window_s": window,
        "completed_in_window": done_in_window,
    }


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {
            "p50_ms": float("nan"),
            "p90_ms": float("nan"),
            "p99_ms": float("nan"),
            "mean_ms": float("nan"),
        }
    ms = np.asarray(values) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


# ---- the server --------------------------------------------------------------------------------------------
class Server:
    """``python -m ganrt serve`` subprocess on a free port; stopped by its pid with SIGTERM."""

    def __init__(self, name: str, artifact: Path, flags: list[str], log_path: Path) -> None:
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ganrt",
                "serve",
                f"{name}={artifact}",
                "--port",
                "0",
                "--max-queue",
                "1024",
                "--timeout-s",
                "300",
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None

        def pump() -> None:
            for out in iter(stdout.readline, b""):
                lines.put(out)
            lines.put(b"")  # EOF: the process exited (before announcing its address, if this comes first)

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = lines.get(timeout=300).decode()
        except queue.Empty:
            line = ""
        if "listening on http://" not in line:
            self.stop()
            raise RuntimeError(f"ganrt serve did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
        url = line.split("listening on http://", 1)[1].split()[0]
        host, port = url.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def metrics(self) -> dict[str, float]:
        async def fetch() -> bytes:
            conn = Connection(self.host, self.port)
            try:
                return (await conn.request("GET", "/metrics"))[2]
            finally:
                conn.close()

        samples = {}
        for line in asyncio.run(fetch()).decode().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                samples[key] = float(value)
        return samples

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode


# ---- measurements ------------------------------------------------------------------------------------------
def bare_latency(model: Any, feeds: dict[str, np.ndarray], duration_s: float) -> dict[str, float]:
    """p50/p90/p99 of the bare ``model.infer`` call (batch 1), the reference for the server's overhead."""
    from ganrt.bench import interleaved

    times = interleaved({"bare": lambda: model.infer(feeds)}, seconds=duration_s, warmup=3)["bare"]
    return {**percentiles(times), "calls": len(times)}


def check_first_response(server: Server, path: str, body: tuple[bytes, int], expected: np.ndarray) -> None:
    async def one() -> tuple[int, dict[str, str], bytes]:
        conn = Connection(server.host, server.port)
        try:
            return await conn.request(
                "POST", path, body[0], {"Inference-Header-Content-Length": str(body[1])}
            )
        finally:
            conn.close()

    status, headers, content = asyncio.run(one())
    if status != 200:
        raise RuntimeError(f"first request failed with {status}: {content[:300]!r}")
    offset = int(headers["inference-header-content-length"])
    got = np.frombuffer(content[offset:], np.float32).reshape(expected.shape)
    if not np.array_equal(got, expected):
        raise RuntimeError(
            f"served output differs from ganrt.load(...).infer: max |diff| "
            f"{float(np.abs(got - expected).max()):.3g}"
        )


def run_model(
    name: str, artifact: Path, args: argparse.Namespace, logs: Path, progress: Progress
) -> dict[str, Any]:
    input_name, shape = MODEL_SPECS[name]["input"]
    rng = np.random.default_rng(0)
    arrays = [
        (rng.standard_normal(shape) if name == "dcgan" else rng.uniform(-1, 1, shape)).astype(np.float32)
        for _ in range(8)
    ]
    bodies = [infer_body(input_name, a) for a in arrays]
    path = f"/v2/models/{name}/infer"
    model = ganrt.load(artifact)
    expected = model.infer({input_name: arrays[0]})
    output_name = model.outputs[0].name
    record: dict[str, Any] = {
        "artifact": str(artifact),
        "input": {input_name: list(shape)},
        "info": {k: model.info()[k] for k in ("backend", "device", "threads")},
        "bare": {},
        "runs": [],
    }
    task = progress.add_task(f"{name}", total=len(MODES) * len(args.concurrency))
    servers: dict[str, Server] = {}
    try:
        # every mode's server up at once (idle ones cost nothing); the measurements interleave the modes so
        # that drifting load on a shared machine hits all of them alike
        for mode, flags in MODES.items():
            servers[mode] = Server(name, artifact, flags, logs / f"{name}_{mode}.log")
            check_first_response(servers[mode], path, bodies[0], expected[output_name])
        for c in args.concurrency:
            for mode, server in servers.items():
                if c == 1 and mode in ("no_batching", "batching"):
                    # the bare call right before, same input, same threads: the reference for the overhead
                    record["bare"][mode] = bare_latency(model, {input_name: arrays[0]}, args.bare_duration)
                before = server.metrics()
                result = asyncio.run(
                    closed_loop(
                        server.host, server.port, path, bodies, c, args.duration, args.warmup, args.max_run
                    )
                )
                after = server.metrics()
                calls_key = f'ganrt_batch_size_count{{model="{name}"}}'
                rows_key = f'ganrt_batch_size_sum{{model="{name}"}}'
                calls = after.get(calls_key, 0) - before.get(calls_key, 0)
                rows = after.get(rows_key, 0) - before.get(rows_key, 0)
                done = result["completed_in_window"]
                record["runs"].append(
                    {
                        "mode": mode,
                        "concurrency": c,
                        "requests": len(result["latencies"]),
                        "window_s": result["window_s"],
                        "completed_in_window": done,
                        "errors": len(result["errors"]),
                        "error_examples": result["errors"][:3],
                        "throughput_rps": done / result["window_s"] if done else float("nan"),
                        **percentiles(result["latencies"]),
                        "mean_executed_batch": rows / calls if calls else float("nan"),
                    }
                )
                progress.advance(task)
    finally:
        model.close()
        statuses = {mode: server.stop() for mode, server in servers.items()}
    failed = {mode: status for mode, status in statuses.items() if status != 0}
    if failed:
        tails = "\n".join(
            f"--- {mode}:\n" + (logs / f"{name}_{mode}.log").read_text(errors="replace")[-2000:]
            for mode in failed
        )
        raise RuntimeError(f"ganrt serve exited with {failed}:\n{tails}")
    return record


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    def run(model: str, mode: str, c: int) -> dict[str, Any] | None:
        for r in results["models"].get(model, {}).get("runs", []):
            if r["mode"] == mode and r["concurrency"] == c:
                return r
        return None

    targets: dict[str, Any] = {}
    base = run("dcgan", "no_batching", 1)
    for mode in ("batching", "batching_2_instances"):
        batched = run("dcgan", mode, 16)
        if base and batched:
            ratio = batched["throughput_rps"] / base["throughput_rps"]
            targets[f"dcgan_c16_{mode}_vs_c1_no_batching"] = {
                "c1_no_batching_rps": base["throughput_rps"],
                "c16_rps": batched["throughput_rps"],
                "ratio": ratio,
                "target": TARGET_BATCHING_SPEEDUP,
                "met": bool(ratio >= TARGET_BATCHING_SPEEDUP),
            }
    for model, record in results["models"].items():
        for mode in ("no_batching", "batching"):  # the in-process bare model has the same threads as these
            r = run(model, mode, 1)
            if r is None:
                continue
            overhead = r["p50_ms"] - record["bare"][mode]["p50_ms"]
            targets[f"{model}_overhead_c1_{mode}_ms"] = {
                "served_p50_ms": r["p50_ms"],
                "bare_p50_ms": record["bare"][mode]["p50_ms"],
                "overhead_p50_ms": overhead,
                "target": TARGET_OVERHEAD_MS,
                "met": bool(overhead <= TARGET_OVERHEAD_MS),
            }
    return targets


def markdown(data: dict[str, Any]) -> str:
    """README table: throughput and latency per model, mode and concurrency; then the targets."""
    config, machine = data.get("config", {}), data.get("machine", {})
    intro = (
        f"`ganrt serve` on {machine.get('cpu') or machine.get('platform', '?')} ({machine.get('cpus', '?')} "
        f"CPUs): closed-loop clients, {config.get('request', 'KServe v2 infer')}, "
        f"{config.get('duration_s', '?')} s per point. Reproduce: `python benchmarks/serve.py`."
    )
    lines = [
        intro,
        "",
        "| model | mode | concurrency | req/s | p50 ms | p90 ms | p99 ms | mean executed batch | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, record in data["models"].items():
        for r in record["runs"]:
            lines.append(
                f"| {name} | {MODE_LABELS.get(r['mode'], r['mode'])} | {r['concurrency']} | "
                f"{r['throughput_rps']:.1f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['mean_executed_batch']:.2f} | {r['errors']} |"
            )
    lines += ["", "| target | measured | required | met |", "|---|---|---|---|"]
    for key, t in (data.get("targets") or {}).items():
        if "ratio" in t:
            measured, required = f"{t['ratio']:.2f}×", f"≥ {t['target']}×"
        else:
            measured, required = f"{t['overhead_p50_ms']:.2f} ms", f"≤ {t['target']} ms"
        lines.append(f"| {key} | {measured} | {required} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        runs = results["models"][model]["runs"]
        ax_tp, ax_lat = axes[row]
        for mode in MODES:
            rs = sorted((r for r in runs if r["mode"] == mode), key=lambda r: r["concurrency"])
            if not rs:
                continue
            cs = [r["concurrency"] for r in rs]
            label, color = MODE_LABELS[mode], MODE_COLORS[mode]
            ax_tp.plot(cs, [r["throughput_rps"] for r in rs], "o-", color=color, label=label)
            ax_lat.plot(cs, [r["p50_ms"] for r in rs], "o-", color=color, label=f"p50, {label}")
            ax_lat.plot(cs, [r["p99_ms"] for r in rs], "s--", color=color, alpha=0.6, label=f"p99, {label}")
        for ax in (ax_tp, ax_lat):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({r["concurrency"] for r in runs}))
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel("concurrent clients")
            ax.grid(True, alpha=0.3)
        ax_tp.set_ylabel("throughput (requests/s)")
        ax_lat.set_ylabel("latency (ms)")
        ax_lat.set_yscale("log")
        bare = results["models"][model]["bare"]["no_batching"]["p50_ms"]
        ax_lat.axhline(bare, color="gray", lw=1, ls=":", label=f"bare model.infer p50 ({bare:.1f} ms)")
        ax_tp.set_title(f"{model}: throughput")
        ax_lat.set_title(f"{model}: latency")
        ax_tp.legend(fontsize=8)
        ax_lat.legend(fontsize=7)
    fig.suptitle(
        f"ganrt serve on CPU ({results['machine']['cpus']} cores), KServe v2 binary infer, batch 1/request"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODEL_SPECS), default=["dcgan", "pix2pix"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 16, 64])
    parser.add_argument(
        "--duration", type=float, default=3.0, help="measured seconds per (model, mode, concurrency)"
    )
    parser.add_argument(
        "--warmup", type=float, default=0.5, help="unmeasured seconds before each measurement"
    )
    parser.add_argument(
        "--max-run",
        type=float,
        default=60.0,
        help="cap in seconds on one measurement when slow requests need longer than --duration",
    )
    parser.add_argument("--bare-duration", type=float, default=2.0, help="seconds of bare model.infer timing")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where run directories and ONNX exports go (default: a temporary directory); "
        "existing exports there are reused",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ganrt-bench-serve-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        logs = Path(tmp)
        results: dict[str, Any] = {
            "benchmark": "serve",
            "ganrt_version": ganrt.__version__,
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average_start": list(os.getloadavg()),
            },
            "config": {
                "modes": MODES,
                "concurrency": args.concurrency,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "request": "POST /v2/models/{name}/infer, binary data, batch 1",
            },
            "models": {},
        }
        with Progress() as progress:
            for name in args.models:
                build = progress.add_task(f"export {name}", total=1)
                artifact = build_artifact(name, workdir)
                progress.advance(build)
                results["models"][name] = run_model(name, artifact, args, logs, progress)
        results["machine"]["load_average_end"] = list(os.getloadavg())
    results["targets"] = summarize(results)

    atomic_write(args.output, json.dumps(results, indent=2) + "\n")
    plot(results, args.output.with_suffix(".png"))

    columns = ("req/s", "p50 ms", "p90 ms", "p99 ms")
    print(f"{'model':8} {'mode':20} {'C':>3} " + " ".join(f"{c:>8}" for c in columns) + f" {'batch':>6} err")
    for name, record in results["models"].items():
        for r in record["runs"]:
            print(
                f"{name:8} {r['mode']:20} {r['concurrency']:>3} {r['throughput_rps']:>8.1f} "
                f"{r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{r['mean_executed_batch']:>6.2f} {r['errors']}"
            )
    for key, t in results["targets"].items():
        value = t.get("ratio", t.get("overhead_p50_ms"))
        print(f"target {key}: {value:.2f} (target {t['target']}) -> {'met' if t['met'] else 'NOT met'}")
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
