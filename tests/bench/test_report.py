"""benchmarks/report.py: README tables regenerated between markers, tolerant of missing files and markers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


README = """# x

intro

<!-- bench:ops -->
stale ops table
<!-- /bench:ops -->

between

<!-- bench:serve -->
<!-- /bench:serve -->

<!-- bench:models -->
old
<!-- /bench:models -->
"""


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    results = tmp_path / "results"
    results.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    # A script that renders its own table, and results for it on two devices.
    (scripts / "serve.py").write_text(
        "def markdown(data):\n"
        "    return '| qps |\\n|---|\\n' + '\\n'.join(f\"| {r['qps']} |\" for r in data['results'])\n"
    )
    (results / "serve_cpu.json").write_text(json.dumps({"results": [{"qps": 12.5}, {"qps": 30.0}]}))
    (results / "serve_nvidia-h100.json").write_text(json.dumps({"results": [{"qps": 900.0}]}))
    # No script for ops: a generic table of its records, nested objects flattened.
    (results / "ops_cpu.json").write_text(
        json.dumps(
            {
                "command": "python benchmarks/ops.py",
                "cases": [{"case": "64@256²", "forward": {"fused_ms": 1.234567}}],
            }
        )
    )
    return readme, results, scripts


def test_sections_are_regenerated_between_markers(
    report: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme, results, scripts = _setup(tmp_path)
    args = ["--readme", str(readme), "--results", str(results), "--scripts", str(scripts)]
    assert report.main(args) == 0
    text = readme.read_text()
    assert "stale ops table" not in text and "old\n" not in text
    assert text.startswith("# x\n\nintro\n") and "between" in text
    ops = text.split("<!-- bench:ops -->")[1].split("<!-- /bench:ops -->")[0]
    assert "| case | forward.fused_ms |" in ops and "| 64@256² | 1.23 |" in ops
    assert "Reproduce: `python benchmarks/ops.py`" in ops
    serve = text.split("<!-- bench:serve -->")[1].split("<!-- /bench:serve -->")[0]
    # CPU first, then the GPU file, each rendered by the script's own markdown().
    assert serve.index("serve · cpu") < serve.index("serve · nvidia-h100")
    assert "| 12.5 |" in serve and "| 900.0 |" in serve
    models = text.split("<!-- bench:models -->")[1].split("<!-- /bench:models -->")[0]
    assert "No results yet: run `python benchmarks/models.py`" in models
    err = capsys.readouterr().err
    # train and runtime have no markers in this README: reported, not fatal.
    assert "bench:train" in err and "bench:runtime" in err
    # Idempotent, and --check agrees that README is current.
    assert report.main([*args, "--check"]) == 0
    assert report.main(args) == 0 and readme.read_text() == text


def test_check_reports_stale_readme_without_writing(report: ModuleType, tmp_path: Path) -> None:
    readme, results, scripts = _setup(tmp_path)
    assert (
        report.main(
            ["--readme", str(readme), "--results", str(results), "--scripts", str(scripts), "--check"]
        )
        == 1
    )
    assert readme.read_text() == README


def test_broken_renderer_falls_back_to_generic_table(report: ModuleType, tmp_path: Path) -> None:
    readme, results, scripts = _setup(tmp_path)
    (scripts / "serve.py").write_text("def markdown(data):\n    return data['missing_key']\n")
    assert report.main(["--readme", str(readme), "--results", str(results), "--scripts", str(scripts)]) == 0
    serve = readme.read_text().split("<!-- bench:serve -->")[1]
    assert "generic table: KeyError" in serve and "| qps |" in serve and "| 12.5 |" in serve


@pytest.mark.parametrize("name", ["runtime", "serve", "models", "ops", "train"])
def test_committed_results_render_with_their_scripts_table(report: ModuleType, name: str) -> None:
    # The JSON committed under benchmarks/results is what README shows: each file must render with the
    # table of the script that wrote it, never fall back to the generic one.
    section = report.render_section(name, ROOT / "benchmarks" / "results", ROOT / "benchmarks")
    assert "generated from" in section and "generic table" not in section, section[:500]
    assert "Reproduce: `python benchmarks/" in section


def test_models_markdown_renders_a_bench_report(report: ModuleType, tmp_path: Path) -> None:
    from ganrt.bench import BenchSettings, benchmark

    spec = importlib.util.spec_from_file_location("benchmarks_models", ROOT / "benchmarks" / "models.py")
    assert spec is not None and spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    bench = benchmark(
        "cyclegan",
        BenchSettings(
            backends=("torch", "tensorrt"), size=16, width=2, warmup_s=0, duration_s=0.05, min_iters=2
        ),
    )
    data = {
        "benchmark": "models",
        "command": "python benchmarks/models.py",
        "device": "cpu",
        "duration_s": 0.05,
        "threads": bench["settings"]["threads"],
        "machine": bench["machine"],
        "reports": [bench],
    }
    table = models.markdown(data)
    assert "| resnet_9blocks | fp32 | 1 | torch |" in table and "1×" in table
    assert "Not run: tensorrt (unavailable: TensorRT runs only on CUDA devices" in table
    assert "Reproduce: `python benchmarks/models.py`" in table


@pytest.mark.bf16
def test_train_markdown_renders_the_precision_axis(tmp_path: Path) -> None:
    # The real benchmark code on a toy configuration (4 channels, 32x32, one timed step per variant).
    from rich.progress import Progress

    spec = importlib.util.spec_from_file_location("benchmarks_train", ROOT / "benchmarks" / "train.py")
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    args = train.argparse.Namespace(rounds=1, steps_per_round=1, warmup=1, ngf=4, image_size=32, clock="cpu")
    with Progress(disable=True) as progress:
        result = train.bench_config("cyclegan_resnet_6blocks_128", "cyclegan", {"netG": "resnet_6blocks"}, args,
                                    progress)
    assert set(result["variants"]) == set(train.VARIANTS) and result["image_size"] == 32
    assert result["variants"]["bf16_fused"]["precision"] == "bf16" and result["variants"]["bf16_fused"]["fused"]
    ratio = result["variants"]["fp32_stock"]["median_ms"] / result["variants"]["bf16_fused"]["median_ms"]
    assert result["ratios"]["bf16_fused_vs_fp32_stock"] == ratio
    assert result["target"]["measured"] == ratio and result["target"]["met"] == (ratio >= 1.6)
    data = {"command": train.COMMAND, "cpu": "Test CPU", "bf16": "AVX512_BF16", "threads": 1, "clock": "cpu",
            "rounds": 1, "steps_per_round": 1, "torch": "2.x", "load_average_1m": {"before": 0.5, "after": 0.7},
            "results": [result]}
    table = train.markdown(data)
    assert "| configuration | fp32_stock ms | fp32_fused ms | fp32_fused_cl ms | bf16_stock ms |" in table
    assert f"| cyclegan_resnet_6blocks_128: bf16_fused_vs_fp32_stock | ≥ 1.6× | {ratio:.2f}× |" in table
    assert "Reproduce: `python benchmarks/train.py`" in table
