"""Checkpoints: bit-exact round trips, refusal of damaged or mismatched files, atomic writes,
and resuming training exactly as if it had never stopped."""

import dataclasses
import json
import os

import numpy as np
import pytest
import safetensors.numpy

import minigrad
from minigrad import checkpoint, nn
from minigrad.checkpoint import CheckpointError
from minigrad.nn import functional as F
from minigrad.optim import SGD, Adam, get_linear_schedule_with_warmup


def make_model(seed: int, hidden: int = 16, p_drop: float = 0.5) -> nn.Module:
    minigrad.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(p_drop), nn.Linear(hidden, 3))


def snapshot(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: a.copy() for name, a in model.state_dict().items()}


def assert_bit_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


@dataclasses.dataclass
class TinyConfig:
    hidden: int = 16
    dropout: float = 0.5
    name: str = "tiny"


# --- the model files -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_is_bit_exact(tmp_path, dtype):
    model = make_model(0).to(dtype)
    saved = snapshot(model)
    directory = checkpoint.save_pretrained(model, None, tmp_path / "model",
                                           dataclasses.asdict(TinyConfig()))

    other = make_model(1).to(dtype)
    assert not np.array_equal(other.state_dict()["0.weight"], saved["0.weight"])
    checkpoint.verify_manifest(directory)
    checkpoint.load_weights(directory, other)
    assert_bit_identical(snapshot(other), saved)
    assert checkpoint.load_config(directory) == dataclasses.asdict(TinyConfig())


def test_files_use_hugging_face_names_and_plain_safetensors(tmp_path):
    model = make_model(0)
    directory = checkpoint.save_pretrained(model, None, tmp_path / "model", {"hidden": 16})
    assert sorted(os.listdir(directory)) == ["config.json", "minigrad_manifest.json",
                                             "model.safetensors"]
    # Any safetensors reader sees the state_dict's names and arrays; no pickle anywhere.
    tensors = safetensors.numpy.load_file(directory / "model.safetensors")
    assert_bit_identical({k: tensors[k] for k in model.state_dict()}, snapshot(model))
    assert json.loads((directory / "config.json").read_text()) == {"hidden": 16}
    with safetensors.safe_open(directory / "model.safetensors", framework="np") as f:
        assert f.metadata()["format"] == "pt"
        assert len(f.metadata()["sha256"]) == 64


def test_truncated_files_are_refused_at_every_cut(tmp_path):
    checkpoint.save_safetensors(tmp_path / "model.safetensors", make_model(0).state_dict())
    path = tmp_path / "model.safetensors"
    blob = path.read_bytes()
    header_end = 8 + int.from_bytes(blob[:8], "little")
    for cut in [0, 3, 8, 20, header_end - 1, header_end, header_end + 5, len(blob) // 2,
                len(blob) - 1]:
        path.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError, match=r"model\.safetensors is not a complete"):
            checkpoint.load_weights(tmp_path, make_model(1))


def test_corrupted_data_is_refused_by_its_checksum(tmp_path):
    checkpoint.save_safetensors(tmp_path / "model.safetensors", make_model(0).state_dict())
    path = tmp_path / "model.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0x01  # one flipped bit in the last tensor's bytes: still a valid float
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupted.*sha256"):
        checkpoint.load_weights(tmp_path, make_model(1))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not exist"):
        checkpoint.load_weights(tmp_path, make_model(0))


def test_renamed_tensor_is_refused_naming_both_keys(tmp_path):
    state = snapshot(make_model(0))
    state["0.weights"] = state.pop("0.weight")
    safetensors.numpy.save_file(state, tmp_path / "model.safetensors")
    model = make_model(1)
    before = snapshot(model)
    with pytest.raises(CheckpointError,
                       match=r"model\.safetensors does not fit Sequential(.|\n)*"
                             r"Missing.*\"0\.weight\"(.|\n)*Unexpected.*\"0\.weights\""):
        checkpoint.load_weights(tmp_path, model)
    assert_bit_identical(snapshot(model), before)  # a refused load changes nothing


def test_reshaped_tensor_is_refused_naming_key_and_shapes(tmp_path):
    checkpoint.save_safetensors(tmp_path / "model.safetensors",
                                make_model(0, hidden=16).state_dict())
    with pytest.raises(CheckpointError, match=r"model\.safetensors(.|\n)*0\.weight.*"
                                              r"\(16, 8\).*\(32, 8\)"):
        checkpoint.load_weights(tmp_path, make_model(1, hidden=32))


def test_non_strict_load_reports_what_it_skipped(tmp_path):
    state = snapshot(make_model(0))
    del state["3.bias"]
    safetensors.numpy.save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"Missing.*\"3\.bias\""):
        checkpoint.load_weights(tmp_path, make_model(1))
    result = checkpoint.load_weights(tmp_path, make_model(1), strict=False)
    assert result.missing_keys == ["3.bias"] and result.unexpected_keys == []


# --- atomic writes -----------------------------------------------------------------------------

def crash_on_replace(monkeypatch, after: int = 0) -> None:
    """Make the (after+1)-th os.replace raise, as a crash between writing and renaming would."""
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) > after:
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def test_a_crash_mid_write_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    old = make_model(0)
    checkpoint.save_safetensors(tmp_path / "model.safetensors", old.state_dict())
    checkpoint.atomic_write_json(tmp_path / "config.json", {"version": 1})
    crash_on_replace(monkeypatch)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.save_safetensors(tmp_path / "model.safetensors", make_model(1).state_dict())
    crash_on_replace(monkeypatch)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.atomic_write_json(tmp_path / "config.json", {"version": 2})
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]  # no temp files
    restored = make_model(2)
    checkpoint.load_weights(tmp_path, restored)
    assert_bit_identical(snapshot(restored), snapshot(old))
    assert checkpoint.load_config(tmp_path) == {"version": 1}


def train_steps(model, optimizer, scheduler, data, steps: range) -> list[float]:
    """The plain loop: forward, loss, backward, update; batch ``s`` is fixed by the step."""
    x, y = data
    losses = []
    model.train()
    for s in steps:
        rows = slice((8 * s) % 64, (8 * s) % 64 + 8)
        loss = F.cross_entropy(model(minigrad.tensor(x[rows])), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def make_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((64, 8)).astype(np.float32), rng.integers(0, 3, 64)


def make_optimizer(model):
    optimizer = Adam(model.parameters(), lr=1e-2)
    return optimizer, get_linear_schedule_with_warmup(optimizer, 3, 20)


def test_a_crash_mid_training_checkpoint_is_detected_or_harmless(tmp_path, monkeypatch):
    model = make_model(0)
    optimizer, scheduler = make_optimizer(model)
    train_steps(model, optimizer, scheduler, make_data(), range(2))
    checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=2, epoch=0)
    train_steps(model, optimizer, scheduler, make_data(), range(2, 4))

    # Crash before the first rename: the old checkpoint is untouched and loads.
    crash_on_replace(monkeypatch, after=0)
    with pytest.raises(OSError):
        checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=4, epoch=1)
    monkeypatch.undo()
    fresh = make_model(1)
    state = checkpoint.load_training_state(tmp_path, fresh, *make_optimizer(fresh))
    assert state.step == 2

    # Crash after the weights were renamed but before trainer_state.json (the commit record):
    # the directory now mixes two saves, and loading says so instead of resuming wrongly.
    crash_on_replace(monkeypatch, after=1)
    with pytest.raises(OSError):
        checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=4, epoch=1)
    monkeypatch.undo()
    fresh = make_model(1)
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not the file this "
                                              r"checkpoint recorded"):
        checkpoint.load_training_state(tmp_path, fresh, *make_optimizer(fresh))


# --- resuming ------------------------------------------------------------------------------------

def test_resume_continues_bit_identically(tmp_path):
    data, k, n = make_data(), 5, 7

    # Run A: k steps, checkpoint, n more steps, all in one go.
    model = make_model(0)
    optimizer, scheduler = make_optimizer(model)
    train_steps(model, optimizer, scheduler, data, range(k))
    checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=k, epoch=0,
                                   history={"loss": [1.5, 1.25]}, extra={"note": "A"})
    lrs_at_checkpoint = scheduler.get_last_lr()
    losses_a = train_steps(model, optimizer, scheduler, data, range(k, k + n))

    # Run B: a fresh "process": another seed, new model, new optimizer and schedule; load, go on.
    fresh = make_model(123)
    fresh_optimizer, fresh_scheduler = make_optimizer(fresh)
    state = checkpoint.load_training_state(tmp_path, fresh, fresh_optimizer, fresh_scheduler)
    assert (state.step, state.epoch) == (k, 0)
    assert state.history == {"loss": [1.5, 1.25]} and state.extra == {"note": "A"}
    assert fresh_scheduler.get_last_lr() == lrs_at_checkpoint
    losses_b = train_steps(fresh, fresh_optimizer, fresh_scheduler, data, range(k, k + n))

    assert losses_b == losses_a
    assert_bit_identical(snapshot(fresh), snapshot(model))
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq"):
            assert optimizer.state[p][key].tobytes() == fresh_optimizer.state[q][key].tobytes()
        assert optimizer.state[p]["step"] == fresh_optimizer.state[q]["step"] == k + n


def test_resume_needs_the_saved_random_state(tmp_path):
    # The control for the test above: with dropout on, skipping the RNG restore diverges.
    data = make_data()
    model = make_model(0)
    optimizer, scheduler = make_optimizer(model)
    train_steps(model, optimizer, scheduler, data, range(3))
    checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=3, epoch=0)
    train_steps(model, optimizer, scheduler, data, range(3, 6))

    fresh = make_model(7)
    fresh_optimizer, fresh_scheduler = make_optimizer(fresh)
    checkpoint.load_training_state(tmp_path, fresh, fresh_optimizer, fresh_scheduler,
                                   restore_rng=False)
    train_steps(fresh, fresh_optimizer, fresh_scheduler, data, range(3, 6))
    assert not np.array_equal(fresh.state_dict()["0.weight"], model.state_dict()["0.weight"])


def test_numpy_global_generator_is_restored(tmp_path):
    model = make_model(0)
    optimizer, scheduler = make_optimizer(model)
    np.random.seed(5)
    checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=0, epoch=0)
    expected = np.random.random(3)
    np.random.seed(99)
    checkpoint.load_training_state(tmp_path, model, optimizer, scheduler)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_sgd_momentum_state_round_trips(tmp_path):
    data = make_data()
    model = make_model(0, p_drop=0.0)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, 10)
    train_steps(model, optimizer, scheduler, data, range(2))
    checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=2, epoch=0)

    fresh = make_model(1, p_drop=0.0)
    fresh_optimizer = SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    fresh_scheduler = get_linear_schedule_with_warmup(fresh_optimizer, 0, 10)
    checkpoint.load_training_state(tmp_path, fresh, fresh_optimizer, fresh_scheduler)
    train_steps(model, optimizer, scheduler, data, range(2, 4))
    train_steps(fresh, fresh_optimizer, fresh_scheduler, data, range(2, 4))
    assert_bit_identical(snapshot(fresh), snapshot(model))


def test_loading_into_another_kind_of_optimizer_is_refused(tmp_path):
    model = make_model(0)
    optimizer, scheduler = make_optimizer(model)
    checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=0, epoch=0)
    sgd = SGD(model.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match="optimizer of class Adam, but SGD was given"):
        checkpoint.load_training_state(tmp_path, model, sgd,
                                       get_linear_schedule_with_warmup(sgd, 3, 20))
    with pytest.raises(CheckpointError, match="scheduler of class LambdaLR, but None"):
        checkpoint.load_training_state(tmp_path, model, optimizer)


def test_a_truncated_trainer_state_is_refused(tmp_path):
    model = make_model(0)
    optimizer, scheduler = make_optimizer(model)
    checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=0, epoch=0)
    path = tmp_path / "trainer_state.json"
    path.write_text(path.read_text()[:100])
    with pytest.raises(CheckpointError, match=r"trainer_state\.json is not valid JSON"):
        checkpoint.load_training_state(tmp_path, model, optimizer, scheduler)


def test_history_that_is_not_json_is_refused_naming_the_file(tmp_path):
    model = make_model(0)
    optimizer, scheduler = make_optimizer(model)
    with pytest.raises(TypeError, match=r"trainer_state\.json.*object is not JSON"):
        checkpoint.save_training_state(tmp_path, model, optimizer, scheduler, step=0, epoch=0,
                                       history={"bad": object()})
