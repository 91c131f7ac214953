"""What every backend provides: tensor specs and the :class:`Runner` interface (Polygraphy's split).

A runner is created by its backend's ``load`` classmethod from an artifact path (the loader: an ONNX session,
a deserialized TensorRT engine, a run directory's network) and owns what running needs: sessions, contexts,
streams, buffers. Export's parity gate, the runtime (``ganrt.load``), ``ganrt bench`` and ``ganrt serve``
all drive these same runners; input checks happen once, in :meth:`Runner.check_feeds`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import torch

# numpy dtype name <-> torch dtype, for the dtypes graph I/O uses.
_TORCH_DTYPES = {
    "float32": "float32",
    "float16": "float16",
    "float64": "float64",
    "int64": "int64",
    "int32": "int32",
    "uint8": "uint8",
    "bool": "bool",
}


def torch_dtype(numpy_dtype: str) -> torch.dtype:
    """The torch dtype matching a numpy dtype name (``"float32"`` -> ``torch.float32``)."""
    import torch

    try:
        return getattr(torch, _TORCH_DTYPES[numpy_dtype])
    except KeyError:
        raise TypeError(
            f"graph tensors of dtype {numpy_dtype!r} are not supported; expected one of "
            f"{sorted(_TORCH_DTYPES)}"
        ) from None


def host_tensor(array: np.ndarray) -> torch.Tensor:
    """CPU tensor viewing a contiguous writable array; read-only arrays (``np.frombuffer``, memory maps,
    PIL's) are copied, since torch tensors must be writable."""
    import torch

    if not array.flags.writeable:
        return torch.from_numpy(np.array(array, order="C"))
    return torch.from_numpy(np.ascontiguousarray(array))


def check_finite(value: np.ndarray | torch.Tensor, what: str) -> None:
    """Raise ``ValueError`` when a floating-point array or tensor holds NaN or infinite values: a network
    turns them into NaN images without any error, so they are refused at the input."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            raise ValueError(f"{what} holds {bad} NaN or infinite value(s); inputs must be finite")
        return
    if value.is_floating_point() and not bool(value.isfinite().all()):
        bad = int(value.numel() - int(value.isfinite().sum()))
        raise ValueError(f"{what} holds {bad} NaN or infinite value(s); inputs must be finite")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: ``name``, numpy ``dtype`` name, ``shape`` with -1 for dynamic dimensions."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def check(self, value: np.ndarray | torch.Tensor) -> None:
        """Raise ``ValueError``/``TypeError`` when ``value`` cannot be fed as this input."""
        shape = tuple(value.shape)
        dtype = str(value.dtype).removeprefix("torch.")
        if dtype != self.dtype:
            raise TypeError(f"input {self.name!r} must be {self.dtype}, got {dtype}")
        if len(shape) != len(self.shape):
            raise ValueError(
                f"input {self.name!r} must be {len(self.shape)}-D with shape {self.shape}, "
                f"got {len(shape)}-D {shape}"
            )
        for want, got in zip(self.shape, shape, strict=True):
            if want != -1 and want != got:
                raise ValueError(f"input {self.name!r} must have shape {self.shape} (-1 = any), got {shape}")


class Runner(abc.ABC):
    """One loaded network on one device.

    ``run`` takes torch tensors that already live on :attr:`device` (contiguous, graph dtypes) and writes into
    caller-owned output tensors, so callers can keep preallocated buffers; ``infer`` is the convenience form
    on host numpy arrays that allocates its outputs.

    A backend is one module with one ``Runner`` subclass, registered in :data:`ganrt.backends.BACKENDS`;
    ``artifacts`` names the artifact kinds its :meth:`load` reads (``onnx``, ``engine``, ``run``).
    """

    backend: ClassVar[str]
    artifacts: ClassVar[tuple[str, ...]]
    #: True when ``precision`` is chosen at load time (OpenVINO's inference precision) rather than being the
    #: precision the artifact was exported with.
    chooses_precision: ClassVar[bool] = False
    device: str  # "cpu" or "cuda:<i>"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    max_batch: int | None
    threads: int | None
    precision: str

    @classmethod
    @abc.abstractmethod
    def load(
        cls, path: Path, *, device: str = "cpu", device_index: int = 0, threads: int | None = None, **options: Any
    ) -> Runner:
        """Open the artifact at ``path`` on ``device`` (``"cpu"`` or ``"cuda"``); backend-specific
        ``options``. Raises :class:`~ganrt.errors.ArtifactError` for unreadable artifacts and
        :class:`~ganrt.errors.BackendUnavailableError` when the backend cannot run here."""

    def metadata_props(self) -> dict[str, str] | None:
        """The artifact's own string metadata (ONNX ``metadata_props``, an engine's sidecar, a run
        directory's derived metadata), ``None`` when it carries none."""
        return None

    @property
    def stream(self) -> torch.cuda.Stream | None:
        """The CUDA stream ``run`` is ordered on (pre/post-processing must use it too); ``None`` on CPU."""
        return None

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        """Execute once: ``feeds``/``outputs`` map every graph input/output name to a tensor on ``device``.

        Output tensors must already have the right shape; on CUDA devices the work is queued on
        :attr:`stream`.
        """

    @abc.abstractmethod
    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute once on host arrays; returns freshly allocated host arrays for every output."""

    def output_shapes(self, feeds: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]] | None:
        """Output shapes for these input shapes when the backend can tell without running, else ``None``."""
        return None

    def info(self) -> dict[str, Any]:
        """Backend-specific details for ``Model.info()`` (providers, CUDA graph use, ...)."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """Release sessions, engines and device memory; the runner is unusable afterwards."""

    def check_feeds(self, feeds: Mapping[str, Any]) -> None:
        """Raise ``ValueError``/``TypeError`` naming the input and the requirement for unknown or missing
        names, a wrong dtype, rank or static dimension, an empty dimension, NaN or infinite values, batches
        that differ between inputs or exceed :attr:`max_batch`. The one input check every caller (runtime,
        serve, bench) uses."""
        names = [spec.name for spec in self.inputs]
        unknown = sorted(set(feeds) - set(names))
        if unknown:
            raise ValueError(f"no input {unknown[0]!r}; the inputs are {names}")
        missing = [n for n in names if n not in feeds]
        if missing:
            raise ValueError(f"missing input {missing[0]!r}; the inputs are {names}")
        batch = None
        for spec in self.inputs:
            value = feeds[spec.name]
            spec.check(value)
            for axis, size in enumerate(value.shape):
                if size < 1:
                    raise ValueError(
                        f"input {spec.name!r} dimension {axis} must be >= 1, got shape {list(value.shape)}"
                    )
            check_finite(value, f"input {spec.name!r}")
            if not len(value.shape):
                continue
            if batch is not None and value.shape[0] != batch:
                raise ValueError(
                    f"all inputs must have the same batch size (dimension 0), got {batch} and "
                    f"{value.shape[0]} (input {spec.name!r})"
                )
            batch = value.shape[0]
            if self.max_batch is not None and batch > self.max_batch:
                raise ValueError(
                    f"input {spec.name!r} has batch {batch}, above this model's maximum of {self.max_batch}"
                )
