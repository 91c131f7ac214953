"""What users pass as images, turned into uint8 (N, H, W, C) tensors and back into the same kind.

Accepted: a PIL image; a numpy uint8 array (H, W, C), (N, H, W, C) or, for 1-channel models, (H, W); a torch
uint8 tensor laid out like the numpy arrays (channels last, any device); a list or tuple of those. Float torch
tensors are the network's own convention, (C, H, W) or (N, C, H, W) in the model's value range, and are
handled by the caller without passing through uint8.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganrt.backends.base import check_finite, host_tensor


def is_float_tensor(images: Any) -> bool:
    return isinstance(images, torch.Tensor) and images.is_floating_point()


def _is_pil(image: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(image, Image.Image)


@dataclasses.dataclass
class Parsed:
    """``groups``: uint8 (N, H, W, C) contiguous tensors, one per distinct (H, W, device);
    ``restore(outputs)`` maps the matching uint8 (N, H, W, C_out) outputs back to what the user passed."""

    groups: list[torch.Tensor]
    restore: Callable[[list[torch.Tensor]], Any]


def _single(image: Any, channels: int, what: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """One user object -> uint8 (N, H, W, C) tensor and a function mapping uint8 (N, H, W, C_out) back."""
    if _is_pil(image):
        from PIL import Image

        if channels not in (1, 3):
            raise ValueError(
                f"{what}: PIL images give 1 or 3 channels, but this model takes {channels}; pass a "
                f"uint8 array (H, W, {channels})"
            )
        array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
        if channels == 1:
            array = array[..., None]

        def to_pil(out: torch.Tensor) -> Any:
            pixels = out[0].cpu().numpy()
            return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)

        return host_tensor(array)[None], to_pil
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(
                f"{what}: numpy images must be uint8 (0..255), got {image.dtype}; float data goes in "
                f"as a torch tensor (N, C, H, W) in the model's value range"
            )
        batch, restore_np = _layout(tuple(image.shape), channels, what)
        _check_not_empty(batch, what)
        tensor = host_tensor(image).reshape(batch)
        return tensor, lambda out: restore_np(out.cpu().numpy())
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8:
            raise TypeError(
                f"{what}: torch images must be uint8 (channels last) or floating point "
                f"(channels first), got {image.dtype}"
            )
        batch, restore_t = _layout(tuple(image.shape), channels, what, torch_hint=True)
        _check_not_empty(batch, what)
        device = image.device
        return image.contiguous().reshape(batch), lambda out: restore_t(out.to(device))
    raise TypeError(
        f"{what}: expected a PIL image, a uint8 numpy array, a torch tensor or a list of those, "
        f"got {type(image).__name__}"
    )


def _check_not_empty(shape: tuple[int, ...], what: str) -> None:
    """(N, H, W, C) must have at least one image of at least 1x1 pixel."""
    if shape[0] < 1:
        raise ValueError(f"{what}: an empty batch (0 images, shape {shape}); pass at least one image")
    check_size(shape[1], shape[2], what)


def _layout(
    shape: tuple[int, ...], channels: int, what: str, torch_hint: bool = False
) -> tuple[tuple[int, ...], Callable[[Any], Any]]:
    """Batched (N, H, W, C) shape for an HW/HWC/NHWC image shape, and how to give outputs that layout back."""
    hint = (
        " (uint8 tensors are channels last like numpy images; for a (C, H, W) tensor use x.permute(1, 2, 0))"
        if torch_hint
        else ""
    )
    if len(shape) == 2:
        if channels != 1:
            raise ValueError(
                f"{what}: a 2-D (H, W) image is grayscale, but this model takes {channels} channels"
            )
        return (1, *shape, 1), lambda out: out[0, ..., 0]
    if len(shape) == 3:
        if shape[2] != channels:
            raise ValueError(
                f"{what}: expected (H, W, {channels}) for this {channels}-channel model, got {shape}{hint}"
            )
        return (1, *shape), lambda out: out[0]
    if len(shape) == 4:
        if shape[3] != channels:
            raise ValueError(
                f"{what}: expected (N, H, W, {channels}) for this {channels}-channel model, got {shape}{hint}"
            )
        return shape, lambda out: out
    raise ValueError(
        f"{what}: images must be 2-D (H, W), 3-D (H, W, C) or 4-D (N, H, W, C), got {len(shape)}-D {shape}"
    )


def parse(images: Any, channels: int) -> Parsed:
    """Split ``images`` into same-size groups so each group runs as one batch."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images: got an empty list")
        singles = [_single(image, channels, f"images[{i}]") for i, image in enumerate(images)]
        keys: dict[tuple, list[int]] = {}
        for i, (tensor, _) in enumerate(singles):
            keys.setdefault((tuple(tensor.shape[1:]), tensor.device), []).append(i)
        order = list(keys.values())
        groups = [
            torch.cat([singles[i][0] for i in members]) if len(members) > 1 else singles[members[0]][0]
            for members in order
        ]
        kind = type(images)

        def restore_list(outputs: list[torch.Tensor]) -> Any:
            result: list[Any] = [None] * len(singles)
            for members, out in zip(order, outputs, strict=True):
                start = 0
                for i in members:
                    n = singles[i][0].shape[0]
                    result[i] = singles[i][1](out[start : start + n])
                    start += n
            return kind(result)

        return Parsed(groups, restore_list)
    tensor, restore = _single(images, channels, "images")
    return Parsed([tensor], lambda outputs: restore(outputs[0]))


def check_size(h: int, w: int, what: str = "images") -> None:
    if h < 1 or w < 1:
        raise ValueError(f"{what}: empty image of size {h}x{w}")


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad uint8 (N, H, W, C) at the bottom/right to (height, width): reflection where the image is large
    enough, edge replication beyond that (reflection cannot pad more than the image minus one pixel)."""
    _, h, w, _ = x.shape
    planes = x.permute(0, 3, 1, 2).float()
    pad_h, pad_w = height - h, width - w
    if pad_h < h and pad_w < w:
        planes = F.pad(planes, (0, pad_w, 0, pad_h), mode="reflect")
    else:
        planes = F.pad(planes, (0, pad_w, 0, pad_h), mode="replicate")
    return planes.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def resize_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of uint8 (N, H, W, C) to (height, width)."""
    planes = x.permute(0, 3, 1, 2).float()
    planes = F.interpolate(planes, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return planes.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def pad_float(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Like :func:`pad_to` for float (N, C, H, W)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = height - h, width - w
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def resize_float(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Like :func:`resize_to` for float (N, C, H, W)."""
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def grid(images: np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 (N, H, W, C) images into one uint8 (rows*H', cols*W', C) picture, ``padding`` px apart."""
    n, h, w, c = images.shape
    cols = nrow or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        canvas[top : top + h, left : left + w] = images[i]
    return canvas


def to_latents(
    values: Sequence[float] | np.ndarray | torch.Tensor, latent_dim: int, what: str
) -> torch.Tensor:
    """Float (N, latent_dim) tensor from an array-like of shape (latent_dim,) or (N, latent_dim)."""
    tensor = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if not tensor.is_floating_point():
        raise TypeError(f"{what}: latents must be floating point, got {tensor.dtype}")
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2 or tensor.shape[1] != latent_dim:
        raise ValueError(
            f"{what}: latents must be (N, {latent_dim}) or ({latent_dim},), got {tuple(tensor.shape)}"
        )
    if tensor.shape[0] < 1:
        raise ValueError(
            f"{what}: an empty batch of latents (shape {tuple(tensor.shape)}); pass at least one"
        )
    check_finite(tensor, f"{what}: latents")
    return tensor
