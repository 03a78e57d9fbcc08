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
# # 08 · Kernels
#
# Every op of tutorials 02 to 07 runs, in the end, as a loop over numbers. NumPy runs those
# loops for us, one operation at a time; a *kernel* is a loop we write ourselves, to do in one
# pass what NumPy does in several. This tutorial writes two small kernels for the CPU with
# [Numba](https://numba.readthedocs.io) (a fused softmax and a LayerNorm), checks them against
# NumPy and against minigrad's own kernels (`minigrad.kernels.cpu`), and times them. Then it
# moves to the GPU: the tiled matrix multiply and the FlashAttention-style forward of
# `minigrad.kernels.cuda`, run here on the CPU by Numba's CUDA *simulator*, with diagrams of
# how they cut the work into tiles, and the online softmax that lets attention never store its
# score matrix.
#
# Run it as a script (`.venv/bin/python tutorials/08_kernels.py`, about half a minute, most of
# it compiling) or open it as a notebook (`make notebooks`).
#
# The simulator has to be switched on before anything imports `numba.cuda`, so that is the
# very first thing the tutorial does. It runs every CUDA thread as a Python thread, shared
# memory and barriers included: slow (seconds for a 64×64 matrix product), but exact, and no
# GPU needed. On a machine with a GPU, leave it out and the same calls run on the device.

# %%
import os

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"       # before numba.cuda is imported anywhere

import time
from pathlib import Path

import matplotlib.pyplot as plt
import minigrad.kernels.cpu as kcpu
import minigrad.kernels.cuda as kcuda
import numba
import numpy as np
from matplotlib.patches import Rectangle
from minigrad.kernels.cpu.layernorm import layernorm_forward_reference
from minigrad.kernels.cpu.softmax import softmax_forward_reference
from numba.core import config

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)
FAST = os.environ.get("MINIGRAD_FAST") == "1"
RNG = np.random.default_rng(8)

assert config.ENABLE_CUDASIM, "the CUDA simulator must be on before numba.cuda is imported"

# %% [markdown]
# ## 1. Why fuse: the softmax NumPy writes, and the one we write
#
# The softmax of a row of scores $x$ is $y_j = e^{x_j - m} / \sum_i e^{x_i - m}$ with
# $m = \max_i x_i$ (subtracting $m$ changes nothing mathematically and keeps $e^x$ from
# overflowing). In NumPy that is four whole-array operations, each a loop over all the scores
# that reads its input from memory and writes a new array back:
#
# ```python
# e = np.exp(x - x.max(axis=-1, keepdims=True))   # max, subtract, exp: 3 passes
# y = e / e.sum(axis=-1, keepdims=True)           # sum, divide: 2 more
# ```
#
# For the attention scores of bert-mini, (32, 4, 128, 128) float32, every pass streams 8 MB
# through memory. A *fused* kernel takes one row (128 floats, half a kilobyte: it stays in the
# L1 cache), does every step on it there, and writes it once. Numba compiles the loops below to
# machine code (`@njit`), and `prange` splits the rows across the CPU's threads.

# %%
@numba.njit(parallel=True, fastmath=False)
def fused_softmax(x):
    """Row softmax of x (N, S): one read of each row from memory, one write."""
    N, S = x.shape  # noqa: N806
    y = np.empty_like(x)
    for i in numba.prange(N):                      # rows in parallel
        m = x[i, 0]
        for j in range(1, S):                      # pass 1 over the row (in L1 from now on)
            m = max(m, x[i, j])
        total = x.dtype.type(0)
        for j in range(S):                         # pass 2: exponentiate and sum
            e = np.exp(x[i, j] - m)
            y[i, j] = e
            total += e
        inv = x.dtype.type(1) / total
        for j in range(S):                         # pass 3: normalise, in place
            y[i, j] *= inv
    return y


def numpy_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


scores = (3 * RNG.standard_normal((32 * 4 * 128, 128))).astype(np.float32)   # (B·A·S, S)
y_ours = fused_softmax(scores)
y_numpy = numpy_softmax(scores)
y_minigrad = kcpu.softmax_forward(scores)
print(f"max |ours − NumPy| = {np.abs(y_ours - y_numpy).max():.1e}, "
      f"max |ours − minigrad.kernels.cpu| = {np.abs(y_ours - y_minigrad).max():.1e}")
assert y_ours.dtype == np.float32
assert np.allclose(y_ours, y_numpy, rtol=1e-5, atol=1e-7)
assert np.allclose(y_ours, y_minigrad, rtol=1e-5, atol=1e-7)
assert np.allclose(y_ours.sum(axis=1), 1, atol=1e-5)
assert np.allclose(softmax_forward_reference(scores), y_numpy)

# %% [markdown]
# Subtracting the max is not decoration. Scores of a few hundred are ordinary in float32
# logits, and $e^{100} \approx 2.7\cdot10^{43}$ is already past float32's largest number,
# $3.4\cdot10^{38}$: the textbook formula gives inf/inf = NaN; the kernel gives the right answer.

# %%
big = np.array([[100.0, 101.0, 102.0]], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    textbook = np.exp(big) / np.exp(big).sum(axis=1, keepdims=True)
print("textbook softmax of [100, 101, 102]:", textbook[0], " fused kernel:", fused_softmax(big)[0])
assert np.isnan(textbook).all()
assert np.allclose(fused_softmax(big), numpy_softmax(big.astype(np.float64)), rtol=1e-6)

# %% [markdown]
# ## 2. A LayerNorm kernel
#
# LayerNorm normalises each row $x$ of $H$ features, then scales and shifts it:
# $\mu = \langle x\rangle$, $r = 1/\sqrt{\langle (x-\mu)^2\rangle + \epsilon}$,
# $y = (x - \mu)\,r\,w + b$. The NumPy composite is about eight passes (mean, subtract,
# square, mean, rsqrt, multiply, ·w, +b). The kernel reads the row once from memory, takes the
# mean, then the variance of $x - \mu$ (a second pass over the row, now in L1: more accurate
# than $\langle x^2\rangle - \mu^2$, which loses digits when $\mu$ is large), and writes $y$
# once. It also returns $\mu$ and $r$ per row, which is what the backward pass needs.

# %%
@numba.njit(parallel=True, fastmath=False)
def fused_layernorm(x, w, b, eps):
    """LayerNorm over the last axis of x (M, H): (y, mean, rstd)."""
    M, H = x.shape  # noqa: N806
    y = np.empty_like(x)
    mean = np.empty(M, dtype=x.dtype)
    rstd = np.empty(M, dtype=x.dtype)
    for i in numba.prange(M):
        mu = x.dtype.type(0)
        for j in range(H):
            mu += x[i, j]
        mu /= H
        var = x.dtype.type(0)
        for j in range(H):
            d = x[i, j] - mu
            var += d * d
        r = x.dtype.type(1) / np.sqrt(var / H + eps)
        for j in range(H):
            y[i, j] = (x[i, j] - mu) * r * w[j] + b[j]
        mean[i], rstd[i] = mu, r
    return y, mean, rstd


def numpy_layernorm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


M_ROWS, HIDDEN, EPS = 32 * 128, 256, np.float32(1e-12)        # bert-mini's (B·S, H)
acts = (RNG.standard_normal((M_ROWS, HIDDEN)) + 2).astype(np.float32)
gamma = (1 + 0.1 * RNG.standard_normal(HIDDEN)).astype(np.float32)
beta = (0.1 * RNG.standard_normal(HIDDEN)).astype(np.float32)
ln_ours, mean_ours, rstd_ours = fused_layernorm(acts, gamma, beta, EPS)
ln_ref, mean_ref, rstd_ref = layernorm_forward_reference(acts, gamma, beta, EPS)
ln_minigrad, mean_minigrad, rstd_minigrad = kcpu.layernorm_forward(acts, gamma, beta, EPS)
print(f"max |ours − NumPy| = {np.abs(ln_ours - numpy_layernorm(acts, gamma, beta, EPS)).max():.1e}"
      f", max |ours − minigrad.kernels.cpu| = {np.abs(ln_ours - ln_minigrad).max():.1e}")
assert np.allclose(ln_ours, numpy_layernorm(acts, gamma, beta, EPS), rtol=1e-5, atol=1e-5)
assert np.allclose(ln_ours, ln_ref, rtol=1e-5, atol=1e-5)
assert np.allclose(ln_ours, ln_minigrad, rtol=1e-5, atol=1e-5)
assert np.allclose(mean_ours, mean_minigrad, rtol=1e-6) and np.allclose(mean_ours, mean_ref)
assert np.allclose(rstd_ours, rstd_minigrad, rtol=1e-5) and np.allclose(rstd_ours, rstd_ref)

# %% [markdown]
# ## 3. Timing them
#
# Each function runs a few times and we keep its fastest run (the least disturbed by whatever
# else the machine is doing). The ratio NumPy time / kernel time is printed, not asserted: it
# depends on the machine, on how many cores are free, and on whether the 8 MB of scores fit in
# the cache. Our softmax may well lose to NumPy: each `np.exp` in its loop is a call into the
# math library, one float at a time, where NumPy's `exp` runs on 8 floats per instruction.
# minigrad's own kernels go further than ours: they add the scale and padding mask
# of attention, split every sum into 8 independent partial sums so the additions run side by
# side, and compute $e^x$ with a polynomial the compiler can vectorise 8 floats at a time
# (`kernels/cpu/common.py` explains each trick); `benchmarks/kernels_cpu.py` measures them
# carefully, and tutorial 09 reads its results.

# %%
def best_ms(fn, *args, reps=3 if FAST else 10):
    fn(*args)                                      # warm up (and compile, the first time)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


timings = {
    "softmax": {"NumPy composite": best_ms(numpy_softmax, scores),
                "fused_softmax (ours)": best_ms(fused_softmax, scores),
                "minigrad.kernels.cpu": best_ms(kcpu.softmax_forward, scores)},
    "layernorm": {"NumPy composite": best_ms(numpy_layernorm, acts, gamma, beta, EPS),
                  "fused_layernorm (ours)": best_ms(fused_layernorm, acts, gamma, beta, EPS),
                  "minigrad.kernels.cpu": best_ms(kcpu.layernorm_forward, acts, gamma, beta,
                                                  EPS)},
}
print(f"Numba threads: {numba.get_num_threads()}, load average: "
      f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
for kernel, rows in timings.items():
    numpy_ms = rows["NumPy composite"]
    for name, ms in rows.items():
        print(f"{kernel:9s} {name:24s} {ms:7.2f} ms   NumPy / this = {numpy_ms / ms:4.2f}")

# %% [markdown]
# ## 4. The GPU's way of working, and a tiled matrix multiply
#
# A GPU runs a kernel as a *grid* of *blocks*, each block a few hundred *threads* that run on
# one multiprocessor and share a small, fast on-chip memory, the *shared memory* (48 KB per
# block here). The threads of a block can wait for each other (`cuda.syncthreads()`); blocks
# cannot. So a kernel's design is a decision about tiles: which piece of the output a block
# owns, which pieces of the inputs it must read, and what it keeps on chip.
#
# For $C = AB$ with $A$ of shape $(M, K)$ and $B$ of shape $(K, N)$, `kernels/cuda/sgemm.py`
# has five versions:
#
# * **v1**, naive: one thread per element $C_{ij}$, reading row $i$ of $A$ and column $j$ of
#   $B$ from global memory: two loads of 4 bytes for every multiply-add.
# * **v2**, shared-memory tiles: a block of 16×16 threads owns a 16×16 tile of $C$. It walks
#   along $K$ 16 at a time; at each step the 256 threads copy a 16×16 tile of $A$ and one of
#   $B$ into shared memory (one element each), wait, and each thread does 16 multiply-adds out
#   of shared memory. Every element brought in from global memory is used 16 times.
# * **v3** and **v4**, register tiles: each thread computes 8, then 8×8, elements of $C$ and
#   keeps them in registers, so one value loaded from shared memory serves 8 products (v4 is a
#   128×128 tile of $C$ per block, 256 threads).
# * **v5**, the fastest: v4's tiles with the overhead taken out. More than half of v4's
#   instructions were index arithmetic (Numba checks every signed index for a negative value,
#   as Python does); v5 uses unsigned indices, has the compiler unroll its inner loop, and loads
#   the next tiles of $A$ and $B$ while it multiplies the current ones: about 4× v4's speed on
#   an H100.
#
# The diagram shows v2 on the shapes we run below, $M = 37$, $K = 29$, $N = 41$: none a
# multiple of 16, so the last tiles hang over the edges. A tile that hangs over loads zeros
# for the missing elements and stores nothing past the edge.

# %%
M, K, N = 37, 29, 41
TILE = 16


def draw_matrix(ax, x0, y0, rows, cols, name, tile, colour="0.85"):
    """A rows × cols matrix with its top-left corner at (x0, y0) (y grows downwards)."""
    ax.add_patch(Rectangle((x0, y0), cols, rows, fc=colour, ec="black", lw=1.2))
    for t in range(tile, max(rows, cols) + tile, tile):
        if t < cols:
            ax.plot([x0 + t, x0 + t], [y0, y0 + rows], color="0.5", lw=0.6, ls="--")
        if t < rows:
            ax.plot([x0, x0 + cols], [y0 + t, y0 + t], color="0.5", lw=0.6, ls="--")
    ax.text(x0 + cols / 2, y0 - 2, f"{name}  ({rows}×{cols})", ha="center", fontsize=11)


def tile_rect(ax, x0, y0, r, c, rows, cols, fc, label=None, alpha=0.85, hatch=None):
    """The tile at tile-row r, tile-column c, clipped to the matrix; the overhang dotted."""
    h, w = min(TILE, rows - r * TILE), min(TILE, cols - c * TILE)
    ax.add_patch(Rectangle((x0 + c * TILE, y0 + r * TILE), w, h, fc=fc, ec="black", lw=1.2,
                           alpha=alpha, label=label, hatch=hatch))
    if h < TILE or w < TILE:                       # the zero-padded part of a ragged tile
        ax.add_patch(Rectangle((x0 + c * TILE, y0 + r * TILE), TILE, TILE, fill=False,
                               ec=fc, lw=1.2, ls=":"))


block_row, block_col, k_step = 1, 1, 1             # the block drawn, and its second k-step
fig, (ax, ax_smem) = plt.subplots(1, 2, figsize=(15, 7.2), gridspec_kw={"width_ratios": [3, 1]})
A_AT, B_AT, C_AT = (0, 36), (40, 0), (40, 36)      # where A, B, C sit: C below B, right of A
draw_matrix(ax, *A_AT, M, K, "A", TILE)
draw_matrix(ax, *B_AT, K, N, "B", TILE)
draw_matrix(ax, *C_AT, M, N, "C = A·B", TILE)
for c in range(-(-K // TILE)):                     # the row panel of A this block reads
    tile_rect(ax, *A_AT, block_row, c, M, K, "tab:blue", alpha=0.35,
              label="A row panel read by the block" if c == 0 else None)
for r in range(-(-K // TILE)):                     # the column panel of B
    tile_rect(ax, *B_AT, r, block_col, K, N, "tab:green", alpha=0.35,
              label="B column panel read by the block" if r == 0 else None)
tile_rect(ax, *A_AT, block_row, k_step, M, K, "tab:blue", label=f"A tile at k-step {k_step}")
tile_rect(ax, *B_AT, k_step, block_col, K, N, "tab:green", label=f"B tile at k-step {k_step}")
tile_rect(ax, *C_AT, block_row, block_col, M, N, "tab:red",
          label=f"C tile of block (y={block_row}, x={block_col}): 16×16 threads")
ax.annotate("", xy=(C_AT[0] + block_col * TILE + 8, C_AT[1] + block_row * TILE + 3),
            xytext=(K + 1, A_AT[1] + block_row * TILE + 3),
            arrowprops={"arrowstyle": "->", "color": "tab:blue", "lw": 1.5})
ax.annotate("", xy=(C_AT[0] + block_col * TILE + 8, C_AT[1] + block_row * TILE + 1),
            xytext=(B_AT[0] + block_col * TILE + 8, K + 1),
            arrowprops={"arrowstyle": "->", "color": "tab:green", "lw": 1.5})
ax.text(1, 4, f"grid: ⌈N/16⌉ × ⌈M/16⌉ = {-(-N // TILE)} × {-(-M // TILE)} blocks\n"
        f"k-steps per block: ⌈K/16⌉ = {-(-K // TILE)}\n"
        "dotted: a ragged tile's zero padding", fontsize=10, va="top")
ax.set_xlim(-2, C_AT[0] + N + 2)
ax.set_ylim(C_AT[1] + M + 2, -6)
ax.set_aspect("equal")
ax.set_xticks([])
ax.set_yticks([])
ax.set_xlabel("columns: k for A, j for B and C (one dashed square = 16)")
ax.set_ylabel("rows: i for A and C, k for B")
ax.set_title("sgemm v2: the block that owns one 16×16 tile of C reads a row panel of A "
             "and a column panel of B", fontsize=11)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=9)

ax_smem.add_patch(Rectangle((0, 0), TILE, TILE, fc="tab:blue", alpha=0.85, ec="black"))
ax_smem.add_patch(Rectangle((0, 26), TILE, TILE, fc="tab:green", alpha=0.85, ec="black"))
ax_smem.add_patch(Rectangle((0, 52), TILE, TILE, fc="tab:red", alpha=0.85, ec="black"))
ax_smem.text(8, -2, "a_tile: shared memory, 16×16", ha="center", fontsize=10)
ax_smem.text(8, 24, "b_tile: shared memory, 16×16", ha="center", fontsize=10)
ax_smem.text(8, 50, "acc: one register per thread", ha="center", fontsize=10)
ax_smem.text(8, 72, "per k-step: load both tiles, syncthreads,\n16 multiply-adds per thread "
             "from shared memory,\nsyncthreads; each global load is used 16×",
             ha="center", va="top", fontsize=9.5)
ax_smem.set_xlim(-10, 26)
ax_smem.set_ylim(82, -5)
ax_smem.set_aspect("equal")
ax_smem.set_xticks([])
ax_smem.set_yticks([])
ax_smem.set_xlabel("16 columns")
ax_smem.set_ylabel("16 rows each")
ax_smem.set_title("What one block holds on chip", fontsize=11)
fig.tight_layout()
figure_path = FIGURES / "08_sgemm_tiles.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# Now the four versions, under the simulator, against NumPy's `A @ B`. In float32 the sums
# run in a different order from NumPy's, so they agree to rounding, not bit for bit; in
# float64 the agreement is to $10^{-12}$. The simulator's times measure Python threads, not a
# GPU: they say nothing about the speed of the kernels on a real device (tutorial 09 does).

# %%
a32 = RNG.standard_normal((M, K)).astype(np.float32)
b32 = RNG.standard_normal((K, N)).astype(np.float32)
for version, sgemm in kcuda.SGEMM_VERSIONS.items():
    start = time.perf_counter()
    c32 = sgemm(a32, b32)
    seconds = time.perf_counter() - start
    err = np.abs(c32 - a32.astype(np.float64) @ b32.astype(np.float64)).max()
    print(f"sgemm v{version}: C {c32.shape} {c32.dtype}, max |C − A·B| = {err:.1e} "
          f"({seconds:.1f} s in the simulator)")
    assert c32.shape == (M, N) and c32.dtype == np.float32
    assert np.allclose(c32, a32 @ b32, rtol=1e-5, atol=1e-5)
a64, b64 = a32.astype(np.float64), b32.astype(np.float64)
assert np.allclose(kcuda.sgemm_v5(a64, b64), a64 @ b64, rtol=1e-12, atol=1e-12)
print("float64 (a DGEMM with the same code): v5 agrees with NumPy to 1e-12")

# %% [markdown]
# ## 5. Online softmax: attention without the score matrix
#
# Attention computes, for each query row $q_i$, the scores $s_{ij} = c\,q_i\cdot k_j$ against
# every key, their softmax $P_{ij}$, and the output $o_i = \sum_j P_{ij} v_j$. Written
# plainly, that stores an $S\times S$ matrix of scores per head and reads it back three times
# (max, sum, weighted sum). FlashAttention's observation is that the softmax can be computed
# *while the keys stream past*, one tile at a time, keeping only three running quantities per
# query row: the running max $m$, the running sum $\ell = \sum e^{s_j - m}$, and the
# unnormalised output $\mathrm{acc} = \sum e^{s_j - m} v_j$. When a new tile brings a larger
# max $m'$, everything summed so far was scaled by $e^{-m}$ instead of $e^{-m'}$, so it is
# multiplied by $e^{m - m'}$ (≤ 1, never an overflow):
#
# $$m' = \max(m, \max_{j\in\text{tile}} s_j),\quad
# \ell' = e^{m-m'}\ell + \sum_{j\in\text{tile}} e^{s_j-m'},\quad
# \mathrm{acc}' = e^{m-m'}\mathrm{acc} + \sum_{j\in\text{tile}} e^{s_j-m'} v_j.$$
#
# After the last tile, $o = \mathrm{acc}/\ell$ exactly, and $m + \log\ell$ is the row's
# log-sum-exp (which the backward pass uses to recompute $P$ without storing it). Here it is in
# NumPy, for one query row and 100 keys in tiles of 16, against the softmax of the whole row:

# %%
S_KEYS, D_HEAD, KEY_TILE = 100, 8, 16
row_scores = 4 * RNG.standard_normal(S_KEYS)
values = RNG.standard_normal((S_KEYS, D_HEAD))

m, ell, acc = -np.inf, 0.0, np.zeros(D_HEAD)
history = []                                       # (m, ell) after each tile
for j0 in range(0, S_KEYS, KEY_TILE):
    s, v = row_scores[j0:j0 + KEY_TILE], values[j0:j0 + KEY_TILE]
    m_new = max(m, s.max())
    rescale = np.exp(m - m_new)                    # 0 on the first tile (m = −∞)
    p = np.exp(s - m_new)
    ell = rescale * ell + p.sum()
    acc = rescale * acc + p @ v
    m = m_new
    history.append((m, ell))
streamed_output, streamed_lse = acc / ell, m + np.log(ell)

full = np.exp(row_scores - row_scores.max())
full_p = full / full.sum()
full_lse = row_scores.max() + np.log(full.sum())
print(f"{len(history)} tiles; max |streamed − full softmax·V| = "
      f"{np.abs(streamed_output - full_p @ values).max():.1e}, "
      f"|streamed − full logsumexp| = {abs(streamed_lse - full_lse):.1e}")
assert np.allclose(streamed_output, full_p @ values, rtol=1e-13, atol=1e-14)
assert np.isclose(streamed_lse, full_lse, rtol=1e-14)
assert history[-1][0] == row_scores.max()
running_max = np.array([h[0] for h in history])
assert np.all(np.diff(running_max) >= 0)           # the running max never falls

# %% [markdown]
# `kernels/cuda/attention.py` does exactly this, with one query row per thread: a block of 64
# threads owns 64 query rows (each keeps $c\,q_i$, $m$, $\ell$ and acc in registers), and the
# block walks the keys a tile at a time, copying the tile of $K$ and of $V$ (and of the padding
# mask) into shared memory, where all 64 threads read the same key at once. The $S\times S$
# scores exist only one at a time, in a register. The figure shows the tiling, and the running
# max and sum of our NumPy row tile by tile.

# %%
S_FIG, BQ, BK = 160, 64, 32
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(14, 6.2))
ax0.add_patch(Rectangle((0, 0), S_FIG, S_FIG, fc="0.93", ec="black"))
for t in range(BK, S_FIG, BK):
    ax0.plot([t, t], [0, S_FIG], color="0.6", lw=0.6, ls="--")
for t in range(BQ, S_FIG, BQ):
    ax0.plot([0, S_FIG], [t, t], color="0.6", lw=0.6, ls="--")
q_block, k_tile = 1, 2
ax0.add_patch(Rectangle((0, q_block * BQ), S_FIG, BQ, fc="tab:blue", alpha=0.25,
                        label=f"query block: {BQ} rows, one thread each"))
ax0.add_patch(Rectangle((0, q_block * BQ), k_tile * BK, BQ, fc="tab:blue", alpha=0.45,
                        label="keys already streamed: folded into m, ℓ, acc"))
ax0.add_patch(Rectangle((k_tile * BK, q_block * BQ), BK, BQ, fc="tab:orange", alpha=0.9,
                        ec="black", label=f"current key tile: {BK} rows of K, V in shared memory"))
ax0.set_xlim(-2, S_FIG + 2)
ax0.set_ylim(S_FIG + 2, -2)
ax0.set_aspect("equal")
ax0.set_xlabel("key j")
ax0.set_ylabel("query i")
ax0.set_title(f"Attention scores s_ij (S = {S_FIG}): never stored, made one tile at a time",
              fontsize=11)
ax0.legend(loc="lower left", fontsize=9)

tiles = np.arange(1, len(history) + 1)
ax1.step(tiles, running_max, where="post", color="tab:red", lw=2, label="running max m")
ax1.axhline(row_scores.max(), color="tab:red", ls=":", lw=1, label="max over the whole row")
ax1.set_xlabel(f"key tiles streamed ({KEY_TILE} keys each)")
ax1.set_ylabel("running max m")
ax1.grid(alpha=0.3)
twin = ax1.twinx()
ell_in_final_scale = np.array([e * np.exp(mm - m) for mm, e in history])
twin.plot(tiles, ell_in_final_scale, "o-", color="tab:purple",
          label="running sum ℓ, rescaled to the final max")
twin.axhline(full.sum(), color="tab:purple", ls=":", lw=1, label="Σ e^(s−max) of the whole row")
twin.set_ylabel("running sum ℓ · e^(m − m_final)")
lines = ax1.get_legend_handles_labels()
lines2 = twin.get_legend_handles_labels()
ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right", fontsize=9)
ax1.set_title("Online softmax of one row: the max and the sum as the tiles stream past",
              fontsize=11)
fig.tight_layout()
figure_path = FIGURES / "08_online_softmax.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)
assert np.isclose(ell_in_final_scale[-1], full.sum())

# %% [markdown]
# ## 6. The attention kernel, under the simulator
#
# Two sequences of 70 tokens (more than one 64-row query block, and more than one key tile),
# two heads of size 8; the second sequence is padded after 50 tokens, so its last 20 keys are
# masked out. The reference is the plain NumPy formula: the full score matrix, the mask as a
# very negative score, softmax, then $PV$.

# %%
B_ATT, HEADS, S_ATT, D_ATT = 2, 2, 70, 8
q, k, v = (RNG.standard_normal((B_ATT, HEADS, S_ATT, D_ATT)).astype(np.float32)
           for _ in range(3))
mask = np.ones((B_ATT, S_ATT), dtype=np.int64)
mask[1, 50:] = 0


def attention_reference(q, k, v, mask):
    """softmax(masked_fill(q·kᵀ/√D, mask == 0, finfo.min))·v and the rows' logsumexp, in float64."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])           # (B, A, S, S)
    s = np.where(mask[:, None, None, :] != 0, s, np.finfo(np.float32).min)
    top = s.max(axis=-1, keepdims=True)
    e = np.exp(s - top)
    return (e / e.sum(axis=-1, keepdims=True)) @ v, (top + np.log(e.sum(-1, keepdims=True)))[..., 0]


start = time.perf_counter()
out, row_max, row_sum = kcuda.attention_forward(q, k, v, mask)   # the rows' m and l, for backward
lse = row_max + np.log(row_sum)                                  # L = m + log l
seconds = time.perf_counter() - start
out_ref, lse_ref = attention_reference(q, k, v, mask)
print(f"attention_forward: out {out.shape}, logsumexp {lse.shape}; max |out − NumPy| = "
      f"{np.abs(out - out_ref).max():.1e}, max |L − NumPy| = {np.abs(lse - lse_ref).max():.1e} "
      f"({seconds:.1f} s in the simulator)")
assert out.shape == q.shape and lse.shape == (B_ATT, HEADS, S_ATT)
assert np.allclose(out, out_ref, rtol=1e-5, atol=1e-5)
assert np.allclose(lse, lse_ref, rtol=1e-5, atol=1e-5)
padded_keys_moved = out.copy()
v_changed = v.copy()
v_changed[1, :, 50:] += 100.0                      # change only the padded values
out_changed, *_ = kcuda.attention_forward(q, k, v_changed, mask)
assert np.array_equal(out_changed, padded_keys_moved)
print("changing the values of the 20 padded keys leaves the output bit-for-bit the same")

# %% [markdown]
# ## What to take away
#
# * A fused kernel does in one pass over memory what a NumPy composite does in several; on the
#   CPU, Numba compiles such loops to machine code, and minigrad's kernels are the same idea
#   with more care given to vectorisation.
# * Every kernel sits beside a plain reference and is checked against it, here and in
#   `tests/test_kernels_cpu.py` and `tests/test_kernels_cuda.py`.
# * On the GPU a kernel is a decision about tiles: what a block owns, what it reads, what it
#   keeps in shared memory and registers. Tiling the matrix product reuses every loaded element
#   16 times (v2) and more (v3–v5).
# * The online softmax (running max, running sum, rescaling) gives the exact softmax while the
#   keys stream past, so attention never writes its $S\times S$ scores to memory.
# * The simulator proves the kernels correct without a GPU; how fast they are is tutorial 09.
