"""The whole suite collects where optional packages are missing (the GPU machine's image has no tritonclient,
onnxconverter-common, uvicorn/starlette, mlcommons-loadgen, PyTriton or TensorRT): one module that imports
an optional package at import time would abort collection, and with it every GPU test of the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Top-level import names of the optional extras (and TensorRT), as `import` sees them.
OPTIONAL = (
    "tritonclient",
    "onnxconverter_common",
    "uvicorn",
    "starlette",
    "mlperf_loadgen",
    "pytriton",
    "tensorrt",
)


def test_suite_collects_without_optional_packages(tmp_path: Path) -> None:
    # A None entry in sys.modules is how CPython spells "not installed": `import x` raises ModuleNotFoundError
    # and importlib.util.find_spec("x") returns None, exactly as on a machine without the package.
    runner = tmp_path / "collect_without_optional.py"
    runner.write_text(
        textwrap.dedent(
            f"""
            import sys
            for name in {OPTIONAL!r}:
                sys.modules[name] = None
            import pytest
            sys.exit(pytest.main(sys.argv[1:]))
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(runner), "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "cuda or not cuda",
         str(ROOT / "tests")],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "error" not in output.lower().split("short test summary")[-1], output[-4000:]
    # The modules that need an optional package say so instead of failing.
    assert "test_triton.py" in output and "tritonclient[grpc] is not installed" in output
    assert "tests/gpu/test_ops_cuda.py::" in output
