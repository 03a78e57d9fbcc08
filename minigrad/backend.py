"""The array namespace (NumPy on the CPU, CuPy on a GPU) and the kernel switch.

Every op gets its array module with ``xp = array_module(x)`` (DeZero's ``get_array_module``), so one
code path serves both devices. This is the only file that decides between NumPy and CuPy, and the
only one that imports CuPy, lazily, so the CPU path works where CuPy is not installed.

The kernel backend decides how an op computes, one choice per device. On NumPy arrays:

* ``"numpy"``: every op is its NumPy composite, the reference the tests check against;
* ``"numba"``: the ops that have a fused Numba kernel (:mod:`minigrad.kernels.cpu`: softmax,
  LayerNorm, GELU, bias + GELU, attention, cross-entropy, the AdamW/SGD updates) call it.

On CuPy arrays:

* ``"cupy"``: every op is the same composite on CuPy (matmuls on cuBLAS), and the AdamW update
  one CuPy elementwise kernel (:func:`cupy_adamw_step`);
* ``"cuda"``: softmax, LayerNorm, attention and the AdamW update call minigrad's own CUDA
  kernels (:mod:`minigrad.kernels.cuda`, numba.cuda, on the CuPy arrays in place); the rest
  stays on CuPy.

Choose with :func:`set_backend` (``set_backend("numba")`` sets the CPU's, ``set_backend("cuda")``
the GPU's) or the ``MINIGRAD_BACKEND`` environment variable (``numpy``, ``cuda``, or one of each
with a comma: ``numpy,cupy``). The defaults are ``"numba"``, the faster CPU path on a BERT
training step (``benchmarks/bert_step.py``), unless Numba is missing or ``NUMBA_DISABLE_JIT=1``
turns its kernels into slow Python loops; and ``"cupy"``, the faster GPU path on a bert-base
training step (``benchmarks/gpu.py``: minigrad's CUDA kernels are faster one by one, but each
numba.cuda launch costs more host time than the CuPy operations it replaces, and a GPU step of
this engine is bound by the host's launches). Each op asks :func:`use_numba` or
:func:`use_cuda` about its arrays in one place; integer arrays and other float dtypes always
take the composite path. The kernels are imported on first use only (:func:`cpu_kernels`,
:func:`cuda_kernels`), so ``import minigrad`` waits for neither Numba nor numba.cuda.
"""

from __future__ import annotations

import importlib.util
import os
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special

Array = Any  # a numpy.ndarray or a cupy.ndarray

_cupy: types.ModuleType | None = None
_kernels: types.ModuleType | None = None
_cuda_kernels: types.ModuleType | None = None
_rng = np.random.default_rng()

CPU_BACKENDS = ("numpy", "numba")
GPU_BACKENDS = ("cupy", "cuda")
KERNEL_BACKENDS = CPU_BACKENDS + GPU_BACKENDS
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
    """Copy an array to ``device`` (a no-op when it is already there). A copy to the host reads
    the pending checks (:func:`check`) in the same transfer and raises the first that failed."""
    if device_of(a) == device:
        return a
    if device == "cpu":
        return _to_host_checked(a)
    return cupy().asarray(a)


# --- input checks that read device data ---------------------------------------------------------
_pending_checks: list[Callable[[], Exception]] = []  # the errors of the checks not yet read
_check_flags: Array | None = None  # (capacity,) bool on the GPU: slot i is check i's flag
MAX_PENDING_CHECKS = 256  # then the flags are read anyway: each pending check holds its arrays


def check(failed: Array, error: Callable[[], Exception]) -> None:
    """Raise ``error()`` if the 0-d boolean array ``failed`` is true.

    On the CPU the check runs at once. On a GPU, reading ``failed`` would cost a device→host
    transfer, and a wait for the GPU, on every call (every embedding's id range, every loss's
    targets). The flag stays on the device instead; the next copy to the host (``loss.item()``,
    ``Tensor.cpu()``, :func:`to_device`) carries every pending flag in the same transfer as its
    data and raises the first failure before it returns any number. Bad input still never
    reaches the host as a result: it fails at the next synchronisation, as PyTorch's device-side
    asserts do. A loop that never copies anything to the host still has its flags read once
    every ``MAX_PENDING_CHECKS`` checks, so that the pending checks' arrays do not pile up.
    """
    global _check_flags
    if device_of(failed) == "cpu":
        if bool(failed):
            raise error()
        return
    n = len(_pending_checks)
    if _check_flags is None or n == _check_flags.size:  # grow on the device, by doubling
        grown = cupy().zeros(max(16, 2 * n), dtype=bool)
        if n:
            grown[:n] = _check_flags[:n]
        _check_flags = grown
    _check_flags[n] = failed  # a copy on the device: no transfer
    _pending_checks.append(error)
    if len(_pending_checks) >= MAX_PENDING_CHECKS:
        _read_checks(None)


def _to_host_checked(a: Array) -> np.ndarray:
    """``a.get()``, with the pending checks' flags in the same copy: one transfer."""
    return _read_checks(a) if _pending_checks else a.get()


def _read_checks(a: Array | None) -> np.ndarray | None:
    """Copy the pending flags (and ``a``, if given) to the host in one transfer, raise the first
    failed check, and return ``a`` on the host.

    The flags and the data's bytes are put side by side in one device buffer by two copies on
    the device (``cupy.concatenate`` of many arrays would copy a table of pointers to the GPU)."""
    cp = cupy()
    errors = list(_pending_checks)
    _pending_checks.clear()
    n = len(errors)
    data = cp.ascontiguousarray(a) if a is not None else cp.empty(0, dtype=cp.uint8)
    blob = cp.empty(n + data.nbytes, dtype=cp.uint8)
    blob[:n] = _check_flags[:n].view(cp.uint8)
    blob[n:] = data.reshape(-1).view(cp.uint8)
    host = blob.get()
    for failed, error in zip(host[:n], errors, strict=True):
        if failed:
            raise error()
    if a is None:
        return None
    return host[n:].view(data.dtype).reshape(a.shape)  # (a view of the bytes copied)


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


def use_numba(*arrays: Any) -> bool:
    """True when the backend is "numba" and the arrays are NumPy arrays of one float dtype
    (float32 or float64), as the kernels take them. ``None`` entries (an absent bias) are skipped.

    CuPy arrays are not ``np.ndarray``: :func:`use_cuda` decides for them.
    """
    if _backends["cpu"] != "numba":
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


def use_cuda(*arrays: Any) -> bool:
    """True when the GPU backend is "cuda" and the arrays are CuPy arrays of one float dtype
    (float32 or float64), as minigrad's CUDA kernels take them. ``None`` entries are skipped."""
    if _backends["cuda"] != "cuda":
        return False
    present = [a for a in arrays if a is not None]
    if not present or not all(device_of(a) == "cuda" for a in present):
        return False
    dtypes = {a.dtype for a in present}
    return len(dtypes) == 1 and dtypes <= set(_KERNEL_DTYPES)


def cuda_kernels() -> types.ModuleType:
    """:mod:`minigrad.kernels.cuda` (numba.cuda with it), imported on first use, its outputs
    allocated from CuPy's memory pool like every other array of the engine."""
    global _cuda_kernels
    if _cuda_kernels is None:
        import minigrad.kernels.cuda as kernels

        kernels.set_allocator(lambda shape, dtype: cupy().empty(shape, dtype=dtype))
        _cuda_kernels = kernels
    return _cuda_kernels


_cupy_adamw: Any = None


def cupy_adamw_step(p: Array, g: Array, m: Array, v: Array, lr: float, beta1: float,
                    beta2: float, eps: float, weight_decay: float, step: int) -> None:
    """One AdamW update of the CuPy arrays p, m, v in place, as one CuPy elementwise kernel.

    The math of :class:`minigrad.optim.AdamW`, in its order: p·(1 - lr·λ), then the moments,
    then the bias-corrected step. Written as array expressions it is about ten kernel launches
    per parameter; a bert-base step has 200 parameters, and on a GPU those 2,000 launches cost
    more host time than the update costs the GPU. This is the ``"cupy"`` backend's form of the
    update: CuPy generates and compiles the one kernel from the expression below.
    """
    global _cupy_adamw
    cp = cupy()
    if _cupy_adamw is None:
        _cupy_adamw = cp.ElementwiseKernel(
            "T g, T decay, T beta1, T beta2, T eps, T step_size, T sqrt_bc2", "T p, T m, T v",
            """m = beta1 * m + (1 - beta1) * g;
               v = beta2 * v + (1 - beta2) * g * g;
               p = p * decay - step_size * m / (sqrt(v) / sqrt_bc2 + eps);""",
            "minigrad_adamw")
    t = p.dtype.type
    _cupy_adamw(g, t(1 - lr * weight_decay), t(beta1), t(beta2), t(eps),
                t(lr / (1 - beta1**step)), t((1 - beta2**step) ** 0.5), p, m, v)


def from_kernel(a: Any) -> Any:
    """A CUDA kernel's output (a numba device array over CuPy's memory) as a CuPy array: a view,
    no copy."""
    return cupy().asarray(a)
