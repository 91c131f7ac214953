#!/usr/bin/env bash
# Everything ganrt measures on a GPU, in one go, on a CUDA machine:
#   1. builds the extension with its CUDA kernels (GANRT_CUDA=ON) into .venv and installs the GPU runtimes
#      (onnxruntime-gpu, tensorrt) when they are missing;
#   2. runs the GPU tests (pytest -m "cuda or tensorrt");
#   3. runs every GPU benchmark: fused ops vs eager vs torch.compile (benchmarks/ops.py), the train/runtime/
#      serve benchmarks where their scripts take --device, and model level torch vs torch.compile vs
#      ONNX Runtime CUDA vs ganrt vs TensorRT at fp32 and fp16 (TensorRT replaying CUDA graphs), plus a
#      `ganrt bench` run with pre/post-processing and the MLPerf LoadGen scenarios;
#   4. regenerates README's tables (benchmarks/report.py).
# Results are written as benchmarks/results/<name>_<gpu-name>.json, so runs on different GPUs sit side by side.
#
# Usage: bash benchmarks/gpu.sh            (from anywhere; GANRT_GPU_SKIP_INSTALL=1 skips step 1's installs,
#                                           GANRT_GPU_DURATION_S sets measured seconds per backend, default 5)
# Exit status: 0 when every step succeeded, 1 when any failed (the others still run), 2 without a usable GPU.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PIP=("$PY" -m pip)
RESULTS="$ROOT/benchmarks/results"
DURATION_S="${GANRT_GPU_DURATION_S:-5}"
FAILED=()
SKIPPED=()

log() { printf '\n== %s\n' "$*" >&2; }
fail() { printf 'gpu.sh: FAILED: %s\n' "$*" >&2; FAILED+=("$*"); }

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu.sh: no NVIDIA GPU visible (nvidia-smi missing or failing); run this on a CUDA machine" >&2
  exit 2
fi
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
# File-name-safe device name, the same rule as ganrt.bench.machine.device_slug: "NVIDIA H100 80GB HBM3" ->
# "nvidia-h100-80gb-hbm3".
GPU=$(printf '%s' "$GPU_NAME" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; s/^-+//; s/-+$//')
log "GPU: $GPU_NAME (results tagged '$GPU')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >&2
mkdir -p "$RESULTS"

# ---------------------------------------------------------------------------------------------------- 1. build
if [[ "${GANRT_GPU_SKIP_INSTALL:-0}" != 1 ]]; then
  log "build: .venv with torch, then ganrt with CUDA kernels"
  make -C "$ROOT" venv || { echo "gpu.sh: make venv failed" >&2; exit 2; }
  if ! "$PY" -c 'import sys, torch; sys.exit(torch.version.cuda is None)'; then
    echo "gpu.sh: .venv's torch ($("$PY" -c 'import torch; print(torch.__version__)')) is a CPU-only build." >&2
    echo "        Install a CUDA build of the pinned version, e.g.:" >&2
    echo "        $VENV/bin/pip install --force-reinstall torch==2.13.0 --index-url https://download.pytorch.org/whl/cu130" >&2
    exit 2
  fi
  GANRT_CUDA=ON "${PIP[@]}" install --no-build-isolation -e "${ROOT}[test]" || {
    echo "gpu.sh: building ganrt with GANRT_CUDA=ON failed" >&2; exit 2; }
  # onnxruntime and onnxruntime-gpu install the same package; swap rather than stack them.
  if ! "$PY" -c 'import sys, onnxruntime as o; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())'; then
    log "install: onnxruntime-gpu (CUDA execution provider)"
    "${PIP[@]}" uninstall -y onnxruntime >/dev/null 2>&1
    "${PIP[@]}" install onnxruntime-gpu || fail "pip install onnxruntime-gpu (the onnxruntime backend will report why it cannot run)"
    "$PY" -c 'import onnxruntime' 2>/dev/null || "${PIP[@]}" install onnxruntime || true
  fi
  if ! "$PY" -c 'import tensorrt' >/dev/null 2>&1; then
    log "install: tensorrt"
    "${PIP[@]}" install tensorrt || fail "pip install tensorrt (the tensorrt backend will report why it cannot run)"
  fi
fi

"$PY" - <<'EOF' || { echo "gpu.sh: ganrt cannot use the GPU (see above)" >&2; exit 2; }
import sys

import torch

import ganrt

if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device")
if not ganrt.cuda_available():
    sys.exit("ganrt._C was built without CUDA kernels or sees no device: rebuild with GANRT_CUDA=ON")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) on {torch.cuda.get_device_name(0)}; ganrt CUDA kernels ok",
      file=sys.stderr)
EOF

# ---------------------------------------------------------------------------------------------------- 2. tests
log "tests: pytest -m 'cuda or tensorrt'"
"$PY" -m pytest -q -m "cuda or tensorrt" "$ROOT/tests" 2>&1 | tee "$RESULTS/gpu_tests_${GPU}.txt"
status=${PIPESTATUS[0]}
# 5 = nothing collected (no GPU tests selected): not a failure of this machine.
if [[ $status -ne 0 && $status -ne 5 ]]; then fail "GPU tests (pytest exit $status, log in benchmarks/results/gpu_tests_${GPU}.txt)"; fi

# ------------------------------------------------------------------------------------------------ 3. benchmarks
# The stage benchmarks (ops/train/runtime/serve) are run on CUDA when their script takes --device; the output
# goes to <name>_<gpu>.json through --output.
for name in ops train runtime serve; do
  script="$ROOT/benchmarks/$name.py"
  if [[ ! -f "$script" ]]; then
    echo "gpu.sh: benchmarks/$name.py not found; skipped" >&2
    continue
  fi
  help=$("$PY" "$script" --help 2>/dev/null)
  if ! grep -q -- "--device" <<<"$help" || ! grep -q -- "--output" <<<"$help"; then
    echo "gpu.sh: benchmarks/$name.py takes no --device/--output (a CPU-only benchmark); skipped" >&2
    SKIPPED+=("benchmarks/$name.py (no --device/--output options)")
    continue
  fi
  log "benchmark: $name on cuda"
  "$PY" "$script" --device cuda --output "$RESULTS/${name}_${GPU}.json" || fail "benchmarks/$name.py --device cuda"
done

log "benchmark: models (torch, torch.compile, ONNX Runtime CUDA, ganrt, TensorRT; fp32 and fp16; batch 1 and 8)"
"$PY" "$ROOT/benchmarks/models.py" --device cuda --backends torch,compile,onnxruntime,ganrt,tensorrt \
  --precision fp32,fp16 --batch 1,8 --duration-s "$DURATION_S" --output "$RESULTS/models_${GPU}.json" \
  || fail "benchmarks/models.py --device cuda"

log "benchmark: ganrt bench pix2pix with pre/post-processing and MLPerf LoadGen scenarios"
"$PY" -m ganrt bench pix2pix --device cuda --backends torch,compile,onnxruntime,ganrt,tensorrt \
  --precision fp32,fp16 --batch 1,8 --include-io --duration-s "$DURATION_S" \
  --scenario single-stream,offline,server --json "$RESULTS/bench_pix2pix_io_${GPU}.json" \
  --plot "$RESULTS/bench_pix2pix_io_${GPU}.png" || fail "ganrt bench pix2pix --device cuda --include-io"

# ---------------------------------------------------------------------------------------------- 4. README tables
log "README tables"
"$PY" "$ROOT/benchmarks/report.py" || fail "benchmarks/report.py"

if ((${#SKIPPED[@]})); then
  printf '\ngpu.sh: skipped:\n' >&2
  printf '  - %s\n' "${SKIPPED[@]}" >&2
fi
if ((${#FAILED[@]})); then
  printf '\ngpu.sh: %d step(s) failed:\n' "${#FAILED[@]}" >&2
  printf '  - %s\n' "${FAILED[@]}" >&2
  exit 1
fi
printf '\ngpu.sh: done; results in benchmarks/results/*_%s.json\n' "$GPU" >&2
