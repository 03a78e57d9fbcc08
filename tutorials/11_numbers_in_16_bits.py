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
# # 11 · Numbers in 16 bits
#
# Seed 003 names mixed precision as the first way to cut the cost of training: keep the
# weights in float32, but do the heavy arithmetic, and keep the activations, in a 16-bit
# format. Half the bytes to store and to move; on hardware with half-precision units, several
# times the arithmetic per second. Two 16-bit formats compete, and they fail in different ways:
#
# 1. the formats bit by bit: float32, float16 and bfloat16 are the same idea with different
#    numbers of exponent and fraction bits, which decide their range and their precision;
# 2. where gradients underflow: the gradients of a real MiniLM training step, against float16's
#    range: most of them sit below its smallest normal number;
# 3. loss scaling rescues them: multiplying the loss by S multiplies every gradient by S, and
#    moves them into range (`minigrad.amp.GradScaler`);
# 4. what it buys and costs, measured: `benchmarks/precision.py`'s memory, speed and accuracy
#    for float32, bfloat16 and float16 on this CPU, against PyTorch.
#
# Run it as a script (`.venv/bin/python tutorials/11_numbers_in_16_bits.py`, under a minute) or
# open it as a notebook (`make notebooks`). It reads the experiment's committed results; it does
# not rerun it (`python benchmarks/precision.py` does, in about an hour on a busy machine).

# %%
import json
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import ml_dtypes
import numpy as np

import minigrad
from minigrad import nn, optim
from minigrad.amp import GradScaler

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)
RESULTS = HERE.parent / "benchmarks" / "results"
sys.path.insert(0, str(HERE.parent / "benchmarks"))
import precision  # noqa: E402  (benchmarks/precision.py: the experiment's own functions)

FAST = os.environ.get("MINIGRAD_FAST") == "1"
bfloat16 = ml_dtypes.bfloat16

# %% [markdown]
# ## 1. The formats, bit by bit
#
# A binary floating-point number is three fields: a sign bit s, an exponent field E of e bits,
# and a fraction field F of m bits. For a *normal* number (E neither all zeros nor all ones)
#
#     x = (−1)^s · 2^(E − bias) · (1 + F / 2^m),    bias = 2^(e−1) − 1.
#
# The exponent decides the range, the fraction the precision: consecutive numbers near 1 are
# 2^−m apart (the machine epsilon). When E is all zeros the leading 1 is dropped, x =
# (−1)^s · 2^(1 − bias) · F / 2^m: the *subnormal* numbers, which fill the gap down to zero
# evenly, with fewer and fewer significant bits. All ones means inf or NaN.
#
# | format | bits | sign | exponent e | fraction m |
# |---|---|---|---|---|
# | float32 | 32 | 1 | 8 (bias 127) | 23 |
# | float16 (IEEE half) | 16 | 1 | 5 (bias 15) | 10 |
# | bfloat16 ("brain float") | 16 | 1 | 8 (bias 127) | 7 |
#
# bfloat16 is float32 with the last 16 fraction bits cut off: the same range, 8 significant
# bits (the fraction and its implicit leading 1), about 2.4 decimal digits. float16 keeps more
# precision (11 bits, about 3.3 digits) but its 5 exponent bits cover only 2^−14 … 2^15 in
# normal numbers. We decode a number field by field and check the decoding
# against NumPy and `ml_dtypes` (which give NumPy its `bfloat16`).

# %%
FORMATS = {"float32": (np.float32, np.uint32, 8, 23), "float16": (np.float16, np.uint16, 5, 10),
           "bfloat16": (bfloat16, np.uint16, 8, 7)}


def fields(x: float, name: str) -> tuple[int, int, int]:
    """(sign, exponent field, fraction field) of x rounded to the format."""
    dtype, bits_dtype, e, m = FORMATS[name]
    bits = int(np.array([x], dtype).view(bits_dtype)[0])
    return bits >> (e + m), (bits >> m) & ((1 << e) - 1), bits & ((1 << m) - 1)


def decode(s: int, exponent: int, fraction: int, e: int, m: int) -> float:
    """The value of the three fields (normal or subnormal), by the formula above."""
    bias = 2 ** (e - 1) - 1
    if exponent == 0:
        return (-1) ** s * 2.0 ** (1 - bias) * fraction / 2**m
    return (-1) ** s * 2.0 ** (exponent - bias) * (1 + fraction / 2**m)


for x in (0.1, -3.14159, 1e-6):
    for name, (dtype, _, e, m) in FORMATS.items():
        s, exponent, fraction = fields(x, name)
        value = decode(s, exponent, fraction, e, m)
        rounded = float(np.array([x], dtype)[0])
        print(f"{x:>9} as {name:8s}: {s} {exponent:0{e}b} {fraction:0{m}b} = {value:.10g} "
              f"(error {abs(value - x) / abs(x):.1e})")
        assert value == rounded                       # the decoding is the format's own value

# %% [markdown]
# 1e-6 is below float16's smallest normal number 2^−14 ≈ 6.1e-5: its exponent field is all
# zeros and only the fraction's last bits are left, a subnormal with an error of about 1%
# instead of float16's usual 0.05% or less. The limits of each format follow from the fields,
# and we check them against `finfo`:

# %%
limits = {}
for name, (dtype, _, e, m) in FORMATS.items():
    bias = 2 ** (e - 1) - 1
    largest = 2.0 ** (2**e - 2 - bias) * (2 - 2.0**-m)    # E = all ones − 1, F = all ones
    tiny = 2.0 ** (1 - bias)                               # smallest normal
    smallest = 2.0 ** (1 - bias - m)                       # smallest subnormal
    eps = 2.0**-m
    info = ml_dtypes.finfo(dtype)
    assert (largest, tiny, smallest, eps) == (float(info.max), float(info.tiny),
                                              float(info.smallest_subnormal), float(info.eps))
    limits[name] = (largest, tiny, smallest, eps)
    print(f"{name:8s} largest {largest:.4g}, smallest normal {tiny:.4g}, smallest subnormal "
          f"{smallest:.4g}, epsilon {eps:.4g} ({(m + 1) * np.log10(2):.1f} significant digits)")

# %% [markdown]
# Since bfloat16 is float32's top half, the exact float32 of a bfloat16 number is its 16 bits
# shifted left by 16 (how a kernel that knows only float32 reads it). The other way needs
# rounding: casting 0.1 *rounds to nearest even*, and keeping the top 16 bits (truncation)
# gives a different, worse number.

# %%
x32 = np.array([0.1, 1 / 3, 3.14159, -2.5e-20], np.float32)
x16 = x32.astype(bfloat16)
widened = (x16.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
assert np.array_equal(widened, x16.astype(np.float32))     # the shift is exact
truncated = ((x32.view(np.uint32) >> 16) << 16).view(np.float32)
print("float32:   ", x32)
print("rounded:   ", widened, "errors", np.abs(widened - x32) / np.abs(x32))
print("truncated: ", truncated, "errors", np.abs(truncated - x32) / np.abs(x32))
assert np.all(np.abs(widened - x32) <= np.abs(truncated - x32))

# %% [markdown]
# The spacing between neighbouring numbers (the *ulp*) shows both trade-offs at once: relative
# to x it is 2^−m wherever x is normal, flat across the format's range, and it grows relative
# to x in the subnormals until nothing is left.

# %%
fig, ax = plt.subplots(figsize=(9, 5))
x = np.logspace(-45, 39, 4000)
colours = {"float32": "tab:blue", "float16": "tab:red", "bfloat16": "tab:green"}
for name, (dtype, _, _, _) in FORMATS.items():
    largest, tiny, smallest, _ = limits[name]
    inside = (x >= smallest) & (x <= largest)
    xs = np.array(x[inside], dtype)
    bits_dtype = FORMATS[name][1]
    following = (xs.view(bits_dtype) + 1).view(dtype)      # the next number up: bits + 1
    ulp = following.astype(np.float64) - xs.astype(np.float64)
    ax.loglog(x[inside], ulp / x[inside], color=colours[name], label=name, lw=1.5)
    ax.axvline(tiny, color=colours[name], ls=":", lw=1)
ax.set_xlabel("|x|")
ax.set_ylabel("spacing to the next number / |x|")
ax.set_title("Relative precision across each format's range (dotted: smallest normal)")
ax.legend()
ax.grid(alpha=0.3)
fig.savefig(FIGURES / "11_formats.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# ## 2. Where gradients underflow
#
# float16's narrow range matters for one kind of number above all: gradients. A pretrained
# model's loss changes little when one weight moves a little, so most partial derivatives are
# tiny. Here is one float32 training step of MiniLM (all-MiniLM-L6-v2 with a fresh two-class
# head, dropout on) on real rotten-tomatoes reviews, every parameter's gradient binned by its
# binary exponent ⌊log₂|g|⌋ (the exponent field, minus the bias), against float16's range.

# %%
batch_size, length = (8, 32) if FAST else (16, 64)
model, batch = precision.minilm_batch(batch_size, length)
g = precision.step_gradients(model, batch)            # (22.7M,) float32, every parameter
nonzero = g[g != 0]
exponents = precision.exponent_histogram(g)
print(f"batch {batch['input_ids'].shape}: {g.size:,} gradient elements, {nonzero.size:,} nonzero "
      f"(a word embedding row gets a gradient only if its word is in the batch)")
below_normal = np.mean(np.abs(nonzero) < 2.0**-14)
below_all = np.mean(np.abs(nonzero) < 2.0**-24)
print(f"median |g| = {np.median(np.abs(nonzero)):.2e}; below float16's smallest normal 2^-14: "
      f"{below_normal:.1%}; below its smallest subnormal 2^-24: {below_all:.3%}")
assert below_normal > 0.5                              # most of a real step's gradients

fig, ax = plt.subplots(figsize=(10, 5))
precision.plot_exponents(ax, exponents, 16)
ax.set_title("MiniLM's gradients (one step on rotten-tomatoes) against float16's range")
fig.savefig(FIGURES / "11_gradient_exponents.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# More than half of the gradient sits in float16's subnormals or below. Stored as float16, the
# subnormal ones keep only a few significant bits, and those under about 2^−25 become exactly
# zero: that weight learns nothing from the step. (The small cluster far to the left, around
# 2^−115, is real too: the pooler's weight rows of a few tanh units that this batch saturates,
# where tanh's derivative 1 − tanh²(z) ≈ 4e^−2|z| is vanishingly small. Nothing rescues those,
# and nothing needs to.) bfloat16 has float32's exponent, so nothing underflows there; it pays
# in precision instead.

# %%
with np.errstate(over="ignore"):
    as_half = nonzero.astype(np.float16)
as_bf16 = nonzero.astype(bfloat16)
print(f"cast to float16:  {np.mean(as_half == 0):.3%} become 0, "
      f"{np.mean((as_half != 0) & (np.abs(as_half) < 2.0**-14)):.1%} subnormal")
print(f"cast to bfloat16: {np.mean(as_bf16 == 0):.3%} become 0")
assert np.mean(as_bf16 == 0) == 0

# %% [markdown]
# ## 3. Loss scaling rescues them
#
# The gradient is linear in the loss: the backward of S·L gives S·∂L/∂w for every weight.
# So multiply the loss by a large S before `backward()`, and every gradient, in every layer,
# is S times larger, shifted log₂S places to the right in the histogram (the purple bars
# above, at S = 2^16, PyTorch's and minigrad's default starting scale). Divide by S, in
# float32, before the update, and the true gradients come back. With S a power of two both
# multiplications are exact: only the cast to float16 rounds.
#
# Too large an S pushes the largest gradients past float16's 65504 to inf. We cast the true
# gradients times S = 2^k to float16 for k = 0 … 24 and count each failure:

# %%
casts = precision.cast_losses(g, precision.LOG2_SCALES)
for c in casts[::4]:
    print(f"S = 2^{c['log2_scale']:<2d}: flushed {c['flushed']:.4%}, subnormal "
          f"{c['subnormal']:.3%}, overflow {c['overflow']:.5%}, median relative error "
          f"{c['median_relative_error']:.1e}")
by_k = {c["log2_scale"]: c for c in casts}
assert by_k[16]["subnormal"] < by_k[0]["subnormal"] / 100
assert by_k[16]["flushed"] < by_k[0]["flushed"]
assert by_k[24]["overflow"] > by_k[16]["overflow"]

fig, ax = plt.subplots(figsize=(9, 5))
k = np.array(precision.LOG2_SCALES)
for key, colour in (("flushed", "tab:red"), ("subnormal", "tab:orange"),
                    ("overflow", "tab:purple")):                    # (a share of 0 not drawn)
    ax.semilogy(k, [c[key] or np.nan for c in casts], "o-", color=colour, label=key)
ax.axvline(16, color="gray", ls=":", label="GradScaler's initial scale 2^16")
ax.set_xlabel("log₂ of the loss scale S")
ax.set_ylabel("share of the nonzero gradient elements")
ax.set_title("float16(g·S): scaling lifts gradients out of the subnormals, until they overflow")
ax.legend()
ax.grid(alpha=0.3)
fig.savefig(FIGURES / "11_loss_scaling.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# No single S is right for a whole run: gradients shrink as the loss falls and jump on a hard
# batch. `GradScaler` finds S as it goes (PyTorch's rules and defaults): start at 2^16; if any
# gradient is inf or NaN, skip that step and halve S; after 2,000 good steps in a row, double it.
# The four calls of an iteration, on a small float32 model so that we can compare with the
# unscaled gradient exactly:

# %%
minigrad.manual_seed(0)
net = nn.Linear(4, 1)
opt = optim.SGD(net.parameters(), lr=0.1)
x, y = minigrad.randn(8, 4), minigrad.randn(8, 1)
((net(x) - y) ** 2).mean().backward()
true_grad = net.weight.grad.copy()
opt.zero_grad()

scaler = GradScaler()
scaler.scale(((net(x) - y) ** 2).mean()).backward()   # backward of S·L
scaled = net.weight.grad.copy()
scaler.unscale_(opt)                                   # grad /= S: the true gradient again
print(f"scale {scaler.get_scale():.0f}: scaled gradient / true = "
      f"{(scaled / true_grad).ravel()[:2]}; unscaled equals the true one bit for bit: "
      f"{np.array_equal(net.weight.grad, true_grad)}")
assert np.array_equal(net.weight.grad, true_grad)
before = net.weight.numpy().copy()
scaler.step(opt)
scaler.update()
assert not np.array_equal(net.weight.numpy(), before)  # a good step is taken

opt.zero_grad()
scaler.scale(((net(x) - y) ** 2).mean()).backward()
net.weight.grad[0, 0] = np.inf                         # as if float16 had overflowed
before = net.weight.numpy().copy()
scaler.step(opt)
scaler.update()
print(f"after an inf gradient: step skipped ({np.array_equal(net.weight.numpy(), before)}), "
      f"scale halved to {scaler.get_scale():.0f}")
assert np.array_equal(net.weight.numpy(), before) and scaler.get_scale() == 2.0**15

# %% [markdown]
# ## 4. What it buys and costs, measured
#
# `minigrad.autocast(dtype=...)` runs a model's matrix products with half-precision inputs and
# keeps the activations that backward needs in that dtype, while softmax, LayerNorm, GELU's erf,
# the losses and the reductions stay in float32 and the weights stay float32 masters (PyTorch's
# rules). `benchmarks/precision.py` measured three things on this machine (its docstring and
# `benchmarks/results/precision.md` say exactly how): a bert-mini training step in float32,
# bfloat16 and float16 against PyTorch's CPU autocast in the same run; the gradients of section
# 2 at every loss scale; and MiniLM fine-tuned on the rotten-tomatoes reviews at each precision,
# the same steps of the same batches. We read its results.

# %%
results = json.loads((RESULTS / "precision.json").read_text())
parts = results["parts"]
print(results["command"], results["date"], f"(load average {results['load_before']})")
for name in precision.STEP_PARTS:
    r = parts[name]
    kinds = ", ".join(f"{k} {v / 2**20:.0f}" for k, v in r["activation_bytes_by_dtype"].items())
    print(f"{r['label']:40s} {r['ratio_of_pairs']:.2f}× minigrad float32's step time, peak RSS "
          f"{r['peak_rss_mb']:5,.0f} MB, saved for backward {r['activation_bytes'] / 2**20:6,.1f} "
          f"MB ({kinds})")

# %% [markdown]
# **Memory.** Under autocast most of what a forward pass keeps for backward takes 2 bytes a
# number instead of 4: the inputs of every matrix product, the attention's, GELU's. What stays
# float32 is what the rules compute in float32 (LayerNorm keeps its normalised input), and the
# dropout masks take a byte per element in any precision. So the activation memory falls, but
# not to half.

# %%
mem = {p: parts[p]["activation_bytes"] / parts["fp32"]["activation_bytes"] for p in ("bf16",
                                                                                  "fp16")}
theirs = parts["torch_bf16"]["activation_bytes"] / parts["torch_fp32"]["activation_bytes"]
print(f"activation memory against float32: bfloat16 {mem['bf16']:.3f}×, float16 "
      f"{mem['fp16']:.3f}×; PyTorch's bfloat16 against its float32: {theirs:.3f}×")
assert 0.5 < mem["bf16"] < 1 and 0.5 < mem["fp16"] < 1

# %% [markdown]
# **Speed.** On this CPU half precision makes minigrad's step *slower*, not faster. NumPy has
# no BLAS for float16 and none at all for bfloat16, so minigrad (like PyTorch and JAX on a CPU
# without half-precision matrix instructions) casts the half inputs up to float32, multiplies
# with SGEMM and rounds the result back: every product costs the float32 product plus the
# casts, and the elementwise work in half precision goes through slower loops. PyTorch's
# bfloat16 step, on the other hand, is faster than its float32 one here: this CPU has the
# AVX-512 BF16 dot-product instructions, and PyTorch's oneDNN kernels use them. The speed of
# half precision is a property of the hardware and of kernels written for it, not of the format.

# %%
slower = {p: parts[p]["ratio_of_pairs"] for p in ("bf16", "fp16")}
torch_gain = parts["torch_fp32"]["ms"] / parts["torch_bf16"]["ms"]
print(f"minigrad: bfloat16 {slower['bf16']:.2f}×, float16 {slower['fp16']:.2f}× float32's time; "
      f"PyTorch: bfloat16 {torch_gain:.1f}× faster than its float32")
assert slower["bf16"] > 1 and slower["fp16"] > 1

# %% [markdown]
# **Accuracy.** The fine-tuning runs took the same batches in the same order; float16 with its
# `GradScaler` skips a step whenever a scaled gradient overflows (the history records them).

# %%
for name in precision.FINETUNE_PARTS:
    r = parts[name]
    print(f"fine-tuned in {r['label']:30s}: test accuracy {r['accuracy']:.4f} "
          f"({100 * (r['accuracy'] - parts['finetune_fp32']['accuracy']) + 0.0:+.2f} points), "
          f"{r['steps']} steps, {r['skipped_steps']} skipped")
fig, ax = plt.subplots(figsize=(9, 5))
precision.plot_losses(ax, parts)
ax.set_title("MiniLM on rotten-tomatoes: the same steps in three precisions")
fig.savefig(FIGURES / "11_precision_curves.png", dpi=100, bbox_inches="tight")
for target in results["targets"]:
    print(f"{'met   ' if target['met'] else 'MISSED'} {target['target']}: {target['detail']}")

# %% [markdown]
# ## What to take away
#
# * float16 and bfloat16 spend their 16 bits differently: float16 on precision (10 fraction
#   bits) and bfloat16 on range (float32's 8 exponent bits).
# * A real training step's gradients live mostly below float16's smallest normal number; cast
#   to float16 they lose their significant bits or vanish.
# * Loss scaling multiplies them into range and divides them back out exactly; `GradScaler`
#   finds the scale as it goes and skips the rare step that overflows. bfloat16 needs none.
# * What autocast buys on this CPU is memory, not speed: the activations kept for backward
#   shrink, while every half-precision product is a float32 product with casts around it.
