"""Which backend and precision run an ONNX artifact on the CPU: ``ganrt.load(..., backend="auto")``.

Candidates are the backends that read ONNX (:data:`ganrt.backends.READERS`): ONNX Runtime at the artifact's
own precision, OpenVINO fp32 and, where the CPU computes bf16 natively, OpenVINO bf16. (The torch backend
reads run directories, not ONNX.) On a first load:

1. every candidate is loaded; one that cannot load here is listed with the reason (an artifact OpenVINO
   cannot read leaves ONNX Runtime);
2. every candidate runs on real bundled images (the export parity gate's inputs, ``recipe.parity_samples``
   of them), and reduced precisions pass ganrt's parity check or are dropped: their outputs are compared with
   the fp32 output against the family recipe's ``[parity.fp16]`` bound (PSNR and uint8 mean-abs);
3. the same calls are the timed trial (:func:`ganrt.bench.timing.interleaved`, the loop every benchmark
   uses): one interleaved round per image, batch 1, native size, the first round a warm-up; more rounds
   follow on the first image until :data:`TRIAL_SECONDS` have passed since the first (at least
   :data:`TRIAL_MIN_ROUNDS`, at most :data:`TRIAL_MAX_ROUNDS` timed rounds), so a model of half a second per
   call costs the quality rounds and no more;
4. the fastest wins, by each candidate's fastest round: other work on the machine only ever adds time, so
   with a few rounds on a shared machine the minimum tells the candidates apart where a median of two or
   three noisy rounds does not. A reduced precision must beat the best fp32 candidate by :data:`REDUCED_MIN_GAIN`
   to be worth its error, and a candidate within :data:`TIE` of an earlier one (ONNX Runtime first) does not
   displace it.

The outcome (every candidate's time, status and quality, the winner and why) is written atomically to
``<cache root>/select/<key>.json``, keyed by the artifact's content hash, the machine (CPU, cores, instruction
sets, library versions), the ganrt version, the thread count and what was asked for. Later loads read it and
load only the winner. A record that cannot be read or no longer loads is rebuilt; an unwritable cache folder
means no record (with a :class:`~ganrt.runtime.cache.CacheWarning`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ganrt.backends import runner_class
from ganrt.backends.base import Runner
from ganrt.backends.device import cpu_flags, cpu_model, physical_cores
from ganrt.errors import ArtifactError, BackendUnavailableError, MetadataError
from ganrt.runtime import cache

RECORD_FORMAT = "ganrt-select/2"
# Wall-clock seconds the trial's rounds may take, and its limits on timed rounds: a model of a few
# milliseconds stops at TRIAL_MAX_ROUNDS, one of half a second after the quality rounds.
TRIAL_SECONDS = 2.0
TRIAL_MIN_ROUNDS = 2
TRIAL_MAX_ROUNDS = 15
# Idle seconds before each timed call, so one candidate's still-spinning thread pool (ONNX Runtime's spins for
# milliseconds after a call) does not slow the next one down on few cores.
TRIAL_SETTLE_S = 0.005
# A reduced precision replaces fp32 only when at least this much faster than the fastest fp32 candidate.
REDUCED_MIN_GAIN = 0.10
# Candidates within this fraction of each other count as equally fast: the earlier one is kept.
TIE = 0.03
# Instruction sets that change which backend and precision win (part of the record key).
_KEY_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


@dataclasses.dataclass(frozen=True)
class Candidate:
    backend: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"


@dataclasses.dataclass
class Selection:
    """The loaded winner, why it won (``reason``), why it runs at its precision (``precision_reason``) and the
    selection record (``None`` when nothing was to choose)."""

    runner: Runner
    reason: str
    precision_reason: str
    record: dict[str, Any] | None


def select(
    path: Path,
    *,
    backend: str = "auto",
    threads: int | None = None,
    precision: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Selection:
    """Load the ONNX artifact ``path`` on the CPU with the backend and precision that suit it here.

    backend: ``"auto"``, ``"onnxruntime"`` or ``"openvino"``; precision: ``None`` (choose), ``"fp32"``,
    ``"bf16"`` (OpenVINO, forced: no quality check) or ``"fp16"`` (an fp16 artifact on ONNX Runtime).
    ``overrides`` complete the metadata of foreign artifacts (needed here to build the trial's inputs).
    """
    from ganrt.artifact import onnx_metadata_props

    try:
        props = onnx_metadata_props(path)
    except MetadataError:
        props = {}  # not well-formed: the runners report it when they fail to load it
    exported = props.get("ganrt.precision") or "fp32"
    threads = threads if threads is not None else physical_cores()
    candidates, excluded = _candidates(path, backend, precision, exported)
    if len(candidates) == 1:
        (only,) = candidates
        ov_cache = _ov_cache(path) if only.backend == "openvino" else None
        runner = _load(only, path, threads, ov_cache)
        reason = _forced_reason(only, backend)
        if excluded:
            reason += "; not tried: " + "; ".join(f"{c.label} ({why})" for c, why in excluded)
        return Selection(runner, reason, _forced_precision(only, precision, excluded), None)

    digest = cache.artifact_digest(path)
    ov_cache = cache.writable_dir("openvino", digest[:32])
    # An unwritable root was just reported; the records share it.
    record_dir = cache.writable_dir("select") if ov_cache is not None else None
    key = _key(digest, threads, backend, precision)
    record_path = record_dir / f"{_key_hash(key)}.json" if record_dir is not None else None
    rebuilt = None
    if record_path is not None and record_path.exists():
        record, rebuilt = _read_record(record_path, key)
        if record is not None:
            win = Candidate(**record["winner"])
            try:
                runner = _load(win, path, threads, ov_cache)
            except (ArtifactError, BackendUnavailableError) as exc:
                rebuilt = f"the recorded winner {win.label} no longer loads: {_first_line(exc)}"
            else:
                record["cache"] = {"status": "hit", "record": str(record_path)}
                return Selection(runner, record["reason"], record["precision_reason"], record)

    selection = _trial(path, candidates, excluded, threads, ov_cache, overrides or {}, props)
    record = selection.record
    assert record is not None
    record["key"] = key
    record["artifact"] = str(path)
    if record_path is not None:
        from ganrt.utils import atomic_write

        try:
            atomic_write(record_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            cache.warn_unusable(record_path.parent, exc)
            record_path = None
    status = "rebuilt" if rebuilt else ("written" if record_path is not None else "not cached")
    record["cache"] = {"status": status, "record": str(record_path) if record_path is not None else None}
    if rebuilt:
        record["cache"]["why"] = rebuilt
    return selection


# ------------------------------------------------------------------------------------------------ candidates


def _candidates(
    path: Path, backend: str, precision: str | None, exported: str
) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """What to try for this request, and what was left out with the reason. Raises ``ValueError`` for a
    request no ONNX backend can honour."""
    from ganrt.backends.openvino import native_bf16

    if backend not in ("auto", "onnxruntime", "openvino"):
        raise ValueError(
            f"backend must be 'auto', 'onnxruntime' or 'openvino' for an ONNX artifact, got {backend!r}"
        )
    ort, ov = backend in ("auto", "onnxruntime"), backend in ("auto", "openvino")
    if precision is None:
        out = ([Candidate("onnxruntime", exported)] if ort else []) + (
            [Candidate("openvino", "fp32")] if ov else []
        )
        excluded = []
        if ov:
            native, why = native_bf16()
            if native:
                out.append(Candidate("openvino", "bf16"))
            else:
                excluded.append((Candidate("openvino", "bf16"), why))
        return out, excluded
    if precision == "fp32":
        out = ([Candidate("onnxruntime", "fp32")] if ort and exported == "fp32" else []) + (
            [Candidate("openvino", "fp32")] if ov else []
        )
        if out:
            return out, []
    elif precision == "bf16" and ov:
        return [Candidate("openvino", "bf16")], []
    elif precision == "fp16" and ort and exported == "fp16":
        return [Candidate("onnxruntime", "fp16")], []
    runs = (
        f"ONNX Runtime runs it as exported ({exported}); OpenVINO runs it at fp32 or bf16"
        if backend == "auto"
        else (f"onnxruntime runs it as exported ({exported})" if ort else "openvino runs fp32 or bf16")
    )
    raise ValueError(
        f"{path}: precision={precision!r} is not available for this {exported} ONNX artifact with "
        f"backend={backend!r}: {runs}"
        + ("; export it with --precision fp16 for fp16" if precision == "fp16" else "")
    )


def _ov_cache(path: Path) -> Path | None:
    """OpenVINO's compiled-model cache folder for this artifact's contents (``None``: unusable, warned)."""
    return cache.writable_dir("openvino", cache.artifact_digest(path)[:32])


def _load(candidate: Candidate, path: Path, threads: int, ov_cache: Path | None) -> Runner:
    cls = runner_class(candidate.backend)
    if candidate.backend == "onnxruntime":
        return cls.load(path, device="cpu", threads=threads)
    if ov_cache is None:
        return cls.load(path, device="cpu", threads=threads, precision=candidate.precision)
    try:
        return cls.load(
            path, device="cpu", threads=threads, precision=candidate.precision, cache_dir=ov_cache
        )
    except (ArtifactError, OSError) as exc:
        # A cache OpenVINO cannot write (disk full) must not cost the model: retry without the cache, and
        # blame the cache only when that works.
        runner = cls.load(path, device="cpu", threads=threads, precision=candidate.precision)
        cache.warn_unusable(ov_cache, exc)
        return runner


def _forced_reason(candidate: Candidate, backend: str) -> str:
    if backend != "auto":
        return f"{candidate.label} on cpu: backend={backend!r} requested"
    return f"{candidate.label} on cpu: the only CPU backend for this request"


def _forced_precision(
    candidate: Candidate, precision: str | None, excluded: list[tuple[Candidate, str]]
) -> str:
    if candidate.backend == "onnxruntime":
        return f"{candidate.precision}: ONNX Runtime runs the artifact at the precision it was exported with"
    if precision is not None:
        extra = "; the quality check does not apply to a requested precision" if precision != "fp32" else ""
        return f"{candidate.precision}: precision={precision!r} requested{extra}"
    why_not = next((w for c, w in excluded if c.precision == "bf16"), None)
    return f"{candidate.precision}: bf16 not offered ({why_not})" if why_not else candidate.precision


# ------------------------------------------------------------------------------------------------ the trial


def _trial(
    path: Path,
    candidates: list[Candidate],
    excluded: list[tuple[Candidate, str]],
    threads: int,
    ov_cache: Path | None,
    overrides: Mapping[str, Any],
    props: Mapping[str, str],
) -> Selection:
    from ganrt.runtime.metadata import resolve

    entries: dict[Candidate, dict[str, Any]] = {
        c: {"backend": c.backend, "precision": c.precision, "status": "unavailable", "reason": why}
        for c, why in excluded
    }
    runners: dict[Candidate, Runner] = {}
    first_error: BaseException | None = None
    clock = time.perf_counter
    for c in candidates:
        entry = entries[c] = {"backend": c.backend, "precision": c.precision, "status": "ok"}
        start = clock()
        try:
            runners[c] = _load(c, path, threads, ov_cache)
        except (ArtifactError, BackendUnavailableError) as exc:
            first_error = first_error or exc
            entry["status"] = "unavailable" if isinstance(exc, BackendUnavailableError) else "failed"
            entry["reason"] = _first_line(exc)
        entry["load_s"] = round(clock() - start, 3)
    if not runners:
        assert first_error is not None
        raise first_error
    try:
        any_runner = next(iter(runners.values()))
        md, roles = resolve(props, any_runner.inputs, any_runner.outputs, overrides, source=str(path))
        feeds, size, bundled = _feeds(any_runner, md)
        start = clock()
        outputs, samples = _sample_rounds(runners, feeds, md)
        reference_c = next((c for c in candidates if c.precision == "fp32" and c in runners), None)
        image_outputs = frozenset({roles.out_image} if roles.out_image else ())
        for c in [c for c in runners if c.precision == "bf16"]:
            reference = outputs[reference_c] if reference_c is not None else None
            verdict = _quality(outputs[c], reference, reference_c, md, image_outputs, bundled, c.backend)
            entries[c]["quality"] = verdict
            if not verdict["passed"]:
                entries[c]["status"] = "rejected"
                entries[c]["reason"] = verdict["why"]
                runners.pop(c).close()
                del samples[c]
        if len(runners) > 1:
            _more_rounds(runners, feeds, md, samples, elapsed=clock() - start)
        trial_s = clock() - start
        best = {c: min(samples[c]) for c in runners} if len(runners) > 1 else {}
        rounds = min((len(s) for s in samples.values()), default=0)
        for c in best:
            entries[c]["min_ms"] = round(best[c] * 1e3, 4)
            entries[c]["median_ms"] = round(statistics.median(samples[c]) * 1e3, 4)
        winner, why = _decide(best) if best else (next(iter(runners)), "the only candidate left")
    except BaseException:
        for runner in runners.values():
            runner.close()
        raise
    for c, runner in runners.items():
        if c != winner:
            runner.close()

    n = len(next(iter(feeds.values())))
    trial = {
        "batch": 1,
        "size": list(size),
        "threads": threads,
        "seconds": TRIAL_SECONDS,
        "rounds": rounds,
        "inputs": f"{n} bundled images" if bundled else f"{n} fixed-seed random images",
        # wall-clock seconds of the quality rounds (the first a warm-up), the check and any further rounds
        "trial_s": round(trial_s, 3),
    }
    reason = f"{winner.label} on cpu: {why}"
    if best:
        reason += (
            f" (batch 1, {size[0]}x{size[1]}, {threads} thread(s), fastest of {rounds} interleaved rounds)"
        )
    not_run = [(c, e) for c, e in entries.items() if e["status"] in ("unavailable", "failed")]
    if not_run:
        reason += "; not run: " + "; ".join(f"{c.label} ({e['reason']})" for c, e in not_run)
    record = {
        "format": RECORD_FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "winner": {"backend": winner.backend, "precision": winner.precision},
        "reason": reason,
        "precision_reason": _precision_reason(winner, entries),
        "candidates": list(entries.values()),
        "trial": trial,
    }
    return Selection(runners[winner], reason, record["precision_reason"], record)


def _batches(runner: Runner, feeds: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """``feeds`` cut into the batches the trial runs: one sample each, or the graph's static batch."""
    import torch

    n = len(next(iter(feeds.values())))
    b = next((s.shape[0] for s in runner.inputs if s.shape and s.shape[0] > 0), 1)
    return [
        {k: torch.from_numpy(np.ascontiguousarray(v[i : i + b])) for k, v in feeds.items()}
        for i in range(0, n - b + 1, b)
    ]


def _output_buffers(runner: Runner, batch: Mapping[str, Any], md: Any) -> dict[str, Any]:
    """Output tensors for ``runner`` on ``batch``: dynamic dims from the batch, the input image's H x W, or
    the latent size."""
    import torch

    from ganrt.backends.base import torch_dtype

    first = next(iter(batch.values()))
    image = next((v for v in batch.values() if v.ndim == 4), None)
    out = {}
    for spec in runner.outputs:
        dims = [first.shape[0]]
        for axis, d in enumerate(spec.shape[1:], start=1):
            if d > 0:
                dims.append(d)
            elif len(spec.shape) == 4 and axis == 1:
                dims.append(md.out_channels)
            elif len(spec.shape) == 4 and image is not None:
                dims.append(image.shape[axis])
            else:
                dims.append(md.latent_dim if len(spec.shape) == 2 else md.image_size)
        out[spec.name] = torch.empty(dims, dtype=torch_dtype(spec.dtype))
    return out


def _sample_rounds(
    runners: Mapping[Candidate, Runner], feeds: Mapping[str, np.ndarray], md: Any
) -> tuple[dict[Candidate, dict[str, np.ndarray]], dict[Candidate, list[float]]]:
    """One interleaved round per batch of ``feeds`` (each candidate's ``run`` on the same batch, in an order
    rotated every round): the rounds both collect every candidate's outputs for the quality check and time it.
    The first round is the warm-up and is not counted. Returns outputs (all batches, concatenated) and seconds
    per call."""
    from ganrt.bench.timing import interleaved

    order = list(runners)
    outputs: dict[Candidate, dict[str, list[np.ndarray]]] = {c: {} for c in order}
    samples: dict[Candidate, list[float]] = {c: [] for c in order}
    buffers: dict[Candidate, dict[str, Any]] = {}
    for r, batch in enumerate(_batches(runners[order[0]], feeds)):
        calls = {}
        for c in order[r % len(order) :] + order[: r % len(order)]:
            outs = buffers.setdefault(c, _output_buffers(runners[c], batch, md))
            calls[c.label] = lambda run=runners[c].run, b=batch, o=outs: run(b, o)
        times = interleaved(calls, rounds=1, warmup=0, settle_s=TRIAL_SETTLE_S)
        for c in order:
            if r:
                samples[c] += times[c.label]
            for name, value in buffers[c].items():
                outputs[c].setdefault(name, []).append(value.numpy().copy())
    joined = {c: {k: np.concatenate(v) for k, v in outs.items()} for c, outs in outputs.items()}
    return joined, samples


def _more_rounds(
    runners: Mapping[Candidate, Runner],
    feeds: Mapping[str, np.ndarray],
    md: Any,
    samples: dict[Candidate, list[float]],
    *,
    elapsed: float,
) -> None:
    """Further interleaved rounds on the first batch until :data:`TRIAL_SECONDS` have passed since the trial
    began (and at least :data:`TRIAL_MIN_ROUNDS`, at most :data:`TRIAL_MAX_ROUNDS` rounds were timed)."""
    from ganrt.bench.timing import interleaved

    done = min(len(s) for s in samples.values())
    remaining = TRIAL_SECONDS - elapsed
    if done >= TRIAL_MAX_ROUNDS or (done >= TRIAL_MIN_ROUNDS and remaining <= 0):
        return
    batch = _batches(next(iter(runners.values())), feeds)[0]
    calls = {}
    for c, runner in runners.items():
        outs = _output_buffers(runner, batch, md)
        calls[c.label] = lambda run=runner.run, o=outs: run(batch, o)
    times = interleaved(
        calls,
        seconds=max(remaining, 0.0),
        rounds=TRIAL_MAX_ROUNDS - done,
        min_rounds=max(1, TRIAL_MIN_ROUNDS - done),
        warmup=0,
        settle_s=TRIAL_SETTLE_S,
    )
    for c in runners:
        samples[c] += times[c.label]


def _precision_reason(winner: Candidate, entries: Mapping[Candidate, Mapping[str, Any]]) -> str:
    bf16 = next((e for c, e in entries.items() if c.precision == "bf16"), None)
    if winner.precision == "bf16":
        return f"bf16: within the recipe's reduced-precision bound ({entries[winner]['quality']['summary']})"
    if bf16 is None:
        return f"{winner.precision}: the precision the artifact runs at (no reduced precision requested)"
    if bf16["status"] == "ok" and bf16.get("min_ms") is not None:
        return (
            f"{winner.precision}: bf16 passed the quality bound ({bf16['quality']['summary']}) but was not "
            f"{REDUCED_MIN_GAIN:.0%} faster than fp32"
        )
    return f"{winner.precision}: bf16 {bf16['status']}: {bf16.get('reason', '')}"


def _feeds(runner: Runner, md: Any) -> tuple[dict[str, np.ndarray], tuple[int, int], bool]:
    """The check's inputs: the recipe's ``parity_samples`` at the model's native size, real bundled images
    where the channel count allows (else fixed-seed random ones), in the model's value range; also (h, w) and
    whether the images are bundled ones."""
    from ganrt.export.parity import sample_feeds
    from ganrt.export.recipe import load_recipe

    n = load_recipe(None, md.family).parity_samples
    image = next((s for s in runner.inputs if len(s.shape) == 4), None)
    h = w = md.image_size
    if image is not None and image.shape[2] > 0 and image.shape[3] > 0:
        h, w = image.shape[2], image.shape[3]
    batch = next((s.shape[0] for s in runner.inputs if s.shape and s.shape[0] > 0), None)
    n = batch or n  # a static batch takes exactly that many
    bundled = image is None or md.in_channels in (1, 3)
    others = [s for s in runner.inputs if s is not image or bundled]
    feeds = sample_feeds(
        others, n, height=h, width=w, channels=md.in_channels if bundled else 3, latent_dim=md.latent_dim,
        num_classes=md.num_classes,
    )  # fmt: skip
    if image is not None:
        if not bundled:
            feeds[image.name] = np.random.default_rng(0).uniform(-1, 1, (n, md.in_channels, h, w))
        lo, hi = md.value_range
        feeds[image.name] = ((feeds[image.name] + 1.0) * ((hi - lo) / 2.0) + lo).astype(np.float32)
    return feeds, (h, w), bundled


def _quality(
    got: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray] | None,
    reference_c: Candidate | None,
    md: Any,
    image_outputs: frozenset[str],
    bundled: bool,
    backend: str,
) -> dict[str, Any]:
    """The parity check of a reduced-precision candidate's outputs ``got`` against the fp32 reference's."""
    from ganrt.export.parity import compare
    from ganrt.export.recipe import load_recipe

    thresholds = dict(load_recipe(None, md.family).thresholds["fp16"])
    if reference is None or reference_c is None:
        return {"passed": False, "why": "no fp32 candidate loaded to check it against"}
    if not bundled:
        return {"passed": False, "why": f"no bundled {md.in_channels}-channel images to check it on"}
    n = len(next(iter(got.values())))
    lo, hi = md.value_range

    def standard(outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Image outputs in [-1, 1], where the PSNR peak (2) and the uint8 levels of the bound are defined.
        return {
            k: (v - lo) * (2.0 / (hi - lo)) - 1.0 if k in image_outputs and (lo, hi) != (-1.0, 1.0) else v
            for k, v in outputs.items()
        }

    rows = compare(
        standard(reference),
        standard(got),
        thresholds=thresholds,
        image_outputs=image_outputs,
        backend=backend,
    )
    psnr = min(r.psnr for r in rows)
    levels = [r.uint8_mean_abs for r in rows if r.uint8_mean_abs is not None]
    summary = f"PSNR {psnr:.1f} dB" + (f", uint8 mean-abs {max(levels):.2f} levels" if levels else "")
    summary += f" vs {reference_c.label} on {n} bundled images; bound: {rows[0].criteria}"
    verdict: dict[str, Any] = {
        "passed": all(r.passed for r in rows),
        "psnr_db": round(psnr, 2),
        "uint8_mean_abs": round(max(levels), 4) if levels else None,
        "criteria": rows[0].criteria,
        "against": reference_c.label,
        "samples": n,
        "summary": summary,
    }
    if not verdict["passed"]:
        verdict["why"] = f"outside the quality bound: {summary}"
    return verdict


def _decide(fastest: Mapping[Candidate, float]) -> tuple[Candidate, str]:
    """The winner among two or more measured candidates (in preference order, each with its fastest round's
    seconds) and why, naming every time."""
    times = ", ".join(f"{c.label} {fastest[c] * 1e3:.3g} ms" for c in fastest)
    best: Candidate | None = None
    for c in (c for c in fastest if c.precision != "bf16"):
        if best is None or fastest[c] < fastest[best] * (1.0 - TIE):
            best = c
    for c in (c for c in fastest if c.precision == "bf16"):  # OpenVINO's, the one reduced precision
        if best is None or fastest[c] <= fastest[best] * (1.0 - REDUCED_MIN_GAIN):
            best = c
    assert best is not None
    if best.precision == "bf16":
        return best, f"fastest, and at least {REDUCED_MIN_GAIN:.0%} faster than fp32 ({times})"
    return best, f"fastest within {TIE:.0%} ({times})"


# ------------------------------------------------------------------------------------------------ the record


def _key(digest: str, threads: int, backend: str, precision: str | None) -> dict[str, Any]:
    from ganrt import __version__

    versions = {}
    for dist in ("onnxruntime", "openvino"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    flags = cpu_flags() or frozenset()
    return {
        "artifact_sha256": digest,
        "ganrt_version": __version__,
        "machine": {
            "cpu": cpu_model(),
            "cores": physical_cores(),
            "flags": [f for f in _KEY_FLAGS if f in flags],
            "libraries": versions,
        },
        "threads": threads,
        "request": {"backend": backend, "precision": precision},
    }


def _key_hash(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def _read_record(path: Path, key: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(the record, None) when it is intact and for ``key``; else (None, why it is being rebuilt)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable record ({type(exc).__name__}: {_first_line(exc)})"
    problem = None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        problem = f"not a {RECORD_FORMAT} record"
    elif record.get("key") != key:
        problem = "the record is for another artifact, machine or request"
    else:
        winner = record.get("winner")
        if not (
            isinstance(winner, dict)
            and set(winner) == {"backend", "precision"}
            and (winner["backend"], winner["precision"]) in _KNOWN
            and isinstance(record.get("reason"), str)
            and isinstance(record.get("precision_reason"), str)
            and isinstance(record.get("candidates"), list)
        ):
            problem = "malformed record"
    return (None, problem) if problem else (record, None)


_KNOWN = {("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("openvino", "fp32"), ("openvino", "bf16")}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:600] if lines else type(exc).__name__


__all__ = ["RECORD_FORMAT", "TRIAL_SECONDS", "Candidate", "Selection", "select"]
