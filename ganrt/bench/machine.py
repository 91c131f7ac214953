"""What machine a benchmark ran on: CPU, cores, memory, GPU, driver and library versions."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from typing import Any

from ganrt.backends.device import cpu_model

# Distribution names whose versions change the numbers.
_LIBRARIES = (
    "torch",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "onnx",
    "numpy",
    "tensorrt",
    "tensorrt-cu12",
    "tensorrt-cu13",
    "mlcommons-loadgen",
    "psutil",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that matter for speed (absent ones are left out)."""
    versions = {}
    for dist in _LIBRARIES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    from ganrt import __version__

    versions["ganrt"] = __version__
    return versions


def _nvidia_smi() -> list[dict[str, str]]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        text = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append(
                {"name": parts[0], "driver": parts[1], "memory_total": parts[2], "max_sm_clock": parts[3]}
            )
    return gpus


def gpu_info() -> list[dict[str, Any]]:
    """One entry per visible CUDA device (name, compute capability, memory, driver); empty without CUDA.

    Asks torch only when it was built with CUDA, so CPU-only machines never initialise a CUDA context.
    """
    import torch

    if torch.version.cuda is None or not torch.cuda.is_available():
        return []
    smi = _nvidia_smi()
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        entry: dict[str, Any] = {
            "index": i,
            "name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 2),
            "multiprocessors": props.multi_processor_count,
            "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
        if i < len(smi):
            entry["driver"] = smi[i]["driver"]
            entry["max_sm_clock"] = smi[i]["max_sm_clock"]
        gpus.append(entry)
    return gpus


def machine_info() -> dict[str, Any]:
    """Everything needed to tell two benchmark runs' machines apart; JSON-serialisable."""
    import psutil
    import torch

    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(logical=True),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 2),
        "torch_threads": torch.get_num_threads(),
        "gpus": gpu_info(),
        "libraries": library_versions(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def device_slug(info: dict[str, Any]) -> str:
    """A file-name-safe name for the benchmarked device: the first GPU's name, else ``cpu``."""
    name = info["gpus"][0]["name"] if info.get("gpus") else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "cpu"
