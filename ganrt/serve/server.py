"""Running the embedded server: model name resolution, uvicorn with a graceful drain, and a thread handle.

Shutdown order on SIGINT/SIGTERM (or :meth:`ServerThread.stop`): readiness turns 503 at once so a load
balancer stops routing here, and new inference requests get 503 + Retry-After; the socket stays open while
requests are in flight (so health checks read 503, not "connection refused"), bounded by ``timeout_s`` + 5 s;
then uvicorn stops accepting connections and lets requests already received finish; then the ASGI lifespan
drains every batch queue. A second signal exits at once. Models are closed by
whoever loaded them (``ganrt serve`` does so on exit).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganrt.serve.config import ServeConfig

if TYPE_CHECKING:
    from ganrt.runtime import Model

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SUFFIXES = (".onnx", ".engine", ".plan", ".safetensors", ".pth", ".pt")


def model_name_for(path: Path) -> str:
    """Default served name: the file stem (``g.onnx`` -> ``g``), the run directory's name, or for a file in a
    Triton model repository (``REPO/<name>/<version>/model.onnx``) the name Triton serves it under."""
    if path.stem == "model" and path.parent.name.isdigit() and path.parent.parent.name:
        return path.parent.parent.name
    name = path.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def parse_model_specs(specs: Sequence[str]) -> dict[str, Path]:
    """``NAME=PATH`` or ``PATH`` arguments -> {name: path}; raises ``ValueError`` naming the bad argument."""
    models: dict[str, Path] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if sep and _NAME.match(name):
            path = Path(rest)
        else:
            path = Path(spec)
            name = model_name_for(path)
        if not _NAME.match(name):
            raise ValueError(
                f"model name {name!r} (from {spec!r}) must match {_NAME.pattern}; give one as NAME=PATH"
            )
        if name in models:
            raise ValueError(
                f"model name {name!r} is used twice ({models[name]} and {path}); name them apart as NAME=PATH"
            )
        models[name] = path
    return models


def _uvicorn_server(
    app: Any,
    host: str,
    port: int,
    config: ServeConfig,
    log_level: str,
    on_started: Callable[[str, int], None] | None,
) -> Any:
    import uvicorn

    state = app.state.ganrt

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            state.draining = True  # readiness answers 503 before connections start closing
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after shutting down; a completed drain is a clean exit (status 0)
            self._captured_signals.clear()

        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            # Keep listening while requests are in flight, so a balancer polling /v2/health/ready reads 503
            # (and new requests get 503 + Retry-After) instead of "connection refused"; then uvicorn's own
            # shutdown closes the socket and finishes what is left.
            deadline = time.monotonic() + config.timeout_s + 5
            while state.in_flight() > 0 and time.monotonic() < deadline and not self.force_exit:
                await asyncio.sleep(0.02)
            await super().shutdown(sockets)

        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_started is not None:
                bound = self.servers[0].sockets[0].getsockname()
                on_started(bound[0], bound[1])

    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=int(config.timeout_s) + 5,
        limit_concurrency=config.max_connections,
    )
    return DrainingServer(uv_config)


def serve(
    models: Mapping[str, Model | Sequence[Model]],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig | None = None,
    log_level: str = "warning",
    on_started: Callable[[str, int], None] | None = None,
) -> None:
    """Serve ``models`` (name -> model, or list of instances) until SIGINT/SIGTERM, then drain and return.

    ``port=0`` picks a free port; ``on_started(host, port)`` is called once the socket listens.
    """
    from ganrt.serve.app import create_app

    config = config or ServeConfig()
    server = _uvicorn_server(create_app(models, config), host, port, config, log_level, on_started)
    server.run()


class ServerThread:
    """The embedded server on a background thread of this process (for notebooks, tests and benchmarks).

    >>> with ServerThread({"g": ganrt.load("g.onnx")}) as srv:   # doctest: +SKIP
    ...     srv.url  # 'http://127.0.0.1:40123'
    """

    def __init__(
        self,
        models: Mapping[str, Model | Sequence[Model]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: ServeConfig | None = None,
        log_level: str = "warning",
    ) -> None:
        from ganrt.serve.app import create_app

        self.config = config or ServeConfig()
        self.app = create_app(models, self.config)
        self._bound = threading.Event()
        self.host = host
        self.port = port
        self._server = _uvicorn_server(self.app, host, port, self.config, log_level, self._on_started)
        self._thread = threading.Thread(target=self._server.run, name="ganrt-serve", daemon=True)

    def _on_started(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._bound.set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 120.0) -> ServerThread:
        """Start serving; returns once the socket listens (models are warmed up first)."""
        self._thread.start()
        if not self._bound.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"ganrt serve did not start listening within {timeout_s:g} s")
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        """Drain and stop; in-flight requests finish first."""
        self.app.state.ganrt.draining = True
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"ganrt serve did not stop within {timeout_s:g} s")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
