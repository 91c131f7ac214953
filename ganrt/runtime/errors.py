"""Exceptions of :mod:`ganrt.runtime`; each message names the artifact, the requirement and what was found."""

from __future__ import annotations


class ArtifactError(ValueError):
    """The file or directory is not a model ganrt can read: unknown extension, truncated or corrupt contents,
    or a checkpoint that would need unpickling arbitrary objects."""


class MetadataError(ValueError):
    """The artifact carries no ganrt metadata and its inputs/outputs do not determine what is missing.

    The message lists the keyword arguments ``ganrt.load`` needs (``family=``, ``image_size=``, ...).
    """


class BackendUnavailableError(RuntimeError):
    """The requested backend or device cannot run here (TensorRT not installed, no CUDA device, ...)."""
