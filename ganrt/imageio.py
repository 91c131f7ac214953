"""The one image decoder: image files and bytes -> uint8 pixels, with the same rules for training data
(:mod:`ganrt.data`), the runtime (``Translator.translate_file``, ``ganrt translate``) and the server
(``/v1``).

Rules, applied in this order:

- the header is read first and images above ``max_pixels`` are refused before any pixel is decompressed (a
  small PNG can declare 50 000 x 50 000 pixels: a decompression bomb);
- EXIF orientation is applied (a phone photo comes out the way it is shown);
- 16-bit images (``I;16`` grayscale PNG/TIFF, 16-bit ``I``) are rescaled to 8 bits (``round(v * 255 /
  65535)``), not clipped; 32-bit float images (``F``, float TIFF) are read as [0, 1] and scaled to 0..255;
  float values outside [0, 1] or not finite are refused (their range has no convention to guess from);
- transparency (RGBA, LA, PA, and palette or RGB images with a transparent colour) is composited over a
  **white** background, never dropped to black;
- palette, CMYK, YCbCr, 1-bit and the rest are converted by Pillow; the result is ``L`` (1 channel) or
  ``RGB``.

Nothing here imports torch, so every stage can use it.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# 16-bit modes Pillow uses for grayscale PNG/TIFF (the plain "I" mode of a PNG is 16-bit data too).
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# The EXIF tag saying how the picture is to be shown (1 = as stored).
_ORIENTATION = 0x0112
# Float pixels within this of [0, 1] are rounding noise, not another range.
_FLOAT_SLACK = 1e-3


class ImageDecodeError(ValueError):
    """An image that cannot be decoded under the rules above; ``status`` is the HTTP status a server answers
    with (400 undecodable, 413 above the pixel limit)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def open_image(
    source: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int | None = None,
    formats: Sequence[str] | None = None,
    what: str | None = None,
    limit_name: str = "--max-pixels",
):  # -> PIL.Image.Image
    """Open ``source`` (a path or the encoded bytes) lazily: only the header is read. Raises
    :class:`ImageDecodeError` naming ``what`` (default: the path) for unreadable data and, with status 413,
    for images above ``max_pixels`` (``limit_name`` is the option that sets it)."""
    from PIL import Image

    label = what or (str(source) if not isinstance(source, bytes) else "image")
    handle = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    with warnings.catch_warnings():
        # Pillow's own bomb check only warns at its limit; ours refuses at max_pixels below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(handle, formats=list(formats) if formats else None)
        except FileNotFoundError:
            raise
        except Image.DecompressionBombError as exc:  # above twice Pillow's own limit: refused while opening
            limit = (
                f"more than the limit of {max_pixels} ({limit_name})"
                if max_pixels is not None
                else "too large"
            )
            raise ImageDecodeError(f"{label}: image has {limit}: {exc}", status=413) from None
        except (OSError, ValueError, SyntaxError) as exc:
            kind = "/".join(formats) if formats else "an image"
            if isinstance(exc, Image.UnidentifiedImageError):
                why = "not a recognized image format" if formats is None else f"not {kind} data"
            else:
                why = str(exc)
            raise ImageDecodeError(f"{label}: cannot decode as {kind}: {why}") from None
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        image.close()
        raise ImageDecodeError(
            f"{label}: image has {width}x{height} = {width * height} pixels, more than the limit of "
            f"{max_pixels} ({limit_name})",
            status=413,
        )
    return image


def to_mode(image, channels: int, *, what: str = "image"):  # (PIL.Image.Image, int) -> PIL.Image.Image
    """Convert a decoded Pillow image to ``L`` (``channels=1``) or ``RGB`` (``channels=3``) by the module's
    rules. Raises :class:`ImageDecodeError` for float pixels outside [0, 1] and modes Pillow cannot
    convert."""
    from PIL import Image, ImageOps

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image.getexif().get(_ORIENTATION, 1) != 1:  # exif_transpose copies even upright images: skip those
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT or image.mode == "I;16S":
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8))
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if values.size and not np.all(np.isfinite(values)):
            raise ImageDecodeError(f"{what}: float image holds NaN or infinite pixels")
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
            raise ImageDecodeError(
                f"{what}: float image with values in [{lo:g}, {hi:g}]; ganrt reads float images as [0, 1] "
                f"(save it as 8- or 16-bit, or scale it to [0, 1])"
            )
        image = Image.fromarray(np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8))
    if image.mode in ("P", "PA", "LA", "La", "RGBa") or (
        image.mode in ("L", "RGB") and "transparency" in image.info
    ):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    target = "RGB" if channels == 3 else "L"
    if image.mode == target:
        return image
    try:
        return image.convert(target)
    except (ValueError, OSError) as exc:
        raise ImageDecodeError(f"{what}: cannot convert a {image.mode} image to {target}: {exc}") from None


def decode(
    source: str | os.PathLike[str] | bytes,
    channels: int,
    *,
    max_pixels: int | None = None,
    formats: Sequence[str] | None = None,
    what: str | None = None,
    limit_name: str = "--max-pixels",
) -> np.ndarray:
    """Decode ``source`` (a path or encoded bytes) to uint8 ``(H, W, channels)`` by the module's rules.

    Raises ``FileNotFoundError`` for a missing path and :class:`ImageDecodeError` (naming ``what``, default
    the path) for anything that cannot be decoded, or above ``max_pixels`` (status 413).
    """
    label = what or (str(source) if not isinstance(source, bytes) else "image")
    image = open_image(source, max_pixels=max_pixels, formats=formats, what=label, limit_name=limit_name)
    with image:
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageDecodeError(
                f"{label}: cannot decode the pixels (truncated or corrupt?): {exc}"
            ) from None
        converted = to_mode(image, channels, what=label)
        # np.array copies: Pillow's buffer is read-only, and torch warns on tensors from non-writable arrays
        array = np.array(converted, dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], channels)
