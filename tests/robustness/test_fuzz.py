"""Property-based fuzzing (hypothesis) of the KServe v2 request decoder and the image decoders: whatever bytes
arrive, they either decode to what they claim or raise the decoder's own error (a 4xx/413 for the server);
never another exception, never a hang. Bounded (example counts, sizes, no deadline flakiness) so CI stays
fast.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganrt import imageio
from ganrt.serve import protocol
from ganrt.serve.images import ImageError, decode_image

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGE_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DATATYPES = sorted(protocol.DATATYPES)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def _tensor() -> st.SearchStrategy[dict]:
    shape = st.lists(st.integers(-2, 4), min_size=0, max_size=4)
    return st.fixed_dictionaries(
        {
            "name": st.sampled_from(["z", "image", "label", "", "x"]),
            "datatype": st.sampled_from([*DATATYPES, "BYTES", "BF16", "fp32", ""]),
            "shape": st.one_of(shape, json_values),
        },
        optional={
            "data": st.one_of(
                st.lists(
                    st.one_of(st.integers(-300, 300), st.floats(allow_nan=True), st.booleans()), max_size=40
                ),
                json_values,
            ),
            "parameters": st.one_of(
                st.fixed_dictionaries({"binary_data_size": st.integers(-4, 200)}), json_values
            ),
        },
    )


requests = st.fixed_dictionaries(
    {"inputs": st.one_of(st.lists(_tensor(), max_size=3), json_values)},
    optional={
        "id": json_values,
        "outputs": json_values,
        "parameters": st.one_of(
            st.fixed_dictionaries({"timeout": json_scalars, "binary_data_output": json_scalars}), json_values
        ),
    },
)


def _check_parsed(req: protocol.InferRequest) -> None:
    for name, array in req.inputs.items():
        assert isinstance(name, str) and name
        assert isinstance(array, np.ndarray) and all(d >= 0 for d in array.shape)
    if req.timeout_s is not None:
        assert req.timeout_s > 0


@FUZZ
@given(doc=requests, binary=st.binary(max_size=256), split=st.booleans())
def test_infer_request_decoder(doc: dict, binary: bytes, split: bool) -> None:
    head = json.dumps(doc).encode()
    body, header = (head + binary, str(len(head))) if split else (head, None)
    try:
        req = protocol.parse_infer_request(body, header)
    except protocol.ProtocolError as exc:
        assert 400 <= exc.status < 500 and str(exc)
        return
    _check_parsed(req)


@FUZZ
@given(
    body=st.binary(max_size=512),
    header=st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 600).map(str)),
)
def test_infer_request_decoder_on_raw_bytes(body: bytes, header: str | None) -> None:
    try:
        req = protocol.parse_infer_request(body, header)
    except protocol.ProtocolError as exc:
        assert 400 <= exc.status < 500
        return
    _check_parsed(req)


@FUZZ
@given(data=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=16))
def test_infer_response_is_strict_json_or_refused(data: list[float]) -> None:
    array = np.asarray(data, np.float32)
    try:
        body, _ = protocol.encode_infer_response("m", "1", None, [("y", array, False)])
    except protocol.ProtocolError as exc:
        assert exc.status == 500 and not np.isfinite(array).all()
        return
    decoded = json.loads(body, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))
    assert np.array_equal(np.asarray(decoded["outputs"][0]["data"], np.float32), array)


def _png_chunks(width: int, height: int, depth: int, colour: int, payload: bytes, compress: bool) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(payload) if compress else payload
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@IMAGE_FUZZ
@given(
    width=st.integers(0, 3000),
    height=st.integers(0, 3000),
    depth=st.sampled_from([1, 2, 4, 8, 16, 3]),
    colour=st.sampled_from([0, 2, 3, 4, 6, 1]),
    payload=st.binary(max_size=300),
    compress=st.booleans(),
    channels=st.sampled_from([1, 3]),
)
def test_server_image_decoder_on_crafted_pngs(
    width: int, height: int, depth: int, colour: int, payload: bytes, compress: bool, channels: int
) -> None:
    """Headers that lie about sizes, depths and colour types; pixel data that is short, long or garbage."""
    data = _png_chunks(width, height, depth, colour, payload, compress)
    max_pixels = 512 * 512
    try:
        image = decode_image(data, content_type="image/png", channels=channels, max_pixels=max_pixels)
    except ImageError as exc:
        assert exc.status in (400, 413) and str(exc) and "object at 0x" not in str(exc)
        return
    assert width * height <= max_pixels, "decoded an image above the pixel limit"
    assert image.dtype == np.uint8 and image.shape == (height, width, channels)


@IMAGE_FUZZ
@given(data=st.binary(max_size=400), fmt=st.sampled_from(["image/png", "image/jpeg"]))
def test_server_image_decoder_on_random_bytes(data: bytes, fmt: str) -> None:
    try:
        image = decode_image(data, content_type=fmt, channels=3, max_pixels=1 << 16)
    except ImageError as exc:
        assert exc.status in (400, 413)
        return
    assert image.dtype == np.uint8 and image.ndim == 3


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"]


@IMAGE_FUZZ
@given(
    mode=st.sampled_from(MODES),
    width=st.integers(1, 12),
    height=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    fmt=st.sampled_from(["PNG", "TIFF"]),
    channels=st.sampled_from([1, 3]),
    flip=st.integers(0, 8),
)
def test_file_decoder_on_every_mode(
    mode: str, width: int, height: int, seed: int, fmt: str, channels: int, flip: int, tmp_path_factory
) -> None:
    """Any mode Pillow writes, any size, with or without an EXIF orientation: uint8 out with the shown size,
    or the decoder's own error (float pixels outside [0, 1])."""
    rng = np.random.default_rng(seed)
    if mode == "F":
        image = Image.fromarray(rng.uniform(-0.5, 1.5, (height, width)).astype(np.float32), "F")
    elif mode in ("I;16", "I"):
        image = Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.uint16))
    else:
        image = Image.frombytes(
            mode, (width, height), rng.bytes(len(Image.new(mode, (width, height)).tobytes()))
        )
    buf = io.BytesIO()
    kwargs = {}
    if flip:
        exif = Image.Exif()
        exif[0x0112] = flip
        kwargs["exif"] = exif.tobytes()
    if fmt == "PNG" and mode in ("CMYK", "YCbCr", "F"):
        fmt = "TIFF"
    image.save(buf, format=fmt, **kwargs)
    try:
        out = imageio.decode(buf.getvalue(), channels)
    except imageio.ImageDecodeError as exc:
        assert mode == "F" and "[0, 1]" in str(exc)
        return
    shown = (width, height) if flip in (0, 1, 2, 3, 4) else (height, width)
    assert out.dtype == np.uint8 and out.shape == (shown[1], shown[0], channels)
    assert math.isfinite(float(out.mean()))
