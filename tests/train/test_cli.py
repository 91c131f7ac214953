"""``ganrt train`` / ``ganrt import-upstream`` command lines: outputs, user errors, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganrt.cli import main
from ganrt.models import Run
from tests.models import upstream_arch
from tests.tolerances import UPSTREAM_ATOL

TINY_DCGAN = ["dcgan", "--data", "builtin:digits", "--image-size", "16", "--ngf", "8", "--ndf", "8",
              "--latent-dim", "8", "--batch-size", "4", "--no-progress"]


def _train(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["train", *args])
    captured = capsys.readouterr()
    return rc, captured.err


def test_train_writes_a_complete_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    rc, _ = _train(capsys, *TINY_DCGAN, "--out", str(out), "--steps", "4", "--sample-every", "2", "--conditional",
                   "--gan-mode", "lsgan", "--no-fused")
    assert rc == 0
    run = Run.load(out)
    assert run.family == "dcgan" and run.config["train"]["completed_steps"] == 4
    assert run.config["train"]["gan_mode"] == "lsgan" and run.nets["G"]["num_classes"] == 10
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[0] == {"step": 0, "run": {"precision": run.config["train"]["precision"], "device": "cpu",
                                         "fused": False, "resumed": False}}
    assert [e["step"] for e in log[1:]] == [1, 2, 3, 4] and set(log[1]["losses"]) == {"D", "G"}
    generator = run.generator()
    with torch.no_grad():
        images = generator(torch.zeros(2, 8), torch.tensor([1, 2]))
    assert images.shape == (2, 1, 16, 16)


def test_epochs_set_the_number_of_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(6):
        (tmp_path / "data").mkdir(exist_ok=True)
        Image.new("RGB", (20, 20), (40 * i, 10, 200)).save(tmp_path / "data" / f"{i}.png")
    rc, err = _train(capsys, "vae", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--epochs", "2",
                     "--batch-size", "4", "--image-size", "16", "--ngf", "4", "--latent-dim", "4", "--no-progress")
    assert rc == 0, err
    assert Run.load(tmp_path / "run").config["train"]["steps"] == 3  # ceil(2 * 6 / 4)


def test_existing_run_dir_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert _train(capsys, *TINY_DCGAN, "--out", str(out), "--steps", "2")[0] == 0
    before = (out / "weights.safetensors").read_bytes()
    rc, err = _train(capsys, *TINY_DCGAN, "--out", str(out), "--steps", "2", "--seed", "1")
    assert rc == 2 and "already exists" in err and "--resume" in err and "--force" in err
    assert (out / "weights.safetensors").read_bytes() == before
    (out / "notes.txt").write_text("mine")
    rc, err = _train(capsys, *TINY_DCGAN, "--out", str(out), "--steps", "2", "--seed", "1", "--force")
    assert rc == 0, err
    assert (out / "weights.safetensors").read_bytes() != before
    assert (out / "notes.txt").read_text() == "mine", "--force removes ganrt's outputs only"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["vae", "--data", "{tmp}/missing"], r"dataset path '.*missing' does not exist"),
        (["vae"], r"give the training data"),
        (["vae", "--data", "builtin:digits", "--lambda-l1", "3"], r"--lambda-l1 does not apply to vae"),
        (["pix2pix", "--data", "builtin:digits"], r"builtin:digits provides kinds folder, labelled; got kind 'aligned'"),
        (["vae", "--data", "builtin:faces", "--resume"], r"cannot resume: run directory .* does not exist"),
        (["dcgan", "--data", "builtin:digits", "--gan-mode", "hinge"], r"gan_mode must be one of vanilla, lsgan"),
        (["vae", "--data", "builtin:faces", "--steps", "0"], r"steps must be a positive integer, got 0"),
        (["vae", "--data", "builtin:faces", "--device", "cuda:0"], r"device 'cuda:0' requested but torch sees no"),
    ],
    ids=["missing-data", "no-data", "foreign-option", "wrong-kind", "resume-nothing", "bad-gan-mode", "zero-steps",
         "no-cuda"],
)
def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                  message: str) -> None:
    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    steps = [] if "--steps" in argv else ["--steps", "2"]
    rc, err = _train(capsys, *argv, "--out", str(tmp_path / "run"), *steps)
    assert rc == 2
    assert err.startswith("ganrt train: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists(), "a run that fails to start leaves nothing behind"


def test_steps_and_epochs_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "vae", "--out", "x", "--steps", "2", "--epochs", "1"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganrt", "train", *TINY_DCGAN, "--out", str(out), "--steps", "100000",
         "--sample-every", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        log = out / "log.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and len(log.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"training exited early: {proc.communicate()}"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "checkpoint saved at step" in err and "--resume" in err
    latest = json.loads((out / "train_state" / "latest.json").read_text())
    steps_logged = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert latest["step"] >= 3 and steps_logged[-1] == latest["step"]
    assert Run.load(out).config["train"]["completed_steps"] == latest["step"]
    # Resume to a shorter total: continues from the checkpoint, two more steps.
    rc = main(["train", "dcgan", "--out", str(out), "--resume", "--steps", str(latest["step"] + 2), "--no-progress"])
    assert rc == 0
    assert Run.load(out).config["train"]["completed_steps"] == latest["step"] + 2


def test_import_upstream_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["import-upstream", str(tmp_path / "latest_net_G.pth"), "--netG", "unet_256", "-o", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("ganrt import-upstream: error: ") and "latest_net_G.pth" in err and "does not exist" in err


def test_import_upstream_cli_produces_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = upstream_arch
    ref = arch.build("resnet_6blocks", ngf=8, norm="instance", dropout=False)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    arch.randomize(ref, torch.Generator().manual_seed(1), x)
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), ckpt)
    out = tmp_path / "imported"
    # CycleGAN defaults for ResNets: instance norm, no dropout.
    assert main(["import-upstream", str(ckpt), "--netG", "resnet_6blocks", "--ngf", "8", "-o", str(out)]) == 0
    assert "norm instance, dropout False" in capsys.readouterr().out
    run = Run.load(out)
    assert run.family == "cyclegan"
    with torch.no_grad():
        torch.testing.assert_close(run.generator()(x), ref.eval()(x), atol=UPSTREAM_ATOL, rtol=0)
    assert main(["import-upstream", str(ckpt), "--netG", "resnet_6blocks", "--ngf", "8", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["import-upstream", str(ckpt), "--netG", "resnet_6blocks", "--ngf", "16", "-o", str(out),
                 "--force"]) == 2
    assert "ngf" in capsys.readouterr().err
