"""Built-in datasets made from images bundled with scikit-image / scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrt.data import DataError, fixed_batch, heldout_photos, open_dataset, sample_images, to_uint8
from ganrt.data.builtin import (
    GRID,
    HELDOUT_PHOTOS,
    HELDOUT_TILES,
    TRAIN_PHOTOS,
    TRAIN_TILES,
    _crop,
    _edge_pairs,
)


def test_edges2photos_pairs_are_edge_maps_of_photos() -> None:
    ds = open_dataset("builtin:edges2photos", kind="aligned", image_size=32, augment=False)
    assert ds.keys == ("A", "B") and len(ds) > 100
    s = ds.sample(5, None)
    edges = to_uint8(s["A"])
    assert edges.shape == (32, 32, 3)
    assert set(np.unique(edges)) <= {0, 255}, "edge maps are black edges on white"
    assert 0 < (edges == 0).mean() < 0.5
    assert s["B"].std() > 0.02, "the photo half holds a real image"


def test_edges2photos_holds_tiles_and_photos_out_of_training() -> None:
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    # chelsea and cat are the same picture: never one on each side.
    assert "cat" not in TRAIN_PHOTOS + HELDOUT_PHOTOS
    assert not set(HELDOUT_TILES) & set(TRAIN_TILES) and len(TRAIN_TILES) + len(HELDOUT_TILES) == GRID * GRID
    train = open_dataset("builtin:edges2photos", kind="aligned", image_size=32)
    test = open_dataset("builtin:edges2photos", kind="aligned", split="test", image_size=32, augment=False)
    assert train.describe()["photos"] == test.describe()["photos"] == list(TRAIN_PHOTOS)
    assert len(test) == 8 * len(TRAIN_PHOTOS)
    pairs = heldout_photos(32)
    assert len(pairs) == 8 * len(HELDOUT_PHOTOS)
    edges, photo = pairs[0]
    assert edges.shape == photo.shape == (32, 32, 3) and edges.dtype == photo.dtype == np.uint8
    assert len(heldout_photos(32, 3)) == 3
    with pytest.raises(ValueError, match=r"n must be between 1 and 56"):
        heldout_photos(32, 57)


def test_train_crops_never_touch_held_out_tiles() -> None:
    # Mark every pixel of a fake photo with its tile index and check crops only ever see train tiles.
    h, w = 64, 96
    rows, cols = np.indices((h, w))
    tile_id = (rows * GRID // h) * GRID + cols * GRID // w
    photo = np.repeat(tile_id[:, :, None], 3, axis=2).astype(np.uint8)
    allowed = {r * GRID + c for r, c in TRAIN_TILES}
    for k in range(200):
        crop = _crop(photo, TRAIN_TILES, np.random.default_rng(k), 8)
        assert set(np.unique(crop)) <= allowed
    held = {r * GRID + c for r, c in HELDOUT_TILES}
    assert all(set(np.unique(_crop(photo, HELDOUT_TILES, np.random.default_rng(k), 8))) <= held for k in range(50))


def test_builtin_is_deterministic_per_seed() -> None:
    # Crops are cached per (split, size, seed): clear the cache so the second draw is recomputed, not reread.
    a = open_dataset("builtin:edges2photos", kind="aligned", image_size=32, seed=1).sample(0, None)
    held = heldout_photos(32, 2)[1][1].copy()
    _edge_pairs.cache_clear()
    b = open_dataset("builtin:edges2photos", kind="aligned", image_size=32, seed=1).sample(0, None)
    c = open_dataset("builtin:edges2photos", kind="aligned", image_size=32, seed=2).sample(0, None)
    assert torch.equal(a["B"], b["B"]) and not torch.equal(a["B"], c["B"])
    np.testing.assert_array_equal(heldout_photos(32, 2)[1][1], held)


def test_edges2photos_other_kinds() -> None:
    un = open_dataset("builtin:edges2photos", kind="unaligned", image_size=32)
    draws = [un.sample(0, np.random.default_rng(k)) for k in range(4)]
    assert all(d["A"].shape == d["B"].shape == (3, 32, 32) for d in draws)
    assert len({d["B"].sum().item() for d in draws}) > 1, "unaligned B is drawn independently of A"
    photos = open_dataset("builtin:edges2photos", kind="folder", image_size=32, channels=1)
    assert photos.sample(0, None)["image"].shape == (1, 32, 32)
    with pytest.raises(DataError, match=r"builtin:edges2photos provides kinds aligned, unaligned, folder"):
        open_dataset("builtin:edges2photos", kind="labelled", image_size=32)


def test_faces_split() -> None:
    train = open_dataset("builtin:faces", kind="folder", image_size=32, channels=1)
    test = open_dataset("builtin:faces", kind="folder", split="test", image_size=32, channels=1, augment=False)
    assert (len(train), len(test)) == (90, 10)
    x = fixed_batch(test, 10)["image"]
    assert x.shape == (10, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert open_dataset("builtin:faces", kind="folder", image_size=16).sample(0, None)["image"].shape == (3, 16, 16)
    with pytest.raises(DataError, match=r"builtin:faces provides kinds folder; got kind 'aligned'"):
        open_dataset("builtin:faces", kind="aligned", image_size=32)


def test_digits_labels_and_no_mirroring() -> None:
    ds = open_dataset("builtin:digits", kind="labelled", image_size=16, channels=1)
    test = open_dataset("builtin:digits", kind="labelled", split="test", image_size=16, channels=1)
    assert len(ds) + len(test) == 1797 and ds.num_classes == 10
    batch = fixed_batch(ds, 40)
    assert batch["label"].dtype == torch.int64 and set(batch["label"].tolist()) == set(range(10))
    assert not ds.geometry.flip, "mirrored digits are not digits"
    flips = {ds.geometry.draw(np.random.default_rng(k))[2] for k in range(20)}
    assert flips == {False}


def test_sample_images_are_real_and_deterministic() -> None:
    imgs = sample_images(24, 20)
    assert imgs.shape == (20, 24, 24, 3) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(imgs, sample_images(24, 20))
    assert len({im.tobytes() for im in imgs}) == 20
    assert sample_images(8, 2, channels=1).shape == (2, 8, 8, 1)


def test_unknown_builtin() -> None:
    with pytest.raises(DataError, match=r"unknown built-in dataset 'builtin:mnist'; available: builtin:edges2photos"):
        open_dataset("builtin:mnist", kind="folder", image_size=32)
