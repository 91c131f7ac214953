"""ganrt: train, export and serve image GANs and VAEs with fused kernels and a one-line runtime.

``import ganrt`` stays light: stage packages (``ganrt.ops``, ``ganrt.models``, ...) are imported on first use,
and optional pieces (CUDA kernels, TensorRT, PyTriton) are only looked up when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = ("ops", "nn", "models", "data", "train", "export", "runtime", "serve", "bench")

if TYPE_CHECKING:
    from ganrt.runtime import Model


def cuda_available() -> bool:
    """True when ganrt's CUDA kernels were compiled in *and* a CUDA device is visible.

    Never initialises CUDA through torch; asks the CUDA runtime linked into ``ganrt._C``.
    """
    from ganrt import _C

    return bool(_C.cuda_compiled) and _C.cuda_device_count() > 0


def load(path: Any, **kwargs: Any) -> Model:
    """Load an engine, ONNX model, run directory or checkpoint for inference; see :func:`ganrt.runtime.load`."""
    from ganrt.runtime import load as _load

    return _load(path, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"ganrt.{name}")
    raise AttributeError(f"module 'ganrt' has no attribute {name!r}")


__all__ = ["__version__", "cuda_available", "load", *_SUBMODULES]
