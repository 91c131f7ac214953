"""Reading image files: discovery, validation with errors that name the file, and mode conversion."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

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
    """Convert any PIL image to ``RGB`` (channels=3) or ``L`` (channels=1).

    Transparent images are composited over white (transparent PNG line art would otherwise turn black), and
    16/32-bit grayscale is rescaled to 8 bits instead of clipped as PIL's ``convert`` would do.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / hi) + 0.5, 0, 255).astype(np.uint8))
    if im.mode == "P" or im.mode == "LA" or im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    target = "RGB" if channels == 3 else "L"
    return im if im.mode == target else im.convert(target)


def read_image(path: Path, channels: int = 3) -> Image.Image:
    """Decode ``path`` fully and convert it to ``channels`` (1 or 3); DataError names undecodable files."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_mode(im, channels)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc}") from exc


def as_pil(array: np.ndarray) -> Image.Image:
    """``array``: uint8 (H, W) or (H, W, 1|3) → PIL image (``L`` or ``RGB``)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    # fromarray infers L / RGB from a uint8 array's shape (its ``mode`` argument is deprecated).
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
