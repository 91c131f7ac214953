"""``ganrt train {pix2pix,cyclegan,vae,dcgan}``: command line of :func:`ganrt.train.train`.

Every option defaults to ``None`` here so that ``--resume`` can tell the options a user repeats from the ones
left alone; the defaults themselves (the reference hyper-parameters) live in :mod:`ganrt.train.options`.
"""

from __future__ import annotations

import argparse
import sys

from ganrt.cli_checks import finite_float
from ganrt.families import FAMILIES

HELP = "Train a Pix2Pix, CycleGAN, VAE or DCGAN model into a run directory."

# (flag, dest, type or "bool", help, families that take it)
_FAMILY_OPTIONS: tuple[tuple[str, str, object, str, tuple[str, ...]], ...] = (
    ("--netG", "netG", str, ("generator architecture (pix2pix: unet_64|unet_128|unet_256, default unet_<image "
     "size>; cyclegan: resnet_6blocks|resnet_9blocks, default resnet_9blocks)"), ("pix2pix", "cyclegan")),
    ("--ndf", "ndf", int, "discriminator width (default 64)", ("pix2pix", "cyclegan", "dcgan")),
    ("--n-layers-D", "n_layers_D", int, "PatchGAN depth (default 3: the 70x70 PatchGAN)", ("pix2pix", "cyclegan")),
    ("--norm", "norm", str, "normalization: batch (pix2pix default), instance (cyclegan default), none",
     ("pix2pix", "cyclegan")),
    ("--dropout", "dropout", "bool", "dropout in the generator (pix2pix default on, cyclegan off)",
     ("pix2pix", "cyclegan")),
    ("--gan-mode", "gan_mode", str, "GAN objective: vanilla | lsgan | wgangp (default: vanilla, cyclegan lsgan)",
     ("pix2pix", "cyclegan", "dcgan")),
    ("--lambda-l1", "lambda_l1", float, "weight of the L1 loss (default 100)", ("pix2pix",)),
    ("--lambda-cycle", "lambda_cycle", float, "weight of each cycle-consistency loss (default 10)", ("cyclegan",)),
    ("--lambda-identity", "lambda_identity", float, "identity loss, relative to the cycle weight (default 0.5)",
     ("cyclegan",)),
    ("--lambda-gp", "lambda_gp", float, "gradient-penalty weight for --gan-mode wgangp (default 10)",
     ("pix2pix", "cyclegan", "dcgan")),
    ("--pool-size", "pool_size", int, "image pool size for the discriminators (default 50, 0 disables)",
     ("cyclegan",)),
    ("--direction", "direction", str, "AtoB or BtoA: which half of an aligned pair is the input (default AtoB)",
     ("pix2pix",)),
    ("--beta", "beta", float, "KL weight of the beta-VAE loss (default 1)", ("vae",)),
    ("--latent-dim", "latent_dim", int, "latent size (default: vae 128, dcgan 100)", ("vae", "dcgan")),
    ("--conditional", "conditional", "bool", ("class-conditional GAN (CGAN) on a labelled dataset (one "
     "subfolder per class, or builtin:digits)"), ("dcgan",)),
    ("--channels", "channels", int, "image channels, 1 or 3 (default 3; 1 for builtin:faces and builtin:digits)",
     FAMILIES),
    ("--beta1", "beta1", float, "Adam beta1 (default 0.5)", FAMILIES),
    ("--beta2", "beta2", float, "Adam beta2 (default 0.999)", FAMILIES),
    ("--decay-start", "decay_start", float, ("fraction of the run before the linear learning-rate decay starts "
     "(default 0.5)"), FAMILIES),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("family", choices=FAMILIES, help="model family")
    parser.add_argument("--data", help="dataset folder or builtin:edges2photos|faces|digits (optional with --resume)")
    parser.add_argument("--out", "-o", required=True, help="run directory to create (or continue with --resume)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="number of training steps (batches)")
    length.add_argument("--epochs", type=int, help="number of passes over the dataset")
    parser.add_argument("--batch-size", type=int, help="images per step (default 1)")
    parser.add_argument("--lr", type=finite_float(),
                        help="Adam learning rate (default 2e-4); constant for the first half, "
                        "then linear decay to zero")
    parser.add_argument("--image-size", type=int, help="training crop size (default: 256 translation, 64 samplers)")
    parser.add_argument("--ngf", type=int, help="generator width (default 64; vae 32)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--seed", type=int, help="seed for initialization, data order and augmentation (default 0)")
    parser.add_argument("--sample-every", type=int, metavar="K",
                        help="checkpoint, sample grid and loss plot every K steps (default: a tenth of the run, "
                        "at most 500)")
    parser.add_argument("--fused", action=argparse.BooleanOptionalAction, default=None,
                        help="use ganrt's fused kernels and PyTorch's single-kernel Adam (default) or stock "
                        "PyTorch ops and Adam")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                        help="training precision: auto (default: bf16 where the device has native bf16, i.e. "
                        "AMX/AVX512_BF16 CPUs and sm_80+ GPUs, else fp32), fp32, bf16, or fp16 (CUDA only, with "
                        "a gradient scaler); weights and checkpoints stay fp32. --resume keeps the run's own")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    mode.add_argument("--force", action="store_true", help="overwrite the run in --out")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="show a progress bar (default on)")
    group = parser.add_argument_group("family options (defaults: the reference hyper-parameters)")
    for flag, dest, kind, text, families in _FAMILY_OPTIONS:
        text = f"{text} [{', '.join(families)}]" if families != FAMILIES else text
        if kind == "bool":
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            convert = finite_float() if kind is float else kind  # NaN/inf refused while parsing
            group.add_argument(flag, dest=dest, type=convert, default=None,  # type: ignore[arg-type]
                               help=text)


def run(args: argparse.Namespace) -> int:
    from ganrt.data import DataError
    from ganrt.errors import CLIError
    from ganrt.train import TrainError, train

    family_options = {}
    for flag, dest, _, _, families in _FAMILY_OPTIONS:
        value = getattr(args, dest)
        if value is None:
            continue
        if args.family not in families:
            raise CLIError(f"{flag} does not apply to {args.family} (it is an option of {', '.join(families)})")
        family_options[dest] = value
    try:
        path = train(
            args.family, data=args.data, out=args.out, steps=args.steps, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, image_size=args.image_size, ngf=args.ngf, device=args.device,
            seed=args.seed, resume=args.resume, force=args.force, fused=args.fused, precision=args.precision,
            progress=args.progress, sample_every=args.sample_every, **family_options,
        )  # fmt: skip
    except (TrainError, DataError) as exc:
        raise CLIError(str(exc)) from exc
    except KeyboardInterrupt as exc:
        if not exc.args:  # a second Ctrl-C: no checkpoint was written
            raise
        print(f"ganrt train: {exc.args[0]}; continue with --resume", file=sys.stderr)
        return 130
    print(f"run directory: {path} (config.json, weights.safetensors, samples/, loss.png, log.jsonl)")
    return 0
