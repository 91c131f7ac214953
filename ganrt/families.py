"""The family registry: what Pix2Pix, CycleGAN, VAE and DCGAN/CGAN *are*, written down once.

Every stage asks this module instead of keeping its own table: run directories (which nets a run holds),
training (default options, dataset layout), export (which net a part is, its task and graph I/O), the runtime
(what a run directory's generator computes and how to describe it), bench (the reference architecture) and
serve (through the runtime). The training steps themselves live in :mod:`ganrt.train.families`, keyed by the
same names.

>>> fam = family("cyclegan")
>>> fam.part(direction="BtoA").net
'G_B'
>>> fam.metadata_for(net, part=fam.part(), image_size=256)   # doctest: +SKIP
ArtifactMetadata(family='cyclegan', task='translate', ...)

Importing this module is cheap (no torch); :meth:`Family.metadata_for` only reads attributes of the net.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganrt.artifact import ArtifactMetadata

TASKS: tuple[str, ...] = ("translate", "sample", "encode")
# The choices the families' ``norm`` and ``gan_mode`` options take (the models implement them, training checks
# them): kept here, free of torch, so that option checks and ``ganrt --help`` never import the models.
NORMS: tuple[str, ...] = ("batch", "instance", "none")
GAN_MODES: tuple[str, ...] = ("vanilla", "lsgan", "wgangp")
DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")


@dataclasses.dataclass(frozen=True)
class Part:
    """One network a family can run for inference (and export): ``name`` (``generator``, ``decoder``,
    ``encoder``), the run-directory ``net`` that computes it, its ``task`` and, for CycleGAN, the
    ``direction`` it translates in."""

    name: str
    net: str
    task: str
    direction: str | None = None


@dataclasses.dataclass(frozen=True)
class Family:
    """Static description of one model family.

    ``nets``: every network a run directory of the family holds (discriminators included).
    ``parts``: what can be run and exported, the default first.
    ``data_kind``: the dataset layout training reads (``aligned`` A|B pairs, ``unaligned`` trainA/trainB,
    ``folder`` of images, optionally class subfolders).
    ``train_defaults``: the reference hyper-parameters beyond the options every family shares.
    ``reference_spec`` / ``reference_size`` / ``width_key``: the reference generator ``ganrt bench`` builds for
    the family name (``width_key`` is the spec key ``--ngf`` sets).
    """

    name: str
    nets: tuple[str, ...]
    parts: tuple[Part, ...]
    data_kind: str
    train_defaults: Mapping[str, Any]
    reference_spec: Mapping[str, Any]
    reference_size: int
    width_key: str = "ngf"

    @property
    def generator(self) -> str:
        """The run-directory net of the default part (``G``, ``G_A``, ``VAE``)."""
        return self.parts[0].net

    @property
    def task(self) -> str:
        """Task of the default part: ``translate`` for translators, ``sample`` for generators/decoders."""
        return self.parts[0].task

    @property
    def translation(self) -> bool:
        return self.task == "translate"

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.name for p in self.parts))

    @property
    def inference_nets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.net for p in self.parts))

    def part(self, name: str | None = None, *, direction: str | None = None, net: str | None = None) -> Part:
        """The part called ``name`` (default: the family's first), for CycleGAN in ``direction`` (default
        ``AtoB``), or the part computed by run-directory net ``net``. Raises ``ValueError`` naming the
        choices."""
        if net is not None:
            if name is not None or direction is not None:
                raise ValueError("pass either net= or name=/direction=, not both")
            found = [p for p in self.parts if p.net == net]
            if not found:
                raise ValueError(
                    f"net must be one of the {self.name} inference nets {self.inference_nets}, got {net!r}"
                )
            return found[0]
        name = name or self.parts[0].name
        if name not in self.part_names:
            raise ValueError(f"part must be one of {self.part_names} for a {self.name} run, got {name!r}")
        candidates = [p for p in self.parts if p.name == name]
        directions = [p.direction for p in candidates if p.direction is not None]
        if not directions:
            if direction not in (None, "AtoB"):
                raise ValueError(f"direction applies to cyclegan runs only; this is a {self.name} run")
            return candidates[0]
        direction = direction or "AtoB"
        if direction not in directions:
            raise ValueError(f"direction must be one of {tuple(directions)}, got {direction!r}")
        return next(p for p in candidates if p.direction == direction)

    def metadata_for(
        self,
        net: Any,
        *,
        part: Part,
        image_size: int,
        precision: str = "fp32",
        config_hash: str = "",
        ganrt_version: str | None = None,
    ) -> ArtifactMetadata:
        """The :class:`~ganrt.artifact.ArtifactMetadata` of ``net`` running as ``part``: the one derivation
        that the torch backend, export, bench and serve all use, so a run directory and every artifact
        exported from it describe themselves identically.

        ``net`` is the built network (its ``in_channels``, ``out_channels``, ``multiple``, ``latent_dim``,
        ``num_classes``, ``image_size`` attributes); ``image_size`` the run's native (training) resolution.
        Image channels of a sampler are its *output* channels (a DCGAN's ``in_channels`` is its latent size).
        """
        from ganrt import __version__
        from ganrt.artifact import ArtifactMetadata

        if part.task == "translate":
            in_ch, out_ch = int(net.in_channels), int(net.out_channels)
            size, multiple = int(image_size), int(net.multiple)
            latent_dim = num_classes = 0
        else:
            in_ch = out_ch = int(net.out_channels)
            size = int(net.image_size)
            # An encoder takes exactly its native size; a sampler produces it (no input image to divide).
            multiple = size if part.task == "encode" else 1
            latent_dim = int(net.latent_dim)
            num_classes = int(getattr(net, "num_classes", 0)) if part.task == "sample" else 0
        return ArtifactMetadata(
            family=self.name,
            task=part.task,
            in_channels=in_ch,
            out_channels=out_ch,
            image_size=size,
            multiple=multiple,
            latent_dim=latent_dim,
            num_classes=num_classes,
            precision=precision,
            config_hash=config_hash,
            ganrt_version=__version__ if ganrt_version is None else ganrt_version,
        )

    def reference(self, *, size: int | None = None, width: int | None = None) -> dict[str, Any]:
        """The ``build_net`` spec of the family's reference generator at ``size`` pixels (samplers build for
        it; translators take any multiple), ``width`` overriding ``width_key`` (``None``: the reference
        width)."""
        spec = dict(self.reference_spec)
        if "image_size" in spec:
            spec["image_size"] = self.reference_size if size is None else size
        if width is not None:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"width must be an integer >= 1, got {width!r}")
            spec[self.width_key] = width
        return spec


def _frozen(mapping: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


REGISTRY: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="pix2pix",
            nets=("G", "D"),
            parts=(Part("generator", "G", "translate"),),
            data_kind="aligned",
            train_defaults=_frozen({
                "image_size": 256, "ngf": 64, "ndf": 64, "netG": None, "n_layers_D": 3, "norm": "batch",
                "dropout": True, "gan_mode": "vanilla", "lambda_l1": 100.0, "lambda_gp": 10.0,
                "direction": "AtoB",
            }),  # fmt: skip
            reference_spec=_frozen({"arch": "unet_256", "in_channels": 3, "out_channels": 3, "norm": "batch"}),
            reference_size=256,
        ),
        Family(
            name="cyclegan",
            nets=("G_A", "G_B", "D_A", "D_B"),
            parts=(
                Part("generator", "G_A", "translate", "AtoB"),
                Part("generator", "G_B", "translate", "BtoA"),
            ),
            data_kind="unaligned",
            train_defaults=_frozen({
                "image_size": 256, "ngf": 64, "ndf": 64, "netG": "resnet_9blocks", "n_layers_D": 3,
                "norm": "instance", "dropout": False, "gan_mode": "lsgan", "lambda_cycle": 10.0,
                "lambda_identity": 0.5, "lambda_gp": 10.0, "pool_size": 50,
            }),  # fmt: skip
            reference_spec=_frozen(
                {"arch": "resnet_9blocks", "in_channels": 3, "out_channels": 3, "norm": "instance"}
            ),
            reference_size=256,
        ),
        Family(
            name="vae",
            nets=("VAE",),
            parts=(Part("decoder", "VAE", "sample"), Part("encoder", "VAE", "encode")),
            data_kind="folder",
            train_defaults=_frozen({"image_size": 64, "ngf": 32, "latent_dim": 128, "beta": 1.0}),
            reference_spec=_frozen({"arch": "vae", "image_size": 64, "channels": 3}),
            reference_size=64,
            width_key="base_channels",
        ),
        Family(
            name="dcgan",
            nets=("G", "D"),
            parts=(Part("generator", "G", "sample"),),
            data_kind="folder",
            train_defaults=_frozen({
                "image_size": 64, "ngf": 64, "ndf": 64, "latent_dim": 100, "gan_mode": "vanilla",
                "conditional": False, "lambda_gp": 10.0,
            }),  # fmt: skip
            reference_spec=_frozen({"arch": "dcgan_g", "image_size": 64, "channels": 3}),
            reference_size=64,
        ),
    )
}
FAMILIES: tuple[str, ...] = tuple(REGISTRY)


def family(name: str) -> Family:
    """The registered family ``name``; ``ValueError`` listing the known ones otherwise."""
    found = REGISTRY.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {name!r}")
    return found
