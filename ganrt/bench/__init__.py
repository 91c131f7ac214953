"""ganrt.bench: side-by-side latency of PyTorch eager, torch.compile, ONNX Runtime, the ganrt runtime and
TensorRT on one model, with MLPerf LoadGen scenarios (``ganrt bench`` on the command line).

```python
from ganrt.bench import BenchSettings, benchmark, print_report, write_json, plot_report
report = benchmark("cyclegan", BenchSettings(backends=("torch", "onnxruntime"), batches=(1, 8)))
```

Submodules import their frameworks lazily, so importing this package is cheap.
"""

from __future__ import annotations

from ganrt._lazy import lazy_getattr

_EXPORTS = {
    "BenchSettings": "ganrt.bench.core",
    "benchmark": "ganrt.bench.core",
    "BACKENDS": "ganrt.bench.backends",
    "SCENARIOS": "ganrt.bench.loadgen",
    "Unavailable": "ganrt.bench.target",
    "interleaved": "ganrt.bench.timing",
    "latency_stats": "ganrt.bench.stats",
    "machine_info": "ganrt.bench.machine",
    "print_report": "ganrt.bench.render",
    "write_json": "ganrt.bench.render",
    "plot_report": "ganrt.bench.render",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "BACKENDS",
    "SCENARIOS",
    "BenchSettings",
    "Unavailable",
    "benchmark",
    "interleaved",
    "latency_stats",
    "machine_info",
    "plot_report",
    "print_report",
    "write_json",
]
