"""Input checks that wait on the GPU: the flags stay on the device until the next copy to the host.

An op checks its inputs' data (every embedding's id range, every loss's targets) by a 0-d
boolean array ``failed`` and a function ``error`` that builds the exception. On the CPU the op
reads the flag at once (:func:`minigrad.ops.common.check`). On a GPU, reading it would cost a
device→host transfer, and a wait for the GPU, on every call, so the kernel registry's "check"
for a CuPy array is :func:`defer`: the flag is copied into a slot of a flag array on the device
(no transfer), and the next copy to the host (``loss.item()``, ``Tensor.cpu()``,
:func:`minigrad.backend.to_device`, all through :func:`to_host`) carries every pending flag in
the same transfer as its data and raises the first failure before it returns any number. Bad
input still never reaches the host as a result: it fails at the next synchronisation, as
PyTorch's device-side asserts do. A loop that never copies anything to the host still has its
flags read once every ``MAX_PENDING_CHECKS`` checks, so that the pending checks' arrays do not
pile up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cupy as cp
import numpy as np

_pending: list[Callable[[], Exception]] = []  # the errors of the checks not yet read
_flags: Any = None  # (capacity,) bool on the GPU: slot i is check i's flag
MAX_PENDING_CHECKS = 256  # then the flags are read anyway: each pending check holds its arrays


def defer(failed: Any, error: Callable[[], Exception]) -> None:
    """Raise ``error()`` at the next copy to the host if the 0-d CuPy boolean ``failed`` is
    true (the registry's "check" on a GPU)."""
    global _flags
    n = len(_pending)
    if _flags is None or n == _flags.size:  # grow on the device, by doubling
        grown = cp.zeros(max(16, 2 * n), dtype=bool)
        if n:
            grown[:n] = _flags[:n]
        _flags = grown
    _flags[n] = failed  # a copy on the device: no transfer
    _pending.append(error)
    if len(_pending) >= MAX_PENDING_CHECKS:
        _read(None)


def to_host(a: Any) -> np.ndarray:
    """``a.get()``, with the pending checks' flags in the same copy: one transfer."""
    return _read(a) if _pending else a.get()


def _read(a: Any) -> np.ndarray | None:
    """Copy the pending flags (and ``a``, if given) to the host in one transfer, raise the first
    failed check, and return ``a`` on the host.

    The flags and the data's bytes are put side by side in one device buffer by two copies on
    the device (``cupy.concatenate`` of many arrays would copy a table of pointers to the GPU)."""
    errors = list(_pending)
    _pending.clear()
    n = len(errors)
    data = cp.ascontiguousarray(a) if a is not None else cp.empty(0, dtype=cp.uint8)
    blob = cp.empty(n + data.nbytes, dtype=cp.uint8)
    blob[:n] = _flags[:n].view(cp.uint8)
    blob[n:] = data.reshape(-1).view(cp.uint8)
    host = blob.get()
    for failed, error in zip(host[:n], errors, strict=True):
        if failed:
            raise error()
    if a is None:
        return None
    return host[n:].view(data.dtype).reshape(a.shape)  # (a view of the bytes copied)
