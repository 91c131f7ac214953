"""What :func:`ganrt.export.export` returns and raises. Plain data, no heavy imports."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ganrt.artifact import ArtifactMetadata

if TYPE_CHECKING:
    from ganrt.export.lint import LintReport


class ExportError(RuntimeError):
    """The export could not be carried out: unreadable run directory, invalid option, unsupported graph,
    missing TensorRT/GPU, ... The message names the input, the requirement and what was found."""


@dataclasses.dataclass(frozen=True)
class ParityRow:
    """Agreement of one graph output between the PyTorch model and the exported artifact.

    ``psnr`` is in dB against the output's peak-to-peak range (2.0 for images in [-1, 1]); ``inf`` when the
    outputs are identical. ``uint8_mean_abs``: for image outputs, the mean difference of the two as uint8
    pictures, in levels (``None`` for other outputs). ``criteria`` says which thresholds were applied, e.g.
    ``"max_abs <= 0.0001"``.
    """

    output: str
    max_abs: float
    mean_abs: float
    psnr: float
    passed: bool
    criteria: str = ""
    backend: str = "onnxruntime"
    uint8_mean_abs: float | None = None

    def __str__(self) -> str:
        psnr = "inf" if math.isinf(self.psnr) else f"{self.psnr:.1f} dB"
        verdict = "ok" if self.passed else "FAILED"
        levels = "" if self.uint8_mean_abs is None else f", uint8 mean_abs {self.uint8_mean_abs:.3g} levels"
        return (
            f"{self.backend}:{self.output}: max_abs {self.max_abs:.3g}, mean_abs {self.mean_abs:.3g}, "
            f"PSNR {psnr}{levels} ({self.criteria}) {verdict}"
        )


def format_parity(rows: list[ParityRow]) -> str:
    """Plain-text parity report, one line per output."""
    return "\n".join(str(row) for row in rows)


class ParityError(ExportError):
    """The exported artifact disagrees with the PyTorch model beyond the recipe's thresholds.

    Nothing was written at the output path; ``rows`` holds the full report.
    """

    def __init__(self, message: str, rows: list[ParityRow]) -> None:
        super().__init__(f"{message}\n{format_parity(rows)}")
        self.rows = rows


class LintError(ExportError):
    """The TensorRT lint found nodes TensorRT cannot build; nothing was written. ``report`` lists them all."""

    def __init__(self, report: LintReport) -> None:
        lines = [f"  {i.severity}: {i.node} ({i.op_type}): {i.message}" for i in report.issues]
        super().__init__(report.summary() + ("\n" + "\n".join(lines) if lines else ""))
        self.report = report


@dataclasses.dataclass
class ExportResult:
    """Outcome of a successful export.

    ``path`` is the artifact (``.onnx``, ``.engine`` or the Triton model folder); ``files`` lists everything
    written. ``fused`` says whether the graph was traced through ganrt's fused ops (their ONNX translation)
    or, after a failure there, through the stock PyTorch modules (``notes`` then says why).
    """

    path: Path
    format: str
    metadata: ArtifactMetadata
    parity: list[ParityRow]
    files: list[Path] = dataclasses.field(default_factory=list)
    inputs: dict[str, tuple[int | str, ...]] = dataclasses.field(default_factory=dict)
    outputs: dict[str, tuple[int | str, ...]] = dataclasses.field(default_factory=dict)
    opset: int = 0
    fused: bool = True
    lint: LintReport | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
