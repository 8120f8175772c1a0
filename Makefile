# Two commands do everything on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# CPU machines get the CPU build of PyTorch (pinned so pip takes the local/CPU wheel); machines with
# an NVIDIA driver take the default CUDA build from PyPI. Override, e.g.:
#   make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= $(shell if command -v nvidia-smi >/dev/null 2>&1; then echo torch; else echo torch==2.13.0; fi)
STAMP := $(VENV)/.maskscope-installed

.PHONY: setup assets browser run test lint bench

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q -e ".[test]"
	touch $@

setup: $(STAMP)

assets: setup
	$(VENV)/bin/maskscope assets fetch

# Debian's Chromium drives the browser tests (Playwright cannot download its own browsers offline).
# CJK fonts so screenshots of the 你好 example show glyphs, not boxes.
browser:
	@test -x /usr/bin/chromium && fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk)

run: assets
	$(VENV)/bin/maskscope serve

test: assets browser
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check app tests benchmarks
	$(VENV)/bin/ruff format --check app tests benchmarks
	$(VENV)/bin/mypy

bench: assets
	$(PIP) install -q -e ".[bench]"
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
