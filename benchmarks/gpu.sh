#!/usr/bin/env bash
# The GPU run of ganrt: one prepared script that fits a short GPU lease (about 15 minutes including start-up)
# and finishes in at most GANRT_GPU_BUDGET_S seconds of wall time (default 420 = 7 minutes).
#
# Written for the GPU machine's image: Python 3.12 with torch (CUDA build), nvcc, cmake, ninja, pybind11,
# scikit-build-core, onnx, onnxscript, onnxruntime (CPU), pytest, psutil, numpy, pillow, scikit-image; no
# network, no TensorRT, no onnxruntime-gpu, no tritonclient. Nothing is downloaded; pure-Python wheels the run
# needs may travel with the working tree in .wheels/ (git-ignored) and are installed with --no-index.
#
# Steps, each under `timeout` with its own budget (capped by what is left of the total, the summary's share
# kept back); a step that fails or runs out of time is reported and the next one still runs:
#   1. build      a venv over the image's packages (--system-site-packages), ganrt installed editable with
#                 GANRT_CUDA=ON for GANRT_CUDA_ARCHITECTURES (default 90, the H100/H200)
#   2. env        device, driver, CUDA, cuDNN, torch, nvcc, commit -> environment.json
#   3. tests      pytest -m "(cuda or tensorrt) and not slow" -> tests.xml (junit)
#   4. ops        benchmarks/ops.py --device cuda -> ops.json
#   5. models     benchmarks/models.py --device cuda -> models.json (rewritten after each benchmark)
#   6. memcheck   compute-sanitizer --tool memcheck on the kernel tests (small shapes) -> sanitizer.log
#   7. racecheck  compute-sanitizer --tool racecheck, same tests -> sanitizer.log
#   8. summary    steps.json, then benchmarks/report.py --gpu-summary -> summary.md, printed last
# The benchmarks run before the sanitizers: the targets are what a short lease must not lose, and a sanitizer
# that runs out of time says so in the step table.
# Everything goes to one folder, at most 8 files: $OUT/<device>/ on the device machine (where $OUT comes back),
# else benchmarks/results/gpu/<device>/, which benchmarks/report.py renders into README's GPU section. gpu.log
# holds the whole console output.
#
# Usage: bash benchmarks/gpu.sh [--dry-run]
#   --dry-run  list the steps with their budgets and commands, check what can be checked without a GPU (the
#              scripts and flags this run uses, the test selections collect, the summary renders); exits 0
#              when all of that holds. Writes nothing.
# Environment: GANRT_GPU_BUDGET_S (420), GANRT_GPU_PYTHON (python3), GANRT_CUDA_ARCHITECTURES (90),
# GANRT_COMMIT (recorded in environment.json when the copy of the tree has no git metadata), GANRT_GPU_STEPS
# (comma-separated steps to run, default all: e.g. "build,env,models" to redo one benchmark on a fresh machine).
# Exit status: 0 when every step succeeded, 1 when a step failed or timed out, 2 when no GPU is usable.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 2
cd "$ROOT" || exit 2

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu.sh: unknown argument '$arg' (expected --dry-run)" >&2; exit 2 ;;
  esac
done

BUDGET_S=${GANRT_GPU_BUDGET_S:-420}
SUMMARY_RESERVE_S=20
HOST_PY=${GANRT_GPU_PYTHON:-python3}
export GANRT_CUDA_ARCHITECTURES=${GANRT_CUDA_ARCHITECTURES:-90}
VENV="$ROOT/build/gpu-venv"
WHEELS="$ROOT/.wheels"
TEST_MARK="(cuda or tensorrt) and not slow"
# Kernel tests for the sanitizers: the small shapes (the split path and its waves included), not the large
# timing-sized ones; no CUDA-graph test (the caching allocator is off under the sanitizers, and graphs need it).
SANITIZE_TESTS=(tests/gpu/test_ops_cuda.py -k "not n1_c64_256x256 and not 128x128 and not 512x512 and not queued")
# name budget_s  (in run order)
STEPS=("build 150" "env 20" "tests 100" "ops 75" "models 150" "memcheck 45" "racecheck 45")

describe() {
  case "$1" in
    build) echo "$HOST_PY -m venv --system-site-packages --without-pip build/gpu-venv (+ .pth to the image's" \
      "site-packages); pip install --no-build-isolation --no-deps --no-index [.wheels/*.whl]; GANRT_CUDA=ON" \
      "GANRT_CUDA_ARCHITECTURES=$GANRT_CUDA_ARCHITECTURES pip install --no-build-isolation --no-deps --no-index -e ." ;;
    env) echo "python: ganrt.bench.machine.machine_info() + nvcc/compute-sanitizer versions + git commit -> environment.json" ;;
    tests) echo "python -m pytest -q -m \"$TEST_MARK\" --junitxml=OUTDIR/tests.xml tests" ;;
    memcheck | racecheck) echo "PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool $1 --kernel-name kns=ganrt" \
      "--error-exitcode 3 python -m pytest -m cuda ${SANITIZE_TESTS[*]} >> OUTDIR/sanitizer.log" ;;
    ops) echo "python benchmarks/ops.py --device cuda --rounds 7 --output OUTDIR/ops.json" ;;
    models) echo "python benchmarks/models.py --device cuda --output OUTDIR/models.json" ;;
  esac
}

# ------------------------------------------------------------------------------------------------- dry run
if ((DRY_RUN)); then
  echo "gpu.sh --dry-run: the steps of a GPU run (total budget ${BUDGET_S} s, ${SUMMARY_RESERVE_S} s kept for the summary)"
  total=0
  for entry in "${STEPS[@]}"; do
    read -r name budget <<<"$entry"
    total=$((total + budget))
    printf '  %-9s <= %3s s  %s\n' "$name" "$budget" "$(describe "$name")"
  done
  printf '  %-9s          %s\n' summary "steps.json; python benchmarks/report.py --gpu-summary OUTDIR > OUTDIR/summary.md"
  echo "  (step budgets add up to ${total} s; each is capped by what is left of ${BUDGET_S} s, so later steps shrink)"
  echo "outputs: \$OUT/<device>/ on the device machine, else benchmarks/results/gpu/<device>/: environment.json," \
    "steps.json, tests.xml, sanitizer.log, ops.json, models.json, summary.md, gpu.log"
  # What can be checked here: the scripts exist and take the flags used above, the selections collect, and
  # the summary renderer runs. The development venv is used when there is one.
  CHECK_PY="$ROOT/.venv/bin/python"
  [[ -x "$CHECK_PY" ]] || CHECK_PY=$HOST_PY
  problems=0
  check() { # description, command...
    local what=$1
    shift
    if out=$("$@" 2>&1); then
      echo "  ok       $what"
    else
      echo "  FAILED   $what"
      printf '%s\n' "$out" | tail -n 15 | sed 's/^/           /'
      problems=$((problems + 1))
    fi
  }
  echo "prerequisites checked without a GPU (python: $CHECK_PY):"
  check "timeout, sed, date available" command -v timeout sed date
  for f in benchmarks/ops.py benchmarks/models.py benchmarks/report.py tests/gpu/test_ops_cuda.py pyproject.toml; do
    check "$f exists" test -f "$f"
  done
  check "benchmarks/ops.py takes --device cuda --rounds --output" \
    bash -c "'$CHECK_PY' benchmarks/ops.py --help | grep -q -- '--device' && '$CHECK_PY' benchmarks/ops.py --help | grep -q -- '--rounds'"
  check "benchmarks/models.py takes --device --output" \
    bash -c "'$CHECK_PY' benchmarks/models.py --help | grep -q -- '--output'"
  check "tests \"$TEST_MARK\" collect (no collection errors, at least one test)" \
    bash -c "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 '$CHECK_PY' -m pytest --collect-only -q -p no:cacheprovider -m '$TEST_MARK' tests | grep -Eq '^[0-9]+/[0-9]+ tests collected|^[0-9]+ tests? collected'"
  check "sanitizer selection collects" \
    bash -c "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 '$CHECK_PY' -m pytest --collect-only -q -p no:cacheprovider -m cuda ${SANITIZE_TESTS[0]} -k '${SANITIZE_TESTS[2]}' | grep -Eq 'tests? collected'"
  check "summary renders from an empty run folder" \
    bash -c "d=\$(mktemp -d) && '$CHECK_PY' benchmarks/report.py --gpu-summary \"\$d\" >/dev/null; rc=\$?; rmdir \"\$d\"; exit \$rc"
  if ((problems)); then
    echo "gpu.sh --dry-run: $problems prerequisite(s) failed"
    exit 1
  fi
  echo "gpu.sh --dry-run: ok (nothing was run on a GPU, nothing was written)"
  exit 0
fi

# ------------------------------------------------------------------------------------------------ the run
START=$(date +%s)
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu.sh: no NVIDIA GPU visible (nvidia-smi missing or failing); run this on a CUDA machine" >&2
  exit 2
fi
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
# File-name-safe device name, the rule of ganrt.bench.machine.device_slug: "NVIDIA H200" -> "nvidia-h200".
SLUG=$(printf '%s' "$GPU_NAME" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; s/^-+//; s/-+$//')
if [[ -n "${OUT:-}" ]]; then OUTDIR="$OUT/$SLUG"; else OUTDIR="$ROOT/benchmarks/results/gpu/$SLUG"; fi
mkdir -p "$OUTDIR" || exit 2
rm -f "$OUTDIR"/{environment.json,steps.json,tests.xml,sanitizer.log,ops.json,models.json,summary.md,gpu.log}
exec > >(tee -a "$OUTDIR/gpu.log") 2>&1
echo "gpu.sh: $GPU_NAME; results in $OUTDIR; budget ${BUDGET_S} s"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv

PY="$VENV/bin/python"
SANITIZER=$(command -v compute-sanitizer || true)
for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [[ -z "$SANITIZER" && -x "$candidate" ]] && SANITIZER=$candidate
done
export ROOT VENV WHEELS HOST_PY PY OUTDIR TEST_MARK SANITIZER
export PYTHONUNBUFFERED=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
export SANITIZE_K="${SANITIZE_TESTS[2]}" SANITIZE_FILE="${SANITIZE_TESTS[0]}"

step_build() {
  set -eo pipefail
  "$HOST_PY" -m venv --system-site-packages --without-pip "$VENV"
  # When the image's python3 is itself a venv, its packages are not "system" packages of a venv made from it:
  # a .pth file puts its site-packages on the new venv's path (after the venv's own).
  local site
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$HOST_PY" -c 'import site; print("\n".join(site.getsitepackages()))' >"$site/ganrt_image_site.pth"
  "$PY" -m pip --version
  shopt -s nullglob
  local wheels=("$WHEELS"/*.whl)
  if ((${#wheels[@]})); then
    "$PY" -m pip install --no-build-isolation --no-deps --no-index "${wheels[@]}"
  fi
  local log=/tmp/ganrt-gpu-build.log
  if ! GANRT_CUDA=ON "$PY" -m pip install --no-build-isolation --no-deps --no-index -v -e "$ROOT" >"$log" 2>&1; then
    tail -n 60 "$log"
    return 1
  fi
  grep -E "ganrt: CUDA kernels|Building CUDA object|warning|Successfully installed" "$log" || true
  "$PY" - <<'EOF'
import sys

import torch

import ganrt

if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device")
if not ganrt.cuda_available():
    sys.exit("ganrt._C was built without CUDA kernels or sees no device")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) on {torch.cuda.get_device_name(0)}; ganrt CUDA kernels ok")
EOF
}

step_env() {
  "$PY" - <<'EOF'
import json
import os
import shutil
import subprocess

from ganrt.bench.machine import machine_info


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[-1] if out else None


env = {
    "machine": machine_info(),
    "nvcc": first_line(["nvcc", "--version"]) if shutil.which("nvcc") else None,
    "compute_sanitizer": first_line([os.environ["SANITIZER"], "--version"]) if os.environ.get("SANITIZER") else None,
    "cuda_architectures": os.environ.get("GANRT_CUDA_ARCHITECTURES"),
    "commit": os.environ.get("GANRT_COMMIT") or first_line(["git", "-C", os.environ["ROOT"], "rev-parse", "--short", "HEAD"]),
    "nvidia_smi": first_line(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"]),
}
with open(os.path.join(os.environ["OUTDIR"], "environment.json"), "w") as f:
    json.dump(env, f, indent=2)
print(json.dumps({k: env[k] for k in ("nvcc", "compute_sanitizer", "commit", "nvidia_smi")}))
EOF
}

step_tests() {
  "$PY" -m pytest -q -p no:cacheprovider -m "$TEST_MARK" --junitxml="$OUTDIR/tests.xml" -o junit_family=xunit2 \
    "$ROOT/tests"
}

sanitize() { # tool
  set -o pipefail
  if [[ -z "$SANITIZER" ]]; then
    echo "compute-sanitizer not found on PATH or under /usr/local/cuda" | tee -a "$OUTDIR/sanitizer.log"
    return 1
  fi
  echo "== gpu.sh: compute-sanitizer --tool $1" >>"$OUTDIR/sanitizer.log"
  # No caching allocator: every tensor is its own allocation, so an access past its end is caught.
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SANITIZER" --tool "$1" --kernel-name kns=ganrt --error-exitcode 3 \
    --report-api-errors no --print-limit 20 \
    "$PY" -m pytest -q -p no:cacheprovider -m cuda "$ROOT/$SANITIZE_FILE" -k "$SANITIZE_K" 2>&1 |
    tee -a "$OUTDIR/sanitizer.log"
}
step_memcheck() { sanitize memcheck; }
step_racecheck() { sanitize racecheck; }
step_ops() { "$PY" "$ROOT/benchmarks/ops.py" --device cuda --rounds 7 --output "$OUTDIR/ops.json"; }
step_models() { "$PY" "$ROOT/benchmarks/models.py" --device cuda --output "$OUTDIR/models.json"; }
export -f step_build step_env step_tests sanitize step_memcheck step_racecheck step_ops step_models

NAMES=()
STATUS=()
SECONDS_TAKEN=()
BUDGETS=()
FAILED=0
BUILD_OK=1
for entry in "${STEPS[@]}"; do
  read -r name budget <<<"$entry"
  left=$((START + BUDGET_S - SUMMARY_RESERVE_S - $(date +%s)))
  limit=$((budget < left ? budget : left))
  NAMES+=("$name")
  BUDGETS+=("$limit")
  if [[ -n "${GANRT_GPU_STEPS:-}" && ",$GANRT_GPU_STEPS," != *",$name,"* ]]; then
    STATUS+=("skipped: not in GANRT_GPU_STEPS")
    SECONDS_TAKEN+=(0)
    continue
  fi
  if ((!BUILD_OK)); then
    STATUS+=("skipped: build failed")
    SECONDS_TAKEN+=(0)
    continue
  fi
  if ((limit < 10)); then
    STATUS+=("skipped: no time left")
    SECONDS_TAKEN+=(0)
    FAILED=1
    continue
  fi
  printf '\n== gpu.sh: %s (at most %s s): %s\n' "$name" "$limit" "$(describe "$name")"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" bash -c "step_$name"
  rc=$?
  dt=$(($(date +%s) - t0))
  SECONDS_TAKEN+=("$dt")
  if ((rc == 0)); then
    STATUS+=("ok")
  elif ((rc == 124 || rc == 137)); then
    STATUS+=("timed out")
    FAILED=1
  else
    STATUS+=("failed (exit $rc)")
    FAILED=1
  fi
  if [[ "$name" == build && $rc -ne 0 ]]; then BUILD_OK=0; fi
  echo "== gpu.sh: $name: ${STATUS[-1]} after ${dt} s"
done

{
  printf '{"gpu": "%s", "budget_s": %s, "total_s": %s, "steps": [' "$GPU_NAME" "$BUDGET_S" "$(($(date +%s) - START))"
  for i in "${!NAMES[@]}"; do
    ((i)) && printf ', '
    printf '{"name": "%s", "status": "%s", "seconds": %s, "budget_s": %s}' \
      "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}" "${BUDGETS[$i]}"
  done
  printf ']}\n'
} >"$OUTDIR/steps.json"

printf '\n== gpu.sh: summary\n'
if ((BUILD_OK)) && timeout 60 "$PY" "$ROOT/benchmarks/report.py" --gpu-summary "$OUTDIR" >"$OUTDIR/summary.md"; then
  cat "$OUTDIR/summary.md"
else
  for i in "${!NAMES[@]}"; do printf '%-10s %-24s %4s s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}"; done |
    tee "$OUTDIR/summary.md"
fi
printf '\ngpu.sh: %s in %s s; results in %s\n' "$( ((FAILED)) && echo "some steps failed" || echo "all steps ok")" \
  "$(($(date +%s) - START))" "$OUTDIR"
exit "$FAILED"
