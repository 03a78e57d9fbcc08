"""``benchmarks/precision.py --fast`` (issue 17's experiment, CI's smoke run): every part runs
end to end in its own process (the gradients' underflow, the training steps of minigrad in
float32, bfloat16 and float16 and of PyTorch in float32 and bfloat16, fine-tuning at the three
precisions), and the results hold what the README and tutorial 11 read. The numbers of a
2-step run mean nothing; their presence, shape and the invariants of the casts do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "precision.py"
STEP_COLUMNS = {"ms", "peak_rss_mb", "step_rss_mb", "activation_bytes",
                "activation_bytes_by_dtype", "forward_rss_growth_mb"}


def test_the_fast_run_measures_every_part_and_writes_tables_targets_and_plot(tmp_path):
    run = subprocess.run([sys.executable, str(BENCHMARK), "--fast", "--workdir",
                          str(tmp_path / "work"), "--out", str(tmp_path / "results")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "results" / "precision.json").read_text())
    parts = report["parts"]
    assert list(parts) == ["gradients", "race", "fp32", "bf16", "fp16", "torch_fp32", "torch_bf16",
                           "finetune_fp32", "finetune_bf16", "finetune_fp16"]
    g = parts["gradients"]
    assert g["nonzero"] == sum(g["exponents"].values()) and 0 < g["nonzero"] <= g["elements"]
    casts = {c["log2_scale"]: c for c in g["casts"]}
    assert casts[0]["subnormal"] > 0.1 > casts[16]["subnormal"]  # scaling lifts them
    assert casts[0]["overflow"] == 0 and g["bf16_flushed"] == 0
    for part in ("fp32", "bf16", "fp16", "torch_fp32", "torch_bf16"):
        assert parts[part].keys() >= STEP_COLUMNS, part
        assert parts[part]["ms"] > 0 and parts[part]["activation_bytes"] > 0, part
    # under autocast most of what backward keeps is half precision
    assert "bfloat16" in parts["bf16"]["activation_bytes_by_dtype"]
    assert "float16" in parts["fp16"]["activation_bytes_by_dtype"]
    assert set(parts["fp32"]["activation_bytes_by_dtype"]) <= {"float32", "bool", "int64",
                                                               "int32", "uint8"}
    for part in ("finetune_fp32", "finetune_bf16", "finetune_fp16"):
        row = parts[part]
        assert 0.0 <= row["accuracy"] <= 1.0 and row["steps"] == len(row["losses"]) == 4, part
        assert row["recorded_precision"] == part.removeprefix("finetune_"), part
    assert {t["target"] for t in report["targets"]} >= {
        "bfloat16 autocast fine-tuning within 0.5 accuracy point of float32",
        "float16 autocast + GradScaler fine-tuning within 0.5 accuracy point of float32"}
    assert "not measured" in report["gpu"]
    table = (tmp_path / "results" / "precision.md").read_text()
    assert "| PyTorch CPU autocast bfloat16 |" in table and "| target | met? | measured |" in table
    assert matplotlib.image.imread(tmp_path / "results" / "precision.png").shape[0] >= 300
