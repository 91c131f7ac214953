"""ganrt.runtime: one ``load()`` for TensorRT engines, ONNX models and run directories.

>>> model = ganrt.load("pix2pix.onnx")          # or .engine, or a run directory
>>> photo = model(edges)                          # PIL / numpy / torch in, the same kind out
>>> faces = ganrt.load("vae_decoder.onnx").sample(16, seed=0)

Backends follow Polygraphy's split: a loader reads the artifact, a runner (``ganrt.runtime.backends``) owns
sessions, streams and buffers; :class:`Model` adds pre/post-processing with ganrt's fused kernels.
Attributes are imported on first use so the CLI modules in this package stay light (``ganrt --help``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganrt.runtime.backends.base import TensorSpec
    from ganrt.runtime.errors import ArtifactError, BackendUnavailableError, MetadataError
    from ganrt.runtime.loader import load
    from ganrt.runtime.model import Model

_EXPORTS = {
    "ArtifactError": "ganrt.runtime.errors",
    "BackendUnavailableError": "ganrt.runtime.errors",
    "MetadataError": "ganrt.runtime.errors",
    "Model": "ganrt.runtime.model",
    "TensorSpec": "ganrt.runtime.backends.base",
    "load": "ganrt.runtime.loader",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ganrt.runtime' has no attribute {name!r}")


__all__ = ["ArtifactError", "BackendUnavailableError", "MetadataError", "Model", "TensorSpec", "load"]
