"""Import generators trained with the reference Pix2Pix/CycleGAN code (junyanz/pytorch-CycleGAN-and-pix2pix).

Their ``latest_net_G.pth`` files are plain ``state_dict``\\ s whose keys follow the reference's module nesting
(``model.model.1.model.1.weight`` for the U-Net, ``model.10.conv_block.5.weight`` for the ResNet). This module
describes that layout as a list of conv sites (conv + the norm after it), checks a checkpoint against it,
explains mismatches, and maps the tensors onto ganrt's networks.

Two ways to evaluate batch norm, as in the reference ``test.py``:

- ``stats="batch"`` (its default, the network left in train mode): every image is normalized with its own
  statistics; at batch size 1 that is affine instance norm, which is ganrt's ``norm="batch"``. Dropout is off.
- ``stats="running"`` (``test.py --eval``): the stored running statistics. Then each norm is a fixed
  per-channel affine, folded here into the preceding conv (computed in float64), and the ganrt network uses
  ``norm="none"`` (activation only).

Instance-norm checkpoints have no norm parameters; ``stats`` does not change them. Old instance-norm
checkpoints may carry stale ``running_mean``/``running_var`` keys, which are dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrt.models.resnet import ResnetGenerator
from ganrt.models.run import CONFIG_NAME, save_run
from ganrt.models.unet import UnetGenerator, unet_channels

UPSTREAM_NETS: tuple[str, ...] = ("unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks")
STATS: tuple[str, ...] = ("batch", "running")
UPSTREAM_NORMS: tuple[str, ...] = ("batch", "instance")
BN_EPS = 1e-5
_BN_STATS = ("running_mean", "running_var", "num_batches_tracked")
_UNET_DEPTH = {"unet_128": 7, "unet_256": 8}
_RESNET_BLOCKS = {"resnet_6blocks": 6, "resnet_9blocks": 9}
# Default native resolution of an imported run: the reference trains on 256x256 crops (unet_128: 128x128).
_DEFAULT_IMAGE_SIZE = {"unet_128": 128, "unet_256": 256, "resnet_6blocks": 256, "resnet_9blocks": 256}


class UpstreamCheckpointError(ValueError):
    """A reference checkpoint cannot be read or does not match the requested architecture.

    For mismatches, ``missing``/``unexpected`` hold the full key lists, ``mismatched`` the wrong shapes, and
    ``candidates`` the options (netG, ngf, norm, dropout) under which the checkpoint would load.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        mismatched: list[str] | None = None,
        candidates: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = missing or []
        self.unexpected = unexpected or []
        self.mismatched = mismatched or []
        self.candidates = candidates or []


@dataclasses.dataclass(frozen=True)
class _Site:
    """One conv of the reference network and the norm after it (if any), with their ganrt counterparts."""

    src: str  # reference module path of the conv
    dst: str  # ganrt module path of the conv
    in_ch: int
    out_ch: int
    k: int
    transposed: bool
    bias: bool  # the reference conv has a bias
    norm_src: str | None = None
    norm_dst: str | None = None

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.in_ch, self.out_ch, self.k, self.k)
        return (self.out_ch, self.in_ch, self.k, self.k)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _unet_layout(depth: int, ngf: int, norm: str, in_ch: int, out_ch: int) -> list[_Site]:
    """Sites of the reference ``UnetGenerator``.

    Level 0 is ``model.model``; its submodule sits at index 1 (``model.model.1.model``), every deeper level's
    submodule at index 3 (``model.model.1.model.3.model``, ...).
    """
    ch = unet_channels(depth, ngf)
    bias = norm == "instance"
    sites = []
    for i in range(depth):
        p, g = "model.model" + (".1.model" + ".3.model" * (i - 1) if i else ""), f"levels.{i}"
        if i == 0:  # outermost: 0 Conv, 1 submodule, 2 ReLU, 3 ConvT(bias), 4 Tanh
            sites.append(_Site(f"{p}.0", f"{g}.down", in_ch, ch[0], 4, False, bias))
            sites.append(_Site(f"{p}.3", f"{g}.up", 2 * ch[0], out_ch, 4, True, True))
        elif i == depth - 1:  # innermost: 0 LReLU, 1 Conv, 2 ReLU, 3 ConvT, 4 Norm
            sites.append(_Site(f"{p}.1", f"{g}.down", ch[i - 1], ch[i], 4, False, bias))
            sites.append(
                _Site(f"{p}.3", f"{g}.up", ch[i], ch[i - 1], 4, True, bias, f"{p}.4", f"{g}.up_norm")
            )
        else:  # middle: 0 LReLU, 1 Conv, 2 Norm, 3 submodule, 4 ReLU, 5 ConvT, 6 Norm [, 7 Dropout]
            sites.append(
                _Site(f"{p}.1", f"{g}.down", ch[i - 1], ch[i], 4, False, bias, f"{p}.2", f"{g}.down_norm")
            )
            sites.append(
                _Site(f"{p}.5", f"{g}.up", 2 * ch[i], ch[i - 1], 4, True, bias, f"{p}.6", f"{g}.up_norm")
            )
    return sites


def _resnet_layout(n_blocks: int, ngf: int, norm: str, dropout: bool, in_ch: int, out_ch: int) -> list[_Site]:
    """Sites of the reference ``ResnetGenerator`` (one flat ``model`` Sequential, blocks' ``conv_block``)."""
    bias = norm == "instance"
    sites = [_Site("model.1", "stem", in_ch, ngf, 7, False, bias, "model.2", "stem_norm")]
    for i in range(2):  # Conv k3 s2 + Norm at model.4/5 and model.7/8 (ReLU at 6 and 9)
        c_in, c_out, m = ngf * 2**i, ngf * 2 ** (i + 1), 4 + 3 * i
        sites.append(
            _Site(f"model.{m}", f"down.{i}", c_in, c_out, 3, False, bias, f"model.{m + 1}", f"down_norm.{i}")
        )
    width = ngf * 4
    second = 6 if dropout else 5  # the Dropout at conv_block.4 shifts the second conv and norm by one
    for b in range(n_blocks):
        p, g = f"model.{10 + b}.conv_block", f"blocks.{b}"
        sites.append(_Site(f"{p}.1", f"{g}.conv1", width, width, 3, False, bias, f"{p}.2", f"{g}.norm1"))
        sites.append(
            _Site(
                f"{p}.{second}", f"{g}.conv2", width, width, 3, False, bias, f"{p}.{second + 1}", f"{g}.norm2"
            )
        )
    base = 10 + n_blocks
    for i in range(2):  # ConvT + Norm at base/base+1 and base+3/base+4 (ReLU after each)
        c_in, c_out, m = width // 2**i, width // 2 ** (i + 1), base + 3 * i
        sites.append(
            _Site(f"model.{m}", f"up.{i}", c_in, c_out, 3, True, bias, f"model.{m + 1}", f"up_norm.{i}")
        )
    sites.append(
        _Site(f"model.{base + 7}", "head", ngf, out_ch, 7, False, True)
    )  # after ReflectionPad at base+6
    return sites


def _layout(netG: str, ngf: int, norm: str, dropout: bool, in_ch: int, out_ch: int) -> list[_Site]:
    if netG in _UNET_DEPTH:
        return _unet_layout(_UNET_DEPTH[netG], ngf, norm, in_ch, out_ch)
    return _resnet_layout(_RESNET_BLOCKS[netG], ngf, norm, dropout, in_ch, out_ch)


def _infer_channels(state: Mapping[str, torch.Tensor], netG: str) -> tuple[int, int, int] | None:
    """(ngf, in_channels, out_channels) read off the first and last conv of ``netG``'s layout, if present."""
    if netG in _UNET_DEPTH:
        first, last, last_dim = "model.model.0.weight", "model.model.3.weight", 1
    else:
        first, last, last_dim = "model.1.weight", f"model.{10 + _RESNET_BLOCKS[netG] + 7}.weight", 0
    w0, w1 = state.get(first), state.get(last)
    if w0 is None or w1 is None or w0.dim() != 4 or w1.dim() != 4:
        return None
    return int(w0.shape[0]), int(w0.shape[1]), int(w1.shape[last_dim])


def _expected(sites: list[_Site], norm: str) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """Required key -> shape of a reference state_dict, and the keys that may be absent (BN counters)."""
    keys: dict[str, tuple[int, ...]] = {}
    optional: set[str] = set()
    for s in sites:
        keys[f"{s.src}.weight"] = s.weight_shape
        if s.bias:
            keys[f"{s.src}.bias"] = (s.out_ch,)
        if s.norm_src is not None and norm == "batch":
            for name in ("weight", "bias", "running_mean", "running_var"):
                keys[f"{s.norm_src}.{name}"] = (s.out_ch,)
            # Checkpoints saved before PyTorch 0.4.1 have no num_batches_tracked.
            optional.add(f"{s.norm_src}.num_batches_tracked")
    return keys, optional


def _drop_stale_instance_stats(state: dict[str, torch.Tensor], sites: list[_Site]) -> None:
    """Remove running-stat keys that 2018-era InstanceNorm2d layers saved (they were never used)."""
    for s in sites:
        if s.norm_src is not None:
            for name in _BN_STATS:
                state.pop(f"{s.norm_src}.{name}", None)


def _compare(
    state: Mapping[str, torch.Tensor], expected: dict[str, tuple[int, ...]], optional: set[str]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, wrong-shape descriptions) of ``state`` against the expected layout."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected) - optional)
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)}, expected {shape}"
        for k, shape in expected.items()
        if k in state and tuple(state[k].shape) != shape
    ]
    return missing, unexpected, wrong


def _matches(state: Mapping[str, torch.Tensor], netG: str, ngf: int, norm: str, dropout: bool,
             in_ch: int, out_ch: int) -> bool:  # fmt: skip
    sites = _layout(netG, ngf, norm, dropout, in_ch, out_ch)
    cleaned = dict(state)
    if norm == "instance":
        _drop_stale_instance_stats(cleaned, sites)
    return not any(_compare(cleaned, *_expected(sites, norm)))


def _candidates(state: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Every (netG, ngf, norm[, dropout]) whose reference layout this state_dict matches exactly.

    Dropout is only named for ResNets: a U-Net's dropout leaves no trace in its keys and does not matter for
    loading (inference never applies it).
    """
    found = []
    for netG in UPSTREAM_NETS:
        inferred = _infer_channels(state, netG)
        if inferred is None:
            continue
        ngf, in_ch, out_ch = inferred
        for norm in UPSTREAM_NORMS:
            # U-Net dropout has no weights and shifts no index, so it cannot be told from the keys.
            for dropout in (False,) if netG in _UNET_DEPTH else (False, True):
                if _matches(state, netG, ngf, norm, dropout, in_ch, out_ch):
                    option: dict[str, Any] = {"netG": netG, "ngf": ngf, "norm": norm}
                    if netG not in _UNET_DEPTH:
                        option["dropout"] = dropout
                    found.append(option)
    return found


def _hints(state: Mapping[str, torch.Tensor], ngf: int, norm: str) -> list[str]:
    """Likely causes of a mismatch when no known layout fits exactly."""
    hints = []
    keys = list(state)
    if any(k.startswith("model.model.") for k in keys):
        depth = max(k.count("model") for k in keys if k.startswith("model.model.")) - 1
        hints.append(f"keys nest {depth} U-Net levels deep (unet_128 has 7, unet_256 has 8)")
    blocks = {int(m.group(1)) for k in keys if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    if blocks:
        hints.append(f"it has {len(blocks)} ResNet blocks (resnet_6blocks / resnet_9blocks)")
        if any(re.match(r"model\.\d+\.conv_block\.6\.weight$", k) and state[k].dim() == 4 for k in keys):
            hints.append(
                "its blocks' second conv is conv_block.6, i.e. it was trained with dropout (dropout=True)"
            )
        elif any(re.match(r"model\.\d+\.conv_block\.5\.weight$", k) for k in keys):
            hints.append("its blocks' second conv is conv_block.5, i.e. no dropout (dropout=False)")
    for first in ("model.model.0.weight", "model.1.weight"):
        w = state.get(first)
        if w is not None and w.dim() == 4 and w.shape[0] != ngf:
            hints.append(
                f"its first conv {first} has {w.shape[0]} output channels: ngf={w.shape[0]}, not {ngf}"
            )
    has_norm_weight = any(
        k.endswith(".running_var") and k[: -len("running_var")] + "weight" in state for k in keys
    )
    if has_norm_weight and norm == "instance":
        hints.append("it has batch-norm weights and running statistics: norm='batch'")
    if not has_norm_weight and norm == "batch":
        hints.append("it has no norm weights: norm='instance'")
    return hints


def _mismatch_error(
    path: Path,
    state: Mapping[str, torch.Tensor],
    netG: str,
    ngf: int,
    norm: str,
    dropout: bool,
    missing: list[str],
    unexpected: list[str],
    wrong: list[str],
) -> UpstreamCheckpointError:
    parts = [
        f"{path}: checkpoint does not match netG={netG!r}, ngf={ngf}, norm={norm!r}, dropout={dropout}.",
        f"Missing keys ({len(missing)}): {_preview(missing)}.",
        f"Unexpected keys ({len(unexpected)}): {_preview(unexpected)}.",
    ]
    if wrong:
        parts.append(f"Shape mismatches ({len(wrong)}): {_preview(wrong)}.")
    found = _candidates(state)
    if found:
        options = " or ".join(", ".join(f"{k}={v!r}" for k, v in c.items()) for c in found)
        parts.append(f"The checkpoint matches {options}: pass those options.")
    else:
        hints = _hints(state, ngf, norm)
        cause = "; ".join(hints) if hints else "it matches none of " + ", ".join(UPSTREAM_NETS)
        parts.append(f"Likely cause (wrong netG, ngf, norm or dropout): {cause}.")
    return UpstreamCheckpointError(
        " ".join(parts), missing=missing, unexpected=unexpected, mismatched=wrong, candidates=found
    )


def _preview(items: list[str], limit: int = 10) -> str:
    if not items:
        return "none"
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def read_upstream_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a reference ``*_net_G.pth`` with ``torch.load(weights_only=True)``; strips a ``module.`` prefix.

    Never unpickles arbitrary objects: a file that is more than a plain state_dict of tensors is refused.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"upstream checkpoint {str(p)!r} does not exist or is not a file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UpstreamCheckpointError(
            f"{p}: refusing to load it: it holds objects other than tensors, and unpickling those could run "
            f"arbitrary code (torch.load(weights_only=True) failed: {str(exc).splitlines()[0]}). Reference "
            "checkpoints are plain state_dicts; if you trust the file, re-save `model.state_dict()` with "
            "torch.save."
        ) from None
    except Exception as exc:  # noqa: BLE001 - garbage bytes fail anywhere in the restricted unpickler
        # (RuntimeError, EOFError, IndexError from its stack, ...): all mean "not a checkpoint"
        raise UpstreamCheckpointError(
            f"{p}: not a readable PyTorch checkpoint (truncated or corrupt?): {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(obj, Mapping):
        raise UpstreamCheckpointError(
            f"{p}: expected a state_dict (a mapping of parameter names to tensors), got {type(obj).__name__}"
        )
    bad = next(
        ((k, v) for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))), None
    )
    if bad is not None:
        raise UpstreamCheckpointError(
            f"{p}: expected a state_dict (parameter names -> tensors), but entry {bad[0]!r} holds a "
            f"{type(bad[1]).__name__}; if the weights sit under a key of a larger checkpoint, save that "
            "entry alone"
        )
    # nn.DataParallel saves "module."-prefixed keys.
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _convert(
    state: dict[str, torch.Tensor], sites: list[_Site], norm: str, fold: bool
) -> dict[str, torch.Tensor]:
    """ganrt state_dict from a checked reference state_dict; ``fold`` folds eval-mode BN into the convs."""
    out: dict[str, torch.Tensor] = {}
    for s in sites:
        w = state[f"{s.src}.weight"].to(torch.float64)
        b = state[f"{s.src}.bias"].to(torch.float64) if s.bias else torch.zeros(s.out_ch, dtype=torch.float64)
        if s.norm_src is not None and norm == "batch":
            gamma = state[f"{s.norm_src}.weight"].to(torch.float64)
            beta = state[f"{s.norm_src}.bias"].to(torch.float64)
            if fold:
                # eval-mode BN: y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift
                scale = gamma / torch.sqrt(state[f"{s.norm_src}.running_var"].to(torch.float64) + BN_EPS)
                shift = beta - state[f"{s.norm_src}.running_mean"].to(torch.float64) * scale
                w = w * (scale.view(1, -1, 1, 1) if s.transposed else scale.view(-1, 1, 1, 1))
                b = b * scale + shift
            else:
                out[f"{s.norm_dst}.weight"] = gamma.to(torch.float32)
                out[f"{s.norm_dst}.bias"] = beta.to(torch.float32)
        out[f"{s.dst}.weight"] = w.to(torch.float32)
        if s.bias or fold:
            out[f"{s.dst}.bias"] = b.to(torch.float32)
    return out


def load_upstream_generator(
    path: str | os.PathLike[str],
    *,
    netG: str,
    ngf: int = 64,
    norm: str = "batch",
    dropout: bool = False,
    stats: str = "batch",
    fused: bool = True,
) -> nn.Module:
    """Load a reference generator checkpoint as a ganrt generator in eval mode.

    Args:
        path: a ``latest_net_G.pth`` / ``{epoch}_net_G.pth`` state_dict saved by the reference code.
        netG: "unet_128", "unet_256", "resnet_6blocks" or "resnet_9blocks" (the reference ``--netG``).
        ngf, norm, dropout: the reference ``--ngf``, ``--norm`` ("batch" | "instance"), ``not --no_dropout``.
        stats: "batch" (reference ``test.py`` default: per-image statistics) or "running" (``--eval``).
        fused: use the fused ganrt kernels.

    Input/output channels are read off the checkpoint. The result maps an image (N, C, H, W) in [-1, 1] to
    the reference's output (per image, dropout off). Raises :class:`UpstreamCheckpointError` on unreadable
    files and on key/shape mismatches, naming the missing and unexpected keys and the likely cause.
    """
    _check_choice("netG", netG, UPSTREAM_NETS)
    _check_choice("norm", norm, UPSTREAM_NORMS)
    _check_choice("stats", stats, STATS)
    if isinstance(ngf, bool) or not isinstance(ngf, int) or ngf < 1:
        raise ValueError(f"ngf must be a positive int, got {ngf!r}")
    p = Path(path)
    state = read_upstream_state_dict(p)
    inferred = _infer_channels(state, netG)
    in_ch, out_ch = (inferred[1], inferred[2]) if inferred is not None else (3, 3)
    sites = _layout(netG, ngf, norm, bool(dropout), in_ch, out_ch)
    original = dict(state)
    if norm == "instance":
        _drop_stale_instance_stats(state, sites)
    missing, unexpected, wrong = _compare(state, *_expected(sites, norm))
    if missing or unexpected or wrong:
        raise _mismatch_error(p, original, netG, ngf, norm, bool(dropout), missing, unexpected, wrong)
    from ganrt.models.run import nonfinite_tensors

    bad = nonfinite_tensors(state)
    if bad:
        shown = ", ".join(bad[:5]) + (f", ... ({len(bad) - 5} more)" if len(bad) > 5 else "")
        raise UpstreamCheckpointError(
            f"{p}: {len(bad)} of {len(state)} tensors hold NaN or infinite values ({shown}); the "
            f"checkpoint is corrupt or its training diverged"
        )

    fold = norm == "batch" and stats == "running"
    model = _build(netG, in_ch, out_ch, ngf, "none" if fold else norm, bool(dropout), fused)
    model.load_state_dict(_convert(state, sites, norm, fold))
    return model.eval()


def _build(netG: str, in_ch: int, out_ch: int, ngf: int, norm: str, dropout: bool, fused: bool) -> nn.Module:
    if netG in _UNET_DEPTH:
        return UnetGenerator(in_ch, out_ch, _UNET_DEPTH[netG], ngf, norm, dropout, fused)
    return ResnetGenerator(in_ch, out_ch, ngf, norm, dropout, _RESNET_BLOCKS[netG], fused)


def upstream_run_config(
    netG: str,
    ngf: int,
    norm: str,
    dropout: bool,
    stats: str,
    image_size: int | None = None,
    *,
    in_channels: int = 3,
    out_channels: int = 3,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ganrt run config for an imported reference generator (family pix2pix for U-Nets, else cyclegan).

    ``image_size`` defaults to the reference training crop (256; 128 for unet_128). ``source`` (e.g. the
    checkpoint's name and sha256) is recorded under ``train``.
    """
    _check_choice("netG", netG, UPSTREAM_NETS)
    _check_choice("norm", norm, UPSTREAM_NORMS)
    _check_choice("stats", stats, STATS)
    size = _DEFAULT_IMAGE_SIZE[netG] if image_size is None else image_size
    unet = netG in _UNET_DEPTH
    multiple = 2 ** _UNET_DEPTH[netG] if unet else 4
    if isinstance(size, bool) or not isinstance(size, int) or size < multiple or size % multiple:
        raise ValueError(f"image_size must be a positive multiple of {multiple} for {netG}, got {size!r}")
    ganrt_norm = "none" if norm == "batch" and stats == "running" else norm
    spec = {
        "arch": netG,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "ngf": ngf,
        "norm": ganrt_norm,
        "dropout": bool(dropout),
    }
    return {
        "family": "pix2pix" if unet else "cyclegan",
        "image_size": size,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "nets": {"G" if unet else "G_A": spec},
        "data": {},
        "train": {
            "source": "upstream",
            "netG": netG,
            "ngf": ngf,
            "norm": norm,
            "dropout": bool(dropout),
            "stats": stats,
            **dict(source or {}),
        },
    }


def import_upstream(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    netG: str,
    ngf: int = 64,
    norm: str = "batch",
    dropout: bool = False,
    stats: str = "batch",
    image_size: int | None = None,
    force: bool = False,
) -> Path:
    """Convert a reference generator checkpoint into a ganrt run directory; returns ``out_dir``.

    The run holds one net (pix2pix ``G`` for U-Nets, cyclegan ``G_A`` for ResNets) that the rest of the
    pipeline (export, runtime) accepts. An existing run in ``out_dir`` is only replaced with ``force=True``.
    """
    out = Path(out_dir)
    if (out / CONFIG_NAME).exists() and not force:
        raise FileExistsError(
            f"{out} already holds a ganrt run ({CONFIG_NAME}); pass force=True to replace it"
        )
    model = load_upstream_generator(path, netG=netG, ngf=ngf, norm=norm, dropout=dropout, stats=stats)
    p = Path(path)
    source = {"checkpoint": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    config = upstream_run_config(
        netG, ngf, norm, dropout, stats, image_size,
        in_channels=model.in_channels, out_channels=model.out_channels, source=source,
    )  # fmt: skip
    name = next(iter(config["nets"]))
    return save_run(out, config, {name: model})
