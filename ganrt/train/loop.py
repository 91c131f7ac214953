"""``ganrt.train.train``: the training loop, run-directory handling, checkpoints, resume and Ctrl-C.

Reproducibility: before step ``s`` torch's generator is reseeded from ``(seed, s)`` (dropout, latents, the
VAE's noise seed, WGAN-GP mixing), the image pool draws from a numpy generator seeded by ``(seed, s)``, and the
batch is :func:`ganrt.data.training_batch` of ``(seed, s)``. The learning rate is a function of ``s``. So the
state at a step boundary is nets + optimizers + pool + ``s``, which is exactly what a checkpoint holds, and an
interrupted and resumed run computes the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

from ganrt import __version__
from ganrt.data import DataError, ImageDataset, Sample, fixed_batch, open_dataset, training_batch
from ganrt.families import family as registry_family
from ganrt.train.checkpoint import (
    STATE_DIR,
    CheckpointError,
    has_checkpoint,
    load_optimizer_state,
    optimizer_state,
    read_checkpoint,
    write_checkpoint,
)
from ganrt.train.families import FAMILY_CLASSES, Family
from ganrt.train.options import DATA_KIND, FAMILIES, TrainError, lr_factor, resolve
from ganrt.train.plots import save_loss_plot, save_png
from ganrt.train.precision import Precision, device_support, resolve_precision
from ganrt.utils import atomic_write, remove_orphan_temps

LOG_NAME = "log.jsonl"
SAMPLES_DIR = "samples"
LOSS_PLOT = "loss.png"
# What ``--force`` removes from an existing run directory: only ganrt's own outputs, never other files.
RUN_ARTIFACTS = ("config.json", "weights.safetensors", LOG_NAME, LOSS_PLOT, SAMPLES_DIR, STATE_DIR)
# Stream tags for seeds derived from (seed, step); distinct from the data streams in ganrt.data.order.
_TORCH_STREAM = 0x7C
_POOL_STREAM = 0x9E
N_FIXED = 4  # translation rows in sample grids
N_HELDOUT = 16  # images in held-out evaluations

StepCallback = Callable[[int, dict[str, float]], None]


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence((seed, _TORCH_STREAM, step)).generate_state(1, np.uint64)[0] >> 1)


class _Interrupt:
    """Turns the first SIGINT into a request the loop honours at the next step boundary (so the checkpoint
    never holds a half-finished step); a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator[_Interrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        self._previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, self._previous)


def _to(batch: Sample, device: torch.device) -> Sample:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise TrainError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {name!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"device {name!r} requested but torch sees no CUDA device (torch {torch.__version__})")
    if dev.type not in ("cpu", "cuda"):
        raise TrainError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    return dev


def check_run_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start: resume without a checkpoint, or a non-empty directory without force/resume."""
    if resume:
        if not run_dir.is_dir():
            raise TrainError(f"cannot resume: run directory {str(run_dir)!r} does not exist")
        if not has_checkpoint(run_dir):
            raise TrainError(f"cannot resume: {str(run_dir)!r} holds no training checkpoint ({STATE_DIR}/latest.json)")
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainError(f"output path {str(run_dir)!r} exists and is not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not force:
        raise TrainError(
            f"run directory {str(run_dir)!r} already exists and is not empty; pass --resume to continue "
            "its training or --force to overwrite it"
        )


def claim_run_dir(run_dir: Path) -> None:
    """Create ``run_dir``, removing ganrt's own outputs from an earlier run (``--force``); other files stay."""
    import shutil

    if run_dir.is_dir():
        for name in RUN_ARTIFACTS:
            p = run_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def _data_spec(data: str | Path) -> str:
    s = str(data)
    return s if s.startswith("builtin:") else str(Path(s).expanduser().resolve())


def _open(spec: str, family: str, options: dict[str, Any], split: str) -> ImageDataset:
    kind = DATA_KIND[family]
    if family == "dcgan" and options["conditional"]:
        kind = "labelled"
    return open_dataset(spec, kind=kind, split=split, image_size=options["image_size"], augment=split == "train",
                        channels=options["channels"], seed=options["seed"],
                        direction=options.get("direction", "AtoB"))


def _heldout(spec: str, family: str, options: dict[str, Any]) -> ImageDataset | None:
    """The test split when the dataset has one (built-ins always do); None otherwise."""
    try:
        return _open(spec, family, options, "test")
    except DataError:
        return None


def _total_steps(steps: int | None, epochs: int | None, n: int, batch_size: int) -> int:
    if steps is not None and epochs is not None:
        raise TrainError("give either steps or epochs, not both")
    if steps is None and epochs is None:
        raise TrainError("give the length of training: steps (--steps N) or epochs (--epochs N)")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise TrainError(f"steps must be a positive integer, got {steps!r}")
        return steps
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TrainError(f"epochs must be a positive integer, got {epochs!r}")
    return math.ceil(epochs * n / batch_size)


class _Log:
    """``log.jsonl`` plus the in-memory history the loss plot is drawn from."""

    def __init__(self, path: Path, keep_until: int | None) -> None:
        self.path = path
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.evals: dict[str, tuple[list[int], list[float]]] = {}
        kept: list[str] = []
        if keep_until is not None and path.is_file():
            # Entries after the checkpoint belong to steps the resumed run will redo.
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                if entry["step"] <= keep_until:
                    kept.append(line)
                    self._remember(entry)
        atomic_write(path, "".join(f"{line}\n" for line in kept))
        self._file = path.open("a", encoding="utf-8")

    def _remember(self, entry: dict[str, Any]) -> None:
        if "losses" in entry:
            self.steps.append(entry["step"])
            for k, v in entry["losses"].items():
                self.losses.setdefault(k, []).append(v)
        if "eval" in entry:
            for k, v in entry["eval"].items():
                xs, ys = self.evals.setdefault(k, ([], []))
                xs.append(entry["step"])
                ys.append(v)

    def write(self, entry: dict[str, Any]) -> None:
        self._remember(entry)
        self._file.write(json.dumps(entry, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _progress(enabled: bool, label: str) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed or 0:.1f} it/s", style="progress.data.speed")

    return Progress(
        TextColumn(f"[bold]{label}[/bold]"), BarColumn(bar_width=20), MofNCompleteColumn(), RateColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"), disable=not enabled,
    )


def train(
    family: str,
    *,
    data: str | Path | None = None,
    out: str | Path,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    image_size: int | None = None,
    ngf: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    force: bool = False,
    fused: bool | None = None,
    precision: str | None = None,
    progress: bool = True,
    sample_every: int | None = None,
    on_step: StepCallback | None = None,
    **family_options: Any,
) -> Path:
    """Train a ``family`` model ("pix2pix", "cyclegan", "vae", "dcgan") and return its run directory.

    data: dataset folder or ``builtin:edges2photos|faces|digits`` (pix2pix reads aligned pairs, cyclegan
    unaligned ``trainA/ trainB/``, vae a folder, dcgan a folder or, with ``conditional=True``, class folders);
    out: run directory (never overwritten unless ``force``); steps / epochs: length of training (one of them);
    ``None`` for any option means the reference default (batch_size 1, lr 2e-4, Adam betas (0.5, 0.999),
    image_size 256 for translation and 64 for samplers, ...; see :mod:`ganrt.train.options`). ``family_options``
    are the family's own options (netG, ndf, norm, dropout, gan_mode, lambda_l1, lambda_cycle,
    lambda_identity, pool_size, beta, latent_dim, conditional, channels, beta1, beta2, decay_start, ...).

    precision: "auto" (default: bf16 where the device has native bf16, else fp32), "fp32", "bf16" or "fp16"
    (CUDA only, with a gradient scaler); see :mod:`ganrt.train.precision`. Weights, optimizer state and
    checkpoints stay fp32 whatever the precision.

    resume: continue ``out`` from its last complete checkpoint with its saved options (options given here
    must agree; steps/epochs may extend the run, which re-plans the learning-rate decay over the new total;
    sample_every, device, fused and precision may change, and default to the run's own). Every ``sample_every``
    steps (and at the end) a checkpoint, ``samples/step_XXXXXXXX.png`` and ``loss.png`` are written;
    ``log.jsonl`` gets one line per step, after a ``run`` line (precision, device, fused) at every (re)start.
    ``on_step(step, losses)`` is called after every step (1-based step count).

    The first Ctrl-C (SIGINT) finishes the current step, saves a checkpoint and raises KeyboardInterrupt.
    """
    if family not in FAMILIES:
        raise TrainError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if resume and force:
        raise TrainError("resume and force exclude each other: resume continues a run, force starts it afresh")
    run_dir = Path(out).expanduser()
    given = {"batch_size": batch_size, "lr": lr, "image_size": image_size, "ngf": ngf, "seed": seed,
             **family_options}
    check_run_dir(run_dir, resume=resume, force=force)

    checkpoint = None
    if resume:
        try:
            checkpoint = read_checkpoint(run_dir)
        except CheckpointError as exc:
            raise TrainError(f"cannot resume: {exc}") from exc
        saved = checkpoint.state
        missing = [k for k in _STATE_KEYS if k not in saved]
        if missing or not isinstance(saved.get("options"), dict):
            raise TrainError(
                f"cannot resume: {checkpoint.path / 'state.json'} is not a complete training state "
                f"(missing or invalid: {', '.join(missing) or 'options'})"
            )
        if saved["family"] != family:
            raise TrainError(f"cannot resume: {str(run_dir)!r} is a {saved['family']} run, not {family}")
        spec = saved["data"]
        if not isinstance(spec, str):
            raise TrainError(
                f"cannot resume: {checkpoint.path / 'state.json'}: 'data' must be a string, got {spec!r}"
            )
        total_saved = saved["total_steps"]
        if isinstance(total_saved, bool) or not isinstance(total_saved, int) or total_saved < 1:
            raise TrainError(f"cannot resume: {checkpoint.path / 'state.json'}: 'total_steps' must be a "
                             f"positive integer, got {total_saved!r}")
        try:  # the saved options pass the same validation as new ones (a corrupt state.json fails here)
            options = resolve(family, dict(saved["options"]), spec)
        except TrainError as exc:
            raise TrainError(f"cannot resume: {checkpoint.path / 'state.json'}: {exc}") from None
        if data is not None and _data_spec(data) != spec:
            raise TrainError(f"cannot resume with data {str(data)!r}: the run was trained on {spec!r}")
        unknown = sorted(set(given) - set(options))
        if unknown:
            raise TrainError(f"unknown option(s) for {family}: {', '.join(unknown)}")
        conflicts = [f"{k}={v!r} (run has {options[k]!r})" for k, v in given.items()
                     if v is not None and v != options[k]]
        if conflicts:
            raise TrainError("cannot resume with different options: " + ", ".join(conflicts)
                             + "; drop them to continue with the run's own, or start a new run")
        device = device or saved["device"]
        fused = saved["fused"] if fused is None else fused
        # Runs from before mixed precision trained in fp32.
        precision = precision or saved.get("precision", "fp32")
        sample_every = sample_every or saved["sample_every"]
    else:
        if data is None:
            raise TrainError("give the training data: a folder or builtin:NAME (--data)")
        spec = _data_spec(data)
        options = resolve(family, given, spec)
        device = device or "cpu"
        fused = True if fused is None else fused
        precision = precision or "auto"
    dev = _device(device)
    precision = resolve_precision(precision, device_support(dev))

    dataset = _open(spec, family, options, "train")
    if checkpoint is not None and steps is None and epochs is None:
        total = int(checkpoint.state["total_steps"])
    else:
        total = _total_steps(steps, epochs, len(dataset), options["batch_size"])
    start = checkpoint.step if checkpoint else 0
    if start > total:
        raise TrainError(f"cannot resume to {total} steps: the checkpoint is already at step {start}")
    if sample_every is None:
        sample_every = max(1, min(500, total // 10))
    if isinstance(sample_every, bool) or not isinstance(sample_every, int) or sample_every < 1:
        raise TrainError(f"sample_every must be a positive integer, got {sample_every!r}")

    heldout_set = _heldout(spec, family, options)
    fixed = _to(fixed_batch(heldout_set or dataset, N_FIXED if registry_family(family).translation else 8), dev)
    heldout = _to(fixed_batch(heldout_set, N_HELDOUT), dev) if heldout_set is not None else None

    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(options["seed"])
        num_classes = int(getattr(dataset, "num_classes", 0))
        model = FAMILY_CLASSES[family](options, num_classes=num_classes, device=dev, fused=fused,
                                       precision=Precision(precision, dev))
        if checkpoint is not None:
            _restore(model, checkpoint)
        config = _config(model, family, dataset, spec, options, total, precision)
        if checkpoint is None:
            # Only now that data, options and nets are known to work: a failed start leaves nothing behind.
            claim_run_dir(run_dir)
        log = _Log(run_dir / LOG_NAME, keep_until=start if checkpoint else None)
        state = {"family": family, "data": spec, "options": options, "total_steps": total, "device": device,
                 "fused": fused, "precision": precision, "sample_every": sample_every}
        if checkpoint is not None:
            _remove_orphans(run_dir)  # left by a run killed mid-write
        try:
            _loop(model, dataset, run_dir, log, config, state, start=start, total=total, fixed=fixed,
                  heldout=heldout, progress=progress, on_step=on_step)
        finally:
            log.close()
    _remove_orphans(run_dir)
    return run_dir


def _remove_orphans(run_dir: Path) -> None:
    """Remove the ``.<name>.XXXXXXXX.tmp`` temporaries an interrupted write left in the run's folders."""
    for folder in (run_dir, run_dir / SAMPLES_DIR, run_dir / STATE_DIR):
        remove_orphan_temps(folder)


def _config(model: Family, family: str, dataset: ImageDataset, spec: str, options: dict[str, Any],
            total: int, precision: str) -> dict[str, Any]:
    in_ch, out_ch = model.channels()
    return {
        "format": "ganrt-run/1", "ganrt_version": __version__, "family": family,
        "image_size": options["image_size"], "in_channels": in_ch, "out_channels": out_ch,
        "nets": {name: dict(net.spec) for name, net in model.nets.items()},
        "data": {**dataset.describe(), "spec": spec},
        "train": {**options, "steps": total, "precision": precision},
    }


# What state.json must hold for a resume (written by train()).
_STATE_KEYS = ("family", "data", "options", "total_steps", "device", "fused", "sample_every", "optimizers",
               "extra")


def _restore(model: Family, checkpoint: Any) -> None:
    try:
        _restore_state(model, checkpoint)
    except TrainError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as exc:
        raise TrainError(
            f"cannot resume: the checkpoint in {checkpoint.path} does not fit this run "
            f"({type(exc).__name__}: {exc}); it is corrupt or from another ganrt version"
        ) from exc


def _restore_state(model: Family, checkpoint: Any) -> None:
    for name, net in model.nets.items():
        prefix = f"{name}."
        sd = {k[len(prefix):]: v for k, v in checkpoint.weights.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(sd)
        except RuntimeError as exc:
            raise TrainError(f"cannot resume: checkpoint weights of net {name} do not fit: {exc}") from exc
    for name, opt in model.optimizers.items():
        load_optimizer_state(name, opt, checkpoint.tensors, checkpoint.state["optimizers"][name])
    extra = {k.removeprefix("extra."): v for k, v in checkpoint.tensors.items() if k.startswith("extra.")}
    model.load_extra_state(extra, checkpoint.state["extra"])
    model.precision.load_state_dict(checkpoint.state.get("precision_state", {}))


def _save(model: Family, run_dir: Path, config: dict[str, Any], state: dict[str, Any], done: int) -> None:
    from ganrt.models import save_run

    config = {**config, "train": {**config["train"], "completed_steps": done}}
    save_run(run_dir, config, model.nets)
    tensors: dict[str, torch.Tensor] = {}
    optimizers: dict[str, Any] = {}
    for name, opt in model.optimizers.items():
        t, meta = optimizer_state(name, opt)
        tensors.update(t)
        optimizers[name] = meta
    extra_t, extra_meta = model.extra_state()
    tensors.update({f"extra.{k}": v.contiguous() for k, v in extra_t.items()})
    write_checkpoint(run_dir, done, run_dir / "weights.safetensors", tensors,
                     {**state, "optimizers": optimizers, "extra": extra_meta,
                      "precision_state": model.precision.state_dict()})


def _loop(model: Family, dataset: ImageDataset, run_dir: Path, log: _Log, config: dict[str, Any],
          state: dict[str, Any], *, start: int, total: int, fixed: Sample, heldout: Sample | None,
          progress: bool, on_step: StepCallback | None) -> None:
    options, dev = state["options"], model.device
    seed, batch_size, sample_every = options["seed"], options["batch_size"], state["sample_every"]
    interrupt = _Interrupt()
    t0 = time.perf_counter()
    done = start
    saved_at = start if start else None
    log.write({"step": start, "run": {"precision": state["precision"], "device": state["device"],
                                      "fused": state["fused"], "resumed": start > 0}})
    if start == 0 and heldout is not None:
        # The untrained baseline, so the log (and loss.png) show how far held-out metrics moved.
        metrics = model.evaluate(heldout)
        if metrics:
            log.write({"step": 0, "eval": metrics})
    with interrupt.installed(), _progress(progress, f"{state['family']} {state['precision']}") as bar:
        task = bar.add_task("train", total=total, completed=start, losses="")
        for step in range(start, total):
            if interrupt.requested:
                break
            torch.manual_seed(_step_seed(seed, step))
            rng = np.random.default_rng((seed, _POOL_STREAM, step))
            lr = options["lr"] * lr_factor(step, total, options["decay_start"])
            model.set_lr(lr)
            batch = _to(training_batch(dataset, step=step, batch_size=batch_size, seed=seed), dev)
            losses = model.train_step(batch, rng)
            done = step + 1
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise TrainError(
                    f"loss {', '.join(bad)} became non-finite at step {done}; the last checkpoint "
                    f"(step {saved_at}) is intact; try a lower learning rate"
                )
            log.write({"step": done, "epoch": round(done * batch_size / len(dataset), 4), "lr": lr,
                       "losses": losses, "time": round(time.perf_counter() - t0, 3)})
            bar.update(task, advance=1, losses="  ".join(f"{k} {v:.3f}" for k, v in losses.items()))
            if on_step is not None:
                on_step(done, losses)
            if done % sample_every == 0 or done == total:
                _checkpoint(model, run_dir, log, config, state, done, fixed, heldout)
                saved_at = done
        if saved_at != done:
            _checkpoint(model, run_dir, log, config, state, done, fixed, heldout)
    if interrupt.requested and done < total:
        raise KeyboardInterrupt(f"interrupted: checkpoint saved at step {done}/{total} in {run_dir}")


def _checkpoint(model: Family, run_dir: Path, log: _Log, config: dict[str, Any], state: dict[str, Any],
                done: int, fixed: Sample, heldout: Sample | None) -> None:
    """Checkpoint + sample grid + held-out metrics + loss plot at step ``done``."""
    _save(model, run_dir, config, state, done)
    save_png(run_dir / SAMPLES_DIR / f"step_{done:08d}.png", model.sample_grid(fixed))
    if heldout is not None:
        metrics = model.evaluate(heldout)
        if metrics:
            log.write({"step": done, "eval": metrics})
    save_loss_plot(run_dir / LOSS_PLOT, log.steps, log.losses, log.evals)
