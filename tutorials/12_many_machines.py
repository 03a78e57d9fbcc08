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
# # 12 · Many machines
#
# Seed 003 names distributed computation among the ways to afford large models. The simplest
# kind is **data parallelism**: N processes (*ranks*), each with a whole copy of the model and
# a slice of every batch. After backward they average their gradients, so every copy takes the
# same step, the one a single process would take on the whole batch. minigrad does this with
# `minigrad.distributed` over MPI (`mpiexec -n N minigrad finetune ...`); it invents no
# networking of its own. This tutorial opens up the three ideas that make it work and scale:
#
# - the **ring all-reduce** (section 2): how N ranks sum their arrays, each sending only
#   2(N−1)/N of its array however large N is, run by hand on 4 ranks' arrays (simulated in one
#   process);
# - **buckets overlapping backward** (section 3): why DistributedDataParallel starts sending
#   gradients while backward is still running, with the timeline of a real run, and a real
#   2-rank run checked against 1 rank;
# - a **scaling model** (section 4): compute time measured here and an α–β model of the network
#   predict the speedup on 1 to 64 machines.
#
# Run it as a script (`.venv/bin/python tutorials/12_many_machines.py`, seconds, the same in
# fast mode) or as a notebook (`make notebooks`). Part 3 launches `mpiexec` when the `[dist]`
# extra is installed (`pip install 'minigrad[dist]'`), and reads the committed results of
# `benchmarks/distributed.py` for the timeline and the measured compute time.

# %%
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)
RESULTS = HERE.parent / "benchmarks" / "results"

# %% [markdown]
# ## 1. Why averaging gradients is exact
#
# Split a batch of B rows into N slices of B/N. Rank r's loss is the mean over its slice,
# L_r = (N/B) Σ_{rows of r} ℓ, so the mean of the ranks' gradients is
#
#     (1/N) Σ_r ∇L_r = (1/N) Σ_r (N/B) Σ_{rows of r} ∇ℓ = (1/B) Σ_rows ∇ℓ = ∇L,
#
# the gradient of the whole batch's mean loss. Every rank holds the same average, takes the
# same optimizer step, and the copies never drift apart. The only new operation is the
# **all-reduce**: every rank ends with the sum of everyone's arrays.
#
# ## 2. The ring all-reduce, by hand
#
# The naive way sends every array to rank 0 and back: rank 0 moves N times the array, and the
# time grows with N. The ring does better. Cut each rank's array into N chunks and arrange the
# ranks in a ring, each sending only to its right neighbour:
#
# - **reduce-scatter**, N − 1 steps: at step s rank r sends chunk (r − s) mod N to the right and
#   adds the chunk it receives from the left into its own copy. After N − 1 steps, rank r holds
#   chunk (r + 1) mod N summed over all ranks.
# - **all-gather**, N − 1 steps: each rank passes its finished chunk on to the right, which
#   overwrites its own copy; after N − 1 steps every rank holds every finished chunk.
#
# Each step every rank sends one chunk, size/N bytes: 2(N − 1)·size/N in all, under twice the
# array whatever N is. Below, 4 ranks each hold an array of 8 numbers; `contributions[r][c]`
# records whose numbers rank r's chunk c holds, to draw the steps.

# %%
N = 4
rng = np.random.default_rng(0)
arrays = [rng.integers(0, 10, size=8).astype(np.float64) for _ in range(N)]  # one per rank
expected = np.sum(arrays, axis=0)

chunks = [np.array_split(a.copy(), N) for a in arrays]       # chunks[rank][c]
contributions = [[{r} for _ in range(N)] for r in range(N)]   # whose values each chunk holds
sent_bytes = [0] * N
snapshots = [[[len(s) for s in row] for row in contributions]]

for step in range(N - 1):  # reduce-scatter
    messages = []
    for r in range(N):     # every rank sends at once: collect the messages first
        c = (r - step) % N
        messages.append(((r + 1) % N, c, chunks[r][c].copy(), set(contributions[r][c])))
        sent_bytes[r] += chunks[r][c].nbytes
    for dest, c, values, who in messages:
        chunks[dest][c] += values
        contributions[dest][c] |= who
    snapshots.append([[len(s) for s in row] for row in contributions])

for r in range(N):  # rank r now owns chunk (r + 1) mod N, complete
    assert contributions[r][(r + 1) % N] == set(range(N))

for step in range(N - 1):  # all-gather
    messages = []
    for r in range(N):
        c = (r + 1 - step) % N
        messages.append(((r + 1) % N, c, chunks[r][c].copy()))
        sent_bytes[r] += chunks[r][c].nbytes
    for dest, c, values in messages:
        chunks[dest][c] = values
        contributions[dest][c] = set(range(N))
    snapshots.append([[len(s) for s in row] for row in contributions])

for r in range(N):
    np.testing.assert_array_equal(np.concatenate(chunks[r]), expected)
size = arrays[0].nbytes
assert all(b == 2 * (N - 1) / N * size for b in sent_bytes)
print("every rank holds", expected, f"after sending {sent_bytes[0]} bytes for its "
      f"{size}-byte array (2(N-1)/N = {2 * (N - 1) / N} times its size)")

# %%
fig, axes = plt.subplots(1, len(snapshots), figsize=(2.1 * len(snapshots), 3.4),
                         constrained_layout=True)
for i, (ax, grid) in enumerate(zip(axes, snapshots, strict=True)):
    ax.imshow(grid, cmap="viridis", vmin=1, vmax=N)
    for r in range(N):
        for c in range(N):
            ax.text(c, r, grid[r][c], ha="center", va="center",
                    color="white" if grid[r][c] < N else "black")
    phase = ("start" if i == 0 else f"reduce-scatter {i}" if i < N
             else f"all-gather {i - N + 1}")
    ax.set(title=phase, xticks=range(N), yticks=range(N), xlabel="chunk")
    if i == 0:
        ax.set_ylabel("rank")
fig.suptitle(f"ring all-reduce on {N} ranks: how many ranks' values each chunk holds "
             f"(each rank sends {sent_bytes[0]} bytes for its {size}-byte array)")
fig.savefig(FIGURES / "12_ring_allreduce.png", dpi=100)

# %% [markdown]
# ## 3. Buckets: sending while backward runs
#
# Backward finishes the last layer first: its gradient is final long before the embeddings'.
# `DistributedDataParallel` registers a hook on every parameter
# (`register_post_accumulate_grad_hook`, PyTorch's name), and minigrad's backward visits a leaf
# as soon as the last op that read it has passed its gradient down. Gradients are grouped into
# **buckets** (about 25 MB, the first only 1 MiB) in reverse parameter order; once a bucket's
# gradients are all final, a non-blocking all-reduce (`MPI_Iallreduce`) starts, while backward
# goes on with the earlier layers. One message per bucket pays the network's latency a few
# times rather than once per parameter.
#
# First, a real run: the same MLP trained for 3 steps by 1 rank and by 2 ranks (each on half of
# every batch, float64) must end with the same weights. The script launches `mpiexec` from this
# environment, one BLAS thread per rank, when mpi4py is installed.

# %%
SCRIPT = '''
import sys
import numpy as np
import minigrad as mg
from minigrad import distributed as dist, nn
from minigrad.nn import functional as F
from minigrad.optim import SGD

dist.init()
mg.manual_seed(dist.rank())      # different weights on each rank: DDP broadcasts rank 0's
model = dist.DistributedDataParallel(
    nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 3)).double(), bucket_cap_mb=0)
optimizer = SGD(model.parameters(), lr=0.5)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(36, 4)), rng.integers(0, 3, size=36)
for step in range(3):              # global batches of 12 rows, each rank takes every N-th
    rows = np.arange(12 * step, 12 * step + 12)[dist.rank()::dist.world_size()]
    F.cross_entropy(model(mg.tensor(x[rows])), y[rows]).backward()
    optimizer.step()
    optimizer.zero_grad()
if dist.rank() == 0:
    np.save(sys.argv[1], np.concatenate([p.numpy().ravel() for p in model.parameters()]))
'''
MPIEXEC = Path(sys.executable).with_name("mpiexec")
try:
    import mpi4py  # noqa: F401
    have_mpi = MPIEXEC.exists()
except ImportError:
    have_mpi = False

if have_mpi:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ddp_mlp.py"
        script.write_text(SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1"}
        weights = {}
        for ranks in (1, 2):
            out = Path(tmp) / f"w{ranks}.npy"
            subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable, str(script),
                            str(out)], check=True, env=env, timeout=120)
            weights[ranks] = np.load(out)
    gap = np.abs(weights[1] - weights[2]).max()
    print(f"2 ranks vs 1 rank after 3 steps: largest weight difference {gap:.1e}")
    assert gap < 1e-12
else:
    print("mpi4py is not installed: pip install 'minigrad[dist]' to run the 2-rank check")

# %% [markdown]
# The timeline below comes from `benchmarks/distributed.py`: 2 ranks fine-tuning bert-mini on
# rotten-tomatoes reviews (global batch 16, 128 tokens), rank 0's last step, 4 MB buckets. Each
# red bar is one bucket's all-reduce, from the moment its last gradient was final to the moment
# it was seen finished; the green bar is backward's compute. The bars that end before backward
# does cost nothing: they were hidden behind compute. What is left after it, `backward()` waits
# for. bert-mini's largest gradient, the 30,522 × 256 word-embedding table (31 MB of its 45),
# is the very last one backward finishes, so its bucket can only start at the end: the overlap
# is bounded by the model's shape.

# %%
report = json.loads((RESULTS / "distributed.json").read_text())
line = report["two_ranks_4mb_buckets"]["timeline_rank0"]
fig, ax = plt.subplots(figsize=(9, 4), constrained_layout=True)
ax.barh(0, line["backward_end"] * 1e3, color="C2", label="backward (compute)")
for i, b in enumerate(line["buckets"]):
    ax.barh(i + 1, (b["done"] - b["start"]) * 1e3, left=b["start"] * 1e3, color="C3",
            label="all-reduce of one bucket" if i == 0 else None)
    ax.text(b["done"] * 1e3, i + 1, f" {b['bytes'] / 2**20:.1f} MiB", va="center", fontsize=8)
ax.axvline(line["end"] * 1e3, color="k", ls=":", label="backward() returns")
ax.set(xlabel="ms since backward started", yticks=range(len(line["buckets"]) + 1),
       yticklabels=["compute"] + [f"bucket {i}" for i in range(len(line["buckets"]))],
       title="bert-mini, 2 ranks: each bucket's all-reduce against backward (a real run)")
ax.invert_yaxis()
ax.legend(loc="lower left")
fig.savefig(FIGURES / "12_overlap_timeline.png", dpi=100)

starts = [b["start"] for b in line["buckets"]]
assert starts == sorted(starts)                        # buckets start in order, on every rank
assert starts[0] < line["backward_end"]                 # the first starts while backward runs
assert line["buckets"][-1]["bytes"] > 2**24             # the embeddings' bucket is the big one
hidden = sum(max(0.0, min(b["done"], line["backward_end"]) - b["start"])
             for b in line["buckets"])
print(f"{len(starts)} buckets; all-reduce time inside backward {hidden * 1e3:.0f} ms, "
      f"backward compute {line['backward_end'] * 1e3:.0f} ms, "
      f"waited after it {(line['end'] - line['backward_end']) * 1e3:.0f} ms")

# %% [markdown]
# ## 4. A model of scaling to many machines
#
# On one machine the ranks share memory; between machines the all-reduce crosses a network.
# The α–β model prices a message of m bytes at α + m/β (a latency α, a bandwidth β). A ring
# all-reduce of S bytes on N machines takes 2(N − 1) steps of S/N bytes:
#
#     T_allreduce(N) = 2(N − 1)·α + 2(N − 1)/N · S/β
#
# which tends to 2S/β: from S/β at N = 2, it only about doubles however many machines join.
# With each machine keeping its batch (weak scaling), a step costs T_compute + T_allreduce
# without overlap, and T_forward + max(T_backward, T_allreduce) + T_update if the all-reduce
# hides entirely behind backward. The compute times are bert-mini's, measured on one rank of
# this machine by `benchmarks/distributed.py`;
# S is its 45 MB of float32 gradients.

# %%
model = report["model"]
S, forward, backward, update = (model["gradient_bytes"], model["forward_s"],
                                model["backward_s"], model["update_s"])
compute = forward + backward + update
NODES = np.array([1, 2, 4, 8, 16, 32, 64])
NETWORKS = {"10 Gbit/s": (20e-6, 10e9 / 8), "100 Gbit/s": (5e-6, 100e9 / 8)}


def allreduce_seconds(n, alpha, beta, size=S):
    return np.where(n > 1, 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / beta, 0.0)


def speedups(n, alpha, beta, fwd, bwd, upd):
    comm = allreduce_seconds(n, alpha, beta)
    total = fwd + bwd + upd
    return n * total / (total + comm), n * total / (fwd + np.maximum(bwd, comm) + upd)


fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
for ax, (title, scale) in zip(axes, ((f"CPU step as measured ({compute:.2f} s)", 1.0),
                                     ("a GPU-fast step (compute / 100)", 0.01)), strict=True):
    ax.plot(NODES, NODES, "k:", label="ideal")
    for (name, (alpha, beta)), color in zip(NETWORKS.items(), ("C0", "C1"), strict=True):
        serial, overlapped = speedups(NODES, alpha, beta, forward * scale, backward * scale,
                                      update * scale)
        ax.plot(NODES, overlapped, "-o", color=color, label=f"{name}, hidden behind backward")
        ax.plot(NODES, serial, "--", color=color, label=f"{name}, no overlap")
    ax.set(xscale="log", yscale="log", xlabel="machines", ylabel="speedup over one machine",
           title=title)
    ax.set_xticks(NODES, [str(n) for n in NODES])
    ax.legend(fontsize=8)
fig.suptitle(f"α–β model of data-parallel bert-mini ({S / 1e6:.0f} MB of gradients a step)")
fig.savefig(FIGURES / "12_scaling_model.png", dpi=100)

ten, hundred = NETWORKS["10 Gbit/s"], NETWORKS["100 Gbit/s"]
# The all-reduce time is nearly flat in N: from 2 machines to 64 it only about doubles
# (S/β for N = 2, tending to 2S/β), while the work done grows 32-fold.
assert allreduce_seconds(64, *ten) < 2.1 * allreduce_seconds(2, *ten)
# A CPU step is long enough that even 10 Gbit/s without overlap keeps more than half of the
# ideal speedup (how much more depends on the measured step: about 0.7 of it here).
assert speedups(64, *ten, forward, backward, update)[0] > 0.5 * 64
# A step 100 times faster is communication-bound at 10 Gbit/s unless the transfer is hidden;
# 100 Gbit/s and overlap recover most of it.
fast_serial, fast_overlap = speedups(64, *ten, forward / 100, backward / 100, update / 100)
fast_serial_100, _ = speedups(64, *hundred, forward / 100, backward / 100, update / 100)
assert fast_serial < 0.5 * 64 and fast_serial < fast_overlap and fast_serial < fast_serial_100
print(f"64 machines, CPU step: {speedups(64, *ten, forward, backward, update)[0]:.1f}x at "
      f"10 Gbit/s without overlap; GPU-fast step: {fast_serial:.1f}x without overlap, "
      f"{fast_overlap:.1f}x with, {fast_serial_100:.1f}x at 100 Gbit/s without")

# %% [markdown]
# ## What to take away
#
# - Averaging gradients over N ranks, each on B/N rows, is exactly one step on B rows; minigrad's
#   tests hold 2 and 3 ranks to 1 rank within 1e-12 (float64) and 1e-5 (float32 BERT).
# - A ring all-reduce sends 2(N−1)/N of the array per rank: the cost barely grows with N.
# - Buckets let that cost hide behind backward, as far as the model's shape allows: the first
#   layer's gradients (often the biggest, the embeddings) are always last.
# - Whether many machines pay is compute time against S/β: a slow step scales on any network;
#   a fast one needs bandwidth, overlap, or fewer bytes (half precision halves S).
