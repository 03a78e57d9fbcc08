"""What every CUDA kernel shares: arrays on and off the device, launch arithmetic, block sums.

**Arrays in, arrays out.** A host wrapper (``softmax_forward``, ``sgemm_v4``...) accepts

* NumPy arrays: copied to the device, and the results copied back as NumPy arrays (this is how
  the tests drive the kernels);
* numba device arrays, or anything with ``__cuda_array_interface__`` (CuPy arrays): used in
  place, without a copy; the results are numba device arrays, which ``cupy.asarray(out)`` wraps
  without a copy.

The kind of the main input (x, a, q, p) decides the kind of the outputs. Outputs are allocated
by numba (``cuda.device_array``: a cudaMalloc per call) unless :func:`set_allocator` names
another allocator, such as CuPy's memory pool (``cupy.empty``), which the engine and the GPU
benchmark use.

**Streams.** The kernels launch on the legacy default stream, CuPy's default too, so work queued
by either runs in order. A CuPy array that says it lives on that stream (or on none) is used
without synchronising; one from another stream makes numba wait for that stream first.

**Dtypes.** Every kernel runs in float32 (the fast one) and float64 (the checking one); softmax,
LayerNorm and the attention forward also in float16 and bfloat16, stored in 16 bits and computed
in float32 (:mod:`.precision`, whose ``Precision`` their factories take instead of a dtype). A
kernel that allocates shared memory needs its dtype when it compiles, so it is built by a
factory (``functools.cache``, one kernel per dtype and tile shape) whose arguments are closure
constants: Numba freezes them into the machine code, like C++ template parameters. Scalars are
passed as ``dtype.type(value)``: a Python float would be typed float64 and drag float32
arithmetic into float64.

**The simulator.** With ``NUMBA_ENABLE_CUDASIM=1`` (set before numba.cuda is first imported),
numba.cuda runs every kernel on the CPU, one Python thread per CUDA thread, shared memory and
``syncthreads`` included: that is how CI proves the kernels correct without a GPU.

**Reductions.** A block that owns a row sums it with :func:`block_sum`, a tree in shared memory
(2 + log₂T ``syncthreads``). A warp that owns a row sums it with :func:`warp_sum`, a butterfly of
five register exchanges between lanes (``shfl_xor_sync``: no shared memory, no barrier). The
simulator has no warp shuffles, so under it :func:`_exchange` swaps the lanes' values through
shared memory instead, with the same butterfly and so the same additions in the same order; the
shuffle itself is checked by the GPU tests and compiled for sm_90 by :mod:`.ptx` on every run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import cuda

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MAX_THREADS = 1024  # threads per block on every NVIDIA GPU since Fermi
WARP = 32
FULL_MASK = 0xFFFFFFFF  # every lane of the warp takes part in a shuffle
WARPS_PER_BLOCK = 4  # rows a block of the warp-per-row kernels owns ...
WARP_ROWS_THREADS = WARPS_PER_BLOCK * WARP  # ... in 128 threads
MAX_COLS_PER_LANE = 32  # a warp keeps a row of up to 32·32 = 1024 elements in registers
SIMULATED = cuda.jit.__module__.startswith("numba.cuda.simulator")  # NUMBA_ENABLE_CUDASIM=1
LEGACY_DEFAULT_STREAM = 1  # the CUDA array interface's "stream" value for the legacy stream

# Numba 0.68's built-in CUDA target fails to type the builtins ``min`` and ``max`` (a "Signature
# mismatch" inside Numba), so the kernels spell them as comparisons.


_allocator: Callable[[tuple[int, ...], np.dtype], Any] | None = None


def set_allocator(allocate: Callable[[tuple[int, ...], np.dtype], Any] | None) -> None:
    """Allocate the kernels' outputs with ``allocate(shape, dtype)``, which returns any array
    with ``__cuda_array_interface__`` (``cupy.empty``: CuPy's pool, no cudaMalloc per call), or
    with numba's ``cuda.device_array`` when None."""
    global _allocator
    _allocator = allocate


def is_host(a: Any) -> bool:
    """True for a NumPy array (one not posing as a device array), whose results go back to the
    host."""
    return isinstance(a, np.ndarray) and not getattr(a, "__cuda_ndarray__", False)


def to_device(a: Any, name: str) -> Any:
    """``a`` as a numba device array: NumPy copied in (an ``ml_dtypes.bfloat16`` array as its
    uint16 bit patterns: :mod:`.precision`), device arrays (numba, CuPy) as they are."""
    if is_host(a):
        a = np.ascontiguousarray(a)
        return cuda.to_device(a.view(np.uint16) if a.dtype.name == "bfloat16" else a)
    if getattr(a, "__cuda_ndarray__", False):  # a numba device array (or the simulator's)
        return a
    if hasattr(a, "__cuda_array_interface__"):  # CuPy, PyTorch CUDA...: a view, no copy
        stream = a.__cuda_array_interface__.get("stream")
        return cuda.as_cuda_array(a, sync=stream not in (None, LEGACY_DEFAULT_STREAM))
    raise TypeError(f"{name}: expected a NumPy array or a CUDA device array "
                    f"(__cuda_array_interface__), got {type(a).__name__}")


def to_host(a: Any, host: bool, like: Any = None) -> Any:
    """The result as a NumPy array when the inputs came from the host, else the device array.
    The bit patterns of a bfloat16 input ``like`` (an ``ml_dtypes.bfloat16`` array, sent as
    uint16) come back in its dtype."""
    if not host:
        return a
    out = a.copy_to_host()
    return out.view(like.dtype) if like is not None and like.dtype.name == "bfloat16" else out


def empty(shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialised device array, from the allocator of :func:`set_allocator`."""
    if _allocator is None:
        return cuda.device_array(shape, dtype=dtype)
    return cuda.as_cuda_array(_allocator(shape, np.dtype(dtype)), sync=False)


@functools.lru_cache(maxsize=16)
def _all_kept(batch: int, keys: int) -> Any:
    """A cached (B, S) mask of ones on the device: no copy from the host per call."""
    return cuda.to_device(np.ones((batch, keys), dtype=np.uint8))


def check_float(name: str, **arrays: Any) -> np.dtype:
    """The common float32/float64 dtype of ``arrays``; a TypeError naming each one otherwise."""
    dtypes = {k: np.dtype(a.dtype) for k, a in arrays.items()}
    first = next(iter(dtypes.values()))
    if first not in FLOAT_DTYPES or any(d != first for d in dtypes.values()):
        listed = ", ".join(f"{k} {d}" for k, d in dtypes.items())
        raise TypeError(f"{name}: expected float32 or float64 arrays of one dtype, got {listed}")
    return first


def check_shape(name: str, what: str, a: Any, shape: tuple[int, ...]) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name}: {what} has shape {tuple(a.shape)}, expected {tuple(shape)}")


def check_contiguous(name: str, what: str, a: Any) -> None:
    """Kernels that reshape (rows, flat vectors) need C-contiguous device arrays."""
    if not a.is_c_contiguous():
        raise ValueError(f"{name}: {what} of shape {tuple(a.shape)} must be C-contiguous "
                         f"(strides {tuple(a.strides)}); pass a contiguous copy")


def key_mask(name: str, mask: Any, batch: int, keys: int) -> Any:
    """The (B, S) keep-mask (1 = attend, 0 = padding) on the device; all ones when None."""
    if mask is None:
        return _all_kept(batch, keys)
    if tuple(mask.shape) != (batch, keys):
        raise ValueError(f"{name}: mask has shape {tuple(mask.shape)}, expected (B, S) = "
                         f"{(batch, keys)}: one row of keys per batch element")
    if is_host(mask):
        return cuda.to_device((mask != 0).astype(np.uint8))
    return to_device(mask, name)


def cdiv(n: int, d: int) -> int:
    """⌈n / d⌉: how many tiles of d cover n."""
    return -(-n // d)


def cols_per_lane(n: int) -> int:
    """How many elements of a row of n each of a warp's 32 lanes holds: ⌈n/32⌉."""
    return cdiv(n, WARP)


def row_threads(n: int) -> int:
    """Threads for a block that owns one row of n: a power of two (the tree sums need one),
    at least a warp, at most 1024, and no more than the row has elements."""
    t = WARP
    while t < n and t < MAX_THREADS:
        t *= 2
    return t


@cuda.jit(device=True)
def block_sum(buf: Any, value: Any) -> Any:
    """Σ of ``value`` over the block's threads, returned to every thread.

    A tree in shared memory ``buf`` (≥ blockDim.x slots; blockDim.x a power of two): log₂T
    rounds, each halving the number of live partial sums; 2 + log₂T ``syncthreads`` in all.
    The order of the additions is fixed, so the result is the same on every run.
    """
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        cuda.syncthreads()
        stride //= 2
    total = buf[0]
    cuda.syncthreads()  # every thread has read buf[0] before anyone writes buf again
    return total


@cuda.jit(device=True)
def block_max(buf: Any, value: Any) -> Any:
    """max of ``value`` over the block's threads, returned to every thread (as block_sum)."""
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride and buf[t + stride] > buf[t]:
            buf[t] = buf[t + stride]
        cuda.syncthreads()
        stride //= 2
    total = buf[0]
    cuda.syncthreads()
    return total


if SIMULATED:
    @cuda.jit(device=True)
    def _exchange(buf: Any, value: Any, lane_mask: int) -> Any:
        """The value of lane (lane ^ lane_mask) of this warp, through shared memory ``buf``
        (≥ blockDim.x slots). Every thread of the block must call it: it has two barriers."""
        t = cuda.threadIdx.x
        buf[t] = value
        cuda.syncthreads()
        other = buf[t ^ lane_mask]  # t ^ m stays in t's warp for m < 32
        cuda.syncthreads()
        return other
else:
    @cuda.jit(device=True)
    def _exchange(buf: Any, value: Any, lane_mask: int) -> Any:
        """The value of lane (lane ^ lane_mask) of this warp: one shuffle, register to register.
        ``buf`` is unused here (the simulator needs it). Every lane of the warp must call it."""
        return cuda.shfl_xor_sync(FULL_MASK, value, lane_mask)


@cuda.jit(device=True)
def warp_sum(buf: Any, value: Any) -> Any:
    """Σ of ``value`` over the 32 lanes of the warp, returned to every lane.

    A butterfly: in round m = 16, 8, 4, 2, 1 each lane adds the value of lane ``lane ^ m``.
    After five rounds every lane holds the whole sum, and the same one in every lane (a + b is
    b + a in floating point too). ``buf`` is shared scratch for the simulator (:func:`_exchange`).
    """
    lane_mask = WARP // 2
    while lane_mask > 0:
        value += _exchange(buf, value, lane_mask)
        lane_mask //= 2
    return value


@cuda.jit(device=True)
def warp_max(buf: Any, value: Any) -> Any:
    """max of ``value`` over the 32 lanes of the warp, returned to every lane (as warp_sum)."""
    lane_mask = WARP // 2
    while lane_mask > 0:
        other = _exchange(buf, value, lane_mask)
        if other > value:
            value = other
        lane_mask //= 2
    return value
