"""Importing reference Pix2Pix/CycleGAN checkpoints: parity with the reference network, key handling, errors.

Checkpoints are made here by ``upstream_arch`` (an independent re-implementation of the reference generators
with their exact module nesting) with random weights and randomized batch-norm statistics.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from ganrt.models import (
    Run,
    UpstreamCheckpointError,
    import_upstream,
    load_upstream_generator,
    read_upstream_state_dict,
    upstream_run_config,
)
from tests.tolerances import UPSTREAM_ATOL

# netG, ngf, image size, norm, dropout
CASES = [
    ("unet_128", 16, 128, "batch", False),
    ("unet_256", 8, 256, "batch", True),
    ("unet_256", 8, 256, "instance", False),
    ("resnet_6blocks", 8, 64, "instance", False),
    ("resnet_9blocks", 8, 64, "batch", True),
    ("resnet_9blocks", 8, 48, "instance", True),
]
CASE_IDS = [f"{n}-ngf{g}-{s}px-{norm}{'-dropout' if d else ''}" for n, g, s, norm, d in CASES]


def _images(n: int, size: int, seed: int, channels: int = 3) -> torch.Tensor:
    """Smooth-ish images in [-1, 1] (random low-resolution noise, upsampled), (n, channels, size, size)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, max(size // 8, 2), max(size // 8, 2), generator=g) * 2 - 1
    return torch.nn.functional.interpolate(
        low, size=(size, size), mode="bilinear", align_corners=False
    ).clamp(-1, 1)


def _make_reference(upstream_arch: ModuleType, netG: str, ngf: int, norm: str, dropout: bool, size: int,
                    seed: int = 0, in_ch: int = 3, out_ch: int = 3) -> nn.Module:  # fmt: skip
    torch.manual_seed(seed)
    ref = upstream_arch.build(netG, ngf=ngf, norm=norm, dropout=dropout, input_nc=in_ch, output_nc=out_ch)
    upstream_arch.randomize(ref, torch.Generator().manual_seed(seed), _images(4, size, seed + 100, in_ch))
    return ref


def _reference_output(ref: nn.Module, x: torch.Tensor, stats: str) -> torch.Tensor:
    """What reference test.py produces: train mode with dropout off ("batch", one image at a time) or eval."""
    with torch.no_grad():
        if stats == "running":
            return ref.eval()(x.clone())
        ref.train()
        for m in ref.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        # Train-mode BN would update the running stats; keep the checkpoint's.
        saved = {k: v.clone() for k, v in ref.state_dict().items()}
        out = torch.cat([ref(x[i : i + 1].clone()) for i in range(x.shape[0])])
        ref.load_state_dict(saved)
        return out


# Instance norm has no running statistics, so one instance case covers stats="running".
PARITY = [
    pytest.param(*case, stats, id=f"{case_id}-{stats}")
    for case, case_id in zip(CASES, CASE_IDS)
    for stats in ("batch", "running")
    if case[3] == "batch" or stats == "batch" or case[0] == "resnet_9blocks"
]


@pytest.mark.parametrize(("netG", "ngf", "size", "norm", "dropout", "stats"), PARITY)
def test_matches_reference(upstream_arch, tmp_path, netG, ngf, size, norm, dropout, stats):
    ref = _make_reference(upstream_arch, netG, ngf, norm, dropout, size)
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), ckpt)
    x = _images(1, size, seed=7)
    expected = _reference_output(ref, x, stats)
    model = load_upstream_generator(ckpt, netG=netG, ngf=ngf, norm=norm, dropout=dropout, stats=stats)
    assert not model.training
    with torch.no_grad():
        got = model(x)
    assert got.shape == expected.shape
    assert expected.std() > 0.05, "reference output is flat: the test would not discriminate"
    torch.testing.assert_close(got, expected, atol=UPSTREAM_ATOL, rtol=0)
    if norm == "batch":
        other = _reference_output(ref, x, "batch" if stats == "running" else "running")
        assert (other - expected).abs().max() > 100 * UPSTREAM_ATOL, "stats modes must differ for batch norm"


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_batch_of_images_is_normalized_per_image(upstream_arch, tmp_path, fused):
    ref = _make_reference(upstream_arch, "unet_128", 8, "batch", False, 128, seed=3)
    ckpt = tmp_path / "g.pth"
    torch.save(ref.state_dict(), ckpt)
    x = _images(3, 128, seed=11)
    expected = _reference_output(ref, x, "batch")
    model = load_upstream_generator(ckpt, netG="unet_128", ngf=8, fused=fused)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=UPSTREAM_ATOL, rtol=0)


def test_module_prefix_and_grayscale(upstream_arch, tmp_path):
    """nn.DataParallel checkpoints ("module." keys) and 1-channel in/out are handled."""
    ref = _make_reference(upstream_arch, "resnet_6blocks", 8, "batch", False, 32, in_ch=1, out_ch=1)
    ckpt = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, ckpt)
    model = load_upstream_generator(ckpt, netG="resnet_6blocks", ngf=8, norm="batch", stats="running")
    assert (model.in_channels, model.out_channels) == (1, 1)
    x = _images(1, 32, seed=5, channels=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _reference_output(ref, x, "running"), atol=UPSTREAM_ATOL, rtol=0)


def test_stale_instance_norm_stats_are_dropped(upstream_arch, tmp_path):
    ref = _make_reference(upstream_arch, "unet_128", 8, "instance", False, 128)
    state = ref.state_dict()
    stale = 0
    for name, m in ref.named_modules():
        if isinstance(m, nn.InstanceNorm2d):
            # What InstanceNorm2d saved before PyTorch 0.4 made track_running_stats default to False.
            state[f"{name}.running_mean"] = torch.randn(m.num_features)
            state[f"{name}.running_var"] = torch.rand(m.num_features) + 0.5
            stale += 1
    assert stale == 11  # two per middle level (5), one at the innermost
    ckpt = tmp_path / "old.pth"
    torch.save(state, ckpt)
    x = _images(1, 128, seed=2)
    for stats in ("batch", "running"):
        model = load_upstream_generator(ckpt, netG="unet_128", ngf=8, norm="instance", stats=stats)
        with torch.no_grad():
            torch.testing.assert_close(
                model(x), _reference_output(ref, x, "batch"), atol=UPSTREAM_ATOL, rtol=0
            )


@pytest.fixture(scope="module")
def unet128_batch_ckpt(upstream_arch, tmp_path_factory) -> Path:
    ref = upstream_arch.build("unet_128", ngf=8, norm="batch", dropout=False)
    path = tmp_path_factory.mktemp("ckpt") / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def resnet_dropout_ckpt(upstream_arch, tmp_path_factory) -> Path:
    ref = upstream_arch.build("resnet_6blocks", ngf=8, norm="instance", dropout=True)
    path = tmp_path_factory.mktemp("ckpt") / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    return path


def _unet_prefix(level: int) -> str:
    """Reference module path of U-Net level ``level`` (0 = outermost)."""
    return "model.model" + (".1.model" + ".3.model" * (level - 1) if level else "")


def test_wrong_netG_is_explained(unet128_batch_ckpt):
    with pytest.raises(UpstreamCheckpointError) as info:
        load_upstream_generator(unet128_batch_ckpt, netG="unet_256", ngf=8)
    err = info.value
    # unet_256's level 6 is a middle level (conv at .1, submodule at .3); in unet_128 it is the innermost.
    assert f"{_unet_prefix(7)}.1.weight" in err.missing
    assert f"{_unet_prefix(6)}.3.weight" in err.unexpected
    assert err.candidates == [
        {"netG": "unet_128", "ngf": 8, "norm": "batch"}
    ]  # U-Net dropout leaves no trace
    msg = str(err)
    assert str(unet128_batch_ckpt) in msg and f"Missing keys ({len(err.missing)})" in msg
    assert f"Unexpected keys ({len(err.unexpected)})" in msg
    assert "The checkpoint matches netG='unet_128', ngf=8, norm='batch': pass those options" in msg


def test_wrong_ngf_is_explained(unet128_batch_ckpt):
    with pytest.raises(
        UpstreamCheckpointError, match=r"Shape mismatches .*model\.model\.0\.weight.*ngf=8"
    ) as info:
        load_upstream_generator(unet128_batch_ckpt, netG="unet_128", ngf=64)
    assert not info.value.missing and not info.value.unexpected
    assert "model.model.0.weight: checkpoint (8, 3, 4, 4), expected (64, 3, 4, 4)" in info.value.mismatched


def test_wrong_norm_is_explained(unet128_batch_ckpt):
    with pytest.raises(
        UpstreamCheckpointError, match=r"matches netG='unet_128', ngf=8, norm='batch'"
    ) as info:
        load_upstream_generator(unet128_batch_ckpt, netG="unet_128", ngf=8, norm="instance")
    assert f"{_unet_prefix(1)}.2.weight" in info.value.unexpected  # a BN weight: unexpected for instance norm
    assert f"{_unet_prefix(1)}.1.bias" in info.value.missing  # instance-norm convs carry biases


def test_wrong_dropout_is_explained(resnet_dropout_ckpt):
    with pytest.raises(UpstreamCheckpointError, match=r"norm='instance', dropout=True: pass those") as info:
        load_upstream_generator(
            resnet_dropout_ckpt, netG="resnet_6blocks", ngf=8, norm="instance", dropout=False
        )
    assert "model.10.conv_block.5.weight" in info.value.missing
    assert "model.10.conv_block.6.weight" in info.value.unexpected


def test_unrecognizable_checkpoint_gets_hints(tmp_path, upstream_arch):
    ref = upstream_arch.build("resnet_6blocks", ngf=8, norm="batch", dropout=True)
    state = ref.state_dict()
    del state["model.12.conv_block.6.weight"]  # damaged: matches no known layout
    ckpt = tmp_path / "damaged.pth"
    torch.save(state, ckpt)
    with pytest.raises(UpstreamCheckpointError, match=r"Likely cause .*conv_block\.6.*dropout=True") as info:
        load_upstream_generator(ckpt, netG="resnet_6blocks", ngf=16, norm="instance")
    msg = str(info.value)
    assert "ngf=8, not 16" in msg and "norm='batch'" in msg and not info.value.candidates


class _Payload:
    """Any class instance: torch.load(weights_only=True) must refuse it."""

    def __init__(self) -> None:
        self.value = 1


def test_arbitrary_pickles_are_refused(tmp_path):
    ckpt = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(1), "extra": _Payload()}, ckpt)
    with pytest.raises(UpstreamCheckpointError, match="refusing to load it"):
        read_upstream_state_dict(ckpt)


def test_unreadable_files(tmp_path, unet128_batch_ckpt):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_upstream_state_dict(tmp_path / "nope.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(unet128_batch_ckpt.read_bytes()[:5000])
    with pytest.raises(UpstreamCheckpointError, match="truncated or corrupt"):
        read_upstream_state_dict(truncated)
    not_state = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], not_state)
    with pytest.raises(UpstreamCheckpointError, match="expected a state_dict .* got list"):
        read_upstream_state_dict(not_state)
    nested = tmp_path / "nested.pth"
    torch.save({"epoch": torch.tensor(3), "state_dict": {"model.1.weight": torch.zeros(2)}}, nested)
    with pytest.raises(UpstreamCheckpointError, match="entry 'state_dict' holds a dict"):
        read_upstream_state_dict(nested)


def test_argument_errors(unet128_batch_ckpt):
    with pytest.raises(ValueError, match="netG must be one of"):
        load_upstream_generator(unet128_batch_ckpt, netG="unet_64")
    with pytest.raises(ValueError, match="stats must be one of"):
        load_upstream_generator(unet128_batch_ckpt, netG="unet_128", stats="eval")
    with pytest.raises(ValueError, match="norm must be one of"):
        load_upstream_generator(unet128_batch_ckpt, netG="unet_128", norm="group")
    with pytest.raises(ValueError, match="image_size must be a positive multiple of 128"):
        upstream_run_config("unet_128", 64, "batch", False, "batch", image_size=200)


@pytest.mark.parametrize("stats", ["batch", "running"])
def test_import_upstream_writes_a_run(upstream_arch, tmp_path, stats):
    ref = _make_reference(upstream_arch, "unet_128", 8, "batch", True, 128, seed=4)
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), ckpt)
    out = import_upstream(
        ckpt, tmp_path / "run", netG="unet_128", ngf=8, norm="batch", dropout=True, stats=stats
    )
    run = Run.load(out)
    assert run.family == "pix2pix" and set(run.nets) == {"G"}
    assert run.config["image_size"] == 128 and run.config["train"]["stats"] == stats
    assert run.nets["G"]["norm"] == ("none" if stats == "running" else "batch")
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["sha256"] and config["train"]["checkpoint"] == "latest_net_G.pth"
    x = _images(1, 128, seed=9)
    with torch.no_grad():
        for fused in (True, False):
            got = run.generator(fused=fused)(x)
            torch.testing.assert_close(got, _reference_output(ref, x, stats), atol=UPSTREAM_ATOL, rtol=0)
    with pytest.raises(FileExistsError, match="force=True"):
        import_upstream(ckpt, out, netG="unet_128", ngf=8)
    import_upstream(ckpt, out, netG="unet_128", ngf=8, force=True)
    assert Run.load(out).config["train"]["stats"] == "batch"


def test_import_resnet_is_cyclegan_G_A(upstream_arch, tmp_path):
    ref = upstream_arch.build("resnet_6blocks", ngf=8, norm="instance", dropout=False)
    ckpt = tmp_path / "g.pth"
    torch.save(ref.state_dict(), ckpt)
    run = Run.load(import_upstream(ckpt, tmp_path / "run", netG="resnet_6blocks", ngf=8, norm="instance"))
    assert run.family == "cyclegan" and set(run.nets) == {"G_A"} and run.config["image_size"] == 256
    assert run.generator().multiple == 4
