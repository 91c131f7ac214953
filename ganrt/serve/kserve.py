"""KServe v2 / Open Inference Protocol routes: health, server and model metadata, model config, infer.

``{name}`` is a served model; ``/versions/{version}`` variants accept version ``1``. ``infer`` takes JSON
tensor data or the binary-data extension (see :mod:`ganrt.serve.protocol`).
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ganrt import __version__
from ganrt.serve import protocol
from ganrt.serve.http import ApiError, endpoint, media_type, read_body, run_model
from ganrt.serve.state import MODEL_VERSION, ServedModel, ServerState


def _check_version(request: Request, served: ServedModel) -> None:
    version = request.path_params.get("version")
    if version is not None and version != MODEL_VERSION:
        raise ApiError(
            404, f"model {served.name!r} has no version {version!r}; it serves version {MODEL_VERSION}"
        )



@endpoint("health_live")
async def health_live(request: Request, state: ServerState) -> Response:
    return JSONResponse({"live": True})


@endpoint("health_ready")
async def health_ready(request: Request, state: ServerState) -> Response:
    ready = state.ready and not state.draining
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@endpoint("server_metadata")
async def server_metadata(request: Request, state: ServerState) -> Response:
    return JSONResponse(
        {"name": "ganrt", "version": __version__, "extensions": ["binary_tensor_data", "model_configuration"]}
    )


@endpoint("model_metadata")
async def model_metadata(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    return JSONResponse(served.metadata_json())


@endpoint("model_config")
async def model_config(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    return JSONResponse(served.config_json(state.config))


@endpoint("model_ready")
async def model_ready(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    ready = state.ready and not state.draining and not served.batcher.closing
    return JSONResponse({"name": served.name, "ready": ready}, status_code=200 if ready else 503)


_INFER_MEDIA = {"", "application/json", "application/octet-stream"}


@endpoint("infer")
async def infer(request: Request, state: ServerState) -> Response:
    served = state.model(request.path_params["name"])
    _check_version(request, served)
    media = media_type(request)
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
    outputs = await run_model(
        state, served, lambda: served.batcher.infer(feeds, timeout_s=timeout_s), timeout_s
    )
    selection = requested or [protocol.RequestedOutput(n, req.binary_default) for n in served.outputs]
    chosen = [(o.name, np.asarray(outputs[o.name]), o.binary) for o in selection]
    try:
        if sum(a.size for _, a, binary in chosen if not binary) > 1 << 16:
            content, headers = await asyncio.to_thread(
                protocol.encode_infer_response, served.name, MODEL_VERSION, req.id, chosen
            )
        else:
            content, headers = protocol.encode_infer_response(served.name, MODEL_VERSION, req.id, chosen)
    except protocol.ProtocolError as exc:
        raise ApiError(exc.status, f"model {served.name!r}: {exc}") from None
    content_type = headers.pop("content-type")
    return Response(content, media_type=content_type, headers=headers)


def routes() -> list[Route]:
    return [
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
    ]
