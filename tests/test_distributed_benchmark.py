"""``benchmarks/distributed.py --fast`` (issue 18's measurements, a smoke run): the worker
processes run under mpiexec end to end and the results hold what the README and tutorial 12
read. Slow (bert-mini under mpiexec, several launches); the numbers of a 2-step run mean
nothing, their presence and shape do."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "distributed.py"
pytest.importorskip("mpi4py", reason="needs the [dist] extra: pip install 'minigrad[dist]'")


@pytest.mark.slow
def test_the_fast_run_measures_steps_bytes_and_the_model(tmp_path):
    run = subprocess.run([sys.executable, str(BENCHMARK), "--fast", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "distributed.json").read_text())
    assert report["one_rank"]["ranks"] == 1 and report["two_ranks"]["ranks"] == 2
    assert len(report["two_ranks"]["per_rank"]) == 2
    for row in report["bytes"]:
        n, size = row["ranks"], row["size_bytes"]
        assert max(row["sent_bytes_per_rank"]) - 2 * (n - 1) / n * size < n * 4  # rounding
        assert row["max_abs_error_vs_mpi"] < 1e-4
    line = report["two_ranks_4mb_buckets"]["timeline_rank0"]
    assert len(line["buckets"]) > 1 and line["end"] >= line["backward_end"]
    assert [r["nodes"] for r in report["model"]["networks"]["10 Gbit/s"]["rows"]] == [
        1, 2, 4, 8, 16, 32, 64]
    assert (tmp_path / "distributed.md").is_file() and (tmp_path / "distributed.png").is_file()
