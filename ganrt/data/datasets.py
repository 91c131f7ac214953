"""Datasets: aligned A|B pairs, unaligned A/B folders, plain folders, class-labelled folders, in-memory arrays.

Every dataset returns dicts of float32 (C, H, W) tensors in [-1, 1] (labels: int64 scalars). ``sample(index,
rng)`` takes the augmentation randomness explicitly (training derives it from the seed and the sample's
position); ``__getitem__`` draws it from the dataset's own generator for ordinary ``DataLoader`` use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganrt.data.images import DataError, as_pil, image_size, list_images, read_image
from ganrt.data.transforms import Geometry, to_tensor

Sample = dict[str, torch.Tensor]


class ImageDataset(torch.utils.data.Dataset, ABC):
    """Base class: ``keys`` names the tensors each sample holds; ``geometry`` the preprocessing."""

    keys: tuple[str, ...] = ()

    def __init__(self, geometry: Geometry, channels: int, seed: int = 0) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.geometry = geometry
        self.channels = channels
        self._rng = np.random.default_rng(seed)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def sample(self, index: int, rng: np.random.Generator | None) -> Sample:
        """Sample ``index`` (0 <= index < len) with augmentation drawn from ``rng`` (None: no randomness)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able description recorded in a run's config (``config["data"]``)."""

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        return self.sample(index, self._rng if self.geometry.augment else None)

    def _common(self) -> dict[str, Any]:
        g = self.geometry
        return {"image_size": g.image_size, "load_size": g.load_size, "augment": g.augment,
                "channels": self.channels, "size": len(self)}


def _check_min_size(path: Path, width: int, height: int, minimum: int, what: str = "image") -> None:
    if width < minimum or height < minimum:
        raise DataError(
            f"{what} {str(path)!r} is {width}x{height}, smaller than the {minimum}x{minimum} crop; "
            f"use a smaller --image-size or remove the file"
        )


def _require_nonempty(files: Sequence[Any], folder: Path) -> None:
    if not files:
        raise DataError(f"dataset folder {str(folder)!r} contains no images")


class AlignedDataset(ImageDataset):
    """Pairs stored side by side in one file (``A|B``, as the reference's pix2pix datasets); same crop and flip
    for both halves. ``direction="BtoA"`` swaps the halves."""

    keys = ("A", "B")

    def __init__(self, folder: Path, geometry: Geometry, channels: int = 3, *, direction: str = "AtoB",
                 seed: int = 0) -> None:
        super().__init__(geometry, channels, seed)
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        self.folder, self.direction = folder, direction
        self.files = list_images(folder)
        _require_nonempty(self.files, folder)
        for path in self.files:
            w, h = image_size(path)
            if w % 2:
                raise DataError(
                    f"aligned pair {str(path)!r} has odd width {w}; an A|B pair must be two equal halves side by side"
                )
            _check_min_size(path, w // 2, h, geometry.image_size, "each half of aligned pair")

    def __len__(self) -> int:
        return len(self.files)

    def sample(self, index: int, rng: np.random.Generator | None) -> Sample:
        ab = read_image(self.files[index], self.channels)
        w, h = ab.size
        a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
        if self.direction == "BtoA":
            a, b = b, a
        params = self.geometry.draw(rng)
        return {"A": to_tensor(self.geometry.apply(a, params)), "B": to_tensor(self.geometry.apply(b, params))}

    def describe(self) -> dict[str, Any]:
        return {"kind": "aligned", "path": str(self.folder), "direction": self.direction, **self._common()}


class UnalignedDataset(ImageDataset):
    """Unpaired domains ``<split>A/`` and ``<split>B/``; B is drawn at random (as the reference does) so the
    pairing changes every epoch. Length is the larger domain."""

    keys = ("A", "B")

    def __init__(self, folder_a: Path, folder_b: Path, geometry: Geometry, channels: int = 3, *,
                 seed: int = 0) -> None:
        super().__init__(geometry, channels, seed)
        self.folders = (folder_a, folder_b)
        self.files_a, self.files_b = list_images(folder_a), list_images(folder_b)
        for files, folder in ((self.files_a, folder_a), (self.files_b, folder_b)):
            _require_nonempty(files, folder)
            for path in files:
                _check_min_size(path, *image_size(path), geometry.image_size)

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def sample(self, index: int, rng: np.random.Generator | None) -> Sample:
        ib = int(rng.integers(len(self.files_b))) if rng is not None else index % len(self.files_b)
        a = read_image(self.files_a[index % len(self.files_a)], self.channels)
        b = read_image(self.files_b[ib], self.channels)
        return {"A": to_tensor(self.geometry.apply(a, self.geometry.draw(rng))),
                "B": to_tensor(self.geometry.apply(b, self.geometry.draw(rng)))}

    def describe(self) -> dict[str, Any]:
        return {"kind": "unaligned", "path_A": str(self.folders[0]), "path_B": str(self.folders[1]),
                "size_A": len(self.files_a), "size_B": len(self.files_b), **self._common()}


class FolderDataset(ImageDataset):
    """A plain folder of images (samplers: VAE, DCGAN)."""

    keys = ("image",)

    def __init__(self, folder: Path, geometry: Geometry, channels: int = 3, *, seed: int = 0) -> None:
        super().__init__(geometry, channels, seed)
        self.folder = folder
        self.files = list_images(folder)
        _require_nonempty(self.files, folder)
        for path in self.files:
            _check_min_size(path, *image_size(path), geometry.image_size)

    def __len__(self) -> int:
        return len(self.files)

    def sample(self, index: int, rng: np.random.Generator | None) -> Sample:
        im = read_image(self.files[index], self.channels)
        return {"image": to_tensor(self.geometry.apply(im, self.geometry.draw(rng)))}

    def describe(self) -> dict[str, Any]:
        return {"kind": "folder", "path": str(self.folder), **self._common()}


class LabelledDataset(ImageDataset):
    """One subfolder per class (sorted names → labels 0..K-1), for class-conditional GANs."""

    keys = ("image", "label")

    def __init__(self, folder: Path, geometry: Geometry, channels: int = 3, *, seed: int = 0) -> None:
        super().__init__(geometry, channels, seed)
        self.folder = folder
        if not folder.is_dir():
            raise DataError(f"dataset folder {str(folder)!r} does not exist")
        class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise DataError(
                f"labelled dataset {str(folder)!r} has no class subfolders; expected one subfolder per class"
            )
        stray = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if stray:
            raise DataError(
                f"labelled dataset {str(folder)!r} has files outside class subfolders ({', '.join(stray[:3])}); "
                "put every image in the subfolder named after its class"
            )
        self.classes = [p.name for p in class_dirs]
        self.items: list[tuple[Path, int]] = []
        for label, class_dir in enumerate(class_dirs):
            files = list_images(class_dir)
            _require_nonempty(files, class_dir)
            for path in files:
                _check_min_size(path, *image_size(path), geometry.image_size)
                self.items.append((path, label))

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def sample(self, index: int, rng: np.random.Generator | None) -> Sample:
        path, label = self.items[index]
        im = read_image(path, self.channels)
        return {"image": to_tensor(self.geometry.apply(im, self.geometry.draw(rng))),
                "label": torch.tensor(label, dtype=torch.int64)}

    def describe(self) -> dict[str, Any]:
        return {"kind": "labelled", "path": str(self.folder), "classes": self.classes, **self._common()}


class ArrayDataset(ImageDataset):
    """In-memory uint8 images (the built-in datasets).

    ``fields`` maps each output key to a callable ``index -> uint8 (H, W, C) array`` (called lazily, so a
    generator can build items on demand); ``labels`` (optional) holds one int label per item. Image fields of
    one sample share crop and flip, like the halves of an aligned pair, unless ``independent``: then each field
    gets its own crop/flip and every field after the first is read at a random index (unpaired domains).
    """

    def __init__(self, name: str, kind: str, length: int, fields: dict[str, Callable[[int], np.ndarray]],
                 geometry: Geometry, channels: int, *, labels: np.ndarray | None = None,
                 classes: list[str] | None = None, independent: bool = False,
                 extra: dict[str, Any] | None = None, seed: int = 0) -> None:
        super().__init__(geometry, channels, seed)
        self.name, self.kind, self._length = name, kind, length
        self._fields, self._labels, self._independent = fields, labels, independent
        self.classes = classes
        self.keys = (*fields, *(("label",) if labels is not None else ()))
        self._extra = extra or {}

    def __len__(self) -> int:
        return self._length

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def _image(self, array: np.ndarray) -> Image.Image:
        if array.shape[2] != self.channels:
            # Built-in sources are gray or RGB; replicate or average to what the model expects.
            array = np.repeat(array, 3, axis=2) if self.channels == 3 else (
                np.round(array @ np.array([0.299, 0.587, 0.114]))[:, :, None].astype(np.uint8))
        return as_pil(array)

    def sample(self, index: int, rng: np.random.Generator | None) -> Sample:
        out: Sample = {}
        shared = None if self._independent else self.geometry.draw(rng)
        for i, (key, fetch) in enumerate(self._fields.items()):
            j = index
            if self._independent and i > 0:
                j = int(rng.integers(self._length)) if rng is not None else index
            params = self.geometry.draw(rng) if self._independent else shared
            out[key] = to_tensor(self.geometry.apply(self._image(fetch(j)), params))
        if self._labels is not None:
            out["label"] = torch.tensor(int(self._labels[index]), dtype=torch.int64)
        return out

    def describe(self) -> dict[str, Any]:
        extra = {"classes": self.classes} if self.classes else {}
        return {"kind": self.kind, "path": f"builtin:{self.name}", **self._extra, **extra, **self._common()}
