"""``Model``: the base of what ``ganrt.load`` returns; backend-independent plumbing around a runner.

``ganrt.load`` returns a task-specific subclass: :class:`~ganrt.runtime.translator.Translator` (Pix2Pix,
CycleGAN), :class:`~ganrt.runtime.sampler.Sampler` (DCGAN/CGAN generators, VAE decoders),
:class:`~ganrt.runtime.sampler.VAE` (a decoder with its encoder) or :class:`~ganrt.runtime.sampler.Encoder`.
Each has exactly the methods its task supports; this base holds what all share: lifecycle, ``info``, the raw
graph call (``infer``, what KServe v2 exposes), input checks, and the hot path helpers.

Hot path of an image call: one fused kernel into a preallocated input buffer, the runner writing into a
preallocated output buffer, one fused kernel back to uint8. Buffers are kept per (part, batch, height, width);
calls on one model are serialized by a lock because they share those buffers.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrt.artifact import ArtifactMetadata, Roles
from ganrt.backends.base import Runner, TensorSpec, torch_dtype
from ganrt.ops.image import images_to_tensor_into, tensor_to_images_into
from ganrt.runtime import images as _images

RESIZE_MODES = ("pad", "resize", "none")
# Distinct buffer shapes kept per model; each costs a few MB at 256² so the cache stays small.
_WORKSPACE_ENTRIES = 8
# A ResNet generator's reflection padding needs at least 2x2 at its bottleneck (stride 4), i.e. 8 px in.
_MIN_SIDE = 8


class Part:
    """A runner with its metadata and the roles of its tensors (a VAE has a decoder part and an encoder
    part)."""

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

    def fixed_size(self, name: str) -> tuple[int, int] | None:
        """(H, W) the tensor ``name`` must have, or ``None`` when the graph takes any multiple."""
        shape = self.specs[name].shape
        if len(shape) == 4 and shape[2] > 0 and shape[3] > 0:
            return shape[2], shape[3]
        if self.metadata.task != "translate":
            return self.metadata.image_size, self.metadata.image_size
        return None


class Model:
    """A loaded model. See :func:`ganrt.runtime.load` for how to get one.

    Attributes: ``metadata`` (:class:`~ganrt.artifact.ArtifactMetadata`), ``path``; properties ``inputs`` /
    ``outputs`` (:class:`~ganrt.backends.base.TensorSpec` lists of the primary graph), ``max_batch``
    (``None`` = unbounded), ``backend``, ``device``, ``task``.
    """

    def __init__(
        self,
        main: Part,
        *,
        path: Path,
        artifact: str,
        selected: str,
        metadata_source: str,
        encoder: Part | None = None,
        selection: dict[str, Any] | None = None,
    ):
        self._main = main
        self._encoder = encoder
        self.metadata = main.metadata
        self.path = path
        self._artifact = artifact
        self._selected = selected
        self._metadata_source = metadata_source
        self._selection = selection
        self._lock = threading.RLock()
        # device -> the stream the caller had current, while a session runs (see _session)
        self._callers: dict[torch.device, torch.cuda.Stream] = {}
        self._workspace: collections.OrderedDict[tuple, dict[str, torch.Tensor]] = collections.OrderedDict()
        self._closed = False
        # The pre/post kernels run on the calling thread only. Single-threaded they take 0.2 ms (uint8 ->
        # float) and 0.5 ms (back) for a 256x256 RGB image, but a second thread would come from torch's OpenMP
        # team, whose wake-up lands while the backend's own pool (ONNX Runtime's, OpenVINO's) still spins
        # after its call: on 2 cores each conversion then took 7-35 ms (benchmarks/runtime.py measures the
        # overhead).
        self._kernel_threads = 1

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

    @property
    def task(self) -> str:
        return self.metadata.task

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the backend's sessions, engines and buffers. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._workspace.clear()
            self._main.runner.close()
            if self._encoder is not None and self._encoder.runner is not self._main.runner:
                self._encoder.runner.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        md = self.metadata
        return (
            f"{type(self).__name__}({str(self.path)!r}, family={md.family}, task={md.task}, "
            f"backend={self.backend}, device={self.device})"
        )

    # ------------------------------------------------------------------ raw graph call
    def check_feeds(self, feeds: Mapping[str, Any]) -> None:
        """Raise ``ValueError``/``TypeError`` naming the problem when ``feeds`` (name -> array) cannot run
        through the primary graph: names, dtypes, ranks, static dimensions, batch agreement and limit, and
        image H/W divisibility."""
        self._main.runner.check_feeds(feeds)
        multiple = self.metadata.multiple
        image = self._main.roles.image
        if image is not None and multiple > 1 and len(feeds[image].shape) == 4:
            h, w = feeds[image].shape[2:]
            if h % multiple or w % multiple:
                raise ValueError(
                    f"input {image!r} height and width must be multiples of {multiple}, got {h}x{w}"
                )

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the primary graph once on host arrays named like :attr:`inputs`; what KServe v2 exposes."""
        self.check_feeds(feeds)
        with self._session():
            return self._main.runner.infer(feeds)

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Family, task, I/O, backend (and why it was picked), device, precision, threads, limits."""
        runner = self._main.runner
        info: dict[str, Any] = {
            "path": str(self.path),
            "artifact": self._artifact,
            **self.metadata.describe(),
            "backend": runner.backend,
            "selected": self._selected,
            # What runs: the artifact's own precision, or one the backend chose at load time (OpenVINO bf16).
            "precision": runner.precision,
            "artifact_precision": self.metadata.precision,
            "device": runner.device,
            "threads": runner.threads,
            "max_batch": runner.max_batch,
            "metadata_source": self._metadata_source,
            "inputs": [s.to_dict() for s in runner.inputs],
            "outputs": [s.to_dict() for s in runner.outputs],
        }
        info.update(runner.info())
        if self._selection is not None:
            info["selection"] = self._selection
        if self._encoder is not None and self._encoder is not self._main:
            info["encoder"] = {
                "inputs": [s.to_dict() for s in self._encoder.runner.inputs],
                "outputs": [s.to_dict() for s in self._encoder.runner.outputs],
            }
        return info

    # ------------------------------------------------------------------ plumbing shared by the tasks
    @contextlib.contextmanager
    def _session(self, *parts: Part) -> Iterator[None]:
        """Hold the model's lock; for CUDA parts make the part's stream current, ordered after the caller's
        current stream on entry and before it on exit, also when the block raises (as torch-tensorrt does), so
        inputs the caller queued are ready, and results and the caller's input buffers are not touched by
        either side too early. Results handed back are marked as used by the caller's stream
        (:meth:`_to_host`)."""
        with self._lock, contextlib.ExitStack() as stack:
            if self._closed:
                raise RuntimeError(f"{self.path}: model is closed")
            # The callers' streams, read before any runner stream becomes current.
            callers: dict[torch.device, torch.cuda.Stream] = {}
            streams: list[tuple[torch.cuda.Stream, torch.cuda.Stream]] = []
            for part in parts or (self._main,):
                stream = part.runner.stream
                if stream is None or any(stream == s for s, _ in streams):
                    continue  # a CPU part, or a stream already ordered (a VAE's parts share one)
                device = part.torch_device
                caller = callers.setdefault(device, torch.cuda.current_stream(device))
                stream.wait_stream(caller)
                streams.append((stream, caller))
            stack.callback(self._release_streams, streams)
            for device, caller in callers.items():
                stream = next(s for s, c in streams if c is caller)
                stack.enter_context(torch.cuda.device(device))
                stack.enter_context(torch.cuda.stream(stream))
            self._callers = callers
            yield

    def _release_streams(self, streams: list[tuple[torch.cuda.Stream, torch.cuda.Stream]]) -> None:
        self._callers = {}
        for stream, caller in streams:
            caller.wait_stream(stream)

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

    def _to_model_range(self, x: torch.Tensor, md: ArtifactMetadata) -> None:
        lo, hi = md.value_range
        if (lo, hi) != (-1.0, 1.0):  # the kernels produce [-1, 1]; foreign graphs may want e.g. [0, 1]
            x.add_(1.0).mul_((hi - lo) / 2.0).add_(lo)

    def _from_model_range(self, x: torch.Tensor, md: ArtifactMetadata) -> None:
        lo, hi = md.value_range
        if (lo, hi) != (-1.0, 1.0):
            x.sub_(lo).mul_(2.0 / (hi - lo)).sub_(1.0)

    def _plan_size(self, part: Part, h: int, w: int, resize: str | None) -> tuple[str, int, int] | None:
        """``None`` when (h, w) can be fed as is, else (mode, target_h, target_w)."""
        _images.check_size(h, w)
        if resize is not None and resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES} or None (auto), got {resize!r}")
        fixed = part.fixed_size(part.roles.image)
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

    def _fit(self, part: Part, x: torch.Tensor, resize: str | None) -> tuple[torch.Tensor, Callable]:
        """Resize or pad uint8 (N, H, W, C) to a size the graph takes; returns it and the outputs' inverse."""
        _, h, w, _ = x.shape
        plan = self._plan_size(part, h, w, resize)
        if plan is None:
            return x, lambda y: y
        mode, th, tw = plan
        if mode == "pad":
            return _images.pad_to(x, th, tw), lambda y: y[:, :h, :w].contiguous()
        return _images.resize_to(x, th, tw), lambda y: _images.resize_to(y, h, w)

    def _to_runner(self, x: torch.Tensor, part: Part) -> torch.Tensor:
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
        """``y`` on ``device``: CUDA results handed to the caller are marked as used by the caller's stream
        (``record_stream``), host copies wait for the runner's stream."""
        if y.device == device:
            caller = self._callers.get(y.device)
            if caller is not None:
                # Allocated on the runner's stream, used on the caller's: keep the block from being reused
                # by the runner's stream until the caller's queued work on it is done.
                y.record_stream(caller)
            return y
        if y.device.type == "cuda" and device.type == "cpu":
            host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
            host.copy_(y, non_blocking=True)
            torch.cuda.current_stream(y.device).synchronize()
            return host
        return y.to(device)

    def _image_graph_u8(
        self, part: Part, x: torch.Tensor, out_channels: int, extra: Mapping[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Run uint8 (N, H, W, C) ``x`` (on the runner's device, size already valid) through an image graph.

        Returns the graph's outputs: the image output converted to uint8 (N, H, W, out_channels), float
        outputs (mu/logvar/z) as fresh tensors. ``extra`` feeds the other inputs (eps), chunked like the
        images.
        """
        n, h, w, c = x.shape
        roles = part.roles
        results: dict[str, list[torch.Tensor]] = collections.defaultdict(list)
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
            images_to_tensor_into(xs, bufs[roles.image], threads=self._kernel_threads)
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
                    tensor_to_images_into(value, pixels, threads=self._kernel_threads)
                    results[name].append(pixels[:count])
                else:
                    results[name].append(value[:count].clone())
        return {name: torch.cat(parts) if len(parts) > 1 else parts[0] for name, parts in results.items()}


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` with its last row repeated up to ``rows`` rows (static-batch graphs); ``t`` when long enough."""
    if t.shape[0] >= rows:
        return t
    return torch.cat([t, t[-1:].expand(rows - t.shape[0], *t.shape[1:])])


def check_seed(seed: Any) -> int:
    """A Philox seed: an integer in [0, 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def save_image(image: Any, dst: Path) -> None:
    """Write a PIL image or uint8 (H, W[, C]) array to ``dst`` atomically; format from the extension."""
    from PIL import Image

    from ganrt.utils import atomic_path

    if not isinstance(image, Image.Image):
        array = np.asarray(image.cpu() if isinstance(image, torch.Tensor) else image)
        image = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    fmt = Image.registered_extensions().get(dst.suffix.lower())
    if fmt is None:
        raise ValueError(f"{dst}: unknown image extension {dst.suffix!r}; use .png, .jpg, .webp, ...")
    with atomic_path(dst) as tmp:
        image.save(tmp, format=fmt)
