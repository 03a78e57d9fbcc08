"""Which tile configuration of SGEMM v5 is fastest on this GPU? v4, v5 under several
configurations, and cuBLAS, timed at two shapes.

    PYTHONPATH=. python benchmarks/gpu_sgemm_sweep.py --out DIR
    PYTHONPATH=. python benchmarks/gpu_sgemm_sweep.py --list                 # the configurations
    PYTHONPATH=. python benchmarks/gpu_sgemm_sweep.py --configs 128x128x8/8x8/u2 64x64x8/4x4/u2 \\
        --shapes 4096x4096x4096

A configuration of v5 is written ``BMxBNxBK/TMxTN/uU``: the block's BM × BN tile of C, the
BK-wide slice of K per shared-memory stage, each thread's TM × TN patch of C, and U outer
products unrolled together (:class:`minigrad.kernels.cuda.sgemm.V5Tile`); each is built through
v5's factory. The reference is cuBLAS through ``cupy.matmul`` in float32 with TF32 off (CuPy's
default: ``CUPY_TF32`` is set to 0 before CuPy loads, so cuBLAS computes in full fp32, as the
kernels do).

For each shape (default 4096×4096×4096 and BERT-base's FFN, 4096×3072×768):

* time: the median of device-event timings after a warm-up, taken by ``benchmarks/gpu.py``'s
  ``DeviceTimer`` (a few cuBLAS matmuls queued ahead of each repetition keep the GPU busy while
  Python queues the timed calls, so the events time the GPU, not the launches);
* TFLOP/s (2·M·N·K) and % of cuBLAS at the same shape;
* the largest error against cuBLAS's product, relative to its largest element, and whether it
  is within the float32 tolerance of ``tests/test_gpu.py`` (twice, as both sides round). It can
  be exactly 0: a kernel that sums each element of C by FMAs in the order of k rounds as
  cuBLAS's float32 kernel did at these shapes on an H100 (v4 and v5 matched it bit for bit);
* registers per thread, local memory per thread (non-zero means spills), shared memory per
  block, threads per block, and how many blocks fit on an SM by registers and shared memory.

A configuration that fails (too many registers or too much shared memory for a launch, a tile
the threads cannot split) is reported with its error and skipped; the others still run. An
illegal memory access, though, poisons the CUDA context, and what follows it fails too.

Needs an NVIDIA GPU, CuPy and numba-cuda. Without them it prints
"benchmarks/gpu_sgemm_sweep.py: no GPU found: <why>" and exits with status 1.
Writes ``sgemm_sweep_<device>_<date>.json`` and ``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import platform
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# gpu.py sets CUPY_TF32=0 when it loads, before anything imports CuPy; it imports nothing heavy
from gpu import RESULTS, DeviceTimer, device_info, find_gpu, load_kernels

NAME = "benchmarks/gpu_sgemm_sweep.py"
SHAPES = ("4096x4096x4096", "4096x3072x768")  # M×N×K: square, and BERT-base's FFN up-projection
# (BM, BN, BK, TM, TN, unroll). Registers per thread from ptxas for sm_90 (python -m
# minigrad.kernels.cuda.ptx) in brackets: at most 128 lets two blocks of 256 threads share an SM.
CONFIGS = (
    "128x128x8/8x8/u2",  # the default [123]
    "128x128x8/8x8/u1",  # the inner loop not unrolled [120]
    "128x128x8/8x8/u4",  # 4 at a time: too big for LLVM's budget, stays a loop [120]
    "128x128x4/8x8/u2",  # half the slice: half the shared memory, twice the syncs [128]
    "128x128x16/8x8/u2",  # twice the slice: fewer syncs, but one block per SM [155]
    "128x128x16/8x8/u4",  # [126]
    "128x64x8/8x4/u2",  # 256 threads of 8×4: more blocks, fewer FMAs per shared load [76]
    "64x128x8/4x8/u2",  # [75]
    "128x64x8/8x8/u2",  # 128 threads [145]
    "64x64x8/8x8/u2",  # 64 threads, many blocks [155]
    "64x64x8/4x4/u2",  # 256 threads of 4×4 [48]
    "128x256x8/8x16/u1",  # 8×16 per thread: 24 shared loads per 128 FMAs, one block per SM [174]
    "256x128x8/16x8/u1",  # [174]
)
SPEC = re.compile(r"^(\d+)x(\d+)x(\d+)/(\d+)x(\d+)/u(\d+)$")
MAX_REGISTERS, MAX_SHARED, MAX_THREADS_PER_SM = 65536, 228 * 1024, 2048  # per SM, sm_80/sm_90


def parse_tile(spec: str, tile_class: Any) -> Any:
    """``"128x128x8/8x8/u2"`` as ``tile_class(bm, bn, bk, tm, tn, unroll)``."""
    match = SPEC.match(spec)
    if match is None:
        raise ValueError(f"{spec!r} is not a configuration BMxBNxBK/TMxTN/uU "
                         "(e.g. 128x128x8/8x8/u2)")
    return tile_class(*(int(g) for g in match.groups()))


def parse_shape(spec: str) -> tuple[int, int, int]:
    match = re.match(r"^(\d+)x(\d+)x(\d+)$", spec)
    if match is None:
        raise ValueError(f"{spec!r} is not a shape MxNxK (e.g. 4096x3072x768)")
    m, n, k = (int(g) for g in match.groups())
    return m, n, k


@dataclass
class Row:
    shape: str  # MxNxK
    impl: str  # "cuBLAS", "v4", "v5"
    config: str  # v5's tile, "" for the others
    ms: float | None = None  # device time per call, median
    tflops: float | None = None
    percent_of_cublas: float | None = None
    max_rel_error: float | None = None  # max |C - C_cuBLAS| / max |C_cuBLAS|
    within_tolerance: bool | None = None
    threads: int | None = None
    registers: int | None = None  # per thread
    local_bytes: int | None = None  # per thread: spills (0 when none)
    smem_bytes: int | None = None  # static shared memory per block
    blocks_per_sm: int | None = None  # by registers, shared memory and threads
    reps: int = 0
    calls_per_rep: int = 0
    error: str = ""  # why it did not run


def resources(kernel: Any, threads: int) -> dict[str, int | None]:
    """Registers, local and shared memory of a compiled numba kernel, and blocks per SM."""
    def one(value: Any) -> int:  # numba.cuda answers {signature: value} for a generic kernel
        if isinstance(value, dict):
            (value,) = value.values()
        return int(value)

    try:
        regs = one(kernel.get_regs_per_thread())
        local = one(kernel.get_local_mem_per_thread())
        smem = one(kernel.get_shared_mem_per_block())
    except Exception:  # an older numba.cuda, or more than one specialisation
        return {"registers": None, "local_bytes": None, "smem_bytes": None,
                "blocks_per_sm": None}
    warps = math.ceil(threads / 32)
    per_warp = math.ceil(regs * 32 / 256) * 256  # registers are allocated per warp, by 256
    blocks = min(MAX_REGISTERS // (warps * per_warp), MAX_THREADS_PER_SM // threads, 32,
                 MAX_SHARED // smem if smem else 32)
    return {"registers": regs, "local_bytes": local, "smem_bytes": smem, "blocks_per_sm": blocks}


def run_shape(cp: Any, timer: DeviceTimer, sg: Any, shape: tuple[int, int, int],
              tiles: list[tuple[str, Any]], with_v4: bool, budget_s: float) -> list[Row]:
    m, n, k = shape
    label = f"{m}x{n}x{k}"
    rng = np.random.default_rng(0)
    a = cp.asarray(rng.standard_normal((m, k), dtype=np.float32))
    b = cp.asarray(rng.standard_normal((k, n), dtype=np.float32))
    from numba import cuda

    an, bn = cuda.as_cuda_array(a, sync=False), cuda.as_cuda_array(b, sync=False)
    reference = cp.matmul(a, b)
    scale = float(cp.abs(reference).max())
    tolerance = 2 * 2e-6 * math.sqrt(k)  # tests/test_gpu.py's, twice: both sides round
    flops = 2.0 * m * n * k

    impls: list[tuple[str, str, Any, Any]] = [("cuBLAS", "", lambda: cp.matmul(a, b), None)]
    if with_v4:
        impls.append(("v4", "128x128x8/8x8", lambda: sg.sgemm_v4(an, bn),
                      lambda: (sg._v4(np.dtype(np.float32)), 256)))
    for spec, tile in tiles:
        impls.append(("v5", spec, lambda tile=tile: sg.sgemm_v5(an, bn, tile),
                      lambda tile=tile: (sg._v5(np.dtype(np.float32), tile), tile.threads)))

    rows, cublas_ms = [], None
    for impl, config, fn, kernel_of in impls:
        row = Row(label, impl, config)
        try:
            c = cp.asarray(fn())  # compiles on the first call
            timer.sync()
            row.max_rel_error = float(cp.abs(c - reference).max()) / scale
            row.within_tolerance = row.max_rel_error < tolerance
            del c
            if kernel_of is not None:
                kernel, row.threads = kernel_of()
                for key, value in resources(kernel, row.threads).items():
                    setattr(row, key, value)
            timing = timer.measure(fn, budget_s)
            row.ms, row.reps, row.calls_per_rep = timing.ms, timing.reps, timing.calls
            row.tflops = flops / (timing.ms * 1e-3) / 1e12
            if impl == "cuBLAS":
                cublas_ms = timing.ms
            if cublas_ms is not None:
                row.percent_of_cublas = 100.0 * cublas_ms / timing.ms
        except Exception as exc:  # reported and skipped: one bad configuration is not fatal
            row.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        rows.append(row)
        print(describe(row), flush=True)
    return rows


def describe(row: Row) -> str:
    what = f"{row.shape:16} {row.impl:6} {row.config:18}"
    if row.error:
        return f"{what} FAILED {row.error}"
    regs = f" {row.registers} regs, {row.blocks_per_sm} blocks/SM" if row.registers else ""
    return (f"{what} {row.ms:8.3f} ms {row.tflops:6.1f} TFLOP/s {row.percent_of_cublas:5.1f}% "
            f"of cuBLAS, error {row.max_rel_error:.1e}{regs}")


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# SGEMM v5 configurations on {report['device']['name']} ({report['date']})", "",
             f"`{report['command']}`. {report['reference']}. Time: median of device-event "
             "timings after warm-up. Error: max |C − C_cuBLAS| / max |C_cuBLAS|.", ""]
    for shape in dict.fromkeys(r["shape"] for r in report["rows"]):
        rows = [r for r in report["rows"] if r["shape"] == shape]
        lines += [f"## {shape} (M×N×K)", "",
                  "| kernel | configuration | threads | regs | local B | smem B | blocks/SM "
                  "| ms | TFLOP/s | % of cuBLAS | max rel. error |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            def cell(value: Any, fmt: str = "{}") -> str:
                return "" if value is None else fmt.format(value)
            if r["error"]:
                lines.append(f"| {r['impl']} | {r['config']} | {cell(r['threads'])} | | | | | "
                             f"failed: {r['error']} | | | |")
                continue
            flag = "" if r["within_tolerance"] in (True, None) else " (too large)"
            lines.append(
                f"| {r['impl']} | {r['config']} | {cell(r['threads'])} | {cell(r['registers'])} "
                f"| {cell(r['local_bytes'])} | {cell(r['smem_bytes'])} "
                f"| {cell(r['blocks_per_sm'])} | {r['ms']:.3f} | {r['tflops']:.1f} "
                f"| {r['percent_of_cublas']:.0f}% | {r['max_rel_error']:.1e}{flag} |")
        ok = [r for r in rows if r["impl"] == "v5" and not r["error"] and r["within_tolerance"]]
        if ok:
            best = max(ok, key=lambda r: r["tflops"])
            lines += ["", f"Fastest v5: **{best['config']}**, {best['tflops']:.1f} TFLOP/s "
                          f"({best['percent_of_cublas']:.0f}% of cuBLAS)."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and .md")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), metavar="BMxBNxBK/TMxTN/uU",
                        help="v5 configurations (default: all of --list)")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), metavar="MxNxK")
    parser.add_argument("--no-v4", action="store_true", help="leave v4 out")
    parser.add_argument("--budget-s", type=float, default=1.0,
                        help="seconds of timed repetitions per kernel and shape (about)")
    parser.add_argument("--list", action="store_true", help="print the configurations and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(CONFIGS))
        return {}
    shapes = [parse_shape(s) for s in args.shapes]

    try:
        cp, cuda = find_gpu()
    except SystemExit as exc:  # find_gpu's message names gpu.py: name this script instead
        sys.exit(str(exc.code).replace("benchmarks/gpu.py", NAME))
    kc = load_kernels()
    kc.set_allocator(lambda shape, dtype: cp.empty(shape, dtype=dtype))
    sg = importlib.import_module("minigrad.kernels.cuda.sgemm")
    tiles = []
    for spec in args.configs:
        try:
            tiles.append((spec, parse_tile(spec, sg.V5Tile)))
        except (ValueError, TypeError) as exc:
            sys.exit(f"{NAME}: {exc}")
    import numba

    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "command": f"python {NAME} " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": device_info(cp, cuda),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "cupy": cp.__version__, "numba": numba.__version__,
                     "numba.cuda": getattr(cuda, "implementation", "?")},
        "reference": "cuBLAS = cupy.matmul in float32, TF32 off (CUPY_TF32=0, CuPy's default)",
        "tf32": False,
        "rows": [],
    }
    print(f"{report['device']['name']}: {report['device']}", flush=True)
    timer = DeviceTimer(cp)
    for shape in shapes:
        rows = run_shape(cp, timer, sg, shape, tiles, not args.no_v4, args.budget_s)
        report["rows"] += [asdict(r) for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    device = "".join(c if c.isalnum() else "_" for c in report["device"]["name"]).strip("_")
    stem = args.out / f"sgemm_sweep_{device.lower()}_{report['date']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")
    return report


if __name__ == "__main__":
    main()
