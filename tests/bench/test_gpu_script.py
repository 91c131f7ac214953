"""benchmarks/gpu.sh, the GPU run: its --dry-run (what CI can check without a GPU) and the summary renderer
(benchmarks/report.py's GPU section) on the file formats the run writes."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
STEPS = ("build", "env", "tests", "ops", "models", "memcheck", "racecheck", "summary")


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_report_gpu", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree_state() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_dry_run_lists_the_steps_and_checks_prerequisites() -> None:
    before = _tree_state()
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = out.splitlines()
    for step in STEPS:
        assert any(line.strip().startswith(step) for line in lines), f"step {step} not listed:\n{out}"
    assert "FAILED" not in out
    assert "GANRT_CUDA=ON GANRT_CUDA_ARCHITECTURES=90" in out and "--no-index" in out
    assert "compute-sanitizer --tool memcheck" in out and "compute-sanitizer --tool racecheck" in out
    assert out.count("  ok  ") >= 10
    assert "nothing was written" in out
    assert _tree_state() == before, "a dry run must not write anything"


def test_unknown_argument_is_an_error() -> None:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--fast"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 2 and "unknown argument '--fast'" in proc.stderr


@pytest.mark.skipif(
    shutil.which("nvidia-smi", path="/usr/bin:/bin") is not None, reason="nvidia-smi is installed: a real run"
)
def test_without_a_gpu_the_run_stops_before_building(tmp_path: Path) -> None:
    """No nvidia-smi on PATH: exit 2 with the reason, before any venv or build."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OUT": str(tmp_path / "out")}
    proc = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 2 and "no NVIDIA GPU visible" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_readme_section_says_no_gpu_run_without_results(report: ModuleType, tmp_path: Path) -> None:
    text = report.render_section("gpu", tmp_path, ROOT / "benchmarks")
    assert text.startswith("_No GPU run has happened yet")


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="2" tests="5" time="3.1">
<testcase classname="tests.gpu.test_ops_cuda" name="test_a" time="0.1"/>
<testcase classname="tests.gpu.test_ops_cuda" name="test_b" time="0.1"><failure message="boom">x</failure></testcase>
<testcase classname="tests.runtime.test_gpu" name="test_c" time="0.1"><skipped message="no TensorRT"/></testcase>
<testcase classname="tests.runtime.test_gpu" name="test_d" time="0.1"><skipped message="no TensorRT"/></testcase>
<testcase classname="tests.models.test_cuda" name="test_e" time="0.1"/>
</testsuite></testsuites>
"""
# compute-sanitizer's own closing line, as gpu.sh appends it after its marker line.
SANITIZER_LOG = """== gpu.sh: compute-sanitizer --tool memcheck
========= COMPUTE-SANITIZER
12 passed in 30.1s
========= ERROR SUMMARY: 0 errors
== gpu.sh: compute-sanitizer --tool racecheck
========= COMPUTE-SANITIZER
========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)
"""


def test_summary_of_a_run_folder(report: ModuleType, tmp_path: Path) -> None:
    folder = tmp_path / "gpu" / "nvidia-h200"
    folder.mkdir(parents=True)
    (folder / "tests.xml").write_text(JUNIT)
    (folder / "sanitizer.log").write_text(SANITIZER_LOG)
    steps = [{"name": "build", "status": "ok", "seconds": 61, "budget_s": 150},
             {"name": "models", "status": "timed out", "seconds": 150, "budget_s": 150}]  # fmt: skip
    (folder / "steps.json").write_text(json.dumps({"steps": steps}))
    tests = report.junit_summary(folder / "tests.xml")
    assert (tests["tests"], tests["passed"], tests["failures"], tests["skipped"]) == (5, 2, 1, 2)
    assert tests["failed_ids"] == ["tests.gpu.test_ops_cuda::test_b"]
    assert report.sanitizer_summary(folder / "sanitizer.log") == [
        ("memcheck", "ERROR SUMMARY: 0 errors"),
        ("racecheck", "RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)"),
    ]
    text = report.gpu_markdown(folder)
    assert "2 passed, 1 failed, 0 errors, 2 skipped" in text and "`tests.gpu.test_ops_cuda::test_b`" in text
    assert "| models | timed out | 150 | 150 |" in text
    assert "compute-sanitizer memcheck on the kernel tests: ERROR SUMMARY: 0 errors." in text
    assert "_No ops results in this run" in text and "_No models results in this run" in text
    section = report.render_section("gpu", tmp_path, ROOT / "benchmarks")
    assert section.startswith("**gpu · nvidia-h200**")
