# Two commands for learners (see README):  make lab   |   make test
# Everything installs into .venv with the exact versions CI tested (requirements/lock.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup lab test test-fast e2e screenshots notebooks bench check clean hub hub-user

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt classroom/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/lock.txt -e '.[dev,ref,teach]'
	@# nbgrader is installed for its CLI and tests; keep its server/lab extensions out of the learners' JupyterLab
	@for ext in formgrader validate_assignment assignment_list course_list; do \
	  $(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$ext >/dev/null 2>&1; done
	@$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1 || true
	@# the classroom hub's proxy (npm configurable-http-proxy, pinned in classroom/package-lock.json)
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix classroom --no-audit --no-fund --loglevel=error; \
	  else echo "npm not found: 'make hub' and its test need Node.js >= 20 (apt-get install nodejs npm)"; fi
	$(BIN)/python -m aigc_course assets --verify
	touch $(STAMP)

ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup                 ## set up (first time) and open the course in JupyterLab
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/00_welcome.ipynb

test: setup                ## set up (first time) and run every test, with the network switched off where possible
	@if [ "$$CI" = "true" ]; then scripts/ensure_chromium; fi
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python -m pytest

e2e: setup                 ## browser tests only: JupyterLab + headless Chromium (screenshots, latency.json in artifacts/e2e/)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python -m pytest tests/e2e -v -s

screenshots: setup         ## regenerate docs/img/*.png of the live explorers (needs Chromium)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python scripts/screenshots.py

test-fast: setup           ## unit tests only (no notebooks, no browser)
	$(BIN)/python -m pytest tests -m "not e2e"

notebooks: setup           ## re-execute every lesson notebook in place (commits them with outputs)
	for nb in notebooks/[0-9]*.ipynb; do \
	  /usr/bin/time -v $(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" 2>&1 | \
	    grep -E "Elapsed|Maximum resident" | sed "s|^|$$nb: |"; done
	$(BIN)/python scripts/tidy_notebooks.py notebooks/[0-9]*.ipynb

HUB_STATE ?= classroom/state

hub: setup                 ## the classroom server: JupyterHub on this machine (see classroom/README.md)
	@test -x classroom/node_modules/.bin/configurable-http-proxy || npm ci --prefix classroom --no-audit --no-fund
	$(BIN)/python -m aigc_course student --out $(HUB_STATE)/learner_notebooks
	@test -s $(HUB_STATE)/passwords || echo "no learners yet: make hub-user NAME=ann (one per learner)"
	CLASSROOM_STATE="$(CURDIR)/$(HUB_STATE)" PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyterhub -f classroom/jupyterhub_config.py

hub-user: setup            ## add a learner to the hub (or set a new password): make hub-user NAME=ann
	$(BIN)/python classroom/classroom_hub.py --file $(HUB_STATE)/passwords add $(NAME)

bench: setup               ## PyTorch-examples VAE vs ours, same wall-clock budget
	$(BIN)/python benchmarks/vae_vs_pytorch_example.py

check: setup
	$(BIN)/python -m aigc_course check

clean:
	rm -rf $(VENV)
