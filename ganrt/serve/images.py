"""Image bodies for the ``/v1`` endpoints: guarded PNG/JPEG decoding and PNG encoding.

Decoding reads the header first and refuses images above ``max_pixels`` before any pixel is decompressed (a
small PNG can declare 50 000 x 50 000 pixels: a decompression bomb). Only PNG and JPEG decoders are enabled.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

ACCEPTED_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG"}


class ImageError(ValueError):
    """An image body that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, *, content_type: str, channels: int, max_pixels: int) -> np.ndarray:
    """Decode a PNG/JPEG body into ``(H, W, channels)`` uint8 (RGB for 3 channels, grayscale for 1).

    Raises:
        ImageError: 415 for a content type other than PNG/JPEG, 413 above ``max_pixels``, 400 when
        undecodable.
    """
    from PIL import Image

    fmt = ACCEPTED_TYPES.get(content_type)
    if fmt is None:
        accepted = ", ".join(sorted(ACCEPTED_TYPES))
        raise ImageError(
            f"Content-Type must be one of {accepted}, got {content_type or 'none'!r}", status=415
        )
    if not data:
        raise ImageError("the request body is empty; send the image bytes")
    with warnings.catch_warnings():
        # PIL's own bomb check only warns at its (higher) limit; the check below refuses at ours
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError as exc:
            raise ImageError(f"image too large: {exc}", status=413) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"cannot decode the body as {fmt}: {exc}") from None
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(
                f"image has {width}x{height} = {width * height} pixels, more than the limit of {max_pixels} "
                f"(--max-pixels)",
                status=413,
            )
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"cannot decode the body as {fmt}: {exc}") from None
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise ImageError(f"models with {channels} input channels take no images over /v1; use /v2 infer")
    # np.array copies: PIL's buffer is read-only, and torch warns on tensors from non-writable arrays
    return np.array(image.convert(mode), dtype=np.uint8).reshape(height, width, channels)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a ``(H, W, C)`` uint8 image with C in {1, 3}."""
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"image must be (H, W, 1|3) uint8, got {image.shape} {image.dtype}")
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
