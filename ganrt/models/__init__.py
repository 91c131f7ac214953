"""ganrt.models: the networks (Pix2Pix, CycleGAN, VAE, DCGAN/CGAN), their losses, run directories and the
import of reference Pix2Pix/CycleGAN checkpoints.

Every normalization + activation site runs through ``ganrt.ops.instance_norm_act`` when ``fused=True`` and
through stock PyTorch ops when ``fused=False``; both build the same network with the same parameter names.
"""

from __future__ import annotations

from ganrt.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganrt.models.layers import NORMS, Act, norm_act
from ganrt.models.losses import GAN_MODES, gan_loss, gradient_penalty
from ganrt.models.patchgan import NLayerDiscriminator
from ganrt.models.registry import ARCHS, SpecError, build_net, check_spec
from ganrt.models.resnet import ResnetGenerator
from ganrt.models.run import (
    FORMAT,
    Run,
    RunError,
    RunNotFoundError,
    config_hash,
    save_run,
)
from ganrt.models.unet import UnetGenerator
from ganrt.models.upstream import (
    UPSTREAM_NETS,
    UpstreamCheckpointError,
    import_upstream,
    load_upstream_generator,
    read_upstream_state_dict,
    upstream_run_config,
)
from ganrt.models.vae import VAE, vae_loss, vae_loss_terms

__all__ = [
    "ARCHS",
    "FORMAT",
    "GAN_MODES",
    "NORMS",
    "UPSTREAM_NETS",
    "VAE",
    "Act",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "NLayerDiscriminator",
    "ResnetGenerator",
    "Run",
    "RunError",
    "RunNotFoundError",
    "SpecError",
    "UnetGenerator",
    "UpstreamCheckpointError",
    "build_net",
    "check_spec",
    "config_hash",
    "gan_loss",
    "gradient_penalty",
    "import_upstream",
    "load_upstream_generator",
    "norm_act",
    "read_upstream_state_dict",
    "save_run",
    "upstream_run_config",
    "vae_loss",
    "vae_loss_terms",
]
