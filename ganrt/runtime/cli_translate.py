"""``ganrt translate MODEL INPUT... -o OUTDIR``: translate image files (or folders of them) with a model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganrt.cli_checks import output_dir, positive_int
from ganrt.errors import CLIError
from ganrt.runtime._cli_common import add_load_arguments, load_model, user_errors

# translate_file's default (ganrt.runtime.translator.MAX_PIXELS), repeated: this module must stay light.
MAX_PIXELS = 4096 * 4096

HELP = "Translate image files with a Pix2Pix/CycleGAN model (engine, ONNX or run directory)."
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_load_arguments(parser)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--out-dir", required=True, type=Path, help="folder for the translated PNGs")
    parser.add_argument(
        "--resize",
        choices=("pad", "resize", "none"),
        default=None,
        help="sizes the model cannot take: pad and crop back, resize and back, or fail "
        "(default: pad for dynamic-size models, resize for fixed-size ones)",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int(),
        default=MAX_PIXELS,
        help=f"refuse images with more pixels than this, from their header, before decoding them (a "
        f"decompression bomb guard; default {MAX_PIXELS} = 4096*4096, as ganrt serve)",
    )


def _collect(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise CLIError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CLIError(f"{path}: no such file or folder")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise CLIError(f"{path} and {stems[path.stem]} would both be written as {path.stem}.png")
        stems[path.stem] = path
    return files


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    output_dir(args.out_dir, "-o/--out-dir")
    files = _collect(args.inputs)
    console = Console(stderr=True)
    with load_model(args) as model, user_errors():
        if model.metadata.task != "translate":
            raise CLIError(
                f"{args.model} is a {model.metadata.family} {model.metadata.task} model; "
                f"use `ganrt sample` for samplers"
            )
        with Progress(console=console, transient=True, disable=len(files) < 2) as progress:
            task = progress.add_task("translating", total=len(files))
            for src in files:
                model.translate_file(
                    src, args.out_dir / f"{src.stem}.png", resize=args.resize, max_pixels=args.max_pixels
                )
                progress.advance(task)
    console.print(
        f"translated {len(files)} image(s) with {model.backend} on {model.device} -> {args.out_dir}"
    )
    return 0
