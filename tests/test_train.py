"""The training loop: accumulation, clipping, schedules, early stopping, determinism, records,
resuming, and (slow) the MNIST benchmark."""

import importlib.util
import itertools
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minigrad
from minigrad import checkpoint, nn
from minigrad.nn import functional as F
from minigrad.optim import SGD, Adam, get_linear_schedule_with_warmup
from minigrad.train import History, TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


def make_model(seed: int = 0, p_drop: float = 0.0, dtype: str = "float32") -> nn.Module:
    minigrad.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(p_drop), nn.Linear(12, 3))
    return model.to(dtype)


def make_data(n: int = 48, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 6)).astype(dtype)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(minigrad.tensor(x)), y)


def quiet(**kwargs) -> TrainConfig:
    return TrainConfig(progress=False, **kwargs)


# --- the update --------------------------------------------------------------------------------

def test_accumulating_k_micro_batches_equals_one_full_batch_step():
    data = make_data(16, np.float64)
    full, accumulated = make_model(dtype="float64"), make_model(dtype="float64")
    fit(full, loss_fn, data, SGD(full.parameters(), lr=0.5),
        quiet(batch_size=16, shuffle=False))
    fit(accumulated, loss_fn, data, SGD(accumulated.parameters(), lr=0.5),
        quiet(batch_size=4, grad_accum_steps=4, shuffle=False))
    start = make_model(dtype="float64").state_dict()
    for name, a in full.state_dict().items():
        assert not np.allclose(a, start[name])  # the step moved the weights
        np.testing.assert_allclose(accumulated.state_dict()[name], a, rtol=1e-12, atol=1e-14)


def test_accumulation_counts_optimizer_steps_and_logs_the_mean_loss():
    history = fit(make_model(), loss_fn, make_data(48), SGD(make_model().parameters(), lr=0.1),
                  quiet(batch_size=8, grad_accum_steps=4, epochs=2))
    # 48 rows / 8 = 6 micro-batches per epoch -> steps of 4 and 2 micro-batches -> 2 per epoch.
    assert [s["step"] for s in history.steps] == [1, 2, 3, 4]
    assert [s["epoch"] for s in history.steps] == [1, 1, 2, 2]
    # The loss of a step is the mean over its micro-batches: about ln 3 for an untrained model.
    assert all(0.5 < s["loss"] < 2.5 for s in history.steps)


def test_clipping_bounds_the_update():
    model = make_model(dtype="float64")
    before = {k: a.copy() for k, a in model.state_dict().items()}
    fit(model, loss_fn, make_data(16, np.float64), SGD(model.parameters(), lr=1.0),
        quiet(batch_size=16, max_grad_norm=1e-3))
    # One SGD step with lr 1 moves the weights by exactly the clipped gradient (norm 1e-3).
    moved = np.sqrt(sum(np.sum((a - before[k]) ** 2) for k, a in model.state_dict().items()))
    assert moved == pytest.approx(1e-3, rel=1e-5)


def test_the_history_logs_the_gradient_norm_before_clipping():
    data, norms = make_data(16, np.float64), []
    for max_grad_norm in (None, 1e-3):
        model = make_model(dtype="float64")
        before = {k: a.copy() for k, a in model.state_dict().items()}
        history = fit(model, loss_fn, data, SGD(model.parameters(), lr=1.0),
                      quiet(batch_size=16, max_grad_norm=max_grad_norm))
        norms.append(history.steps[0].get("grad_norm"))
        if max_grad_norm is None:  # one unclipped SGD step with lr 1 moves by the gradient
            unclipped = np.sqrt(sum(np.sum((a - before[k]) ** 2)
                                    for k, a in model.state_dict().items()))
    assert norms[0] is None  # no clipping, no norm computed
    assert norms[1] == pytest.approx(unclipped, rel=1e-10) and norms[1] > 1e-3


def test_the_schedule_steps_once_per_optimizer_step():
    model = make_model()
    optimizer = Adam(model.parameters(), lr=0.1)
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=2,
                                                num_training_steps=6)
    history = fit(model, loss_fn, make_data(48), optimizer,
                  quiet(batch_size=8, grad_accum_steps=2, epochs=2), scheduler=scheduler)
    # 3 steps per epoch; step t uses lr·factor(t-1): warmup 0, 1/2, then (6 - t)/4 down to 1/4.
    expected = [0.1 * f for f in [0.0, 0.5, 1.0, 0.75, 0.5, 0.25]]
    assert [s["lr"] for s in history.steps] == pytest.approx(expected)


# --- evaluation and early stopping -------------------------------------------------------------

def scripted(values: list[float], key: str = "score"):
    """An evaluate callback that returns the next scripted value each epoch."""
    remaining = list(values)

    def evaluate(model):
        assert not model[2].training  # called in eval mode
        return {key: remaining.pop(0)}

    return evaluate


@pytest.mark.parametrize(("mode", "values", "patience", "best", "stopped_after"), [
    # min: best 0.8 at epoch 2; epochs 3 and 4 do not beat it; patience 2 -> stop after 4.
    ("min", [1.0, 0.8, 0.9, 0.85, 0.7, 0.6], 2, 2, 4),
    # max: 0.5, 0.6, 0.6 (a tie is no improvement), 0.7 (best, epoch 4), then 0.65, 0.69 and
    # 0.7 (a tie again): patience 3 counts epochs 5, 6, 7 -> stop after 7; 0.9 is never seen.
    ("max", [0.5, 0.6, 0.6, 0.7, 0.65, 0.69, 0.7, 0.9], 3, 4, 7),
    # min: best 3.0 at epoch 4, one worse epoch after it: all 5 epochs run.
    ("min", [5.0, 4.0, 4.5, 3.0, 3.5], 2, 4, 5),
])
def test_early_stopping_stops_at_the_right_epoch(mode, values, patience, best, stopped_after):
    model = make_model()
    history = fit(model, loss_fn, make_data(16), SGD(model.parameters(), lr=0.01),
                  quiet(epochs=len(values), batch_size=16, early_stopping_metric="score",
                        early_stopping_mode=mode, patience=patience),
                  evaluate=scripted(values))
    assert [e["epoch"] for e in history.epochs] == list(range(1, stopped_after + 1))
    assert [e["score"] for e in history.epochs] == values[:stopped_after]
    assert history.best_epoch == best
    assert history.best_metric == values[best - 1]
    assert history.stopped_early == (stopped_after < len(values))


def test_restore_best_brings_back_the_best_epochs_weights():
    model = make_model()
    weights_after = {}

    def evaluate(m):
        epoch = len(weights_after) + 1
        weights_after[epoch] = {k: a.copy() for k, a in m.state_dict().items()}
        return {"val_loss": [0.9, 0.5, 0.7, 0.8][epoch - 1]}

    fit(model, loss_fn, make_data(16), SGD(model.parameters(), lr=0.1),
        quiet(epochs=4, batch_size=8, early_stopping_metric="val_loss", patience=2,
              restore_best=True), evaluate=evaluate)
    assert len(weights_after) == 4
    for name, a in model.state_dict().items():
        np.testing.assert_array_equal(a, weights_after[2][name])
        assert not np.array_equal(a, weights_after[4][name])


def test_validation_loss_is_the_row_weighted_mean():
    model = make_model()
    x, y = make_data(20)
    history = fit(model, loss_fn, (x, y), SGD(model.parameters(), lr=0.0),
                  quiet(batch_size=8), val_data=(x, y))
    # lr 0: the model is unchanged, so the validation loss is the loss of all 20 rows at once.
    with minigrad.no_grad():
        expected = loss_fn(model.eval(), (x, y)).item()
    assert history.epochs[0]["val_loss"] == pytest.approx(expected, rel=1e-6)


def test_an_unknown_early_stopping_metric_is_named():
    model = make_model()
    with pytest.raises(KeyError, match=r"'accuracy' is not among.*\['train_loss', 'val_loss'\]"):
        fit(model, loss_fn, make_data(16), SGD(model.parameters(), lr=0.1),
            quiet(early_stopping_metric="accuracy"), val_data=make_data(8))


def test_dict_batches_reach_the_loss_as_dicts():
    seen = []

    def dict_loss(model, batch):
        seen.append(sorted(batch))
        return loss_fn(model, (batch["x"], batch["y"]))

    model = make_model()
    x, y = make_data(16)
    fit(model, dict_loss, {"x": x, "y": y}, SGD(model.parameters(), lr=0.1), quiet(batch_size=8))
    assert seen == [["x", "y"], ["x", "y"]]


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    model = make_model()
    with pytest.raises(FloatingPointError, match="the loss is nan at step 1"):
        fit(model, lambda m, b: loss_fn(m, b) * float("nan"), make_data(16),
            SGD(model.parameters(), lr=0.1), quiet(batch_size=16))


# --- determinism, records, resuming -------------------------------------------------------------

def run(seed: int, out_dir=None, epochs: int = 3, resume_from=None, model_seed: int = 0,
        evaluate=None, **config) -> tuple[nn.Module, History]:
    model = make_model(model_seed, p_drop=0.3)
    optimizer = Adam(model.parameters(), lr=1e-2)
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, 3 * epochs)
    history = fit(model, loss_fn, make_data(48), optimizer,
                  quiet(epochs=epochs, batch_size=16, seed=seed, out_dir=out_dir, **config),
                  scheduler=scheduler, val_data=make_data(16), evaluate=evaluate,
                  resume_from=resume_from)
    return model, history


def test_the_same_seed_gives_the_same_history():
    _, a = run(seed=3)
    _, b = run(seed=3)
    _, c = run(seed=4)
    assert a.to_dict() == b.to_dict()
    assert [s["loss"] for s in a.steps] != [s["loss"] for s in c.steps]


def test_history_json_and_curves_png_are_written(tmp_path):
    _, history = run(seed=0, out_dir=tmp_path, title="tiny run")
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved == history.to_dict()
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2, 3]
    assert {"train_loss", "val_loss", "step"} <= set(saved["epochs"][0])
    assert set(saved["steps"][0]) == {"step", "epoch", "loss", "lr"}

    png = tmp_path / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_curves_plot_other_metrics_in_a_second_panel(tmp_path):
    history = History(steps=[{"step": 1, "epoch": 1, "loss": 1.0, "lr": 0.1},
                             {"step": 2, "epoch": 2, "loss": 0.5, "lr": 0.1}],
                      epochs=[{"epoch": 1, "step": 1, "train_loss": 1.0, "accuracy": 0.6},
                              {"epoch": 2, "step": 2, "train_loss": 0.5, "accuracy": 0.8}])
    history.plot(tmp_path / "one.png")
    history.epochs = [{k: v for k, v in e.items() if k != "accuracy"} for e in history.epochs]
    history.plot(tmp_path / "two.png")
    wide, narrow = (matplotlib.image.imread(tmp_path / n) for n in ("one.png", "two.png"))
    assert wide.shape[1] > narrow.shape[1]


def test_the_progress_bar_shows_loss_and_lr(capsys):
    model = make_model()
    fit(model, loss_fn, make_data(16), SGD(model.parameters(), lr=0.05),
        TrainConfig(epochs=2, batch_size=8, progress=True))
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert "loss=" in err and "lr=0.05" in err


def test_resuming_from_an_epoch_checkpoint_matches_the_uninterrupted_run(tmp_path):
    full_model, full = run(seed=1, out_dir=tmp_path / "full", epochs=4, save_checkpoints=True)
    # Each epoch left a checkpoint named by its step: 48 rows / 16 = 3 steps an epoch.
    assert sorted(p.name for p in (tmp_path / "full").glob("checkpoint-*")) == [
        "checkpoint-12", "checkpoint-3", "checkpoint-6", "checkpoint-9"]

    resumed_model, resumed = run(seed=1, out_dir=tmp_path / "resumed", epochs=4,
                                 resume_from=tmp_path / "full" / "checkpoint-6", model_seed=9)
    assert resumed.to_dict() == full.to_dict()
    for name, a in full_model.state_dict().items():
        assert resumed_model.state_dict()[name].tobytes() == a.tobytes(), name


def test_resuming_with_restore_best_uses_the_best_epochs_checkpoint(tmp_path):
    def score_by_epoch(first_epoch: int):
        # Best score at epoch 2; a run resumed after epoch 3 never sees a better one.
        epochs = iter(range(first_epoch, 5))
        return lambda model: {"score": {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.7}[next(epochs)]}

    config = {"early_stopping_metric": "score", "early_stopping_mode": "max", "patience": 10,
              "restore_best": True}
    full_model, full = run(seed=2, out_dir=tmp_path, epochs=4, save_checkpoints=True,
                           evaluate=score_by_epoch(1), **config)
    assert full.best_epoch == 2
    after_epoch_2 = load_weights_of(tmp_path / "checkpoint-6")
    resumed_model, _ = run(seed=2, epochs=4, resume_from=tmp_path / "checkpoint-9",
                           model_seed=5, evaluate=score_by_epoch(4), **config)
    for name, a in after_epoch_2.items():
        assert full_model.state_dict()[name].tobytes() == a.tobytes(), name
        assert resumed_model.state_dict()[name].tobytes() == a.tobytes(), name


def load_weights_of(directory: Path) -> dict[str, np.ndarray]:
    model = make_model(p_drop=0.3)
    checkpoint.load_weights(directory, model)
    return {k: a.copy() for k, a in model.state_dict().items()}


def test_on_step_is_called_after_each_optimizer_step_with_the_steps_taken_so_far():
    model = make_model()
    seen = []

    def on_step(step):
        seen.append((step, model.state_dict()["0.weight"].copy()))

    history = fit(model, loss_fn, make_data(48), SGD(model.parameters(), lr=0.1),
                  quiet(batch_size=8, grad_accum_steps=2, epochs=2, max_steps=5),
                  on_step=on_step)
    assert [step for step, _ in seen] == [s["step"] for s in history.steps] == [1, 2, 3, 4, 5]
    # each call sees a new update: none sees the initial weights or the previous call's
    weights = [make_model().state_dict()["0.weight"]] + [weight for _, weight in seen]
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(weights))


def test_bad_configs_are_refused():
    model = make_model()
    sgd = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="grad_accum_steps must be at least 1"):
        fit(model, loss_fn, make_data(), sgd, quiet(grad_accum_steps=0))
    with pytest.raises(ValueError, match="'min' or 'max', got 'lowest'"):
        fit(model, loss_fn, make_data(), sgd, quiet(early_stopping_mode="lowest"))
    with pytest.raises(ValueError, match="save_checkpoints needs an out_dir"):
        fit(model, loss_fn, make_data(), sgd, quiet(save_checkpoints=True))
    x, y = make_data()
    with pytest.raises(ValueError, match=r"different lengths \[48, 47\]"):
        fit(model, loss_fn, (x, y[:-1]), sgd, quiet())


# --- the MNIST benchmark ------------------------------------------------------------------------

@pytest.mark.slow
def test_mnist_mlp_benchmark_reaches_93_percent(tmp_path):
    spec = importlib.util.spec_from_file_location("mnist_mlp", ROOT / "benchmarks/mnist_mlp.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    # The script limits OpenBLAS to one thread through the environment before NumPy loads; here
    # NumPy is loaded already, so limit it the same way at run time (threadpoolctl comes with
    # scikit-learn, a test dependency).
    with threadpool_limits(limits=1, user_api="blas"):
        results = benchmark.main(["--out", str(tmp_path), "--no-progress"])
    assert results["test_accuracy"] >= 0.93
    assert (tmp_path / "mnist_mlp_curves.png").stat().st_size > 0
    assert json.loads((tmp_path / "mnist_mlp.json").read_text())["test_accuracy"] >= 0.93
