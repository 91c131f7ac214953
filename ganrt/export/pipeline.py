"""``export()``: run directory -> verified artifact (ONNX file, TensorRT engine or Triton model folder).

Stages: load (run + recipe + plan), export (dynamo trace to fp32 ONNX), precision (fp16 pass), parity (the
artifact against PyTorch, both through :mod:`ganrt.backends` runners), lint (TensorRT operator support), build
(TensorRT engine, itself parity-checked), write. Every artifact is assembled under a temporary name and moved
into place only after every gate passed, so a failed export leaves whatever was at the output path untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganrt.artifact import ArtifactMetadata
from ganrt.export.recipe import MAX_OPSET, MIN_OPSET, PRECISIONS, Range, Recipe, load_recipe, parse_range
from ganrt.export.result import ExportError, ExportResult, LintError, ParityError, ParityRow
from ganrt.utils import atomic_write

if TYPE_CHECKING:
    import onnx
    from rich.console import Console
    from rich.progress import Progress
    from torch import nn

    from ganrt.export.lint import LintReport
    from ganrt.export.tensorrt import EngineBuild
    from ganrt.export.trace import GraphPlan
    from ganrt.export.triton import TritonOptions
    from ganrt.models import Run

FORMATS: tuple[str, ...] = ("onnx", "engine", "triton")


@dataclasses.dataclass(frozen=True)
class TritonRequest:
    """Triton repository settings of ``format="triton"``; ``None`` fields take the recipe's value."""

    repo: str | os.PathLike[str]
    name: str | None = None
    max_batch: int | None = None
    preferred_batch: Sequence[int] | None = None
    max_queue_delay_us: int | None = None
    instances: int | None = None
    kind: str | None = None
    model: str = "onnx"
    force: bool = False


@dataclasses.dataclass(frozen=True)
class ExportRequest:
    """What to export and how; ``None`` fields take the recipe's value (see :func:`export` for each)."""

    format: str = "onnx"
    output: str | os.PathLike[str] | None = None
    recipe: str | os.PathLike[str] | None = None
    precision: str | None = None
    batch: str | Sequence[int] | None = None
    height: str | Sequence[int] | None = None
    width: str | Sequence[int] | None = None
    opset: int | None = None
    part: str | None = None
    direction: str | None = None
    lint_tensorrt: bool | None = None
    parity_samples: int | None = None
    workspace_mib: int | None = None
    timing_cache: str | os.PathLike[str] | None = None
    fused: bool = True
    triton: TritonRequest | None = None

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ExportRequest:
        """The request for :func:`export`'s keyword arguments (Triton settings flat, ``repo=`` first);
        ``TypeError`` naming any unknown one."""
        triton_keys = {f.name for f in dataclasses.fields(TritonRequest)} | {"triton_model"}
        fields = {f.name for f in dataclasses.fields(cls)} - {"triton"}
        unknown = sorted(set(kwargs) - fields - triton_keys)
        if unknown:
            raise TypeError(f"export() got unknown option(s) {unknown}; options are {sorted(fields | triton_keys)}")
        triton = {k: kwargs.pop(k) for k in list(kwargs) if k in triton_keys}
        if "triton_model" in triton:
            triton["model"] = triton.pop("triton_model")
        repo = triton.pop("repo", None)
        if repo is None and triton.pop("force", False):
            raise ExportError("force= replaces an existing version in a Triton repository; it needs repo=")
        if repo is None and any(v is not None for k, v in triton.items() if k != "model"):
            raise ExportError("Triton settings need repo= (the model repository folder) and format 'triton'")
        return cls(**kwargs, triton=TritonRequest(repo, **triton) if repo is not None else None)

    def check(self) -> None:
        """Raise :class:`ExportError` for combinations that cannot work, before any slow stage."""
        if self.format not in FORMATS:
            raise ExportError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.format == "triton" and self.triton is None:
            raise ExportError("format 'triton' needs repo= (the model repository folder)")
        if self.format != "triton" and self.triton is not None:
            raise ExportError(f"repo= applies to format 'triton' only, got format {self.format!r}")
        if self.format == "triton" and self.output is not None:
            raise ExportError("format 'triton' writes into repo=; output= does not apply")
        if self.triton is not None and self.triton.model not in ("onnx", "plan"):
            raise ExportError(f"triton_model must be 'onnx' or 'plan', got {self.triton.model!r}")
        if self.output is not None and Path(self.output).is_dir():
            raise ExportError(f"output {str(self.output)!r} is a folder; give the artifact's file path")
        _check_parents(self.output, "output")
        if self.triton is not None:
            repo = Path(self.triton.repo)
            if repo.exists() and not repo.is_dir():
                raise ExportError(f"repo {str(repo)!r} is a file; give the model repository folder")
            _check_parents(repo, "repo")

    @property
    def needs_engine(self) -> bool:
        return self.format == "engine" or (self.triton is not None and self.triton.model == "plan")


def _check_parents(path: str | os.PathLike[str] | None, what: str) -> None:
    """An output path below an existing file cannot be written: say so before any slow stage."""
    if path is None:
        return
    for parent in Path(path).parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExportError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a folder")
            return


@dataclasses.dataclass(frozen=True)
class _Options:
    """The recipe with the request's overrides applied."""

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


def _resolve(recipe: Recipe, request: ExportRequest) -> _Options:
    precision = request.precision or recipe.precision
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    opset = recipe.opset if request.opset is None else request.opset
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset must be in [{MIN_OPSET}, {MAX_OPSET}], got {opset}")

    def rng(value: Any, default: Range | None, name: str) -> Range | None:
        return default if value is None else parse_range(value, name)

    samples = recipe.parity_samples if request.parity_samples is None else request.parity_samples
    if samples < 1:
        raise ExportError(f"parity samples must be >= 1, got {samples}")
    return _Options(
        recipe=recipe,
        precision=precision,
        batch=rng(request.batch, recipe.batch, "batch") or recipe.batch,
        height=rng(request.height, recipe.height, "height"),
        width=rng(request.width, recipe.width, "width"),
        opset=opset,
        part=request.part or recipe.part,
        direction=request.direction or recipe.direction,
        samples=samples,
        thresholds=dict(recipe.thresholds[precision]),
        lint=recipe.lint_tensorrt if request.lint_tensorrt is None else request.lint_tensorrt,
    )


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


def _gate(rows: list[ParityRow], what: str) -> None:
    if not all(r.passed for r in rows):
        raise ParityError(f"parity gate failed for {what}; nothing was written", rows)


class _Export:
    """One export, stage by stage; each method is one stage of the module docstring."""

    def __init__(self, run_dir: Path, request: ExportRequest, stages: _Stages) -> None:
        self.run_dir, self.request, self.stages = run_dir, request, stages
        self.notes: list[str] = []
        self.rows: list[ParityRow] = []
        self.lint_report: LintReport | None = None
        self.build: EngineBuild | None = None

    def load(self) -> None:
        from ganrt.export import trace
        from ganrt.models import Run, RunError

        if self.request.needs_engine:
            from ganrt.export.tensorrt import import_tensorrt

            import_tensorrt()  # fail before the slow stages when TensorRT or the GPU is missing
        if self.request.triton is not None:
            from ganrt.export.triton import require_schema

            require_schema()  # the optional tritonclient: fail before the slow stages, naming the extra
        try:
            self.run: Run = Run.load(self.run_dir)
        except (RunError, OSError) as exc:
            raise ExportError(f"cannot load run directory: {exc}") from None
        self.opts = _resolve(load_recipe(self.request.recipe, self.run.family), self.request)
        part = trace.select_part(self.run, self.opts.part, self.opts.direction)
        try:
            self.net: nn.Module = self.run.net(part.net, fused=self.request.fused)
        except (RunError, OSError) as exc:
            raise ExportError(f"cannot load run directory: {exc}") from None
        o = self.opts
        self.plan: GraphPlan = trace.plan_graph(
            self.run, self.net, part=part, batch=o.batch, height=o.height, width=o.width
        )
        self.metadata: ArtifactMetadata = dataclasses.replace(self.plan.metadata, precision=o.precision)
        if self.request.triton is not None:
            from ganrt.export.triton import check_target

            name = self.request.triton.name or self.plan.stem
            check_target(Path(self.request.triton.repo), name, force=self.request.triton.force)
        elif self.request.output is None:
            if (self.run_dir / "export").exists() and not (self.run_dir / "export").is_dir():
                raise ExportError(
                    f"{self.run_dir / 'export'} is a file, where exports are written by default"
                )

    def export(self) -> onnx.ModelProto:
        from ganrt.backends.torch import graph_module
        from ganrt.export import trace

        plan, opset = self.plan, self.opts.opset
        self.fused = self.request.fused
        try:
            return trace.export_onnx(graph_module(self.net, plan.metadata), plan, opset=opset, fused=self.fused)
        except Exception as exc:
            if not self.fused:
                raise
            # The fused ops' ONNX translation is the preferred path; the stock modules compute the same
            # function, so the export stays correct (and still gated) without it.
            self.notes.append(f"fused-op export failed ({type(exc).__name__}: {exc}); exported the stock modules")
            self.net = self.run.net(plan.net, fused=False)
            self.fused = False
            return trace.export_onnx(graph_module(self.net, plan.metadata), plan, opset=opset, fused=False)

    def finish(self, model: onnx.ModelProto) -> bytes:
        """The fp16 pass when asked for, the metadata, the checker; the serialized model."""
        import onnx

        if self.opts.precision == "fp16":
            with self.stages.stage("precision", "fp16 pass (convs fp16, instance norm fp32, I/O fp32)"):
                from ganrt.export.precision import to_fp16

                model, fp16_notes = to_fp16(model)
                self.notes += fp16_notes
        from ganrt.artifact import onnx_weights_digest

        self.metadata = dataclasses.replace(self.metadata, weights_sha256=onnx_weights_digest(model))
        props = {p.key: p.value for p in model.metadata_props}
        props.update(self.metadata.to_props())
        onnx.helper.set_model_props(model, props)
        md = self.metadata
        model.doc_string = f"ganrt {md.family} {md.task} model ({md.precision})"
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"the exported graph is not valid ONNX: {exc}") from None
        self.model = model
        try:
            return model.SerializeToString()
        except ValueError as exc:  # protobuf refuses messages over 2 GB
            raise ExportError(
                f"the model does not fit a single ONNX file ({exc}); ganrt exports self-contained files under 2 GB"
            ) from None

    def parity(self, onnx_file: Path) -> None:
        from ganrt.export import parity

        plan, opts = self.plan, self.opts
        n = opts.samples if self.request.format == "onnx" else min(max(opts.samples, plan.batch[0]), plan.batch[2])
        with self.stages.stage("parity", f"parity gate on {n} inputs (ONNX Runtime vs PyTorch)"):
            self.feeds = parity.parity_inputs(plan, n)
            self.reference = parity.run(parity.reference_runner(self.net, plan), self.feeds)
            self.ort_out = parity.run_artifact("onnxruntime", onnx_file, self.feeds)
            self.rows = parity.compare(
                self.reference, self.ort_out, thresholds=opts.thresholds, image_outputs=plan.image_outputs
            )
            _gate(self.rows, f"{plan.stem} ({opts.precision})")

    def lint(self) -> None:
        if not (self.opts.lint or self.request.needs_engine):
            return
        with self.stages.stage("lint", "TensorRT lint"):
            from ganrt.export.lint import lint_model

            self.lint_report = lint_model(self.model, name=f"{self.plan.stem}.onnx")
            if not self.lint_report.ok:
                raise LintError(self.lint_report)

    def engine(self, onnx_file: Path) -> None:
        if not self.request.needs_engine:
            return
        from ganrt.backends.tensorrt import TensorRTRunner
        from ganrt.export import parity, tensorrt

        plan, opts = self.plan, self.opts
        with self.stages.stage("build", "TensorRT engine build"):
            self.build = tensorrt.build_engine(
                onnx_file,
                plan,
                precision=opts.precision,
                workspace_mib=self.request.workspace_mib or opts.recipe.workspace_mib,
                timing_cache=(
                    self.request.timing_cache if self.request.timing_cache is not None else opts.recipe.timing_cache
                ),
            )
        with self.stages.stage("parity", "parity gate (TensorRT vs PyTorch and ONNX Runtime)"):
            runner = TensorRTRunner(self.build.plan, source=f"{plan.stem}.engine (just built)")
            try:
                trt_out = parity.run(runner, self.feeds)
            finally:
                runner.close()
            compare = dict(thresholds=opts.thresholds, image_outputs=plan.image_outputs)
            self.rows += parity.compare(self.reference, trt_out, backend="tensorrt", **compare)
            self.rows += parity.compare(self.ort_out, trt_out, backend="tensorrt-vs-onnxruntime", **compare)
            _gate(self.rows, f"{plan.stem} engine ({opts.precision})")

    def write(self, data: bytes, onnx_file: Path) -> tuple[Path, list[Path]]:
        request, plan = self.request, self.plan
        stem = f"{plan.stem}.fp16" if self.opts.precision == "fp16" else plan.stem
        default_dir = self.run_dir / "export"
        if request.format == "onnx":
            path = Path(request.output) if request.output is not None else default_dir / f"{stem}.onnx"
            return path, [atomic_write(path, data)]
        if request.format == "engine":
            from ganrt.export import tensorrt

            assert self.build is not None
            path = Path(request.output) if request.output is not None else default_dir / f"{stem}.engine"
            # an engine's weights live in its plan: its digest is the plan's bytes' (see ArtifactMetadata)
            self.metadata = dataclasses.replace(
                self.metadata, weights_sha256=hashlib.sha256(self.build.plan).hexdigest()
            )
            return path, tensorrt.write_engine(path, self.metadata, self.build)
        assert request.triton is not None
        options = _triton_options(self.opts.recipe, plan, request.triton)
        repo = Path(request.triton.repo)
        return repo / options.name, _write_triton(
            repo, plan, self.metadata, options, onnx_file, self.build, force=request.triton.force
        )


def export(
    run_dir: str | os.PathLike[str],
    request: ExportRequest | None = None,
    *,
    progress: bool = True,
    console: Console | None = None,
    **options: Any,
) -> ExportResult:
    """Export the inference network of the run at ``run_dir`` and verify it.

    Pass an :class:`ExportRequest`, or its fields as keyword arguments:

    - ``format``: ``onnx`` (a single ``.onnx`` file), ``engine`` (a TensorRT ``.engine`` plan plus
      ``.engine.json``; needs TensorRT and a CUDA GPU) or ``triton`` (``repo/<name>/config.pbtxt`` +
      ``repo/<name>/1/model.onnx``, or ``model.plan`` with ``triton_model="plan"``).
    - ``output``: artifact path (onnx/engine); default ``RUN_DIR/export/<family>[_<part>][.fp16].<ext>``.
    - ``recipe``: TOML recipe; default the bundled ``ganrt/export/recipes/<family>.toml``. Every ``None``
      option takes the recipe's value.
    - ``precision``: ``fp32`` or ``fp16`` (convolutions fp16, instance-norm statistics and graph I/O fp32).
    - ``batch``, ``height``, ``width``: ranges ``"MIN:OPT:MAX"`` / ``(min, opt, max)`` / a fixed int. The ONNX
      batch axis is always dynamic; H/W become dynamic when their range is not a single value (multiples of
      the network's ``multiple``). The ranges also set the TensorRT profile and the Triton max batch.
    - ``opset`` (>= 18); ``part``: ``encoder``/``decoder`` for VAEs; ``direction``: ``AtoB``/``BtoA``
      (CycleGAN).
    - ``lint_tensorrt``: check the graph against TensorRT's ONNX operator support before writing (always on for
      engines); findings that would fail a TensorRT build abort the export (:class:`LintError`).
    - ``parity_samples``: how many real inputs the parity gate pushes through both models.
    - ``repo``, ``name``, ``max_batch``, ``preferred_batch``, ``max_queue_delay_us``, ``instances``, ``kind``
      (``gpu``/``cpu``), ``triton_model``: Triton repository settings.
    - ``workspace_mib``, ``timing_cache``: TensorRT builder workspace limit and persistent timing-cache file.
    - ``fused``: trace through ganrt's fused ops (their ONNX translation); when that fails the stock-PyTorch
      network is traced instead and ``ExportResult.notes`` says why.

    ``progress`` shows a rich progress display of the stages (on stderr, or on ``console``).

    Returns the :class:`ExportResult`. Raises :class:`ParityError` when the artifact disagrees with PyTorch
    beyond the recipe's thresholds, :class:`LintError` for a TensorRT-incompatible graph and
    :class:`ExportError` for unreadable runs, invalid options, missing TensorRT/GPU, ...; in every failure case
    nothing is written at the output path.
    """
    if request is None:
        request = ExportRequest.from_kwargs(**options)
    elif options:
        raise TypeError(f"pass either an ExportRequest or keyword options, not both (got {sorted(options)})")
    request.check()
    job = _Export(Path(run_dir), request, _Stages(progress, console))
    with job.stages as stages:
        with stages.stage("load", f"load run {run_dir}"):
            job.load()
        plan, opts = job.plan, job.opts
        with stages.stage("export", f"export {plan.stem} to ONNX (opset {opts.opset})"):
            model = job.export()
        data = job.finish(model)
        with tempfile.TemporaryDirectory(prefix="ganrt-export-") as workdir:
            onnx_file = Path(workdir) / f"{plan.stem}.onnx"
            onnx_file.write_bytes(data)
            job.parity(onnx_file)
            job.lint()
            job.engine(onnx_file)
            with stages.stage("write", "write artifact"):
                path, files = job.write(data, onnx_file)
    return ExportResult(
        path=path,
        format=request.format,
        metadata=job.metadata,
        parity=job.rows,
        files=files,
        inputs={t.name: t.shape for t in plan.inputs},
        outputs={t.name: t.shape for t in plan.outputs},
        opset=opts.opset,
        fused=job.fused,
        lint=job.lint_report,
        timings=stages.timings,
        notes=job.notes,
    )


def _write_triton(
    repo: Path,
    plan: GraphPlan,
    metadata: ArtifactMetadata,
    options: TritonOptions,
    onnx_file: Path,
    build: EngineBuild | None,
    *,
    force: bool = False,
) -> list[Path]:
    """Write the Triton model folder for the verified ONNX file or, when an engine was built, its plan."""
    from ganrt.export import triton

    config = triton.build_config(plan, metadata, options)
    if build is None:
        sig_in, sig_out = triton.onnx_signature(onnx_file)
        return triton.write_repository(
            repo, config, onnx_file, inputs=sig_in, outputs=sig_out, force=force
        )
    plan_file = onnx_file.with_name("model.plan")
    plan_file.write_bytes(build.plan)
    sig_in, sig_out = triton.plan_signature(plan)
    return triton.write_repository(
        repo, config, plan_file, inputs=sig_in, outputs=sig_out, profile_max_batch=plan.batch[2],
        force=force,
    )


def _triton_options(recipe: Recipe, plan: GraphPlan, given: TritonRequest) -> TritonOptions:
    from ganrt.export.triton import TritonOptions

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return TritonOptions(
        name=given.name or plan.stem,
        max_batch=pick(given.max_batch, recipe.triton_max_batch),
        preferred_batch=tuple(pick(given.preferred_batch, recipe.triton_preferred_batch)),
        max_queue_delay_us=pick(given.max_queue_delay_us, recipe.triton_max_queue_delay_us),
        instances=pick(given.instances, recipe.triton_instances),
        kind=given.kind or recipe.triton_kind,
        model=given.model,
    )
