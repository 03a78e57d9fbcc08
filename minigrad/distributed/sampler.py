"""``DistributedSampler``: which rows of the data each rank reads (PyTorch's names).

Every rank draws the same permutation of the ``n`` rows from the shared seed and the epoch
(``numpy.random.default_rng([seed, epoch])``, the order :func:`minigrad.train.fit` and
:func:`minigrad.data.encoding.training_batches` use for one process), pads it by wrapping
around to a multiple of the world size ``N`` (or drops the tail with ``drop_last``), and keeps
every ``N``-th row from its rank on::

    permutation  p0 p1 p2 p3 p4 p5 p6 p7          (N = 2)
    rank 0       p0    p2    p4    p6
    rank 1          p1    p3    p5    p7

So the shards are disjoint, and cutting each rank's shard into batches of ``B/N`` gives, at
step k, exactly the rows of the one-process batch k of ``B`` rows (p0..p3 at k = 0): N ranks
reproduce the one-process run whenever each of its batches divides evenly among them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from minigrad.distributed import comm


class DistributedSampler:
    """This rank's row indices for one epoch; ``set_epoch(epoch)`` before each epoch reshuffles
    (every rank alike). ``num_replicas`` and ``rank`` default to the MPI world's."""

    def __init__(self, n: int, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        self.num_replicas = comm.world_size() if num_replicas is None else num_replicas
        self.rank = comm.rank() if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} is outside a world of {self.num_replicas}")
        if n < self.num_replicas and drop_last:
            raise ValueError(f"{n} rows cannot give each of {self.num_replicas} ranks one row")
        self.n, self.shuffle, self.seed, self.drop_last = n, shuffle, seed, drop_last
        self.epoch = 0
        per_rank = n // self.num_replicas if drop_last else -(-n // self.num_replicas)
        self.num_samples = per_rank
        self.total_size = per_rank * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> np.ndarray:
        """This rank's rows for the current epoch, in order."""
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
                 if self.shuffle else np.arange(self.n))
        if self.total_size > self.n:  # wrap around: every rank gets as many rows
            order = np.concatenate([order, np.resize(order, self.total_size - self.n)])
        return order[:self.total_size][self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
