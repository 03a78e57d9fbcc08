"""The ``minigrad`` command never shows a traceback for a user error, tried as a user would:
real processes, bad values, a missing device, a loss that diverges, Ctrl-C.

A user error is one line, ``minigrad <command>: error: ...``, and exit status 1; a bad
argument is argparse's usage line and exit status 2; Ctrl-C exits 130 and says what was saved;
``--debug`` adds the traceback.
"""

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MINIGRAD = [sys.executable, "-m", "minigrad.cli"]
POSITIVE = ["a good film", "great acting", "fine and good", "a great plot", "good fun"]
NEGATIVE = ["a bad film", "awful acting", "poor and bad", "an awful plot", "bad fun"]


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.csv"
    rows = [f"{t},pos" for t in POSITIVE] + [f"{t},neg" for t in NEGATIVE]
    path.write_text("text,label\n" + "\n".join(rows * 4) + "\n", encoding="utf-8")
    return path


def tiny(train_csv: Path, out: Path, *extra: str) -> list[str]:
    """A fine-tuning command on a from-scratch bert-tiny: seconds, not minutes."""
    return [*MINIGRAD, "finetune", "--train", str(train_csv), "--model", "bert-tiny",
            "--max-length", "16", "--batch-size", "8", "--epochs", "1", "--out", str(out),
            *extra]


def run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINIGRAD_BACKEND": "numpy"}  # no kernel compiling in these tests
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, *words: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("minigrad ")]
    assert len(lines) == 1 and lines[0].startswith(f"minigrad {command}: error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("flag, value", [
    ("--lr", "inf"), ("--lr", "nan"), ("--weight-decay", "-inf"), ("--device", "foo"),
    ("--device", "gpu0"), ("--epochs", "two"),
])
def test_a_bad_argument_is_argparse_usage_and_exit_2(train_csv, tmp_path, flag, value) -> None:
    result = run(tiny(train_csv, tmp_path / "out", f"{flag}={value}"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "usage:" in result.stderr
    assert value in result.stderr


def test_cuda_without_cupy_is_one_line_naming_what_to_install(train_csv, tmp_path) -> None:
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here; the message is for machines without it")
    except ImportError:
        pass
    result = run(tiny(train_csv, tmp_path / "out", "--device", "cuda"))
    assert_one_line_error(result, "finetune", "CuPy", "pip install")


def test_a_negative_gradient_norm_limit_is_one_line(train_csv, tmp_path) -> None:
    result = run(tiny(train_csv, tmp_path / "out", "--max-grad-norm", "-1"))
    assert_one_line_error(result, "finetune", "max_grad_norm must be >= 0", "-1.0")


def test_fp16_on_cuda_without_cupy_is_the_same_one_line(train_csv, tmp_path) -> None:
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here; the message is for machines without it")
    except ImportError:
        pass
    result = run(tiny(train_csv, tmp_path / "out", "--device", "cuda", "--precision", "fp16"))
    assert_one_line_error(result, "finetune", "CuPy", "pip install")


@pytest.mark.parametrize("args, words", [
    (["finetune", "--train", "missing.csv"], ["missing.csv"]),
    (["predict", "--model", "no/such/dir", "hello"], ["no/such/dir"]),
    (["pretrain", "--text", "missing.txt", "--out", "x"], ["missing.txt"]),
    (["embed", "--model", "no/such/dir", "hello"], ["no/such/dir"]),
])
def test_a_missing_file_is_one_line_naming_it(tmp_path, args, words) -> None:
    result = run([*MINIGRAD, *args])
    assert_one_line_error(result, args[0], *words)


def test_debug_shows_the_traceback_and_the_same_last_line(tmp_path) -> None:
    result = run([*MINIGRAD, "predict", "--model", str(tmp_path / "nothing"), "hi", "--debug"])
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("minigrad predict: error: ")


def test_a_diverging_loss_stops_naming_the_step_and_suggesting_a_lower_lr(train_csv,
                                                                         tmp_path) -> None:
    result = run(tiny(train_csv, tmp_path / "out", "--lr", "1e30"))
    assert_one_line_error(result, "finetune", "at step", "lower the learning rate (--lr)")
    predict = run([*MINIGRAD, "predict", "--model", str(tmp_path / "out"), "hello"])
    assert_one_line_error(predict, "predict")  # nothing there loads as a model


def _default_ctrl_c() -> None:
    """In the child: Ctrl-C's default action, as in a terminal. A test run started in the
    background by a shell without job control (``cmd &`` in a script) ignores SIGINT, and its
    children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130_and_says_what_was_saved(train_csv, tmp_path) -> None:
    env = {**os.environ, "MINIGRAD_BACKEND": "numpy"}
    proc = subprocess.Popen(tiny(train_csv, tmp_path / "out", "--epochs", "500"),
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            preexec_fn=_default_ctrl_c)
    seen, deadline = b"", time.monotonic() + 120
    while b"epoch 1/500" not in seen and time.monotonic() < deadline:  # the first progress bar
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            seen += os.read(proc.stderr.fileno(), 4096)
    assert b"epoch 1/500" in seen, seen
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    stderr = (seen + rest).decode()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "minigrad finetune: interrupted;" in stderr
