# amuse-raft: `make demo` and `make test` take a fresh clone to a working system.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.amuse-installed
RAY_PORT ?= 6390
RAY_TMP ?= /tmp/amuse-ray
PIP := $(BIN)/pip install --disable-pip-version-check -q -c requirements/constraints.txt
# pip's find-links warnings about absent local mirrors are noise here.
# pipefail keeps pip's own exit status.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

export RAY_USAGE_STATS_ENABLED := 0
export PYANNOTE_METRICS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Keep Ray's ports on loopback (otherwise it binds every interface and advertises eth0).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export DS_ACCELERATOR := cpu
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions

.PHONY: help venv sysdeps demo test bench lint corpus full clean ray-up ray-down

help:
	@echo "make demo    set up .venv, start a local Ray head if none runs, run the demo job, stop what it started"
	@echo "make test    set up .venv, then run the test suite"
	@echo "make bench   run every benchmark under bench/ (prints tables, writes bench/results/)"
	@echo "make lint    ruff"
	@echo "make corpus  regenerate the sample corpus in data/corpus (needs Debian flite; installed if missing)"
	@echo "make full    add the heavy perception backends (whisper, insightface, syncnet, ...) to .venv"

venv: $(STAMP)

# torch first, from its CPU wheel, so nothing later can pull a CUDA build; setuptools<82 keeps
# pkg_resources, which face_recognition_models needs. Two packages go in --no-deps (see pyproject).
$(STAMP): pyproject.toml requirements/constraints.txt requirements/nodeps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo ">> installing into $(VENV) (torch CPU wheel first)"
	@set -o pipefail; $(PIP) torch==2.13.0 'setuptools<82' $(QUIET_PIP)
	@set -o pipefail; $(PIP) -e '.[dev]' $(QUIET_PIP)
	@set -o pipefail; $(PIP) --no-deps -r requirements/nodeps.txt $(QUIET_PIP)
	@$(BIN)/python -c "import torch, ray, cv2, dlib, face_recognition, resemblyzer, av; assert '+cpu' in torch.__version__ or not torch.cuda.is_available(); assert cv2.__version__.startswith('4.')" \
		|| { echo "!! venv import check failed"; exit 1; }
	@touch $@
	@echo ">> $(VENV) ready ($$(du -sh $(VENV) | cut -f1))"

# METEOR (pycocoevalcap) runs on Java; install a headless JRE when the machine has none.
sysdeps:
	@command -v java >/dev/null || { echo ">> installing a JRE for METEOR"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null) \
		|| echo "!! could not install Java; METEOR will be reported as unavailable"; }

full: $(STAMP)
	@set -o pipefail; $(PIP) faster-whisper==1.2.1 numba more-itertools tiktoken onnx scikit-image python_speech_features ffmpeg-python $(QUIET_PIP)
	@set -o pipefail; $(PIP) --no-deps openai-whisper==20250625 insightface==2.1 syncnet-python==0.2.3 'scenedetect>=0.6,<0.7' $(QUIET_PIP)

demo: $(STAMP) sysdeps
	@started=0; \
	if ! $(BIN)/ray status --address 127.0.0.1:$(RAY_PORT) >/dev/null 2>&1; then \
		echo ">> starting a local Ray head on 127.0.0.1:$(RAY_PORT)"; \
		$(BIN)/ray start --head --num-cpus=2 --node-ip-address=127.0.0.1 --port=$(RAY_PORT) \
			--dashboard-host=127.0.0.1 --temp-dir=$(RAY_TMP) --disable-usage-stats >/dev/null || exit 1; \
		started=1; \
	fi; \
	RAY_ADDRESS=127.0.0.1:$(RAY_PORT) $(BIN)/amuse demo; rc=$$?; \
	if [ $$started = 1 ]; then echo ">> stopping the Ray head this run started"; $(BIN)/ray stop >/dev/null 2>&1; fi; \
	exit $$rc

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

corpus: $(STAMP)
	@command -v flite >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq flite >/dev/null; }
	@set -o pipefail; $(PIP) scikit-image==0.26.0 $(QUIET_PIP)
	@set -o pipefail; $(PIP) --no-deps insightface==2.1 $(QUIET_PIP)
	$(BIN)/python -m infra.corpus.generate --out data/corpus --size demo --seed 0

clean:
	rm -rf outputs .pytest_cache .ruff_cache
