"""The one image decoder (:mod:`ganrt.imageio`): one test per image mode, images generated here with PIL, and
the same pixels from training's reader, the server's decoder and the runtime's ``translate_file``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganrt import imageio
from ganrt.data.images import DataError, read_image
from ganrt.serve.images import ImageError, decode_image

WHITE = 255


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def _ramp(h: int = 6, w: int = 8) -> np.ndarray:
    return np.arange(h * w, dtype=np.float64).reshape(h, w) / (h * w - 1)


def test_16bit_png_is_rescaled_not_clipped(tmp_path: Path) -> None:
    values = np.rint(_ramp() * 65535).astype(np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "g16.png")
    with Image.open(path) as opened:
        assert opened.mode.startswith("I")  # really a 16-bit image on disk
    got = imageio.decode(path, 1)[..., 0]
    np.testing.assert_array_equal(got, np.rint(values * 255.0 / 65535.0).astype(np.uint8))
    assert got.max() == 255 and got.min() == 0  # clipping would have made almost everything 255


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish
    rgba[:, :2, 3] = 0  # left half fully transparent
    rgba[:, 2:, 3] = 255  # right half opaque
    path = _save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png")
    got = imageio.decode(path, 3)
    np.testing.assert_array_equal(got[:, :2], np.full((4, 2, 3), WHITE, np.uint8))
    np.testing.assert_array_equal(got[:, 2:], np.broadcast_to(np.array([200, 0, 0], np.uint8), (4, 2, 3)))


def test_half_transparent_gray_alpha_blends_with_white(tmp_path: Path) -> None:
    la = np.stack([np.zeros((3, 3), np.uint8), np.full((3, 3), 128, np.uint8)], axis=-1)
    path = _save(Image.fromarray(la, "LA"), tmp_path / "la.png")
    got = imageio.decode(path, 1)[..., 0]
    assert np.all(np.abs(got.astype(int) - 127) <= 1)  # black at alpha 0.5 over white


def test_palette_with_transparent_index_is_white(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.putpixel((0, 0), 1)
    path = _save(image, tmp_path / "p.png", transparency=0)
    got = imageio.decode(path, 3)
    np.testing.assert_array_equal(got[0, 0], [10, 200, 30])
    np.testing.assert_array_equal(got[1:, 1:], np.full((3, 3, 3), WHITE, np.uint8))


def test_palette_without_transparency_keeps_its_colours(tmp_path: Path) -> None:
    image = Image.new("P", (2, 2), 1)
    image.putpalette([0, 0, 0, 40, 50, 60] + [0] * 762)
    got = imageio.decode(_save(image, tmp_path / "p_opaque.png"), 3)
    np.testing.assert_array_equal(got, np.broadcast_to(np.array([40, 50, 60], np.uint8), (2, 2, 3)))


def test_float_tiff_is_read_as_unit_range(tmp_path: Path) -> None:
    values = _ramp().astype(np.float32)
    path = _save(Image.fromarray(values, "F"), tmp_path / "f.tif")
    got = imageio.decode(path, 1)[..., 0]
    np.testing.assert_array_equal(got, np.rint(values.astype(np.float64) * 255).astype(np.uint8))
    assert got.max() == 255  # not black


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.full((4, 4), 200.0, np.float32), r"values in \[200, 200\].*reads float images as \[0, 1\]"),
        (np.full((4, 4), np.nan, np.float32), "NaN or infinite"),
    ],
    ids=["out_of_range", "nan"],
)
def test_float_tiff_outside_unit_range_is_refused(tmp_path: Path, values: np.ndarray, match: str) -> None:
    path = _save(Image.fromarray(values, "F"), tmp_path / "bad.tif")
    with pytest.raises(imageio.ImageDecodeError, match=match):
        imageio.decode(path, 3)
    with pytest.raises(DataError, match=match):
        read_image(path, 3)


def test_cmyk_jpeg_converts_to_rgb(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=100)
    got = imageio.decode(path, 3).astype(int)
    assert np.all(got[..., 0] > 230) and np.all(got[..., 1:] < 30)  # pure red


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((2, 4, 3), np.uint8)
    pixels[0, 0] = 255  # white top-left corner of a 2x4 (h x w) picture
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(image, tmp_path / "rotated.png", exif=exif.tobytes())
    got = imageio.decode(path, 3)
    assert got.shape == (4, 2, 3)  # shown upright: 4 rows, 2 columns
    assert got[0, 1].tolist() == [255, 255, 255]


def test_bilevel_image(tmp_path: Path) -> None:
    image = Image.new("1", (3, 3), 1)
    image.putpixel((1, 1), 0)
    got = imageio.decode(_save(image, tmp_path / "bits.png"), 1)[..., 0]
    assert got[1, 1] == 0 and got[0, 0] == 255


def test_pixel_limit_is_checked_from_the_header(tmp_path: Path) -> None:
    path = _save(Image.new("L", (100, 100)), tmp_path / "big.png")
    with pytest.raises(
        imageio.ImageDecodeError, match=r"100x100 = 10000 pixels, more than the limit of 9999"
    ) as err:
        imageio.decode(path, 1, max_pixels=9999)
    assert err.value.status == 413


# Every mode a PNG can carry, decoded by training's reader, the server and the runtime: the same pixels.
PNG_MODES = {
    "rgb": lambda: Image.fromarray((np.arange(192) % 256).astype(np.uint8).reshape(8, 8, 3)),
    "gray16": lambda: Image.fromarray(np.rint(_ramp(8, 8) * 65535).astype(np.uint16)),
    "rgba": lambda: Image.fromarray((np.arange(256) * 7 % 256).astype(np.uint8).reshape(8, 8, 4), "RGBA"),
    "la": lambda: Image.fromarray((np.arange(128) * 2).astype(np.uint8).reshape(8, 8, 2), "LA"),
}


def identity_translator(path: Path, channels: int) -> Path:
    """An ONNX translator whose output is its input (ganrt metadata, dynamic N/H/W): what ``translate_file``
    writes is then exactly what it decoded."""
    import onnx
    from onnx import TensorProto, helper

    from ganrt.artifact import ArtifactMetadata

    shape = ["N", channels, "H", "W"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["output"])],
        "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    md = ArtifactMetadata("pix2pix", "translate", channels, channels, image_size=8, multiple=1)
    helper.set_model_props(model, md.to_props())
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("mode", list(PNG_MODES))
@pytest.mark.parametrize("channels", [1, 3], ids=["gray", "rgb"])
def test_training_server_and_runtime_decode_alike(tmp_path: Path, mode: str, channels: int) -> None:
    import ganrt

    path = _save(PNG_MODES[mode](), tmp_path / f"{mode}.png")
    expected = imageio.decode(path, channels)
    np.testing.assert_array_equal(np.asarray(read_image(path, channels)).reshape(expected.shape), expected)
    served = decode_image(path.read_bytes(), content_type="image/png", channels=channels, max_pixels=10**6)
    np.testing.assert_array_equal(served, expected)
    with ganrt.load(identity_translator(tmp_path / "identity.onnx", channels)) as model:
        model.translate_file(path, tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as out:
        written = np.asarray(out).reshape(expected.shape)
    np.testing.assert_array_equal(written, expected)


def test_server_decoder_maps_errors_to_statuses() -> None:
    with pytest.raises(ImageError) as err:
        decode_image(b"not a png", content_type="image/png", channels=3, max_pixels=100)
    assert err.value.status == 400
    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, format="PNG")
    with pytest.raises(ImageError) as err:
        decode_image(buf.getvalue(), content_type="image/png", channels=3, max_pixels=100)
    assert err.value.status == 413
