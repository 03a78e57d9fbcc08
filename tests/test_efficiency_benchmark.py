"""``benchmarks/efficiency.py --fast`` (issue 16's experiment, CI's smoke run): every method and
both peers run end to end in their own processes, and the results hold what the README and
tutorial 10 read. The numbers of a 4-step run mean nothing; their presence and shape do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "efficiency.py"
COLUMNS = {"method", "label", "peak_rss_mb", "accuracy", "macro_f1", "inference_ms_per_example",
           "model_bytes", "checkpoint_bytes"}
TRAINED_COLUMNS = {"trainable_params", "optimizer_state_bytes", "seconds_per_step", "steps"}


def test_the_fast_run_measures_every_method_and_writes_table_targets_and_plot(tmp_path):
    run = subprocess.run([sys.executable, str(BENCHMARK), "--fast", "--workdir",
                          str(tmp_path / "models"), "--out", str(tmp_path / "results")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "results" / "efficiency.json").read_text())
    rows = {r["method"]: r for r in report["rows"]}
    assert list(rows) == ["full", "lora", "adapter", "prompt", "bitfit", "student", "distilled",
                          "magnitude50", "int8", "heads50", "peft_lora", "torch_int8"]
    for method, row in rows.items():
        trained = method not in ("int8", "heads50", "torch_int8")
        assert COLUMNS | (TRAINED_COLUMNS if trained else set()) <= row.keys(), method
        assert 0.0 <= row["accuracy"] <= 1.0 and row["peak_rss_mb"] > 100, method
        if trained:
            assert row["steps"] == report["settings"]["steps"], method
    assert rows["lora"]["trainable_params"] == rows["peft_lora"]["trainable_params"] == 74_498
    assert rows["int8"]["model_bytes"] < 0.7 * rows["full"]["model_bytes"]
    assert rows["lora"]["checkpoint_bytes"] < 0.01 * rows["full"]["checkpoint_bytes"]
    assert {t["target"] for t in report["targets"]} >= {
        "LoRA r=8 within 1.5 points of full fine-tuning",
        "int8 within 0.5 point of torch's quantize_dynamic",
        "the distilled student above the student trained alone"}
    table = (tmp_path / "results" / "efficiency.md").read_text()
    assert "| HF peft LoRA (torch) |" in table and "| target | met? | measured |" in table
    assert matplotlib.image.imread(tmp_path / "results" / "efficiency.png").shape[0] >= 300
