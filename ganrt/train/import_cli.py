"""``ganrt import-upstream``: turn a reference ``latest_net_G.pth`` into a ganrt run directory.

Wraps :func:`ganrt.models.import_upstream`; the resulting run (pix2pix ``G`` for U-Nets, cyclegan ``G_A`` for
ResNets) is what ``ganrt export`` and ``ganrt.load`` accept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Import a generator checkpoint of the reference pytorch-CycleGAN-and-pix2pix code as a ganrt run."

NETS = ("unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="reference checkpoint, e.g. checkpoints/facades_label2photo/latest_net_G.pth")
    parser.add_argument("--netG", required=True, choices=NETS, help="the reference's --netG used for training")
    parser.add_argument("--ngf", type=int, default=64, help="the reference's --ngf (default 64)")
    parser.add_argument("--norm", choices=("batch", "instance"), default=None,
                        help="the reference's --norm (default: batch for U-Nets as in pix2pix, instance for ResNets "
                        "as in CycleGAN)")
    parser.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=None,
                        help="whether the reference trained with dropout (default: on for U-Nets as in pix2pix, off "
                        "for ResNets as in CycleGAN); inference never applies it")
    parser.add_argument("--stats", choices=("batch", "running"), default="batch",
                        help="batch: per-image statistics, what the reference test.py computes by default; running: "
                        "the stored running statistics, as test.py --eval")
    parser.add_argument("--image-size", type=int, default=None, help="nominal image size recorded in the run "
                        "(default 256)")
    parser.add_argument("--out", "-o", required=True, help="run directory to create")
    parser.add_argument("--force", action="store_true", help="replace an existing run in --out")


def run(args: argparse.Namespace) -> int:
    from ganrt.errors import CLIError
    from ganrt.models import UpstreamCheckpointError, import_upstream
    from ganrt.train.loop import check_run_dir, claim_run_dir
    from ganrt.train.options import TrainError

    unet = args.netG.startswith("unet")
    norm = args.norm or ("batch" if unet else "instance")
    dropout = unet if args.dropout is None else args.dropout
    out = Path(args.out).expanduser()
    try:
        check_run_dir(out, resume=False, force=args.force)
        if out.is_dir():  # --force: remove the earlier run's outputs; a new folder appears only on success
            claim_run_dir(out)
        path = import_upstream(args.path, out, netG=args.netG, ngf=args.ngf, norm=norm, dropout=dropout,
                               stats=args.stats, image_size=args.image_size, force=args.force)
    except (TrainError, UpstreamCheckpointError, FileNotFoundError, FileExistsError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    print(f"run directory: {path} (netG {args.netG}, ngf {args.ngf}, norm {norm}, dropout {dropout}, "
          f"stats {args.stats})")
    return 0
