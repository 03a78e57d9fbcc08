"""The collectives: every rank calls the same ones, in the same order, on arrays of the same
shape and dtype.

================  ===========================================  =================================
call              what every rank holds afterwards             bytes each rank sends (ring)
================  ===========================================  =================================
``all_reduce``    the elementwise sum (or mean, max, min)      2(N−1)/N · size
``broadcast``     rank ``src``'s array                         ≤ size
``all_gather``    every rank's array, stacked: (N, *shape)     (N−1)/N · N·size
================  ===========================================  =================================

NumPy arrays go through MPI (mpi4py's buffer interface: no pickling, no copy). CuPy arrays go
through NCCL when :func:`init` found it (``cupy.cuda.nccl``, its unique id broadcast over MPI,
as llm.c does), otherwise through MPI with host staging: copied to the host, reduced there,
copied back. ``all_reduce`` and ``broadcast`` work in place, as ``torch.distributed``'s do.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import numpy as np
from mpi4py import MPI

from minigrad import backend

_WORLD = MPI.COMM_WORLD
_state: dict[str, Any] = {"initialized": False, "nccl": None, "device": "cpu"}
_OPS = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "mean": MPI.SUM}


class WorldError(ValueError):
    """The ranks disagree (on the model, the data, the batch size): raised on every rank with
    the same message, so that all of them stop and none waits for the others forever."""


def init(device: str = "cpu") -> None:
    """Join the MPI world (started by ``mpiexec``; a plain ``python`` is a world of one).

    With several ranks, an exception that nothing catches on any rank prints its traceback and
    aborts every rank (``MPI_Abort``): the others would otherwise wait in their next collective
    forever. ``device="cuda"`` gives each rank on a machine its own GPU (the rank within the
    machine), refused on every rank if the machine has fewer GPUs than ranks, and sets up NCCL
    for CuPy arrays when it is there.
    """
    if _world_size() > 1 and sys.excepthook is sys.__excepthook__:
        sys.excepthook = _abort_on_uncaught
    if device == "cuda" and _state["device"] != "cuda":
        _init_cuda()
    _state["initialized"] = True


def rank() -> int:
    """This process's number, 0 to world_size() − 1."""
    return _WORLD.Get_rank()


def world_size() -> int:
    """How many processes train together."""
    return _world_size()


def _world_size() -> int:
    return _WORLD.Get_size()


def is_main_process() -> bool:
    """Rank 0: the one that writes files, logs and draws the progress bar."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank has reached this call."""
    _WORLD.Barrier()


def abort(code: int = 1) -> None:
    """Stop every rank at once, with exit status ``code`` (``MPI_Abort``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    _WORLD.Abort(code)


def _abort_on_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    sys.stderr.write(f"[rank {rank()} of {world_size()}] ")
    traceback.print_exception(kind, value, tb)
    abort(1)


def device_backend() -> str:
    """How CuPy arrays travel: "nccl", or "mpi" (host staging)."""
    return "nccl" if _state["nccl"] is not None else "mpi"


def _array(x: Any) -> Any:
    """The array of a Tensor, or the array itself."""
    return getattr(x, "data", x) if not isinstance(x, np.ndarray) else x


def _check_contiguous(a: Any, what: str) -> None:
    if not a.flags.c_contiguous:
        raise ValueError(f"{what}: the array (shape {tuple(a.shape)}) must be C-contiguous")


# --- all-reduce -----------------------------------------------------------------------------
class Work:
    """A collective in flight (``torch.distributed``'s async work handle): ``wait()`` blocks
    until it is done and returns its array; ``is_completed()`` asks without blocking (and lets
    MPI make progress on it)."""

    def __init__(self, request: Any, array: Any, finish: Any = None):
        self.request, self.array, self._finish, self._done = request, array, finish, False

    def is_completed(self) -> bool:
        if not self._done and (self.request is None or self.request.Test()):
            self._complete()
        return self._done

    def wait(self) -> Any:
        if not self._done:
            if self.request is not None:
                self.request.Wait()
            self._complete()
        return self.array

    def _complete(self) -> None:
        if self._finish is not None:
            self._finish()
        self._done = True


def iall_reduce(x: Any, op: str = "sum") -> Work:
    """Start reducing ``x`` in place across the ranks; returns the :class:`Work` to wait on.

    NumPy: ``MPI_Iallreduce``, which returns at once. CuPy with NCCL: ``ncclAllReduce`` queued
    on the current stream. CuPy without NCCL: a copy to the host, then ``MPI_Iallreduce``; the
    result is copied back by ``wait()``.
    """
    if op not in _OPS:
        raise ValueError(f"unknown reduction {op!r}; one of {sorted(_OPS)}")
    a = _array(x)
    _check_contiguous(a, "all_reduce")
    scale = (lambda arr: arr.__itruediv__(world_size())) if op == "mean" else None
    if backend.device_of(a) == "cpu":
        request = _WORLD.Iallreduce(MPI.IN_PLACE, a, _OPS[op])
        return Work(request, a, None if scale is None else lambda: scale(a))
    if _state["nccl"] is not None:
        _nccl_all_reduce(a, op)
        stream = backend.cupy().cuda.get_current_stream()
        return Work(None, a, lambda: (stream.synchronize(), scale and scale(a)))
    host = backend.to_device(a, "cpu")  # host staging
    request = _WORLD.Iallreduce(MPI.IN_PLACE, host, _OPS[op])

    def copy_back() -> None:
        a[...] = backend.to_device(host, backend.device_of(a))
        if scale is not None:
            scale(a)

    return Work(request, a, copy_back)


def all_reduce(x: Any, op: str = "sum") -> Any:
    """Reduce ``x`` in place across the ranks ("sum", "mean", "max", "min"); returns the
    array. Every rank ends with the same values."""
    return iall_reduce(x, op).wait()


# --- broadcast and all-gather ---------------------------------------------------------------
def broadcast(x: Any, src: int = 0) -> Any:
    """Overwrite ``x`` on every rank with rank ``src``'s values, in place; returns the array."""
    a = _array(x)
    _check_contiguous(a, "broadcast")
    if backend.device_of(a) == "cpu":
        _WORLD.Bcast(a, root=src)
    elif _state["nccl"] is not None:
        _state["nccl"].bcast(a.data.ptr, a.size, _nccl_dtype(a.dtype), src,
                             backend.cupy().cuda.get_current_stream().ptr)
    else:
        host = backend.to_device(a, "cpu")
        _WORLD.Bcast(host, root=src)
        a[...] = backend.to_device(host, backend.device_of(a))
    return a


def all_gather(x: Any) -> Any:
    """Every rank's ``x`` (same shape and dtype on all), stacked along a new first axis:
    ``(world_size, *x.shape)``, on every rank, on ``x``'s device."""
    a = np.ascontiguousarray(_array(x)) if backend.device_of(_array(x)) == "cpu" else _array(x)
    out_shape = (world_size(), *a.shape)
    if backend.device_of(a) == "cpu":
        out = np.empty(out_shape, dtype=a.dtype)
        _WORLD.Allgather(a, out)
        return out
    xp = backend.array_module(a)
    if _state["nccl"] is not None:
        out = xp.empty(out_shape, dtype=a.dtype)
        _state["nccl"].allGather(xp.ascontiguousarray(a).data.ptr, out.data.ptr, a.size,
                                 _nccl_dtype(a.dtype),
                                 backend.cupy().cuda.get_current_stream().ptr)
        return out
    host = np.ascontiguousarray(backend.to_device(a, "cpu"))
    out = np.empty(out_shape, dtype=a.dtype)
    _WORLD.Allgather(host, out)
    return backend.to_device(out, backend.device_of(a))


def all_gather_object(obj: Any) -> list:
    """Every rank's picklable ``obj``, as a list indexed by rank (for small things: shapes,
    names, counts, metrics)."""
    return _WORLD.allgather(obj)


# --- GPUs: one per rank, NCCL when it is there --------------------------------------------------
def _init_cuda() -> None:
    """Pin this rank to the GPU numbered by its rank within the machine; start NCCL."""
    cp = backend.cupy()
    local = _WORLD.Split_type(MPI.COMM_TYPE_SHARED)
    local_rank, local_size = local.Get_rank(), local.Get_size()
    devices = cp.cuda.runtime.getDeviceCount()
    # every rank learns whether any machine is short of GPUs, so all refuse together
    short = _WORLD.allgather((local_size, devices) if local_size > devices else None)
    problems = [p for p in short if p is not None]
    if problems:
        ranks, gpus = problems[0]
        raise WorldError(f"{ranks} ranks on one machine but only {gpus} visible GPU(s): one GPU "
                         f"per rank; launch at most {gpus} ranks per machine (mpiexec -n)")
    cp.cuda.Device(local_rank).use()
    _state["device"] = "cuda"
    try:
        nccl = _nccl_module()
        found = bool(nccl.available) if hasattr(nccl, "available") else True
    except ImportError as exc:
        nccl, found, why = None, False, str(exc)
    else:
        why = "cupy.cuda.nccl.available is False"
    if not _WORLD.allreduce(found, op=MPI.LAND):  # NCCL on every rank, or on none
        why = why if not found else "another rank lacks it"
        sys.stderr.write(f"minigrad.distributed: rank {rank()}: NCCL not used ({why}); GPU "
                         "arrays go through MPI with host staging\n")
        return
    uid = nccl.get_unique_id() if rank() == 0 else None
    _state["nccl"] = nccl.NcclCommunicator(world_size(), _WORLD.bcast(uid, root=0), rank())


def _nccl_module() -> Any:
    return backend.nccl()  # only the backend imports CuPy


def _nccl_dtype(dtype: Any) -> int:
    nccl = _nccl_module()
    table = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
             "float16": nccl.NCCL_FLOAT16, "int64": nccl.NCCL_INT64, "int32": nccl.NCCL_INT32}
    if str(dtype) not in table:
        raise ValueError(f"NCCL collectives take {sorted(table)}, got {dtype}")
    return table[str(dtype)]


def _nccl_all_reduce(a: Any, op: str) -> None:
    nccl = _nccl_module()
    nccl_op = {"sum": nccl.NCCL_SUM, "mean": nccl.NCCL_SUM, "max": nccl.NCCL_MAX,
               "min": nccl.NCCL_MIN}[op]
    _state["nccl"].allReduce(a.data.ptr, a.data.ptr, a.size, _nccl_dtype(a.dtype), nccl_op,
                             backend.cupy().cuda.get_current_stream().ptr)
