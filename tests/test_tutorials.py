"""Every tutorial (``tutorials/NN_name.py``, jupytext percent scripts) runs top to bottom as a
plain script, in fast mode with the Agg backend, writes the figures it promises (at least one,
named ``NN_*.png``, none of them bare axes without coloured marks), and converts to a notebook
with jupytext."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import matplotlib.image
import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
FIGURES = {"01_derivations.py": ["01_sigmoid_worked_example.png"],
           "05_attention_and_bert.py": ["05_attention_maps.png",
                                      "05_causal_vs_bidirectional.png"],
           "06_mlm_pretraining.py": ["06_masking.png", "06_mlm_loss_curve.png"],
           "07_finetuning.py": ["07_finetuning.png"],
           "08_kernels.py": ["08_sgemm_tiles.png", "08_online_softmax.png"],
           "09_benchmarks.py": ["09_roofline.png"],
           "10_what_finetuning_costs.py": ["10_lora_update.png", "10_quantisation_error.png",
                                           "10_accuracy_vs_size.png"],
           "11_numbers_in_16_bits.py": ["11_formats.png", "11_gradient_exponents.png",
                                        "11_loss_scaling.png", "11_precision_curves.png"],
           "12_many_machines.py": ["12_ring_allreduce.png", "12_overlap_timeline.png",
                                   "12_scaling_model.png"]}


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
    written = [f for f in (TUTORIALS / "figures").glob(f"{script.name[:2]}_*.png")
               if f.stat().st_mtime >= start - 1]
    assert written, f"{script.name} saved no figure named {script.name[:2]}_*.png"
    for figure in written:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure.name
        pixels = matplotlib.image.imread(figure)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 300, figure.name
        rgb = pixels[..., :3]
        inked = (rgb.max(axis=-1) - rgb.min(axis=-1) > 0.2).mean()   # coloured, not grey
        assert inked > 0.002, f"{figure.name} has no coloured marks: empty axes?"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_tutorial_converts_to_a_notebook(script):
    notebook = jupytext.read(script)
    kinds = {cell.cell_type for cell in notebook.cells}
    assert kinds == {"markdown", "code"}
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith(f"# {script.name[:2]} ·")
    assert json.loads(jupytext.writes(notebook, fmt="ipynb"))["nbformat"] == 4
