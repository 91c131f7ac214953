"""Training precision: which precision a device gets, the --precision option, and what a reduced-precision run
keeps in fp32 (weights, optimizer state, losses, statistics, checkpoints)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ganrt.cli import main
from ganrt.data import open_dataset, training_batch
from ganrt.models import Run
from ganrt.nn import InstanceNormAct2d
from ganrt.train import TrainError, train
from ganrt.train.families import FAMILY_CLASSES
from ganrt.train.options import DATA_KIND, resolve
from ganrt.train.precision import Precision, cpu_support, cuda_support, device_support, resolve_precision

AVX512_BF16 = cpu_support(avx512_bf16=True, amx_bf16=False, onednn=True)
AMX = cpu_support(avx512_bf16=True, amx_bf16=True, onednn=True)
NO_BF16_CPU = cpu_support(avx512_bf16=False, amx_bf16=False, onednn=True)
NO_ONEDNN = cpu_support(avx512_bf16=True, amx_bf16=True, onednn=False)
H200 = cuda_support("cuda:0", "NVIDIA H200", (9, 0))
T4 = cuda_support("cuda:1", "Tesla T4", (7, 5))


@pytest.mark.parametrize(
    ("support", "expected"),
    [(AVX512_BF16, "bf16"), (AMX, "bf16"), (NO_BF16_CPU, "fp32"), (NO_ONEDNN, "fp32"), (H200, "bf16"), (T4, "fp32")],
    ids=["avx512_bf16", "amx", "cpu_without_bf16", "torch_without_onednn", "sm90", "sm75"],
)
def test_auto_is_bf16_exactly_where_it_is_native(support: Any, expected: str) -> None:
    assert resolve_precision("auto", support) == expected
    assert resolve_precision("fp32", support) == "fp32"


def test_explicit_precisions_the_device_has() -> None:
    assert resolve_precision("bf16", AVX512_BF16) == "bf16"
    assert resolve_precision("fp16", T4) == "fp16"
    assert resolve_precision("bf16", H200) == "bf16"
    assert AMX.supported() == ("fp32", "bf16") and H200.supported() == ("fp32", "bf16", "fp16")


ERRORS = {
    "bf16_cpu_without_it": (
        "bf16", NO_BF16_CPU,
        r"^precision bf16 needs native bf16 \(AMX-BF16 or AVX512_BF16\); cpu has neither AMX-BF16 nor AVX512_BF16, "
        r"so cpu supports fp32$",
    ),
    "bf16_torch_without_onednn": ("bf16", NO_ONEDNN, r"cpu has a torch build without oneDNN .* so cpu supports fp32$"),
    "bf16_gpu_before_ampere": (
        "bf16", T4,
        r"^precision bf16 needs native bf16 \(compute capability 8.0 or newer\); cuda:1 has Tesla T4 \(sm_75\), so "
        r"cuda:1 supports fp32, fp16$",
    ),
    "fp16_on_cpu": (
        "fp16", AVX512_BF16,
        r"^precision fp16 trains on CUDA only \(with a gradient scaler\); cpu supports fp32, bf16 \(AVX512_BF16\)$",
    ),
    "unknown": ("fp8", H200, r"^precision must be one of auto, fp32, bf16, fp16, got 'fp8'$"),
}  # fmt: skip


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_unsupported_precision_names_what_the_device_supports(case: tuple[str, Any, str]) -> None:
    requested, support, message = case
    with pytest.raises(TrainError, match=message):
        resolve_precision(requested, support)


def test_cpu_detection_agrees_with_the_kernel_cpu_flags() -> None:
    # torch's CPUID probes against what Linux reports for this CPU.
    flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
                .split())
    support = device_support(torch.device("cpu"))
    assert torch.backends.mkldnn.is_available()
    assert support.bf16 == bool(flags & {"avx512_bf16", "amx_bf16"}), support
    assert not support.fp16 and ("AVX512_BF16" in support.detail) == ("avx512_bf16" in flags)


TINY_DCGAN = ["dcgan", "--data", "builtin:digits", "--image-size", "16", "--ngf", "8", "--ndf", "8",
              "--latent-dim", "8", "--batch-size", "4", "--no-progress", "--steps", "2"]


def test_cli_refuses_fp16_on_cpu_before_touching_the_run_dir(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    rc = main(["train", *TINY_DCGAN, "--out", str(out), "--precision", "fp16"])
    err = capsys.readouterr().err
    assert rc == 2 and "precision fp16 trains on CUDA only" in err and "cpu supports fp32" in err, err
    assert not out.exists()


@pytest.mark.bf16
def test_config_log_and_resume_record_the_precision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY_DCGAN, "--out", str(out)]) == 0  # auto: bf16 on this CPU
    assert Run.load(out).config["train"]["precision"] == "bf16"
    state = json.loads((out / "train_state" / "step_00000002" / "state.json").read_text())
    assert state["precision"] == "bf16"
    # Resuming keeps it; an explicit --precision changes it from there on, and the log says when.
    assert main(["train", "dcgan", "--out", str(out), "--resume", "--steps", "3", "--no-progress"]) == 0
    assert Run.load(out).config["train"]["precision"] == "bf16"
    assert main(["train", "dcgan", "--out", str(out), "--resume", "--steps", "4", "--no-progress",
                 "--precision", "fp32"]) == 0
    assert Run.load(out).config["train"]["precision"] == "fp32"
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    runs = [(e["step"], e["run"]["precision"], e["run"]["resumed"]) for e in log if "run" in e]
    assert runs == [(0, "bf16", False), (2, "bf16", True), (3, "fp32", True)]
    capsys.readouterr()


def _family(name: str, precision: Precision, **overrides: Any) -> tuple[Any, list[dict[str, torch.Tensor]]]:
    data = "builtin:edges2photos" if name in ("pix2pix", "cyclegan") else "builtin:digits"
    options = resolve(name, {"image_size": 32 if data.endswith("photos") else 16, "ngf": 8, **overrides}, data)
    dataset = open_dataset(data, kind=DATA_KIND[name], image_size=options["image_size"],
                           channels=options["channels"], seed=0)
    torch.manual_seed(0)
    model = FAMILY_CLASSES[name](options, num_classes=0, device=torch.device("cpu"), fused=True,
                                 precision=precision)
    batches = [training_batch(dataset, step=s, batch_size=options["batch_size"], seed=0) for s in range(2)]
    return model, batches


@pytest.mark.bf16
def test_bf16_step_computes_in_bf16_and_keeps_weights_state_and_losses_fp32() -> None:
    model, batches = _family("cyclegan", Precision("bf16", torch.device("cpu")), netG="resnet_6blocks", ndf=8)
    seen: dict[str, set[Any]] = {"conv": set(), "norm": set(), "net": set()}
    G = model.nets["G_A"]
    G.stem.register_forward_hook(lambda m, a, out: seen["conv"].add(out.dtype))
    norm = next(m for m in G.modules() if isinstance(m, InstanceNormAct2d))
    norm.register_forward_hook(
        lambda m, a, out: seen["norm"].add((out.dtype, out.is_contiguous(memory_format=torch.channels_last))))
    G.register_forward_hook(lambda m, a, out: seen["net"].add(out.dtype))  # runs after the precision hook
    losses = model.train_step(batches[0], np.random.default_rng(0))
    assert all(np.isfinite(v) for v in losses.values())
    # Convolutions and the fused norm ran in bf16 on channels_last tensors; the network handed back fp32,
    # so the losses were computed in fp32.
    assert seen == {"conv": {torch.bfloat16}, "norm": {(torch.bfloat16, True)}, "net": {torch.float32}}
    for net in model.nets.values():
        for p in net.parameters():
            assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
            assert p.dim() != 4 or p.is_contiguous(memory_format=torch.channels_last)
    for opt in model.optimizers.values():
        assert {v.dtype for s in opt.state.values() for v in s.values() if v.dim() > 0} == {torch.float32}
    # Outside training steps (sample grids, held-out metrics) the networks run in fp32, like the export.
    seen["conv"].clear()
    model.sample_grid({"A": batches[1]["A"], "B": batches[1]["B"]})
    assert seen["conv"] == {torch.float32}


def test_fp16_loss_scale_is_checkpoint_state() -> None:
    # fp16 is offered on CUDA only; its gradient-scaler plumbing is the same code on any device, so it is
    # exercised here with CPU fp16 autocast (WGAN-GP: the penalty runs in fp32 inside the step).
    model, batches = _family("dcgan", Precision("fp16", torch.device("cpu")), ndf=8, latent_dim=8, batch_size=4,
                             gan_mode="wgangp")
    for s, batch in enumerate(batches):
        torch.manual_seed(s)
        assert all(np.isfinite(v) for v in model.train_step(batch, np.random.default_rng(s)).values())
    state = model.precision.state_dict()
    json.dumps(state)  # stored in the checkpoint's state.json
    assert state["name"] == "fp16" and state["scaler"]["scale"] > 0
    fresh = Precision("fp16", torch.device("cpu"))
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    assert Precision("bf16", torch.device("cpu")).state_dict() == {"name": "bf16", "scaler": None}


def test_non_finite_loss_stops_with_the_last_checkpoint_intact(tmp_path: Path, precision: str) -> None:
    # A learning rate of 1 blows the VAE's log-variance up within a few steps; with a checkpoint every step,
    # the one before the first non-finite loss must survive untouched.
    run = tmp_path / "vae"
    with pytest.raises(TrainError, match=r"became non-finite at step (\d+); the last checkpoint \(step (\d+)\)") as exc:
        train("vae", data="builtin:faces", out=run, steps=8, image_size=16, ngf=8, latent_dim=8, batch_size=4,
              lr=1.0, sample_every=1, progress=False, precision=precision)
    match = re.search(r"at step (\d+); the last checkpoint \(step (\d+)\)", str(exc.value))
    assert match is not None
    bad, kept = int(match.group(1)), int(match.group(2))
    assert bad >= 2 and kept == bad - 1
    latest = json.loads((run / "train_state" / "latest.json").read_text())
    assert latest["step"] == kept
    weights = load_file(str(run / "weights.safetensors"))
    checkpoint = load_file(str(run / "train_state" / latest["checkpoint"] / "weights.safetensors"))
    assert weights.keys() == checkpoint.keys()
    assert all(torch.equal(weights[k], checkpoint[k]) and weights[k].isfinite().all() for k in weights)
    assert all(t.dtype == torch.float32 for t in weights.values())
    assert Run.load(run).config["train"]["completed_steps"] == kept


@pytest.mark.bf16
def test_bf16_run_exports_through_the_fp32_parity_gate(tmp_path: Path) -> None:
    from ganrt.export import export

    run = train("pix2pix", data="builtin:edges2photos", out=tmp_path / "p2p", steps=3, image_size=64, ngf=8,
                ndf=8, sample_every=3, progress=False, precision="bf16")
    weights = load_file(str(run / "weights.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}
    result = export(run, format="onnx", output=tmp_path / "p2p.onnx", progress=False)
    assert result.path.is_file() and all(row.passed for row in result.parity)
