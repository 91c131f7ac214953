"""Exceptions shared by every stage. Each message names the input, the requirement and what was found.

Stage packages raise these (or their own subclasses); ``ganrt.cli`` turns :class:`CLIError` into one line on
stderr and exit status 2.
"""

from __future__ import annotations


class CLIError(Exception):
    """An error to show the user as one line, with a non-zero exit status."""


class ArtifactError(ValueError):
    """The file or directory is not a model ganrt can read: unknown extension, truncated or corrupt contents,
    or a checkpoint that would need unpickling arbitrary objects."""


class MetadataError(ValueError):
    """The artifact carries no (or broken) ganrt metadata and its inputs/outputs do not determine what is
    missing. The message lists the keyword arguments ``ganrt.load`` needs (``family=``, ``image_size=``, ...).
    """


class BackendUnavailableError(RuntimeError):
    """The requested backend or device cannot run here (TensorRT not installed, no CUDA device, ...)."""
