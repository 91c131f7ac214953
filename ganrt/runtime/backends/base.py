"""What every backend provides: tensor specs and the :class:`Runner` interface."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
    """

    backend: str
    device: str  # "cpu" or "cuda:<i>"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    max_batch: int | None
    threads: int | None
    precision: str

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
        """Raise a clear error for missing/unknown input names, wrong dtype, rank or static dimensions."""
        names = {spec.name for spec in self.inputs}
        missing = names - set(feeds)
        unknown = set(feeds) - names
        if missing or unknown:
            raise ValueError(
                f"feeds must name exactly the inputs {sorted(names)}; missing {sorted(missing)}, "
                f"unknown {sorted(unknown)}"
            )
        batch = None
        for spec in self.inputs:
            value = feeds[spec.name]
            spec.check(value)
            if len(value.shape) and self.max_batch is not None and value.shape[0] > self.max_batch:
                raise ValueError(
                    f"input {spec.name!r} has batch {value.shape[0]}, above this model's "
                    f"max_batch {self.max_batch}"
                )
            if len(value.shape):
                if batch is not None and value.shape[0] != batch:
                    raise ValueError(
                        f"all inputs must share the batch dimension, got {batch} and "
                        f"{value.shape[0]} (input {spec.name!r})"
                    )
                batch = value.shape[0]
