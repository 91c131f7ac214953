"""Built-in datasets made at run time from images that ship inside scikit-image and scikit-learn (no downloads).

- ``builtin:edges2photos``: random square crops of bundled photos → (edge map, photo) pairs. The train split
  crops 12 of 16 tiles of each of ``TRAIN_PHOTOS``; the test split crops the other 4 (unseen pairs from the
  same distribution); :func:`heldout_photos` crops natural scenes (``HELDOUT_PHOTOS``) never used at all.
- ``builtin:faces``: the 100 real faces of scikit-image's LFW subset (25×25 gray); the last 10 are held out.
- ``builtin:digits``: scikit-learn's 8×8 digits with labels (for class-conditional GANs); every 10th is held out.

Everything is a deterministic function of ``seed`` (crop boxes) and cached in memory while small.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ganrt.data.datasets import ArrayDataset
from ganrt.data.images import DataError
from ganrt.data.transforms import Geometry

BUILTINS = ("edges2photos", "faces", "digits")

# Photos of the train split of edges2photos: photos whose content is alike across the frame (deep sky,
# fundus, printed page, brick wall, stained tissue, coins, lunar surface), so that crops of tiles never used
# for training are unseen pairs from the training distribution: the test split. Gray ones become gray RGB.
# Each has an edge texture of its own that tells its colours and tones, so edges -> photo is learnable. (Not
# "grass" or "gravel": mid-gray noise-like texture whose pixel values no edge map determines; even the
# per-photo median predicts them no better than flat gray.)
TRAIN_PHOTOS = ("hubble_deep_field", "retina", "page", "brick", "immunohistochemistry", "coins", "moon")
# Natural scenes never used for training (``heldout_photos``): content the model never saw. Edge maps do not
# determine the colours of a new scene, so these show generalisation qualitatively (demos, export parity).
# ("cat" is the same picture as "chelsea" and is never used.)
HELDOUT_PHOTOS = ("coffee", "rocket", "astronaut", "chelsea", "camera", "stereo_motorcycle", "clock")
# Each train photo is cut into GRID x GRID tiles; training crops lie inside the other tiles, never in
# HELDOUT_TILES (one per row and column, so the held-out area samples the whole photo). Crops of those tiles
# are unseen pairs from the training distribution.
GRID = 4
HELDOUT_TILES = ((0, 1), (1, 3), (2, 0), (3, 2))
TRAIN_TILES = tuple((r, c) for r in range(GRID) for c in range(GRID) if (r, c) not in HELDOUT_TILES)
CROPS_PER_PHOTO = 256
HELDOUT_CROPS_PER_SOURCE = 8
# Crop side as a fraction of the photo's shorter side (at most one tile).
CROP_FRACTION = (0.15, 0.25)
# Canny's hysteresis thresholds on the gradient of the [0, 1] gray photo.
CANNY_THRESHOLDS = (0.05, 0.1)
HELDOUT_SEED = 20240611
FACES_HELDOUT = 10
# Cache generated items while they fit in this many bytes (edges + photo per item).
CACHE_BYTES = 128 * 2**20


@functools.cache
def _photo(name: str) -> np.ndarray:
    """A bundled photo as uint8 (H, W, 3) (gray photos replicated to RGB)."""
    from skimage import data

    img = data.stereo_motorcycle()[0] if name == "stereo_motorcycle" else getattr(data, name)()
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8) if img.dtype.kind == "f" else img.astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def edge_map(photo: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) photo → uint8 (H, W, 3) edge drawing: black Canny edges on white, like edges2shoes."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    gray = rgb2gray(photo)
    # Scale the smoothing with resolution so edge density looks alike at 64 and at 286 pixels. Thresholds
    # below Canny's defaults (0.1, 0.2) keep the fainter edges of smooth photos (fundus vessels, faint stars),
    # which is what tells those photos apart at 32-64 pixels.
    edges = canny(gray, sigma=max(1.0, photo.shape[0] / 128), low_threshold=CANNY_THRESHOLDS[0],
                  high_threshold=CANNY_THRESHOLDS[1])
    out = np.where(edges, 0, 255).astype(np.uint8)
    return np.repeat(out[:, :, None], 3, axis=2)


# A photo name and the tiles crops may come from (None: anywhere in the photo).
Source = tuple[str, "tuple[tuple[int, int], ...] | None"]


def _crop(photo: np.ndarray, tiles: tuple[tuple[int, int], ...] | None, rng: np.random.Generator,
          size: int) -> np.ndarray:
    """A random square crop (inside one random tile of ``tiles``), resized to ``size``: uint8 (size, size, 3)."""
    h, w = photo.shape[:2]
    y0, x0, y1, x1 = 0, 0, h, w
    if tiles is not None:
        r, c = tiles[int(rng.integers(len(tiles)))]
        y0, y1, x0, x1 = r * h // GRID, (r + 1) * h // GRID, c * w // GRID, (c + 1) * w // GRID
    side = min(int(min(h, w) * rng.uniform(*CROP_FRACTION)), y1 - y0, x1 - x0)
    y, x = y0 + int(rng.integers(0, y1 - y0 - side + 1)), x0 + int(rng.integers(0, x1 - x0 - side + 1))
    im = Image.fromarray(photo[y : y + side, x : x + side])
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS))


class _EdgePairs:
    """Lazily generated (edges, photo) crops at ``size``: item i comes from source ``i % len(sources)``
    (interleaved, so any prefix covers every source) with a crop drawn from ``(seed, i)``; cached while the
    whole set fits in ``CACHE_BYTES``."""

    def __init__(self, sources: tuple[Source, ...], per_source: int, size: int, seed: int) -> None:
        self.sources, self.per_source, self.size, self.seed = sources, per_source, size, seed
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = (
            {} if len(self) * 6 * size * size <= CACHE_BYTES else None)

    def __len__(self) -> int:
        return len(self.sources) * self.per_source

    def __call__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        name, tiles = self.sources[i % len(self.sources)]
        photo = _crop(_photo(name), tiles, np.random.default_rng((self.seed, i)), self.size)
        item = (edge_map(photo), photo)
        if self.cache is not None:
            self.cache[i] = item
        return item


@functools.lru_cache(maxsize=8)
def _edge_pairs(split: str, size: int, seed: int) -> _EdgePairs:
    """train: crops of the train tiles of TRAIN_PHOTOS; test: crops of their held-out tiles; photos: crops of
    HELDOUT_PHOTOS. Held-out sets use a fixed seed, independent of the training seed."""
    if split == "train":
        return _EdgePairs(tuple((n, TRAIN_TILES) for n in TRAIN_PHOTOS), CROPS_PER_PHOTO, size, seed)
    if split == "test":
        return _EdgePairs(tuple((n, HELDOUT_TILES) for n in TRAIN_PHOTOS), HELDOUT_CROPS_PER_SOURCE, size,
                          HELDOUT_SEED)
    return _EdgePairs(tuple((n, None) for n in HELDOUT_PHOTOS), HELDOUT_CROPS_PER_SOURCE, size, HELDOUT_SEED)


def heldout_photos(size: int, n: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out ``(edges, photo)`` pairs, each uint8 (size, size, 3), cut from bundled photos (HELDOUT_PHOTOS)
    (HELDOUT_PHOTOS, natural scenes) that ``builtin:edges2photos`` never uses. Deterministic; ``n`` (default:
    all 56) takes the first n, cycling through the photos."""
    pairs = _edge_pairs("photos", size, HELDOUT_SEED)
    count = len(pairs) if n is None else n
    if not 1 <= count <= len(pairs):
        raise ValueError(f"n must be between 1 and {len(pairs)} held-out pairs, got {n}")
    return [pairs(i) for i in range(count)]


def sample_images(size: int, n: int, channels: int = 3) -> np.ndarray:
    """``n`` real bundled images as uint8 (n, size, size, channels): centre squares of every bundled photo,
    then deterministic random crops once those run out (for export / runtime parity checks)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if n < 1 or size < 1:
        raise ValueError(f"size and n must be >= 1, got size={size}, n={n}")
    names = TRAIN_PHOTOS + HELDOUT_PHOTOS
    out = np.empty((n, size, size, channels), dtype=np.uint8)
    rng = np.random.default_rng(HELDOUT_SEED + 1)
    for i in range(n):
        photo = _photo(names[i % len(names)])
        if i < len(names):
            h, w = photo.shape[:2]
            s = min(h, w)
            square = photo[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
            img = np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS))
        else:
            img = _crop(photo, None, rng, size)
        out[i] = img if channels == 3 else np.round(img @ np.array([0.299, 0.587, 0.114]))[:, :, None]
    return out


@functools.cache
def _faces() -> np.ndarray:
    """The 100 face images of the LFW subset as uint8 (100, 25, 25, 1)."""
    from skimage import data

    faces = np.asarray(data.lfw_subset()[:100])
    if faces.dtype != np.uint8:
        faces = (np.clip(faces, 0, 1) * 255 + 0.5).astype(np.uint8)
    return faces[:, :, :, None]


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 (1797, 8, 8, 1) (0..16 scaled to 0..255) and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, :, :, None]
    return images, bunch.target.astype(np.int64)


def _check_kind(name: str, kind: str, allowed: tuple[str, ...]) -> None:
    if kind not in allowed:
        raise DataError(f"builtin:{name} provides kinds {', '.join(allowed)}; got kind {kind!r}")


def open_builtin(name: str, *, kind: str, split: str, geometry: Geometry, channels: int,
                 seed: int = 0) -> ArrayDataset:
    """Open ``builtin:<name>`` as ``kind`` (see module docstring for what each provides)."""
    common: dict[str, Any] = {"geometry": geometry, "channels": channels, "seed": seed}
    if name == "edges2photos":
        _check_kind(name, kind, ("aligned", "unaligned", "folder"))
        pairs = _edge_pairs(split, geometry.load_size, seed)
        edges: Callable[[int], np.ndarray] = lambda i: pairs(i)[0]
        photo: Callable[[int], np.ndarray] = lambda i: pairs(i)[1]
        extra = {"split": split, "photos": [name for name, _ in pairs.sources], "seed": pairs.seed}
        if kind == "folder":
            return ArrayDataset(name, kind, len(pairs), {"image": photo}, extra=extra, **common)
        return ArrayDataset(name, kind, len(pairs), {"A": edges, "B": photo}, independent=kind == "unaligned",
                            extra=extra, **common)
    if name == "faces":
        _check_kind(name, kind, ("folder",))
        faces = _faces()
        faces = faces[: len(faces) - FACES_HELDOUT] if split == "train" else faces[len(faces) - FACES_HELDOUT :]
        return ArrayDataset(name, kind, len(faces), {"image": lambda i: faces[i]}, extra={"split": split}, **common)
    if name == "digits":
        _check_kind(name, kind, ("folder", "labelled"))
        images, labels = _digits()
        keep = (np.arange(len(images)) % 10 == 9) if split == "test" else (np.arange(len(images)) % 10 != 9)
        images, labels = images[keep], labels[keep]
        # Mirrored digits are different (or no) digits: crop, but never flip.
        geo = Geometry(geometry.image_size, geometry.load_size, geometry.augment, flip=False)
        common["geometry"] = geo
        return ArrayDataset(name, kind, len(images), {"image": lambda i: images[i]},
                            labels=labels if kind == "labelled" else None,
                            classes=[str(c) for c in range(10)] if kind == "labelled" else None,
                            extra={"split": split}, **common)
    raise DataError(f"unknown built-in dataset 'builtin:{name}'; available: "
                    + ", ".join(f"builtin:{b}" for b in BUILTINS))
