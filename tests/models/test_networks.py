"""The networks: fused vs stock layers, shapes and attributes, parameter counts, specs and argument errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from ganrt.models import (
    VAE,
    DCGANDiscriminator,
    DCGANGenerator,
    NLayerDiscriminator,
    ResnetGenerator,
    SpecError,
    UnetGenerator,
    build_net,
    check_spec,
)
from ganrt.nn import InstanceNormAct2d
from tests.tolerances import FUSED_FLOAT64_ATOL, FUSED_GRAD_RTOL, FUSED_OUTPUT_ATOL, GRAD_FLOOR_FRACTION

# name -> (spec, input maker(batch, generator) -> positional args, extra forward kwargs)
Inputs = Callable[[int, torch.Generator], tuple]


def _img(c: int, s: int) -> Inputs:
    return lambda n, g: (torch.rand(n, c, s, s, generator=g) * 2 - 1,)


def _z_labels(d: int, k: int) -> Inputs:
    return lambda n, g: (torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g))


def _z(d: int) -> Inputs:
    return lambda n, g: (torch.randn(n, d, generator=g),)


def _img_labels(c: int, s: int, k: int) -> Inputs:
    return lambda n, g: (torch.rand(n, c, s, s, generator=g) * 2 - 1, torch.randint(0, k, (n,), generator=g))


NETS: dict[str, tuple[dict, Inputs, dict]] = {
    "unet_64-batch-dropout": (
        {"arch": "unet_64", "ngf": 8, "norm": "batch", "dropout": True},
        _img(3, 64),
        {},
    ),
    "unet_64-instance-1to2ch": (
        {"arch": "unet_64", "ngf": 8, "norm": "instance", "in_channels": 1, "out_channels": 2},
        _img(1, 64),
        {},
    ),
    "resnet_6blocks-instance": ({"arch": "resnet_6blocks", "ngf": 8, "norm": "instance"}, _img(3, 36), {}),
    "resnet_6blocks-batch": ({"arch": "resnet_6blocks", "ngf": 8, "norm": "batch"}, _img(3, 32), {}),
    "patchgan-batch": ({"arch": "patchgan", "in_channels": 6, "ndf": 8}, _img(6, 64), {}),
    "patchgan-instance-2layers": (
        {"arch": "patchgan", "in_channels": 3, "ndf": 8, "n_layers": 2, "norm": "instance"},
        _img(3, 40),
        {},
    ),
    "vae": (
        {"arch": "vae", "image_size": 32, "latent_dim": 16, "base_channels": 8},
        _img(3, 32),
        {"seed": 5},
    ),
    "dcgan_g-cgan": (
        {"arch": "dcgan_g", "latent_dim": 16, "image_size": 32, "ngf": 8, "num_classes": 4},
        _z_labels(16, 4),
        {},
    ),
    "dcgan_d-cgan": (
        {"arch": "dcgan_d", "channels": 1, "image_size": 16, "ndf": 8, "num_classes": 3},
        _img_labels(1, 16, 3),
        {},
    ),
    "dcgan_g": ({"arch": "dcgan_g", "latent_dim": 8, "channels": 1, "image_size": 8, "ngf": 8}, _z(8), {}),
}


def _first(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def _run(net: nn.Module, args: tuple, kwargs: dict, dtype: torch.dtype):
    """Outputs, parameter grads and input grads of a fixed random projection of the outputs."""
    args = tuple(
        a.detach().to(dtype, copy=True).requires_grad_(True) if a.is_floating_point() else a for a in args
    )
    torch.manual_seed(42)  # the same dropout masks in both variants
    outs = _first(net(*args, **kwargs))
    g = torch.Generator().manual_seed(123)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=dtype)).sum() for o in outs)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    in_grads = [a.grad.clone() for a in args if a.is_floating_point()]
    return [o.detach() for o in outs], grads, in_grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("direction", ["fused_to_stock", "stock_to_fused"])
@pytest.mark.parametrize("name", list(NETS))
def test_fused_matches_stock_layers(name, direction, dtype):
    """Same weights -> same outputs and gradients, loading each variant's state_dict into the other."""
    spec, make, kwargs = NETS[name]
    src_fused = direction == "fused_to_stock"
    torch.manual_seed(0)
    src = build_net(spec, fused=src_fused).to(dtype)
    torch.manual_seed(1)
    dst = build_net(spec, fused=not src_fused).to(dtype)
    dst.load_state_dict(src.state_dict())
    assert list(dict(src.named_parameters())) == list(dict(dst.named_parameters()))
    args = make(2, torch.Generator().manual_seed(0))
    out_a, grads_a, in_a = _run(src, args, kwargs, dtype)
    out_b, grads_b, in_b = _run(dst, args, kwargs, dtype)
    out_atol = FUSED_OUTPUT_ATOL if dtype == torch.float32 else FUSED_FLOAT64_ATOL
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b, atol=out_atol, rtol=0)
    rtol = FUSED_GRAD_RTOL if dtype == torch.float32 else FUSED_FLOAT64_ATOL
    # Biases of convs that feed a per-image norm have an exactly-zero true gradient (rounding noise only), so
    # each tensor's error is measured against its own largest entry or a floor tied to the whole network.
    floor = GRAD_FLOOR_FRACTION * max(g.abs().max() for g in grads_a.values())
    pairs = [(k, grads_a[k], grads_b[k]) for k in grads_a] + [
        (f"input{i}", a, b) for i, (a, b) in enumerate(zip(in_a, in_b))
    ]
    for key, ga, gb in pairs:
        scale = torch.maximum(ga.abs().max(), floor)
        assert ((ga - gb).abs().max() / scale) <= rtol, f"gradient of {key} differs"


def test_every_norm_site_is_fused():
    """fused=True reaches the ganrt op at every InstanceNormAct2d; fused=False never does."""
    for spec, _, _ in NETS.values():
        for fused in (True, False):
            net = build_net(spec, fused=fused)
            sites = [m for m in net.modules() if isinstance(m, InstanceNormAct2d)]
            assert sites and all(m.fused == fused for m in sites), spec
    net = build_net(NETS["resnet_6blocks-instance"][0], fused=True)
    with torch.autograd.profiler.profile() as prof:
        net(torch.zeros(1, 3, 16, 16))
    calls = [e for e in prof.function_events if e.name == "ganrt::instance_norm_act"]
    assert len(calls) == 1 + 2 + 2 * 6 + 2  # stem, downs, two per block, ups


def test_shapes_and_attributes():
    g = torch.Generator().manual_seed(0)
    unet = UnetGenerator(in_channels=1, out_channels=2, num_downs=5, ngf=4, fused=False)
    assert (unet.in_channels, unet.out_channels, unet.multiple) == (1, 2, 32)
    assert unet(torch.rand(2, 1, 32, 64, generator=g)).shape == (2, 2, 32, 64)
    res = ResnetGenerator(ngf=4, n_blocks=2, fused=False)
    assert (res.in_channels, res.out_channels, res.multiple) == (3, 3, 4)
    assert res(torch.rand(1, 3, 20, 28, generator=g)).shape == (1, 3, 20, 28)
    d = NLayerDiscriminator(6, ndf=4, fused=False)
    assert d(torch.rand(1, 6, 256, 256, generator=g)).shape == (1, 1, 30, 30)  # the 70x70 PatchGAN map
    vae = VAE(image_size=16, channels=1, latent_dim=4, base_channels=4, fused=False)
    assert (vae.latent_dim, vae.image_size, vae.multiple, vae.num_classes) == (4, 16, 16, 0)
    mu, logvar = vae.encode(torch.rand(3, 1, 16, 16, generator=g))
    assert mu.shape == logvar.shape == (3, 4)
    assert vae.decode(mu).shape == (3, 1, 16, 16)
    gen = DCGANGenerator(latent_dim=10, channels=1, image_size=16, ngf=4, num_classes=3, fused=False)
    assert (gen.latent_dim, gen.num_classes, gen.image_size, gen.multiple, gen.out_channels) == (
        10,
        3,
        16,
        16,
        1,
    )
    img = gen(torch.randn(5, 10, generator=g), torch.tensor([0, 1, 2, 0, 1]))
    assert img.shape == (5, 1, 16, 16) and img.abs().max() <= 1
    disc = DCGANDiscriminator(channels=1, image_size=16, ndf=4, num_classes=3, fused=False)
    assert disc(img, torch.tensor([0, 1, 2, 0, 1])).shape == (5,)


def test_class_conditioning_changes_outputs():
    torch.manual_seed(0)
    gen = DCGANGenerator(latent_dim=8, channels=1, image_size=8, ngf=4, num_classes=5, fused=False)
    disc = DCGANDiscriminator(channels=1, image_size=8, ndf=4, num_classes=5, fused=False)
    z = torch.randn(1, 8).expand(5, 8)
    labels = torch.arange(5)
    with torch.no_grad():
        images = gen(z, labels)
        assert (images[1:] - images[:1]).abs().amax(dim=(1, 2, 3)).min() > 1e-4
        logits = disc(images[:1].expand(5, 1, 8, 8), labels)
    assert (logits[1:] - logits[0]).abs().min() > 1e-6


def test_vae_sampling_is_seeded():
    torch.manual_seed(0)
    vae = VAE(image_size=8, channels=1, latent_dim=6, base_channels=4)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        a, mu, logvar = vae(x, seed=3)
        b, _, _ = vae(x, seed=3)
        c, _, _ = vae(x, seed=4)
        d, _, _ = vae(x, seed=3, offset=12)  # offset = N * latent_dim skips the first draw exactly
        z = vae.reparameterize(mu, logvar, seed=3)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert (a - c).abs().max() > 1e-4 and (a - d).abs().max() > 1e-4
    torch.testing.assert_close(a, vae.decode(z).detach(), atol=0, rtol=0)


def test_unet_dropout_only_in_training():
    torch.manual_seed(0)
    net = UnetGenerator(num_downs=6, ngf=4, dropout=True, fused=False)
    assert [lvl.dropout for lvl in net.levels] == [False, False, False, False, True, False]
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        net.train()
        assert (net(x) - net(x)).abs().max() > 1e-5
        net.eval()
        torch.testing.assert_close(net(x), net(x), atol=0, rtol=0)


def _count(cls: type[nn.Module], **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in cls(**kwargs, fused=False).parameters())


def test_parameter_counts(upstream_arch):
    """REFERENCE.md: unet_256 (ngf=64) has 54.41 M parameters, resnet_9blocks 11.38 M; as the reference."""
    unet256 = _count(UnetGenerator, num_downs=8, ngf=64, norm="batch")
    res9 = _count(ResnetGenerator, ngf=64, n_blocks=9, norm="instance")
    assert round(unet256 / 1e6, 2) == 54.41
    assert round(res9 / 1e6, 2) == 11.38
    for netG, ours in [
        ("unet_256", unet256),
        ("resnet_9blocks", res9),
        ("unet_128", _count(UnetGenerator, num_downs=7, ngf=64, norm="instance")),
        ("resnet_6blocks", _count(ResnetGenerator, ngf=64, n_blocks=6, norm="batch")),
    ]:
        norm = "instance" if netG in ("resnet_9blocks", "unet_128") else "batch"
        with torch.device("meta"):
            ref = upstream_arch.build(netG, ngf=64, norm=norm, dropout=False)
        assert ours == sum(p.numel() for p in ref.parameters()), netG


@pytest.mark.parametrize("name", list(NETS))
def test_spec_round_trip(name):
    spec = NETS[name][0]
    net = build_net(spec, fused=False)
    check_spec(net.spec)
    again = build_net(net.spec, fused=False)
    assert net.spec == again.spec
    assert {k: v.shape for k, v in net.state_dict().items()} == {
        k: v.shape for k, v in again.state_dict().items()
    }
    for key, value in spec.items():
        assert net.spec[key] == value


def test_build_net_errors():
    with pytest.raises(SpecError, match="unknown architecture 'unet_100'"):
        build_net({"arch": "unet_100"})
    with pytest.raises(SpecError, match="unknown architecture 'transformer'"):
        build_net({"arch": "transformer"})
    with pytest.raises(SpecError, match=r"unknown keys \['width'\]"):
        build_net({"arch": "patchgan", "width": 3})
    with pytest.raises(SpecError, match="num_downs=7, but the architecture implies 8"):
        build_net({"arch": "unet_256", "num_downs": 7})
    with pytest.raises(SpecError, match="'arch' key"):
        build_net({"ngf": 3})
    with pytest.raises(ValueError, match="norm must be one of"):
        build_net({"arch": "resnet_6blocks", "norm": "group"})
    with pytest.raises(ValueError, match="ngf must be >= 1, got 0"):
        build_net({"arch": "unet_64", "ngf": 0})
    with pytest.raises(ValueError, match="image_size must be a power of two >= 8, got 48"):
        build_net({"arch": "vae", "image_size": 48})
    with pytest.raises(TypeError, match="ngf must be an int, got float"):
        build_net({"arch": "resnet_6blocks", "ngf": 8.0})


def test_input_errors():
    unet = UnetGenerator(num_downs=5, ngf=4, fused=False)
    with pytest.raises(ValueError, match="multiples of 32, got 32x40"):
        unet(torch.zeros(1, 3, 32, 40))
    with pytest.raises(ValueError, match="must have 3 channels, got 1"):
        unet(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="must be 4-D"):
        unet(torch.zeros(3, 32, 32))
    res = ResnetGenerator(ngf=4, n_blocks=1, fused=False)
    with pytest.raises(ValueError, match="multiples of 4, got 30x32"):
        res(torch.zeros(1, 3, 30, 32))
    gen = DCGANGenerator(latent_dim=4, image_size=8, ngf=4, num_classes=2, fused=False)
    with pytest.raises(ValueError, match="needs labels"):
        gen(torch.zeros(1, 4))
    with pytest.raises(TypeError, match="labels must be int64"):
        gen(torch.zeros(1, 4), torch.zeros(1, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 4\)"):
        gen(torch.zeros(1, 5), torch.zeros(1, dtype=torch.int64))
    plain = DCGANDiscriminator(image_size=8, ndf=4, fused=False)
    with pytest.raises(ValueError, match="unconditional"):
        plain(torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match="must be 8x8, got 16x16"):
        plain(torch.zeros(1, 3, 16, 16))
    vae = VAE(image_size=8, latent_dim=2, base_channels=4, fused=False)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 2\)"):
        vae.decode(torch.zeros(1, 3))
