"""ganrt.bench: side-by-side latency of PyTorch eager, torch.compile, ONNX Runtime, the ganrt runtime and
TensorRT on one model, with MLPerf LoadGen scenarios (``ganrt bench`` on the command line).

```python
from ganrt.bench import BenchSettings, benchmark, print_report, write_json, plot_report
report = benchmark("cyclegan", BenchSettings(backends=("torch", "onnxruntime"), batches=(1, 8)))
```

Submodules import their frameworks lazily, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BenchSettings": "ganrt.bench.core",
    "benchmark": "ganrt.bench.core",
    "BACKENDS": "ganrt.bench.backends",
    "SCENARIOS": "ganrt.bench.loadgen",
    "Unavailable": "ganrt.bench.target",
    "latency_stats": "ganrt.bench.stats",
    "machine_info": "ganrt.bench.machine",
    "print_report": "ganrt.bench.render",
    "write_json": "ganrt.bench.render",
    "plot_report": "ganrt.bench.render",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ganrt.bench' has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "SCENARIOS",
    "BenchSettings",
    "Unavailable",
    "benchmark",
    "latency_stats",
    "machine_info",
    "plot_report",
    "print_report",
    "write_json",
]
