"""``export()``: run directory -> verified artifact (ONNX file, TensorRT engine or Triton model folder).

Stages: load (run + recipe), export (dynamo trace to fp32 ONNX), precision (fp16 pass), parity (ONNX Runtime
vs PyTorch), lint (TensorRT operator support), build (TensorRT engine, itself parity-checked), write. Every
artifact is assembled under a temporary name and moved into place only after every gate passed, so a failed
export leaves whatever was at the output path untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganrt.export.metadata import ArtifactMetadata
from ganrt.export.recipe import MAX_OPSET, MIN_OPSET, PRECISIONS, Range, Recipe, load_recipe, parse_range
from ganrt.export.result import ExportError, ExportResult, LintError, ParityError, ParityRow

if TYPE_CHECKING:
    import onnx
    from rich.console import Console
    from rich.progress import Progress

    from ganrt.export.tensorrt import EngineBuild
    from ganrt.export.trace import GraphPlan
    from ganrt.export.triton import TritonOptions

FORMATS: tuple[str, ...] = ("onnx", "engine", "triton")


class _Stages:
    """Times each stage and, when enabled, shows it as a line of a rich progress display."""

    def __init__(self, enabled: bool, console: Console | None) -> None:
        self.timings: dict[str, float] = {}
        self._progress: Progress | None = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(finished_text=""),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console or Console(stderr=True),
            )

    def __enter__(self) -> _Stages:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextlib.contextmanager
    def stage(self, key: str, description: str) -> Iterator[None]:
        progress = self._progress
        task = progress.add_task(description, total=1) if progress is not None else None
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            if progress is not None and task is not None:
                progress.update(task, description=f"[red]✗ {description}", completed=1)
            raise
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start
        if progress is not None and task is not None:
            progress.update(task, description=f"[green]✓[/] {description}", completed=1)


@dataclasses.dataclass(frozen=True)
class _Options:
    """The recipe with the caller's overrides applied."""

    recipe: Recipe
    precision: str
    batch: Range
    height: Range | None
    width: Range | None
    opset: int
    part: str | None
    direction: str
    samples: int
    thresholds: dict[str, float]
    lint: bool


def _resolve(recipe: Recipe, **given: Any) -> _Options:
    precision = given["precision"] or recipe.precision
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    opset = recipe.opset if given["opset"] is None else given["opset"]
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset must be in [{MIN_OPSET}, {MAX_OPSET}], got {opset}")

    def rng(value: Any, default: Range | None, name: str) -> Range | None:
        return default if value is None else parse_range(value, name)

    samples = recipe.parity_samples if given["samples"] is None else given["samples"]
    if samples < 1:
        raise ExportError(f"parity samples must be >= 1, got {samples}")
    return _Options(
        recipe=recipe,
        precision=precision,
        batch=rng(given["batch"], recipe.batch, "batch") or recipe.batch,
        height=rng(given["height"], recipe.height, "height"),
        width=rng(given["width"], recipe.width, "width"),
        opset=opset,
        part=given["part"] or recipe.part,
        direction=given["direction"] or recipe.direction,
        samples=samples,
        thresholds=dict(recipe.thresholds[precision]),
        lint=recipe.lint_tensorrt if given["lint"] is None else given["lint"],
    )


def _serialize(model: onnx.ModelProto) -> bytes:
    try:
        return model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise ExportError(
            f"the model does not fit a single ONNX file ({exc}); "
            "ganrt exports self-contained files under 2 GB"
        ) from None


def _finish_model(model: onnx.ModelProto, metadata: ArtifactMetadata) -> onnx.ModelProto:
    import onnx

    props = {p.key: p.value for p in model.metadata_props}
    props.update(metadata.to_props())
    onnx.helper.set_model_props(model, props)
    model.doc_string = f"ganrt {metadata.family} {metadata.task} model ({metadata.precision})"
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph is not valid ONNX: {exc}") from None
    return model


def _metadata(plan: GraphPlan, precision: str, config_hash: str) -> ArtifactMetadata:
    from ganrt import __version__

    return ArtifactMetadata(
        family=plan.family,
        task=plan.task,
        in_channels=plan.in_channels,
        out_channels=plan.out_channels,
        image_size=plan.image_size,
        multiple=plan.multiple,
        latent_dim=plan.latent_dim,
        num_classes=plan.num_classes,
        precision=precision,
        config_hash=config_hash,
        ganrt_version=__version__,
    )


def _gate(rows: list[ParityRow], what: str) -> None:
    if not all(r.passed for r in rows):
        raise ParityError(f"parity gate failed for {what}; nothing was written", rows)


def export(
    run_dir: str | os.PathLike[str],
    *,
    format: str = "onnx",
    output: str | os.PathLike[str] | None = None,
    recipe: str | os.PathLike[str] | None = None,
    precision: str | None = None,
    batch: str | Sequence[int] | None = None,
    height: str | Sequence[int] | None = None,
    width: str | Sequence[int] | None = None,
    opset: int | None = None,
    part: str | None = None,
    direction: str | None = None,
    lint_tensorrt: bool | None = None,
    parity_samples: int | None = None,
    repo: str | os.PathLike[str] | None = None,
    name: str | None = None,
    max_batch: int | None = None,
    preferred_batch: Sequence[int] | None = None,
    max_queue_delay_us: int | None = None,
    instances: int | None = None,
    kind: str | None = None,
    triton_model: str = "onnx",
    workspace_mib: int | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    fused: bool = True,
    progress: bool = True,
    console: Console | None = None,
) -> ExportResult:
    """Export the inference network of the run at ``run_dir`` and verify it.

    Args:
        format: ``onnx`` (a single ``.onnx`` file), ``engine`` (a TensorRT ``.engine`` plan plus
            ``.engine.json``; needs TensorRT and a CUDA GPU) or ``triton`` (``repo/<name>/config.pbtxt`` +
            ``repo/<name>/1/model.onnx``, or ``model.plan`` with ``triton_model="plan"``).
        output: artifact path (onnx/engine); default ``RUN_DIR/export/<family>[_<part>][.fp16].<ext>``.
        recipe: TOML recipe; default the bundled ``export/<family>.toml``. Every other ``None`` argument takes
            the recipe's value.
        precision: ``fp32`` or ``fp16`` (convolutions fp16, instance-norm statistics and graph I/O fp32).
        batch, height, width: ranges ``"MIN:OPT:MAX"`` / ``(min, opt, max)`` / a fixed int. The ONNX batch
            axis is always dynamic; H/W become dynamic when their range is not a single value (multiples of
            the network's ``multiple``). The ranges also set the TensorRT profile and the Triton max batch.
        opset: ONNX opset (>= 18). part: ``encoder``/``decoder`` for VAEs (default decoder).
        direction: ``AtoB`` (G_A) or ``BtoA`` (G_B) for CycleGAN.
        lint_tensorrt: check the graph against TensorRT's ONNX operator support before writing (always on for
            ``engine``); findings that would fail a TensorRT build abort the export (:class:`LintError`).
        parity_samples: how many real inputs the parity gate pushes through both models.
        repo, name, max_batch, preferred_batch, max_queue_delay_us, instances, kind, triton_model: Triton
            repository settings (``kind`` ``gpu``/``cpu``).
        workspace_mib, timing_cache: TensorRT builder workspace limit and persistent timing-cache file.
        fused: trace through ganrt's fused ops (their ONNX translation); when that fails the stock-PyTorch
            network is traced instead and ``ExportResult.notes`` says why.
        progress: show a rich progress display of the stages (on stderr, or on ``console``).

    Returns the :class:`ExportResult`. Raises :class:`ParityError` when the artifact disagrees with PyTorch
    beyond the recipe's thresholds, :class:`LintError` for a TensorRT-incompatible graph and
    :class:`ExportError` for unreadable runs, invalid options, missing TensorRT/GPU, ...; in every failure
    case nothing is written at the output path.
    """
    if format not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}, got {format!r}")
    if format == "triton" and repo is None:
        raise ExportError("format 'triton' needs repo= (the model repository folder)")
    if format != "triton" and repo is not None:
        raise ExportError(f"repo= applies to format 'triton' only, got format {format!r}")
    if format == "triton" and output is not None:
        raise ExportError("format 'triton' writes into repo=; output= does not apply")
    if triton_model not in ("onnx", "plan"):
        raise ExportError(f"triton_model must be 'onnx' or 'plan', got {triton_model!r}")

    needs_engine = format == "engine" or (format == "triton" and triton_model == "plan")
    with _Stages(progress, console) as stages:
        with stages.stage("load", f"load run {run_dir}"):
            if needs_engine:
                from ganrt.export.tensorrt import import_tensorrt

                import_tensorrt()  # fail before the slow stages when TensorRT or the GPU is missing
            from ganrt.models import Run, RunError

            try:
                run = Run.load(run_dir)
            except (RunError, OSError) as exc:
                raise ExportError(f"cannot load run directory: {exc}") from None
            opts = _resolve(
                load_recipe(recipe, run.family),
                precision=precision,
                batch=batch,
                height=height,
                width=width,
                opset=opset,
                part=part,
                direction=direction,
                samples=parity_samples,
                lint=lint_tensorrt,
            )
            from ganrt.export import trace

            part_name, net_name = trace.select_net(run, opts.part, opts.direction)
            try:
                net = run.net(net_name, fused=fused)
            except (RunError, OSError) as exc:
                raise ExportError(f"cannot load run directory: {exc}") from None
            plan = trace.plan_graph(
                run,
                net,
                part=part_name,
                net_name=net_name,
                direction=opts.direction,
                batch=opts.batch,
                height=opts.height,
                width=opts.width,
            )
            metadata = _metadata(plan, opts.precision, run.config_hash())

        notes: list[str] = []
        with stages.stage("export", f"export {plan.stem} to ONNX (opset {opts.opset})"):
            module = trace.wrap_module(net, plan)
            used_fused = fused
            try:
                model = trace.export_onnx(module, plan, opset=opts.opset, fused=fused)
            except Exception as exc:
                if not fused:
                    raise
                # The fused ops' ONNX translation is the preferred path; the stock modules compute the same
                # function, so the export stays correct (and still gated) without it.
                notes.append(
                    f"fused-op export failed ({type(exc).__name__}: {exc}); exported the stock modules"
                )
                module = trace.wrap_module(run.net(net_name, fused=False), plan)
                model = trace.export_onnx(module, plan, opset=opts.opset, fused=False)
                used_fused = False

        if opts.precision == "fp16":
            with stages.stage("precision", "fp16 pass (convs fp16, instance norm fp32, I/O fp32)"):
                from ganrt.export.precision import to_fp16

                model, fp16_notes = to_fp16(model)
                notes += fp16_notes
        model = _finish_model(model, metadata)
        data = _serialize(model)

        from ganrt.export import parity

        n = min(max(opts.samples, plan.batch[0]), plan.batch[2]) if format != "onnx" else opts.samples
        with tempfile.TemporaryDirectory(prefix="ganrt-export-") as workdir:
            onnx_tmp = Path(workdir) / f"{plan.stem}.onnx"
            onnx_tmp.write_bytes(data)
            with stages.stage("parity", f"parity gate on {n} inputs (ONNX Runtime vs PyTorch)"):
                feeds = parity.parity_inputs(plan, n)
                reference = parity.run_torch(module, plan, feeds)
                ort_out = parity.run_onnxruntime(onnx_tmp, feeds)
                rows = parity.compare(
                    reference, ort_out, thresholds=opts.thresholds, image_outputs=plan.image_outputs
                )
                _gate(rows, f"{plan.stem} ({opts.precision})")

            lint_report = None
            if opts.lint or needs_engine:
                with stages.stage("lint", "TensorRT lint"):
                    from ganrt.export.lint import lint_model

                    lint_report = lint_model(model, name=f"{plan.stem}.onnx")
                    if not lint_report.ok:
                        raise LintError(lint_report)

            build = None
            if needs_engine:
                from ganrt.export import tensorrt

                with stages.stage("build", "TensorRT engine build"):
                    build = tensorrt.build_engine(
                        onnx_tmp,
                        plan,
                        precision=opts.precision,
                        workspace_mib=workspace_mib or opts.recipe.workspace_mib,
                        timing_cache=timing_cache if timing_cache is not None else opts.recipe.timing_cache,
                    )
                with stages.stage("parity", "parity gate (TensorRT vs PyTorch and ONNX Runtime)"):
                    trt_out = tensorrt.run_engine(build.plan, feeds)
                    trt_rows = parity.compare(
                        reference,
                        trt_out,
                        thresholds=opts.thresholds,
                        image_outputs=plan.image_outputs,
                        backend="tensorrt",
                    ) + parity.compare(
                        ort_out,
                        trt_out,
                        thresholds=opts.thresholds,
                        image_outputs=plan.image_outputs,
                        backend="tensorrt-vs-onnxruntime",
                    )
                    rows += trt_rows
                    _gate(rows, f"{plan.stem} engine ({opts.precision})")

            with stages.stage("write", "write artifact"):
                stem = f"{plan.stem}.fp16" if opts.precision == "fp16" else plan.stem
                if format == "onnx":
                    path = Path(output) if output is not None else Path(run_dir) / "export" / f"{stem}.onnx"
                    files = _write_atomic(path, data)
                elif format == "engine":
                    from ganrt.export import tensorrt

                    assert build is not None
                    path = Path(output) if output is not None else Path(run_dir) / "export" / f"{stem}.engine"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    files = tensorrt.write_engine(path, metadata, build)
                else:
                    assert repo is not None
                    options = _triton_options(
                        opts.recipe,
                        plan,
                        name=name,
                        max_batch=max_batch,
                        preferred_batch=preferred_batch,
                        max_queue_delay_us=max_queue_delay_us,
                        instances=instances,
                        kind=kind,
                        model=triton_model,
                    )
                    path = Path(repo) / options.name
                    files = _write_triton(Path(repo), plan, metadata, options, onnx_tmp, build)

    shapes = {t.name: t.shape for t in plan.inputs}
    out_shapes = {t.name: t.shape for t in plan.outputs}
    return ExportResult(
        path=path,
        format=format,
        metadata=metadata,
        parity=rows,
        files=files,
        inputs=shapes,
        outputs=out_shapes,
        opset=opts.opset,
        fused=used_fused,
        lint=lint_report,
        timings=stages.timings,
        notes=notes,
    )


def _write_atomic(path: Path, data: bytes) -> list[Path]:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return [path]


def _write_triton(
    repo: Path,
    plan: GraphPlan,
    metadata: ArtifactMetadata,
    options: TritonOptions,
    onnx_file: Path,
    build: EngineBuild | None,
) -> list[Path]:
    """Write the Triton model folder for the verified ONNX file or, when an engine was built, its plan."""
    from ganrt.export import triton

    config = triton.build_config(plan, metadata, options)
    if build is None:
        sig_in, sig_out = triton.onnx_signature(onnx_file)
        return triton.write_repository(repo, config, onnx_file, inputs=sig_in, outputs=sig_out)
    plan_file = onnx_file.with_name("model.plan")
    plan_file.write_bytes(build.plan)
    sig_in, sig_out = triton.plan_signature(plan)
    return triton.write_repository(
        repo, config, plan_file, inputs=sig_in, outputs=sig_out, profile_max_batch=plan.batch[2]
    )


def _triton_options(recipe: Recipe, plan: GraphPlan, **given: Any) -> TritonOptions:
    from ganrt.export.triton import TritonOptions

    max_batch = given["max_batch"] if given["max_batch"] is not None else recipe.triton_max_batch
    preferred = (
        given["preferred_batch"] if given["preferred_batch"] is not None else recipe.triton_preferred_batch
    )
    return TritonOptions(
        name=given["name"] or plan.stem,
        max_batch=max_batch,
        preferred_batch=tuple(preferred),
        max_queue_delay_us=(
            given["max_queue_delay_us"]
            if given["max_queue_delay_us"] is not None
            else recipe.triton_max_queue_delay_us
        ),
        instances=given["instances"] if given["instances"] is not None else recipe.triton_instances,
        kind=given["kind"] or recipe.triton_kind,
        model=given["model"],
    )
