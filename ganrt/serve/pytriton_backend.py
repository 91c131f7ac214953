"""``ganrt serve --backend pytriton``: ganrt's runtime models inside a real Triton Inference Server.

PyTriton (``pip install nvidia-pytriton``, the ``ganrt[pytriton]`` extra) starts a bundled ``tritonserver``
and proxies its Python backend to an inference callable in this process. The result speaks exactly the KServe
v2 API of ``ganrt serve`` (HTTP on ``port``, plus Triton's gRPC on ``port + 1`` and Prometheus metrics on
``port + 2``), with Triton's dynamic batcher instead of ganrt's, so clients move between the two unchanged.

Two environment facts (see ``REFERENCE.md`` §4): nvidia-pytriton pins ``numpy<2``, so it lives in its own
environment, not ganrt's default one; and its backend stub links the interpreter's shared libpython, which
must be on ``LD_LIBRARY_PATH`` for pyenv-style interpreters. The import is lazy and a missing package raises
:class:`PyTritonUnavailableError` saying how to install it.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ganrt.serve.config import ServeConfig, is_batchable

if TYPE_CHECKING:
    from ganrt.runtime import Model

INSTALL_HINT = (
    "pip install 'nvidia-pytriton>=0.7' (the ganrt[pytriton] extra); it pins numpy<2, so install it in a "
    "separate virtual environment together with ganrt"
)


class PyTritonUnavailableError(RuntimeError):
    """nvidia-pytriton is not importable in this environment."""


def import_pytriton() -> dict[str, Any]:
    """The PyTriton classes ganrt uses; raises :class:`PyTritonUnavailableError` naming the install
    command."""
    try:
        from pytriton.decorators import batch
        from pytriton.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor, TimeoutAction
        from pytriton.triton import Triton, TritonConfig
    except ImportError as exc:
        raise PyTritonUnavailableError(
            f"--backend pytriton needs nvidia-pytriton ({exc}); {INSTALL_HINT}"
        ) from exc
    return {
        "batch": batch,
        "DynamicBatcher": DynamicBatcher,
        "ModelConfig": ModelConfig,
        "QueuePolicy": QueuePolicy,
        "Tensor": Tensor,
        "TimeoutAction": TimeoutAction,
        "Triton": Triton,
        "TritonConfig": TritonConfig,
    }


def _libpython_on_path() -> None:
    """Put the directory of this interpreter's libpython on LD_LIBRARY_PATH for Triton's Python backend
    stub."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if not libdir:
        return
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir not in current.split(os.pathsep):
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, current) if p)


def _infer_callable(model: Model, batched: bool, batch_decorator: Callable[[Any], Any]) -> Callable[..., Any]:
    """The callable Triton's Python backend invokes: named numpy inputs in, named numpy outputs out."""
    names = [s.name for s in model.inputs]
    dtypes = {s.name: np.dtype(s.dtype) for s in model.inputs}

    def infer_fn(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {name: np.ascontiguousarray(inputs[name], dtype=dtypes[name]) for name in names}
        return model.infer(feeds)

    return batch_decorator(infer_fn) if batched else infer_fn


def serve_pytriton(
    models: Mapping[str, Model | Sequence[Model]],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig | None = None,
) -> None:
    """Serve ``models`` on PyTriton's Triton server until interrupted.

    ``models``: name -> :class:`ganrt.runtime.Model`, or a list of loaded copies of one artifact, which become
    that many Triton model instances (one inference callable each).
    """
    pt = import_pytriton()
    config = config or ServeConfig()
    _libpython_on_path()
    triton_config = pt["TritonConfig"](
        http_address=host,
        http_port=port,
        grpc_address=host,
        grpc_port=port + 1,
        metrics_port=port + 2,
        exit_timeout_secs=int(config.timeout_s) + 5,
    )
    with pt["Triton"](config=triton_config) as triton:
        for name, entry in models.items():
            instances = list(entry) if isinstance(entry, Sequence) else [entry]
            model = instances[0]
            batched = is_batchable(model)
            max_batch = min(config.max_batch, int(model.max_batch)) if model.max_batch else config.max_batch

            def tensors(specs: Any, batched: bool = batched) -> list[Any]:
                return [
                    pt["Tensor"](
                        name=s.name, dtype=np.dtype(s.dtype), shape=tuple(s.shape[1:] if batched else s.shape)
                    )
                    for s in specs
                ]

            policy = pt["QueuePolicy"](
                timeout_action=pt["TimeoutAction"].REJECT,
                default_timeout_microseconds=int(config.timeout_s * 1e6),
                allow_timeout_override=True,
                max_queue_size=config.max_queue,
            )
            model_config = pt["ModelConfig"](
                batching=batched,
                max_batch_size=max_batch if batched else 0,
                batcher=pt["DynamicBatcher"](
                    max_queue_delay_microseconds=int(config.max_delay_ms * 1000),
                    default_queue_policy=policy,
                ),
            )
            triton.bind(
                model_name=name,
                infer_func=[_infer_callable(m, batched, pt["batch"]) for m in instances],
                inputs=tensors(model.inputs),
                outputs=tensors(model.outputs),
                config=model_config,
                strict=True,
            )
        triton.serve()
