"""Make ``minigrad.kernels`` importable from a source tree that was not ``pip install``-ed.

kernels/ is installed as ``minigrad.kernels`` (pyproject's ``package-dir``), and the ops ask the
kernel registry (:mod:`minigrad.kernels.registry`) for their kernels. Run from a checkout with
``PYTHONPATH=.`` instead (as the GPU benchmarks are, on a machine where the checkout was only
copied), no installed package maps that name: this module, imported first by ``minigrad``,
loads kernels/ from beside the package under it, as an install would.
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("minigrad.kernels") is None:
    _folder = Path(__file__).resolve().parent.parent / "kernels"
    _spec = importlib.util.spec_from_file_location(
        "minigrad.kernels", _folder / "__init__.py", submodule_search_locations=[str(_folder)])
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["minigrad.kernels"] = _module
    _spec.loader.exec_module(_module)
    sys.modules["minigrad"].kernels = _module
