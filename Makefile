# Two commands do all set-up: `make run` (the main job) and `make test` (the suite).
# The virtual environment is created on first use; torch is pinned to the local CPU build
# (an unpinned torch would download several GB of CUDA packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where torch comes from: empty (default) is pip's own index, as configured; a machine whose pip reaches the public
# index takes the CPU build with `make test TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu` (added as an
# extra index: its torch==2.13.0+cpu outranks the CUDA build of the same version, the rest still comes from PyPI).
TORCH_INDEX_URL ?=
TORCH_INDEX := $(if $(strip $(TORCH_INDEX_URL)),--extra-index-url $(strip $(TORCH_INDEX_URL)))

.PHONY: run test bench clean native

NATIVE := src/rnnkit/nn/native/.built
NATIVE_SOURCES := $(wildcard src/rnnkit/nn/native/*.cpp src/rnnkit/nn/native/*.h)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_INDEX) torch==2.13.0 'setuptools>=68' wheel ninja
	@# --no-build-isolation: the native engine (C++, setup.py) compiles against the torch installed above
	$(BIN)/pip install --quiet --no-build-isolation -e '.[all,test]'
	@# The explain page is tested in a real headless browser (Debian's chromium); without it those tests skip.
	command -v chromium >/dev/null || (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1) \
		|| echo "note: could not install chromium; the browser tests of the explain page will skip")
	touch $(STAMP) $(NATIVE)

# The native engine (the C++ extension in src/rnnkit/nn/native/), rebuilt when a kernel changes.
$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	touch $(NATIVE)

# The main job, about 3 minutes on 2 cores: a character-level LSTM learns Python from the standard library's
# own source (no download), then writes a sample of Python-like code. Each run replaces runs/main.
run: $(STAMP) $(NATIVE)
	$(BIN)/rnnkit train lm --time-budget 150 --out runs/main --overwrite
	$(BIN)/rnnkit generate runs/main --prime "def " --length 800 --temperature 0.7 --seed 0

# lint-imports first: the contracts of pyproject.toml keep rnnkit's imports pointing down its layers.
test: $(STAMP) $(NATIVE)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/layers.py

native: $(NATIVE)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache src/rnnkit/nn/native/_C*.so $(NATIVE)

# The documentation (mkdocs.yml, docs/) into build/site/, offline. `make test` builds it too, with --strict, and runs
# the code of every page (tests/test_docs.py). NO_MKDOCS_2_WARNING quiets the Material theme's notice about MkDocs 2.
.PHONY: docs
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
