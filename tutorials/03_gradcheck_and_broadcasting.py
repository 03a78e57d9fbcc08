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
# # 03 · Gradient checking and broadcasting
#
# An autograd engine is only as good as each op's backward, and a wrong backward fails
# silently: training still runs, the loss just falls more slowly, or not at all. The cure is
# to check every backward against a gradient computed a completely different way, from two
# forward passes: **finite differences**. This tutorial derives the central difference, shows
# how to choose its step ε (and why 1e-6, not 1e-12), takes apart the one place where array
# gradients most often go wrong (**broadcasting**), and then plants a bug in a backward pass
# for `minigrad.gradcheck` to catch.
#
# Run it as a script (`.venv/bin/python tutorials/03_gradcheck_and_broadcasting.py`) or open
# it as a notebook (`make notebooks`).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minigrad
from minigrad.autograd import Context, Function
from minigrad.gradcheck import compare_gradients
from minigrad.ops.common import unbroadcast

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)


def sigma(x):
    """The logistic sigmoid, in the dtype of x (float32 stays float32)."""
    return 1 / (1 + np.exp(-x))


def dsigma(x):
    s = sigma(x)
    return s * (1 - s)


def d3sigma(x):
    """σ‴(x) = σ(1 − σ)(1 − 6σ + 6σ²), for the truncation-error model."""
    s = sigma(x)
    return s * (1 - s) * (1 - 6 * s + 6 * s * s)


# %% [markdown]
# ## 1. Central differences, by hand
#
# Taylor's theorem around $x$:
#
# $$f(x \pm \varepsilon) = f(x) \pm \varepsilon f'(x) + \tfrac{\varepsilon^2}{2} f''(x)
#   \pm \tfrac{\varepsilon^3}{6} f'''(x) + \dots$$
#
# The *forward* difference $\frac{f(x+\varepsilon) - f(x)}{\varepsilon} = f'(x) +
# \tfrac{\varepsilon}{2}f''(x) + \dots$ is off by $O(\varepsilon)$. Subtracting the two
# expansions cancels every even power, so the *central* difference
#
# $$\frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon}
#   = f'(x) + \tfrac{\varepsilon^2}{6} f'''(x) + O(\varepsilon^4)$$
#
# is off by only $O(\varepsilon^2)$, for one more function evaluation per input. We try both
# on the sigmoid of seed 000's neurons, at its $z_1 = 2.1$, where
# $\sigma'(z) = \sigma(z)(1 - \sigma(z))$ is known exactly.

# %%
x0, eps = 2.1, 1e-3
forward = (sigma(x0 + eps) - sigma(x0)) / eps
central = (sigma(x0 + eps) - sigma(x0 - eps)) / (2 * eps)
exact = dsigma(x0)
print(f"σ'(2.1) = {exact:.12f}")
print(f"forward difference, ε = 1e-3: {forward:.12f}   error {abs(forward - exact):.1e}")
print(f"central difference, ε = 1e-3: {central:.12f}   error {abs(central - exact):.1e}")
assert abs(central - exact) < abs(forward - exact) / 100

# %% [markdown]
# At the same ε the central difference is more than a hundred times closer. Its leading error
# term predicts the error itself: $\tfrac{\varepsilon^2}{6}\sigma'''(x)$.

# %%
predicted = eps**2 / 6 * d3sigma(x0)
print(f"central error {central - exact:.4e},  predicted ε²σ‴/6 = {predicted:.4e}")
assert abs((central - exact) / predicted - 1) < 0.01

# %% [markdown]
# ## 2. How small should ε be? The error-versus-ε curve
#
# The formula says: the smaller ε, the better. The computer disagrees. $f(x\pm\varepsilon)$ are
# each rounded to the nearest floating-point number, a relative error of up to the *unit
# roundoff* $u$ ($2^{-53} \approx 1.1\cdot10^{-16}$ in float64, $2^{-24} \approx 6\cdot10^{-8}$
# in float32; NumPy's `finfo.eps` is $2u$). When ε is small the two values agree in most of
# their digits, the subtraction cancels those digits, and the rounding errors, divided by
# $2\varepsilon$, remain. The total error is about
#
# $$E(\varepsilon) \approx \underbrace{\frac{\varepsilon^2}{6}|f'''|}_{\text{truncation}}
#   + \underbrace{\frac{u\,|f|}{\varepsilon}}_{\text{rounding}},$$
#
# falling as $\varepsilon^2$ from the right and rising as $1/\varepsilon$ to the left. Setting
# $dE/d\varepsilon = 0$ gives the best step $\varepsilon^* = (3u|f|/|f'''|)^{1/3}$, which grows
# like $u^{1/3}$: about $5\cdot10^{-6}$ in float64 when $f$ and $f'''$ are of order one. Let
# us measure it, averaging the error over 64 points $x \in [-3, 3]$ to smooth out the
# randomness of rounding.

# %%
xs = np.linspace(-3, 3, 64)
epsilons = np.logspace(-15, -0.5, 200)
exact_grid = dsigma(xs)                              # float64 reference


def central_error(dtype):
    """Mean |central difference − σ′| over xs, for each ε, computed entirely in ``dtype``."""
    x = xs.astype(dtype)
    errors = []
    for e in epsilons:
        e = dtype(e)
        estimate = (sigma(x + e) - sigma(x - e)) / (dtype(2) * e)
        errors.append(np.mean(np.abs(estimate.astype(np.float64) - exact_grid)))
    return np.array(errors)


error64, error32 = central_error(np.float64), central_error(np.float32)
u64, u32 = np.finfo(np.float64).eps / 2, np.finfo(np.float32).eps / 2
truncation_model = epsilons**2 / 6 * np.mean(np.abs(d3sigma(xs)))
rounding_model = u64 * np.mean(np.abs(sigma(xs))) / epsilons
best64, best32 = epsilons[np.argmin(error64)], epsilons[np.argmin(error32)]


def at(errors, e):
    return errors[np.argmin(np.abs(np.log(epsilons / e)))]


def slope(errors, lo, hi):
    """The slope of log(error) against log(ε) for ε in [lo, hi]."""
    keep = (epsilons >= lo) & (epsilons <= hi)
    return np.polyfit(np.log(epsilons[keep]), np.log(errors[keep]), 1)[0]


print(f"float64: best ε = {best64:.1e} (u^(1/3) = {u64 ** (1 / 3):.1e}), error there "
      f"{error64.min():.1e}")
print(f"         error at ε = 1e-6: {at(error64, 1e-6):.1e},  at ε = 1e-12: "
      f"{at(error64, 1e-12):.1e}")
print(f"         slope for ε in [1e-3, 3e-2]: {slope(error64, 1e-3, 3e-2):+.3f},  "
      f"for ε in [1e-13, 1e-8]: {slope(error64, 1e-13, 1e-8):+.3f}")
print(f"float32: best ε = {best32:.1e} (u^(1/3) = {u32 ** (1 / 3):.1e}), error there "
      f"{error32.min():.1e};  error at ε = 1e-6: {at(error32, 1e-6):.1e}")

# %% [markdown]
# What the measurement says, each line asserted below:
#
# * in float64 the error falls with slope 2 on the right (truncation, $\varepsilon^2$) and rises
#   with slope −1 on the left (rounding, $1/\varepsilon$), as the model says;
# * the best ε lies within a factor of 5 of $u^{1/3}$, near $10^{-5}$; at the conventional
#   $\varepsilon = 10^{-6}$ the error is within a factor of 20 of the best one;
# * at $\varepsilon = 10^{-12}$ the error is more than $10^5$ times larger than at $10^{-6}$:
#   above $10^{-5}$, on derivatives no larger than $\sigma'(0) = 0.25$, where
#   $\varepsilon = 10^{-6}$ stays below $10^{-10}$;
# * in float32 everything moves: the best ε is near $u_{32}^{1/3} \approx 4\cdot10^{-3}$, the best
#   error is more than $10^5$ times worse than float64's, and at $\varepsilon = 10^{-6}$ the
#   error is above $10^{-3}$ — useless for checking a gradient. That is why gradient checks run
#   in float64, and why `minigrad.gradcheck` refuses float32 inputs.

# %%
assert 1.9 < slope(error64, 1e-3, 3e-2) < 2.1
assert -1.2 < slope(error64, 1e-13, 1e-8) < -0.8
assert 1 / 5 < best64 / u64 ** (1 / 3) < 5
assert at(error64, 1e-6) < 20 * error64.min()
assert at(error64, 1e-12) > 1e5 * at(error64, 1e-6)
assert at(error64, 1e-12) > 1e-5 and at(error64, 1e-6) < 1e-10
assert 1 / 5 < best32 / u32 ** (1 / 3) < 5
assert error32.min() > 1e5 * error64.min()
assert at(error32, 1e-6) > 1e-3
assert error32[0] == np.mean(np.abs(exact_grid))    # far left: x ± ε == x, the estimate is 0

# %% [markdown]
# On the far left of the float32 curve the error stops growing: there ε is below the spacing
# of float32 numbers near $x$, so $x + \varepsilon$ rounds back to $x$, the difference is 0,
# and the error is simply $|\sigma'(x)|$.

# %%
fig, ax = plt.subplots(figsize=(9, 5.8))
ax.loglog(epsilons, error64, color="tab:blue", lw=2, label="central difference, float64")
ax.loglog(epsilons, error32, color="tab:orange", lw=2, label="central difference, float32")
ax.loglog(epsilons, truncation_model, "--", color="tab:green",
          label="truncation model  ε²·|σ‴|/6")
ax.loglog(epsilons, rounding_model, "--", color="tab:red", label="rounding model  u·|σ|/ε")
ax.axvline(u64 ** (1 / 3), color="tab:blue", ls=":", label="u^(1/3), float64")
ax.axvline(u32 ** (1 / 3), color="tab:orange", ls=":", label="u^(1/3), float32")
ax.plot([1e-6], [at(error64, 1e-6)], "o", color="black", ms=7,
        label="ε = 1e-6 (minigrad.gradcheck)")
ax.plot([1e-12], [at(error64, 1e-12)], "x", color="black", ms=9, mew=2, label="ε = 1e-12")
ax.set_ylim(1e-13, 1e3)
ax.set_xlabel("step ε")
ax.set_ylabel("mean |central difference − σ′(x)| over 64 points x ∈ [−3, 3]")
ax.set_title("Finite-difference error against the step ε: truncation on the right, "
             "rounding on the left", fontsize=11)
ax.legend(fontsize=8.5, loc="upper center", ncol=2)
ax.grid(alpha=0.3, which="major")
fig.tight_layout()
path = FIGURES / "03_error_vs_eps.png"
fig.savefig(path, dpi=120)
print("saved", path)

# %% [markdown]
# ## 3. `minigrad.gradcheck`
#
# `minigrad.gradcheck(fn, inputs)` does the above for every element of every input that
# requires a gradient, with ε = 1e-6, and compares with what `backward()` computes: an element
# passes when $|\text{analytic} - \text{numeric}| \le 10^{-5} + 10^{-3}|\text{numeric}|$.
# When `fn` returns a tensor rather than a number, it checks the scalar
# $\sum_k y_k w_k$ with fixed random weights $w$: one backward then checks the
# vector-Jacobian product in a random direction, which catches an error in any output.
#
# Seed 000's two neurons pass, for the weights, the bias and the input at once:

# %%
W = minigrad.tensor([[0.5, 0.7], [0.3, 0.8]], dtype="float64", requires_grad=True)
b = minigrad.tensor([0.2, 0.4], dtype="float64", requires_grad=True)
x = minigrad.tensor([1.0, 2.0], dtype="float64", requires_grad=True)


def neurons(w, b, x):
    return minigrad.sigmoid(w @ x + b)


assert minigrad.gradcheck(neurons, [W, b, x])
print("gradcheck(neurons): passed")

try:
    minigrad.gradcheck(neurons, [W.float().requires_grad_(), b.float(), x.float()])
    refused = None
except TypeError as error:
    refused = str(error)
print("float32 inputs:", refused)
assert refused is not None and "float64" in refused

# %% [markdown]
# ## 4. Broadcasting, and how its gradient is summed back
#
# NumPy (and minigrad, and PyTorch) let you add a column of shape (3, 1) to a row of shape
# (4,): the shapes are aligned on the right, missing leading dimensions count as 1, and every
# dimension of size 1 is stretched to match the other operand. The result $c$ has shape (3, 4),
# with $c_{ij} = a_i + b_j$.
#
# Backward has to undo the stretching. Each $a_i$ was used four times, once in every column
# $j$, so by the multivariable chain rule its gradient is the *sum* of the four gradients
# that come back: $\partial L/\partial a_i = \sum_j \partial L/\partial c_{ij}$. Likewise
# $\partial L/\partial b_j = \sum_i \partial L/\partial c_{ij}$. In general
# `minigrad.ops.common.unbroadcast(grad, shape)` sums over
#
# 1. the leading dimensions that broadcasting added, and
# 2. every dimension where the input had size 1 (keeping it, so the shape comes back).
#
# We make the gradient arriving at $c$ easy to read: with $L = \sum_{ij} G_{ij} c_{ij}$ for a
# fixed integer matrix $G$, $\partial L/\partial c = G$.

# %%
a = minigrad.tensor([[1.0], [2.0], [3.0]], dtype="float64", requires_grad=True)   # (3, 1)
b = minigrad.tensor([10.0, 20.0, 30.0, 40.0], dtype="float64", requires_grad=True)  # (4,)
c = a + b                                                                          # (3, 4)
G = np.random.default_rng(3).integers(-3, 4, size=(3, 4)).astype(np.float64)
(c * minigrad.tensor(G)).sum().backward()

print("a:", a.shape, "+ b:", b.shape, "-> c:", c.shape)
print("b is aligned on the right as (1, 4); both are stretched to (3, 4)")
print("∂L/∂c = G =\n", G)
print("a.grad, shape", a.grad.shape, "=\n", a.grad)
print("b.grad, shape", b.grad.shape, "=", b.grad)
assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
assert np.array_equal(a.grad, G.sum(axis=1, keepdims=True))   # each a_i: the sum of its row
assert np.array_equal(b.grad, G.sum(axis=0))                   # each b_j: the sum of its column
assert np.array_equal(unbroadcast(G, (3, 1)), a.grad)
assert np.array_equal(unbroadcast(G, (4,)), b.grad)

# %% [markdown]
# Step by step, for each input:
#
# * `a`, (3, 1): no dimension was added (both have two); its dimension 1 had size 1 and
#   became 4, so sum over axis 1 with `keepdims=True`: (3, 4) → (3, 1).
# * `b`, (4,): one leading dimension was added, so sum over axis 0: (3, 4) → (1, 4) → (4,).
#
# Both rules at once: $x$ of shape (3, 1) times $y$ of shape (2, 3, 4). The gradient for $x$
# arrives with shape (2, 3, 4) and is summed over axis 0 (added) and axis 2 (size 1).

# %%
for shape in [(3, 1), (4,), (1, 4), (2, 1, 4), (1,), ()]:
    print(f"unbroadcast: gradient (2, 3, 4) -> {shape}: "
          f"{unbroadcast(np.ones((2, 3, 4)), shape).shape}, each element the sum of "
          f"{int(unbroadcast(np.ones((2, 3, 4)), shape).flat[0])} ones")

x = minigrad.tensor(np.random.default_rng(0).standard_normal((3, 1)), requires_grad=True,
                    dtype="float64")
y = minigrad.tensor(np.random.default_rng(1).standard_normal((2, 3, 4)), requires_grad=True,
                    dtype="float64")
assert minigrad.gradcheck(lambda x, y: x * y, [x, y])
(x * y).sum().backward()
assert x.grad.shape == (3, 1)
assert np.allclose(x.grad, y.numpy().sum(axis=(0, 2))[:, None], atol=1e-14)
print("gradcheck(x * y) for shapes (3, 1) and (2, 3, 4): passed")

# %% [markdown]
# ### Figure: where each gradient element comes from

# %%
fig, ax = plt.subplots(figsize=(8, 6.2))
norm = plt.Normalize(-7, 7)
cmap = plt.get_cmap("coolwarm")


def cell(col, row, value):
    ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fc=cmap(norm(value)), ec="white",
                               lw=2))
    ax.text(col, row, f"{value:+.0f}", ha="center", va="center", fontsize=13)


for (i, j), v in np.ndenumerate(G):                 # ∂L/∂c, rows i, columns j
    cell(j, i, v)
for i, v in enumerate(a.grad[:, 0]):                # a.grad: one cell per row, to the right
    cell(5.5, i, v)
for j, v in enumerate(b.grad):                      # b.grad: one cell per column, below
    cell(j, 4, v)
ax.annotate("", xy=(4.9, 1), xytext=(3.6, 1), arrowprops={"arrowstyle": "-|>", "lw": 2})
ax.text(4.25, 0.75, "Σ over j", ha="center", fontsize=11)
ax.annotate("", xy=(1.5, 3.4), xytext=(1.5, 2.6), arrowprops={"arrowstyle": "-|>", "lw": 2})
ax.text(1.65, 3.05, "Σ over i", va="center", fontsize=11)
ax.text(1.5, -0.8, "∂L/∂c = G, shape (3, 4)", ha="center", fontsize=11)
ax.text(5.5, -0.8, "a.grad (3, 1)", ha="center", fontsize=11)
ax.text(1.5, 4.75, "b.grad (4,)", ha="center", va="top", fontsize=11)
ax.set_xlim(-0.7, 6.2)
ax.set_ylim(5.0, -1.1)
ax.set_aspect("equal")
ax.set_xticks(range(4))
ax.set_yticks(range(3))
ax.set_xlabel("j: column of c, the index of b")
ax.set_ylabel("i: row of c, the index of a")
for side in ("top", "right"):
    ax.spines[side].set_visible(False)
fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7,
             label="gradient value")
ax.set_title("c = a + b with a (3, 1), b (4,): backward sums each input's copies",
             fontsize=11)
fig.tight_layout()
path = FIGURES / "03_broadcast_gradient.png"
fig.savefig(path, dpi=120)
print("saved", path)

# %% [markdown]
# ## 5. A deliberately wrong backward, caught
#
# To add an op to minigrad you write a `Function`: `forward(ctx, *arrays)` computes the result
# and saves what backward needs, `backward(ctx, g)` maps the gradient of the output to one
# gradient per input. Here is a sigmoid whose author forgot the factor $(1 - \sigma)$ of
# $\sigma' = \sigma(1-\sigma)$. It runs, and training with it would run too.

# %%
class BuggySigmoid(Function):
    """z = σ(x);  dz/dx should be z(1 − z), but this backward returns z."""

    @staticmethod
    def forward(ctx: Context, x):
        z = 1 / (1 + np.exp(-x))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx: Context, g):
        (z,) = ctx.saved
        return g * z                     # the bug: missing * (1 - z)


def buggy_sigmoid(x):
    return BuggySigmoid.apply(x)


t = minigrad.tensor([[-1.0, 0.5], [2.0, 0.1]], dtype="float64", requires_grad=True)
try:
    minigrad.gradcheck(buggy_sigmoid, [t])
    message = None
except minigrad.GradcheckError as error:
    message = str(error)
print(message)
assert message is not None and "analytic" in message and "numeric" in message

# %% [markdown]
# The message names the input, the index of the first element that fails, and both numbers.
# Here the analytic value is $\sigma(x)$ and the numeric one $\sigma(x)(1-\sigma(x))$, so
# their ratio is $1/(1 - \sigma(x))$ at every element:

# %%
[(_, analytic, numeric)] = compare_gradients(buggy_sigmoid, [t])
s = sigma(t.numpy())
print("analytic / numeric =\n", analytic / numeric, "\n1 / (1 − σ(x)) =\n", 1 / (1 - s))
assert np.allclose(analytic / numeric, 1 / (1 - s), rtol=1e-6)

# %% [markdown]
# A subtler bug, of the kind the style guide warns about: an addition whose backward *averages*
# the broadcast copies instead of summing them. The shapes all come out right, so the engine's
# shape check has nothing to complain about; only the values are wrong, by the number of copies.

# %%
class AddAveragingBroadcast(Function):
    """z = a + b, with a backward that averages where it should sum (a bug)."""

    @staticmethod
    def forward(ctx: Context, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx: Context, g):
        sa, sb = ctx.shapes
        ga = g.mean(axis=1, keepdims=True) if sa[1] == 1 else g     # the bug: mean, not sum
        return ga, unbroadcast(g, sb)


a = minigrad.tensor([[1.0], [2.0], [3.0]], dtype="float64", requires_grad=True)   # (3, 1)
b = minigrad.tensor([10.0, 20.0, 30.0, 40.0], dtype="float64", requires_grad=True)  # (4,)
def add_averaging(a, b):
    return AddAveragingBroadcast.apply(a, b)


try:
    minigrad.gradcheck(add_averaging, [a, b])
    message = None
except minigrad.GradcheckError as error:
    message = str(error)
print(message)
assert message is not None and "input 0 (shape (3, 1))" in message
results = compare_gradients(add_averaging, [a, b])
ratio_a = results[0][2] / results[0][1]          # numeric / analytic for a
print("numeric / analytic for a:", ratio_a.ravel(), "(a was copied 4 times)")
assert np.allclose(ratio_a, 4.0) and np.allclose(results[1][1], results[1][2], atol=1e-8)

# %% [markdown]
# And the crudest broadcasting bug, forgetting to reduce at all, does not even get as far as
# gradcheck: the engine checks every gradient's shape against its input's and names the op.

# %%
class AddWithoutUnbroadcast(Function):
    """z = a + b, with a backward that passes g on unreduced (a bug)."""

    @staticmethod
    def forward(ctx: Context, a, b):
        return a + b

    @staticmethod
    def backward(ctx: Context, g):
        return g, g


try:
    AddWithoutUnbroadcast.apply(a, b).sum().backward()
    message = None
except RuntimeError as error:
    message = str(error)
print(message)
assert message is not None and "AddWithoutUnbroadcast" in message
assert "(3, 4)" in message and "(3, 1)" in message

# %% [markdown]
# ## What to take away
#
# * Check a backward against central differences, in float64, with ε near $u^{1/3}$
#   (1e-6 is the usual choice): smaller is *not* better, because the rounding error grows as
#   $1/\varepsilon$.
# * A broadcast input's gradient is the sum over its copies: over the added leading
#   dimensions and over its size-1 dimensions. minigrad does this in one helper,
#   `unbroadcast`, used by every binary op.
# * `minigrad.gradcheck` names the input, the element and both values when a backward is
#   wrong; `tests/test_ops_gradcheck.py` runs it on every op, over shapes drawn by hypothesis.
