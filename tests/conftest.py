import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# `python -m pytest` puts the working directory first on sys.path. Run from the repository root,
# that makes minigrad's kernels/ folder (installed as minigrad.kernels) the top-level module
# `kernels`, hiding the PyPI package of that name, which transformers (a test-only oracle)
# imports when it is installed: "cannot import name 'CUDAProperties' from 'kernels'".
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != ROOT]

# CI runs derandomized so that a green run stays green; locally each run explores new inputs.
settings.register_profile(
    "minigrad",
    deadline=None,
    max_examples=25,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("minigrad")


@pytest.fixture(scope="session")
def simulated_cuda_kernels() -> types.ModuleType:
    """minigrad.kernels.cuda with numba.cuda in simulator mode (for the rest of this process).

    The simulator must be switched on before numba.cuda is first imported in the process; no
    test module imports numba.cuda at import time, so this works alone and inside the whole
    suite. Skipped where numba.cuda cannot be imported at all; a failure, not a skip, where it
    was already imported for a real GPU: CI must never pass with the simulator tests silently
    skipped.
    """
    if "numba.cuda" in sys.modules and "numba.cuda.simulator_init" not in sys.modules:
        pytest.fail("numba.cuda was imported for a real GPU earlier in this process; run "
                    "the simulator tests (tests/test_kernels_cuda.py, "
                    "tests/test_masked_softmax.py) in a process of their own")
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    from numba.core import config

    config.reload_config()
    try:
        import minigrad.kernels.cuda as kc
    except ImportError as exc:
        pytest.skip(f"numba.cuda's simulator is not available: {exc}")
    return kc


@pytest.fixture
def watch_kernels(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str], None]], None]:
    """``watch_kernels(on_call)`` makes every implementation the kernel registry hands to the
    ops call ``on_call(name)`` first, ``name`` being "softmax forward", "softmax backward",
    "adamw_step"...: to record the kernels a computation reached, or (raising) to prove it
    reached none. Undone at the end of the test."""
    return lambda on_call: _watch(monkeypatch, on_call)


def _watch(monkeypatch: pytest.MonkeyPatch, on_call: Callable[[str], None]) -> None:
    from minigrad.kernels import registry
    from minigrad.kernels.registry import Kernel

    original = registry.kernel

    def wrap(name: str, fn: Callable) -> Callable:
        def called(*args: Any, **kwargs: Any) -> Any:
            on_call(name)
            return fn(*args, **kwargs)
        return called

    def watched(op: str, *arrays: Any) -> Any:
        found = original(op, *arrays)
        if isinstance(found, Kernel):
            return Kernel(wrap(f"{op} forward", found.forward),
                          wrap(f"{op} backward", found.backward))
        return None if found is None else wrap(op, found)

    monkeypatch.setattr(registry, "kernel", watched)
