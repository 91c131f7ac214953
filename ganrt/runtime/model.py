"""``Model``: the object ``ganrt.load`` returns; backend-independent pre/post-processing around a Runner.

Hot path of ``translate`` on a uint8 image: one fused kernel into a preallocated input buffer, the runner
writing into a preallocated output buffer, one fused kernel back to uint8. Buffers are kept per
(batch, height, width); calls on one ``Model`` are serialized by a lock because they share those buffers.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrt.export.metadata import ArtifactMetadata
from ganrt.runtime import images as _images
from ganrt.runtime._prepost import images_to_tensor_into, tensor_to_images_into
from ganrt.runtime.backends.base import Runner, TensorSpec, torch_dtype
from ganrt.runtime.metadata import Roles

RESIZE_MODES = ("pad", "resize", "none")
# Distinct buffer shapes kept per model; each costs a few MB at 256² so the cache stays small.
_WORKSPACE_ENTRIES = 8
# A ResNet generator's reflection padding needs at least 2x2 at its bottleneck (stride 4), i.e. 8 px in.
_MIN_SIDE = 8


class _Part:
    """A runner with the roles of its tensors and its metadata (a VAE model has a decoder and an encoder)."""

    def __init__(self, runner: Runner, metadata: ArtifactMetadata, roles: Roles):
        self.runner = runner
        self.metadata = metadata
        self.roles = roles
        self.specs = {s.name: s for s in runner.inputs + runner.outputs}
        self.torch_device = torch.device(runner.device)

    def dtype(self, name: str) -> torch.dtype:
        return torch_dtype(self.specs[name].dtype)

    def chunks(self, n: int) -> Iterator[tuple[int, int, int]]:
        """(start, rows, graph batch) per call for ``n`` rows: at most ``max_batch`` rows a call; a graph with
        a static batch dimension takes exactly that many, so its last call is padded up to it."""
        first = self.runner.inputs[0].shape if self.runner.inputs else ()
        fixed = first[0] if first and first[0] > 0 else None
        step = self.runner.max_batch or n
        for start in range(0, n, step):
            rows = min(step, n - start)
            yield start, rows, fixed or rows


class Model:
    """A loaded generator. See :func:`ganrt.runtime.load` for how to get one.

    Attributes: ``metadata`` (:class:`ArtifactMetadata`), ``inputs``/``outputs`` (:class:`TensorSpec` lists of
    the primary graph), ``max_batch`` (``None`` = unbounded), ``backend``, ``device``.
    """

    def __init__(
        self,
        runner: Runner,
        metadata: ArtifactMetadata,
        roles: Roles,
        *,
        path: Path,
        artifact: str,
        selected: str,
        metadata_source: str,
        encoder: tuple[Runner, ArtifactMetadata, Roles] | None = None,
    ):
        self._main = _Part(runner, metadata, roles)
        self._encoder = _Part(*encoder) if encoder else (self._main if metadata.task == "encode" else None)
        self.metadata = metadata
        self.path = path
        self._artifact = artifact
        self._selected = selected
        self._metadata_source = metadata_source
        self._lock = threading.RLock()
        self._workspace: collections.OrderedDict[tuple, dict[str, torch.Tensor]] = collections.OrderedDict()
        self._closed = False
        threads = runner.threads
        # The pre/post kernels are memory-bound and tiny next to the network: two threads saturate them.
        self._kernel_threads = max(1, min(threads or 1, 2))

    # ------------------------------------------------------------------ properties
    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self._main.runner.inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._main.runner.outputs)

    @property
    def max_batch(self) -> int | None:
        return self._main.runner.max_batch

    @property
    def backend(self) -> str:
        return self._main.runner.backend

    @property
    def device(self) -> str:
        return self._main.runner.device

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the backend's sessions, engines and buffers. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._workspace.clear()
            self._main.runner.close()
            if self._encoder is not None and self._encoder is not self._main:
                self._encoder.runner.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        md = self.metadata
        return (
            f"Model({str(self.path)!r}, family={md.family}, task={md.task}, backend={self.backend}, "
            f"device={self.device})"
        )

    @contextlib.contextmanager
    def _session(self, *parts: _Part) -> Iterator[None]:
        """Hold the model's lock; for CUDA parts, make each part's stream current and wait for it at the end,
        so results handed back (or passed to the next part) are complete."""
        with self._lock, contextlib.ExitStack() as stack:
            if self._closed:
                raise RuntimeError(f"{self.path}: model is closed")
            streams = []
            for part in parts or (self._main,):
                stream = part.runner.stream
                if stream is not None:
                    stack.enter_context(torch.cuda.device(part.torch_device))
                    stack.enter_context(torch.cuda.stream(stream))
                    streams.append(stream)
            yield
            for stream in streams:
                stream.synchronize()

    def _require_translator(self) -> None:
        if self.metadata.task != "translate":
            raise TypeError(
                f"translate() needs an image-to-image model; {self.path} is a {self.metadata.family} "
                f"{self.metadata.task} model (use sample/decode/encode)"
            )

    def _buffers(self, key: tuple, make: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        bufs = self._workspace.get(key)
        if bufs is None:
            bufs = make()
            self._workspace[key] = bufs
            while len(self._workspace) > _WORKSPACE_ENTRIES:
                self._workspace.popitem(last=False)
        else:
            self._workspace.move_to_end(key)
        return bufs

    def _stream_handle(self, part: _Part) -> int:
        stream = part.runner.stream
        return 0 if stream is None else int(stream.cuda_stream)

    # ------------------------------------------------------------------ raw graph call
    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the primary graph once on host arrays named like :attr:`inputs`; what KServe v2 exposes."""
        with self._session():
            return self._main.runner.infer(feeds)

    # ------------------------------------------------------------------ value range
    def _to_model_range(self, x: torch.Tensor, md: ArtifactMetadata) -> None:
        lo, hi = md.value_range
        if (lo, hi) != (-1.0, 1.0):  # the kernels produce [-1, 1]; foreign graphs may want e.g. [0, 1]
            x.add_(1.0).mul_((hi - lo) / 2.0).add_(lo)

    def _from_model_range(self, x: torch.Tensor, md: ArtifactMetadata) -> None:
        lo, hi = md.value_range
        if (lo, hi) != (-1.0, 1.0):
            x.sub_(lo).mul_(2.0 / (hi - lo)).sub_(1.0)

    # ------------------------------------------------------------------ sizes
    def _fixed_size(self, part: _Part, name: str) -> tuple[int, int] | None:
        shape = part.specs[name].shape
        if len(shape) == 4 and shape[2] > 0 and shape[3] > 0:
            return shape[2], shape[3]
        if part.metadata.task != "translate":
            return part.metadata.image_size, part.metadata.image_size
        return None

    def _plan_size(self, part: _Part, h: int, w: int, resize: str | None) -> tuple[str, int, int] | None:
        """``None`` when (h, w) can be fed as is, else (mode, target_h, target_w)."""
        _images.check_size(h, w)
        if resize is not None and resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES} or None (auto), got {resize!r}")
        fixed = self._fixed_size(part, part.roles.image)
        m = part.metadata.multiple
        min_side = max(m, _MIN_SIDE)
        if fixed is not None:
            if (h, w) == fixed:
                return None
            mode = resize or "resize"
        else:
            if h % m == 0 and w % m == 0 and h >= min_side and w >= min_side:
                return None
            mode = resize or "pad"
        size_rule = f"exactly {fixed[0]}x{fixed[1]}" if fixed else f"multiples of {m}, at least {min_side}"
        if mode == "none":
            raise ValueError(
                f"images of {h}x{w} do not fit this model (H, W must be {size_rule}); pass "
                f"resize='pad' or resize='resize'"
            )
        if mode == "resize":
            if fixed is not None:
                return mode, fixed[0], fixed[1]
            return mode, max(min_side, round(h / m) * m), max(min_side, round(w / m) * m)
        if fixed is not None:
            if h > fixed[0] or w > fixed[1]:
                raise ValueError(
                    f"images of {h}x{w} are larger than this model's fixed size {fixed[0]}x{fixed[1]}; "
                    f"padding cannot shrink them, pass resize='resize'"
                )
            return mode, fixed[0], fixed[1]
        if h < min_side or w < min_side:
            raise ValueError(
                f"images of {h}x{w} are below this model's minimum size {min_side}x{min_side}; "
                f"pass resize='resize' to scale them up"
            )
        return mode, -(-h // m) * m, -(-w // m) * m

    # ------------------------------------------------------------------ image graphs
    def _to_runner(self, x: torch.Tensor, part: _Part) -> torch.Tensor:
        if x.device == part.torch_device:
            return x
        if part.torch_device.type == "cuda" and x.device.type == "cpu":
            # Pinned staging makes the upload an async DMA on the runner's stream.
            staged = self._buffers(
                ("pinned", tuple(x.shape), x.dtype),
                lambda: {"host": torch.empty(x.shape, dtype=x.dtype, pin_memory=True)},
            )["host"]
            staged.copy_(x)
            return staged.to(part.torch_device, non_blocking=True)
        return x.to(part.torch_device)

    def _to_host(self, y: torch.Tensor, device: torch.device) -> torch.Tensor:
        if y.device == device:
            return y
        if y.device.type == "cuda" and device.type == "cpu":
            host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
            host.copy_(y, non_blocking=True)
            torch.cuda.current_stream(y.device).synchronize()
            return host
        return y.to(device)

    def _image_graph_u8(
        self, part: _Part, x: torch.Tensor, out_channels: int, extra: Mapping[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Run uint8 (N, H, W, C) ``x`` (on the runner's device, size already valid) through an image graph.

        Returns the graph's outputs: the image output converted to uint8 (N, H, W, out_channels), float
        outputs (mu/logvar/z) as fresh tensors. ``extra`` feeds the other inputs (eps), chunked like the
        images.
        """
        n, h, w, c = x.shape
        roles = part.roles
        results: dict[str, list[torch.Tensor]] = collections.defaultdict(list)
        stream = self._stream_handle(part)
        for start, count, b in part.chunks(n):
            xs = _pad_rows(x[start : start + count], b)

            def make(b: int = b) -> dict[str, torch.Tensor]:
                dev = part.torch_device
                bufs = {roles.image: torch.empty((b, c, h, w), dtype=part.dtype(roles.image), device=dev)}
                latent = part.metadata.latent_dim  # fills dynamic latent dims of mu/logvar/z/eps
                for spec in part.runner.outputs:
                    shape = (
                        (b, out_channels, h, w)
                        if spec.name == roles.out_image
                        else (b, *[d if d > 0 else latent for d in spec.shape[1:]])
                    )
                    bufs[spec.name] = torch.empty(shape, dtype=part.dtype(spec.name), device=dev)
                for name in extra or {}:
                    shape = (b, *[d if d > 0 else latent for d in part.specs[name].shape[1:]])
                    bufs[name] = torch.empty(shape, dtype=part.dtype(name), device=dev)
                return bufs

            bufs = self._buffers((id(part), "image", b, h, w), make)
            images_to_tensor_into(xs, bufs[roles.image], stream=stream, threads=self._kernel_threads)
            self._to_model_range(bufs[roles.image], part.metadata)
            for name, value in (extra or {}).items():
                bufs[name].copy_(_pad_rows(value[start : start + count], b))
            feeds = {s.name: bufs[s.name] for s in part.runner.inputs}
            outs = {s.name: bufs[s.name] for s in part.runner.outputs}
            part.runner.run(feeds, outs)
            for name, value in outs.items():
                if name == roles.out_image:
                    self._from_model_range(value, part.metadata)
                    pixels = torch.empty((b, h, w, out_channels), dtype=torch.uint8, device=part.torch_device)
                    tensor_to_images_into(value, pixels, stream=stream, threads=self._kernel_threads)
                    results[name].append(pixels[:count])
                else:
                    results[name].append(value[:count].clone())
        return {name: torch.cat(parts) if len(parts) > 1 else parts[0] for name, parts in results.items()}

    def _fit(self, part: _Part, x: torch.Tensor, resize: str | None) -> tuple[torch.Tensor, Callable]:
        """Resize or pad uint8 (N, H, W, C) to a size the graph takes; returns it and the outputs' inverse."""
        _, h, w, _ = x.shape
        plan = self._plan_size(part, h, w, resize)
        if plan is None:
            return x, lambda y: y
        mode, th, tw = plan
        if mode == "pad":
            return _images.pad_to(x, th, tw), lambda y: y[:, :h, :w].contiguous()
        return _images.resize_to(x, th, tw), lambda y: _images.resize_to(y, h, w)

    # ------------------------------------------------------------------ translate
    def translate(self, images: Any, *, resize: str | None = None) -> Any:
        """Translate images; returns the same kind as given.

        images: PIL image | uint8 numpy (H, W, C) / (N, H, W, C) / (H, W) for 1-channel models | torch uint8
        (same layouts, any device) | torch float (C, H, W) / (N, C, H, W) in the model's value range | a list
        of those.
        resize: what to do with sizes the network cannot take: ``"pad"`` (reflect-pad to the next multiple,
        crop back; default for dynamic-size models), ``"resize"`` (bilinear to the nearest valid size and
        back; default for fixed-size models) or ``"none"`` (raise).
        """
        self._require_translator()
        md = self.metadata
        if _images.is_float_tensor(images):
            return self._translate_float(images, resize)
        parsed = _images.parse(images, md.in_channels)
        outputs = []
        with self._session():
            for group in parsed.groups:
                fitted, restore = self._fit(self._main, group, resize)
                device = group.device
                x = self._to_runner(fitted, self._main)
                out = self._image_graph_u8(self._main, x, md.out_channels)[self._main.roles.out_image]
                outputs.append(self._to_host(restore(out), device))
        return parsed.restore(outputs)

    __call__ = translate

    def _translate_float(self, x: torch.Tensor, resize: str | None) -> torch.Tensor:
        md, part = self.metadata, self._main
        single = x.ndim == 3
        if single:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != md.in_channels:
            raise ValueError(
                f"images: float tensors must be (C, H, W) or (N, C, H, W) with C={md.in_channels}, "
                f"got {tuple(x.shape if not single else x.shape[1:])}"
            )
        n, _, h, w = x.shape
        plan = self._plan_size(part, h, w, resize)
        fitted = x
        if plan is not None:
            mode, th, tw = plan
            fitted = (_images.pad_float if mode == "pad" else _images.resize_float)(x.float(), th, tw)
        roles = part.roles
        with self._session():
            feed = fitted.to(part.torch_device, part.dtype(roles.image)).contiguous()
            out_spec = part.specs[roles.out_image]
            outs = []
            for start, count, b in part.chunks(n):
                xs = _pad_rows(feed[start : start + count], b).contiguous()
                y = torch.empty(
                    (b, md.out_channels, *xs.shape[2:]),
                    dtype=torch_dtype(out_spec.dtype),
                    device=part.torch_device,
                )
                part.runner.run({roles.image: xs}, {roles.out_image: y})
                outs.append(y[:count])
            y = torch.cat(outs) if len(outs) > 1 else outs[0]
            if plan is not None:
                y = y[..., :h, :w] if plan[0] == "pad" else _images.resize_float(y.float(), h, w)
            y = self._to_host(y.to(x.dtype), x.device).clone(memory_format=torch.contiguous_format)
        return y[0] if single else y

    def translate_file(
        self, src: str | os.PathLike, dst: str | os.PathLike, *, resize: str | None = None
    ) -> Path:
        """Read an image file, translate it, write the result atomically to ``dst`` (format from suffix)."""
        from PIL import Image, UnidentifiedImageError

        src, dst = Path(src), Path(dst)
        try:
            with Image.open(src) as opened:
                image = opened.convert("L" if self.metadata.in_channels == 1 else "RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"no such image file: {src}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"{src}: not a readable image ({exc})") from exc
        result = self.translate(image, resize=resize)
        save_image(result, dst)
        return dst

    # ------------------------------------------------------------------ samplers
    def _decoder(self, what: str) -> _Part:
        if self.metadata.task != "sample":
            raise TypeError(
                f"{what}() needs a sampler (DCGAN generator or VAE decoder); {self.path} is a "
                f"{self.metadata.family} {self.metadata.task} model"
            )
        return self._main

    def _labels(self, labels: Any, n: int, part: _Part) -> torch.Tensor | None:
        k = part.metadata.num_classes
        if part.roles.label is None:
            if labels is not None:
                raise ValueError(f"labels given, but {self.path} is not class-conditional")
            return None
        if labels is None:
            return torch.arange(n, dtype=torch.int64) % k  # cycle through the classes
        array = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if array.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got {array.dtype}")
        if array.ndim == 0:
            array = np.full((n,), array)
        if array.shape != (n,):
            raise ValueError(f"labels must be one int or {n} ints, got shape {array.shape}")
        values = torch.from_numpy(array.astype(np.int64))
        if int(values.min()) < 0 or int(values.max()) >= k:
            raise ValueError(
                f"labels must be in [0, {k}), got values from {int(values.min())} to {int(values.max())}"
            )
        return values

    def _decode_u8(self, part: _Part, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """float (N, latent_dim) ``z`` -> uint8 (N, S, S, C) on the runner's device."""
        md, roles = part.metadata, part.roles
        n = z.shape[0]
        z_shape = part.specs[roles.z].shape
        size = self._fixed_size(part, roles.out_image) or (md.image_size, md.image_size)
        stream = self._stream_handle(part)
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
                bufs[roles.label].copy_(_pad_rows(labels[start : start + count], b))
            feeds = {s.name: bufs[s.name] for s in part.runner.inputs}
            part.runner.run(feeds, {roles.out_image: bufs[roles.out_image]})
            self._from_model_range(bufs[roles.out_image], md)
            pixels = torch.empty((b, *size, md.out_channels), dtype=torch.uint8, device=part.torch_device)
            tensor_to_images_into(bufs[roles.out_image], pixels, stream=stream, threads=self._kernel_threads)
            pieces.append(pixels[:count])
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def sample(self, n: int, *, seed: int | None = None, labels: Any = None) -> np.ndarray:
        """``n`` new images as uint8 (n, S, S, C).

        Latents are ``ganrt.ops.standard_normal((n, latent_dim), seed=seed)`` (Philox), so one seed gives the
        same images on every backend and device. ``seed=None`` draws a fresh seed. ``labels``
        (class-conditional models): an int or n ints; default cycles through the classes.
        """
        from ganrt.ops import standard_normal

        part = self._decoder("sample")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        seed = secrets.randbits(63) if seed is None else _check_seed(seed)
        z = standard_normal((int(n), part.metadata.latent_dim), seed=seed)
        label_tensor = self._labels(labels, int(n), part)
        with self._session(part):
            pixels = self._decode_u8(
                part,
                z.to(part.torch_device),
                None if label_tensor is None else label_tensor.to(part.torch_device),
            )
            return self._to_host(pixels, torch.device("cpu")).numpy().copy()

    def decode(self, z: np.ndarray | torch.Tensor, *, labels: Any = None) -> np.ndarray | torch.Tensor:
        """Latents (N, latent_dim) or (latent_dim,) -> uint8 images (N, S, S, C): numpy for numpy input, a
        torch tensor on z's device for torch input."""
        part = self._decoder("decode")
        latents = _images.to_latents(z, part.metadata.latent_dim, "z")
        label_tensor = self._labels(labels, latents.shape[0], part)
        with self._session(part):
            pixels = self._decode_u8(
                part,
                latents.to(part.torch_device),
                None if label_tensor is None else label_tensor.to(part.torch_device),
            )
            if isinstance(z, torch.Tensor):
                return self._to_host(pixels, z.device).clone()
            return self._to_host(pixels, torch.device("cpu")).numpy().copy()

    # ------------------------------------------------------------------ VAE
    def _encoder_part(self, what: str) -> _Part:
        if self._encoder is None:
            hint = (
                " (load the decoder with encoder='<encoder .onnx/.engine>' or load the run directory)"
                if self.metadata.family == "vae"
                else ""
            )
            raise TypeError(
                f"{what}() needs a VAE encoder; {self.path} is a {self.metadata.family} "
                f"{self.metadata.task} model{hint}"
            )
        return self._encoder

    def _encode_groups(
        self, images: Any, eps_seed: int | None, resize: str | None
    ) -> tuple[_images.Parsed, list[dict[str, torch.Tensor]], list[Callable]]:
        part = self._encoder_part("encode")
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
            outs = self._image_graph_u8(
                part, x, md.in_channels, extra={part.roles.eps: eps.to(part.torch_device)}
            )
            results.append(outs)
            restores.append(restore)
        return parsed, results, restores

    def encode(self, images: Any, *, resize: str | None = None) -> tuple[Any, Any]:
        """Images (any kind ``translate`` takes) -> ``(mu, logvar)``, each float32 (N, latent_dim): numpy, or
        torch tensors on the input's device for torch input."""
        part = self._encoder_part("encode")
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

    def reconstruct(self, images: Any, *, seed: int | None = None, resize: str | None = None) -> Any:
        """Encode and decode images; returns the same kind and size as given. ``seed=None`` decodes the mean
        (no sampling noise); an int samples z = mu + sigma * eps with Philox eps from that seed."""
        part = self._encoder_part("reconstruct")
        decoder = self._decoder("reconstruct")
        with self._session(part):
            parsed, results, restores = self._encode_groups(
                images, None if seed is None else _check_seed(seed), resize
            )
        outputs = []
        with self._session(decoder):
            for group, outs, restore in zip(parsed.groups, results, restores, strict=True):
                pixels = self._decode_u8(
                    decoder, outs[part.roles.out_z].to(decoder.torch_device, torch.float32), None
                )
                outputs.append(self._to_host(restore(pixels), group.device))
        return parsed.restore(outputs)

    def _latent(self, value: Any, what: str, part: _Part) -> torch.Tensor:
        from ganrt.ops import standard_normal

        latent_dim = part.metadata.latent_dim
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return standard_normal((1, latent_dim), seed=_check_seed(int(value)))
        is_image = not isinstance(value, (np.ndarray, torch.Tensor)) or value.dtype in (np.uint8, torch.uint8)
        if is_image:
            mu, _ = self.encode(value if not isinstance(value, torch.Tensor) else value.cpu())
            mu = torch.as_tensor(mu)
            if mu.shape[0] != 1:
                raise ValueError(f"{what}: expected one image, got {mu.shape[0]}")
            return mu
        latents = _images.to_latents(value, latent_dim, what).float().cpu()
        if latents.shape[0] != 1:
            raise ValueError(f"{what}: expected one latent vector, got {latents.shape[0]}")
        return latents

    def interpolate(self, a: Any, b: Any, steps: int = 8, *, labels: Any = None) -> np.ndarray:
        """Images along the straight line between two latents: uint8 (steps, S, S, C).

        ``a``/``b``: a seed (int), a latent vector (latent_dim,), or, for a VAE with its encoder, an image
        (its mean latent). ``labels`` as in :meth:`sample`.
        """
        part = self._decoder("interpolate")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        za, zb = self._latent(a, "a", part), self._latent(b, "b", part)
        t = torch.linspace(0.0, 1.0, int(steps))[:, None]
        z = (1 - t) * za + t * zb
        label_tensor = self._labels(labels, int(steps), part)
        with self._session(part):
            pixels = self._decode_u8(
                part,
                z.to(part.torch_device),
                None if label_tensor is None else label_tensor.to(part.torch_device),
            )
            return self._to_host(pixels, torch.device("cpu")).numpy().copy()

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Family, task, I/O, backend (and why it was picked), device, precision, threads, limits."""
        md = self.metadata
        runner = self._main.runner
        info: dict[str, Any] = {
            "path": str(self.path),
            "artifact": self._artifact,
            "family": md.family,
            "task": md.task,
            "backend": runner.backend,
            "selected": self._selected,
            "device": runner.device,
            "precision": md.precision,
            "threads": runner.threads,
            "max_batch": runner.max_batch,
            "image_size": md.image_size,
            "multiple": md.multiple,
            "in_channels": md.in_channels,
            "out_channels": md.out_channels,
            "latent_dim": md.latent_dim,
            "num_classes": md.num_classes,
            "value_range": list(md.value_range),
            "config_hash": md.config_hash,
            "ganrt_version": md.ganrt_version,
            "metadata_source": self._metadata_source,
            "inputs": [s.to_dict() for s in runner.inputs],
            "outputs": [s.to_dict() for s in runner.outputs],
        }
        info.update(runner.info())
        if self._encoder is not None and self._encoder is not self._main:
            info["encoder"] = {
                "inputs": [s.to_dict() for s in self._encoder.runner.inputs],
                "outputs": [s.to_dict() for s in self._encoder.runner.outputs],
            }
        return info


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` with its last row repeated up to ``rows`` rows (static-batch graphs); ``t`` when long enough."""
    if t.shape[0] >= rows:
        return t
    return torch.cat([t, t[-1:].expand(rows - t.shape[0], *t.shape[1:])])


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def save_image(image: Any, dst: Path) -> None:
    """Write a PIL image or uint8 (H, W[, C]) array to ``dst`` atomically; format from the extension."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        array = np.asarray(image.cpu() if isinstance(image, torch.Tensor) else image)
        image = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    fmt = Image.registered_extensions().get(dst.suffix.lower())
    if fmt is None:
        raise ValueError(f"{dst}: unknown image extension {dst.suffix!r}; use .png, .jpg, .webp, ...")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        image.save(tmp, format=fmt)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
