"""Training checkpoints under ``RUN_DIR/train_state/`` (safetensors + JSON, never pickle).

A checkpoint is a folder ``train_state/step_XXXXXXXX/`` holding

- ``weights.safetensors``: every net's state, keys ``<net>.<param>`` (a hard link to the run's
  ``weights.safetensors`` written by :func:`ganrt.models.save_run` at the same step, a copy where links fail);
- ``state.safetensors``: optimizer moments and steps (``optim.<name>.<param index>.<key>``) and extra tensors
  such as image-pool contents (``extra.<key>``);
- ``state.json``: step, options, optimizer hyper-parameters, and the rest of the JSON state.

The folder is built under a temporary name and renamed into place, then ``train_state/latest.json`` is
replaced to point at it, so ``latest.json`` always names a complete checkpoint and an interrupted save leaves
the previous one usable.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ganrt.utils import atomic_write, fresh_temp

STATE_DIR = "train_state"
LATEST = "latest.json"
FORMAT = "ganrt-train-state/1"


class CheckpointError(ValueError):
    """A missing, incomplete or inconsistent training checkpoint."""


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def optimizer_state(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``opt.state_dict()`` into tensors (``optim.<name>.<index>.<key>``) and JSON (param groups and the
    non-tensor state entries)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_state`."""
    prefix = f"optim.{name}."
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[field] = value
    for index, fields in meta["scalars"].items():
        state.setdefault(int(index), {}).update(fields)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    # Saved tensors come back contiguous; moments must have their parameter's layout again (channels_last
    # nets): PyTorch's fused Adam walks parameter, gradient and moments in memory order and silently mixes up
    # elements when their strides differ.
    for group in opt.param_groups:
        for p in group["params"]:
            entry = opt.state.get(p, {})
            for key, value in entry.items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    entry[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``weights`` keyed ``<net>.<param>``, ``tensors`` (optimizer + extra), ``state``."""

    path: Path
    step: int
    weights: dict[str, torch.Tensor]
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]


def write_checkpoint(run_dir: Path, step: int, weights_file: Path, tensors: dict[str, torch.Tensor],
                     state: dict[str, Any]) -> Path:
    """Publish checkpoint ``step``: weights from ``weights_file`` (already written for this step), the
    optimizer/extra ``tensors`` and the JSON ``state``; older checkpoints are removed afterwards."""
    root = run_dir / STATE_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = fresh_temp(root / name, directory=True)
    try:
        try:
            os.link(weights_file, tmp / "weights.safetensors")
        except OSError:
            shutil.copyfile(weights_file, tmp / "weights.safetensors")
        save_file(tensors, str(tmp / "state.safetensors"), metadata={"format": FORMAT})
        (tmp / "state.json").write_text(json.dumps({"format": FORMAT, "step": step, **state}, indent=2,
                                                   sort_keys=True) + "\n", encoding="utf-8")
        final = root / name
        if final.exists():
            # Re-saving the same step (e.g. interrupted right after a periodic save): replace it.
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(root / LATEST, {"format": FORMAT, "checkpoint": name, "step": step})
    for old in root.iterdir():
        if old.name != name and old.name != LATEST and (old.name.startswith("step_") or old.name.endswith(".tmp")):
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return final


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / STATE_DIR / LATEST).is_file()


def read_checkpoint(run_dir: Path) -> Checkpoint:
    """Load the checkpoint ``train_state/latest.json`` points at; CheckpointError says what is wrong (a
    missing, truncated or corrupt file, or JSON that is not a training state)."""
    latest = run_dir / STATE_DIR / LATEST
    if not latest.is_file():
        raise CheckpointError(f"no training checkpoint in {str(run_dir)!r} (missing {STATE_DIR}/{LATEST})")
    pointer = _read_json(latest)
    name = pointer.get("checkpoint")
    if not isinstance(name, str) or not name.startswith("step_") or "/" in name or "\\" in name:
        raise CheckpointError(f"{str(latest)!r} names no checkpoint folder (got {name!r})")
    folder = run_dir / STATE_DIR / name
    state = _read_json(folder / "state.json")
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{str(folder / 'state.json')!r} has format {state.get('format')!r}, expected {FORMAT!r}")
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(
            f"{str(folder / 'state.json')!r}: 'step' must be a non-negative integer, got {step!r}"
        )
    weights = _read_tensors(folder / "weights.safetensors")
    tensors = _read_tensors(folder / "state.safetensors")
    return Checkpoint(folder, step, weights, tensors, state)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"training checkpoint file {str(path)!r} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"training checkpoint file {str(path)!r} is unreadable: {exc}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{str(path)!r} must hold a JSON object, got {type(value).__name__}")
    return value


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"training checkpoint file {str(path)!r} is missing") from None
    except Exception as exc:  # safetensors raises its own SafetensorError for truncated or corrupt files
        raise CheckpointError(
            f"training checkpoint file {str(path)!r} is unreadable (truncated or corrupt?): {exc}"
        ) from None
