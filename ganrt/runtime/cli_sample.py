"""``ganrt sample MODEL -n 16 --seed 0 -o grid.png``: a grid of samples from a DCGAN/CGAN or VAE decoder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganrt.cli_checks import output_file
from ganrt.errors import CLIError
from ganrt.runtime._cli_common import add_load_arguments, load_model, user_errors

HELP = "Sample a grid of images from a DCGAN/CGAN generator or VAE decoder."


def _labels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"labels must be comma-separated integers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_load_arguments(parser)
    parser.add_argument("-n", "--num", type=int, default=16, help="number of samples (default: 16)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Philox seed; the same seed gives the same "
        "images on every backend (default: a fresh seed, printed)",
    )
    parser.add_argument(
        "--labels",
        type=_labels,
        default=None,
        help="class labels for a class-conditional model: one, or one per sample (default: cycle)",
    )
    parser.add_argument("--nrow", type=int, default=None, help="images per grid row (default: square-ish)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="grid image to write (.png, ...)")


def run(args: argparse.Namespace) -> int:
    import secrets

    from PIL import Image
    from rich.console import Console

    from ganrt.runtime.images import grid
    from ganrt.runtime.model import save_image
    from ganrt.runtime.sampler import MAX_COUNT

    if not 1 <= args.num <= MAX_COUNT:
        raise CLIError(f"-n must be in 1..{MAX_COUNT} (samples per grid), got {args.num}")
    output = output_file(args.output, "-o/--output")
    assert output is not None
    if Image.registered_extensions().get(output.suffix.lower()) is None:
        raise CLIError(
            f"-o/--output {str(args.output)!r}: unknown image extension {output.suffix!r}; use .png, .jpg, ..."
        )
    if args.nrow is not None and args.nrow < 1:
        raise CLIError(f"--nrow must be >= 1, got {args.nrow}")
    seed = secrets.randbits(31) if args.seed is None else args.seed
    labels = args.labels
    if labels is not None and len(labels) == 1:
        labels = labels[0]
    with load_model(args) as model, user_errors():
        if model.task != "sample":
            raise CLIError(
                f"{args.model} is a {model.metadata.family} {model.task} model; `ganrt sample` needs a DCGAN/CGAN "
                f"generator or a VAE decoder"
            )
        images = model.sample(args.num, seed=seed, labels=labels)
        save_image(grid(images, args.nrow), args.output)
    Console(stderr=True).print(
        f"wrote {args.num} samples (seed {seed}) with {model.backend} on {model.device} -> {args.output}"
    )
    return 0
