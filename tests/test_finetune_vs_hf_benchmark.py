"""``benchmarks/finetune_vs_hf.py`` (issue 20): minigrad's fine-tuning against a PyTorch +
transformers loop. The fast test checks the parent's bookkeeping (the split, the ratio's
direction, the files) with the runs stubbed; the slow one runs both sides end to end
(``--smoke``: 32 texts, 2 steps, each side in its own process). The numbers of a 2-step run mean
nothing; their presence, range and shape do."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "finetune_vs_hf.py"
KEYS = {"minigrad_s_per_step", "peer_s_per_step", "ratio", "ratio_per_seed",
        "minigrad_accuracy", "peer_accuracy", "minigrad_accuracy_each", "peer_accuracy_each",
        "minigrad_macro_f1", "peer_macro_f1", "minigrad_macro_f1_each", "peer_macro_f1_each",
        "command", "machine", "load_before", "load_after", "runs", "data"}


def load_benchmark():
    spec = importlib.util.spec_from_file_location("finetune_vs_hf", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_summary_is_minigrad_over_peer_on_one_split(tmp_path, monkeypatch, capsys):
    bench = load_benchmark()
    calls = []

    def fake_run(side, seed, data_file, args):
        data = json.loads(Path(data_file).read_text())
        calls.append((side, seed, tuple(data["test"]["texts"])))
        seconds = {"minigrad": 0.5, "peer": 0.8}[side] + 0.1 * seed
        return {"s_per_step": seconds, "steps": 4, "accuracy": 0.7 + 0.01 * seed,
                "macro_f1": 0.65, "grad_norm": None}

    monkeypatch.setattr(bench, "run_child", fake_run)
    out = tmp_path / "result"
    monkeypatch.setattr(sys, "argv", ["finetune_vs_hf.py", "--max-train", "40", "--n-valid",
                                      "10", "--n-test", "50", "--seeds", "0", "1", "--json",
                                      "--out", str(out)])
    bench.main()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result.keys() >= KEYS
    # seed 0 runs minigrad first, seed 1 the peer first; both sides score the same test texts
    assert [(side, seed) for side, seed, _ in calls] == [("minigrad", 0), ("peer", 0),
                                                          ("peer", 1), ("minigrad", 1)]
    assert len({texts for *_, texts in calls}) == 1
    assert result["data"]["train"] == 40 and result["data"]["test"] == 50
    assert result["minigrad_s_per_step"] == pytest.approx(0.55)
    assert result["peer_s_per_step"] == pytest.approx(0.85)
    assert result["ratio"] == pytest.approx(0.55 / 0.85, abs=1e-3)
    assert result["ratio_per_seed"] == pytest.approx([0.5 / 0.8, 0.6 / 0.9], abs=1e-3)
    assert result["minigrad_accuracy_each"] == pytest.approx([0.70, 0.71])
    assert result["minigrad"]["test_standard_error"] == pytest.approx(
        (0.705 * 0.295 / 50) ** 0.5, abs=1e-4)
    assert json.loads(out.with_suffix(".json").read_text()) == result
    assert "| mean |" in out.with_suffix(".md").read_text()


@pytest.mark.slow
def test_the_smoke_run_fine_tunes_both_sides_end_to_end(tmp_path):
    run = subprocess.run([sys.executable, str(BENCHMARK), "--smoke", "--clip", "1.0", "--json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result.keys() >= KEYS
    for side in ("minigrad", "peer"):
        assert 0.0 <= result[f"{side}_accuracy"] <= 1.0
        assert 0.0 <= result[f"{side}_macro_f1"] <= 1.0
        assert result[f"{side}_s_per_step"] > 0
        (only,) = result["runs"][side]
        assert only["steps"] == 2 and only["grad_norm"]["max"] > 0  # clipped: norms logged
    assert result["ratio"] == pytest.approx(
        result["minigrad_s_per_step"] / result["peer_s_per_step"], rel=1e-2)
