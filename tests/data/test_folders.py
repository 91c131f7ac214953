"""Folder datasets: the reference layouts, preprocessing, conversions and the errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganrt.data import (
    DataError,
    Geometry,
    fixed_batch,
    open_dataset,
    sample_positions,
    to_tensor,
    training_batch,
)
from ganrt.data.order import _permutation


def _noise(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w, channels) if channels > 1 else (h, w)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _aligned(folder: Path, n: int, h: int = 40, w: int = 40, *, same: bool = False) -> None:
    for i in range(n):
        a = _noise(h, w, i)
        b = a if same else _noise(h, w, 100 + i)
        _save(folder / f"{i:03d}.png", np.concatenate([a, b], axis=1))


def test_aligned_same_crop_and_flip_for_both_halves(tmp_path: Path) -> None:
    _aligned(tmp_path / "train", 3, same=True)
    ds = open_dataset(tmp_path, kind="aligned", image_size=32, load_size=40)
    assert len(ds) == 3 and ds.keys == ("A", "B")
    crops = set()
    for seed in range(12):
        s = ds.sample(1, np.random.default_rng(seed))
        assert s["A"].shape == (3, 32, 32) and s["A"].dtype == torch.float32
        assert torch.equal(s["A"], s["B"]), "halves of a pair must get the same crop and flip"
        crops.add(s["A"].sum().item())
    assert len(crops) > 6, "augmentation should vary the crop/flip between draws"


def test_aligned_matches_reference_preprocessing(tmp_path: Path) -> None:
    _aligned(tmp_path / "train", 1, h=50, w=60)
    path = tmp_path / "train" / "000.png"
    ab = Image.open(path).convert("RGB")
    a, b = ab.crop((0, 0, 60, 50)), ab.crop((60, 0, 120, 50))
    x, y, size, load = 3, 5, 32, 40
    s = open_dataset(tmp_path, kind="aligned", image_size=size, load_size=load).sample(0, None)
    ds = open_dataset(tmp_path, kind="aligned", image_size=size, load_size=load)
    geo = ds.geometry
    out = geo.apply(a, (x, y, True))
    ref = np.asarray(a.resize((load, load), Image.Resampling.BICUBIC))[y : y + size, x : x + size][:, ::-1]
    np.testing.assert_array_equal(out, ref)
    # Without rng: the centre crop, no flip.
    m = (load - size) // 2
    ref_b = np.asarray(b.resize((load, load), Image.Resampling.BICUBIC))[m : m + size, m : m + size]
    torch.testing.assert_close(s["B"], to_tensor(ref_b))
    assert s["B"].min() >= -1 and s["B"].max() <= 1


def test_direction_swaps_halves(tmp_path: Path) -> None:
    _aligned(tmp_path, 1)
    ab = open_dataset(tmp_path, kind="aligned", image_size=32, augment=False).sample(0, None)
    ba = open_dataset(tmp_path, kind="aligned", image_size=32, augment=False, direction="BtoA").sample(0, None)
    assert torch.equal(ab["A"], ba["B"]) and torch.equal(ab["B"], ba["A"])


def test_default_load_size_follows_reference_ratio(tmp_path: Path) -> None:
    _aligned(tmp_path, 1, h=300, w=300)
    assert open_dataset(tmp_path, kind="aligned", image_size=256).geometry.load_size == 286
    assert open_dataset(tmp_path, kind="aligned", image_size=256, augment=False).geometry.load_size == 256


def test_odd_width_pair_names_the_file(tmp_path: Path) -> None:
    _aligned(tmp_path, 2)
    _save(tmp_path / "odd.png", _noise(40, 81, 0))
    with pytest.raises(DataError, match=r"odd\.png.*odd width 81"):
        open_dataset(tmp_path, kind="aligned", image_size=32)


def test_non_image_file_names_the_file(tmp_path: Path) -> None:
    _aligned(tmp_path, 2)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored
    with pytest.raises(DataError, match=r"notes\.txt.*not an image"):
        open_dataset(tmp_path, kind="aligned", image_size=32)


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    _aligned(tmp_path, 1)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png"):
        open_dataset(tmp_path, kind="aligned", image_size=32)


def test_image_smaller_than_crop_names_the_file(tmp_path: Path) -> None:
    _save(tmp_path / "big.png", _noise(64, 64, 1))
    _save(tmp_path / "tiny.png", _noise(20, 30, 2))
    with pytest.raises(DataError, match=r"tiny\.png.*30x20, smaller than the 32x32 crop"):
        open_dataset(tmp_path, kind="folder", image_size=32)
    _aligned(tmp_path / "pairs", 1, h=40, w=20)
    with pytest.raises(DataError, match=r"000\.png.*20x40, smaller than the 32x32 crop"):
        open_dataset(tmp_path / "pairs", kind="aligned", image_size=32)


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty.*contains no images"):
        open_dataset(tmp_path / "empty", kind="folder", image_size=32)
    with pytest.raises(DataError, match=r"nowhere.*does not exist"):
        open_dataset(tmp_path / "nowhere", kind="folder", image_size=32)
    _save(tmp_path / "flat" / "a.png", _noise(40, 40, 0))
    with pytest.raises(DataError, match=r"no test split.*flat/test"):
        open_dataset(tmp_path / "flat", kind="folder", split="test", image_size=32)


def test_grayscale_rgba_palette_and_16bit_are_converted(tmp_path: Path) -> None:
    gray = _noise(40, 40, 3, channels=1)
    _save(tmp_path / "gray.png", gray)
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:20, :, :] = (10, 20, 30, 255)  # top half opaque dark, bottom half transparent
    _save(tmp_path / "rgba.png", rgba)
    Image.fromarray(_noise(40, 40, 4)).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "wide.png")
    ds = open_dataset(tmp_path, kind="folder", image_size=40, augment=False)
    names = [p.name for p in ds.files]
    samples = {n: ds.sample(i, None)["image"] for i, n in enumerate(names)}
    g = samples["gray.png"]
    assert g.shape == (3, 40, 40) and torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    torch.testing.assert_close(samples["wide.png"], g, atol=1 / 127.5, rtol=0)
    r = samples["rgba.png"]
    assert torch.all(r[:, 20:] == 1.0), "transparent pixels are composited over white"
    torch.testing.assert_close(r[:, 0, 0], torch.tensor([10, 20, 30]) / 127.5 - 1)
    assert samples["palette.png"].shape == (3, 40, 40)
    one = open_dataset(tmp_path, kind="folder", image_size=40, augment=False, channels=1)
    assert one.sample(0, None)["image"].shape == (1, 40, 40)


def test_unaligned_layout(tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / "trainA" / f"a{i}.png", _noise(40, 40, i))
    for i in range(5):
        _save(tmp_path / "trainB" / f"b{i}.png", _noise(48, 36, 10 + i))
    _save(tmp_path / "testA" / "a.png", _noise(40, 40, 20))
    _save(tmp_path / "testB" / "b.png", _noise(40, 40, 21))
    ds = open_dataset(tmp_path, kind="unaligned", image_size=32)
    assert len(ds) == 5
    s = ds.sample(4, np.random.default_rng(0))
    assert s["A"].shape == s["B"].shape == (3, 32, 32)
    # B is drawn at random: the pairing varies across draws of the same index.
    partners = {ds.sample(0, np.random.default_rng(k))["B"].sum().item() for k in range(20)}
    assert len(partners) > 2
    test = open_dataset(tmp_path, kind="unaligned", split="test", image_size=32, augment=False)
    assert len(test) == 1


def test_unaligned_missing_domain_is_named(tmp_path: Path) -> None:
    _save(tmp_path / "trainA" / "a.png", _noise(40, 40, 0))
    with pytest.raises(DataError, match=r"needs folders trainA/ and trainB/; missing: .*trainB"):
        open_dataset(tmp_path, kind="unaligned", image_size=32)


def test_labelled_layout(tmp_path: Path) -> None:
    for c, count in (("cat", 2), ("dog", 3)):
        for i in range(count):
            _save(tmp_path / "train" / c / f"{i}.png", _noise(40, 40, i))
    ds = open_dataset(tmp_path, kind="labelled", image_size=32)
    assert ds.classes == ["cat", "dog"] and ds.num_classes == 2 and len(ds) == 5
    labels = [ds.sample(i, None)["label"] for i in range(len(ds))]
    assert [int(x) for x in labels] == [0, 0, 1, 1, 1] and labels[0].dtype == torch.int64
    (tmp_path / "train" / "stray.png").write_bytes((tmp_path / "train" / "cat" / "0.png").read_bytes())
    with pytest.raises(DataError, match=r"files outside class subfolders \(stray\.png\)"):
        open_dataset(tmp_path, kind="labelled", image_size=32)
    (tmp_path / "train" / "stray.png").unlink()
    (tmp_path / "train" / "empty_class").mkdir()
    with pytest.raises(DataError, match=r"empty_class.*contains no images"):
        open_dataset(tmp_path, kind="labelled", image_size=32)


def test_labelled_needs_class_folders(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _noise(40, 40, 0))
    with pytest.raises(DataError, match=r"has files outside class subfolders|no class subfolders"):
        open_dataset(tmp_path, kind="labelled", image_size=32)


def test_argument_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"kind must be one of .*got 'pairs'"):
        open_dataset(tmp_path, kind="pairs", image_size=32)
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test', got 'val'"):
        open_dataset(tmp_path, kind="folder", split="val", image_size=32)
    with pytest.raises(ValueError, match=r"load_size must be >= image_size \(32\), got 16"):
        Geometry(32, 16, True)


def test_training_order_is_a_function_of_seed_and_step(tmp_path: Path) -> None:
    for i in range(5):
        _save(tmp_path / f"{i}.png", _noise(40, 40, i))
    ds = open_dataset(tmp_path, kind="folder", image_size=32)
    a = training_batch(ds, step=3, batch_size=2, seed=7)
    _permutation.cache_clear()  # the second batch recomputes its epoch order instead of rereading the cache
    b = training_batch(ds, step=3, batch_size=2, seed=7)
    assert a["image"].shape == (2, 3, 32, 32) and torch.equal(a["image"], b["image"])
    assert not torch.equal(a["image"], training_batch(ds, step=3, batch_size=2, seed=8)["image"])
    # Every epoch visits every image exactly once, in an order that changes between epochs.
    epochs = [[sample_positions(5, step=s, batch_size=1, seed=7)[0][0] for s in range(e * 5, e * 5 + 5)]
              for e in range(3)]
    assert all(sorted(order) == list(range(5)) for order in epochs)
    assert len({tuple(order) for order in epochs}) > 1
    fixed = fixed_batch(ds, 3)["image"]
    assert torch.equal(fixed, fixed_batch(ds, 3)["image"]) and fixed.shape[0] == 3
