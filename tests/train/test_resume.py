"""Checkpoints: an interrupted and resumed run reaches exactly the weights of an uninterrupted one."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file

from ganrt.models import Run
from ganrt.train import TrainError, train

TINY: dict[str, dict[str, Any]] = {
    # dropout on: the resumed run must replay dropout masks too
    "pix2pix": {"data": "builtin:edges2photos", "image_size": 64, "ngf": 8, "ndf": 8, "dropout": True},
    # a pool smaller than the run: resumed runs must restore its contents and its random swaps
    "cyclegan": {"data": "builtin:edges2photos", "image_size": 32, "ngf": 8, "ndf": 8, "netG": "resnet_6blocks",
                 "pool_size": 3},
    "vae": {"data": "builtin:faces", "image_size": 16, "ngf": 8, "latent_dim": 8, "batch_size": 4},
    "dcgan": {"data": "builtin:digits", "image_size": 16, "ngf": 8, "ndf": 8, "latent_dim": 8, "batch_size": 4,
              "conditional": True},
}
STEPS, STOP_AT = 7, 5


def _interrupt_at(step: int) -> Callable[[int, dict[str, float]], None]:
    def on_step(done: int, losses: dict[str, float]) -> None:
        if done == step:
            # A real SIGINT, handled by train's own handler exactly like Ctrl-C.
            signal.raise_signal(signal.SIGINT)

    return on_step


def _state(run: Path) -> dict[str, torch.Tensor]:
    latest = json.loads((run / "train_state" / "latest.json").read_text())
    folder = run / "train_state" / latest["checkpoint"]
    return {**load_file(str(run / "weights.safetensors")),
            **{f"state.{k}": v for k, v in load_file(str(folder / "state.safetensors")).items()}}


@pytest.mark.parametrize("family", list(TINY))
def test_interrupted_and_resumed_run_matches_uninterrupted(family: str, precision: str, tmp_path: Path) -> None:
    kw = {**TINY[family], "steps": STEPS, "sample_every": 2, "progress": False, "precision": precision}
    train(family, out=tmp_path / "straight", **kw)
    with pytest.raises(KeyboardInterrupt):
        train(family, out=tmp_path / "split", on_step=_interrupt_at(STOP_AT), **kw)
    latest = json.loads((tmp_path / "split" / "train_state" / "latest.json").read_text())
    assert latest["step"] == STOP_AT
    assert Run.load(tmp_path / "split").config["train"]["completed_steps"] == STOP_AT
    # Resuming keeps the run's precision without being told.
    train(family, out=tmp_path / "split", resume=True, progress=False)
    assert Run.load(tmp_path / "split").config["train"]["precision"] == precision

    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()
             if "losses" in line]
    assert steps == list(range(1, STEPS + 1)), "the log holds each step once"


def test_resume_can_extend_a_finished_run(tmp_path: Path) -> None:
    kw = {**TINY["dcgan"], "progress": False}
    train("dcgan", out=tmp_path / "r", steps=3, **kw)
    train("dcgan", out=tmp_path / "r", resume=True, steps=5, progress=False)
    assert Run.load(tmp_path / "r").config["train"]["completed_steps"] == 5
    with pytest.raises(TrainError, match=r"checkpoint is already at step 5"):
        train("dcgan", out=tmp_path / "r", resume=True, steps=4, progress=False)


def test_resume_rejects_conflicting_options(tmp_path: Path) -> None:
    train("dcgan", out=tmp_path / "r", steps=2, progress=False, **TINY["dcgan"])
    with pytest.raises(TrainError, match=r"cannot resume with different options: lr=0.001 \(run has 0.0002\)"):
        train("dcgan", out=tmp_path / "r", resume=True, lr=1e-3, progress=False)
    with pytest.raises(TrainError, match=r"is a dcgan run, not vae"):
        train("vae", out=tmp_path / "r", resume=True, progress=False)
    with pytest.raises(TrainError, match=r"the run was trained on 'builtin:digits'"):
        train("dcgan", out=tmp_path / "r", data="builtin:faces", resume=True, progress=False)


def test_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match=r"cannot resume: run directory .* does not exist"):
        train("vae", out=tmp_path / "none", resume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainError, match=r"holds no training checkpoint"):
        train("vae", out=tmp_path / "empty", resume=True)


def test_checkpoint_publication_is_atomic(tmp_path: Path) -> None:
    run = tmp_path / "r"
    train("dcgan", out=run, steps=4, sample_every=2, progress=False, **TINY["dcgan"])
    state = run / "train_state"
    # Only the latest checkpoint is kept; it holds its own link/copy of the weights, so the run's
    # weights.safetensors being replaced later never alters it.
    assert sorted(p.name for p in state.iterdir()) == ["latest.json", "step_00000004"]
    ckpt_weights = load_file(str(state / "step_00000004" / "weights.safetensors"))
    # A crash mid-save leaves a temporary folder and an older latest.json: resume ignores the former.
    (state / ".step_00000006.abc.tmp").mkdir()
    (state / ".step_00000006.abc.tmp" / "state.json").write_text("{}")
    train("dcgan", out=run, resume=True, steps=6, sample_every=100, progress=False)
    assert sorted(p.name for p in state.iterdir()) == ["latest.json", "step_00000006"]
    assert not torch.equal(load_file(str(run / "weights.safetensors"))["G.head.weight"], ckpt_weights["G.head.weight"])


@pytest.mark.parametrize("fused", [False, True], ids=["adam", "fused_adam"])
def test_optimizer_state_comes_back_in_its_parameter_layout(fused: bool) -> None:
    # Checkpoints store contiguous tensors; channels_last nets need their Adam moments back in channels_last,
    # or PyTorch's fused Adam (which walks all tensors in memory order) silently mixes up elements.
    from ganrt.train.checkpoint import load_optimizer_state, optimizer_state

    g = torch.Generator().manual_seed(0)
    start = torch.randn(4, 3, 2, 2, generator=g).contiguous(memory_format=torch.channels_last)
    grads = [torch.randn(4, 3, 2, 2, generator=g).contiguous(memory_format=torch.channels_last) for _ in range(2)]

    def adam(p: torch.Tensor) -> torch.optim.Adam:
        return torch.optim.Adam([p], lr=0.1, fused=fused)

    straight = start.clone().requires_grad_()
    opt = adam(straight)
    straight.grad = grads[0].clone()
    opt.step()
    tensors, meta = optimizer_state("G", opt)
    tensors = safetensors.torch.load(safetensors.torch.save(tensors))  # through the file format, as on disk
    resumed = straight.detach().clone().requires_grad_()
    opt2 = adam(resumed)
    load_optimizer_state("G", opt2, tensors, json.loads(json.dumps(meta)))
    assert all(v.stride() == resumed.stride() for v in opt2.state[resumed].values() if v.dim() == 4)
    for o, p in ((opt, straight), (opt2, resumed)):
        p.grad = grads[1].clone()
        o.step()
    assert torch.equal(straight, resumed)
