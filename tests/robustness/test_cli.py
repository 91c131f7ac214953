"""Bad inputs to the real ``ganrt`` CLI, one row each: exit status 2, one line on stderr naming the problem,
no traceback, and no user file changed.

Rows run ``ganrt.cli.main`` in this process; ``serve`` rows run ``python -m ganrt serve`` in a subprocess (a
row that wrongly passed validation would otherwise start a server here).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganrt.cli import main
from tests.robustness.conftest import copy_of, png_bomb, snapshot, write_png

Setup = Callable[[Path, dict[str, Path]], dict[str, str]]


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    argv: tuple[str, ...]
    match: str
    setup: Setup | None = None
    code: int = 2


# ------------------------------------------------------------------------------------------ setups
def _file(name: str, content: bytes = b"user data") -> Setup:
    def setup(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
        (tmp / name).write_bytes(content)
        return {}

    return setup


def _folder(name: str) -> Setup:
    def setup(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
        (tmp / name).mkdir()
        (tmp / name / "keep.txt").write_text("a user's file")
        return {}

    return setup


def _checkpoint(run: Path) -> Path:
    pointer = json.loads((run / "train_state" / "latest.json").read_text())
    return run / "train_state" / pointer["checkpoint"]


def _resume_state(edit: Callable[[Path], None]) -> Setup:
    """A copy of the trained run whose checkpoint ``edit`` corrupts."""

    def setup(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
        run = copy_of(m["trained"], tmp / "run")
        edit(run)
        return {}

    return setup


def _truncate(name: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        path = _checkpoint(run) / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return edit


def _state_json(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """``change`` edits the parsed state.json in place."""

    def edit(run: Path) -> None:
        path = _checkpoint(run) / "state.json"
        state = json.loads(path.read_text())
        change(state)
        path.write_text(json.dumps(state))

    return edit


def _text(name: str, text: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        target = run / "train_state" / "latest.json" if name == "latest.json" else _checkpoint(run) / name
        target.write_text(text)

    return edit


def _nan_weights(key: str = "pix2pix_run") -> Setup:
    """A copy of a run whose weights are all NaN (the safetensors file is otherwise valid)."""

    def setup(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
        from safetensors import safe_open
        from safetensors.torch import save_file

        run = copy_of(m[key], tmp / "nan_run")
        path = run / "weights.safetensors"
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        save_file(
            {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in tensors.items()},
            str(path),
            metadata=meta,
        )
        return {}

    return setup


def _tampered_run(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
    """One weight changed, the recorded digest kept: what bit rot or an edit leaves."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    run = copy_of(m["pix2pix_run"], tmp / "tampered_run")
    path = run / "weights.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = sorted(k for k in tensors if k.startswith("G.") and tensors[k].is_floating_point())[0]
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] += 0.5
    save_file(tensors, str(path), metadata=meta)
    return {}


def _tampered_onnx(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(m["pix2pix_onnx"]))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(init).copy()
    array.reshape(-1)[0] += 0.5
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(model, tmp / "tampered.onnx")
    return {}


def _nan_upstream(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
    from tests.models import upstream_arch

    net = upstream_arch.build("unet_128", ngf=8, norm="batch", dropout=True)
    torch.save(
        {
            k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
            for k, v in net.state_dict().items()
        },
        tmp / "latest_net_G.pth",
    )
    return {}


def _existing_triton_version(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
    version = tmp / "repo" / "pix2pix" / "1"
    version.mkdir(parents=True)
    (version / "model.onnx").write_bytes(b"the user's current model")
    (tmp / "repo" / "pix2pix" / "2").mkdir()
    (tmp / "repo" / "pix2pix" / "2" / "model.onnx").write_bytes(b"another version")
    (tmp / "repo" / "pix2pix" / "notes.txt").write_text("the user's notes")
    return {}


def _recipe(text: str) -> Setup:
    return _file("recipe.toml", text.encode())


def _float_tiff(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
    Image.fromarray(np.full((32, 32), 7.0, np.float32), "F").save(tmp / "float.tif")
    return {}


def _photo(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
    write_png(tmp / "photo.png", np.zeros((32, 32, 3), np.uint8))
    return {}


def _bomb(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
    png_bomb(tmp / "bomb.png")
    return {}


def _both(*setups: Setup) -> Setup:
    def setup(tmp: Path, m: dict[str, Path]) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in setups:
            out.update(s(tmp, m))
        return out

    return setup


NAN_NUMBER = r"must be a finite number, got '(nan|inf|-inf)'"
TRAIN = ("train", "dcgan", "--data", "builtin:digits", "--out", "{tmp}/new_run", "--steps", "2")
RESUME = ("train", "dcgan", "--out", "{tmp}/run", "--resume", "--no-progress")

ROWS: list[Row] = [
    # --- train: non-finite numbers, wrong kinds of paths, corrupt resume state
    Row("train-lr-nan", (*TRAIN, "--lr", "nan"), rf"argument --lr: {NAN_NUMBER}"),
    Row("train-lr-inf", (*TRAIN, "--lr", "inf"), rf"argument --lr: {NAN_NUMBER}"),
    Row("train-lr-text", (*TRAIN, "--lr", "fast"), r"argument --lr: expected a number, got 'fast'"),
    Row(
        "train-lambda-l1-nan",
        (
            "train",
            "pix2pix",
            "--data",
            "builtin:edges2photos",
            "--out",
            "{tmp}/r",
            "--steps",
            "1",
            "--lambda-l1",
            "nan",
        ),
        rf"argument --lambda-l1: {NAN_NUMBER}",
    ),
    Row(
        "train-lambda-cycle-inf",
        ("train", "cyclegan", "--data", "{tmp}", "--out", "{tmp}/r", "--steps", "1", "--lambda-cycle=-inf"),
        rf"argument --lambda-cycle: {NAN_NUMBER}",
    ),
    Row(
        "train-lambda-identity-nan",
        (
            "train",
            "cyclegan",
            "--data",
            "{tmp}",
            "--out",
            "{tmp}/r",
            "--steps",
            "1",
            "--lambda-identity",
            "nan",
        ),
        rf"argument --lambda-identity: {NAN_NUMBER}",
    ),
    Row("train-lambda-gp-inf", (*TRAIN, "--lambda-gp", "inf"), rf"argument --lambda-gp: {NAN_NUMBER}"),
    Row("train-beta1-nan", (*TRAIN, "--beta1", "nan"), rf"argument --beta1: {NAN_NUMBER}"),
    Row("train-decay-start-nan", (*TRAIN, "--decay-start", "nan"), rf"argument --decay-start: {NAN_NUMBER}"),
    Row(
        "train-out-is-a-file",
        ("train", "dcgan", "--data", "builtin:digits", "--out", "{tmp}/f", "--steps", "2"),
        r"output path '.*/f' exists and is not a directory",
        _file("f"),
    ),
    Row(
        "train-out-not-empty",
        (*TRAIN[:5], "{tmp}/keep", "--steps", "2"),
        r"already exists and is not empty.*--force",
        _folder("keep"),
    ),
    Row("train-steps-zero", (*TRAIN[:-1], "0"), r"steps must be a positive integer, got 0"),
    Row(
        "resume-truncated-state",
        RESUME,
        r"state\.safetensors' is unreadable \(truncated or corrupt\?\)",
        _resume_state(_truncate("state.safetensors")),
    ),
    Row(
        "resume-truncated-weights",
        RESUME,
        r"weights\.safetensors' is unreadable \(truncated or corrupt\?\)",
        _resume_state(_truncate("weights.safetensors")),
    ),
    Row(
        "resume-state-json-garbage",
        RESUME,
        r"state\.json' is unreadable",
        _resume_state(_text("state.json", "{not json")),
    ),
    Row(
        "resume-state-json-list",
        RESUME,
        r"state\.json' must hold a JSON object, got list",
        _resume_state(_text("state.json", "[1, 2]")),
    ),
    Row(
        "resume-state-json-incomplete",
        RESUME,
        r"not a complete training state \(missing or invalid: optimizers\)",
        _resume_state(_state_json(lambda s: s.pop("optimizers"))),
    ),
    Row(
        "resume-state-json-bad-step",
        RESUME,
        r"'step' must be a non-negative integer, got 'two'",
        _resume_state(_state_json(lambda s: s.update(step="two"))),
    ),
    Row(
        "resume-state-json-bad-lr",
        RESUME,
        r"lr must be a number, got 'abc'",
        _resume_state(_state_json(lambda s: s["options"].update(lr="abc"))),
    ),
    Row(
        "resume-state-json-nan-lr",
        RESUME,
        r"lr must be a finite number, got nan",
        _resume_state(_state_json(lambda s: s["options"].update(lr=float("nan")))),
    ),
    Row(
        "resume-state-json-bad-total",
        RESUME,
        r"'total_steps' must be a positive integer, got -3",
        _resume_state(_state_json(lambda s: s.update(total_steps=-3))),
    ),
    Row(
        "resume-optimizer-state-mangled",
        RESUME,
        r"cannot resume: the checkpoint in .* does not fit this run",
        _resume_state(_state_json(lambda s: s["optimizers"].update(G={"param_groups": "x", "scalars": {}}))),
    ),
    Row(
        "resume-latest-points-nowhere",
        RESUME,
        r"step_99999999/state\.json' is missing",
        _resume_state(_text("latest.json", '{"checkpoint": "step_99999999"}')),
    ),
    Row(
        "resume-latest-escapes",
        RESUME,
        r"names no checkpoint folder \(got '\.\./\.\./etc'\)",
        _resume_state(_text("latest.json", '{"checkpoint": "../../etc"}')),
    ),
    # --- import-upstream
    Row(
        "import-nan-checkpoint",
        (
            "import-upstream",
            "{tmp}/latest_net_G.pth",
            "--netG",
            "unet_128",
            "--ngf",
            "8",
            "--out",
            "{tmp}/imported",
        ),
        r"tensors hold NaN or infinite values",
        _nan_upstream,
    ),
    Row(
        "import-missing-file",
        ("import-upstream", "{tmp}/none.pth", "--netG", "unet_128", "--out", "{tmp}/i"),
        r"none\.pth",
    ),
    Row(
        "import-garbage",
        ("import-upstream", "{tmp}/g.pth", "--netG", "unet_128", "--out", "{tmp}/i"),
        r"g\.pth: not a readable PyTorch checkpoint \(truncated or corrupt\?\)",
        _file("g.pth"),
    ),
    # --- export: wrong kinds of paths caught before tracing, data kept, bad recipes, bad weights
    Row(
        "export-output-is-a-folder",
        ("export", "{pix2pix_run}", "-o", "{tmp}/out", "-q"),
        r"-o/--output '.*/out' is a folder; give a file path",
        _folder("out"),
    ),
    Row(
        "export-output-below-a-file",
        ("export", "{pix2pix_run}", "-o", "{tmp}/f/model.onnx", "-q"),
        r"'.*/f' is a file, not a folder",
        _file("f"),
    ),
    Row(
        "export-repo-is-a-file",
        ("export", "{pix2pix_run}", "--format", "triton", "--repo", "{tmp}/f", "-q"),
        r"--repo '.*/f' is a file; give a folder",
        _file("f"),
    ),
    Row(
        "export-triton-version-exists",
        ("export", "{pix2pix_run}", "--format", "triton", "--repo", "{tmp}/repo", "-q"),
        r"version 1 of model 'pix2pix' already exists .*pass --force",
        _existing_triton_version,
    ),
    Row(
        "export-recipe-missing",
        ("export", "{pix2pix_run}", "--recipe", "{tmp}/none.toml", "-q"),
        r"recipe .*none\.toml does not exist",
    ),
    Row(
        "export-recipe-nan-threshold",
        ("export", "{pix2pix_run}", "--recipe", "{tmp}/recipe.toml", "-q"),
        r"parity\.fp32\.max_abs must be a finite number, got nan",
        _recipe("[parity.fp32]\nmax_abs = nan\n"),
    ),
    Row(
        "export-recipe-not-toml",
        ("export", "{pix2pix_run}", "--recipe", "{tmp}/recipe.toml", "-q"),
        r"is not readable TOML",
        _recipe("[parity\nmax_abs = 1"),
    ),
    Row(
        "export-nan-weights",
        ("export", "{tmp}/nan_run", "-o", "{tmp}/x.onnx", "-q"),
        r"weights of net 'G' hold NaN or infinite values",
        _nan_weights(),
    ),
    Row(
        "export-opset",
        ("export", "{pix2pix_run}", "--opset", "99", "-q"),
        r"opset must be in \[18, 24\], got 99",
    ),
    Row(
        "export-batch-range",
        ("export", "{pix2pix_run}", "--batch", "4:2:1", "-q"),
        r"batch must satisfy 1 <= min <= opt <= max, got 4:2:1",
    ),
    Row("export-not-a-run", ("export", "{tmp}", "-q"), r"config\.json: missing"),
    # --- lint
    Row(
        "lint-empty-file",
        ("lint", "{tmp}/empty.onnx"),
        r"is not an ONNX model: it has no IR version or graph",
        _file("empty.onnx", b""),
    ),
    Row(
        "lint-garbage",
        ("lint", "{tmp}/g.onnx"),
        r"is not a readable ONNX model",
        _file("g.onnx", b"\xff" * 64),
    ),
    Row("lint-missing", ("lint", "{tmp}/none.onnx"), r"none\.onnx does not exist"),
    # --- translate
    Row(
        "translate-decompression-bomb",
        ("translate", "{pix2pix_onnx}", "{tmp}/bomb.png", "-o", "{tmp}/out"),
        r"bomb\.png: image has more than the limit of 16777216 \(--max-pixels\)",
        _bomb,
    ),
    Row(
        "translate-over-own-limit",
        ("translate", "{pix2pix_onnx}", "{tmp}/photo.png", "-o", "{tmp}/out", "--max-pixels", "100"),
        r"more than the limit of 100 \(--max-pixels\)",
        _photo,
    ),
    Row(
        "translate-max-pixels-zero",
        ("translate", "{pix2pix_onnx}", "{tmp}/photo.png", "-o", "{tmp}/o", "--max-pixels", "0"),
        r"argument --max-pixels: must be >= 1, got 0",
        _photo,
    ),
    Row(
        "translate-out-is-a-file",
        ("translate", "{pix2pix_onnx}", "{tmp}/photo.png", "-o", "{tmp}/f"),
        r"-o/--out-dir '.*/f' is a file; give a folder",
        _both(_photo, _file("f")),
    ),
    Row(
        "translate-not-an-image",
        ("translate", "{pix2pix_onnx}", "{tmp}/x.png", "-o", "{tmp}/out"),
        r"x\.png: cannot decode as an image",
        _file("x.png", b"\x89PNG not really"),
    ),
    Row(
        "translate-float-tiff-range",
        ("translate", "{pix2pix_onnx}", "{tmp}/float.tif", "-o", "{tmp}/out"),
        r"float image with values in \[7, 7\]; ganrt reads float images as \[0, 1\]",
        _float_tiff,
    ),
    Row(
        "translate-threads-huge",
        ("translate", "{pix2pix_onnx}", "{tmp}/photo.png", "-o", "{tmp}/out", "--threads", "100000"),
        r"threads must be at most \d+ \(the logical CPUs of this machine\), got 100000",
        _photo,
    ),
    Row(
        "translate-threads-zero",
        ("translate", "{pix2pix_onnx}", "{tmp}/photo.png", "-o", "{tmp}/out", "--threads", "0"),
        r"threads must be a positive integer or None, got 0",
        _photo,
    ),
    Row(
        "translate-sampler",
        ("translate", "{dcgan_onnx}", "{tmp}/photo.png", "-o", "{tmp}/out"),
        r"dcgan sample model; use `ganrt sample`",
        _photo,
    ),
    # --- sample: absurd sizes, wrong kinds of paths
    Row(
        "sample-huge-n",
        ("sample", "{dcgan_onnx}", "-n", "100000000", "-o", "{tmp}/g.png"),
        r"-n must be in 1\.\.65536 \(samples per grid\), got 100000000",
    ),
    Row(
        "sample-negative-n",
        ("sample", "{dcgan_onnx}", "-n", "-5", "-o", "{tmp}/g.png"),
        r"-n must be in 1\.\.65536",
    ),
    Row(
        "sample-out-is-a-folder",
        ("sample", "{dcgan_onnx}", "-o", "{tmp}/out"),
        r"-o/--output '.*/out' is a folder",
        _folder("out"),
    ),
    Row(
        "sample-unknown-extension",
        ("sample", "{dcgan_onnx}", "-o", "{tmp}/grid.xyz"),
        r"unknown image extension '\.xyz'",
    ),
    Row(
        "sample-labels-unconditional",
        ("sample", "{dcgan_onnx}", "-n", "2", "--labels", "1", "-o", "{tmp}/g.png"),
        r"labels given, but .* is not class-conditional",
    ),
    # --- info: corrupt, empty, NaN, tampered
    Row(
        "info-empty-onnx",
        ("info", "{tmp}/empty.onnx"),
        r"empty\.onnx: not a loadable ONNX model",
        _file("empty.onnx", b""),
    ),
    Row(
        "info-truncated-onnx",
        ("info", "{tmp}/cut.onnx"),
        r"cut\.onnx: not a loadable ONNX model",
        lambda tmp, m: (tmp / "cut.onnx").write_bytes(m["pix2pix_onnx"].read_bytes()[:2000]) and {},
    ),
    Row(
        "info-nan-run",
        ("info", "{tmp}/nan_run"),
        r"weights of net 'G' hold NaN or infinite values",
        _nan_weights(),
    ),
    Row(
        "info-verify-tampered-onnx",
        ("info", "{tmp}/tampered.onnx", "--verify"),
        r"MISMATCH: the weights differ from those recorded at export",
        _tampered_onnx,
    ),
    Row(
        "info-verify-tampered-run",
        ("info", "{tmp}/tampered_run", "--verify"),
        r"MISMATCH: the weights differ from those recorded at export",
        _tampered_run,
    ),
    Row(
        "info-pickle",
        ("info", "{tmp}/model.pt"),
        r"model\.pt: not a readable PyTorch checkpoint",
        _file("model.pt"),
    ),
    # --- bench: corrupt models, non-finite numbers, wrong kinds of paths (all before measuring)
    Row(
        "bench-corrupt-onnx",
        ("bench", "{tmp}/bad.onnx", "--quiet"),
        r"bad\.onnx: not a readable ONNX model \(truncated or corrupt\?\)",
        _file("bad.onnx", b"\x08\xff" * 40),
    ),
    Row(
        "bench-empty-onnx",
        ("bench", "{tmp}/empty.onnx", "--quiet"),
        r"not an ONNX model \(no IR version or graph",
        _file("empty.onnx", b""),
    ),
    Row(
        "bench-json-is-a-folder",
        ("bench", "{pix2pix_onnx}", "--json", "{tmp}/out", "--quiet"),
        r"--json '.*/out' is a folder",
        _folder("out"),
    ),
    Row(
        "bench-plot-below-a-file",
        ("bench", "{pix2pix_onnx}", "--plot", "{tmp}/f/p.png", "--quiet"),
        r"'.*/f' is a file, not a folder",
        _file("f"),
    ),
    Row(
        "bench-duration-nan",
        ("bench", "{pix2pix_onnx}", "--duration-s", "nan"),
        rf"argument --duration-s: {NAN_NUMBER}",
    ),
    Row(
        "bench-warmup-inf",
        ("bench", "{pix2pix_onnx}", "--warmup-s", "inf"),
        rf"argument --warmup-s: {NAN_NUMBER}",
    ),
    Row(
        "bench-threads-huge",
        ("bench", "{pix2pix_onnx}", "--threads", "100000", "--quiet"),
        r"threads must be at most \d+ \(the logical CPUs of this machine\)",
    ),
]

SERVE = ("serve", "{pix2pix_onnx}")
SERVE_ROWS: list[Row] = [
    Row("serve-timeout-nan", (*SERVE, "--timeout-s", "nan"), rf"argument --timeout-s: {NAN_NUMBER}"),
    Row("serve-max-body-nan", (*SERVE, "--max-body-mb", "nan"), rf"argument --max-body-mb: {NAN_NUMBER}"),
    Row("serve-max-delay-inf", (*SERVE, "--max-delay-ms", "inf"), rf"argument --max-delay-ms: {NAN_NUMBER}"),
    Row(
        "serve-max-inflight-nan",
        (*SERVE, "--max-inflight-mb", "nan"),
        rf"argument --max-inflight-mb: {NAN_NUMBER}",
    ),
    Row("serve-timeout-zero", (*SERVE, "--timeout-s", "0"), r"argument --timeout-s: must be > 0, got 0"),
    Row("serve-threads-huge", (*SERVE, "--threads", "100000"), r"--threads must be at most \d+"),
    Row("serve-instances-huge", (*SERVE, "--instances", "100000"), r"--instances must be at most \d+"),
    Row("serve-port", (*SERVE, "--port", "70000"), r"--port must be in 0\.\.65535, got 70000"),
    Row(
        "serve-max-sample-huge",
        (*SERVE, "--max-sample", "100000000"),
        r"--max-sample must be at most 65536 \(the runtime's limit per call\), got 100000000",
    ),
    Row("serve-missing-model", ("serve", "{tmp}/none.onnx"), r"model 'none': .*none\.onnx does not exist"),
    Row("serve-corrupt-model", ("serve", "{tmp}/bad.onnx"), r"cannot load model 'bad'", _file("bad.onnx")),
]


def _fill(argv: tuple[str, ...], tmp: Path, models: dict[str, Path]) -> list[str]:
    names = {k: str(v) for k, v in models.items()}
    return [a.format(tmp=tmp, **names) for a in argv]


def _check(row: Row, code: int, err: str) -> None:
    lines = err.strip().splitlines()
    assert code == row.code, f"exit {code}, expected {row.code}: {err}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    assert re.search(row.match, lines[0]), f"{lines[0]!r} does not match {row.match!r}"


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_cli_bad_input(
    row: Row, models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    if row.setup is not None:
        row.setup(user, models)
    before = snapshot(user, models["root"])
    try:
        code = main(_fill(row.argv, user, models))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    _check(row, code, capsys.readouterr().err)
    assert snapshot(user, models["root"]) == before, "a user file changed, appeared or disappeared"


@pytest.mark.parametrize("row", SERVE_ROWS, ids=[r.id for r in SERVE_ROWS])
def test_serve_bad_input(row: Row, models: dict[str, Path], tmp_path: Path) -> None:
    if row.setup is not None:
        row.setup(tmp_path, models)
    before = snapshot(tmp_path, models["root"])
    done = subprocess.run(
        [sys.executable, "-m", "ganrt", *_fill(row.argv, tmp_path, models)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _check(row, done.returncode, done.stderr)
    assert snapshot(tmp_path, models["root"]) == before


def test_triton_export_keeps_other_versions_and_files(models: dict[str, Path], tmp_path: Path) -> None:
    """The data-loss row's other half: with --force only version 1's model file and config.pbtxt change."""
    _existing_triton_version(tmp_path, models)
    keep = {p: p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file() and "/1/" not in str(p)}
    argv = [
        "export",
        str(models["pix2pix_run"]),
        "--format",
        "triton",
        "--repo",
        str(tmp_path / "repo"),
        "--force",
        "-q",
    ]
    assert main(argv) == 0
    for path, data in keep.items():
        assert path.read_bytes() == data
    model_dir = tmp_path / "repo" / "pix2pix"
    assert (model_dir / "1" / "model.onnx").read_bytes() != b"the user's current model"
    assert (model_dir / "config.pbtxt").is_file()
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "2", "config.pbtxt", "notes.txt"]
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["pix2pix"]  # no staging folder left


def test_resume_and_success_remove_orphan_temporaries(models: dict[str, Path], tmp_path: Path) -> None:
    """A killed run leaves ``.name.XXXXXXXX.tmp`` files; resuming removes them (and only them)."""
    run = copy_of(models["trained"], tmp_path / "run")
    orphans = [
        run / ".weights.safetensors.abcd1234.tmp",
        run / "samples" / ".step_00000004.png.x_y_z_12.tmp",
        run / "train_state" / ".latest.json.qwertyui.tmp",
    ]
    for path in orphans:
        path.write_bytes(b"half-written")
    (run / "train_state" / ".step_00000004.k2j3h4g5.tmp").mkdir()
    (run / "notes.tmp").write_text("a user's file that merely ends in .tmp")
    assert main(["train", "dcgan", "--out", str(run), "--resume", "--steps", "3", "--no-progress"]) == 0
    assert not any(p.exists() for p in orphans)
    assert not (run / "train_state" / ".step_00000004.k2j3h4g5.tmp").exists()
    assert (run / "notes.tmp").read_text() == "a user's file that merely ends in .tmp"
    assert not [p for p in run.rglob("*.tmp") if p.name != "notes.tmp"]


def test_row_count() -> None:
    """The closing note reports this figure; keep the tables from shrinking unnoticed."""
    from tests.robustness import test_api, test_server

    total = len(ROWS) + len(SERVE_ROWS) + len(test_api.ROWS) + len(test_server.ROWS)
    assert total >= 100, total
