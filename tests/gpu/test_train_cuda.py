"""Mixed-precision training on a CUDA GPU: fp16 with its gradient scaler, bf16, and what auto picks.

Marked ``cuda`` and skipped centrally (tests/conftest.py) without a GPU or ganrt's CUDA kernels.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganrt.models import Run
from ganrt.train import train
from ganrt.train.precision import device_support

pytestmark = pytest.mark.cuda

TINY = {"data": "builtin:edges2photos", "image_size": 32, "ngf": 8, "ndf": 8, "netG": "resnet_6blocks",
        "lr": 2e-3, "progress": False, "device": "cuda"}


@pytest.mark.parametrize("precision", ["fp16", "bf16", "auto"])
def test_cyclegan_trains_on_cuda_in_reduced_precision(tmp_path: Path, precision: str) -> None:
    support = device_support(torch.device("cuda"))
    if precision == "bf16" and not support.bf16:
        pytest.skip(f"{support.detail} has no native bf16")
    run = train("cyclegan", out=tmp_path / "cg", steps=40, sample_every=20, precision=precision, **TINY)
    expected = ("bf16" if support.bf16 else "fp32") if precision == "auto" else precision
    assert Run.load(run).config["train"]["precision"] == expected
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [e for e in log if "losses" in e]
    assert len(steps) == 40 and all(torch.isfinite(torch.tensor(list(e["losses"].values()))).all() for e in steps)
    evals = [e["eval"]["heldout_cycle_l1"] for e in log if "eval" in e]
    assert evals[-1] < evals[0], evals
    assert {t.dtype for t in load_file(str(run / "weights.safetensors")).values()} == {torch.float32}
    latest = json.loads((run / "train_state" / "latest.json").read_text())
    state = json.loads((run / "train_state" / latest["checkpoint"] / "state.json").read_text())
    scaler = state["precision_state"]["scaler"]
    assert (scaler is not None and scaler["scale"] > 0) if expected == "fp16" else scaler is None
