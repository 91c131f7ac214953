"""What the routes share: the served models (instances, batcher, protocol metadata) and the server's state.

A served model talks to the runtime only through its public API (``check_feeds``, ``infer``, ``translate``,
``latents``/``labels``/``decode``, ``info``); its Triton configuration comes from
:func:`ganrt.export.triton.config_dict`, the function that writes ``config.pbtxt``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ganrt.serve import protocol
from ganrt.serve.batching import Batcher
from ganrt.serve.budget import MemoryBudget
from ganrt.serve.config import ServeConfig, is_batchable
from ganrt.serve.http import ApiError
from ganrt.serve.metrics import ServerMetrics

if TYPE_CHECKING:
    from ganrt.runtime import Model

MODEL_VERSION = "1"


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
        self.instance_kind = "cpu" if str(info.get("device", "cpu")).startswith("cpu") else "gpu"

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
        """Triton model configuration (``GET /v2/models/{name}/config``), built by the function that writes
        ``config.pbtxt`` for ``ganrt export --format triton``."""
        from ganrt.export.triton import config_dict

        return config_dict(
            self.name,
            platform=self.platform,
            inputs=[(s.name, s.dtype, s.shape) for s in self.inputs.values()],
            outputs=[(s.name, s.dtype, s.shape) for s in self.outputs.values()],
            max_batch=self.batcher.max_batch if self.batchable else 0,
            instances=len(self.instances),
            kind=self.instance_kind,
            max_queue_delay_us=int(config.max_delay_ms * 1000),
            max_queue_size=config.max_queue,
            timeout_us=int(config.timeout_s * 1e6),
        )

    def warmup(self) -> None:
        """One small call through the paths the endpoints use, so the first request does not pay for lazy
        imports, kernel registration and ONNX Runtime's first-run allocations. Runs before the server reports
        ready."""
        md = self.metadata
        for model in self.instances:
            if md.task == "sample":
                z, _ = model.latents(1, seed=0)
                model.decode(z, labels=model.labels(None, 1))
            elif md.task == "translate":
                side = max(md.multiple, min(md.image_size, 256))
                model.translate(np.zeros((1, side, side, md.in_channels), np.uint8))

    def check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        """Raise a 400 :class:`ApiError` naming the problem when ``feeds`` do not fit the model's inputs (the
        runtime's own check)."""
        try:
            self.model.check_feeds(feeds)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, f"model {self.name!r}: {exc}") from None


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
        self.budget = MemoryBudget(config.max_inflight_bytes)

    def in_flight(self) -> int:
        """Requests being handled by model endpoints right now (what a drain waits for)."""
        return sum(m.batcher.in_flight for m in self.models.values())

    def model(self, name: str) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise ApiError(404, f"unknown model {name!r}; this server serves: {known}")
        return served

