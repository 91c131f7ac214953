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


def test_instances_split_the_threads_and_share_the_auto_choice(onnx_models):
    """``--instances 2`` with the default ``--runtime auto``: every instance gets cores / 2 threads, the
    backend trial runs once at that thread count and the other instance reuses its record."""
    import argparse

    from ganrt.backends.device import physical_cores
    from ganrt.serve.cli import _load_instances, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    path = onnx_models["pix2pix"]
    args = parser.parse_args([f"wide={path}", "--instances", "2"])
    assert args.runtime == "auto" and args.threads is None
    models: list = []
    try:
        _load_instances(models, path, args)
        infos = [m.info() for m in models]
    finally:
        for model in models:
            model.close()
    threads = max(1, physical_cores() // 2)
    assert len(infos) == 2
    for info in infos:
        assert info["threads"] == threads and info["selection"]["key"]["threads"] == threads
        assert info["selection"]["winner"] == {"backend": info["backend"], "precision": info["precision"]}
    assert infos[1]["selection"]["cache"]["status"] == "hit"
    assert infos[1]["selection"]["candidates"] == infos[0]["selection"]["candidates"]


def test_server_serves_the_auto_choice(start_server, onnx_models):
    """A server with the default runtime answers from the backend ``ganrt.load`` picks at its thread count."""
    import httpx
    import numpy as np

    import ganrt
    from ganrt.backends.device import physical_cores

    path = onnx_models["pix2pix"]
    srv = start_server([f"pix2pix={path}", "--instances", "2"])
    meta = httpx.get(f"{srv.url}/v2/models/pix2pix").json()
    # The server's trial (same cache folder, inherited) decided; in-process the record is a hit.
    with ganrt.load(path, threads=max(1, physical_cores() // 2)) as model:
        assert model.info()["selection"]["cache"]["status"] == "hit"
        assert meta["platform"] == f"ganrt_{model.backend}"
        image = np.random.default_rng(3).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
        expected = model.infer({"image": image})["output"]
    tensor = {"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": image.ravel().tolist()}
    body = {"inputs": [tensor]}
    response = httpx.post(f"{srv.url}/v2/models/pix2pix/infer", json=body, timeout=60)
    assert response.status_code == 200, response.text
    got = np.asarray(response.json()["outputs"][0]["data"], np.float32).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
