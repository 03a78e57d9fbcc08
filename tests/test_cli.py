"""The ``minigrad`` command: ``gradcheck`` reports every op of the battery, as text or JSON."""

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from minigrad import cli
from minigrad.gradcheck import BATTERY

OP_NAMES = [case.name for case in BATTERY]


def test_gradcheck_prints_one_ok_line_per_battery_op_and_returns_0(capsys):
    assert cli.main(["gradcheck"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ok = [line.split() for line in lines if line.startswith("OK")]
    assert [words[1] for words in ok] == OP_NAMES
    assert not any(line.startswith("FAIL") for line in lines)
    assert f"{len(OP_NAMES)}/{len(OP_NAMES)} ops OK" in lines[-1]


def test_gradcheck_json_is_a_list_with_one_passing_object_per_op(capsys):
    assert cli.main(["gradcheck", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    assert [row["op"] for row in rows] == OP_NAMES
    for row in rows:
        assert row["ok"] is True
        assert 0 <= row["max_abs_error"] < 1e-6
        assert row["seconds"] >= 0


def test_gradcheck_reports_a_broken_op_and_returns_1(monkeypatch, capsys):
    from minigrad.ops import elementwise

    # Break tanh's backward (the true derivative is 1 - z²): the battery must catch it.
    monkeypatch.setattr(elementwise.Tanh, "backward", staticmethod(lambda ctx, g: g))
    assert cli.main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("FAIL") and " tanh " in line for line in out.splitlines())
    assert "failed: tanh" in out


def test_an_unknown_subcommand_exits_with_usage():
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate"])
    assert info.value.code == 2


def test_the_console_script_is_installed_and_runs():
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "minigrad"]
    assert script.value == "minigrad.cli:main"

    # The script pip wrote beside this interpreter (the venv's bin/), run as a user would.
    exe = Path(sys.executable).with_name("minigrad")
    assert exe.exists(), f"no console script at {exe}: install with pip install -e ."
    done = subprocess.run([str(exe), "gradcheck", "--json"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["op"] for row in rows] == OP_NAMES and all(row["ok"] for row in rows)
