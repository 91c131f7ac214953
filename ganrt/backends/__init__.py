"""ganrt.backends: the one backend layer. Export's parity gate, the runtime, bench and serve use these runners.

=============  ====================================  ==================  ==========
backend        runner                                reads               devices
=============  ====================================  ==================  ==========
onnxruntime    :class:`~.onnxruntime.OnnxRuntimeRunner`  ``.onnx``        cpu, cuda
openvino       :class:`~.openvino.OpenVinoRunner`    ``.onnx``           cpu
tensorrt       :class:`~.tensorrt.TensorRTRunner`    ``.engine``/``.plan``  cuda
torch          :class:`~.torch.TorchRunner`          run directories     cpu, cuda
=============  ====================================  ==================  ==========

Adding a backend is one module with a :class:`~ganrt.backends.base.Runner` subclass and one line in
:data:`BACKENDS`. Frameworks are imported when a runner is loaded, so importing this package never fails
because an optional one (TensorRT, onnxruntime-gpu) is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ganrt.backends.base import Runner

# backend name -> "module:class" of its runner (imported on first use).
BACKENDS: dict[str, str] = {
    "onnxruntime": "ganrt.backends.onnxruntime:OnnxRuntimeRunner",
    "openvino": "ganrt.backends.openvino:OpenVinoRunner",
    "tensorrt": "ganrt.backends.tensorrt:TensorRTRunner",
    "torch": "ganrt.backends.torch:TorchRunner",
}
# artifact kind -> the backends that read it, preferred first.
READERS: dict[str, tuple[str, ...]] = {
    "engine": ("tensorrt",),
    "onnx": ("onnxruntime", "openvino"),
    "run": ("torch",),
}


def runner_class(backend: str) -> type[Runner]:
    """The :class:`Runner` subclass of ``backend`` (imports its module, not its framework)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    module, _, name = BACKENDS[backend].partition(":")
    return getattr(importlib.import_module(module), name)


__all__ = ["BACKENDS", "READERS", "runner_class"]
