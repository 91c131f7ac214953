"""A plain ``pip install ganrt`` runs every command the README shows.

Builds the sdist and, from it, the wheel with ``python -m build`` (the CUDA kernels off: this checks
packaging, not kernels), installs the wheel without extras into a fresh virtual environment (torch pinned
first, so the local CPU wheel is used instead of gigabytes of CUDA wheels), and runs ``ganrt --help``,
``export`` (the bundled recipe, and ``--precision fp16``), ``bench`` and ``serve`` there on a tiny model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("pix2pix", "cyclegan", "vae", "dcgan")
TORCH_PIN = "torch==2.13.0"

TINY_RUN = """
import sys, torch
from ganrt.models import build_net, save_run
torch.manual_seed(0)
nets = {"G": build_net({"arch": "unet_32", "ngf": 8}),
        "D": build_net({"arch": "patchgan", "in_channels": 6, "ndf": 8})}
save_run(sys.argv[1], {"family": "pix2pix", "image_size": 32, "in_channels": 3, "out_channels": 3,
                       "nets": {k: dict(v.spec) for k, v in nets.items()}}, nets)
"""


def _run(
    args: list[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.mark.slow
def test_wheel_without_extras_runs_every_command(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    env = {**os.environ, "GANRT_CUDA": "OFF"}
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], timeout=1800, env=env)
    (sdist,) = dist.glob("ganrt-*.tar.gz")
    (wheel,) = dist.glob("ganrt-*.whl")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    for family in RECIPES:
        assert any(n.endswith(f"ganrt/export/recipes/{family}.toml") for n in names), (
            f"sdist lacks {family}.toml"
        )
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    for family in RECIPES:
        assert f"ganrt/export/recipes/{family}.toml" in names, f"wheel lacks the {family} recipe"
    assert any(n.startswith("ganrt/_C") for n in names)
    # The web page of ganrt serve ships as package data too: every file its page route serves.
    for page_file in ("index.html", "app.js", "style.css"):
        assert f"ganrt/serve/static/{page_file}" in names, f"wheel lacks the web page's {page_file}"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    py, ganrt = str(venv / "bin" / "python"), str(venv / "bin" / "ganrt")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([py, "-m", "pip", "install", "--quiet", TORCH_PIN], timeout=1200, env=clean)
    _run([py, "-m", "pip", "install", "--quiet", str(wheel)], timeout=1800, env=clean)

    work = tmp_path / "work"  # not the checkout: the installed package must not see the source tree
    work.mkdir()
    assert "export" in _run([ganrt, "--help"], timeout=120, env=clean, cwd=work)
    source = _run(
        [
            py,
            "-c",
            "from ganrt.export.recipe import load_recipe; print(load_recipe(None, 'cyclegan').source)",
        ],
        timeout=120,
        env=clean,
        cwd=work,
    ).strip()
    assert source.endswith("ganrt/export/recipes/cyclegan.toml") and str(venv) in source

    run = work / "run"
    _run([py, "-c", TINY_RUN, str(run)], timeout=300, env=clean, cwd=work)
    _run([ganrt, "export", str(run), "-q"], timeout=600, env=clean, cwd=work)
    _run([ganrt, "export", str(run), "--precision", "fp16", "-q"], timeout=600, env=clean, cwd=work)
    onnx_file = run / "export" / "pix2pix.onnx"
    assert onnx_file.is_file() and (run / "export" / "pix2pix.fp16.onnx").is_file()

    report = work / "bench.json"
    _run(
        [
            ganrt,
            "bench",
            str(onnx_file),
            "--backends",
            "onnxruntime,ganrt",
            "--warmup-s",
            "0",
            "--duration-s",
            "0.2",
            "--min-iters",
            "2",
            "--quiet",
            "--json",
            str(report),
        ],
        timeout=600,
        env=clean,
        cwd=work,
    )
    assert any(r["status"] == "ok" for r in json.loads(report.read_text())["results"])

    log = work / "serve.log"
    with open(log, "wb") as err:
        server = subprocess.Popen(
            [ganrt, "serve", str(onnx_file), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=clean,
            cwd=work,
        )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "listening on http://" in line, f"serve printed {line!r}: {log.read_text()}"
        url = line.split("listening on ", 1)[1].split()[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"{url}/v2/models/pix2pix", timeout=5) as response:
            assert json.load(response)["inputs"][0]["name"] == "image"
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(60)
        server.stdout.close()
    assert status == 0, log.read_text()
