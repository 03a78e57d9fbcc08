"""The array namespace (NumPy on the CPU, CuPy on a GPU), devices, and the kernel-backend switch.

Every op gets its array module with ``xp = array_module(x)`` (DeZero's ``get_array_module``), so one
code path serves both devices. This is the only file that decides between NumPy and CuPy, and,
beside the GPU kernels in :mod:`minigrad.kernels.cuda`, the only one that imports CuPy, lazily,
so the CPU path works where CuPy is not installed. A copy to the host (:func:`to_device`)
carries the GPU's pending input checks (:mod:`minigrad.kernels.cuda.checks`).

The kernel backend says how the ops compute, one choice per device: on NumPy arrays ``"numpy"``
(every op its NumPy composite, the reference the tests check against) or ``"numba"`` (the fused
Numba kernels of :mod:`minigrad.kernels.cpu`), on CuPy arrays ``"cupy"`` (the same composites on
CuPy, matmuls on cuBLAS) or ``"cuda"`` (minigrad's own CUDA kernels, :mod:`minigrad.kernels.cuda`).
Which op has which kernel under which backend is the kernel registry's table
(:mod:`minigrad.kernels.registry`); an op asks the registry, never this module, for its kernel.

Choose with :func:`set_backend` (``set_backend("numba")`` sets the CPU's, ``set_backend("cuda")``
the GPU's) or the ``MINIGRAD_BACKEND`` environment variable (``numpy``, ``cuda``, or one of each
with a comma: ``numpy,cupy``). The defaults are ``"numba"``, the faster CPU path on a BERT
training step (``benchmarks/bert_step.py``), unless Numba is missing or ``NUMBA_DISABLE_JIT=1``
turns its kernels into slow Python loops; and ``"cupy"``, the faster GPU path on a bert-base
training step (``benchmarks/gpu.py``: minigrad's CUDA kernels are faster one by one, but each
numba.cuda launch costs more host time than the CuPy operations it replaces, and a GPU step of
this engine is bound by the host's launches).
"""

from __future__ import annotations

import importlib.util
import os
import types
from typing import Any

import numpy as np
import scipy.special

from minigrad import dtypes

Array = Any  # a numpy.ndarray or a cupy.ndarray

_cupy: types.ModuleType | None = None
_rng = np.random.default_rng()

CPU_BACKENDS = ("numpy", "numba")
GPU_BACKENDS = ("cupy", "cuda")
KERNEL_BACKENDS = CPU_BACKENDS + GPU_BACKENDS


class DeviceError(RuntimeError):
    """A GPU was asked for where CuPy or the GPU itself is missing, or devices were mixed."""


def cupy() -> types.ModuleType:
    """Import CuPy on first use, and say what is missing when it cannot be used."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as cp
        except ImportError as exc:
            raise DeviceError(
                "device='cuda' needs CuPy, which is not installed. "
                "Install the GPU extra: pip install 'minigrad[gpu]' (cupy-cuda12x, numba-cuda)"
            ) from exc
        try:
            n = cp.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError when the driver finds no device
            raise DeviceError(
                f"device='cuda' needs an NVIDIA GPU: CuPy {cp.__version__} is installed "
                f"but the CUDA runtime found no device ({exc})"
            ) from exc
        if n == 0:
            raise DeviceError(
                f"device='cuda' needs an NVIDIA GPU: CuPy {cp.__version__} is installed "
                "but the CUDA runtime reports 0 devices"
            )
        _cupy = cp
    return _cupy


def normalize_device(device: str | None) -> str:
    """'cpu' or 'cuda' (``'cuda:0'`` is accepted as 'cuda'; minigrad uses one GPU)."""
    if device is None or device == "cpu":
        return "cpu"
    if device == "cuda" or (isinstance(device, str) and device.startswith("cuda:")):
        return "cuda"
    raise DeviceError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def xp_for(device: str) -> types.ModuleType:
    """The array module that holds arrays on ``device``."""
    return np if device == "cpu" else cupy()


def array_module(a: Array) -> types.ModuleType:
    """NumPy or CuPy, whichever owns ``a``. Never imports CuPy for a NumPy array."""
    if type(a).__module__.startswith("cupy"):
        return cupy()
    return np


def device_of(a: Array) -> str:
    return "cuda" if type(a).__module__.startswith("cupy") else "cpu"


def to_device(a: Array, device: str) -> Array:
    """Copy an array to ``device`` (a no-op when it is already there). A copy to the host reads
    the GPU's pending input checks in the same transfer and raises the first that failed
    (:mod:`minigrad.kernels.cuda.checks`)."""
    if device_of(a) == device:
        return a
    if hasattr(a, "dtype"):
        check_dtype_on(a.dtype, device)
    if device == "cpu":
        from minigrad.kernels.cuda import checks

        return checks.to_host(a)
    return cupy().asarray(a)


def check_dtype_on(dtype: Any, device: str) -> None:
    """Refuse bfloat16 on the GPU in one clear line: CuPy has no bfloat16 dtype."""
    if device == "cuda" and dtypes.bfloat16 is not None and np.dtype(dtype) == dtypes.bfloat16:
        raise DeviceError("bfloat16 tensors cannot live on 'cuda': CuPy has no bfloat16 dtype; "
                          "use float16 on the GPU (mg.autocast(dtype=mg.float16))")


def erf(x: Array) -> Array:
    """The error function, elementwise, on either device, in x's dtype (SciPy computes a
    half-precision x in float32 or float64)."""
    if device_of(x) == "cuda":
        import cupyx.scipy.special

        y = cupyx.scipy.special.erf(x)
    else:
        y = scipy.special.erf(x)
    return y if y.dtype == x.dtype else y.astype(x.dtype)


def scatter_add(target: Array, index: Any, values: Array) -> None:
    """``target[index] += values`` where repeated indices accumulate (``np.add.at``)."""
    if device_of(target) == "cuda":
        import cupyx

        cupyx.scatter_add(target, index, values)
    elif isinstance(index, np.ndarray) and index.dtype.kind in "iu" and index.size > 1:
        _scatter_add_rows(target, index, values)
    else:
        np.add.at(target, index, values)


def _scatter_add_rows(target: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """``np.add.at(target, index, values)`` for integer ids of rows, summed segment by segment.

    ``np.add.at`` adds one element at a time; an embedding's gradient (4096 ids of 256-wide
    rows, or 4096 copies of token type 0) is much faster as: sort the ids, sum each run of equal
    ids with one ``np.add.reduceat`` over the sorted rows, add each sum to its row once.
    """
    n = target.shape[0]
    ids = index.reshape(-1)
    ids = np.where(ids < 0, ids + n, ids)  # -1 and n-1 are one row
    rows = values.reshape((ids.size,) + target.shape[1:])
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    target[sorted_ids[starts]] += np.add.reduceat(rows[order], starts, axis=0)


def manual_seed(seed: int) -> None:
    """Seed every random draw minigrad makes (``randn``, dropout), as ``torch.manual_seed``."""
    global _rng
    _rng = np.random.default_rng(seed)
    if _cupy is not None:
        _cupy.random.seed(seed)


def random_normal(shape: tuple[int, ...], dtype: Any, device: str) -> Array:
    """Standard normal draws from minigrad's generator, on ``device``."""
    if device == "cuda":  # CuPy draws float32 or float64; a float16 draw is a float32 one cast
        wide = np.float64 if np.dtype(dtype) == np.float64 else np.float32
        return cupy().random.standard_normal(shape, dtype=wide).astype(dtype, copy=False)
    return _rng.standard_normal(shape).astype(dtype, copy=False)


def random_uniform(shape: tuple[int, ...], dtype: Any, device: str) -> Array:
    """Uniform draws in [0, 1) from minigrad's generator, on ``device``."""
    dtype = np.dtype(dtype)
    if dtypes.is_half(dtype):  # drawn as float32, rounded, and kept below 1 (rounding may reach it)
        below_one = np.float32(1.0 - float(dtypes.finfo(dtype).epsneg))
        wide = random_uniform(shape, np.float32, device)
        return array_module(wide).minimum(wide, below_one).astype(dtype)
    if device == "cuda":
        return cupy().random.random(shape, dtype=dtype)
    if dtype == np.float32:  # drawn as float32: faster than float64 and a cast
        return _rng.random(shape, dtype=np.float32)
    return _rng.random(shape, dtype=np.float64).astype(dtype, copy=False)


def get_rng_state() -> dict:
    """The CPU generator's state, for checkpoints that resume exactly."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _rng.bit_generator.state = state


# --- the kernel backends ----------------------------------------------------------------------
def _check_backend(name: Any, where: str) -> str:
    if name not in KERNEL_BACKENDS:
        raise ValueError(f"{where}: unknown kernel backend {name!r}; expected one of "
                         f"{', '.join(repr(b) for b in KERNEL_BACKENDS)}")
    return name


def _device_of_backend(name: str) -> str:
    return "cpu" if name in CPU_BACKENDS else "cuda"


def _default_backends() -> dict[str, str]:
    """{"cpu": ..., "cuda": ...}: ``MINIGRAD_BACKEND``'s choices where it makes them, else
    "numba" where its kernels can run compiled (else "numpy") and "cupy"."""
    jit_disabled = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
    numba_ok = not jit_disabled and importlib.util.find_spec("numba") is not None
    chosen = {"cpu": "numba" if numba_ok else "numpy", "cuda": "cupy"}
    where = "the environment variable MINIGRAD_BACKEND"
    for name in filter(None, os.environ.get("MINIGRAD_BACKEND", "").split(",")):
        name = _check_backend(name.strip(), where)
        chosen[_device_of_backend(name)] = name
    return chosen


_backends = _default_backends()


def set_backend(name: str) -> None:
    """Compute the ops with ``"numpy"`` composites or fused ``"numba"`` kernels on NumPy arrays,
    or with ``"cupy"`` composites or minigrad's ``"cuda"`` kernels on CuPy arrays.

    A name sets its own device's choice and leaves the other's. Takes effect for the next op; a
    backward pass follows the choice its forward made.
    """
    _check_backend(name, "set_backend")
    _backends[_device_of_backend(name)] = name


def get_backend(device: str = "cpu") -> str:
    """The kernel backend in use on ``device``: "numpy" or "numba" ("cpu"), "cupy" or "cuda"."""
    return _backends[normalize_device(device)]
