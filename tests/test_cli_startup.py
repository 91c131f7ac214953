"""`ganrt --help` and option checks stay light: parsing the command line imports no framework."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from ganrt.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
from ganrt.train.options import GAN_MODES, NORMS
print(sorted(m for m in ("torch", "onnxruntime", "openvino", "tensorrt") if m in sys.modules))
"""


def test_help_imports_no_framework() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]
