"""What ``ganrt.load`` returns for generative models.

- :class:`Sampler`: DCGAN/CGAN generators and VAE decoders: ``sample``, ``decode``, ``interpolate``.
- :class:`VAE`: a VAE decoder with its encoder (a run directory, or ``encoder=``): adds ``encode``,
  ``reconstruct`` and interpolation between images.
- :class:`Encoder`: a VAE encoder artifact on its own: ``encode``.

Latents come from ganrt's counter-based Philox generator (:func:`ganrt.ops.standard_normal`), so one seed gives
the same images on every backend, device and process; :meth:`Sampler.latents` is that draw, public so a server
can batch several requests into one ``decode`` and still answer each exactly as ``sample`` would.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ganrt.ops.image import tensor_to_images_into
from ganrt.runtime import images as _images
from ganrt.runtime.model import Model, Part, _pad_rows, check_seed


class Sampler(Model):
    """A generator from latents (and class labels, for class-conditional models) to images."""

    # ------------------------------------------------------------------ latents and labels
    def latents(self, n: int, *, seed: int | None = None) -> tuple[np.ndarray, int]:
        """The float32 (n, latent_dim) latents ``sample(n, seed=seed)`` decodes, and the seed (a fresh one
        when ``seed`` is None)."""
        from ganrt.ops import standard_normal

        n = _check_count(n)
        seed = secrets.randbits(63) if seed is None else check_seed(seed)
        return standard_normal((n, self.metadata.latent_dim), seed=seed).numpy(), seed

    def labels(self, labels: Any, n: int) -> np.ndarray | None:
        """int64 (n,) class labels from an int or ``n`` ints (default: cycle through the classes), ``None``
        for models that are not class-conditional. Raises ``ValueError`` for labels out of range or given to
        an unconditional model."""
        part = self._main
        k = part.metadata.num_classes
        if part.roles.label is None:
            if labels is not None:
                raise ValueError(f"labels given, but {self.path} is not class-conditional")
            return None
        if labels is None:
            return np.arange(n, dtype=np.int64) % k
        array = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if array.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got {array.dtype}")
        if array.ndim == 0:
            array = np.full((n,), array)
        if array.shape != (n,):
            raise ValueError(f"labels must be one int or {n} ints, got shape {array.shape}")
        if int(array.min()) < 0 or int(array.max()) >= k:
            raise ValueError(
                f"labels must be in [0, {k}), got values from {int(array.min())} to {int(array.max())}"
            )
        return array.astype(np.int64)

    # ------------------------------------------------------------------ decoding
    def _decode_u8(self, part: Part, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """float (N, latent_dim) ``z`` -> uint8 (N, S, S, C) on the runner's device."""
        md, roles = part.metadata, part.roles
        n = z.shape[0]
        z_shape = part.specs[roles.z].shape
        size = part.fixed_size(roles.out_image) or (md.image_size, md.image_size)
        pieces = []
        for start, count, b in part.chunks(n):

            def make(b: int = b) -> dict[str, torch.Tensor]:
                dev = part.torch_device
                bufs = {
                    roles.z: torch.empty(
                        (b, *[d if d > 0 else md.latent_dim for d in z_shape[1:]]),
                        dtype=part.dtype(roles.z),
                        device=dev,
                    ),
                    roles.out_image: torch.empty(
                        (b, md.out_channels, *size), dtype=part.dtype(roles.out_image), device=dev
                    ),
                }
                if roles.label is not None:
                    bufs[roles.label] = torch.empty((b,), dtype=part.dtype(roles.label), device=dev)
                return bufs

            bufs = self._buffers((id(part), "z", b), make)
            bufs[roles.z].copy_(_pad_rows(z[start : start + count], b).reshape(bufs[roles.z].shape))
            if roles.label is not None:
                assert labels is not None
                bufs[roles.label].copy_(_pad_rows(labels[start : start + count], b))
            feeds = {s.name: bufs[s.name] for s in part.runner.inputs}
            part.runner.run(feeds, {roles.out_image: bufs[roles.out_image]})
            self._from_model_range(bufs[roles.out_image], md)
            pixels = torch.empty((b, *size, md.out_channels), dtype=torch.uint8, device=part.torch_device)
            tensor_to_images_into(bufs[roles.out_image], pixels, threads=self._kernel_threads)
            pieces.append(pixels[:count])
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def _decode_host(self, z: torch.Tensor, labels: Any, device: torch.device) -> torch.Tensor:
        part = self._main
        label_array = self.labels(labels, z.shape[0])
        label_tensor = None if label_array is None else torch.from_numpy(label_array).to(part.torch_device)
        with self._session(part):
            pixels = self._decode_u8(part, z.to(part.torch_device), label_tensor)
            return self._to_host(pixels, device)

    def sample(self, n: int, *, seed: int | None = None, labels: Any = None) -> np.ndarray:
        """``n`` new images as uint8 (n, S, S, C).

        Latents are :meth:`latents` (Philox), so one seed gives the same images on every backend and device.
        ``seed=None`` draws a fresh seed. ``labels`` (class-conditional models): an int or n ints; default
        cycles through the classes.
        """
        z, _ = self.latents(n, seed=seed)
        return self._decode_host(torch.from_numpy(z), labels, torch.device("cpu")).numpy().copy()

    def decode(self, z: np.ndarray | torch.Tensor, *, labels: Any = None) -> np.ndarray | torch.Tensor:
        """Latents (N, latent_dim) or (latent_dim,) -> uint8 images (N, S, S, C): numpy for numpy input, a
        torch tensor on z's device for torch input."""
        latents = _images.to_latents(z, self.metadata.latent_dim, "z")
        if isinstance(z, torch.Tensor):
            return self._decode_host(latents, labels, z.device).clone()
        return self._decode_host(latents, labels, torch.device("cpu")).numpy().copy()

    # ------------------------------------------------------------------ interpolation
    def _latent(self, value: Any, what: str) -> torch.Tensor:
        """(1, latent_dim) latent for an interpolation end: a seed or a latent vector."""
        from ganrt.ops import standard_normal

        latent_dim = self.metadata.latent_dim
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return standard_normal((1, latent_dim), seed=check_seed(int(value)))
        if isinstance(value, (np.ndarray, torch.Tensor)) and value.dtype not in (np.uint8, torch.uint8):
            latents = _images.to_latents(value, latent_dim, what).float().cpu()
            if latents.shape[0] != 1:
                raise ValueError(f"{what}: expected one latent vector, got {latents.shape[0]}")
            return latents
        raise TypeError(
            f"{what}: expected a seed (int) or a latent vector ({latent_dim},)"
            + ("; images need the VAE's encoder (load the run directory, or pass encoder=)"
               if self.metadata.family == "vae" else "")
        )  # fmt: skip

    def interpolate(self, a: Any, b: Any, steps: int = 8, *, labels: Any = None) -> np.ndarray:
        """Images along the straight line between two latents: uint8 (steps, S, S, C).

        ``a``/``b``: a seed (int) or a latent vector (latent_dim,); for a :class:`VAE`, also an image (its mean
        latent). ``labels`` as in :meth:`sample`.
        """
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        steps = _check_count(steps, what="steps")
        za, zb = self._latent(a, "a"), self._latent(b, "b")
        t = torch.linspace(0.0, 1.0, int(steps))[:, None]
        z = (1 - t) * za + t * zb
        return self._decode_host(z, labels, torch.device("cpu")).numpy().copy()


class _Encoding(Model):
    """``encode`` through an encoder part (the primary part of an :class:`Encoder`, the second of a
    :class:`VAE`)."""

    def _encoder_part(self) -> Part:
        assert self._encoder is not None
        return self._encoder

    def _encode_groups(
        self, images: Any, eps_seed: int | None, resize: str | None
    ) -> tuple[_images.Parsed, list[dict[str, torch.Tensor]], list[Callable]]:
        part = self._encoder_part()
        md = part.metadata
        parsed = _images.parse(images, md.in_channels)
        results, restores = [], []
        offset = 0
        for group in parsed.groups:
            fitted, restore = self._fit(part, group, resize)
            n = fitted.shape[0]
            if eps_seed is None:
                eps = torch.zeros((n, md.latent_dim))
            else:
                from ganrt.ops import standard_normal

                # One stream of noise across groups: element offsets continue where the last group stopped.
                eps = standard_normal((n, md.latent_dim), seed=eps_seed, offset=offset * md.latent_dim)
            offset += n
            x = self._to_runner(fitted, part)
            outs = self._image_graph_u8(part, x, md.in_channels, extra={part.roles.eps: eps.to(part.torch_device)})
            results.append(outs)
            restores.append(restore)
        return parsed, results, restores

    def encode(self, images: Any, *, resize: str | None = None) -> tuple[Any, Any]:
        """Images (uint8, in any form ``Translator.translate`` takes) -> ``(mu, logvar)``, each float32
        (N, latent_dim): numpy, or torch tensors on the input's device for torch input."""
        if _images.is_float_tensor(images):
            raise TypeError(
                "encode() takes uint8 images (PIL, numpy or torch uint8, channels last); got a float tensor. "
                "Convert network-range floats with ganrt.ops.tensor_to_images first"
            )
        part = self._encoder_part()
        with self._session(part):
            parsed, results, _ = self._encode_groups(images, None, resize)
            mu = torch.cat([r[part.roles.mu] for r in results]).float()
            logvar = torch.cat([r[part.roles.logvar] for r in results]).float()
            device = parsed.groups[0].device
            if isinstance(images, torch.Tensor):
                return self._to_host(mu, device).clone(), self._to_host(logvar, device).clone()
            return (
                self._to_host(mu, torch.device("cpu")).numpy().copy(),
                self._to_host(logvar, torch.device("cpu")).numpy().copy(),
            )


class Encoder(_Encoding):
    """A VAE encoder on its own: :meth:`encode`."""


class VAE(Sampler, _Encoding):
    """A VAE decoder with its encoder: everything a :class:`Sampler` does, plus :meth:`encode`,
    :meth:`reconstruct`, and :meth:`interpolate` between images."""

    def reconstruct(self, images: Any, *, seed: int | None = None, resize: str | None = None) -> Any:
        """Encode and decode images; returns the same kind and size as given. ``seed=None`` decodes the mean
        (no sampling noise); an int samples z = mu + sigma * eps with Philox eps from that seed."""
        part, decoder = self._encoder_part(), self._main
        with self._session(part):
            parsed, results, restores = self._encode_groups(
                images, None if seed is None else check_seed(seed), resize
            )
        outputs = []
        with self._session(decoder):
            for group, outs, restore in zip(parsed.groups, results, restores, strict=True):
                pixels = self._decode_u8(decoder, outs[part.roles.out_z].to(decoder.torch_device, torch.float32),
                                         None)  # fmt: skip
                outputs.append(self._to_host(restore(pixels), group.device))
        return parsed.restore(outputs)

    def _latent(self, value: Any, what: str) -> torch.Tensor:
        is_image = not isinstance(value, (int, np.integer, np.ndarray, torch.Tensor)) or (
            isinstance(value, (np.ndarray, torch.Tensor)) and value.dtype in (np.uint8, torch.uint8)
        )
        if not is_image or isinstance(value, bool):
            return super()._latent(value, what)
        mu, _ = self.encode(value if not isinstance(value, torch.Tensor) else value.cpu())
        mu = torch.as_tensor(mu)
        if mu.shape[0] != 1:
            raise ValueError(f"{what}: expected one image, got {mu.shape[0]}")
        return mu


# The largest count sample/interpolate accept per call: far beyond any picture grid, small enough that a typo
# (n=100000000) fails at once instead of allocating gigabytes.
MAX_COUNT = 65536


def _check_count(n: Any, *, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n!r}")
    if n > MAX_COUNT:
        raise ValueError(f"{what} must be at most {MAX_COUNT} per call, got {n}; call again for more")
    return int(n)
