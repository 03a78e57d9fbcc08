import os
import sys
from pathlib import Path

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
