"""The array namespace (NumPy on the CPU, CuPy on a GPU) and the CPU kernel switch.

Every op gets its array module with ``xp = array_module(x)`` (DeZero's ``get_array_module``), so one
code path serves both devices. This is the only file that decides between NumPy and CuPy, and the
only one that imports CuPy, lazily, so the CPU path works where CuPy is not installed.

The kernel backend decides how an op computes on NumPy arrays:

* ``"numpy"``: every op is its NumPy composite, the reference the tests check against;
* ``"numba"``: the ops that have a fused Numba kernel (:mod:`minigrad.kernels.cpu`: softmax,
  LayerNorm, GELU, bias + GELU, attention, cross-entropy, the AdamW/SGD updates) call it.

Choose it with :func:`set_backend` or the ``MINIGRAD_BACKEND`` environment variable. The default
is ``"numba"``, the faster of the two on a BERT training step (``benchmarks/bert_step.py``),
unless Numba is missing or ``NUMBA_DISABLE_JIT=1`` turns its kernels into slow Python loops.
Each op asks :func:`use_numba` about its arrays in one place; CuPy arrays, integer arrays and
other float dtypes always take the composite path. The kernels are imported on first use only
(:func:`cpu_kernels`), so ``import minigrad`` does not wait for Numba.
"""

from __future__ import annotations

import importlib.util
import os
import types
from typing import Any

import numpy as np
import scipy.special

Array = Any  # a numpy.ndarray or a cupy.ndarray

_cupy: types.ModuleType | None = None
_kernels: types.ModuleType | None = None
_rng = np.random.default_rng()

KERNEL_BACKENDS = ("numpy", "numba")
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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
    """Copy an array to ``device`` (a no-op when it is already there)."""
    if device_of(a) == device:
        return a
    if device == "cpu":
        return a.get()
    return cupy().asarray(a)


def erf(x: Array) -> Array:
    """The error function, elementwise, on either device."""
    if device_of(x) == "cuda":
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    return scipy.special.erf(x)


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
    if device == "cuda":
        return cupy().random.standard_normal(shape, dtype=dtype)
    return _rng.standard_normal(shape).astype(dtype, copy=False)


def random_uniform(shape: tuple[int, ...], dtype: Any, device: str) -> Array:
    """Uniform draws in [0, 1) from minigrad's generator, on ``device``."""
    if device == "cuda":
        return cupy().random.random(shape, dtype=dtype)
    if np.dtype(dtype) == np.float32:  # drawn as float32: faster than float64 and a cast
        return _rng.random(shape, dtype=np.float32)
    return _rng.random(shape, dtype=np.float64).astype(dtype, copy=False)


def get_rng_state() -> dict:
    """The CPU generator's state, for checkpoints that resume exactly."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _rng.bit_generator.state = state


# --- the CPU kernel backend ------------------------------------------------------------------
def _check_backend(name: Any, where: str) -> str:
    if name not in KERNEL_BACKENDS:
        raise ValueError(f"{where}: unknown kernel backend {name!r}; expected one of "
                         f"{', '.join(repr(b) for b in KERNEL_BACKENDS)}")
    return name


def _default_backend() -> str:
    """``MINIGRAD_BACKEND`` if set, else "numba" where its kernels can run compiled."""
    chosen = os.environ.get("MINIGRAD_BACKEND")
    if chosen:
        return _check_backend(chosen, "the environment variable MINIGRAD_BACKEND")
    jit_disabled = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
    if jit_disabled or importlib.util.find_spec("numba") is None:
        return "numpy"
    return "numba"


_backend = _default_backend()


def set_backend(name: str) -> None:
    """Compute the ops on NumPy arrays with ``"numpy"`` composites or fused ``"numba"`` kernels.

    Takes effect for the next op; a backward pass follows the choice its forward made.
    """
    global _backend
    _backend = _check_backend(name, "set_backend")


def get_backend() -> str:
    """The kernel backend in use: "numpy" or "numba"."""
    return _backend


def use_numba(*arrays: Any) -> bool:
    """True when the backend is "numba" and the arrays are NumPy arrays of one float dtype
    (float32 or float64), as the kernels take them. ``None`` entries (an absent bias) are skipped.

    CuPy arrays are not ``np.ndarray``, so they always take the NumPy/CuPy composite path.
    """
    if _backend != "numba":
        return False
    present = [a for a in arrays if a is not None]
    if not all(isinstance(a, np.ndarray) for a in present):
        return False
    dtypes = {a.dtype for a in present}
    return len(dtypes) == 1 and dtypes <= set(_KERNEL_DTYPES)


def cpu_kernels() -> types.ModuleType:
    """:mod:`minigrad.kernels.cpu`, imported (and Numba with it) on first use."""
    global _kernels
    if _kernels is None:
        import minigrad.kernels.cpu as kernels

        _kernels = kernels
    return _kernels
