"""The web page of ``ganrt serve`` and the ``/v1`` endpoints it needs beyond translate and sample.

Routes (:func:`routes`; the page and its files only while ``ServeConfig.ui``, i.e. without ``--no-ui``):

- ``GET /``: the page; ``GET /ui/{file}``: its ES modules, stylesheet and example inputs. They ship as package
  data (``ganrt/serve/static``) and are read once: no CDN, no build step, nothing fetched from elsewhere.
- ``GET /v1/models``: ``{"models": [card, ...], "limits": {...}}``, one card per served model with what a
  client needs to drive it (see :func:`model_card`).
- ``POST /v1/models/{name}/encode``: PNG/JPEG body -> ``{"mu": [...], "logvar": [...]}`` (latent_dim float32
  values each), ``model.encode(image)`` of a VAE served with its encoder.
- ``POST /v1/models/{name}/interpolate``: JSON ``{"a", "b", "steps", "labels"}`` -> PNG of ``steps`` frames
  side by side, left to right, ``model.interpolate(a, b, steps, labels=labels)``; ``a``/``b`` are seeds or
  latent vectors (e.g. ``mu`` from encode, which makes the frames those of
  ``model.interpolate(image_a, image_b)``).

:class:`LatencyHeader` adds ``X-Ganrt-Latency-Ms`` (request received to response started, on the server) to
every ``/v1`` and ``/v2`` response. Errors are JSON ``{"error": ...}`` like every other endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ganrt.serve import images as imgs
from ganrt.serve.config import ServeConfig
from ganrt.serve.http import ApiError, endpoint, json_object, media_type, read_body, run_model
from ganrt.serve.state import ServedModel, ServerState
from ganrt.serve.v1 import int_param, run_on_image, sample_labels

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ganrt.runtime import Model

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules are refused under any non-JavaScript type
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# The page runs only its own files; outputs live in blob: URLs (shown, read back, downloaded). Framing is
# refused (clickjacking).
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; connect-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate (ETag): an upgraded ganrt never runs a stale module
}
_EDGE_EXAMPLE = re.compile(r"examples/edges-(\d+)-[a-z0-9]+\.png")
_INTERPOLATE_KEYS = {"a", "b", "steps", "labels"}
_JSON_LIMIT = 1 << 20


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@functools.cache
def _assets() -> dict[str, _Asset]:
    """Every servable file under ``ganrt/serve/static`` by relative path, read once."""
    found: dict[str, _Asset] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = prefix + child.name
            if child.is_dir():
                walk(child, name + "/")
                continue
            media_type = _MEDIA_TYPES.get("." + child.name.rsplit(".", 1)[-1])
            if media_type is not None:
                body = child.read_bytes()
                found[name] = _Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')

    root = resources.files("ganrt.serve") / "static"
    if root.is_dir():
        walk(root, "")
    return found


def _asset_response(request: Request, name: str) -> Response:
    asset = _assets().get(name)
    if asset is None:
        if name == "index.html":
            raise ApiError(
                500,
                "the web page's files are missing from this installation (ganrt/serve/static); "
                "reinstall ganrt, or start with --no-ui",
            )
        raise ApiError(404, f"the web page has no file {name!r}")
    headers = {**_PAGE_HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@endpoint("page")
async def page(request: Request, state: ServerState) -> Response:
    return _asset_response(request, "index.html")


@endpoint("page_file")
async def page_file(request: Request, state: ServerState) -> Response:
    return _asset_response(request, request.path_params["file"])


# ---- model listing -----------------------------------------------------------------------------------------
def _has_encoder(model: Model) -> bool:
    # ganrt.load returns a VAE (decoder + encoder) or an Encoder only when an encoder is there to run
    return hasattr(model, "encode")


def _fixed_size(model: Model) -> list[int] | None:
    """[H, W] when the image input takes only that size, else None."""
    if model.metadata.task == "sample" or not model.inputs:
        return None
    shape = model.inputs[0].shape
    if len(shape) == 4 and shape[2] > 0 and shape[3] > 0:
        return [int(shape[2]), int(shape[3])]
    return None


def _examples(model: Model, encoder: bool, config: ServeConfig) -> list[str]:
    """Page-relative URLs of bundled inputs for this model: edge maps for translators (the size nearest above
    the native one), faces for a VAE with its encoder."""
    if not config.ui:
        return []
    names = _assets()
    md = model.metadata
    if md.task == "translate":
        sizes = sorted({int(m.group(1)) for n in names if (m := _EDGE_EXAMPLE.fullmatch(n))})
        if not sizes:
            return []
        size = next((s for s in sizes if s >= md.image_size), sizes[-1])
        return sorted(f"ui/{n}" for n in names if n.startswith(f"examples/edges-{size}-"))
    if md.family == "vae" and encoder:
        return sorted(f"ui/{n}" for n in names if n.startswith("examples/face-"))
    return []


def model_card(served: ServedModel, config: ServeConfig) -> dict[str, Any]:
    """What ``GET /v1/models`` says about one model.

    ``task`` translate | sample | encode; ``image_size`` the native (training) side; ``fixed_size`` [H, W]
    when the graph takes only that size (other sizes are then resized to it and back), else null (any
    multiple of ``multiple``; other sizes are padded and cropped back); ``encoder`` whether ``encode`` works;
    ``endpoints`` the ``/v1/models/{name}/...`` endpoints that apply; ``examples`` bundled inputs
    (page-relative URLs).
    """
    model = served.model
    md = served.metadata
    encoder = _has_encoder(model)
    endpoints = {"translate": ["translate"], "sample": ["sample", "interpolate"], "encode": ["encode"]}[
        md.task
    ]
    if md.task == "sample" and encoder:
        endpoints.append("encode")
    return {
        "name": served.name,
        "family": md.family,
        "task": md.task,
        "backend": model.backend,
        "device": model.device,
        "precision": md.precision,
        "instances": len(served.instances),
        "image_size": md.image_size,
        "fixed_size": _fixed_size(model),
        "multiple": md.multiple,
        "in_channels": md.in_channels,
        "out_channels": md.out_channels,
        "latent_dim": md.latent_dim,
        "num_classes": md.num_classes,
        "encoder": encoder,
        "endpoints": endpoints,
        "examples": _examples(model, encoder, config),
    }


@endpoint("models")
async def list_models(request: Request, state: ServerState) -> Response:
    config = state.config
    return JSONResponse(
        {
            "models": [model_card(served, config) for served in state.models.values()],
            "limits": {
                "max_sample": config.max_sample,
                "max_pixels": config.max_pixels,
                "max_body_bytes": config.max_body_bytes,
            },
        }
    )


# ---- encode ------------------------------------------------------------------------------------------------
@endpoint("encode")
async def encode(request: Request, state: ServerState) -> Response:
    """PNG/JPEG body -> ``{"mu", "logvar"}``; concurrent same-size images share one ``model.encode`` call."""
    served = state.model(request.path_params["name"])
    if not _has_encoder(served.model):
        raise ApiError(
            400,
            f"model {served.name!r} is a {served.metadata.family} {served.task} model without an encoder; "
            f"/v1 encode needs a VAE encoder: serve the VAE's run directory or its exported encoder",
        )

    def run(model: Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        mu, logvar = model.encode(feeds["images"])
        return {"mu": np.asarray(mu, np.float32), "logvar": np.asarray(logvar, np.float32)}

    result = await run_on_image(request, state, served, run, "encode")
    # float32 -> Python float is exact and JSON keeps every digit: mu sent back to interpolate is the same z
    return JSONResponse({"mu": result["mu"][0].tolist(), "logvar": result["logvar"][0].tolist()})


# ---- interpolate -------------------------------------------------------------------------------------------
def _end_point(doc: dict[str, Any], key: str, latent_dim: int) -> int | np.ndarray:
    """A seed (int; a string of digits too, as JavaScript cannot hold seeds above 2**53) or float32
    (latent_dim,)."""
    if key not in doc:
        raise ApiError(
            400, f"{key!r} is required: a seed or a list of {latent_dim} numbers (a latent vector)"
        )
    value = doc[key]
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 2**64:
            raise ApiError(400, f"{key!r}: a seed must be in 0..2**64-1, got {value}")
        return value
    numbers = isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    )
    if not numbers or len(value) != latent_dim:
        shown = json.dumps(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ApiError(
            400,
            f"{key!r} must be a seed (integer) or a list of {latent_dim} numbers (a latent vector such as "
            f"'mu' from /v1/models/{{name}}/encode), got {shown}",
        )
    latent = np.asarray(value, np.float64).astype(np.float32)
    if not np.isfinite(latent).all():
        raise ApiError(400, f"{key!r}: latent values must be finite float32 numbers")
    return latent


@endpoint("interpolate")
async def interpolate(request: Request, state: ServerState) -> Response:
    """JSON ``{"a", "b", "steps" (default 8), "labels"}`` -> PNG (S, steps * S, C) and ``X-Ganrt-Frames``."""
    served = state.model(request.path_params["name"])
    md = served.metadata
    if served.task != "sample":
        raise ApiError(
            400,
            f"model {served.name!r} has task {served.task!r}; /v1 interpolate needs a sampler (a DCGAN/CGAN "
            f"generator or a VAE decoder)",
        )
    if media_type(request) != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, got {media_type(request) or 'none'!r}")
    body = await read_body(request, min(_JSON_LIMIT, state.config.max_body_bytes), state.config.timeout_s)
    doc = json_object(body, "'a', 'b', 'steps'")
    unknown = sorted(set(doc) - _INTERPOLATE_KEYS)
    if unknown:
        raise ApiError(400, f"unknown interpolate parameter {unknown[0]!r}; expected a, b, steps, labels")
    a = _end_point(doc, "a", md.latent_dim)
    b = _end_point(doc, "b", md.latent_dim)
    steps = int_param(doc, "steps", default=8, lo=2, hi=state.config.max_sample)
    assert steps is not None
    labels = sample_labels(doc, served, steps)

    # One request per call (not merged): the end points and labels travel in the closure.
    def run(model: Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"frames": np.asarray(model.interpolate(a, b, steps, labels=labels))}

    timeout_s = state.config.timeout_s
    result = await run_model(
        state,
        served,
        lambda: served.batcher.run(run, {}, kind="interpolate", mergeable=False, timeout_s=timeout_s),
        timeout_s,
    )
    frames = result["frames"]
    png = await asyncio.to_thread(lambda: imgs.encode_png(np.concatenate(list(frames), axis=1)))
    return Response(png, media_type="image/png", headers={"X-Ganrt-Frames": str(len(frames))})


# ---- wiring ------------------------------------------------------------------------------------------------
class LatencyHeader:
    """ASGI middleware: ``X-Ganrt-Latency-Ms`` on ``/v1`` and ``/v2`` responses, from the request's arrival to
    the response's start (body upload, queueing, inference and encoding; not the network back)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/v1/", "/v2/")):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = (time.perf_counter() - started) * 1e3
                MutableHeaders(scope=message).append("X-Ganrt-Latency-Ms", f"{elapsed_ms:.1f}")
            await send(message)

        await self.app(scope, receive, send_timed)


def routes(config: ServeConfig) -> list[BaseRoute]:
    """The listing, encode and interpolate endpoints, and (unless ``config.ui`` is off) the page."""
    api: list[BaseRoute] = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name}/encode", encode, methods=["POST"]),
        Route("/v1/models/{name}/interpolate", interpolate, methods=["POST"]),
    ]
    if not config.ui:
        return api
    return [Route("/", page, methods=["GET"]), Route("/ui/{file:path}", page_file, methods=["GET"]), *api]
