"""ganrt.runtime: one ``load()`` for TensorRT engines, ONNX models and run directories.

>>> model = ganrt.load("pix2pix.onnx")          # or .engine, or a run directory -> a Translator
>>> photo = model(edges)                          # PIL / numpy / torch in, the same kind out
>>> faces = ganrt.load("vae_decoder.onnx").sample(16, seed=0)   # a Sampler

Runners come from the shared backend layer (:mod:`ganrt.backends`); the task objects
(:class:`Translator`, :class:`Sampler`, :class:`VAE`, :class:`Encoder`) add pre/post-processing with ganrt's
fused kernels. Attributes are imported on first use so the CLI modules in this package stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganrt._lazy import lazy_getattr

if TYPE_CHECKING:
    from ganrt.backends.base import TensorSpec
    from ganrt.errors import ArtifactError, BackendUnavailableError, MetadataError
    from ganrt.runtime.loader import load
    from ganrt.runtime.model import Model
    from ganrt.runtime.sampler import VAE, Encoder, Sampler
    from ganrt.runtime.translator import Translator

_EXPORTS = {
    "ArtifactError": "ganrt.errors",
    "BackendUnavailableError": "ganrt.errors",
    "MetadataError": "ganrt.errors",
    "Model": "ganrt.runtime.model",
    "Translator": "ganrt.runtime.translator",
    "Sampler": "ganrt.runtime.sampler",
    "VAE": "ganrt.runtime.sampler",
    "Encoder": "ganrt.runtime.sampler",
    "TensorSpec": "ganrt.backends.base",
    "load": "ganrt.runtime.loader",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "VAE",
    "ArtifactError",
    "BackendUnavailableError",
    "Encoder",
    "MetadataError",
    "Model",
    "Sampler",
    "TensorSpec",
    "Translator",
    "load",
]
