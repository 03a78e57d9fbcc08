"""``minigrad finetune`` tried the hostile way: real processes killed with SIGKILL at every file
of the save, two runs racing for one ``--out``, a read-only ``--out``, a killed run resumed.

A killed, interrupted or concurrent run never leaves something that loads as a good model:
``minigrad predict`` on the directory either refuses, or gives the answer of one whole run.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

MINIGRAD = [sys.executable, "-m", "minigrad.cli"]
ENV = {**os.environ, "MINIGRAD_BACKEND": "numpy"}  # bit-exact, and no kernel compiling
TEXTS = {"pos": ["a good film", "great acting", "fine and good", "a great plot", "good fun"],
         "neg": ["a bad film", "awful acting", "poor and bad", "an awful plot", "bad fun"]}


def write_data(path: Path, labels: tuple[str, str]) -> Path:
    """The same texts under the given two label names (so two runs predict different words)."""
    rows = [f"{t},{labels[0]}" for t in TEXTS["pos"]] + [f"{t},{labels[1]}" for t in TEXTS["neg"]]
    path.write_text("text,label\n" + "\n".join(rows * 4) + "\n", encoding="utf-8")
    return path


def finetune(data: Path, out: Path, *extra: str) -> list[str]:
    return [*MINIGRAD, "finetune", "--train", str(data), "--model", "bert-tiny",
            "--max-length", "16", "--batch-size", "8", "--epochs", "2", "--lr", "1e-3",
            "--out", str(out), "--examples", "0", *extra]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=ENV)


def predict(out: Path) -> subprocess.CompletedProcess:
    return run([*MINIGRAD, "predict", "--model", str(out), "a good film", "an awful plot"])


def weights(out: Path) -> dict[str, np.ndarray]:
    return safetensors.numpy.load_file(out / "model.safetensors")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {"first": write_data(root / "first.csv", ("pos", "neg")),
            "second": write_data(root / "second.csv", ("yes", "no"))}


def test_a_killed_run_resumes_to_the_bits_of_an_uninterrupted_one(data, tmp_path) -> None:
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert run(finetune(data["first"], whole, "--epochs", "3")).returncode == 0

    proc = subprocess.Popen(finetune(data["first"], resumed, "--epochs", "3"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if list((resumed / "checkpoints").glob("checkpoint-*/trainer_state.json")):
            break  # epoch 1 is complete: kill the run in epoch 2
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert predict(resumed).returncode == 1  # a killed first run leaves no model

    result = run([*MINIGRAD, "finetune", "--resume", str(resumed)])
    assert result.returncode == 0, result.stderr
    a, b = weights(whole), weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), name
    assert predict(whole).stdout == predict(resumed).stdout


def test_resume_without_a_complete_epoch_is_refused(tmp_path) -> None:
    result = run([*MINIGRAD, "finetune", "--resume", str(tmp_path / "nothing")])
    assert result.returncode == 1 and "no complete epoch to resume from" in result.stderr
    assert "Traceback" not in result.stderr


# --- killed while saving into a directory that holds an earlier run ----------------------------
SAVED_FILES = ["model.safetensors", "config.json", "tokenizer_config.json", "vocab.txt",
               "metrics.json", "history.json", "curves.png", "minigrad_manifest.json"]


def slowed(args: list[str]) -> subprocess.Popen:
    """``args`` started under strace, each fsync held 0.3 s: the save's files appear one at a
    time, so a kill lands between two of them (no hook in minigrad: the real command, only
    slower). In a process group of its own, so that :func:`kill` reaches minigrad itself, not
    only strace (whose death would let the command run on)."""
    return subprocess.Popen(["strace", "-f", "-qq", "-o", os.devnull, "-e", "trace=fsync",
                             "-e", "inject=fsync:delay_exit=300000", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> dict[str, str]:
    """What predict prints for a whole first run and a whole second run (other labels)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name in ("first", "second"):
        assert run(finetune(data[name], root / name, "--epochs", "1")).returncode == 0
        out[name] = predict(root / name).stdout
    assert out["first"] != out["second"]
    return out


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt install strace)")
@pytest.mark.parametrize("kill_at", [*SAVED_FILES, "swap"])
def test_sigkill_at_each_file_of_the_save_leaves_one_whole_run_or_a_refusal(data, runs, tmp_path,
                                                                           kill_at) -> None:
    out = tmp_path / "out"
    assert run(finetune(data["first"], out, "--epochs", "1")).returncode == 0
    proc = slowed(finetune(data["second"], out, "--epochs", "1"))
    deadline, killed_at = time.monotonic() + 300, None
    while time.monotonic() < deadline and proc.poll() is None:
        staged = [p for p in tmp_path.glob(".out.staging-*") if p.is_dir()]
        names = {f.name for p in staged for f in p.iterdir()} if staged else set()
        if kill_at in names or (kill_at == "swap" and "minigrad_manifest.json" in names):
            kill(proc)
            killed_at = kill_at
            break
        time.sleep(0.005)
    proc.wait()
    answer = predict(out)
    if answer.returncode == 0:
        assert answer.stdout in (runs["first"], runs["second"]), answer.stdout
    else:
        assert "Traceback" not in answer.stderr and "minigrad predict: error:" in answer.stderr
    if killed_at != "swap":  # killed before the swap: the earlier run, whole
        assert killed_at == kill_at and answer.stdout == runs["first"]
    # the next run cleans what the killed one left beside the directory
    assert run(finetune(data["second"], out, "--epochs", "1")).returncode == 0
    assert predict(out).stdout == runs["second"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt install strace)")
def test_a_second_run_into_the_same_out_is_refused_naming_the_first_ones_pid(data, runs,
                                                                             tmp_path) -> None:
    out = tmp_path / "out"
    first = slowed(finetune(data["first"], out, "--epochs", "1"))
    deadline = time.monotonic() + 120
    while not (tmp_path / ".out.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    holder = (tmp_path / ".out.lock").read_text().strip()
    second = run(finetune(data["second"], out, "--epochs", "1"))
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert f"pid {holder}" in second.stderr and str(out) in second.stderr
    assert first.wait(timeout=300) == 0
    assert predict(out).stdout == runs["first"]  # the first run's model, whole


def test_a_read_only_out_fails_before_the_first_step(data, tmp_path) -> None:
    mount = tmp_path / "ro"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(mount)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        result = run(finetune(data["first"], mount / "run"))
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Read-only file system" in result.stderr and str(mount) in result.stderr
    assert "epoch 1/" not in result.stderr  # refused before any training


# --- files damaged after a save --------------------------------------------------------------
@pytest.fixture
def saved(data, runs, tmp_path) -> Path:
    out = tmp_path / "out"
    assert run(finetune(data["first"], out, "--epochs", "1")).returncode == 0
    return out


@pytest.mark.parametrize("damage, named", [
    (lambda d: (d / "vocab.txt").write_bytes((d / "vocab.txt").read_bytes()[:-40]), "vocab.txt"),
    (lambda d: (d / "config.json").write_text(""), "config.json"),
    (lambda d: (d / "tokenizer_config.json").write_text(""), "tokenizer_config.json"),
    (lambda d: (d / "minigrad_manifest.json").write_text("{"), "minigrad_manifest.json"),
])
def test_a_damaged_file_is_refused_naming_it(saved, damage, named) -> None:
    damage(saved)
    answer = predict(saved)
    assert answer.returncode == 1 and "Traceback" not in answer.stderr
    assert named in answer.stderr


@pytest.mark.parametrize("damage, named", [
    (lambda d: (d / "config.json").write_text(""), "config.json"),
    (lambda d: (d / "tokenizer_config.json").write_text(""), "tokenizer_config.json"),
    (lambda d: (d / "vocab.txt").write_bytes((d / "vocab.txt").read_bytes()[:-40]), "vocab.txt"),
])
def test_without_a_manifest_a_damaged_file_is_still_named(saved, damage, named) -> None:
    """A directory written by another tool (Hugging Face's: no manifest)."""
    (saved / "minigrad_manifest.json").unlink()
    damage(saved)
    answer = predict(saved)
    assert answer.returncode == 1 and "Traceback" not in answer.stderr
    assert named in answer.stderr


# --- data that cannot be learned ---------------------------------------------------------------
@pytest.mark.parametrize("name, text, says", [
    ("one.csv", "text,label\n" + "a good film,pos\n" * 12,
     "every example has the label 'pos'"),
    ("bool.jsonl", "".join(json.dumps({"text": f"text {i}", "label": i % 2 == 0}) + "\n"
                           for i in range(12)), "line 1: the label 'label' is the JSON true"),
    ("nan.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": NaN}\n',
     "line 2: the label 'label' is the JSON NaN"),
])
def test_data_that_cannot_be_learned_is_refused_before_training(tmp_path, name, text,
                                                                says) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run(finetune(path, tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert says in result.stderr
