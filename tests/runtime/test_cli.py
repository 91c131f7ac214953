"""``ganrt translate``, ``ganrt sample``, ``ganrt info``: outputs on success, one line + exit 2 on errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

import ganrt
from ganrt.cli import main


def test_translate_files_and_folders(artifacts, photo, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    Image.fromarray(photo[:40, :50]).save(folder / "b.png")
    single = tmp_path / "c.png"
    Image.fromarray(photo[::-1]).save(single)
    assert (
        main(
            [
                "translate",
                str(artifacts["pix2pix_onnx"]),
                str(folder),
                str(single),
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a.png", "b.png", "c.png"]
    with Image.open(tmp_path / "out" / "b.png") as b, ganrt.load(artifacts["pix2pix_onnx"]) as model:
        assert b.size == (50, 40)
        np.testing.assert_array_equal(np.asarray(b), model(photo[:40, :50].copy()))
    assert "translated 3 image(s)" in capsys.readouterr().err


def test_sample_grid(artifacts, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert (
        main(["sample", str(artifacts["cgan_onnx"]), "-n", "6", "--seed", "0", "--nrow", "3", "-o", str(out)])
        == 0
    )
    with Image.open(out) as grid:
        assert grid.size == (3 * 18 + 2, 2 * 18 + 2)
    with ganrt.load(artifacts["cgan_onnx"]) as model:
        first = model.sample(6, seed=0)[0]
    np.testing.assert_array_equal(np.asarray(Image.open(out))[2:18, 2:18], first)
    assert "seed 0" in capsys.readouterr().err


def test_info_json(artifacts, capsys):
    assert main(["info", str(artifacts["vae_decoder_onnx"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "vae" and info["task"] == "sample"
    # The default backend is the selection's winner among the backends that read ONNX.
    assert info["backend"] in ("onnxruntime", "openvino")
    assert info["selection"]["winner"] == {"backend": info["backend"], "precision": info["precision"]}


def test_info_with_a_forced_backend_and_precision(artifacts, capsys):
    argv = ["info", str(artifacts["pix2pix_onnx"]), "--backend", "openvino", "--precision", "fp32", "--json"]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["backend"], info["precision"], info["inference_precision"]) == ("openvino", "fp32", "f32")
    forced = ["info", str(artifacts["pix2pix_onnx"]), "--backend", "onnxruntime", "--precision", "bf16"]
    assert main(forced) == 2
    assert "precision='bf16' is not available" in capsys.readouterr().err


def test_info_table(artifacts, capsys):
    assert main(["info", str(artifacts["pix2pix_run"])]) == 0
    out = capsys.readouterr().out
    assert "pix2pix" in out and "torch" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["info", "missing.onnx"], "no such model file"),
        (["sample", "{pix2pix_onnx}", "-o", "{tmp}/g.png"], r"`ganrt sample` needs a DCGAN/CGAN generator"),
        (["translate", "{cgan_onnx}", "{tmp}", "-o", "{tmp}/out"], "use `ganrt sample`"),
        (["translate", "{pix2pix_onnx}", "{tmp}/nothing.png", "-o", "{tmp}/out"], "no such file or folder"),
        (["sample", "{cgan_onnx}", "-n", "0", "-o", "{tmp}/g.png"], r"-n must be in 1\.\.65536"),
        (["info", "{pix2pix_onnx}", "--backend", "tensorrt"], "cannot run a onnx artifact"),
    ],
    ids=["missing", "translator-sampled", "sampler-translated", "missing-input", "bad-n", "wrong-backend"],
)
def test_errors_are_one_line(artifacts, tmp_path, capsys, argv, match):
    (tmp_path / "x.png").write_bytes(b"")  # the folder given to translate is not empty of images
    argv = [a.format(tmp=tmp_path, **{k: str(v) for k, v in artifacts.items()}) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"ganrt {argv[0]}: error: ")
    assert re.search(match, err)
