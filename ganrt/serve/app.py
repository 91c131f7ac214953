"""The ASGI application behind ``ganrt serve``: KServe v2 endpoints, ``/v1`` image endpoints and ``/metrics``.

Routes (``{name}`` is a served model; ``/versions/{version}`` variants accept version ``1``):

- ``GET  /v2/health/live``, ``GET /v2/health/ready`` (503 while loading or draining), ``GET /v2`` (server
  metadata), ``GET /v2/models/{name}`` (model metadata: inputs/outputs with datatypes and shapes, -1 dynamic),
  ``GET /v2/models/{name}/ready``, ``GET /v2/models/{name}/config`` (Triton-style model configuration),
  ``POST /v2/models/{name}/infer`` (JSON tensor data or the binary-data extension).
- ``POST /v1/models/{name}/translate``: PNG/JPEG body -> PNG; ``POST /v1/models/{name}/sample``: ``n``,
  ``seed``
  (and ``labels`` for class-conditional models) as query parameters or a JSON object -> PNG grid.
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
import functools
import json
import logging
import math
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ganrt import __version__
from ganrt.serve import images as imgs
from ganrt.serve import protocol
from ganrt.serve.batching import Batcher, DrainingError, QueueFullError
from ganrt.serve.config import ServeConfig, is_batchable
from ganrt.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ganrt.serve.metrics import ServerMetrics

if TYPE_CHECKING:
    from ganrt.runtime import Model

log = logging.getLogger("ganrt.serve")

MODEL_VERSION = "1"


class ApiError(Exception):
    """An error answered as JSON ``{"error": message}`` with ``status`` (and optional headers)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message}, status_code=self.status, headers=self.headers)


class ServedModel:
    """One served model: its loaded instances (copies of the same artifact), batcher and protocol metadata."""

    def __init__(
        self, name: str, instances: Sequence[Model], config: ServeConfig, metrics: ServerMetrics
    ) -> None:
        self.name = name
        self.instances = list(instances)
        # metadata and I/O come from the first; all are the same artifact
        model = self.model = self.instances[0]
        self.batchable = is_batchable(model)
        self.max_rows: int | None = int(model.max_batch) if model.max_batch else None
        max_batch = min(config.max_batch, self.max_rows) if self.max_rows else config.max_batch
        self.batcher = Batcher(
            name,
            self.instances,
            max_batch=max_batch,
            max_delay_s=config.max_delay_ms / 1e3,
            max_queue=config.max_queue,
            batchable=self.batchable,
            metrics=metrics,
        )
        self.inputs = {s.name: s for s in model.inputs}
        self.outputs = {s.name: s for s in model.outputs}
        self.metadata = model.metadata
        self.task = model.metadata.task
        # e.g. "ganrt_onnxruntime", "ganrt_tensorrt": which engine runs the graph behind the KServe API
        info = model.info()
        self.platform = f"ganrt_{info['backend']}"
        self.instance_kind = "KIND_CPU" if str(info.get("device", "cpu")).startswith("cpu") else "KIND_GPU"

    def metadata_json(self) -> dict[str, Any]:
        """KServe v2 model metadata; ``parameters`` carries the artifact's ganrt metadata (all strings)."""
        return {
            "name": self.name,
            "versions": [MODEL_VERSION],
            "platform": self.platform,
            "inputs": [protocol.tensor_metadata(s.name, s.dtype, s.shape) for s in self.inputs.values()],
            "outputs": [protocol.tensor_metadata(s.name, s.dtype, s.shape) for s in self.outputs.values()],
            "parameters": self.metadata.to_props(),
        }

    def config_json(self, config: ServeConfig) -> dict[str, Any]:
        """Triton-style model configuration (``GET /v2/models/{name}/config``)."""

        def tensor(spec: Any) -> dict[str, Any]:
            dims = list(spec.shape[1:] if self.batchable else spec.shape)
            return {"name": spec.name, "data_type": "TYPE_" + protocol.datatype_of(spec.dtype), "dims": dims}

        return {
            "name": self.name,
            "platform": self.platform,
            "max_batch_size": self.batcher.max_batch if self.batchable else 0,
            "input": [tensor(s) for s in self.inputs.values()],
            "output": [tensor(s) for s in self.outputs.values()],
            "instance_group": [{"count": len(self.instances), "kind": self.instance_kind}],
            "dynamic_batching": {
                "max_queue_delay_microseconds": int(config.max_delay_ms * 1000),
                "default_queue_policy": {
                    "max_queue_size": config.max_queue,
                    "default_timeout_microseconds": int(config.timeout_s * 1e6),
                },
            }
            if self.batchable
            else {},
        }

    def warmup(self) -> None:
        """One small call through the paths the endpoints use, so the first request does not pay for lazy
        imports, kernel registration and ONNX Runtime's first-run allocations. Runs before the server reports
        ready."""
        md = self.metadata
        for model in self.instances:
            if md.task == "sample":
                from ganrt.ops import standard_normal

                labels = np.zeros(1, np.int64) if md.num_classes else None
                model.decode(standard_normal((1, md.latent_dim), seed=0).numpy(), labels=labels)
            elif md.task == "translate":
                side = max(md.multiple, min(md.image_size, 256))
                model.translate(np.zeros((1, side, side, md.in_channels), np.uint8))

    def check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        """Raise a 400 :class:`ApiError` naming the problem when ``feeds`` do not fit the model's inputs."""
        where = f"model {self.name!r}"
        unknown = sorted(set(feeds) - set(self.inputs))
        if unknown:
            raise ApiError(400, f"{where} has no input {unknown[0]!r}; its inputs are {sorted(self.inputs)}")
        missing = sorted(set(self.inputs) - set(feeds))
        if missing:
            raise ApiError(
                400, f"{where}: missing input {missing[0]!r}; its inputs are {sorted(self.inputs)}"
            )
        rows = None
        for name, spec in self.inputs.items():
            value = feeds[name]
            want = protocol.datatype_of(spec.dtype)
            got = protocol.datatype_of(value.dtype)
            if want != got:
                raise ApiError(400, f"{where}: input {name!r} must have datatype {want}, got {got}")
            if value.ndim != len(spec.shape):
                raise ApiError(
                    400,
                    f"{where}: input {name!r} must be {len(spec.shape)}-D with shape "
                    f"{list(spec.shape)} (-1 = any), got shape {list(value.shape)}",
                )
            for axis, (w, g) in enumerate(zip(spec.shape, value.shape, strict=True)):
                if w != -1 and w != g:
                    raise ApiError(
                        400,
                        f"{where}: input {name!r} must have shape {list(spec.shape)} (-1 = any), "
                        f"got {list(value.shape)} (dimension {axis})",
                    )
                if w == -1 and g < 1:
                    raise ApiError(
                        400, f"{where}: input {name!r} dimension {axis} must be >= 1, got {list(value.shape)}"
                    )
            multiple = self.metadata.multiple
            if value.ndim == 4 and multiple > 1 and spec.name == "image":
                h, w = value.shape[2:]
                if h % multiple or w % multiple:
                    raise ApiError(
                        400,
                        f"{where}: input {name!r} height and width must be multiples of "
                        f"{multiple}, got {h}x{w}",
                    )
            if self.batchable:
                if rows is not None and value.shape[0] != rows:
                    raise ApiError(
                        400,
                        f"{where}: all inputs must have the same batch size (dimension 0), got "
                        f"{rows} and {value.shape[0]} ({name!r})",
                    )
                rows = value.shape[0]
        if rows is not None and self.max_rows is not None and rows > self.max_rows:
            raise ApiError(400, f"{where}: batch size {rows} exceeds the model's maximum of {self.max_rows}")


class ServerState:
    """Everything the route handlers share: the models, the limits, the metrics and the draining flag."""

    def __init__(self, models: Mapping[str, Model | Sequence[Model]], config: ServeConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics(
            queue_depths=lambda: {n: m.batcher.queue_depth for n, m in self.models.items()},
            in_flight=lambda: {n: m.batcher.in_flight for n, m in self.models.items()},
        )
        self.models = {
            name: ServedModel(
                name, list(model) if isinstance(model, Sequence) else [model], config, self.metrics
            )
            for name, model in models.items()
        }
        self.ready = False
        self.draining = False

    def model(self, name: str) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise ApiError(404, f"unknown model {name!r}; this server serves: {known}")
        return served


# ---- request helpers ---------------------------------------------------------------------------------------
def _media_type(request: Request) -> str:
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


def _endpoint(
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
                if served is not None:
                    with served.batcher.track():
                        response = await fn(request, state)
                else:
                    response = await fn(request, state)
            except ApiError as exc:
                response = exc.response()
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


def _check_version(request: Request, served: ServedModel) -> None:
    version = request.path_params.get("version")
    if version is not None and version != MODEL_VERSION:
        raise ApiError(
            404, f"model {served.name!r} has no version {version!r}; it serves version {MODEL_VERSION}"
        )


async def _run_model(
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


# ---- KServe v2 ---------------------------------------------------------------------------------------------
@_endpoint("health_live")
async def health_live(request: Request, state: ServerState) -> Response:
    return JSONResponse({"live": True})


@_endpoint("health_ready")
async def health_ready(request: Request, state: ServerState) -> Response:
    ready = state.ready and not state.draining
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@_endpoint("server_metadata")
async def server_metadata(request: Request, state: ServerState) -> Response:
    return JSONResponse(
        {"name": "ganrt", "version": __version__, "extensions": ["binary_tensor_data", "model_configuration"]}
    )


@_endpoint("model_metadata")
async def model_metadata(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    return JSONResponse(served.metadata_json())


@_endpoint("model_config")
async def model_config(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    return JSONResponse(served.config_json(state.config))


@_endpoint("model_ready")
async def model_ready(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    ready = state.ready and not state.draining and not served.batcher.closing
    return JSONResponse({"name": served.name, "ready": ready}, status_code=200 if ready else 503)


_INFER_MEDIA = {"", "application/json", "application/octet-stream"}


@_endpoint("infer")
async def infer(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    media = _media_type(request)
    header_length = request.headers.get(protocol.HEADER_LENGTH)
    if media not in _INFER_MEDIA or (header_length is None and media == "application/octet-stream"):
        raise ApiError(
            415,
            f"Content-Type must be application/json (or application/octet-stream with "
            f"{protocol.HEADER_LENGTH} for binary tensor data), got {media!r}",
        )
    body = await read_body(request, state.config.max_body_bytes, state.config.timeout_s)
    try:
        # large JSON bodies take milliseconds to parse: keep them off the event loop
        if len(body) > 1 << 20:
            req = await asyncio.to_thread(protocol.parse_infer_request, body, header_length)
        else:
            req = protocol.parse_infer_request(body, header_length)
    except protocol.ProtocolError as exc:
        raise ApiError(exc.status, str(exc)) from None
    served.check_feeds(req.inputs)
    requested = req.outputs
    if requested is not None:
        for out in requested:
            if out.name not in served.outputs:
                raise ApiError(
                    400,
                    f"model {served.name!r} has no output {out.name!r}; its outputs are "
                    f"{sorted(served.outputs)}",
                )
    timeout_s = min(state.config.timeout_s, req.timeout_s or math.inf)
    feeds = {name: req.inputs[name] for name in served.inputs}
    outputs = await _run_model(
        state, served, lambda: served.batcher.infer(feeds, timeout_s=timeout_s), timeout_s
    )
    selection = requested or [protocol.RequestedOutput(n, req.binary_default) for n in served.outputs]
    chosen = [(o.name, np.asarray(outputs[o.name]), o.binary) for o in selection]
    if sum(a.size for _, a, binary in chosen if not binary) > 1 << 16:
        content, headers = await asyncio.to_thread(
            protocol.encode_infer_response, served.name, MODEL_VERSION, req.id, chosen
        )
    else:
        content, headers = protocol.encode_infer_response(served.name, MODEL_VERSION, req.id, chosen)
    media_type = headers.pop("content-type")
    return Response(content, media_type=media_type, headers=headers)


# ---- /v1 convenience endpoints -----------------------------------------------------------------------------
def _require_task(served: ServedModel, task: str, endpoint: str) -> None:
    if served.task != task:
        hint = served.task if served.task in ("translate", "sample") else None
        alt = f"/v1/models/{served.name}/{hint}" if hint else f"/v2/models/{served.name}/infer"
        raise ApiError(
            400,
            f"model {served.name!r} has task {served.task!r}; /v1 {endpoint} needs a "
            f"{task!r} model; use POST {alt}",
        )


def _as_images(value: Any, *, what: str) -> np.ndarray:
    """Runtime images as ``(N, H, W, C)`` uint8."""
    array = np.asarray(value)
    if array.dtype != np.uint8 or array.ndim != 4:
        raise RuntimeError(
            f"{what} returned {array.dtype} of shape {array.shape}, expected (N, H, W, C) uint8"
        )
    return array


@_endpoint("translate")
async def translate(request: Request, state: ServerState) -> Response:
    """PNG/JPEG body -> PNG. Concurrent same-size images are merged into one ``model.translate`` call."""
    served = state.model(request.path_params["name"])
    _require_task(served, "translate", "translate")
    media = _media_type(request)
    if media not in imgs.ACCEPTED_TYPES:
        raise ApiError(
            415,
            f"Content-Type must be one of {', '.join(sorted(imgs.ACCEPTED_TYPES))}, got {media or 'none'!r}",
        )
    body = await read_body(request, state.config.max_body_bytes, state.config.timeout_s)
    channels = served.metadata.in_channels
    try:
        image = await asyncio.to_thread(
            imgs.decode_image, body, content_type=media, channels=channels, max_pixels=state.config.max_pixels
        )
    except imgs.ImageError as exc:
        raise ApiError(exc.status, str(exc)) from None

    def run(model: Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "images": _as_images(model.translate(feeds["images"]), what=f"model {served.name!r} translate")
        }

    timeout_s = state.config.timeout_s
    result = await _run_model(
        state,
        served,
        lambda: served.batcher.run(run, {"images": image[None]}, kind="translate", timeout_s=timeout_s),
        timeout_s,
    )
    png = await asyncio.to_thread(imgs.encode_png, result["images"][0])
    return Response(png, media_type="image/png")


def _int_param(params: Mapping[str, Any], name: str, *, default: int | None, lo: int, hi: int) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ApiError(400, f"{name!r} must be an integer, got {value!r}") from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"{name!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ApiError(400, f"{name!r} must be in {lo}..{hi}, got {value}")
    return value


def _sample_labels(params: Mapping[str, Any], served: ServedModel, n: int) -> np.ndarray | None:
    """int64 (n,) class labels from ``labels`` (an int, a list, or "1,2,3"); the runtime's default cycles
    classes."""
    num_classes = served.metadata.num_classes
    if "labels" not in params:
        return np.arange(n, dtype=np.int64) % num_classes if num_classes else None
    if not num_classes:
        raise ApiError(400, f"model {served.name!r} is not class-conditional; drop 'labels'")
    raw = params["labels"]
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",")]
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw] * n
    if not isinstance(raw, list):
        raise ApiError(400, f"'labels' must be an integer or a list of integers, got {raw!r}")
    if len(raw) != n:
        raise ApiError(400, f"'labels' has {len(raw)} entries, expected n={n}")
    values = [_int_param({"labels": v}, "labels", default=None, lo=0, hi=num_classes - 1) for v in raw]
    return np.asarray(values, dtype=np.int64)


@_endpoint("sample")
async def sample(request: Request, state: ServerState) -> Response:
    """``n``, ``seed``, ``labels``, ``nrow`` -> PNG grid, identical to ``ganrt sample -n N --seed S [--labels L]
    [--nrow R]``.

    Latents are drawn here exactly as ``Model.sample`` draws them (Philox ``standard_normal`` from the seed),
    so concurrent sample requests are merged into one ``model.decode`` call.
    """
    from ganrt.ops import standard_normal
    from ganrt.runtime import images as runtime_images

    served = state.model(request.path_params["name"])
    _require_task(served, "sample", "sample")
    body = await read_body(request, 64 * 1024, state.config.timeout_s)
    params: dict[str, Any] = dict(request.query_params)
    if body.strip():
        if _media_type(request) != "application/json":
            raise ApiError(
                415, f"a sample request body must be application/json, got {_media_type(request)!r}"
            )
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ApiError(
                400, f"the body must be a JSON object with 'n', 'seed', 'labels', got {type(doc).__name__}"
            )
        params.update(doc)
    unknown = sorted(set(params) - {"n", "seed", "labels", "nrow"})
    if unknown:
        raise ApiError(400, f"unknown sample parameter {unknown[0]!r}; expected n, seed, labels, nrow")
    n = _int_param(params, "n", default=1, lo=1, hi=state.config.max_sample)
    assert n is not None
    nrow = _int_param(params, "nrow", default=None, lo=1, hi=n)
    seed = _int_param(params, "seed", default=None, lo=0, hi=2**64 - 1)
    if seed is None:
        seed = secrets.randbits(63)
    feeds = {"z": standard_normal((n, served.metadata.latent_dim), seed=seed).numpy()}
    labels = _sample_labels(params, served, n)
    if labels is not None:
        feeds["label"] = labels

    def run(model: Model, f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = model.decode(f["z"], labels=f.get("label"))
        return {"images": _as_images(images, what=f"model {served.name!r} decode")}

    timeout_s = state.config.timeout_s
    result = await _run_model(
        state, served, lambda: served.batcher.run(run, feeds, kind="sample", timeout_s=timeout_s), timeout_s
    )
    png = await asyncio.to_thread(lambda: imgs.encode_png(runtime_images.grid(result["images"], nrow)))
    return Response(png, media_type="image/png", headers={"X-Ganrt-Seed": str(seed)})


# ---- metrics, errors, lifecycle ----------------------------------------------------------------------------
@_endpoint("metrics")
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
    from starlette.middleware import Middleware

    from ganrt.serve import ui

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

    routes = [
        Route("/v2/health/live", health_live, methods=["GET"]),
        Route("/v2/health/ready", health_ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/models/{name}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/config", model_config, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/config", model_config, methods=["GET"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v1/models/{name}/translate", translate, methods=["POST"]),
        Route("/v1/models/{name}/sample", sample, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        *ui.routes(config),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
        middleware=[Middleware(ui.LatencyHeader)],
    )
    app.state.ganrt = state
    return app
