"""``DistributedDataParallel``: PyTorch's design, taught in small.

Each rank holds a whole copy of the model and runs forward and backward on its own slice of the
global batch. If every slice has ``B/N`` rows and each rank's loss is the mean over its slice,
then the mean over the ranks of their gradients is the gradient of the mean loss over the whole
batch::

    ∇θ L = (1/B) Σ_rows ∇θ ℓ = (1/N) Σ_ranks (N/B) Σ_{rows of rank r} ∇θ ℓ = (1/N) Σ_ranks ∇θ L_r

so after an all-reduce (a sum) and a division by N every rank holds the same gradient and takes
the same optimizer step: N copies that stay identical, as one model on N times the data.

The all-reduce need not wait for the end of backward. The gradients are grouped into
**buckets** of about ``bucket_cap_mb`` megabytes, in *reverse* parameter order, since backward
finishes the last layers first; the first bucket holds only about 1 MiB, as in torch, so that
the first all-reduce starts as soon as the last layer is done. A hook on every parameter
(``register_post_accumulate_grad_hook``) counts the gradients a bucket still waits for; once a
bucket is full its gradients are copied into one flat array and a non-blocking all-reduce
(``MPI_Iallreduce``) starts at once, while backward goes on with the earlier layers. Buckets
start in bucket order on every rank (MPI matches collectives by the order they are called in).
When backward ends, a callback waits for the buckets still in flight, divides by N and copies
the averages back into each ``.grad``: ``loss.backward()`` returns with the gradients averaged.

One message per bucket instead of one per parameter pays the network's latency a few times
rather than hundreds; buckets small enough to start early hide the transfer behind compute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from minigrad import autograd, backend, nn
from minigrad.distributed import comm

FIRST_BUCKET_BYTES = 2**20  # torch's _DEFAULT_FIRST_BUCKET_BYTES: the first all-reduce starts soon


@dataclasses.dataclass
class Bucket:
    """Parameters whose gradients travel together, as one flat array."""

    params: list[Any]                 # in the order backward is expected to finish them
    buffer: Any                       # (Σ numel,) of their dtype, on their device
    offsets: list[int]
    ready: int = 0                    # gradients final in this backward
    work: comm.Work | None = None     # the all-reduce in flight

    def pack(self) -> None:
        """Copy each gradient (zeros for a parameter that got none) into the flat buffer."""
        for p, start in zip(self.params, self.offsets, strict=True):
            view = self.buffer[start:start + p.data.size]
            if p.grad is None:
                view[...] = 0
            else:
                view[...] = p.grad.reshape(-1)

    def unpack(self, world: int, used: Any) -> None:
        """Divide the summed gradients by the world size and write them back into ``.grad``;
        a parameter no rank ``used`` keeps ``grad = None``, as it would in one process."""
        self.buffer /= world
        for p, start, u in zip(self.params, self.offsets, used, strict=True):
            average = self.buffer[start:start + p.data.size].reshape(p.data.shape)
            if not u:
                p.grad = None
            elif p.grad is None:
                p.grad = average.copy()
            else:
                p.grad[...] = average


class DistributedDataParallel(nn.Module):
    """Wrap ``module`` so that ``loss.backward()`` leaves every rank with the gradients
    averaged over all ranks (``torch.nn.parallel.DistributedDataParallel``).

    At wrap time the ranks check that they hold the same model (the same parameter names,
    shapes and dtypes, in the same order; a difference is a :class:`~comm.WorldError` on every
    rank naming the first differing parameter), then rank 0's parameters and buffers are
    broadcast, so all copies start equal. Only parameters that require grad are reduced.

    Call it like the module (``ddp(x)`` is ``ddp.module(x)``); its parameters are the module's
    (``state_dict`` keys gain ``module.``, as in torch). ``with ddp.no_sync():`` skips the
    all-reduce: gradients accumulate locally, and the next backward outside the block reduces
    the sum. ``bucket_cap_mb=0`` gives a bucket per parameter. ``timeline`` holds, for the last
    backward, when each bucket started and was seen finished (seconds, ``time.perf_counter``).
    """

    def __init__(self, module: nn.Module, bucket_cap_mb: float = 25.0):
        super().__init__()
        if not bucket_cap_mb >= 0:
            raise ValueError(f"bucket_cap_mb must be >= 0, got {bucket_cap_mb}")
        comm.init()
        self.module = module
        self.rank, self.world_size = comm.rank(), comm.world_size()
        self.bucket_cap_mb = bucket_cap_mb
        self.require_backward_grad_sync = True
        _check_same_model(module)
        for _, p in module.named_parameters():
            comm.broadcast(p.data, src=0)
        for _, b in module.named_buffers():
            if hasattr(b, "flags") and b.flags.c_contiguous:
                comm.broadcast(b, src=0)
        params = [p for _, p in module.named_parameters() if p.requires_grad]
        cap = int(bucket_cap_mb * 2**20)
        self.buckets = _make_buckets(params[::-1], cap, min(cap, FIRST_BUCKET_BYTES))
        self._bucket_of = {id(p): b for b in self.buckets for p in b.params}
        self._next = 0          # the next bucket to start
        self._in_backward = False
        self.timeline: dict[str, Any] = {}
        self.forward_end = 0.0
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._in_backward:  # a backward that raised midway left its state behind
            self._reset()
        out = self.module(*args, **kwargs)
        self.forward_end = time.perf_counter()
        return out

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within this block backward reduces nothing: gradients accumulate on each rank (for
        gradient accumulation), and the first backward after it reduces their sum."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def average_across_ranks(self, value: float) -> float:
        """The mean of a number over the ranks (every rank must call it): the loss of the whole
        global batch from each rank's loss on its slice."""
        return float(comm.all_reduce(np.array([value], dtype=np.float64), "mean")[0])

    # --- during backward ----------------------------------------------------------------------
    def _grad_ready(self, p: Any) -> None:
        """A parameter's gradient is final: start every full bucket that is next in order."""
        if not self.require_backward_grad_sync:
            return
        if not self._in_backward:  # the first gradient of this backward
            self._in_backward = True
            self.timeline = {"start": self.forward_end, "buckets": [None] * len(self.buckets)}
            autograd.queue_callback(self._finish)
        self._bucket_of[id(p)].ready += 1
        while (self._next < len(self.buckets)
               and self.buckets[self._next].ready == len(self.buckets[self._next].params)):
            self._start(self._next)
            self._next += 1
        for i, b in enumerate(self.buckets[:self._next]):  # let MPI progress those in flight
            if b.work is not None and self.timeline["buckets"][i][1] is None \
                    and b.work.is_completed():
                self.timeline["buckets"][i][1] = time.perf_counter()

    def _start(self, i: int) -> None:
        bucket = self.buckets[i]
        bucket.pack()
        bucket.work = comm.iall_reduce(bucket.buffer)
        self.timeline["buckets"][i] = [time.perf_counter(), None, bucket.buffer.nbytes]

    def _finish(self) -> None:
        """After backward: start the buckets that never filled (parameters this rank did not
        use: their gradients count as zeros), wait for all, average, write back."""
        self.timeline["backward_end"] = time.perf_counter()
        while self._next < len(self.buckets):
            self._start(self._next)
            self._next += 1
        # which parameters some rank gave a gradient (one small all-reduce, after the buckets
        # on every rank, so the collectives keep one order)
        used = comm.all_reduce(np.array([p.grad is not None for b in self.buckets
                                         for p in b.params], dtype=np.uint8), "max")
        first = 0
        for i, b in enumerate(self.buckets):
            b.work.wait()
            if self.timeline["buckets"][i][1] is None:
                self.timeline["buckets"][i][1] = time.perf_counter()
            b.unpack(self.world_size, used[first:first + len(b.params)])
            first += len(b.params)
        self.timeline["end"] = time.perf_counter()
        self._reset()

    def _reset(self) -> None:
        for b in self.buckets:
            b.work, b.ready = None, 0
        self._next, self._in_backward = 0, False

    def extra_repr(self) -> str:
        return (f"world_size={self.world_size}, buckets={len(self.buckets)}, "
                f"bucket_cap_mb={self.bucket_cap_mb}")


def _make_buckets(params: list[Any], cap_bytes: int, first_cap_bytes: int) -> list[Bucket]:
    """Consecutive parameters, in the given order, grouped until a bucket holds ``cap_bytes``
    (``first_cap_bytes`` for the first; a parameter larger than that ends its bucket); a new
    dtype or device starts a new bucket, since a flat array has one of each."""
    groups: list[list[Any]] = []
    size = 0
    for p in params:
        kind = (p.dtype, p.device)
        cap = first_cap_bytes if len(groups) == 1 else cap_bytes
        if not groups or size >= cap or kind != (groups[-1][0].dtype, groups[-1][0].device):
            groups.append([])
            size = 0
        groups[-1].append(p)
        size += p.data.nbytes
    buckets = []
    for group in groups:
        offsets = np.cumsum([0] + [p.data.size for p in group]).tolist()
        xp = backend.array_module(group[0].data)
        buckets.append(Bucket(group, xp.zeros(offsets[-1], dtype=group[0].dtype), offsets[:-1]))
    return buckets


def _check_same_model(module: nn.Module) -> None:
    """Refuse, on every rank, a world whose ranks hold different models."""
    mine = [(name, tuple(p.shape), str(p.dtype), bool(p.requires_grad))
            for name, p in module.named_parameters()]
    everyone = comm.all_gather_object(mine)
    reference = everyone[0]
    for r, theirs in enumerate(everyone[1:], start=1):
        if theirs == reference:
            continue
        for i in range(max(len(theirs), len(reference))):
            a = reference[i] if i < len(reference) else None
            b = theirs[i] if i < len(theirs) else None
            if a != b:
                raise comm.WorldError(
                    f"the ranks hold different models: parameter {i} is {_describe(a)} on rank 0 "
                    f"but {_describe(b)} on rank {r}; every rank must build the same model")


def _describe(entry: tuple | None) -> str:
    if entry is None:
        return "missing"
    name, shape, dtype, grad = entry
    return f"{name!r} {shape} {dtype}" + ("" if grad else " (frozen)")
