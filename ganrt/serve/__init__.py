"""ganrt.serve: HTTP serving of runtime models on the KServe v2 protocol, with dynamic batching.

``ganrt serve`` (:mod:`ganrt.serve.cli`) is the command; in Python::

    from ganrt.serve import ServerThread, ServeConfig
    with ServerThread({"dcgan": ganrt.load("dcgan.onnx")}, config=ServeConfig(max_batch=16)) as srv:
        ...  # tritonclient.http.InferenceServerClient(srv.url.removeprefix("http://"))

Attributes load lazily so ``import ganrt.serve`` (and ``ganrt --help``) never pulls in the web stack.
"""

from __future__ import annotations

from ganrt._lazy import lazy_getattr

_EXPORTS = {
    "ServeConfig": "ganrt.serve.config",
    "create_app": "ganrt.serve.app",
    "Batcher": "ganrt.serve.batching",
    "QueueFullError": "ganrt.serve.batching",
    "DrainingError": "ganrt.serve.batching",
    "serve": "ganrt.serve.server",
    "ServerThread": "ganrt.serve.server",
    "serve_pytriton": "ganrt.serve.pytriton_backend",
    "PyTritonUnavailableError": "ganrt.serve.pytriton_backend",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
