"""Export recipes: per-family defaults (opset, shape ranges, precision, parity thresholds, TensorRT and Triton
settings) read from ``ganrt/export/recipes/<family>.toml`` (package data, shipped in the wheel).

A recipe only sets defaults; every value can be overridden by an argument of :func:`ganrt.export.export` or a
``ganrt export`` flag. Unknown keys are errors, so a typo in a recipe never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ganrt.export.result import ExportError
from ganrt.families import FAMILIES

PRECISIONS: tuple[str, ...] = ("fp32", "fp16")
# max_abs / mean_abs: upper bounds on |difference| of the float outputs; psnr: lower bound in dB;
# uint8_mean_abs: upper bound on the mean |difference| of image outputs as uint8 pictures, in levels.
METRICS: tuple[str, ...] = ("max_abs", "mean_abs", "psnr", "uint8_mean_abs")
TRITON_KINDS: tuple[str, ...] = ("gpu", "cpu")
# The lowest opset whose InstanceNormalization/Pad/Resize semantics the exporter and TensorRT agree on; the
# upper bound is the newest opset TensorRT 10.x's ONNX parser documents (see ganrt.export.lint).
MIN_OPSET = 18
MAX_OPSET = 24

Range = tuple[int, int, int]

# The bundled recipes, one per family: package data (ganrt/export/recipes/<family>.toml), so a source checkout
# and an installed wheel read the same files.
RECIPE_DIR = Path(__file__).resolve().parent / "recipes"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Resolved export defaults. Ranges are ``(min, opt, max)``; ``height``/``width`` ``None`` = the model's
    native resolution, fixed. ``thresholds[precision]`` maps a metric (``max_abs``, ``mean_abs``: upper
    bounds; ``psnr``: lower bound in dB; ``uint8_mean_abs``: upper bound in levels on image outputs as uint8
    pictures) to its limit; every output must meet all of them. ``thresholds["fp16"]`` also bounds every
    reduced precision the runtime may pick (OpenVINO bf16)."""

    family: str | None = None
    source: str = "built-in defaults"
    opset: int = 18
    part: str | None = None
    direction: str = "AtoB"
    precision: str = "fp32"
    batch: Range = (1, 1, 8)
    height: Range | None = None
    width: Range | None = None
    parity_samples: int = 3
    thresholds: Mapping[str, Mapping[str, float]] = dataclasses.field(
        default_factory=lambda: {"fp32": {"max_abs": 1e-4}, "fp16": {"psnr": 40.0, "uint8_mean_abs": 2.0}}
    )
    lint_tensorrt: bool = False
    workspace_mib: int = 4096
    timing_cache: str = "~/.cache/ganrt/tensorrt.timing-cache"
    triton_max_batch: int = 8
    triton_preferred_batch: tuple[int, ...] = (4, 8)
    triton_max_queue_delay_us: int = 100
    triton_instances: int = 1
    triton_kind: str = "gpu"


def parse_range(text: str | int | Sequence[int], name: str) -> Range:
    """``"MIN:OPT:MAX"``, ``"N"`` (fixed), an int or a 3-sequence -> validated ``(min, opt, max)``."""
    if isinstance(text, int):
        values: list[int] = [text] * 3
    elif isinstance(text, str):
        parts = text.split(":")
        if len(parts) not in (1, 3):
            raise ExportError(f"{name} must be N or MIN:OPT:MAX, got {text!r}")
        try:
            values = [int(p) for p in parts] * (3 if len(parts) == 1 else 1)
        except ValueError:
            raise ExportError(f"{name} must be integers N or MIN:OPT:MAX, got {text!r}") from None
    else:
        values = list(text)
        if len(values) == 1:
            values = values * 3
        if len(values) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ExportError(f"{name} must be three integers [min, opt, max], got {text!r}")
    lo, opt, hi = values
    if not 1 <= lo <= opt <= hi:
        raise ExportError(f"{name} must satisfy 1 <= min <= opt <= max, got {lo}:{opt}:{hi}")
    return (lo, opt, hi)


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ExportError(f"{source}: [{key}] must be a table, got {type(value).__name__}")
    return value


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, source: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ExportError(
            f"{source}: unknown key(s) {', '.join(unknown)} in {where}; allowed: {', '.join(allowed)}"
        )


def _typed(value: Any, kind: type, key: str, source: str) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ExportError(f"{source}: {key} must be {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):  # TOML has nan and inf; no threshold means either
        raise ExportError(f"{source}: {key} must be a finite number, got {value!r}")
    return value


def recipe_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Recipe:
    """Build a :class:`Recipe` from parsed TOML, validating every key and value."""
    _check_keys(
        data,
        ("family", "onnx", "shapes", "precision", "parity", "lint", "tensorrt", "triton"),
        "the top level",
        source,
    )
    kw: dict[str, Any] = {"source": source}
    if "family" in data:
        family = data["family"]
        if family not in FAMILIES:
            raise ExportError(f"{source}: family must be one of {FAMILIES}, got {family!r}")
        kw["family"] = family

    onnx_t = _table(data, "onnx", source)
    _check_keys(onnx_t, ("opset", "part", "direction"), "[onnx]", source)
    if "opset" in onnx_t:
        kw["opset"] = _typed(onnx_t["opset"], int, "onnx.opset", source)
        if not MIN_OPSET <= kw["opset"] <= MAX_OPSET:
            raise ExportError(
                f"{source}: onnx.opset must be in [{MIN_OPSET}, {MAX_OPSET}], got {kw['opset']}"
            )
    if "part" in onnx_t:
        kw["part"] = _typed(onnx_t["part"], str, "onnx.part", source)
    if "direction" in onnx_t:
        kw["direction"] = _typed(onnx_t["direction"], str, "onnx.direction", source)

    shapes = _table(data, "shapes", source)
    _check_keys(shapes, ("batch", "height", "width"), "[shapes]", source)
    for key in ("batch", "height", "width"):
        if key in shapes:
            kw[key] = parse_range(shapes[key], f"{source}: shapes.{key}")

    prec = _table(data, "precision", source)
    _check_keys(prec, ("default",), "[precision]", source)
    if "default" in prec:
        if prec["default"] not in PRECISIONS:
            raise ExportError(
                f"{source}: precision.default must be one of {PRECISIONS}, got {prec['default']!r}"
            )
        kw["precision"] = prec["default"]

    parity = _table(data, "parity", source)
    _check_keys(parity, ("samples", *PRECISIONS), "[parity]", source)
    if "samples" in parity:
        kw["parity_samples"] = _typed(parity["samples"], int, "parity.samples", source)
        if kw["parity_samples"] < 1:
            raise ExportError(f"{source}: parity.samples must be >= 1, got {kw['parity_samples']}")
    thresholds = {p: dict(t) for p, t in Recipe().thresholds.items()}
    for p in PRECISIONS:
        if p in parity:
            table = _table(parity, p, source)
            _check_keys(table, METRICS, f"[parity.{p}]", source)
            if not table:
                raise ExportError(f"{source}: [parity.{p}] must set at least one of {', '.join(METRICS)}")
            thresholds[p] = {m: _typed(v, float, f"parity.{p}.{m}", source) for m, v in table.items()}
    kw["thresholds"] = thresholds

    lint = _table(data, "lint", source)
    _check_keys(lint, ("tensorrt",), "[lint]", source)
    if "tensorrt" in lint:
        kw["lint_tensorrt"] = _typed(lint["tensorrt"], bool, "lint.tensorrt", source)

    trt = _table(data, "tensorrt", source)
    _check_keys(trt, ("workspace_mib", "timing_cache"), "[tensorrt]", source)
    if "workspace_mib" in trt:
        kw["workspace_mib"] = _typed(trt["workspace_mib"], int, "tensorrt.workspace_mib", source)
        if kw["workspace_mib"] < 1:
            raise ExportError(f"{source}: tensorrt.workspace_mib must be >= 1, got {kw['workspace_mib']}")
    if "timing_cache" in trt:
        kw["timing_cache"] = _typed(trt["timing_cache"], str, "tensorrt.timing_cache", source)

    triton = _table(data, "triton", source)
    _check_keys(
        triton,
        ("max_batch", "preferred_batch", "max_queue_delay_us", "instances", "kind"),
        "[triton]",
        source,
    )
    for key, kind in (("max_batch", int), ("max_queue_delay_us", int), ("instances", int), ("kind", str)):
        if key in triton:
            kw[f"triton_{key}"] = _typed(triton[key], kind, f"triton.{key}", source)
    if "preferred_batch" in triton:
        pref = triton["preferred_batch"]
        if not isinstance(pref, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in pref
        ):
            raise ExportError(f"{source}: triton.preferred_batch must be a list of integers, got {pref!r}")
        kw["triton_preferred_batch"] = tuple(pref)
    if kw.get("triton_kind", "gpu") not in TRITON_KINDS:
        raise ExportError(f"{source}: triton.kind must be one of {TRITON_KINDS}, got {kw['triton_kind']!r}")
    return Recipe(**kw)


def load_recipe(path: str | Path | None, family: str) -> Recipe:
    """The recipe at ``path``, else the bundled ``ganrt/export/recipes/<family>.toml``.

    Raises :class:`ExportError` when the file is missing or invalid, or written for another family. A missing
    bundled recipe is an error too (a broken installation), never a silent fall-back to other thresholds.
    """
    if path is None:
        bundled = RECIPE_DIR / f"{family}.toml"
        if not bundled.is_file():
            raise ExportError(
                f"the bundled export recipe {bundled} is missing: this ganrt installation is incomplete "
                f"(reinstall ganrt), or pass a recipe with --recipe"
            )
        path = bundled
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"recipe {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ExportError(f"recipe {path} is not readable TOML: {exc}") from None
    recipe = recipe_from_dict(data, source=str(path))
    if recipe.family is not None and recipe.family != family:
        raise ExportError(f"recipe {path} is for family {recipe.family!r}, but the run is a {family!r} run")
    if recipe.family is None:
        recipe = dataclasses.replace(recipe, family=family)
    return recipe
