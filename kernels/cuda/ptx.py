"""Compile every kernel for a real GPU without one, and show what the compiler made of it.

    python -m minigrad.kernels.cuda.ptx [--arch 90] [--dtype float32 float64] [--json]
    python -m minigrad.kernels.cuda.ptx --dtype float16 bfloat16     # the half kernels

The simulator proves that the kernels compute the right numbers, but it runs them as Python: it
would accept code that Numba cannot compile for a GPU, and it cannot show registers or spills.
This tool runs each host wrapper on small NumPy inputs with numba.cuda's launches intercepted:
each launch compiles its kernel, for the argument types it was given, to PTX (NVIDIA's virtual
ISA) with libNVVM, and ``ptxas -v`` assembles that for the architecture (sm_90 = H100) and
reports registers per thread, spilled bytes and shared memory per block. It also counts float64
instructions in the float32 kernels (and the float16 and bfloat16 ones, which compute in
float32): one means a constant or scalar slipped in as a Python float and dragged the arithmetic
into float64, which runs 2 to 64 times slower on a GPU.

Needs the CUDA toolkit's libNVVM and libdevice (and ptxas for the resource report): a CUDA
install such as /usr/local/cuda, or ``CUDA_HOME``. It needs neither a GPU nor a driver, and it
must run without the simulator (``NUMBA_ENABLE_CUDASIM`` unset).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import types
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numba import cuda
from numba.core.typing.typeof import typeof


@dataclass
class KernelReport:
    kernel: str
    dtype: str
    signature: str
    f64_instructions: int  # float64 arithmetic, conversions and loads in the PTX
    registers: int | None = None  # per thread, from ptxas (None without ptxas)
    spill_bytes: int | None = None  # spill stores + loads per thread
    smem_bytes: int | None = None  # static shared memory per block


class _HostAsDevice(np.ndarray):
    """A NumPy array posing as a numba device array, so that the wrappers run unchanged."""

    __cuda_ndarray__ = True

    def is_c_contiguous(self) -> bool:
        return bool(self.flags.c_contiguous)

    def copy_to_host(self) -> np.ndarray:
        return np.array(self)


def _fake(a: Any) -> _HostAsDevice:
    return np.ascontiguousarray(a).view(_HostAsDevice)


@contextlib.contextmanager
def _intercepted_launches(cc: tuple[int, int], dtype_name: str,
                          reports: dict[tuple, KernelReport]) -> Iterator[None]:
    """Within the block, a kernel launch compiles the kernel for ``cc`` instead of running it."""
    from numba.cuda import dispatcher

    def launch(kernel: Any, config: Any) -> Any:
        def compile_for(*args: Any) -> None:
            argtypes = tuple(typeof(a) for a in args)
            key = (kernel.py_func.__qualname__, id(kernel), argtypes)
            if key not in reports:
                ptx, _ = cuda.compile_ptx(kernel.py_func, argtypes, cc=cc)
                reports[key] = _report(kernel.py_func.__name__, dtype_name, argtypes, ptx, cc)
        return compile_for

    saved = (cuda.to_device, cuda.device_array, dispatcher.CUDADispatcher.__getitem__,
             dispatcher.get_current_device)
    cuda.to_device = lambda a, *args, **kwargs: _fake(a)
    cuda.device_array = lambda shape, dtype=np.float64, **kwargs: _fake(np.zeros(shape, dtype))
    dispatcher.CUDADispatcher.__getitem__ = launch
    # a device function (block_sum) compiles for "the current device": say which one it is
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    try:
        yield
    finally:
        (cuda.to_device, cuda.device_array, dispatcher.CUDADispatcher.__getitem__,
         dispatcher.get_current_device) = saved


F64 = re.compile(r"^\s*[a-z]\w*(\.\w+)*\.f64\b", re.MULTILINE)  # an instruction on float64


def _report(name: str, dtype_name: str, argtypes: tuple, ptx: str,
            cc: tuple[int, int]) -> KernelReport:
    report = KernelReport(name, dtype_name, ", ".join(str(t) for t in argtypes),
                          len(F64.findall(ptx)))
    ptxas = _ptxas()
    if ptxas is None:
        return report
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        out = subprocess.run([ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", path, "-o", os.devnull],
                             capture_output=True, text=True, check=True).stderr
    report.registers = int(re.search(r"Used (\d+) registers", out).group(1))
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", out)
    report.spill_bytes = int(spills.group(1)) + int(spills.group(2))
    smem = re.search(r"(\d+) bytes smem", out)
    report.smem_bytes = int(smem.group(1)) if smem else 0
    return report


def _ptxas() -> str | None:
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and os.path.exists(os.path.join(home, "bin", "ptxas")):
            return os.path.join(home, "bin", "ptxas")
    return shutil.which("ptxas")


def _exercise(dtype: np.dtype) -> None:
    """Call every public wrapper once, at shapes that reach every kernel (BERT's head size)."""
    from minigrad.kernels import cuda as K

    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    a, b = rand(4, 3), rand(3, 5)
    for sgemm in K.SGEMM_VERSIONS.values():
        sgemm(a, b)
    x, mask = rand(2, 3, 8), np.ones((2, 8), dtype=np.int64)
    bool_mask = _fake(np.ones((2, 8), dtype=np.bool_))  # a CuPy bool mask reaches the kernel as is
    for forward, backward in ((K.softmax_forward, K.softmax_backward),
                              (K.softmax_forward_naive, K.softmax_backward_naive)):
        backward(forward(x, 0.5, mask), x, 0.5, mask)
    K.softmax_backward(K.softmax_forward(x, 0.5, bool_mask), x, 0.5, bool_mask)
    # attention's S = 128 (a warp per row, 4 columns a lane) and a row too long for one warp
    for length in (128, 1040):
        rows, keep = rand(2, 1, length), np.ones((2, length), dtype=np.int64)
        K.softmax_backward(K.softmax_forward(rows, 0.5, keep), rows, 0.5, keep)
    w, bias = rand(8), rand(8)
    for forward, backward in ((K.layernorm_forward, K.layernorm_backward),
                              (K.layernorm_forward_naive, K.layernorm_backward_naive)):
        _, mean, rstd = forward(x, w, bias)
        backward(x, x, w, mean, rstd)
    for hidden in (768, 1040):  # BERT-base's H (24 columns a lane), and a block per row
        rows, wh = rand(3, hidden), rand(hidden)
        _, mean, rstd = K.layernorm_forward(rows, wh, wh)
        K.layernorm_backward(rows, rows, wh, mean, rstd)
    q = rand(2, 2, 4, 64)
    # every mask combination: the key mask alone, then a bool mask, a bias, causal, all three
    attend, bias = np.ones((1, 2, 4, 4), dtype=np.bool_), rand(2, 1, 4, 4)
    for extra in ({}, {"attn_mask": attend}, {"attn_bias": bias}, {"is_causal": True},
                  {"attn_mask": attend, "attn_bias": bias, "is_causal": True}):
        for forward, backward in ((K.attention_forward, K.attention_backward),
                                  (K.attention_forward_naive, K.attention_backward_naive)):
            out, row_max, row_sum = forward(q, q, q, mask[:, :4], **extra)
            backward(q, q, q, q, out, row_max, row_sum, mask[:, :4], **extra)
    out, row_max, row_sum = K.attention_forward(q, q, q, bool_mask[:, :4])
    K.attention_backward(q, q, q, q, out, row_max, row_sum, bool_mask[:, :4])
    for step in (K.adamw_step, K.adamw_step_naive):
        step(w.copy(), w, np.zeros_like(w), np.zeros_like(w), 1e-3, 0.9, 0.999, 1e-8, 0.01, 1)


def _exercise_half(dtype: np.dtype) -> None:
    """Call every wrapper that takes float16 or bfloat16 (:mod:`.precision`) once, so that
    every kernel compiles: softmax and LayerNorm forward and backward (a warp per row, a block
    per row, naive; LayerNorm with half and with float32 weights), and the attention forward
    without masks and with all of them."""
    from minigrad.kernels import cuda as K

    rng = np.random.default_rng(0)

    def rand(*shape: int, of: Any = dtype) -> np.ndarray:
        return rng.standard_normal(shape).astype(of)

    for length in (128, 1040):
        rows, keep = rand(2, 1, length), np.ones((2, length), dtype=np.int64)
        for forward, backward in ((K.softmax_forward, K.softmax_backward),
                                  (K.softmax_forward_naive, K.softmax_backward_naive)):
            backward(forward(rows, 0.5, keep), rows, 0.5, keep)
    for hidden, weights in ((768, dtype), (1040, np.float32)):
        rows, w = rand(3, hidden), rand(hidden, of=weights)
        for forward, backward in ((K.layernorm_forward, K.layernorm_backward),
                                  (K.layernorm_forward_naive, K.layernorm_backward_naive)):
            _, mean, rstd = forward(rows, w, w)
            backward(rows, rows, w, mean, rstd)
    q, mask = rand(2, 2, 4, 64), np.ones((2, 4), dtype=np.int64)
    attend, bias = np.ones((1, 2, 4, 4), dtype=np.bool_), rand(2, 1, 4, 4)
    for extra in ({}, {"attn_mask": attend, "attn_bias": bias, "is_causal": True}):
        for forward in (K.attention_forward, K.attention_forward_naive):
            forward(q, q, q, mask, **extra)


HALF = ("float16", "bfloat16")


def compile_all(cc: tuple[int, int] = (9, 0),
                dtypes: tuple[str, ...] = ("float32", "float64")) -> list[KernelReport]:
    """Every kernel compiled for compute capability ``cc``, one report per (kernel, signature)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        raise RuntimeError("minigrad.kernels.cuda.ptx compiles for a real GPU: unset "
                           "NUMBA_ENABLE_CUDASIM (the simulator compiles nothing)")
    reports: dict[tuple, KernelReport] = {}
    for name in dtypes:
        with _intercepted_launches(cc, name, reports):
            if name in HALF:
                import ml_dtypes  # NumPy's bfloat16

                _exercise_half(np.dtype(ml_dtypes.bfloat16 if name == "bfloat16" else name))
            else:
                _exercise(np.dtype(name))
    return list(reports.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="90", help="compute capability, e.g. 80, 90 (H100)")
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    parser.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    args = parser.parse_args(argv)
    cc = (int(args.arch[:-1]), int(args.arch[-1]))
    reports = compile_all(cc, tuple(args.dtype))
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=1))
        return
    print(f"{'kernel':42} {'dtype':8} {'regs':>5} {'spill B':>8} {'smem B':>7} {'f64 ops':>8}")
    for r in reports:
        print(f"{r.kernel:42} {r.dtype:8} {r.registers!s:>5} {r.spill_bytes!s:>8} "
              f"{r.smem_bytes!s:>7} {r.f64_instructions:>8}")


if __name__ == "__main__":
    main()
