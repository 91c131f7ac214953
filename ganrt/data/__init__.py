"""ganrt.data: image datasets for training and evaluation, and the built-in datasets made from bundled images.

``open_dataset`` reads the reference layouts (aligned ``A|B`` pairs, unaligned ``trainA/`` + ``trainB/``, plain
folders, one subfolder per class) or ``builtin:edges2photos`` / ``builtin:faces`` / ``builtin:digits``; samples
are dicts of float32 (C, H, W) tensors in [-1, 1]. Problems with the data raise :class:`DataError` naming the
folder or file.
"""

from __future__ import annotations

from pathlib import Path

from ganrt.data.builtin import BUILTINS, heldout_photos, open_builtin, sample_images
from ganrt.data.datasets import (
    AlignedDataset,
    ArrayDataset,
    FolderDataset,
    ImageDataset,
    LabelledDataset,
    Sample,
    UnalignedDataset,
)
from ganrt.data.images import IMAGE_EXTENSIONS, DataError
from ganrt.data.order import collate, fixed_batch, sample_positions, training_batch
from ganrt.data.transforms import Geometry, default_load_size, to_tensor, to_uint8

KINDS = ("aligned", "unaligned", "folder", "labelled")
SPLITS = ("train", "test")


def _split_folder(root: Path, split: str) -> Path:
    """``root/<split>`` when present; the root itself serves as the train split of a flat layout."""
    sub = root / split
    if sub.is_dir():
        return sub
    if split == "train":
        return root
    raise DataError(f"dataset {str(root)!r} has no {split} split: folder {str(sub)!r} does not exist")


def open_dataset(spec: str | Path, *, kind: str, split: str = "train", image_size: int,
                 load_size: int | None = None, augment: bool = True, channels: int = 3, seed: int = 0,
                 direction: str = "AtoB") -> ImageDataset:
    """Open a dataset for training or evaluation.

    spec: a folder or ``builtin:<name>``. kind: ``aligned`` (→ {"A", "B"} from ``A|B`` files in
    ``spec/<split>/``), ``unaligned`` (→ {"A", "B"} from ``spec/<split>A/`` and ``spec/<split>B/``), ``folder``
    (→ {"image"} from ``spec/<split>/``) or ``labelled`` (→ {"image", "label"} from ``spec/<split>/<class>/``);
    for a train split the folder itself may hold the data. image_size: side of the returned square images;
    load_size: side images are resized to before cropping (default 286/256 × image_size when augmenting);
    augment: random crop + horizontal flip (else centre crop); channels: 1 or 3 (gray / RGBA converted);
    seed: the built-in datasets' crops and ``__getitem__``'s augmentation; direction: ``BtoA`` swaps aligned
    halves.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    geometry = Geometry(image_size, load_size or default_load_size(image_size, augment), augment)
    spec = str(spec)
    if spec.startswith("builtin:"):
        return open_builtin(spec.removeprefix("builtin:"), kind=kind, split=split, geometry=geometry,
                            channels=channels, seed=seed)
    root = Path(spec).expanduser()
    if not root.exists():
        raise DataError(f"dataset path {spec!r} does not exist (give a folder or builtin:NAME, NAME in "
                        f"{', '.join(BUILTINS)})")
    if not root.is_dir():
        raise DataError(f"dataset path {spec!r} is not a folder")
    if kind == "unaligned":
        folder_a, folder_b = root / f"{split}A", root / f"{split}B"
        missing = [str(f) for f in (folder_a, folder_b) if not f.is_dir()]
        if missing:
            raise DataError(f"unaligned dataset {spec!r} needs folders {split}A/ and {split}B/; missing: "
                            + ", ".join(repr(m) for m in missing))
        return UnalignedDataset(folder_a, folder_b, geometry, channels, seed=seed)
    folder = _split_folder(root, split)
    if kind == "aligned":
        return AlignedDataset(folder, geometry, channels, direction=direction, seed=seed)
    if kind == "folder":
        return FolderDataset(folder, geometry, channels, seed=seed)
    return LabelledDataset(folder, geometry, channels, seed=seed)


__all__ = [
    "BUILTINS", "IMAGE_EXTENSIONS", "KINDS", "AlignedDataset", "ArrayDataset", "DataError", "FolderDataset",
    "Geometry", "ImageDataset", "LabelledDataset", "Sample", "UnalignedDataset", "collate",
    "default_load_size", "fixed_batch", "heldout_photos", "open_dataset", "sample_images", "sample_positions",
    "to_tensor", "to_uint8", "training_batch",
]
