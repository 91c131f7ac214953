"""The example inputs the web page offers (``ganrt/serve/static/examples``) and how they are made.

- ``edges-{size}-{name}.png``: edge maps of the ``test`` split of ``builtin:edges2photos`` (tiles of the
  training photos that training never sees: the domain of ``make demo``'s Pix2Pix), at the sizes translators
  are usually trained at. The page picks the smallest size at or above a model's native size.
- ``face-{k}.png``: held-out faces of ``builtin:faces`` (25x25 gray), for a VAE's encoder.

They are committed; ``python -m ganrt.serve.examples`` writes them again from the bundled images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

EDGE_SIZES = (32, 64, 128, 256)
# Positions in the test split (interleaved by photo), one crop of each of four photos with clear structure.
EDGE_ITEMS = {"retina": 1, "page": 2, "tissue": 4, "coins": 5}
FACES = 6
FACE_SIZE = 25
FOLDER = Path(__file__).with_name("static") / "examples"


def edge_examples(size: int) -> dict[str, np.ndarray]:
    """{name: uint8 (size, size, 3) edge map}."""
    from ganrt.data import fixed_batch, open_dataset, to_uint8

    test = open_dataset("builtin:edges2photos", kind="aligned", split="test", image_size=size, augment=False)
    edges = to_uint8(fixed_batch(test, max(EDGE_ITEMS.values()) + 1)["A"])
    return {name: edges[i] for name, i in EDGE_ITEMS.items()}


def face_examples() -> list[np.ndarray]:
    """uint8 (25, 25, 1) faces of the held-out split of ``builtin:faces``."""
    from ganrt.data import fixed_batch, open_dataset, to_uint8

    faces = open_dataset(
        "builtin:faces", kind="folder", split="test", image_size=FACE_SIZE, augment=False, channels=1
    )
    return list(to_uint8(fixed_batch(faces, FACES)["image"]))


def write_examples(folder: Path = FOLDER) -> list[Path]:
    """Write every example PNG into ``folder``; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for size in EDGE_SIZES:
        for name, image in edge_examples(size).items():
            written.append(folder / f"edges-{size}-{name}.png")
            Image.fromarray(image).save(written[-1], optimize=True)
    for k, face in enumerate(face_examples(), start=1):
        written.append(folder / f"face-{k}.png")
        Image.fromarray(face[:, :, 0]).save(written[-1], optimize=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganrt.serve.examples", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=FOLDER, help=f"folder (default: {FOLDER})")
    args = parser.parse_args(argv)
    for path in write_examples(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
