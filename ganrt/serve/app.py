"""The ASGI application behind ``ganrt serve``: KServe v2 endpoints, ``/v1`` image endpoints and ``/metrics``.

The routes live in :mod:`ganrt.serve.kserve` and :mod:`ganrt.serve.v1`, the shared HTTP plumbing in
:mod:`ganrt.serve.http`, the served models in :mod:`ganrt.serve.state`; this module assembles them.

Routes (``{name}`` is a served model; ``/versions/{version}`` variants accept version ``1``):

- ``GET  /v2/health/live``, ``GET /v2/health/ready`` (503 while loading or draining), ``GET /v2`` (server
  metadata), ``GET /v2/models/{name}`` (model metadata: inputs/outputs with datatypes and shapes, -1 dynamic),
  ``GET /v2/models/{name}/ready``, ``GET /v2/models/{name}/config`` (Triton-style model configuration),
  ``POST /v2/models/{name}/infer`` (JSON tensor data or the binary-data extension).
- ``POST /v1/models/{name}/translate``: PNG/JPEG body -> PNG; ``POST /v1/models/{name}/sample``: ``n``,
  ``seed`` (and ``labels`` for class-conditional models) as query parameters or a JSON object -> PNG grid.
- ``GET  /metrics``: Prometheus text format (see :mod:`ganrt.serve.metrics`).
- ``GET  /`` (the web page), ``GET /v1/models``, ``POST /v1/models/{name}/encode|interpolate``: see
  :mod:`ganrt.serve.ui`.

Every error is JSON ``{"error": "<what is wrong>"}`` with a 4xx status for bad requests (unknown model, wrong
shape or datatype, undecodable image, body too large, wrong content type), 503 + ``Retry-After`` for a full
queue or a draining server, 504 when a request outlives its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ganrt.serve import kserve, ui, v1
from ganrt.serve.config import ServeConfig
from ganrt.serve.http import endpoint, log
from ganrt.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ganrt.serve.state import ServerState

if TYPE_CHECKING:
    from ganrt.runtime import Model


@endpoint("metrics")
async def metrics(request: Request, state: ServerState) -> Response:
    return Response(state.metrics.render(), headers={"content-type": METRICS_CONTENT_TYPE})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}; see GET /v2 and /v2/models/{{name}}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = exc.detail
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


def create_app(models: Mapping[str, Model | Sequence[Model]], config: ServeConfig | None = None) -> Starlette:
    """The Starlette app serving ``models``: name -> :class:`ganrt.runtime.Model` from ``ganrt.load``, or a
    list of loaded copies of one artifact that compute concurrently (instances).

    Starting the app (ASGI lifespan) starts one batcher per model; stopping it drains every queue and finishes
    the running calls. The models stay open: whoever loaded them closes them. ``app.state.ganrt`` is the
    :class:`ServerState`.
    """
    config = config or ServeConfig()
    state = ServerState(models, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for served in state.models.values():
            try:
                await asyncio.to_thread(served.warmup)
            except Exception:  # noqa: BLE001 - a failed warm-up is logged; requests will report their own errors
                log.exception("warm-up of model %r failed", served.name)
            served.batcher.start()
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            state.draining = True
            await asyncio.gather(*(served.batcher.close() for served in state.models.values()))

    routes = [*kserve.routes(), *v1.routes(), *ui.routes(config), Route("/metrics", metrics, methods=["GET"])]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
        middleware=[Middleware(ui.LatencyHeader)],
    )
    app.state.ganrt = state
    return app
