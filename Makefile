# Two commands for learners (see README):  make lab   |   make test
# Everything installs into .venv with the exact versions CI tested (requirements/lock.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup lab lab-zh zh test test-fast e2e screenshots notebooks bench check clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/lock.txt -e '.[dev,ref]'
	@# nbgrader is installed for its CLI and tests; keep its server/lab extensions out of the learners' JupyterLab
	@for ext in formgrader validate_assignment assignment_list course_list; do \
	  $(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$ext >/dev/null 2>&1; done
	@$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1 || true
	$(BIN)/python -m aigc_course assets --verify
	touch $(STAMP)

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

test: setup                ## set up (first time) and run every test, with the network switched off where possible
	@if [ "$$CI" = "true" ]; then scripts/ensure_chromium; fi
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python -m pytest

e2e: setup                 ## browser tests only: JupyterLab + headless Chromium (screenshots, latency.json in artifacts/e2e/)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python -m pytest tests/e2e -v -s

screenshots: setup         ## regenerate docs/img/*.png of the live explorers (needs Chromium)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/offline $(BIN)/python scripts/screenshots.py

test-fast: setup           ## unit tests only (no notebooks, no browser)
	$(BIN)/python -m pytest tests -m "not e2e"

notebooks: zh              ## re-execute every lesson and appendix (A*) notebook, both editions, in place (commits them with outputs)
	for nb in notebooks/[0-9A]*.ipynb notebooks/zh/[0-9A]*.ipynb; do \
	  /usr/bin/time -v $(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" 2>&1 | \
	    grep -E "Elapsed|Maximum resident" | sed "s|^|$$nb: |"; done
	$(BIN)/python scripts/tidy_notebooks.py notebooks/[0-9A]*.ipynb notebooks/zh/[0-9A]*.ipynb

bench: setup               ## PyTorch-examples VAE vs ours, same wall-clock budget
	$(BIN)/python benchmarks/vae_vs_pytorch_example.py

check: setup
	$(BIN)/python -m aigc_course check

clean:
	rm -rf $(VENV)
