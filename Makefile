# Two commands do all set-up: `make run` (the main job) and `make test` (the suite).
# The virtual environment is created on first use; torch is pinned to the local CPU build
# (an unpinned torch would download several GB of CUDA packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean native

$(STAMP): pyproject.toml setup.py $(wildcard src/rnnkit/nn/native/*.cpp src/rnnkit/nn/native/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0 'setuptools>=68' wheel
	@# --no-build-isolation: the native engine (C++, setup.py) compiles against the torch installed above
	$(BIN)/pip install --quiet --no-build-isolation -e '.[all,test]'
	@# The explain page is tested in a real headless browser (Debian's chromium); without it those tests skip.
	command -v chromium >/dev/null || (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1) \
		|| echo "note: could not install chromium; the browser tests of the explain page will skip")
	touch $(STAMP)

# The main job, about 3 minutes on 2 cores: a character-level LSTM learns Python from the standard library's
# own source (no download), then writes a sample of Python-like code. Each run replaces runs/main.
run: $(STAMP)
	$(BIN)/rnnkit train lm --time-budget 150 --out runs/main --overwrite
	$(BIN)/rnnkit generate runs/main --prime "def " --length 800 --temperature 0.7 --seed 0

# lint-imports first: the contracts of pyproject.toml keep rnnkit's imports pointing down its layers.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/layers.py

# Rebuild the native engine (the C++ extension in src/rnnkit/nn/native/) after editing a kernel.
native: $(STAMP)
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache src/rnnkit/nn/native/_C*.so
