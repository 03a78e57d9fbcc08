"""The array namespace: NumPy on the CPU, CuPy on a GPU.

Every op gets its array module with ``xp = array_module(x)`` (DeZero's ``get_array_module``), so one
code path serves both devices. This is the only file that decides between NumPy and CuPy, and the
only one that imports CuPy, lazily, so the CPU path works where CuPy is not installed.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import scipy.special

Array = Any  # a numpy.ndarray or a cupy.ndarray

_cupy: types.ModuleType | None = None
_rng = np.random.default_rng()


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
    else:
        np.add.at(target, index, values)


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
    return _rng.random(shape, dtype=np.float64).astype(dtype, copy=False)


def get_rng_state() -> dict:
    """The CPU generator's state, for checkpoints that resume exactly."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _rng.bit_generator.state = state
