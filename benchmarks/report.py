"""Regenerate README's benchmark tables from benchmarks/results/*.json (tables are generated, never typed).

For each NAME in ops, train, runtime, serve, models, the text between the marker comments
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in README.md is replaced by one table per results file
``NAME.json`` / ``NAME_<device>.json`` (``ops_cpu.json``, ``models_nvidia-h100-80gb-hbm3.json``, ...),
CPU first. A table is rendered, in order of preference, by the ``markdown(data)`` function of the script that
wrote the file (``benchmarks/NAME.py``: each benchmark owns its table's layout), or as a generic table of the
file's records when that script has no renderer or its renderer fails on the file (an older layout). Missing results leave a line saying which
command produces them; missing markers are reported and skipped.

The ``gpu`` section is the GPU run of benchmarks/gpu.sh: one block per device folder
``benchmarks/results/gpu/<device>/`` (environment, step status, the junit XML of the cuda tests, the sanitizer
log, ``ops.json`` and ``models.json`` rendered by their scripts' ``markdown``); without such a folder it says
that no GPU run has happened yet.

Usage: python benchmarks/report.py [--readme README.md] [--results benchmarks/results] [--check]
       python benchmarks/report.py --gpu-summary FOLDER     (the summary benchmarks/gpu.sh prints)
``--check`` changes nothing and exits 1 when README is out of date.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = ("ops", "train", "runtime", "serve", "models", "gpu")
# Columns a generic table shows at most; more would not fit a README.
MAX_COLUMNS = 12


def results_files(results: Path, name: str) -> list[Path]:
    """``NAME.json`` and ``NAME_<device>.json`` under ``results``: CPU results first, then by name."""
    files = [p for p in results.glob(f"{name}*.json") if p.stem == name or p.stem.startswith(f"{name}_")]
    return sorted(files, key=lambda p: (not p.stem.endswith("_cpu") and p.stem != name, p.name))


def _load_renderer(name: str, scripts: Path) -> tuple[Callable[[dict[str, Any]], str] | None, str | None]:
    """``markdown`` of ``benchmarks/NAME.py`` (imported, not run), or (None, why not)."""
    script = scripts / f"{name}.py"
    if not script.is_file():
        return None, f"{script.name} not found"
    spec = importlib.util.spec_from_file_location(f"_ganrt_benchmark_{name}", script)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a script that cannot import here still gets a generic table
        return None, f"importing {script.name} failed: {type(exc).__name__}: {exc}"
    render = getattr(module, "markdown", None)
    if not callable(render):
        return None, f"{script.name} has no markdown(data)"
    return render, None


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _flatten(record: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 1:
            flat.update(_flatten(value, f"{name}.", depth + 1))
        elif not isinstance(value, (dict, list)):
            flat[name] = value
    return flat


def _records(data: Any) -> list[dict[str, Any]]:
    """The main records of a results file: ``results``/``rows``/``cases``, else its first list of dicts."""
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    if not isinstance(data, dict):
        return []
    for key in ("results", "rows", "cases"):
        value = data.get(key)
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            return value
    for value in data.values():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            return value
    return []


def generic_markdown(data: Any) -> str:
    """A table of the file's records (scalar fields, nested objects flattened one level)."""
    rows = [_flatten(r) for r in _records(data)]
    if not rows:
        scalars = _flatten(data) if isinstance(data, dict) else {}
        if not scalars:
            return "_No tabular records in this file._"
        rows = [scalars]
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    columns = columns[:MAX_COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def junit_summary(path: Path) -> dict[str, Any] | None:
    """Counts of a junit XML file (pytest --junitxml) and the ids of failed tests, or None when unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname', '')}::{case.get('name', '')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["failed_ids"] = failed
    return counts


def sanitizer_summary(path: Path) -> list[tuple[str, str]]:
    """(tool, its ERROR SUMMARY or RACECHECK SUMMARY line) per compute-sanitizer run in gpu.sh's log."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out, tool = [], "?"
    for line in text.splitlines():
        marker = re.match(r"^== gpu\.sh: compute-sanitizer --tool (\w+)", line)
        if marker:
            tool = marker.group(1)
        summary = re.search(r"(?:ERROR|RACECHECK) SUMMARY: .*", line)
        if summary:
            out.append((tool, summary.group(0)))
    return out


def gpu_markdown(folder: Path, scripts: Path = HERE) -> str:
    """The GPU run in ``folder`` (what benchmarks/gpu.sh writes): environment, steps, tests, sanitizers, ops
    and model benchmarks."""
    env = _read_json(folder / "environment.json") or {}
    gpu = (env.get("machine", {}).get("gpus") or [{}])[0]
    libraries = env.get("machine", {}).get("libraries", {})
    lines = [
        (
            f"Device {gpu.get('name', '?')} (compute capability {gpu.get('compute_capability', '?')}, "
            f"{gpu.get('multiprocessors', '?')} SMs), driver {gpu.get('driver', '?')}, CUDA runtime "
            f"{gpu.get('cuda_runtime', '?')}, cuDNN {gpu.get('cudnn', '?')}; "
            f"torch {libraries.get('torch', '?')}, nvcc {env.get('nvcc', '?')}; "
            f"ganrt {libraries.get('ganrt', '?')} at commit {env.get('commit', '?')}; "
            f"{env.get('machine', {}).get('timestamp', '?')}. Reproduce: `bash benchmarks/gpu.sh`."
        ),
    ]
    steps = (_read_json(folder / "steps.json") or {}).get("steps", [])
    if steps:
        lines += ["", "| step | status | seconds | budget s |", "|---|---|---|---|"]
        for step in steps:
            lines.append(
                f"| {step['name']} | {step['status']} | {_cell(float(step.get('seconds', 0)))} | "
                f"{step.get('budget_s', '–')} |"
            )
    tests = junit_summary(folder / "tests.xml")
    if tests is not None:
        counts = (
            f"{tests['passed']} passed, {tests['failures']} failed, {tests['errors']} errors, "
            f"{tests['skipped']} skipped"
        )
        selection = '`pytest -m "(cuda or tensorrt) and not slow"`'
        lines += ["", f"{selection}: {counts} (tensorrt tests skip where TensorRT is not installed)."]
        if tests["failed_ids"]:
            lines.append("Failed: " + ", ".join(f"`{t}`" for t in tests["failed_ids"][:20]) + ".")
    sanitizers = sanitizer_summary(folder / "sanitizer.log")
    if sanitizers:
        lines.append("")
        lines += [f"compute-sanitizer {tool} on the kernel tests: {summary}." for tool, summary in sanitizers]
    for name in ("ops", "models"):
        data = _read_json(folder / f"{name}.json")
        if data is None:
            lines += ["", f"_No {name} results in this run (see the step table)._"]
            continue
        render, _ = _load_renderer(name, scripts)
        try:
            body = render(data) if render else generic_markdown(data)
        except Exception as exc:  # an older layout: keep the README buildable
            body = f"{generic_markdown(data)}\n\n({name}.py markdown() failed: {type(exc).__name__}: {exc})"
        lines += ["", body.strip()]
    return "\n".join(lines)


def render_gpu_section(results: Path, scripts: Path) -> str:
    runs = sorted(p for p in (results / "gpu").glob("*") if p.is_dir()) if (results / "gpu").is_dir() else []
    if not runs:
        return (
            "_No GPU run has happened yet: no GPU has been available to this project. "
            "`bash benchmarks/gpu.sh` on a CUDA machine writes `benchmarks/results/gpu/<device>/`, and this "
            "section is generated from it._"
        )
    parts = []
    for folder in runs:
        rel = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
        header = f"**gpu · {folder.name}** — generated from `{rel}/`"
        parts.append(f"{header}\n\n{gpu_markdown(folder, scripts)}")
    return "\n\n".join(parts)


def render_section(name: str, results: Path, scripts: Path) -> str:
    """Markdown for one README section (without the markers)."""
    if name == "gpu":
        return render_gpu_section(results, scripts)
    files = results_files(results, name)
    if not files:
        return (
            f"_No results yet: run `python benchmarks/{name}.py` "
            f"(writes `benchmarks/results/{name}_*.json`)._"
        )
    render, why = _load_renderer(name, scripts)
    parts = []
    for path in files:
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            parts.append(f"`{rel}`: unreadable ({exc}).")
            continue
        device = path.stem[len(name) + 1 :] if path.stem != name else "default"
        header = f"**{name} · {device}** — generated from `{rel}`"
        body = None
        failures = [why] if why else []
        if render is not None:
            try:
                body = render(data)
            except Exception as exc:  # the file predates the renderer's layout: a generic table
                failures.append(f"{type(exc).__name__} in {name}.py markdown(): {exc}")
        if body is None:
            body = generic_markdown(data)
            if isinstance(data, dict) and data.get("command"):
                body = f"Reproduce: `{data['command']}`.\n\n{body}"
            if failures:
                header += f" (generic table: {'; '.join(failures)})"
        parts.append(f"{header}\n\n{body.strip()}")
    return "\n\n".join(parts)


def update_readme(text: str, sections: dict[str, str]) -> tuple[str, list[str]]:
    """Replace each marked region with its section; returns the new text and the names whose markers are
    missing."""
    missing = []
    for name, body in sections.items():
        pattern = re.compile(
            rf"(<!-- bench:{re.escape(name)} -->)(.*?)(<!-- /bench:{re.escape(name)} -->)", re.DOTALL
        )
        if not pattern.search(text):
            missing.append(name)
            continue
        text = pattern.sub(lambda m, body=body: f"{m.group(1)}\n{body}\n{m.group(3)}", text, count=1)
    return text, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--scripts", type=Path, default=HERE, help="where benchmarks/NAME.py live")
    parser.add_argument("--check", action="store_true", help="exit 1 if README is out of date; write nothing")
    parser.add_argument(
        "--gpu-summary",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="print the summary of a GPU run folder",
    )
    args = parser.parse_args(argv)
    if args.gpu_summary is not None:
        print(gpu_markdown(args.gpu_summary, args.scripts))
        return 0

    sections = {name: render_section(name, args.results, args.scripts) for name in SECTIONS}
    old = args.readme.read_text(encoding="utf-8")
    new, missing = update_readme(old, sections)
    for name in missing:
        print(
            f"report.py: README has no <!-- bench:{name} --> ... <!-- /bench:{name} --> markers; skipped",
            file=sys.stderr,
        )
    if args.check:
        if new != old:
            print(
                f"report.py: {args.readme} is out of date; run python benchmarks/report.py", file=sys.stderr
            )
            return 1
        return 0
    if new != old:
        from ganrt.utils import atomic_write

        atomic_write(args.readme, new)
    done = [n for n in SECTIONS if n not in missing]
    print(f"report.py: {args.readme}: {len(done)} section(s) regenerated ({', '.join(done)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
