"""HTTP plumbing of ``ganrt serve``: JSON errors, bounded request bodies, and the endpoint wrapper that turns
failures into answers and records metrics. Nothing here knows about models beyond the served-model state.

Every error is JSON ``{"error": "<what is wrong>"}`` with a 4xx status for bad requests, 503 + ``Retry-After``
for a full queue or a draining server, 504 when a request outlives its timeout.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ganrt.serve.batching import DrainingError, QueueFullError

if TYPE_CHECKING:
    from ganrt.serve.state import ServedModel, ServerState

log = logging.getLogger("ganrt.serve")
# Status recorded for requests whose client disconnected mid-body (nginx's convention; never sent).
CLIENT_CLOSED = 499


class ApiError(Exception):
    """An error answered as JSON ``{"error": message}`` with ``status`` (and optional headers)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message}, status_code=self.status, headers=self.headers)


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case (``""`` when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a gzip/deflate request body, refusing to grow it past ``limit`` bytes (a zip bomb guard)."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, f"cannot decompress the {encoding} request body: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(
            413, f"the decompressed request body exceeds the limit of {limit} bytes (--max-body-mb)"
        )
    if not inflater.eof:
        raise ApiError(400, f"the {encoding} request body is truncated")
    return out


def json_object(body: bytes, fields: str) -> dict[str, Any]:
    """``body`` parsed as a JSON object, else a 400 naming the problem (``fields``: what the object holds,
    e.g. ``"'n', 'seed', 'labels'"``)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, f"the body must be a JSON object with {fields}, got {type(doc).__name__}")
    return doc


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, at most ``limit`` bytes after decompression (413 beyond, 415 for an unknown
    Content-Encoding), received within ``timeout_s`` (408 otherwise: a trickling client holds a slot)."""
    try:
        return await asyncio.wait_for(_read_body(request, limit), timeout_s)
    except TimeoutError:
        raise ApiError(408, f"the request body was not received within {timeout_s:g} s") from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"Content-Length must be a non-negative integer, got {declared!r}")
        if int(declared) > limit:
            raise ApiError(
                413, f"request body of {declared} bytes exceeds the limit of {limit} bytes (--max-body-mb)"
            )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes (--max-body-mb)")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "deflate"):
        return _inflate(body, encoding, limit)
    if encoding != "identity":
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none")
    return body


# Endpoints that run a model: refused with 503 once the server drains.
_WORK = frozenset({"infer", "translate", "sample"})


def endpoint(
    label: str,
) -> Callable[
    [Callable[[Request, ServerState], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]
]:
    """Wrap a handler: resolve shared state, turn errors into JSON, record request count and latency."""

    def decorate(
        fn: Callable[[Request, ServerState], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def handler(request: Request) -> Response:
            state: ServerState = request.app.state.ganrt
            started = time.perf_counter()
            name = request.path_params.get("name", "")
            served = state.models.get(name)
            label_model = name if served is not None else ""
            try:
                if served is not None and label in _WORK and state.draining:
                    # Draining: requests received before finish, new work goes elsewhere (the 503 says so).
                    state.metrics.rejected.inc(model=served.name, reason="draining")
                    retry = {"Retry-After": str(state.config.retry_after_s)}
                    raise ApiError(503, "the server is shutting down (draining); retry elsewhere", retry)
                if served is not None:
                    with served.batcher.track():
                        response = await fn(request, state)
                else:
                    response = await fn(request, state)
            except ApiError as exc:
                response = exc.response()
            except ClientDisconnect:
                # The client hung up before sending its whole body: nobody reads an answer, it is not a
                # server failure. Counted under nginx's 499 ("client closed request"), logged without a trace.
                log.info(
                    "%s %s: the client disconnected before sending its body", request.method, request.url.path
                )
                response = Response(status_code=CLIENT_CLOSED)
            except Exception as exc:  # noqa: BLE001 - an unexpected failure still gets a JSON answer and a log line
                log.exception("%s %s failed", request.method, request.url.path)
                response = ApiError(500, f"internal error: {type(exc).__name__}: {exc}").response()
            if label != "metrics":
                state.metrics.requests.inc(model=label_model, endpoint=label, code=str(response.status_code))
                state.metrics.latency.observe(
                    time.perf_counter() - started, model=label_model, endpoint=label
                )
            return response

        return handler

    return decorate



async def run_model(
    state: ServerState, served: ServedModel, submit: Callable[[], Awaitable[Any]], timeout_s: float
) -> Any:
    """Await a batcher submission, mapping queue/drain/timeout/model failures to API errors."""
    retry = {"Retry-After": str(state.config.retry_after_s)}
    try:
        return await submit()
    except QueueFullError as exc:
        state.metrics.rejected.inc(model=served.name, reason="queue_full")
        raise ApiError(503, f"{exc}; retry later", retry) from None
    except DrainingError as exc:
        state.metrics.rejected.inc(model=served.name, reason="draining")
        raise ApiError(503, str(exc), retry) from None
    except TimeoutError:
        state.metrics.rejected.inc(model=served.name, reason="timeout")
        raise ApiError(
            504, f"model {served.name!r}: request timed out after {timeout_s:g} s (queueing + inference)"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ApiError(400, f"model {served.name!r} rejected the input: {exc}") from None

