"""``ganrt serve`` argument handling: clear one-line errors before anything binds a port."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ganrt.cli import main
from ganrt.serve.server import model_name_for, parse_model_specs


def test_model_names_from_paths_and_explicit_names():
    assert model_name_for(Path("runs/x/pix2pix.onnx")) == "pix2pix"
    assert model_name_for(Path("engines/g.fp16.engine")) == "g.fp16"
    assert model_name_for(Path("runs/facades")) == "facades"
    assert model_name_for(Path("model_repository/pix2pix/1/model.onnx")) == "pix2pix"
    assert parse_model_specs(["a=x/g.onnx", "y/h.onnx"]) == {"a": Path("x/g.onnx"), "h": Path("y/h.onnx")}
    with pytest.raises(ValueError, match="model name 'g' is used twice"):
        parse_model_specs(["a/g.onnx", "b/g.onnx"])
    with pytest.raises(ValueError, match="must match"):
        parse_model_specs(["-bad.onnx"])


@pytest.mark.parametrize(
    "argv,match",
    [
        (["serve", "/no/such/model.onnx"], "'model': /no/such/model.onnx does not exist"),
        (["serve", "m.onnx", "--max-batch", "0"], "max_batch must be >= 1, got 0"),
        (["serve", "m.onnx", "--timeout-s", "0"], "argument --timeout-s: must be > 0, got 0"),
        (["serve", "m.onnx", "--port", "70000"], "--port must be in 0..65535, got 70000"),
    ],
    ids=["missing-file", "max-batch", "timeout", "port"],
)
def test_cli_errors_are_one_line(argv, match, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # refused while parsing
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("ganrt serve: error: ") and match in err
    assert err.count("\n") == 1


def test_cli_reports_unloadable_model(tmp_path, capsys):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx file")
    assert main(["serve", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cannot load model 'broken'" in err


@pytest.mark.skipif(
    importlib.util.find_spec("pytriton") is not None, reason="nvidia-pytriton is installed here"
)
def test_pytriton_backend_missing_says_how_to_install(onnx_models, capsys):
    assert main(["serve", str(onnx_models["dcgan"]), "--backend", "pytriton", "--port", "8000"]) == 2
    err = capsys.readouterr().err
    assert "--backend pytriton needs nvidia-pytriton" in err and "pip install" in err
