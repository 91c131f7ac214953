"""ganrt's own ``/v1`` image endpoints: ``POST /v1/models/{name}/translate`` (PNG/JPEG body -> PNG) and
``POST /v1/models/{name}/sample`` (``n``, ``seed``, ``labels`` as query parameters or a JSON object -> PNG
grid, identical to ``model.sample(n, seed=seed)``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ganrt.serve import images as imgs
from ganrt.serve.budget import BYTES_PER_PIXEL, BudgetExceeded
from ganrt.serve.http import ApiError, endpoint, json_object, media_type, read_body, run_model
from ganrt.serve.state import ServedModel, ServerState

if TYPE_CHECKING:
    from ganrt.runtime import Model


def _require_task(served: ServedModel, task: str, route: str) -> None:
    if served.task != task:
        hint = served.task if served.task in ("translate", "sample") else None
        alt = f"/v1/models/{served.name}/{hint}" if hint else f"/v2/models/{served.name}/infer"
        raise ApiError(
            400,
            f"model {served.name!r} has task {served.task!r}; /v1 {route} needs a "
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


@contextlib.asynccontextmanager
async def image_body(request: Request, state: ServerState, served: ServedModel) -> AsyncIterator[np.ndarray]:
    """The PNG/JPEG request body decoded to uint8 (H, W, channels of ``served``), within the server's size
    limits, for the duration of the block.

    The image's cost (its declared size, read from the header) is reserved from the server's memory budget
    before it is decoded and returned when the block ends: 503 + Retry-After while the budget is spent, 413 for
    an image larger than the whole budget."""
    media = media_type(request)
    if media not in imgs.ACCEPTED_TYPES:
        raise ApiError(
            415,
            f"Content-Type must be one of {', '.join(sorted(imgs.ACCEPTED_TYPES))}, got {media or 'none'!r}",
        )
    body = await read_body(request, state.config.max_body_bytes, state.config.timeout_s)
    try:
        width, height = imgs.image_size(body, content_type=media, max_pixels=state.config.max_pixels)
    except imgs.ImageError as exc:
        raise ApiError(exc.status, str(exc)) from None
    with contextlib.ExitStack() as reserved:
        try:
            reserved.enter_context(state.budget.hold(width * height * BYTES_PER_PIXEL, f"a {width}x{height} image"))
        except BudgetExceeded as exc:  # nothing was decoded
            if exc.permanent:
                raise ApiError(413, str(exc)) from None
            state.metrics.rejected.inc(model=served.name, reason="memory")
            raise ApiError(503, str(exc), {"Retry-After": str(state.config.retry_after_s)}) from None
        try:
            image = await asyncio.to_thread(
                imgs.decode_image,
                body,
                content_type=media,
                channels=served.metadata.in_channels,
                max_pixels=state.config.max_pixels,
            )
        except imgs.ImageError as exc:
            raise ApiError(exc.status, str(exc)) from None
        yield image


async def run_on_image(
    request: Request,
    state: ServerState,
    served: ServedModel,
    run: Callable[[Model, dict[str, np.ndarray]], dict[str, np.ndarray]],
    kind: str,
    then: Callable[[dict[str, np.ndarray]], Any] | None = None,
) -> Any:
    """The request's image (see :func:`image_body`) through ``run(model, {"images": image[None]})`` on the
    served model's batcher (merged with concurrent ``kind`` calls), within the request timeout; ``then`` runs
    on the result in a worker thread while the image's memory is still reserved, and its value is returned."""
    timeout_s = state.config.timeout_s
    async with image_body(request, state, served) as image:
        result = await run_model(
            state,
            served,
            lambda: served.batcher.run(run, {"images": image[None]}, kind=kind, timeout_s=timeout_s),
            timeout_s,
        )
        return result if then is None else await asyncio.to_thread(then, result)


@endpoint("translate")
async def translate(request: Request, state: ServerState) -> Response:
    """PNG/JPEG body -> PNG. Concurrent same-size images are merged into one ``model.translate`` call; the
    image's memory stays reserved until its answer is encoded (see :func:`image_body`)."""
    served = state.model(request.path_params["name"])
    _require_task(served, "translate", "translate")

    def run(model: Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "images": _as_images(model.translate(feeds["images"]), what=f"model {served.name!r} translate")
        }

    png = await run_on_image(
        request, state, served, run, "translate", then=lambda result: imgs.encode_png(result["images"][0])
    )
    return Response(png, media_type="image/png")


def int_param(params: Mapping[str, Any], name: str, *, default: int | None, lo: int, hi: int) -> int | None:
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


def sample_labels(params: Mapping[str, Any], served: ServedModel, n: int) -> np.ndarray | None:
    """int64 (n,) class labels from ``labels`` (an int, a list, or "1,2,3"); the runtime's rule (cycle through
    the classes) when absent."""
    raw = params.get("labels")
    if isinstance(raw, str):
        raw = [int_param({"labels": part.strip()}, "labels", default=None, lo=-(2**63), hi=2**63 - 1)
               for part in raw.split(",")]  # fmt: skip
    if raw is not None and not (isinstance(raw, int) and not isinstance(raw, bool)):
        if not isinstance(raw, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            raise ApiError(400, f"'labels' must be an integer or a list of integers, got {raw!r}")
    try:
        return served.model.labels(raw, n)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, f"model {served.name!r}: {exc}") from None


@endpoint("sample")
async def sample(request: Request, state: ServerState) -> Response:
    """``n``, ``seed``, ``labels``, ``nrow`` -> PNG grid, identical to ``ganrt sample -n N --seed S [--labels L]
    [--nrow R]`` and to a grid of ``model.sample(n, seed=seed)``.

    Latents and default labels come from the model's own ``latents``/``labels`` (what ``sample`` uses), so
    concurrent sample requests are merged into one ``model.decode`` call and each still equals
    ``model.sample(n, seed=seed)``.
    """
    from ganrt.runtime import images as runtime_images

    served = state.model(request.path_params["name"])
    _require_task(served, "sample", "sample")
    body = await read_body(request, 64 * 1024, state.config.timeout_s)
    params: dict[str, Any] = dict(request.query_params)
    if body.strip():
        if media_type(request) != "application/json":
            raise ApiError(
                415, f"a sample request body must be application/json, got {media_type(request)!r}"
            )
        params.update(json_object(body, "'n', 'seed', 'labels'"))
    unknown = sorted(set(params) - {"n", "seed", "labels", "nrow"})
    if unknown:
        raise ApiError(400, f"unknown sample parameter {unknown[0]!r}; expected n, seed, labels, nrow")
    n = int_param(params, "n", default=1, lo=1, hi=state.config.max_sample)
    assert n is not None
    nrow = int_param(params, "nrow", default=None, lo=1, hi=n)
    seed = int_param(params, "seed", default=None, lo=0, hi=2**64 - 1)
    z, seed = served.model.latents(n, seed=seed)
    feeds = {"z": z}
    labels = sample_labels(params, served, n)
    if labels is not None:
        feeds["label"] = labels

    def run(model: Model, f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = model.decode(f["z"], labels=f.get("label"))
        return {"images": _as_images(images, what=f"model {served.name!r} decode")}

    timeout_s = state.config.timeout_s
    result = await run_model(
        state, served, lambda: served.batcher.run(run, feeds, kind="sample", timeout_s=timeout_s), timeout_s
    )
    png = await asyncio.to_thread(lambda: imgs.encode_png(runtime_images.grid(result["images"], nrow)))
    return Response(png, media_type="image/png", headers={"X-Ganrt-Seed": str(seed)})


def routes() -> list[Route]:
    return [
        Route("/v1/models/{name}/translate", translate, methods=["POST"]),
        Route("/v1/models/{name}/sample", sample, methods=["POST"]),
    ]
