"""Run directories: the checkpoint format shared by training, upstream import, export and the runtime.

``RUN_DIR/config.json``::

    {"format": "ganrt-run/1", "ganrt_version": "0.1.0", "family": "pix2pix"|"cyclegan"|"vae"|"dcgan",
     "image_size": 256, "in_channels": 3, "out_channels": 3,
     "nets": {"G": {"arch": "unet_256", ...}, "D": {...}}, "data": {...}, "train": {...}}

``RUN_DIR/weights.safetensors``: every net's ``state_dict`` keyed ``"<net>.<param>"``.

Both files are written to a temporary name and renamed into place, weights first, so a reader sees either
the previous checkpoint or the new one (a crash between the two renames leaves new weights with the old
config, which describes the same networks).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrt import __version__
from ganrt.families import FAMILIES, family
from ganrt.models.registry import SpecError, build_net, check_spec
from ganrt.utils import atomic_path, atomic_write

FORMAT = "ganrt-run/1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
_REQUIRED_INT = ("image_size", "in_channels", "out_channels")


class RunError(ValueError):
    """A run directory is missing, incomplete or inconsistent; the message names the file."""


class RunNotFoundError(RunError, FileNotFoundError):
    """The run directory or one of its files does not exist."""


def canonical_json(config: Mapping[str, Any]) -> str:
    """The config as canonical JSON: sorted keys, no whitespace, ASCII, no NaN."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:16]


def weights_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 (hex) of a run's weights: every tensor in key order as (key, dtype, shape, raw bytes). Stored as
    ``ganrt.weights_sha256`` in ``weights.safetensors``' metadata and checked by ``ganrt info --verify``."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{str(t.dtype).removeprefix('torch.')}|{list(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _validate_config(config: Any, where: str) -> dict[str, Any]:
    """Check the run config structure; ``where`` names the file in messages."""
    if not isinstance(config, dict):
        raise RunError(f"{where}: expected a JSON object, got {type(config).__name__}")
    fmt = config.get("format")
    if fmt != FORMAT:
        raise RunError(f"{where}: 'format' must be {FORMAT!r}, got {fmt!r}")
    name = config.get("family")
    if name not in FAMILIES:
        raise RunError(f"{where}: unknown family {name!r}; expected one of {list(FAMILIES)}")
    fam = family(name)
    for key in _REQUIRED_INT:
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RunError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    nets = config.get("nets")
    if not isinstance(nets, dict) or not nets:
        raise RunError(f"{where}: 'nets' must be a non-empty object mapping net names to specs, got {nets!r}")
    for net_name, spec in nets.items():
        if net_name not in fam.nets:
            raise RunError(f"{where}: net {net_name!r} is not part of family {fam.name!r} (nets: {fam.nets})")
        try:
            check_spec(spec)
        except SpecError as exc:
            raise RunError(f"{where}: net {net_name!r}: {exc}") from None
    for key in ("data", "train"):
        if not isinstance(config.get(key, {}), dict):
            raise RunError(f"{where}: {key!r} must be an object, got {config[key]!r}")
    return config


def save_run(path: str | os.PathLike[str], config: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> Path:
    """Write ``config.json`` and ``weights.safetensors`` of a run directory atomically; returns the directory.

    ``config`` follows the format in the module docstring; ``format`` and ``ganrt_version`` are filled in
    when absent, ``nets`` is taken from each module's ``.spec`` when absent and must otherwise name exactly
    the modules given. Every entry of each state_dict is saved, on CPU, in its own dtype.
    """
    from safetensors.torch import save_file

    run_dir = Path(path)
    cfg = dict(config)
    cfg.setdefault("format", FORMAT)
    cfg.setdefault("ganrt_version", __version__)
    cfg.setdefault("data", {})
    cfg.setdefault("train", {})
    if "nets" not in cfg:
        missing_spec = [name for name, m in nets.items() if not isinstance(getattr(m, "spec", None), dict)]
        if missing_spec:
            raise ValueError(
                f"config has no 'nets' and modules {missing_spec} carry no .spec to take it from"
            )
        cfg["nets"] = {name: dict(m.spec) for name, m in nets.items()}
    elif set(cfg["nets"]) != set(nets):
        raise ValueError(
            f"config 'nets' names {sorted(cfg['nets'])} but modules were given for {sorted(nets)}"
        )
    try:
        _validate_config(cfg, "config")
        text = canonical_json(cfg)
    except (RunError, ValueError) as exc:
        raise ValueError(f"invalid run config: {exc}") from None

    tensors: dict[str, torch.Tensor] = {}
    for name, module in nets.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / WEIGHTS_NAME) as tmp:
        metadata = {
            "format": "pt",
            "ganrt.config_hash": config_hash(cfg),
            "ganrt.weights_sha256": weights_digest(tensors),
        }
        save_file(tensors, str(tmp), metadata=metadata)
    atomic_write(run_dir / CONFIG_NAME, json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n")
    return run_dir


def nonfinite_tensors(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state`` holding NaN or infinite values (weights a network
    cannot compute with: every output would be NaN)."""
    return [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


class Run:
    """A run directory opened for reading: config validated, weight file header checked.

    Attributes: ``path`` (Path), ``config`` (dict), ``family`` (str).
    """

    def __init__(self, path: Path, config: dict[str, Any], weight_keys: frozenset[str]) -> None:
        self.path = path
        self.config = config
        self.family: str = config["family"]
        self._weight_keys = weight_keys

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Run:
        """Open ``path``; raises :class:`RunNotFoundError` / :class:`RunError` naming the offending file."""
        from safetensors import safe_open

        run_dir = Path(path)
        if not run_dir.is_dir():
            raise RunNotFoundError(f"run directory {str(run_dir)!r} does not exist or is not a directory")
        config_path, weights_path = run_dir / CONFIG_NAME, run_dir / WEIGHTS_NAME
        if not config_path.is_file():
            raise RunNotFoundError(
                f"{config_path}: missing; a run directory holds {CONFIG_NAME} and {WEIGHTS_NAME}"
            )
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{config_path}: not valid JSON ({exc})") from None
        _validate_config(config, str(config_path))
        if not weights_path.is_file():
            raise RunNotFoundError(
                f"{weights_path}: missing; a run directory holds {CONFIG_NAME} and {WEIGHTS_NAME}"
            )
        try:
            with safe_open(str(weights_path), framework="pt") as f:
                keys = frozenset(f.keys())
        except Exception as exc:  # safetensors raises its own SafetensorError, OSError or ValueError
            raise RunError(
                f"{weights_path}: not a readable safetensors file (truncated or corrupt?): {exc}"
            ) from None
        return cls(run_dir, config, keys)

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_NAME

    @property
    def nets(self) -> dict[str, dict[str, Any]]:
        """Net name -> spec."""
        return self.config["nets"]

    def config_hash(self) -> str:
        """sha256 (16 hex digits) of the canonical config JSON; identifies the run's configuration."""
        return config_hash(self.config)

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        """The stored tensors of net ``name`` (prefix stripped), on CPU."""
        from safetensors import safe_open

        self._check_name(name)
        prefix = f"{name}."
        wanted = sorted(k for k in self._weight_keys if k.startswith(prefix))
        if not wanted:
            raise RunError(
                f"{self.weights_path}: holds no tensors for net {name!r} (no keys start with {prefix!r})"
            )
        try:
            with safe_open(str(self.weights_path), framework="pt") as f:
                return {k[len(prefix) :]: f.get_tensor(k) for k in wanted}
        except Exception as exc:  # a file truncated inside the data section fails only here
            raise RunError(f"{self.weights_path}: cannot read tensors of net {name!r}: {exc}") from None

    def net(self, name: str, *, fused: bool = True) -> nn.Module:
        """Build net ``name`` from its spec, load its weights, and return it in eval mode."""
        self._check_name(name)
        try:
            module = build_net(self.nets[name], fused=fused)
        except (SpecError, TypeError, ValueError) as exc:
            raise RunError(f"{self.path / CONFIG_NAME}: net {name!r}: {exc}") from None
        state = self.state_dict(name)
        expected = module.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise RunError(
                f"{self.weights_path}: weights of net {name!r} do not fit its spec {self.nets[name]}: "
                f"missing keys {_preview(missing)}, unexpected keys {_preview(unexpected)}"
            )
        wrong = [
            f"{k}: stored {tuple(state[k].shape)}, spec needs {tuple(v.shape)}"
            for k, v in expected.items()
            if state[k].shape != v.shape
        ]
        if wrong:
            raise RunError(
                f"{self.weights_path}: weights of net {name!r} do not fit its spec {self.nets[name]}: "
                f"shape mismatch {_preview(wrong)}"
            )
        bad = nonfinite_tensors(state)
        if bad:
            raise RunError(
                f"{self.weights_path}: weights of net {name!r} hold NaN or infinite values in "
                f"{len(bad)} tensor(s) {_preview(bad)}; the run is corrupt or its training diverged"
            )
        module.load_state_dict(state)
        return module.eval()

    def generator(self, *, fused: bool = True) -> nn.Module:
        """The family's inference network (G, G_A, VAE or G), in eval mode."""
        return self.net(family(self.family).generator, fused=fused)

    def _check_name(self, name: str) -> None:
        if name not in self.nets:
            raise RunError(
                f"{self.path / CONFIG_NAME}: no net {name!r} in this {self.family} run; "
                f"nets: {sorted(self.nets)}"
            )

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, family={self.family!r}, nets={sorted(self.nets)})"


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return f"[{shown}{more}]"
