# The two commands README starts with. Each does its own setup in .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned: an unpinned torch pulls several GB of CUDA wheels on these machines.
TORCH_PIN := torch==2.13.0
GANRT_CUDA ?= AUTO
export GANRT_CUDA

.PHONY: demo test venv install clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet "$(TORCH_PIN)"
	$(PIP) install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.24" ninja

# Builds the extension (and its CUDA kernels when nvcc is found) and installs ganrt with its test extras.
# Python sources stay editable; rerun after changing csrc/.
install: venv
	$(PIP) install --quiet --no-build-isolation -e ".[test]"

test: install
	$(VENV)/bin/pytest -q tests

demo: install
	$(PY) -m ganrt.demo

bench: install
	$(PY) benchmarks/ops.py

clean:
	rm -rf build .venv demo
