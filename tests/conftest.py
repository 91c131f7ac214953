"""Central skipping of hardware-bound tests (CUDA, TensorRT, a CPU with native bf16; nothing touches CUDA at
import or collection time), ganrt's cache folder for the session, and exports of every family shared by the
backend and runtime tests."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Dynamic H/W ranges (pixels) of the translator exports below: multiples of unet_32's 32 and the ResNet's 4.
DYNAMIC_HW = {"pix2pix": (32, 32, 96), "cyclegan": (16, 16, 48)}


@functools.cache
def _cuda_reason() -> str | None:
    from ganrt import _C

    if not _C.cuda_compiled:
        return "ganrt._C was built without CUDA kernels (GANRT_CUDA=OFF or no nvcc at build time)"
    if _C.cuda_device_count() == 0:
        return "no CUDA device visible to the CUDA runtime"
    import torch

    if not torch.cuda.is_available():
        return "this torch build has no CUDA support (CPU wheel)"
    return None


@functools.cache
def _tensorrt_reason() -> str | None:
    # Building and running engines needs a GPU and TensorRT, not ganrt's own CUDA kernels.
    from ganrt import _C

    if _C.cuda_compiled and _C.cuda_device_count() == 0:
        return "no CUDA device visible to the CUDA runtime"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (pip install tensorrt on a machine with a CUDA GPU)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device visible to torch (TensorRT tests move data with torch.cuda)"
    return None


@functools.cache
def _bf16_reason() -> str | None:
    import torch

    from ganrt.train.precision import device_support

    support = device_support(torch.device("cpu"))
    if support.bf16:
        return None
    return f"this CPU has {support.detail}: bf16 training needs AMX-BF16 or AVX512_BF16"


@pytest.fixture(scope="session", autouse=True)
def _ganrt_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ganrt's cache root (OpenVINO's compiled models, backend selection records) in a temporary folder for
    the whole session: tests never write to the real home, and the backend trial of ``ganrt.load(...,
    backend="auto")`` runs once per artifact. Subprocesses inherit it."""
    patch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("ganrt-cache")
    patch.setenv("GANRT_CACHE_DIR", str(root))
    yield root
    patch.undo()


@pytest.fixture(scope="session")
def family_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """key of ``tests.export.conftest.CASES`` (every family and part) -> (run directory, its ONNX export):
    tiny random-weight networks through the real, parity-gated export; translators with dynamic H/W
    (:data:`DYNAMIC_HW`). Built on first use, once per session."""
    from ganrt.export import export
    from tests.export.conftest import CASES, make_run

    made: dict[str, tuple[Path, Path]] = {}

    def get(key: str) -> tuple[Path, Path]:
        if key not in made:
            root = tmp_path_factory.mktemp(f"family-{key}")
            run = make_run(root / "run", key)
            hw = DYNAMIC_HW.get(key)
            sizes = {"height": hw, "width": hw} if hw else {}
            out = root / f"{key}.onnx"
            result = export(run, output=out, progress=False, parity_samples=1, **CASES[key][3], **sizes)
            made[key] = run, Path(result.path)
        return made[key]

    return get


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("tensorrt"):
        reason = _tensorrt_reason()
    elif item.get_closest_marker("cuda"):
        reason = _cuda_reason()
    elif item.get_closest_marker("bf16"):
        reason = _bf16_reason()
    else:
        return
    if reason:
        pytest.skip(reason)
