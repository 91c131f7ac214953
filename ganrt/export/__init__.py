"""ganrt.export: run directory -> parity-checked ONNX model, TensorRT engine or Triton model repository.

Public API (contract 6)::

    export(run_dir, *, format="onnx"|"engine"|"triton", output=None, recipe=None,
           precision="fp32"|"fp16", batch=(1, 1, 8), height=None, width=None, opset=None, part=None,
           progress=True, ...) -> ExportResult
    lint(model) -> LintReport            # TensorRT ONNX operator support check, no TensorRT needed

Errors: :class:`ExportError` (base), :class:`ParityError` (the gate failed; ``.rows``), :class:`LintError`.
Artifact metadata: :class:`ArtifactMetadata` and graph tensor names :data:`IO_NAMES`, re-exported from the
artifact schema :mod:`ganrt.artifact`.

Importing this package is light (no torch/onnx); the heavy modules load on first call.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ganrt.artifact import IO_NAMES, ArtifactMetadata, io_names
from ganrt.export.result import ExportError, ExportResult, LintError, ParityError, ParityRow, format_parity

if TYPE_CHECKING:
    from pathlib import Path

    import onnx

    from ganrt.export.lint import LintReport


def export(run_dir: str | os.PathLike[str], **kwargs: Any) -> ExportResult:
    """Export and verify the inference network of a run; see :func:`ganrt.export.pipeline.export`."""
    from ganrt.export.pipeline import export as _export

    return _export(run_dir, **kwargs)


def lint(model: onnx.ModelProto | str | Path) -> LintReport:
    """Check every node of an ONNX model against TensorRT's documented ONNX operator support."""
    from ganrt.export.lint import lint_model

    return lint_model(model)


__all__ = [
    "IO_NAMES",
    "ArtifactMetadata",
    "ExportError",
    "ExportResult",
    "LintError",
    "ParityError",
    "ParityRow",
    "export",
    "format_parity",
    "io_names",
    "lint",
]
