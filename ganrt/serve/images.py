"""Image bodies for the ``/v1`` endpoints: guarded PNG/JPEG decoding and PNG encoding.

Decoding is :mod:`ganrt.imageio`'s (the rules training and the runtime use): the header is read first and
images above ``max_pixels`` are refused before any pixel is decompressed (a small PNG can declare 50 000 x
50 000 pixels: a decompression bomb). Only PNG and JPEG decoders are enabled.
"""

from __future__ import annotations

import io

import numpy as np

from ganrt import imageio

ACCEPTED_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG"}


class ImageError(ValueError):
    """An image body that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_type(content_type: str) -> str:
    """The Pillow format for a body of ``content_type``; :class:`ImageError` 415 for anything but PNG/JPEG."""
    fmt = ACCEPTED_TYPES.get(content_type)
    if fmt is None:
        accepted = ", ".join(sorted(ACCEPTED_TYPES))
        raise ImageError(
            f"Content-Type must be one of {accepted}, got {content_type or 'none'!r}", status=415
        )
    return fmt


def image_size(data: bytes, *, content_type: str, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` the body declares, read from its header only (no pixel is decompressed).

    Raises :class:`ImageError`: 415 wrong content type, 413 above ``max_pixels``, 400 undecodable or empty.
    """
    fmt = check_type(content_type)
    if not data:
        raise ImageError("the request body is empty; send the image bytes")
    try:
        with imageio.open_image(data, max_pixels=max_pixels, formats=[fmt], what="the body") as image:
            return image.size
    except imageio.ImageDecodeError as exc:
        raise ImageError(str(exc), status=exc.status) from None


def decode_image(data: bytes, *, content_type: str, channels: int, max_pixels: int) -> np.ndarray:
    """Decode a PNG/JPEG body into ``(H, W, channels)`` uint8 (RGB for 3 channels, grayscale for 1) by the
    rules of :mod:`ganrt.imageio` (the decoder training and the runtime use).

    Raises:
        ImageError: 415 for a content type other than PNG/JPEG, 413 above ``max_pixels``, 400 when
        undecodable.
    """
    fmt = check_type(content_type)
    if not data:
        raise ImageError("the request body is empty; send the image bytes")
    if channels not in (1, 3):
        raise ImageError(f"models with {channels} input channels take no images over /v1; use /v2 infer")
    try:
        return imageio.decode(data, channels, max_pixels=max_pixels, formats=[fmt], what="the body")
    except imageio.ImageDecodeError as exc:
        raise ImageError(str(exc), status=exc.status) from None


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a ``(H, W, C)`` uint8 image with C in {1, 3}."""
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"image must be (H, W, 1|3) uint8, got {image.shape} {image.dtype}")
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
