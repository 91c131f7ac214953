"""One class per model family: its networks, optimizers, training step, sample grid and held-out metric.

The steps follow the reference implementations (junyanz/pytorch-CycleGAN-and-pix2pix for Pix2Pix/CycleGAN,
Radford et al. / Mirza & Osindero for DCGAN/CGAN, Kingma & Welling for the VAE). All randomness inside a step
comes from torch's global generator, which the loop reseeds from ``(seed, step)`` before every step, and from
the numpy generator handed in (image pool), so a step is a pure function of the checkpointed state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganrt.data import Sample
from ganrt.families import family
from ganrt.models import build_net, gan_loss, gradient_penalty, vae_loss_terms
from ganrt.train.options import TrainError
from ganrt.train.plots import grid
from ganrt.train.pool import ImagePool
from ganrt.train.precision import Precision

# Fixed seeds for sample grids and held-out metrics, so pictures at different steps are comparable.
SAMPLE_SEED = 1234
EVAL_SEED = 4321


def fixed_normal(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The same N(0, 1) latents at every call (drawn on CPU, so identical on every device): sample grids."""
    gen = torch.Generator().manual_seed(SAMPLE_SEED)
    return torch.randn(shape, generator=gen).to(device)


def _requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class Family(ABC):
    """Networks + optimizers + step of one model family; ``nets`` maps run-directory net names to modules.

    What the family *is* (its nets, generator, task) comes from :mod:`ganrt.families`; this class adds how it
    trains.
    """

    name: ClassVar[str]

    @property
    def generator(self) -> str:
        """The inference net's name in ``nets``."""
        return family(self.name).generator

    @property
    def translation(self) -> bool:
        return family(self.name).translation

    def __init__(self, options: dict[str, Any], *, num_classes: int, device: torch.device, fused: bool,
                 precision: Precision | None = None) -> None:
        self.options, self.device, self.fused = options, device, fused
        self.precision = precision or Precision("fp32", device)
        self.nets: dict[str, nn.Module] = {}
        specs = self.specs(num_classes)
        if set(specs) != set(family(self.name).nets):
            raise TrainError(f"{self.name} builds nets {sorted(specs)}, the registry lists {family(self.name).nets}")
        for name, spec in specs.items():
            try:
                self.nets[name] = self.precision.prepare(build_net(spec, fused=fused).to(device).train())
            except ValueError as exc:
                raise TrainError(f"cannot build {self.name} net {name} ({spec['arch']}): {exc}") from exc
        multiple = int(self.nets[self.generator].multiple)
        if options["image_size"] % multiple:
            raise TrainError(
                f"image_size {options['image_size']} does not fit {self.name} generator "
                f"{self.nets[self.generator].spec['arch']}: it needs a multiple of {multiple}"
            )
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            # fused: PyTorch's single-kernel Adam, one pass over parameters, gradients and moments where the
            # default CPU implementation makes a dozen; at batch 1 Pix2Pix's 45M parameters made the default
            # optimizer a third of a training step. fused=False keeps stock PyTorch's default.
            opt: torch.optim.Adam(
                [p for n in members for p in self.nets[n].parameters()],
                lr=options["lr"], betas=(options["beta1"], options["beta2"]), fused=fused,
            )
            for opt, members in self.optimizer_groups().items()
        }

    @abstractmethod
    def specs(self, num_classes: int) -> dict[str, dict[str, Any]]:
        """Net name -> spec for :func:`ganrt.models.build_net`."""

    @abstractmethod
    def optimizer_groups(self) -> dict[str, list[str]]:
        """Optimizer name -> the nets it updates."""

    @abstractmethod
    def step(self, batch: Sample, rng: np.random.Generator) -> dict[str, float]:
        """One training step on ``batch`` (tensors on ``device``); returns the losses as floats. Backward passes
        and optimizer steps go through ``self.precision`` (loss scaling in fp16)."""

    def train_step(self, batch: Sample, rng: np.random.Generator) -> dict[str, float]:
        """:meth:`step` in the run's precision: what the training loop (and the benchmark) call."""
        with self.precision.step_scope():
            losses = self.step(batch, rng)
        self.precision.update()
        return losses

    @abstractmethod
    def sample_grid(self, fixed: Sample) -> np.ndarray:
        """uint8 (H, W, 3) picture of the current model on the fixed inputs (see :meth:`fixed_inputs`)."""

    def evaluate(self, heldout: Sample) -> dict[str, float]:
        """Held-out metrics on a fixed batch (empty when the family has none)."""
        return {}

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def channels(self) -> tuple[int, int]:
        """(in_channels, out_channels) of the inference net, for the run config."""
        g = self.nets[self.generator]
        return int(g.in_channels), int(g.out_channels)

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Checkpointed state beyond nets and optimizers: (tensors, JSON)."""
        return {}, {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Inverse of :meth:`extra_state`."""

    def _eval_mode(self) -> list[nn.Module]:
        nets = [n for n in self.nets.values() if n.training]
        for n in nets:
            n.eval()
        return nets


class Pix2Pix(Family):
    """Conditional GAN: U-Net G(A) -> B, PatchGAN D on (A, B) pairs; loss GAN + lambda_l1 * L1, D loss halved."""

    name = "pix2pix"

    def specs(self, num_classes: int) -> dict[str, dict[str, Any]]:
        o, c = self.options, self.options["channels"]
        return {
            "G": {"arch": o["netG"], "in_channels": c, "out_channels": c, "ngf": o["ngf"], "norm": o["norm"],
                  "dropout": o["dropout"]},
            "D": {"arch": "patchgan", "in_channels": 2 * c, "ndf": o["ndf"], "n_layers": o["n_layers_D"],
                  "norm": o["norm"]},
        }

    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"G": ["G"], "D": ["D"]}

    def step(self, batch: Sample, rng: np.random.Generator) -> dict[str, float]:
        G, D, o = self.nets["G"], self.nets["D"], self.options
        real_a, real_b = batch["A"], batch["B"]
        fake_b = G(real_a)
        mode = o["gan_mode"]

        _requires_grad([D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        real_ab, fake_ab = torch.cat([real_a, real_b], 1), torch.cat([real_a, fake_b.detach()], 1)
        loss_d = 0.5 * (gan_loss(D(fake_ab), False, mode) + gan_loss(D(real_ab), True, mode))
        if mode == "wgangp":
            with self.precision.fp32_scope():
                loss_d = loss_d + o["lambda_gp"] * gradient_penalty(D, real_ab, fake_ab)
        self.precision.backward(loss_d)
        self.precision.step(self.optimizers["D"])

        _requires_grad([D], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_g_gan = gan_loss(D(torch.cat([real_a, fake_b], 1)), True, mode)
        loss_g_l1 = F.l1_loss(fake_b, real_b)
        self.precision.backward(loss_g_gan + o["lambda_l1"] * loss_g_l1)
        self.precision.step(self.optimizers["G"])
        return {"D": loss_d.item(), "G_GAN": loss_g_gan.item(), "G_L1": loss_g_l1.item()}

    @torch.no_grad()
    def sample_grid(self, fixed: Sample) -> np.ndarray:
        was = self._eval_mode()
        try:
            fake = self.nets["G"](fixed["A"])
        finally:
            for n in was:
                n.train()
        return grid([[a, f, b] for a, f, b in zip(fixed["A"], fake, fixed["B"])])

    @torch.no_grad()
    def evaluate(self, heldout: Sample) -> dict[str, float]:
        was = self._eval_mode()
        try:
            return {"heldout_l1": F.l1_loss(self.nets["G"](heldout["A"]), heldout["B"]).item()}
        finally:
            for n in was:
                n.train()


class CycleGAN(Family):
    """Two generators G_A: A -> B, G_B: B -> A, discriminators D_A (on B) and D_B (on A); LSGAN by default, cycle
    loss lambda_cycle each way, identity loss lambda_identity * lambda_cycle, image pools for the D updates."""

    name = "cyclegan"

    def __init__(self, options: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.pools = {"A": ImagePool(options["pool_size"]), "B": ImagePool(options["pool_size"])}

    def specs(self, num_classes: int) -> dict[str, dict[str, Any]]:
        o, c = self.options, self.options["channels"]
        g = {"arch": o["netG"], "in_channels": c, "out_channels": c, "ngf": o["ngf"], "norm": o["norm"],
             "dropout": o["dropout"]}
        d = {"arch": "patchgan", "in_channels": c, "ndf": o["ndf"], "n_layers": o["n_layers_D"], "norm": o["norm"]}
        return {"G_A": dict(g), "G_B": dict(g), "D_A": dict(d), "D_B": dict(d)}

    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"G": ["G_A", "G_B"], "D": ["D_A", "D_B"]}

    def step(self, batch: Sample, rng: np.random.Generator) -> dict[str, float]:
        G_A, G_B, D_A, D_B = (self.nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
        o, mode = self.options, self.options["gan_mode"]
        lam, lam_idt = o["lambda_cycle"], o["lambda_identity"]
        real_a, real_b = batch["A"], batch["B"]
        fake_b = G_A(real_a)
        rec_a = G_B(fake_b)
        fake_a = G_B(real_b)
        rec_b = G_A(fake_a)

        _requires_grad([D_A, D_B], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        losses: dict[str, torch.Tensor] = {}
        if lam_idt > 0:
            losses["idt_A"] = F.l1_loss(G_A(real_b), real_b) * lam * lam_idt
            losses["idt_B"] = F.l1_loss(G_B(real_a), real_a) * lam * lam_idt
        losses["G_A"] = gan_loss(D_A(fake_b), True, mode)
        losses["G_B"] = gan_loss(D_B(fake_a), True, mode)
        losses["cycle_A"] = F.l1_loss(rec_a, real_a) * lam
        losses["cycle_B"] = F.l1_loss(rec_b, real_b) * lam
        self.precision.backward(torch.stack(list(losses.values())).sum())
        self.precision.step(self.optimizers["G"])

        _requires_grad([D_A, D_B], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        for d_name, D, real, fake, pool in (("D_A", D_A, real_b, fake_b, "B"), ("D_B", D_B, real_a, fake_a, "A")):
            old = self.pools[pool].query(fake, rng)
            loss = 0.5 * (gan_loss(D(real), True, mode) + gan_loss(D(old), False, mode))
            if mode == "wgangp":
                with self.precision.fp32_scope():
                    loss = loss + o["lambda_gp"] * gradient_penalty(D, real, old)
            self.precision.backward(loss)
            losses[d_name] = loss
        self.precision.step(self.optimizers["D"])
        return {k: v.item() for k, v in losses.items()}

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"pool_{k}": s.cpu() for k, p in self.pools.items() if (s := p.state()) is not None}
        return tensors, {"pools": {k: len(p.images) for k, p in self.pools.items()}}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        for k, pool in self.pools.items():
            pool.load_state(tensors.get(f"pool_{k}"), self.device)
            if len(pool.images) != meta["pools"][k]:
                raise TrainError(f"checkpoint pool {k} holds {len(pool.images)} images, state says {meta['pools'][k]}")

    @torch.no_grad()
    def _translate(self, fixed: Sample) -> tuple[torch.Tensor, ...]:
        was = self._eval_mode()
        try:
            fake_b = self.nets["G_A"](fixed["A"])
            fake_a = self.nets["G_B"](fixed["B"])
            return fake_b, self.nets["G_B"](fake_b), fake_a, self.nets["G_A"](fake_a)
        finally:
            for n in was:
                n.train()

    def sample_grid(self, fixed: Sample) -> np.ndarray:
        fake_b, rec_a, fake_a, rec_b = self._translate(fixed)
        rows = [[a, f, r] for a, f, r in zip(fixed["A"], fake_b, rec_a)]
        rows += [[b, f, r] for b, f, r in zip(fixed["B"], fake_a, rec_b)]
        return grid(rows)

    def evaluate(self, heldout: Sample) -> dict[str, float]:
        _, rec_a, _, rec_b = self._translate(heldout)
        cycle = 0.5 * (F.l1_loss(rec_a, heldout["A"]) + F.l1_loss(rec_b, heldout["B"]))
        return {"heldout_cycle_l1": cycle.item()}


class VAEFamily(Family):
    """Convolutional VAE; loss = reconstruction (sum of squared errors per image) + beta * KL."""

    name = "vae"

    def specs(self, num_classes: int) -> dict[str, dict[str, Any]]:
        o = self.options
        return {"VAE": {"arch": "vae", "image_size": o["image_size"], "channels": o["channels"],
                        "latent_dim": o["latent_dim"], "base_channels": o["ngf"]}}

    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"VAE": ["VAE"]}

    def step(self, batch: Sample, rng: np.random.Generator) -> dict[str, float]:
        vae = self.nets["VAE"]
        x = batch["image"]
        # The Philox seed for this step's reparameterization noise, from the reseeded global generator.
        seed = int(torch.randint(0, 2**62, (1,)).item())
        recon, mu, logvar = vae(x, seed=seed)
        rec, kl = vae_loss_terms(recon, x, mu, logvar)
        self.optimizers["VAE"].zero_grad(set_to_none=True)
        self.precision.backward(rec + self.options["beta"] * kl)
        self.precision.step(self.optimizers["VAE"])
        return {"loss": (rec + self.options["beta"] * kl).item(), "recon": rec.item(), "kl": kl.item()}

    @torch.no_grad()
    def sample_grid(self, fixed: Sample) -> np.ndarray:
        vae = self.nets["VAE"]
        was = self._eval_mode()
        try:
            x = fixed["image"][:8]
            mu, _ = vae.encode(x)
            z = fixed_normal((16, vae.latent_dim), self.device)
            prior = vae.decode(z)
            rows = [list(x), list(vae.decode(mu)), list(prior[:8]), list(prior[8:])]
        finally:
            for n in was:
                n.train()
        return grid(rows)

    @torch.no_grad()
    def evaluate(self, heldout: Sample) -> dict[str, float]:
        vae = self.nets["VAE"]
        was = self._eval_mode()
        try:
            x = heldout["image"]
            recon, mu, logvar = vae(x, seed=EVAL_SEED)
            rec, kl = vae_loss_terms(recon, x, mu, logvar)
        finally:
            for n in was:
                n.train()
        return {"heldout_neg_elbo": (rec + kl).item()}


class DCGAN(Family):
    """DCGAN (or CGAN with ``conditional``): G(z[, label]) vs D(x[, label]); vanilla GAN loss by default."""

    name = "dcgan"

    def specs(self, num_classes: int) -> dict[str, dict[str, Any]]:
        o = self.options
        k = num_classes if o["conditional"] else 0
        return {
            "G": {"arch": "dcgan_g", "latent_dim": o["latent_dim"], "channels": o["channels"],
                  "image_size": o["image_size"], "ngf": o["ngf"], "num_classes": k},
            "D": {"arch": "dcgan_d", "channels": o["channels"], "image_size": o["image_size"], "ndf": o["ndf"],
                  "num_classes": k},
        }

    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"G": ["G"], "D": ["D"]}

    def step(self, batch: Sample, rng: np.random.Generator) -> dict[str, float]:
        G, D, o = self.nets["G"], self.nets["D"], self.options
        mode = o["gan_mode"]
        real = batch["image"]
        labels = batch["label"] if o["conditional"] else None
        z = torch.randn(real.shape[0], o["latent_dim"], device=self.device)
        fake = G(z, labels)

        _requires_grad([D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_d = gan_loss(D(real, labels), True, mode) + gan_loss(D(fake.detach(), labels), False, mode)
        if mode == "wgangp":
            with self.precision.fp32_scope():
                loss_d = loss_d + o["lambda_gp"] * gradient_penalty(D, real, fake, labels)
        self.precision.backward(loss_d)
        self.precision.step(self.optimizers["D"])

        _requires_grad([D], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_g = gan_loss(D(fake, labels), True, mode)
        self.precision.backward(loss_g)
        self.precision.step(self.optimizers["G"])
        return {"D": loss_d.item(), "G": loss_g.item()}

    @torch.no_grad()
    def sample_grid(self, fixed: Sample) -> np.ndarray:
        G = self.nets["G"]
        classes = int(G.num_classes)
        rows = min(classes, 10) if classes else 8
        z = fixed_normal((rows * 8, G.latent_dim), self.device)
        labels = torch.arange(rows, device=self.device).repeat_interleave(8) if classes else None
        was = self._eval_mode()
        try:
            images = G(z, labels)
        finally:
            for n in was:
                n.train()
        return grid(images, columns=8)


FAMILY_CLASSES: dict[str, type[Family]] = {c.name: c for c in (Pix2Pix, CycleGAN, VAEFamily, DCGAN)}
