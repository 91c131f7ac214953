"""Training precision: which of fp32, bf16 and fp16 a device trains in, and how a run applies it.

``--precision auto`` (the default) means bf16 where the device has native bf16 (AMX or AVX512_BF16 on CPU,
compute capability 8.0+ on CUDA) and fp32 elsewhere; ``fp16`` is CUDA-only and comes with a gradient scaler.
In reduced precision

- master weights and optimizer state stay fp32 (autocast casts weights per forward pass, and caches the
  casts only until the next optimizer step), so checkpoints are the same fp32 safetensors as ever;
- during a training step each network's forward runs under ``torch.autocast`` and hands back fp32 outputs,
  so every loss is computed in fp32 and backward passes run outside autocast (as autocast's documentation
  asks); held-out metrics and sample grids run in fp32, like the exported model;
- instance norm runs in the autocast dtype with fp32 statistics (``ganrt.ops.instance_norm_act``);
- on CPU the networks are channels_last: oneDNN's reduced-precision convolutions work in NHWC, and the
  fused norm reads NHWC directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganrt.backends.device import cpu_flags
from ganrt.train.options import TrainError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class DeviceSupport:
    """What a device can train in: ``bf16``/``fp16`` natively, and ``detail``, the evidence in words."""

    device: str
    bf16: bool
    fp16: bool
    detail: str

    def supported(self) -> tuple[str, ...]:
        return ("fp32",) + (("bf16",) if self.bf16 else ()) + (("fp16",) if self.fp16 else ())


def cpu_support(*, avx512_bf16: bool, amx_bf16: bool, onednn: bool) -> DeviceSupport:
    """CPU support from its features: bf16 needs AMX-BF16 or AVX512_BF16 instructions and a torch built with
    oneDNN (which runs the bf16 convolutions); fp16 training is never offered on CPU."""
    found = [name for name, has in (("AMX-BF16", amx_bf16), ("AVX512_BF16", avx512_bf16)) if has]
    if not onednn:
        detail = "a torch build without oneDNN (bf16 convolutions would not use the bf16 instructions)"
        return DeviceSupport("cpu", False, False, detail)
    detail = " and ".join(found) if found else "neither AMX-BF16 nor AVX512_BF16"
    return DeviceSupport("cpu", bool(found), False, detail)


def cuda_support(device: str, name: str, capability: tuple[int, int]) -> DeviceSupport:
    """CUDA support from the compute capability: native bf16 from sm_80 (Ampere) on; fp16 on every GPU."""
    major, minor = capability
    return DeviceSupport(device, major >= 8, True, f"{name} (sm_{major}{minor})")


def _cpu_flags() -> tuple[bool, bool]:
    """(AVX512_BF16, AMX-BF16) of this CPU: torch's CPUID probes, else the kernel's CPU flags."""
    probe_avx = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    probe_amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if probe_avx is not None and probe_amx is not None:
        return bool(probe_avx()), bool(probe_amx())
    flags = cpu_flags() or frozenset()
    return "avx512_bf16" in flags, "amx_bf16" in flags


def device_support(device: torch.device) -> DeviceSupport:
    """What ``device`` (cpu or an available cuda device) can train in."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name, capability = torch.cuda.get_device_name(index), torch.cuda.get_device_capability(index)
        return cuda_support(f"cuda:{index}", name, capability)
    avx512_bf16, amx_bf16 = _cpu_flags()
    onednn = torch.backends.mkldnn.is_available()
    return cpu_support(avx512_bf16=avx512_bf16, amx_bf16=amx_bf16, onednn=onednn)


def resolve_precision(requested: str, support: DeviceSupport) -> str:
    """``requested`` (auto, fp32, bf16, fp16) -> the precision to train in on a device with ``support``.

    TrainError when the device cannot: the message names what the device has and what it supports.
    """
    if requested not in PRECISIONS:
        raise TrainError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return "bf16" if support.bf16 else "fp32"
    supports = f"{support.device} supports {', '.join(support.supported())}"
    if requested == "bf16" and not support.bf16:
        need = "AMX-BF16 or AVX512_BF16" if support.device == "cpu" else "compute capability 8.0 or newer"
        raise TrainError(
            f"precision bf16 needs native bf16 ({need}); {support.device} has {support.detail}, so {supports}"
        )
    if requested == "fp16" and not support.fp16:
        raise TrainError(f"precision fp16 trains on CUDA only (with a gradient scaler); {supports} "
                         f"({support.detail})")
    return requested


def _fp32(value: Any) -> Any:
    """Floating tensors of a network output (a tensor or a tuple of them) in fp32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
    if isinstance(value, tuple):
        return tuple(_fp32(v) for v in value)
    return value


class Precision:
    """How a run computes: ``name`` is fp32, bf16 or fp16 on ``device``.

    ``prepare(net)`` sets a network up (channels_last, autocast around its forward, fp32 outputs); a family's
    step runs inside ``step_scope()`` and calls ``backward(loss)`` / ``step(optimizer)`` instead of
    ``loss.backward()`` / ``optimizer.step()``, then the loop calls ``update()`` once per step (the fp16
    gradient scaler's bookkeeping). ``channels_last`` defaults to reduced precision on CPU.
    """

    def __init__(self, name: str, device: torch.device, *, channels_last: bool | None = None) -> None:
        if name not in PRECISIONS[1:]:
            raise TrainError(f"precision must be one of {', '.join(PRECISIONS[1:])}, got {name!r}")
        self.name, self.device = name, device
        self.dtype = _DTYPES.get(name)
        self.channels_last = (self.dtype is not None and device.type == "cpu") if channels_last is None \
            else channels_last
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
        self._in_step = False  # networks autocast only inside step_scope()
        self._fp32_scope = False  # set while a gradient penalty runs in fp32 (fp16 only)
        self._contexts: list[contextlib.AbstractContextManager[Any]] = []

    def __repr__(self) -> str:
        return f"Precision({self.name!r}, {str(self.device)!r}, channels_last={self.channels_last})"

    def prepare(self, net: nn.Module) -> nn.Module:
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        if self.dtype is not None:
            net.register_forward_pre_hook(self._enter_autocast)
            # always_call: the autocast context is left even when the forward raises.
            net.register_forward_hook(self._leave_autocast, always_call=True)
        return net

    def _enter_autocast(self, module: nn.Module, args: Any) -> None:
        enabled = self._in_step and not self._fp32_scope
        ctx = torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)
        ctx.__enter__()
        self._contexts.append(ctx)

    def _leave_autocast(self, module: nn.Module, args: Any, output: Any) -> Any:
        self._contexts.pop().__exit__(None, None, None)
        return _fp32(output)

    @contextlib.contextmanager
    def step_scope(self) -> Iterator[None]:
        """Around one training step: the networks autocast inside it, and a (disabled) autocast level outside
        theirs keeps the weight casts made in one forward for the next forward of the step (until an optimizer
        step changes the weights) instead of redoing them."""
        if self.dtype is None:
            yield
            return
        self._in_step = True
        try:
            with torch.autocast(self.device.type, enabled=False):
                yield
        finally:
            self._in_step = False

    @contextlib.contextmanager
    def fp32_scope(self) -> Iterator[None]:
        """fp16 only: the networks run in fp32 inside (a WGAN-GP gradient penalty differentiates D's output
        w.r.t. its input without the loss scale, where fp16 gradients could underflow); no-op otherwise."""
        if self.name != "fp16":
            yield
            return
        self._fp32_scope = True
        try:
            yield
        finally:
            self._fp32_scope = False

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()
        if self.dtype is not None:
            # The parameters changed: reduced-precision copies cached by autocast are stale now.
            torch.clear_autocast_cache()

    def update(self) -> None:
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """JSON state for checkpoints (the fp16 loss scale and its growth tracker)."""
        return {"name": self.name, "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
