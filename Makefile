# Two commands for learners (see README):  make lab   |   make test
# Everything installs into .venv with the exact versions CI tested (requirements/lock.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup lab lab-zh zh test test-fast e2e screenshots notebooks bench check clean slides hub hub-user

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt classroom/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/lock.txt -e '.[dev,ref,teach,data]'
	@# nbgrader is installed for its CLI and tests; keep its server/lab extensions out of the learners' JupyterLab
	@for ext in formgrader validate_assignment assignment_list course_list; do \
	  $(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$ext >/dev/null 2>&1; done
	@$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1 || true
	@# jupyterlab-rise 0.43.1's slideshow page is built against JupyterLab 4.3 and cannot load the lab's own
	@# extensions (widgets, notebook, nbgrader: console errors, nothing gained); keep them out of the slideshow only
	@mkdir -p $(VENV)/etc/jupyter
	@echo '{"RiseApp": {"labextensions_path": [], "extra_labextensions_path": []}}' > $(VENV)/etc/jupyter/jupyter_rise_config.json
	@# the classroom hub's proxy (npm configurable-http-proxy, pinned in classroom/package-lock.json)
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix classroom --no-audit --no-fund --loglevel=error; \
	  else echo "npm not found: 'make hub' and its test need Node.js >= 20 (apt-get install nodejs npm)"; fi
	$(BIN)/python -m aigc_course assets --verify
	touch $(STAMP)

NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

slides: setup $(NODE_STAMP)   ## static reveal.js slides of every lesson in artifacts/slides/ (offline: assets from npm)
	$(BIN)/python scripts/build_slides.py

ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup                 ## set up (first time) and open the course in JupyterLab
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/00_welcome.ipynb

# The Chinese edition in a Chinese JupyterLab: the language pack is installed by setup; this
# settings folder (outside the learner's own ~/.jupyter) switches the interface to 简体中文.
ZH_SETTINGS := $(CURDIR)/.jupyter-zh
lab-zh: setup              ## 中文版：设置环境（首次）并在中文界面的 JupyterLab 中打开课程
	@mkdir -p "$(ZH_SETTINGS)/@jupyterlab/translation-extension"
	@echo '{"locale": "zh_CN"}' > "$(ZH_SETTINGS)/@jupyterlab/translation-extension/plugin.jupyterlab-settings"
	JUPYTERLAB_SETTINGS_DIR="$(ZH_SETTINGS)" AIGC_LANG=zh $(BIN)/jupyter lab $(ROOT_FLAG) notebooks/zh/00_welcome.ipynb

zh: setup                  ## rebuild the Chinese notebooks (notebooks/zh/) from the English ones + translations/
	$(BIN)/python scripts/zh_edition.py check
	$(BIN)/python scripts/zh_edition.py build

test: setup $(if $(shell command -v npm),$(NODE_STAMP))  ## set up (first time) and run every test, with the network switched off where possible
	@if [ "$$CI" = "true" ]; then scripts/ensure_chromium; fi
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python -m pytest -n 2  # two workers: see conftest.py

e2e: setup                 ## browser tests only: JupyterLab + headless Chromium (screenshots, latency.json in artifacts/e2e/)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python -m pytest tests/e2e -v -s

screenshots: setup         ## regenerate docs/img/*.png of the live explorers (needs Chromium)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python scripts/screenshots.py

test-fast: setup           ## unit tests only (no notebooks, no browser)
	$(BIN)/python -m pytest tests -m "not e2e"

EXECUTE = /usr/bin/time -v $(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" 2>&1 | \
	  grep -E "Elapsed|Maximum resident" | sed "s|^|$$nb: |"
notebooks: setup           ## re-execute every lesson and appendix (A*) notebook, both editions, in place (commits them with outputs)
	for nb in notebooks/[0-9A]*.ipynb; do $(EXECUTE); done
	$(BIN)/python scripts/tidy_notebooks.py notebooks/[0-9A]*.ipynb
	$(BIN)/python scripts/slides.py   # slide breaks depend on the outputs' sizes: re-apply the rules
	$(MAKE) --no-print-directory zh   # the Chinese edition inherits the new slide metadata
	for nb in notebooks/zh/[0-9A]*.ipynb; do $(EXECUTE); done
	$(BIN)/python scripts/tidy_notebooks.py notebooks/zh/[0-9A]*.ipynb

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
