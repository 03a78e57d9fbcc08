"""Every tutorial (``tutorials/NN_name.py``, jupytext percent scripts) runs top to bottom as a
plain script, in fast mode with the Agg backend, and writes the figures it promises."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
FIGURES = {"01_derivations.py": ["01_sigmoid_worked_example.png"]}


def test_there_are_tutorials():
    assert any(p.name == "01_derivations.py" for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_tutorial_is_a_percent_script_that_runs_and_writes_its_figures(script):
    text = script.read_text()
    assert "# %%\n" in text and "# %% [markdown]\n" in text
    start = time.time()
    env = {**os.environ, "MINIGRAD_FAST": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(script)], cwd=TUTORIALS.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in FIGURES.get(script.name, []):
        figure = TUTORIALS / "figures" / name
        assert figure.is_file() and figure.stat().st_mtime >= start - 1
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
