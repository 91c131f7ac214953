"""Presenting a ``ganrt-bench/1`` report: a rich table, the JSON file and a PNG chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ganrt.utils import atomic_path, atomic_write


def _ms(value: float | None) -> str:
    """3 significant digits without exponents up to 99999."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _case(result: dict[str, Any]) -> str:
    return f"{result['precision']} b{result['batch']}"


def print_report(report: dict[str, Any], *, console: Any = None) -> None:
    """Print the latency table (and LoadGen table when scenarios ran) to ``console`` (default stdout)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    target = report["target"]
    machine = report["machine"]
    gpu = machine["gpus"][0]["name"] if machine.get("gpus") else None
    settings = report["settings"]
    title = (
        f"{target['name']} @ {target['size']}px on {settings['device']}, latency in ms "
        f"({gpu or machine['cpu']}, {settings['threads']} thread{'s' if settings['threads'] != 1 else ''}"
        f"{', pre/post included' if settings['include_io'] else ''})"
    )
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    # Latencies in ms; img/s = samples per second; cold = load + first inference (s); MiB = memory footprint;
    # diff = max |output - reference backend's output|.
    for col in ("backend", "case", "median", "p90", "p99", "max", "CV", "img/s", "cold", "MiB", "diff"):
        table.add_column(
            col, justify="left" if col in ("backend", "case") else "right", no_wrap=col in ("backend", "case")
        )
    not_run = []
    for r in report["results"]:
        if r["status"] != "ok":
            not_run.append(r)
            continue
        lat = r["latency_ms"]
        mem = r.get("memory", {})
        footprint = mem.get("cuda_footprint_mb", mem.get("footprint_mb"))
        diff = (r.get("agreement") or {}).get("max_abs_diff")
        table.add_row(
            r["backend"],
            _case(r),
            _ms(lat["median_ms"]),
            _ms(lat["p90_ms"]),
            _ms(lat["p99_ms"]),
            _ms(lat["max_ms"]),
            f"{lat['cv']:.0%}",
            _ms(r["throughput_sps"]),
            _seconds(r["cold_start_s"]),
            f"{footprint:.0f}" if footprint is not None else "-",
            f"{diff:.1g}" if diff is not None else "-",
        )
    if table.row_count:
        console.print(table)
    for r in not_run:
        console.print(f"[yellow]{r['backend']}[/] ({_case(r)}) {r['status']}: {r['reason']}", highlight=False)
    phases = [r for r in report["results"] if r["status"] == "ok" and len(r.get("phases_ms", {})) > 1]
    if phases:
        split = Table(
            title="Where the time goes (median ms per phase)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        names = [
            p for p in ("pre", "h2d", "compute", "d2h", "post") if any(p in r["phases_ms"] for r in phases)
        ]
        for col in ("backend", "case", "timing", *names):
            split.add_column(col, justify="left" if col in ("backend", "case", "timing") else "right")
        for r in phases:
            split.add_row(
                r["backend"],
                _case(r),
                r.get("timing", "host"),
                *[_ms(r["phases_ms"][p]["median_ms"]) if p in r["phases_ms"] else "-" for p in names],
            )
        console.print(split)
    loadgen = [r for r in report["results"] if r.get("loadgen")]
    if loadgen:
        lg = Table(
            title="MLPerf LoadGen (short runs; validity as LoadGen reports it)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for col in ("backend", "case", "scenario", "metric", "value", "LoadGen"):
            lg.add_column(col, justify="right" if col == "value" else "left")
        for r in loadgen:
            for scenario, s in r["loadgen"].items():
                if scenario == "error":
                    lg.add_row(r["backend"], _case(r), "-", "[red]error[/]", "", s)
                    continue
                metric, value = _loadgen_metric(scenario, s)
                lg.add_row(
                    r["backend"],
                    _case(r),
                    s["scenario"],
                    metric,
                    value,
                    "VALID" if s.get("valid") else "INVALID",
                )
        console.print(lg)


def _loadgen_metric(scenario: str, s: dict[str, Any]) -> tuple[str, str]:
    if scenario == "single-stream":
        return "p90 latency ms", _ms(s.get("p90_latency_ms"))
    if scenario == "offline":
        value = s.get("samples_per_s")
        return "samples/s", f"{value:.1f}" if value is not None else "-"
    best = s.get("max_qps_under_bound")
    return f"QPS, p99<={_ms(s['bound_p99_ms'])}ms", f"{best:.1f}" if best is not None else "none met"


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report atomically (temporary file + rename), creating parent folders."""
    return atomic_write(path, json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """PNG: median latency bars with p90/p99 marks per backend and case (left), latency-percentile curves
    (right). Backends that did not run are named under the bars with their status."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = report["results"]
    cases = list(dict.fromkeys(_case(r) for r in results))
    backends = list(dict.fromkeys(r["backend"] for r in results))
    colors = {b: plt.get_cmap("tab10")(i % 10) for i, b in enumerate(backends)}
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(len(backends), 1)
    missing = []
    plotted: list[float] = []
    for j, backend in enumerate(backends):
        for i, case in enumerate(cases):
            r = next((r for r in results if r["backend"] == backend and _case(r) == case), None)
            if r is None:
                continue
            x = i - 0.4 + width * (j + 0.5)
            if r["status"] != "ok":
                missing.append(f"{backend} ({case}): {r['status']}")
                bars.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="gray")
                continue
            lat = r["latency_ms"]
            plotted.extend(lat["curve_ms"])
            bars.bar(x, lat["median_ms"], width, color=colors[backend], label=backend if i == 0 else None)
            bars.plot([x, x], [lat["p90_ms"], lat["p99_ms"]], color="black", linewidth=1)
            bars.plot([x], [lat["p99_ms"]], marker="_", color="black")
            curves.plot(
                range(len(lat["curve_ms"])),
                lat["curve_ms"],
                color=colors[backend],
                linestyle=["-", "--", ":", "-."][i % 4],
                label=f"{backend} {case}",
            )
    positive = [v for v in plotted if v > 0]
    if positive and max(positive) / min(positive) > 30:
        # Backends an order of magnitude apart: a linear axis would flatten the fast ones to nothing.
        bars.set_yscale("log")
        curves.set_yscale("log")
    bars.set_xticks(range(len(cases)), cases)
    bars.set_xlim(-0.5, len(cases) - 0.5)
    bars.set_ylabel("latency (ms): bar = median, line = p90..p99")
    target = report["target"]
    bars.set_title(f"{target['name']} @ {target['size']}px, {report['settings']['device']}", fontsize=10)
    if bars.get_legend_handles_labels()[0]:
        bars.legend(fontsize=8)
    if missing:
        bars.text(
            0.0,
            -0.16,
            "not run: " + "; ".join(missing),
            transform=bars.transAxes,
            fontsize=7,
            va="top",
            wrap=True,
        )
    curves.set_xlabel("percentile")
    curves.set_ylabel("latency (ms)")
    curves.set_title("latency by percentile", fontsize=10)
    if curves.get_legend_handles_labels()[0]:
        curves.legend(fontsize=7)
    curves.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return Path(path)
