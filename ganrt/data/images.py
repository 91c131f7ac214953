"""Reading image files: discovery, validation with errors that name the file, and mode conversion."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganrt import imageio

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")


class DataError(ValueError):
    """A dataset problem the user can fix: missing folders, unreadable or undersized files, empty splits."""


def list_images(folder: Path) -> list[Path]:
    """All image files directly inside ``folder``, sorted by name.

    Hidden files (``.DS_Store``, ...) are skipped; any other non-image file is an error, because silently
    training on a subset of what the user pointed at hides mistakes such as a wrong folder.
    """
    if not folder.is_dir():
        raise DataError(f"dataset folder {str(folder)!r} does not exist")
    files: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        if entry.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"{str(entry)!r} is not an image file (supported extensions: {', '.join(IMAGE_EXTENSIONS)}); "
                "remove it or move it out of the dataset folder"
            )
        files.append(entry)
    return files


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, reading only its header; DataError names undecodable files."""
    try:
        with warnings.catch_warnings():
            # PIL warns about huge images (decompression bombs); the size check is what we want here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc}") from exc


def to_mode(im: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL image to ``RGB`` (channels=3) or ``L`` (channels=1) by the rules of
    :mod:`ganrt.imageio`, the decoder the runtime and the server use too (EXIF orientation, 16-bit rescaled,
    float read as [0, 1], transparency composited over white)."""
    try:
        return imageio.to_mode(im, channels)
    except imageio.ImageDecodeError as exc:
        raise DataError(str(exc)) from None


def read_image(path: Path, channels: int = 3) -> Image.Image:
    """Decode ``path`` fully and convert it to ``channels`` (1 or 3); DataError names undecodable files."""
    try:
        array = imageio.decode(path, channels, what=f"cannot read image {str(path)!r}")
    except imageio.ImageDecodeError as exc:
        raise DataError(str(exc)) from exc
    except OSError as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc}") from exc
    return as_pil(array)


def as_pil(array: np.ndarray) -> Image.Image:
    """``array``: uint8 (H, W) or (H, W, 1|3) → PIL image (``L`` or ``RGB``)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    # fromarray infers L / RGB from a uint8 array's shape (its ``mode`` argument is deprecated).
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
