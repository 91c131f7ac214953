"""``Translator``: what ``ganrt.load`` returns for image-to-image models (Pix2Pix, CycleGAN)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ganrt.backends.base import check_finite
from ganrt.runtime import images as _images
from ganrt.runtime.model import Model, _pad_rows, save_image

# Default pixel limit of translate_file: what ``ganrt serve`` allows per image (4096 x 4096).
MAX_PIXELS = 4096 * 4096


class Translator(Model):
    """An image-to-image generator: ``model(image)`` / :meth:`translate`, :meth:`translate_file`."""

    def translate(self, images: Any, *, resize: str | None = None) -> Any:
        """Translate images; returns the same kind as given.

        images: PIL image | uint8 numpy (H, W, C) / (N, H, W, C) / (H, W) for 1-channel models | torch uint8
        (same layouts, any device) | torch float (C, H, W) / (N, C, H, W) in the model's value range | a list
        of those.
        resize: what to do with sizes the network cannot take: ``"pad"`` (reflect-pad to the next multiple,
        crop back; default for dynamic-size models), ``"resize"`` (bilinear to the nearest valid size and
        back; default for fixed-size models) or ``"none"`` (raise).
        """
        md, part = self.metadata, self._main
        if _images.is_float_tensor(images):
            return self._translate_float(images, resize)
        parsed = _images.parse(images, md.in_channels)
        outputs = []
        with self._session():
            for group in parsed.groups:
                fitted, restore = self._fit(part, group, resize)
                x = self._to_runner(fitted, part)
                out = self._image_graph_u8(part, x, md.out_channels)[part.roles.out_image]
                outputs.append(self._to_host(restore(out), group.device))
        return parsed.restore(outputs)

    __call__ = translate

    def _translate_float(self, x: torch.Tensor, resize: str | None) -> torch.Tensor:
        """float (C, H, W) / (N, C, H, W) in the model's value range -> the same layout, dtype and device.

        Runs through persistent per-shape buffers, so a runner that replays CUDA graphs per buffer address
        captures once per shape, not once per call."""
        md, part = self.metadata, self._main
        single = x.ndim == 3
        if single:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != md.in_channels:
            raise ValueError(
                f"images: float tensors must be (C, H, W) or (N, C, H, W) with C={md.in_channels}, "
                f"got {tuple(x.shape if not single else x.shape[1:])}"
            )
        n, _, h, w = x.shape
        if n < 1:
            raise ValueError(f"images: an empty batch (0 images, shape {tuple(x.shape)}); pass at least one")
        check_finite(x, "images")
        plan = self._plan_size(part, h, w, resize)
        fitted = x
        if plan is not None:
            mode, th, tw = plan
            fitted = (_images.pad_float if mode == "pad" else _images.resize_float)(x.float(), th, tw)
        roles = part.roles
        fh, fw = fitted.shape[2:]
        with self._session():
            feed = fitted.to(part.torch_device)
            outs = []
            for start, count, b in part.chunks(n):

                def make(b: int = b) -> dict[str, torch.Tensor]:
                    dev = part.torch_device
                    return {
                        roles.image: torch.empty((b, md.in_channels, fh, fw), dtype=part.dtype(roles.image),
                                                 device=dev),
                        roles.out_image: torch.empty((b, md.out_channels, fh, fw),
                                                     dtype=part.dtype(roles.out_image), device=dev),
                    }  # fmt: skip

                bufs = self._buffers((id(part), "float", b, fh, fw), make)
                bufs[roles.image].copy_(_pad_rows(feed[start : start + count], b))
                part.runner.run({roles.image: bufs[roles.image]}, {roles.out_image: bufs[roles.out_image]})
                outs.append(bufs[roles.out_image][:count].clone())
            y = torch.cat(outs) if len(outs) > 1 else outs[0]
            if plan is not None:
                y = y[..., :h, :w] if plan[0] == "pad" else _images.resize_float(y.float(), h, w)
            y = self._to_host(y.to(x.dtype).contiguous(), x.device)
        return y[0] if single else y

    def translate_file(
        self,
        src: str | os.PathLike,
        dst: str | os.PathLike,
        *,
        resize: str | None = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> Path:
        """Read an image file, translate it, write the result atomically to ``dst`` (format from suffix).

        The file is decoded by :mod:`ganrt.imageio` (the rules training and the server use: EXIF orientation,
        16-bit rescaled, float as [0, 1], transparency over white); images above ``max_pixels`` (``None``: no
        limit) are refused from their header, before any pixel is decompressed.
        """
        from ganrt import imageio

        src, dst = Path(src), Path(dst)
        try:
            pixels = imageio.decode(src, self.metadata.in_channels, max_pixels=max_pixels, what=str(src))
        except FileNotFoundError:
            raise FileNotFoundError(f"no such image file: {src}") from None
        except OSError as exc:
            raise ValueError(f"{src}: not a readable image ({exc})") from exc
        result = self.translate(pixels, resize=resize)
        save_image(result, dst)
        return dst
