"""The endpoints behind the web page, over real HTTP against ``ganrt serve``: listing, page files, encode,
interpolate, sample grids with ``nrow``, the latency header, and ``--no-ui``."""

from __future__ import annotations

import json
import re

import httpx
import numpy as np
import pytest

from ganrt.runtime.images import grid
from tests.serve.ui.conftest import MAX_PIXELS, decode_png, png_bytes


def _post(server, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=60, **kwargs)


# ---- listing -----------------------------------------------------------------------------------------------
def test_models_listing_describes_each_task(ui_server, ui_models):
    r = httpx.get(f"{ui_server.url}/v1/models")
    assert r.status_code == 200
    body = r.json()
    cards = {card["name"]: card for card in body["models"]}
    assert list(cards) == list(ui_models)
    assert body["limits"] == {"max_sample": 64, "max_pixels": MAX_PIXELS, "max_body_bytes": 64 * 1024 * 1024}

    p2p, cyc = cards["pix2pix"], cards["cyclegan"]
    assert (p2p["task"], p2p["family"], p2p["backend"], p2p["device"]) == (
        "translate",
        "pix2pix",
        "onnxruntime",
        "cpu",
    )
    assert p2p["fixed_size"] is None and p2p["multiple"] == 32 and p2p["image_size"] == 32
    assert cyc["fixed_size"] == [32, 32] and cyc["family"] == "cyclegan"
    for card in (p2p, cyc):
        assert card["endpoints"] == ["translate"] and not card["encoder"]
        assert card["examples"] and all(
            re.fullmatch(r"ui/examples/edges-32-\w+\.png", u) for u in card["examples"]
        )

    vae, dec = cards["vae"], cards["vae_decoder"]
    assert vae["backend"] == "torch" and vae["encoder"] is True
    assert vae["endpoints"] == ["sample", "interpolate", "encode"]
    assert vae["examples"] and all(u.startswith("ui/examples/face-") for u in vae["examples"])
    assert dec["encoder"] is False and dec["endpoints"] == ["sample", "interpolate"] and dec["examples"] == []
    assert (dec["latent_dim"], dec["image_size"], dec["in_channels"]) == (8, 16, 1)
    assert cards["cgan"]["num_classes"] == 10 and cards["dcgan"]["num_classes"] == 0
    enc = cards["vae_encoder"]
    assert (enc["task"], enc["encoder"], enc["endpoints"], enc["fixed_size"]) == (
        "encode",
        True,
        ["encode"],
        [16, 16],
    )


def test_examples_are_served_and_are_what_the_listing_says(ui_server):
    cards = httpx.get(f"{ui_server.url}/v1/models").json()["models"]
    for card in cards:
        for url in card["examples"]:
            r = httpx.get(f"{ui_server.url}/{url}")
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            image = decode_png(r.content, 3)
            side = int(url.split("-")[1]) if "edges-" in url else 25
            assert image.shape == (side, side, 3)


# ---- the page and its files --------------------------------------------------------------------------------
def test_page_and_modules_are_served_with_safe_headers(ui_server):
    r = httpx.get(f"{ui_server.url}/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="ui/app.js">' in r.text
    # every module the page imports is served as JavaScript (browsers refuse modules of any other type)
    for name in ("app.js", "api.js", "dom.js", "translator.js", "sampler.js", "vae.js"):
        module = httpx.get(f"{ui_server.url}/ui/{name}")
        assert module.status_code == 200, name
        assert module.headers["content-type"] == "text/javascript; charset=utf-8"
        for imported in re.findall(r"from '\./([\w.]+)'", module.text):
            assert httpx.get(f"{ui_server.url}/ui/{imported}").status_code == 200, (name, imported)
    css = httpx.get(f"{ui_server.url}/ui/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    again = httpx.get(f"{ui_server.url}/ui/style.css", headers={"if-none-match": css.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path", ["/ui/nope.js", "/ui/../app.py", "/ui/%2e%2e/app.py", "/ui/examples/../../ui.py"]
)
def test_unknown_page_files_are_404(ui_server, path):
    r = httpx.get(f"{ui_server.url}{path}")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"


def test_no_ui_keeps_the_api_and_drops_the_page(start_server, ui_models):
    srv = start_server([f"dcgan={ui_models['dcgan']}", "--no-ui"])
    assert httpx.get(f"{srv.url}/").status_code == 404
    assert httpx.get(f"{srv.url}/ui/app.js").status_code == 404
    listing = httpx.get(f"{srv.url}/v1/models").json()
    assert [c["name"] for c in listing["models"]] == ["dcgan"] and listing["models"][0]["examples"] == []
    assert _post(srv, "/v1/models/dcgan/interpolate", json={"a": 1, "b": 2}).status_code == 200


# ---- encode ------------------------------------------------------------------------------------------------
def test_encode_equals_model_encode(ui_server, ui_reference, faces):
    r = _post(
        ui_server, "/v1/models/vae/encode", content=png_bytes(faces[0]), headers={"content-type": "image/png"}
    )
    assert r.status_code == 200, r.text
    mu, logvar = ui_reference["vae"].encode(faces[0])
    got = r.json()
    np.testing.assert_array_equal(np.asarray(got["mu"], np.float32), mu[0])
    np.testing.assert_array_equal(np.asarray(got["logvar"], np.float32), logvar[0])


def test_encoder_served_alone(ui_server, ui_reference, faces):
    r = _post(
        ui_server,
        "/v1/models/vae_encoder/encode",
        content=png_bytes(faces[1]),
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(
        np.asarray(r.json()["mu"], np.float32), ui_reference["vae_encoder"].encode(faces[1])[0][0]
    )
    r = _post(ui_server, "/v1/models/vae_encoder/interpolate", json={"a": 1, "b": 2})
    assert r.status_code == 400 and "needs a sampler" in r.json()["error"]


def test_encode_errors(ui_server):
    face = png_bytes(np.zeros((25, 25, 1), np.uint8))
    r = _post(ui_server, "/v1/models/vae_decoder/encode", content=face, headers={"content-type": "image/png"})
    assert r.status_code == 400 and "without an encoder" in r.json()["error"]
    r = _post(ui_server, "/v1/models/pix2pix/encode", content=face, headers={"content-type": "image/png"})
    assert r.status_code == 400 and "without an encoder" in r.json()["error"]
    r = _post(ui_server, "/v1/models/vae/encode", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "got 'text/plain'" in r.json()["error"]
    r = _post(ui_server, "/v1/models/vae/encode", content=b"hello", headers={"content-type": "image/png"})
    assert r.status_code == 400 and "cannot decode" in r.json()["error"]
    big = png_bytes(np.zeros((600, 600, 1), np.uint8))
    r = _post(ui_server, "/v1/models/vae/encode", content=big, headers={"content-type": "image/png"})
    assert r.status_code == 413 and f"more than the limit of {MAX_PIXELS}" in r.json()["error"]
    r = _post(ui_server, "/v1/models/nope/encode", content=face, headers={"content-type": "image/png"})
    assert r.status_code == 404


# ---- interpolate -------------------------------------------------------------------------------------------
def _frames(response: httpx.Response, side: int, channels: int) -> np.ndarray:
    """PNG strip (S, steps * S, C) -> (steps, S, S, C)."""
    strip = decode_png(response.content, channels)
    steps = int(response.headers["x-ganrt-frames"])
    assert strip.shape == (side, steps * side, channels)
    return strip.reshape(side, steps, side, channels).transpose(1, 0, 2, 3)


def test_interpolate_between_encodings_equals_interpolate_between_images(ui_server, ui_reference, faces):
    mus = []
    for face in faces:
        r = _post(
            ui_server, "/v1/models/vae/encode", content=png_bytes(face), headers={"content-type": "image/png"}
        )
        mus.append(r.json()["mu"])
    r = _post(ui_server, "/v1/models/vae/interpolate", json={"a": mus[0], "b": mus[1], "steps": 7})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    expected = ui_reference["vae"].interpolate(faces[0], faces[1], steps=7)
    np.testing.assert_array_equal(_frames(r, 16, 1), expected)


@pytest.mark.parametrize(
    "a,b", [(3, 4), ("3", "4"), ("18446744073709551615", 0)], ids=["ints", "strings", "max"]
)
def test_interpolate_between_seeds(ui_server, ui_reference, a, b):
    r = _post(ui_server, "/v1/models/vae_decoder/interpolate", json={"a": a, "b": b})
    assert r.status_code == 200, r.text
    expected = ui_reference["vae_decoder"].interpolate(int(a), int(b))  # default steps: 8, as the runtime's
    np.testing.assert_array_equal(_frames(r, 16, 1), expected)


def test_interpolate_class_conditional(ui_server, ui_reference):
    r = _post(ui_server, "/v1/models/cgan/interpolate", json={"a": 5, "b": 6, "steps": 4, "labels": 7})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(_frames(r, 16, 1), ui_reference["cgan"].interpolate(5, 6, 4, labels=7))


BAD_INTERPOLATE = [
    ("missing-b", {"a": 1}, 400, "'b' is required"),
    ("short-latent", {"a": [0.0] * 7, "b": 1}, 400, "a list of 8 numbers"),
    ("strings-latent", {"a": ["x"] * 8, "b": 1}, 400, "a list of 8 numbers"),
    ("bool-seed", {"a": True, "b": 1}, 400, "'a' must be a seed"),
    ("negative-seed", {"a": -1, "b": 1}, 400, "must be in 0..2\\*\\*64-1"),
    ("huge-seed", {"a": 2**64, "b": 1}, 400, "must be in 0..2\\*\\*64-1"),
    ("overflow", {"a": [1e39] * 8, "b": 1}, 400, "must be finite"),
    ("steps", {"a": 1, "b": 2, "steps": 1}, 400, "'steps' must be in 2..64"),
    ("unknown", {"a": 1, "b": 2, "frames": 3}, 400, "unknown interpolate parameter 'frames'"),
    ("labels", {"a": 1, "b": 2, "labels": 1}, 400, "not class-conditional"),
]


@pytest.mark.parametrize(
    "doc,status,match", [c[1:] for c in BAD_INTERPOLATE], ids=[c[0] for c in BAD_INTERPOLATE]
)
def test_interpolate_bad_requests(ui_server, doc, status, match):
    r = _post(ui_server, "/v1/models/vae_decoder/interpolate", json=doc)
    assert r.status_code == status
    assert re.search(match, r.json()["error"]), r.json()


def test_interpolate_wrong_model_or_body(ui_server):
    r = _post(ui_server, "/v1/models/pix2pix/interpolate", json={"a": 1, "b": 2})
    assert r.status_code == 400 and "needs a sampler" in r.json()["error"]
    r = _post(
        ui_server, "/v1/models/dcgan/interpolate", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = _post(
        ui_server,
        "/v1/models/dcgan/interpolate",
        content=b"[1, 2]",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "must be a JSON object" in r.json()["error"]
    r = _post(
        ui_server, "/v1/models/dcgan/interpolate", content=b"a=1", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415
    r = _post(
        ui_server,
        "/v1/models/dcgan/interpolate",
        content=json.dumps({"a": [float("nan")] * 8, "b": 1}),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "must be finite" in r.json()["error"]


# ---- sample grids, latency ---------------------------------------------------------------------------------
def test_sample_nrow_lays_out_one_row_per_class(ui_server, ui_reference):
    labels = np.repeat(np.arange(10), 3)
    r = _post(
        ui_server,
        "/v1/models/cgan/sample",
        params={"n": 30, "seed": 3, "labels": ",".join(map(str, labels)), "nrow": 3},
    )
    assert r.status_code == 200, r.text
    expected = grid(ui_reference["cgan"].sample(30, seed=3, labels=labels), 3)
    np.testing.assert_array_equal(decode_png(r.content, 1), expected)
    r = _post(ui_server, "/v1/models/cgan/sample", params={"n": 4, "nrow": 5})
    assert r.status_code == 400 and "'nrow' must be in 1..4" in r.json()["error"]


def test_latency_header_on_api_responses(ui_server):
    for response in (
        _post(ui_server, "/v1/models/dcgan/sample", params={"n": 2, "seed": 1}),
        httpx.get(f"{ui_server.url}/v1/models"),
        httpx.get(f"{ui_server.url}/v2/health/ready"),
        _post(ui_server, "/v1/models/nope/sample"),
    ):
        assert float(response.headers["x-ganrt-latency-ms"]) >= 0
    assert "x-ganrt-latency-ms" not in httpx.get(f"{ui_server.url}/").headers
