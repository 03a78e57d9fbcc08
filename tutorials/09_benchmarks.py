# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Benchmarks, CPU against GPU
#
# Tutorial 08 wrote kernels and checked that they are right. This one asks how fast they are,
# and, more usefully, how fast they *could* be. It reads the benchmark results committed in
# `benchmarks/results/` (the CPU kernels against their NumPy composites and PyTorch, BERT
# training steps, and, where a GPU has been measured, a `gpu_*.json` file from
# `benchmarks/gpu.py`), measures this machine's two ceilings itself (how many float32
# operations per second it can do, how many bytes per second it can move), and puts every
# kernel on a *roofline* plot: arithmetic intensity against achieved throughput.
#
# Run it as a script (`.venv/bin/python tutorials/09_benchmarks.py`, about ten seconds) or open
# it as a notebook (`make notebooks`). It reads results; it does not rerun the benchmarks
# (`python benchmarks/run_all.py` does, in about half an hour).

# %%
import json
import os
import re
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numba
import numpy as np

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)
RESULTS = HERE.parent / "benchmarks" / "results"
FAST = os.environ.get("MINIGRAD_FAST") == "1"
F32 = 4                                            # bytes per float32


def load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


cpu_kernels = load("kernels_cpu.json")
bert_cpu = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("bert_step_*.json"))}
gpu_files = sorted(RESULTS.glob("gpu_*.json"))
gpu = json.loads(gpu_files[-1].read_text()) if gpu_files else None
print("CPU kernel results:", "kernels_cpu.json" if cpu_kernels else "none found")
print("BERT step results: ", ", ".join(bert_cpu) or "none found")
print("GPU results:       ", gpu_files[-1].name if gpu else
      "none in benchmarks/results/ (the roofline below is the CPU's alone)")

# %% [markdown]
# ## 1. Reading the results: a BERT training step
#
# `benchmarks/bert_step.py` times one training step (forward, loss, backward, AdamW) of a small
# BERT classifier, batch 32 × 128 tokens, in minigrad and in the same model in PyTorch, taking
# turns step by step so that both see the same machine. The ratio is minigrad's time over
# PyTorch's: below 1, minigrad is faster. The machine these ran on has 2 cores shared with
# other work, so each file records its load average; a ratio is more trustworthy than either
# time alone, because both sides ran under the same load.

# %%
print(f"{'result':34s} {'threads':>7} {'backend':>7} {'minigrad ms':>11} {'PyTorch ms':>10} "
      f"{'ratio':>6} {'load':>5}")
for name, r in bert_cpu.items():
    print(f"{name:34s} {r['threads']:7d} {r['backend']:>7} {r['minigrad_ms']:11.1f} "
          f"{r['torch_ms']:10.1f} {r['ratio']:6.2f} {r['load_before'][0]:5.1f}")
    assert np.isclose(r["ratio"], r["minigrad_ms"] / r["torch_ms"], rtol=0.01)
    assert r["max_abs_logit_diff"] < 1e-4          # the two models computed the same thing

# %% [markdown]
# The check beside each line: the two implementations start from the same weights and their
# logits agree to better than $10^{-4}$, so the times compare the same computation.
#
# A GPU file also has a BERT step, at a larger size (bert-base, 110 M parameters) measured on
# the GPU machine's own CPU and on its GPU.

# %%
gpu_steps = {}
if gpu:
    print(f"{gpu['device']['name']}, {gpu['date']}: BERT-base training step, batch 32 × 128")
    for row in gpu.get("bert_step", []):
        if row.get("ms"):
            gpu_steps[(row["framework"], row["device"])] = row["ms"]
            print(f"  {row['framework']:9s} on {row['device']:4s}: {row['ms']:8.1f} ms  "
                  f"{row.get('note', '')}")
    for framework in ("minigrad", "PyTorch"):
        if (framework, "cpu") in gpu_steps and (framework, "cuda") in gpu_steps:
            speedup = gpu_steps[(framework, "cpu")] / gpu_steps[(framework, "cuda")]
            print(f"  {framework}: the GPU step is {speedup:.0f}x faster than the CPU step")
            assert speedup > 10
else:
    print("no GPU results: nothing to compare the CPU steps with")

# %% [markdown]
# ## 2. Two ceilings: compute and memory
#
# A kernel can be slow for two reasons: the processor cannot do its arithmetic any faster, or
# the memory cannot feed it the operands any faster. Each gives a ceiling we can measure:
#
# * **compute**, in FLOP/s: the best rate of a large float32 matrix product, which a tuned BLAS
#   (OpenBLAS, under NumPy) runs close to the processor's peak. Whatever we measure is a lower
#   bound on the true peak, so we also take the best matrix product recorded in
#   `kernels_cpu.json`: the machine is shared, and the ceiling is the best it has been seen to
#   do, not what it can spare at this moment.
# * **memory bandwidth**, in bytes/s: the rate of a large copy, counting the bytes read and
#   written. A copy does no arithmetic at all, so it is limited by memory alone. We copy with
#   NumPy (one core) and with a Numba kernel on every core and keep the faster, once with arrays
#   far larger than the caches (the bandwidth of the DRAM) and once with arrays that fit in
#   the 32 MB L3 cache (the bandwidth a kernel whose data stays in the cache can reach).

# %%
@numba.njit(parallel=True)
def parallel_copy(src, dst):
    n = src.shape[0]
    chunk = 1 << 16
    for c in numba.prange((n + chunk - 1) // chunk):
        lo = c * chunk
        hi = min(n, lo + chunk)
        dst[lo:hi] = src[lo:hi]


def best_seconds(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def copy_gbps(n_floats, reps):
    """GB/s (read + written) of the faster of NumPy's copy (one core) and ours (every core)."""
    src = np.ones(n_floats, dtype=np.float32)
    dst = np.empty_like(src)
    seconds = min(best_seconds(lambda: parallel_copy(src, dst), reps),
                  best_seconds(lambda: np.copyto(dst, src), reps))
    assert np.array_equal(src, dst)
    return 2 * src.nbytes / seconds / 1e9


n_matmul = 1024 if FAST else 2048
a = np.random.default_rng(9).standard_normal((n_matmul, n_matmul)).astype(np.float32)
matmul_now = 2 * n_matmul**3 / best_seconds(lambda: a @ a, 3) / 1e9
dram_gbps = copy_gbps(64 * 2**20, 3 if FAST else 5)   # 2 × 256 MB
cache_gbps = copy_gbps(1 * 2**20, 20 if FAST else 50)  # 2 × 4 MB: L3-resident
matmul_recorded = max((r["GFLOP_per_s"] for r in cpu_kernels["matmul"]), default=0.0) \
    if cpu_kernels else 0.0
CPU_PEAK = max(matmul_now, matmul_recorded)            # GFLOP/s
CPU_BW = max(dram_gbps, cache_gbps)                    # GB/s, the highest measured
load = os.getloadavg()
print(f"load average now: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
      f"on {os.cpu_count()} cores; Numba threads {numba.get_num_threads()}")
print(f"float32 matmul {n_matmul}³ now: {matmul_now:6.1f} GFLOP/s; best recorded: "
      f"{matmul_recorded:.1f} GFLOP/s -> compute ceiling {CPU_PEAK:.1f} GFLOP/s")
print(f"copy, 256 MB arrays (DRAM): {dram_gbps:5.1f} GB/s; "
      f"4 MB arrays (L3): {cache_gbps:5.1f} GB/s")
print(f"ridge point: {CPU_PEAK / CPU_BW:.1f} FLOP/byte (L3), {CPU_PEAK / dram_gbps:.1f} (DRAM)")
assert CPU_PEAK > 0 and dram_gbps > 0

# %% [markdown]
# ## 3. Arithmetic intensity, and the roofline
#
# A kernel's **arithmetic intensity** $I$ is the number of floating-point operations it does
# per byte it must move to or from memory. A kernel that runs at $P$ FLOP/s needs $P/I$ bytes
# per second, and memory supplies at most the bandwidth $\beta$, so
#
# $$\text{achieved FLOP/s} \;\le\; \min(P_\text{peak},\; I\cdot\beta).$$
#
# On a log-log plot that bound is a roof: a slope of 1 (memory-bound) up to the *ridge point*
# $I = P_\text{peak}/\beta$, then flat (compute-bound). A kernel left of the ridge can only go
# faster by moving fewer bytes (fusing its passes, as tutorial 08's kernels do); one right of
# it, by doing its arithmetic better (vector instructions, tiles that keep the units fed).
#
# We count, for each kernel, from its shapes: the flops of its formula (an `exp`, `erf` or
# `sqrt` counts as one, a convention: their real instruction counts are higher) and the fewest
# bytes any implementation must move (each input read once, each output written once, float32).
# Achieved GFLOP/s is then flops / measured time. A NumPy composite moves more bytes than that
# minimum (it writes and rereads temporaries), so its point sits lower: that distance is what
# fusing wins back.

# %%
def numbers(shape):
    return [int(x) for x in re.findall(r"\d+", shape)]


def work(kernel, shape, device):
    """(flops, bytes) of one call of ``kernel`` at ``shape`` (a string), on "cpu" or "gpu".

    Per element of the main array: flops of the formula and floats that must cross memory.
    """
    name = kernel.lower()
    if name.startswith(("sgemm", "matmul")):
        m, n, k = numbers(shape)
        return 2.0 * m * n * k, F32 * (m * k + k * n + m * n)
    if name.startswith("attention"):
        b, h, s, d = numbers(shape)[:4]
        flops = 4.0 * b * h * s * s * d                # q·kᵀ and P·v, 2 flops per product
        # The CPU kernel writes the probabilities P (B, A, S, S) for its backward; the GPU one
        # keeps only one logsumexp per row (the online softmax of tutorial 08).
        saved = b * h * s * s if device == "cpu" else b * h * s
        if "backward" in name:
            return 2 * flops, F32 * (8 * b * h * s * d + saved)
        return flops, F32 * (4 * b * h * s * d + saved)
    elements = float(np.prod(numbers(shape.split("+")[0])))
    per_element = {                                # (flops, floats moved) per element
        "softmax forward": (6, 2), "softmax backward": (5, 3),
        "layernorm forward": (7, 2), "layernorm backward": (13, 3),
        "gelu forward (none)": (5, 2), "gelu backward (none)": (9, 3),
        "gelu forward (tanh)": (9, 2), "gelu backward (tanh)": (14, 3),
        "bias+gelu forward": (6, 2), "bias+gelu backward": (10, 3),
        "cross-entropy forward": (4, 1), "cross-entropy backward": (4, 2),
        "adamw step": (13, 7), "sgd step": (6, 5),
    }
    family = next(f for f in per_element if name.startswith(f))
    flops, floats = per_element[family]
    if name.startswith("cross-entropy") and "% of rows" in name:
        share = int(re.search(r"(\d+)% of rows", name).group(1)) / 100
        # Ignored rows are skipped; the backward still writes their zero gradient.
        return flops * share * elements, F32 * elements * (share + (1 if "backward" in name
                                                                     else 0))
    return flops * elements, F32 * floats * elements


points = []                     # dicts: device, kernel, impl, intensity, gflops, working set
if cpu_kernels:
    impl_names = {"numba": "minigrad (Numba)", "numpy": "NumPy composite", "torch": "PyTorch"}
    for row in cpu_kernels["kernels"]:
        kernel, shape = row["kernel"], row["shape"]
        millions = re.search(r"([\d.]+) M$", shape)      # "71 arrays, 11.2 M" parameters
        if millions:
            shape = f"({round(float(millions.group(1)) * 1e6)},)"
        flops, nbytes = work(kernel, shape, "cpu")
        for impl, label in impl_names.items():
            if row.get(f"{impl}_ms"):
                points.append({"device": "cpu", "kernel": kernel, "impl": label,
                               "intensity": flops / nbytes,
                               "gflops": flops / (row[f"{impl}_ms"] * 1e-3) / 1e9,
                               "bytes": nbytes})
    for row in cpu_kernels["matmul"]:
        n = row["n"]
        flops, nbytes = work("matmul", f"{n}x{n}x{n}", "cpu")
        points.append({"device": "cpu", "kernel": f"matmul {n}", "impl": row["impl"],
                       "intensity": flops / nbytes, "gflops": row["GFLOP_per_s"],
                       "bytes": nbytes})
print(f"{len(points)} CPU points")

GPU_PEAK = GPU_BW = GPU_L2 = None
if gpu:
    for row in gpu["kernels"]:
        if not row.get("ms"):
            continue                               # a failed or skipped measurement
        flops, nbytes = work(row["kernel"], row["shape"], "gpu")
        points.append({"device": "gpu", "kernel": row["kernel"], "impl": row["impl"],
                       "intensity": flops / nbytes,
                       "gflops": flops / (row["ms"] * 1e-3) / 1e9, "bytes": nbytes})
    sgemm_rates = [1e3 * r["rate"] for r in gpu["kernels"]
                   if r["kernel"] == "sgemm" and r.get("rate")]
    GPU_PEAK = max(sgemm_rates, default=None)      # GFLOP/s: the best float32 matmul
    GPU_BW = gpu.get("copy_gbps")                  # GB/s: a 1 GiB device-to-device copy
    GPU_L2 = gpu["device"].get("l2_mib", 0) * 2**20
    print(f"{gpu['device']['name']}: compute ceiling {GPU_PEAK / 1e3:.1f} TFLOP/s (best float32 "
          f"matmul, TF32 {'on' if gpu.get('tf32') else 'off'}), copy {GPU_BW:.0f} GB/s, "
          f"ridge point {GPU_PEAK / GPU_BW:.1f} FLOP/byte")
    failed = [f"{r['kernel']} / {r['impl']}" for r in gpu["kernels"] if not r.get("ms")]
    if failed:
        print(f"{len(failed)} GPU measurements have no time (failed or skipped), e.g. "
              f"{failed[0]}: {next(r['note'] for r in gpu['kernels'] if not r.get('ms'))}")
print(f"{sum(p['device'] == 'cpu' for p in points)} CPU points, "
      f"{sum(p['device'] == 'gpu' for p in points)} GPU points")

# %% [markdown]
# ## 4. What must hold, and what the points say
#
# No kernel can beat its roof. On the CPU the roof uses the highest bandwidth we measured, the
# L3 one, since the benchmark's arrays (4 to 8 MB, used again and again) can stay in the cache.
# On the GPU only a copy from its main memory (HBM) was measured, so a kernel whose data fit in
# the GPU's L2 cache is held to the compute ceiling alone: its data may never leave the chip.
# We allow 10% for the noise of timing on a shared machine.
#
# A kernel is **memory-bound** when its intensity is left of the ridge point (for the CPU, the
# DRAM ridge: the kernels' data in real training are far larger than the cache).

# %%
def roof(p, bandwidth_gbps):
    peak = CPU_PEAK if p["device"] == "cpu" else GPU_PEAK
    return min(peak, p["intensity"] * bandwidth_gbps) if bandwidth_gbps else peak


TOLERANCE = 1.1
for p in points:
    if p["device"] == "cpu":
        bound = roof(p, CPU_BW)
    else:
        bound = roof(p, GPU_BW if p["bytes"] > GPU_L2 else None)
    p["of_roof"] = p["gflops"] / bound
    assert p["gflops"] <= TOLERANCE * bound, (p, bound)

cpu_ridge = CPU_PEAK / dram_gbps
print(f"{'CPU kernel (minigrad)':42s} {'FLOP/B':>7} {'GFLOP/s':>8} {'GB/s':>6} "
      f"{'% of roof':>9}  bound")
memory_bound = []
for p in points:
    if p["device"] == "cpu" and p["impl"] == "minigrad (Numba)":
        kind = "memory" if p["intensity"] < cpu_ridge else "compute"
        if kind == "memory":
            memory_bound.append(p["kernel"])
        print(f"{p['kernel']:42s} {p['intensity']:7.2f} {p['gflops']:8.2f} "
              f"{p['gflops'] / p['intensity']:6.1f} {100 * p['of_roof']:8.0f}%  {kind}")
elementwise = ("softmax", "layernorm", "gelu", "bias+gelu", "cross-entropy", "adamw", "sgd")
if cpu_kernels:
    assert all(p["kernel"].lower().startswith(elementwise) for p in points
               if p["device"] == "cpu" and p["impl"] == "minigrad (Numba)"
               and p["kernel"] in memory_bound)
    assert all(p["kernel"] in memory_bound for p in points
               if p["device"] == "cpu" and p["impl"] == "minigrad (Numba)"
               and p["kernel"].lower().startswith(elementwise))
    assert not any(k.startswith("attention") for k in memory_bound)
    assert all(p["intensity"] > cpu_ridge for p in points
               if p["device"] == "cpu" and p["kernel"].startswith("matmul") and
               int(p["kernel"].split()[1]) >= 512)
print("memory-bound on this CPU:", ", ".join(memory_bound) or "none")
if gpu:
    gpu_ridge = GPU_PEAK / GPU_BW
    gpu_memory = sorted({p["kernel"] for p in points
                         if p["device"] == "gpu" and p["intensity"] < gpu_ridge})
    print("memory-bound on the GPU:", ", ".join(gpu_memory))
    assert all(k.lower().startswith(elementwise) for k in gpu_memory)
    in_l2 = [p for p in points if p["device"] == "gpu" and p["bytes"] <= GPU_L2
             and GPU_BW and p["gflops"] > p["intensity"] * GPU_BW]
    print(f"GPU points above the HBM copy line (their data fit in L2): {len(in_l2)}")

# %% [markdown]
# The `% of roof` column is the honest summary of the CPU kernels: all the fused elementwise
# kernels are memory-bound, and they sit well under their memory roof. Part of that gap is
# the convention of counting an `exp` or `erf` as one flop (minigrad computes them with a
# polynomial of a dozen operations, so these kernels do more arithmetic than their intensity
# says), part is the machine: the results were recorded on 2 shared cores, with the load
# averages in the files. Attention and the matrix products are right of the ridge,
# compute-bound: their intensity grows with the sequence length (attention) or the matrix size
# (a matrix product of size $n$ does $2n^3$ flops on $3n^2$ floats, $I = n/6$).

# %%
SHORT = {"softmax forward (scale+mask)": "softmax fwd", "softmax forward": "softmax fwd",
         "layernorm forward": "LN fwd",
         "attention forward": "attn fwd",
         "attention backward": "attn bwd", "AdamW step": "AdamW", "adamw step": "AdamW",
         "SGD step (momentum, weight decay)": "SGD"}
MARKERS = {"minigrad": "o", "NumPy composite": "s", "CuPy composite": "s", "PyTorch": "^"}


def marker(impl):
    return next((m for key, m in MARKERS.items() if impl.startswith(key)), "D")


intensity_axis = np.geomspace(0.05, 2000, 200)
fig, ax = plt.subplots(figsize=(12, 7.5))
ax.loglog(intensity_axis, np.minimum(CPU_PEAK, intensity_axis * dram_gbps), color="tab:blue",
          lw=2.5, label=f"CPU roof: {CPU_PEAK:.0f} GFLOP/s, DRAM copy {dram_gbps:.0f} GB/s")
ax.loglog(intensity_axis, np.minimum(CPU_PEAK, intensity_axis * cache_gbps), color="tab:blue",
          lw=1.2, ls="--", label=f"CPU roof with the L3 copy, {cache_gbps:.0f} GB/s")
if GPU_PEAK and GPU_BW:
    ax.loglog(intensity_axis, np.minimum(GPU_PEAK, intensity_axis * GPU_BW), color="tab:green",
              lw=2.5, label=f"GPU roof ({gpu['device']['name']}): {GPU_PEAK / 1e3:.1f} TFLOP/s, "
                            f"HBM copy {GPU_BW:.0f} GB/s")
for device, colour in (("cpu", "tab:blue"), ("gpu", "tab:green")):
    shown = set()
    for p in points:
        if p["device"] != device:
            continue
        m = marker(p["impl"])
        filled = p["impl"].startswith("minigrad") or p["kernel"].startswith("matmul")
        label = f"{device.upper()}: {p['impl'] if m != 'D' else 'matmul (each version)'}"
        ax.scatter(p["intensity"], p["gflops"], marker=m, s=40 if filled else 30,
                   facecolors=colour if filled else "none", edgecolors=colour, alpha=0.8,
                   label=None if label in shown else label)
        shown.add(label)
        if p["impl"].startswith("minigrad") and p["kernel"] in SHORT:
            ax.annotate(SHORT[p["kernel"]], (p["intensity"], p["gflops"]), fontsize=7.5,
                        xytext=(4, 3), textcoords="offset points", color=colour)
ax.axvline(cpu_ridge, color="tab:blue", lw=0.8, ls=":")
ax.text(cpu_ridge * 1.05, ax.get_ylim()[0] * 1.5, f"CPU ridge\n{cpu_ridge:.1f} FLOP/B",
        color="tab:blue", fontsize=8)
ax.set_xlabel("arithmetic intensity (FLOP per byte of minimum memory traffic)")
ax.set_ylabel("achieved GFLOP/s")
ax.set_title("Roofline: every benchmarked kernel against the measured ceilings"
             + ("" if gpu else " (CPU only: no GPU results in benchmarks/results/)"), fontsize=11)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
figure_path = FIGURES / "09_roofline.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# ## 5. The BERT step, CPU against GPU
#
# The last figure puts the training steps side by side: the small models on this machine's
# CPU, and, where a GPU file exists, bert-base on the GPU machine's CPU and on its GPU, on a
# log scale: for both minigrad and PyTorch the GPU step is more than ten times faster than the
# CPU step (asserted in section 1).

# %%
bars = [(f"{r['size']} {r['mode']}\n{r['threads']} thr, CPU", r["minigrad_ms"], r["torch_ms"])
        for r in bert_cpu.values() if r["backend"] == "numba" and r["threads"] == 2]
for device in ("cpu", "cuda"):
    if ("minigrad", device) in gpu_steps and ("PyTorch", device) in gpu_steps:
        bars.append((f"bert-base train\n{'GPU' if device == 'cuda' else 'GPU box CPU'}",
                     gpu_steps[("minigrad", device)], gpu_steps[("PyTorch", device)]))
if bars:
    fig, ax = plt.subplots(figsize=(11, 5.5))
    x = np.arange(len(bars))
    ax.bar(x - 0.2, [b[1] for b in bars], width=0.4, color="tab:orange", label="minigrad")
    ax.bar(x + 0.2, [b[2] for b in bars], width=0.4, color="tab:purple", label="PyTorch")
    ax.set_xticks(x)
    ax.set_xticklabels([b[0] for b in bars], fontsize=9)
    ax.set_yscale("log")
    ax.set_ylabel("ms per step (median)")
    ax.set_xlabel("model, step and device (batch 32 × 128 tokens)")
    ax.set_title("BERT steps: minigrad against PyTorch"
                 + ("" if gpu_steps else " (CPU only: no GPU results)"), fontsize=11)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    figure_path = FIGURES / "09_bert_steps.png"
    fig.savefig(figure_path, dpi=110)
    print("saved", figure_path)
else:
    print("no BERT step results in benchmarks/results/: no figure")

# %% [markdown]
# ## What to take away
#
# * A benchmark number means little alone: compare it with its ceiling. This machine's two
#   ceilings, measured above, are a matrix product's GFLOP/s and a copy's GB/s.
# * Arithmetic intensity decides which ceiling applies. Softmax, LayerNorm, GELU,
#   cross-entropy and the optimizer steps do about one flop per byte: memory-bound everywhere,
#   so the way to speed them up is to move fewer bytes, which is what fusing does.
# * Matrix products and fused attention do tens to hundreds of flops per byte: compute-bound,
#   and the GPU's advantage there is its far higher flat roof.
# * Every point sits under its roof, as physics demands; the distance below it is the room
#   left for a better kernel.
