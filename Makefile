# servewise — the two commands a newcomer types: `make demo` and `make test`.
# Each creates .venv at the repo root and installs the project (editable, with dev extras) when
# it is missing or pyproject.toml changed; quick when already up to date.

PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: demo test bench clean-venv system-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing servewise into $(VENV) (editable, dev extras)…"
	@$(BIN)/python -m pip install -q --upgrade pip >$(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -q -e '.[dev]' >>$(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -c "import server.cli" && touch $(STAMP)

# System packages the end-to-end tests start for real (Debian): a Prometheus server, git, kubectl (kustomize).
system-deps:
	@command -v git >/dev/null || (apt-get update -qq && apt-get install -y -qq git)
	@command -v kubectl >/dev/null || (echo "installing Debian's kubernetes-client (kubectl kustomize builds every bundle)…" && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null)
	@command -v prometheus >/dev/null || test -x /usr/bin/prometheus || \
		(echo "installing Debian's prometheus (needed by the SLO-report tests)…" && \
		 apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null)

demo: $(STAMP)
	@$(BIN)/python -m server.demo

test: $(STAMP) system-deps
	@$(BIN)/python -m pytest

bench: $(STAMP)
	@$(BIN)/python benchmarks/accuracy.py
	@$(BIN)/python benchmarks/speed.py
	@$(BIN)/python benchmarks/own_runs.py

clean-venv:
	rm -rf $(VENV)
