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
# # 04 · Gradient descent and optimizers
#
# Tutorials 02 and 03 computed gradients and checked them. This one uses them: gradient
# descent as seed 004 lays it out, what the learning rate does, how momentum, Nesterov, Adam
# and AdamW improve on the plain step, and the tools seed 002 lists for fine-tuning:
# L1 and L2 regularisation and learning-rate decay. Everything runs on minigrad's optimizers
# (`minigrad.optim`), which follow `torch.optim` (the tests compare them step by step).
#
# Run it as a script (`.venv/bin/python tutorials/04_optimizers.py`, about ten seconds) or open
# it as a notebook (`make notebooks`).

# %%
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minigrad
from minigrad import optim
from minigrad.data import datasets
from minigrad.data.datasets import train_test_split

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)

# %% [markdown]
# ## 1. Two loss surfaces
#
# Real losses have millions of parameters; two are enough to see what an optimizer does.
#
# * An **ill-conditioned quadratic** $f(\theta) = \tfrac12(\theta - c)^\top A(\theta - c)$
#   with minimum $c = (1, 1)$. $A$ has eigenvalues $\mu = 1$ and $L = 100$, along axes turned
#   by 30°: the valley is a hundred times steeper across than along. Near any minimum a smooth
#   loss looks like this, and the ratio $\kappa = L/\mu$ (the *condition number*) is what
#   makes training slow.
# * The **Rosenbrock function** $f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$: a curved, flat-bottomed
#   valley with its minimum at $(1, 1)$, the classic test of an optimizer.

# %%
ANGLE = np.deg2rad(30)
ROTATION = np.array([[np.cos(ANGLE), -np.sin(ANGLE)], [np.sin(ANGLE), np.cos(ANGLE)]])
A = ROTATION @ np.diag([1.0, 100.0]) @ ROTATION.T
MU, L_SMOOTH = 1.0, 100.0
MINIMUM = np.array([1.0, 1.0])
A_T = minigrad.tensor(A)                           # float64, as the parameters below
C_T = minigrad.tensor(MINIMUM)


def quadratic(theta):
    """f at θ of shape (2,), or at each row of θ of shape (K, 2)."""
    d = theta - C_T                                # (..., 2)
    return 0.5 * ((d @ A_T) * d).sum(-1)           # (...)


def rosenbrock(theta):
    """f at θ of shape (2,), or at each row of θ of shape (K, 2)."""
    x, y = theta[..., 0], theta[..., 1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


QUAD_START = [-2.5, 0.0]
ROSEN_START = [-1.2, 1.0]

# %% [markdown]
# ## 2. Seed 004's steps, by hand
#
# Seed 004 (§3) writes gradient descent as a loop: (1) initialise the parameters $\theta_0$
# and the learning rate $\eta$; (2) run the model forward; (3) compute the loss; (4) compute
# its gradient $\nabla_\theta L$; (5) update $\theta_{t+1} = \theta_t - \eta\nabla_\theta L$;
# (6) repeat. In minigrad each step is one line:

# %%
theta = minigrad.tensor(QUAD_START, dtype="float64", requires_grad=True)  # (1) θ₀ ...
eta = 0.009                                                                # ... and η
by_hand = [theta.numpy().copy()]
for step in range(150):                                                    # (6) repeat
    loss = quadratic(theta)                                                # (2) and (3)
    theta.grad = None
    loss.backward()                                                        # (4) ∇θL
    if step < 4:
        print(f"step {step}: θ = {theta.numpy()}, L = {loss.item():9.4f}, ∇L = {theta.grad}")
    theta.data -= eta * theta.grad                                         # (5) the update
    by_hand.append(theta.numpy().copy())
by_hand = np.array(by_hand)

# %% [markdown]
# `optim.SGD` is exactly this update, with the bookkeeping (`zero_grad`, `step`) that every
# optimizer shares. From now on we let the optimizers take the step:

# %%
def descend(loss_fn, start, make_optimizer, steps):
    """Run ``steps`` optimizer steps from ``start``; the path (steps + 1, 2) and the losses.

    Stops early, with what it has, once the loss is no longer finite or passes 1e12.
    """
    theta = minigrad.tensor(start, dtype="float64", requires_grad=True)
    optimizer = make_optimizer([theta])
    path, losses = [theta.numpy().copy()], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            optimizer.zero_grad()
            loss = loss_fn(theta)
            losses.append(loss.item())
            if not losses[-1] < 1e12:
                break
            loss.backward()
            optimizer.step()
            path.append(theta.numpy().copy())
        else:
            losses.append(loss_fn(theta).item())
    return np.array(path), np.array(losses)


sgd_path, _ = descend(quadratic, QUAD_START, lambda p: optim.SGD(p, lr=eta), 150)
assert np.array_equal(sgd_path, by_hand)
print("optim.SGD took the same 150 steps as the loop by hand, to the last bit")

# %% [markdown]
# ## 3. The learning rate: too small, just right, too large
#
# On a quadratic the effect of η can be worked out exactly. Write $\theta - c$ in the
# eigenvectors of $A$; one step multiplies the component along an eigenvalue $\lambda$ by
# $(1 - \eta\lambda)$. So:
#
# * if $\eta > 2/L$ the steep component is multiplied by $|1 - \eta L| > 1$ every step:
#   **divergence**;
# * if $1/L < \eta < 2/L$ the factor is negative: the steep component changes sign every step,
#   the path **zigzags** across the valley, yet it still converges;
# * if η is tiny the factors are close to 1 and the descent **crawls**;
# * the flat direction converges at rate $1 - \eta\mu$ at best, so even the best η,
#   just under $2/L$, needs on the order of $\kappa$ steps. That is the problem momentum
#   solves in section 4.
#
# Here $L = 100$, so the edge of stability is $2/L = 0.02$.

# %%
RATES = {"η = 0.001 (too small: crawls)": 0.001,
         "η = 0.009 (< 1/L: smooth)": 0.009,
         "η = 0.0195 (< 2/L: zigzags)": 0.0195,
         "η = 0.021 (> 2/L: diverges)": 0.021}
STEPS_LR = 150
lr_runs = {name: descend(quadratic, QUAD_START, lambda p, lr=lr: optim.SGD(p, lr=lr), STEPS_LR)
           for name, lr in RATES.items()}
start_loss = lr_runs["η = 0.009 (< 1/L: smooth)"][1][0]
steep = ROTATION[:, 1]                             # the eigenvector of eigenvalue L
for name, (_, losses) in lr_runs.items():
    print(f"{name:32s} loss after {len(losses) - 1} steps: {losses[-1]:.3e}  "
          f"(start {losses[0]:.1f})")

small, smooth, zigzag, large = (lr_runs[name] for name in RATES)
distance = np.linalg.norm(small[0] - MINIMUM, axis=1)
assert distance[-1] > 0.5 * distance[0]                       # crawls: not halfway there
steep_part = (zigzag[0] - MINIMUM) @ steep                     # steep component, each step
assert np.all(np.sign(steep_part[1:]) == -np.sign(steep_part[:-1]))   # flips every step
assert zigzag[1][-1] < smooth[1][-1] < start_loss / 10        # ... and still does better
assert large[1][-1] >= 1e12                                   # diverges
assert np.all(np.diff(large[1]) > 0)

# %% [markdown]
# What the runs show, each asserted above: at η = 0.001 the loss falls fast at first (the steep
# component settles) and then crawls: after 150 steps θ is still more than half as far from
# the minimum as where it started. At η = 0.0195 the steep component changes sign at every
# step, and yet this zigzagging run ends lower than the smooth one at η = 0.009: the flat
# direction, the slow one, shrinks by 1.95% per step instead of 0.9%. At η = 0.021 the loss
# grows at every step, past $10^{12}$ within 150 steps.

# %%
def quad_grid(x, y):
    d = np.stack([x - MINIMUM[0], y - MINIMUM[1]], axis=-1)
    return 0.5 * np.einsum("...i,ij,...j->...", d, A, d)


def rosen_grid(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


QX, QY = np.meshgrid(np.linspace(-3.0, 2.2, 300), np.linspace(-1.0, 2.2, 300))
QZ = quad_grid(QX, QY)
QUAD_LEVELS = np.geomspace(0.01, 300, 14)
COLOURS = ["tab:gray", "tab:blue", "tab:green", "tab:red"]

fig = plt.figure(figsize=(15, 8.2))
grid = fig.add_gridspec(2, 3, width_ratios=[1, 1, 1.25])
for k, ((name, (path, _)), colour) in enumerate(zip(lr_runs.items(), COLOURS, strict=True)):
    ax = fig.add_subplot(grid[k // 2, k % 2])
    ax.contour(QX, QY, QZ, levels=QUAD_LEVELS, colors="0.75", linewidths=0.8)
    shown = path[:12] if "diverges" in name else path
    ax.plot(shown[:, 0], shown[:, 1], ".-", color=colour, ms=3, lw=1,
            label=f"{len(shown) - 1} steps" + (" (the first)" if len(shown) < len(path) else ""))
    ax.plot(*QUAD_START, "ko", ms=6, label="start")
    ax.plot(*MINIMUM, "k*", ms=12, label="minimum (1, 1)")
    ax.set_xlim(QX.min(), QX.max())
    ax.set_ylim(QY.min(), QY.max())
    ax.set_xlabel("θ₁")
    ax.set_ylabel("θ₂")
    ax.set_title(name, fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
ax = fig.add_subplot(grid[:, 2])
for (name, (_, losses)), colour in zip(lr_runs.items(), COLOURS, strict=True):
    ax.semilogy(losses, color=colour, label=name)
ax.set_xlabel("step")
ax.set_ylabel("loss f(θ)")
ax.set_title("loss per step")
ax.legend(fontsize=9)
ax.grid(alpha=0.3)
fig.suptitle("SGD on a quadratic with κ = 100 (2/L = 0.02): the learning rate decides")
fig.tight_layout()
figure_path = FIGURES / "04_learning_rates.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# ## 4. The race: SGD, momentum, Nesterov, Adam, AdamW
#
# The update rules (all in `minigrad/optim/`, with their math in the docstrings), with
# $g_t = \nabla L(\theta_t)$:
#
# * **SGD**: $\theta_{t+1} = \theta_t - \eta g_t$.
# * **Momentum** (heavy ball): a velocity $b_t = \mu b_{t-1} + g_t$ and
#   $\theta_{t+1} = \theta_t - \eta b_t$. Steps that agree in direction add up (along the
#   flat valley floor), steps that alternate cancel (across it). We use $\mu = 0.9$.
# * **Nesterov**: the same, but the step looks ahead, $\theta_{t+1} = \theta_t - \eta(g_t +
#   \mu b_t)$, which damps the overshoot.
# * **Adam**: running means of $g$ and $g^2$ (bias-corrected, $\hat m_t$ and $\hat v_t$) and the
#   step $\eta\,\hat m_t/(\sqrt{\hat v_t} + \epsilon)$: each coordinate gets its own scale, so
#   the step size is about η whatever the size of the gradient.
# * **AdamW**: Adam plus *decoupled* weight decay, $\theta \leftarrow \theta(1 - \eta\lambda)$
#   before each step (λ = 0.01, the default), the setting of seed 001's fine-tuning recipe.
#
# A race is only fair if each runner gets its best learning rate, so each optimizer runs once
# per η on a grid of quarter-decades and keeps the η with the lowest final loss: η from
# $10^{-4}$ to $0.1$ for the SGD family (their η multiplies the gradient, and anything larger
# diverges here), from $0.01$ to $10$ for Adam and AdamW (their step is about η itself).
# 150 steps on the quadratic, 1,000 on Rosenbrock.

# %%
SGD_GRID = 10 ** np.arange(-4.0, -0.99, 0.25)      # 1e-4 ... 0.1
ADAM_GRID = 10 ** np.arange(-2.0, 1.01, 0.25)      # 0.01 ... 10
OPTIMIZERS = {                                     # each takes parameter groups with their lr
    "SGD": (lambda groups: optim.SGD(groups), SGD_GRID),
    "momentum": (lambda groups: optim.SGD(groups, momentum=0.9), SGD_GRID),
    "Nesterov": (lambda groups: optim.SGD(groups, momentum=0.9, nesterov=True), SGD_GRID),
    "Adam": (lambda groups: optim.Adam(groups), ADAM_GRID),
    "AdamW": (lambda groups: optim.AdamW(groups), ADAM_GRID),
}
SURFACES = {"quadratic": (quadratic, QUAD_START, 150),
            "Rosenbrock": (rosenbrock, ROSEN_START, 1000)}


def race(loss_fn, start, steps):
    """For each optimizer, the run (path, losses, η) whose final loss is lowest on its grid.

    All the η of a grid run at once: each gets its own copy of θ in its own parameter group
    (the mechanism that gives parts of a model different settings). The loss summed over the
    copies has, for each copy, the gradient of that copy's own loss, so one backward serves
    them all. A run whose loss ever passes 1e12 or stops being finite has diverged.
    """
    best = {}
    for name, (make, grid) in OPTIMIZERS.items():
        copies = [minigrad.tensor(start, dtype="float64", requires_grad=True) for _ in grid]
        optimizer = make([{"params": [c], "lr": lr} for c, lr in zip(copies, grid, strict=True)])
        paths, losses = [np.stack([c.numpy().copy() for c in copies])], []
        with np.errstate(all="ignore"):
            for _ in range(steps):
                optimizer.zero_grad()
                per_copy = loss_fn(minigrad.stack(copies))            # (len(grid),)
                losses.append(per_copy.numpy().copy())
                per_copy.sum().backward()
                optimizer.step()
                paths.append(np.stack([c.numpy().copy() for c in copies]))
            with minigrad.no_grad():
                losses.append(loss_fn(minigrad.stack(copies)).numpy().copy())
        paths, losses = np.array(paths), np.array(losses)   # (steps+1, grid, 2), (steps+1, grid)
        converged = np.all(np.isfinite(losses) & (losses < 1e12), axis=0)
        k = np.argmin(np.where(converged, losses[-1], np.inf))
        if converged[k]:
            best[name] = (paths[:, k], losses[:, k], grid[k])
    return best


results = {surface: race(*spec) for surface, spec in SURFACES.items()}
for surface, best in results.items():
    print(f"--- {surface} ---")
    for name, (path, losses, lr) in best.items():
        print(f"{name:9s} best η {lr:8.4f}  final loss {losses[-1]:.2e}  "
              f"ends at ({path[-1, 0]:+.4f}, {path[-1, 1]:+.4f})")

# %% [markdown]
# What the race shows, each line asserted below:
#
# * on both surfaces, momentum, Nesterov and Adam end with a loss more than a hundred times
#   lower than plain SGD at its best η. On the quadratic, SGD's η is capped by the steep
#   direction ($\eta < 2/L$) and then crawls along the flat one; on Rosenbrock it crawls
#   along the curved valley floor;
# * AdamW ends farther from the minimum than Adam, and nearer the origin: its weight decay
#   pulls θ toward 0 at every step, so it settles where that pull balances the gradient, not
#   at the minimum of the loss alone. In a network this is the point of it (the L2 idea of
#   section 5: smaller weights, less overfitting); here, where the loss is all we want, it
#   only costs.

# %%
assert results["quadratic"]["SGD"][2] < 2 / L_SMOOTH
for surface, best in results.items():
    final = {name: run[1][-1] for name, run in best.items()}
    assert set(final) == set(OPTIMIZERS), f"every optimizer finishes on {surface}"
    for name in ("momentum", "Nesterov", "Adam"):
        assert final[name] < final["SGD"] / 100, (surface, name)
    adam_end, adamw_end = best["Adam"][0][-1], best["AdamW"][0][-1]
    assert np.linalg.norm(adamw_end - MINIMUM) > np.linalg.norm(adam_end - MINIMUM)
    assert np.linalg.norm(adamw_end) < np.linalg.norm(adam_end)

# %%
RX, RY = np.meshgrid(np.linspace(-1.7, 1.7, 300), np.linspace(-0.6, 2.2, 300))
RZ = rosen_grid(RX, RY)
RACE_COLOURS = {"SGD": "tab:gray", "momentum": "tab:blue", "Nesterov": "tab:cyan",
                "Adam": "tab:red", "AdamW": "tab:orange"}

fig, axes = plt.subplots(2, 2, figsize=(14, 10.5))
for row, (surface, (X, Y, Z), levels) in enumerate([
        ("quadratic", (QX, QY, QZ), QUAD_LEVELS),
        ("Rosenbrock", (RX, RY, RZ), np.geomspace(0.05, 800, 14))]):
    ax_path, ax_loss = axes[row]
    ax_path.contour(X, Y, Z, levels=levels, colors="0.75", linewidths=0.8)
    for name, (path, losses, lr) in results[surface].items():
        label = f"{name} (η = {lr:.2g}): final loss {losses[-1]:.1e}"
        ax_path.plot(path[:, 0], path[:, 1], ".-", color=RACE_COLOURS[name], ms=2,
                     lw=1.6 if name == "SGD" else 1, zorder=3 if name == "SGD" else 2,
                     label=label)
        ax_loss.semilogy(losses, color=RACE_COLOURS[name], label=name)
    ax_path.plot(*SURFACES[surface][1], "ko", ms=7, label="start")
    ax_path.plot(*MINIMUM, "k*", ms=14, label="minimum (1, 1)")
    ax_path.set_xlim(X.min(), X.max())
    ax_path.set_ylim(Y.min(), Y.max())
    ax_path.set_xlabel("θ₁")
    ax_path.set_ylabel("θ₂")
    ax_path.set_title(f"{surface}: each optimizer at its best η")
    ax_path.legend(fontsize=8, loc="lower right" if row == 0 else "lower left")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss f(θ)")
    ax_loss.set_title(f"{surface}: loss per step")
    ax_loss.legend(fontsize=9)
    ax_loss.grid(alpha=0.3)
fig.tight_layout()
figure_path = FIGURES / "04_optimizer_race.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# ## 5. L1 and L2 regularisation on real data
#
# Seed 002 names two penalties that keep fine-tuned weights in check: **L2**, which adds
# $\tfrac{\lambda}{2}\lVert w\rVert_2^2$ to the loss (gradient $\lambda w$: every weight
# shrinks in proportion to its size; this is SGD's `weight_decay`), and **L1**, which adds
# $\lambda\lVert w\rVert_1$ (gradient $\lambda\,\mathrm{sign}(w)$: every weight is pushed toward 0
# by the same amount, so small ones reach 0 and stay there; `optim.l1_penalty`).
#
# The data: the Auto MPG set (392 cars from the 1970s and 80s, shipped inside the `mlxtend`
# package), predicting fuel economy in miles per gallon from 8 features: cylinders,
# displacement, horsepower, weight, acceleration, model year and the origin (Europe, Japan;
# the USA is the baseline). We add 4 columns of pure noise, which a good model should ignore.
# A linear model $\hat y = Xw + b$ with the mean squared error, trained with full-batch
# gradient descent on 292 cars; 100 are held out.

# %%
try:
    AUTO_MPG = datasets.auto_mpg_path()
except FileNotFoundError as missing:     # one line saying what to install, no traceback
    sys.exit(f"{missing}")
table = np.genfromtxt(AUTO_MPG, delimiter=",", usecols=[0, 1, 2, 3, 4, 5, 6, 8])
cylinders, displacement, horsepower, weight, acceleration, year, origin, mpg = table.T
features = np.column_stack([cylinders, displacement, horsepower, weight, acceleration, year,
                            origin == 2, origin == 3]).astype(np.float64)
noise = np.random.default_rng(0).standard_normal((len(features), 4))
X_all = np.column_stack([features, noise])
NAMES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "year",
         "Europe", "Japan", "noise 1", "noise 2", "noise 3", "noise 4"]
X_train, X_test, y_train, y_test = train_test_split(X_all, mpg, test_size=100, seed=0)
mean, std = X_train.mean(axis=0), X_train.std(axis=0)
X_train, X_test = (X_train - mean) / std, (X_test - mean) / std   # standardised: same scale
n, d = X_train.shape
print(f"{n} training cars, {len(X_test)} test cars, {d} features; mpg {mpg.min()}..{mpg.max()}")
assert table.shape == (392, 8) and not np.isnan(table).any()

# %% [markdown]
# The gradient of the mean squared error is $\tfrac2n X^\top(Xw + b - y)$, so the loss is a
# quadratic with Hessian $H = \tfrac2n X^\top X$, just like section 1's, and its largest
# eigenvalue $L$ sets the learning rate: $\eta = 1/L$. Its condition number is large because
# several features nearly copy each other (heavy cars have big engines with many cylinders),
# so we use momentum.

# %%
H = 2 / n * X_train.T @ X_train
eigenvalues = np.linalg.eigvalsh(H)
L_MPG = eigenvalues.max()
corr = np.corrcoef(X_train[:, :4].T)
print(f"L = {L_MPG:.2f}, κ = {L_MPG / eigenvalues.min():.0f}; correlations of displacement "
      f"with cylinders, horsepower, weight: {corr[1, 0]:.2f}, {corr[1, 2]:.2f}, {corr[1, 3]:.2f}")
assert min(corr[1, 0], corr[1, 2], corr[1, 3]) > 0.85
STEPS_FIT = 1000
Xt, yt = minigrad.tensor(X_train), minigrad.tensor(y_train)


def fit(l2=0.0, l1=0.0, proximal=False, momentum=0.0, schedule="constant", record=None):
    """Full-batch gradient descent on the MSE (+ penalties) with η = 1/L; returns w, b, trace.

    ``l2`` is SGD's weight decay (on w, never on the bias); ``l1`` adds λ·Σ|w| to the loss, or,
    with ``proximal=True``, soft-thresholds w after each step instead. ``trace`` holds, for
    every step, max |w_i| over the feature indices in ``record`` (if given).
    """
    w = minigrad.zeros(d, dtype="float64", requires_grad=True)
    b = minigrad.zeros(1, dtype="float64", requires_grad=True)
    optimizer = optim.SGD([{"params": [w], "weight_decay": l2},
                           {"params": [b], "weight_decay": 0.0}],
                          lr=1 / L_MPG, momentum=momentum)
    scheduler = (optim.get_cosine_schedule_with_warmup(optimizer, 0, STEPS_FIT)
                 if schedule == "cosine" else optim.get_constant_schedule(optimizer))
    trace = []
    for _ in range(STEPS_FIT):
        optimizer.zero_grad()
        loss = ((Xt @ w + b - yt) ** 2).mean()
        if l1 and not proximal:
            loss = loss + optim.l1_penalty([w], l1)
        loss.backward()
        optimizer.step()
        if proximal:                       # soft-thresholding: the exact step for λ·|w|
            step = optimizer.param_groups[0]["lr"] * l1
            w.data[:] = np.where(np.abs(w.data) > step, w.data - step * np.sign(w.data), 0.0)
        scheduler.step()
        if record is not None:
            trace.append(np.abs(w.data[record]).max())
    return w.numpy().copy(), b.item(), np.array(trace)


def test_mse(w, b):
    return np.mean((X_test @ w + b - y_test) ** 2)


# %% [markdown]
# ### Least squares and L2 (ridge), checked against their closed forms
#
# Both penalised losses are simple enough to solve exactly, which tells us gradient descent
# found the true minimum: least squares solves $X^\top X w = X^\top y$; with L2,
# $(H + \lambda I)\,w = \tfrac2n X^\top (y - \bar y)$ (the features are centred, so
# $b = \bar y$).

# %%
LAMBDA_2, LAMBDA_1 = 0.5, 0.5
w_ols, b_ols, _ = fit(momentum=0.9)
w_l2, b_l2, _ = fit(l2=LAMBDA_2, momentum=0.9)
exact_ols = np.linalg.lstsq(np.column_stack([X_train, np.ones(n)]), y_train, rcond=None)[0]
exact_l2 = np.linalg.solve(H + LAMBDA_2 * np.eye(d), 2 / n * X_train.T @ (y_train - y_train.mean()))
print("largest |GD − closed form|: least squares "
      f"{np.abs(w_ols - exact_ols[:d]).max():.1e}, L2 {np.abs(w_l2 - exact_l2).max():.1e}")
assert np.abs(w_ols - exact_ols[:d]).max() < 1e-6 and abs(b_ols - exact_ols[d]) < 1e-6
assert np.abs(w_l2 - exact_l2).max() < 1e-6

# %% [markdown]
# ### L1 (the lasso): exact zeros with the proximal step
#
# $|w|$ has no derivative at 0, and plain gradient descent with its subgradient
# $\lambda\,\mathrm{sign}(w)$ never lands exactly on 0: it steps over it, back and forth. The
# standard fix is the *proximal* step (ISTA): take the gradient step for the smooth part, then
# shrink every weight toward 0 by $\eta\lambda$, setting to exactly 0 those that would cross
# it. The result is a lasso solution, which we can certify: at a minimum of
# $\mathrm{MSE}(w) + \lambda\lVert w\rVert_1$, every nonzero weight has
# $\partial\,\mathrm{MSE}/\partial w_i = -\lambda\,\mathrm{sign}(w_i)$ and every zero weight
# has $|\partial\,\mathrm{MSE}/\partial w_i| \le \lambda$ (the optimality conditions).

# %%
w_l1, b_l1, _ = fit(l1=LAMBDA_1, proximal=True)
zero = np.flatnonzero(w_l1 == 0)
grad_mse = 2 / n * X_train.T @ (X_train @ w_l1 + b_l1 - y_train)
nonzero = np.flatnonzero(w_l1)
print("L1 sets exactly to 0:", [NAMES[i] for i in zero])
print(f"optimality: max |∂MSE/∂w_i + λ·sign(w_i)| on the nonzero weights "
      f"{np.abs(grad_mse[nonzero] + LAMBDA_1 * np.sign(w_l1[nonzero])).max():.1e}; "
      f"max |∂MSE/∂w_i| on the zero ones {np.abs(grad_mse[zero]).max():.3f} (≤ λ = {LAMBDA_1})")
assert np.abs(grad_mse[nonzero] + LAMBDA_1 * np.sign(w_l1[nonzero])).max() < 1e-4
assert np.abs(grad_mse[zero]).max() <= LAMBDA_1
assert set(zero) == {0, 1, 8, 9, 10, 11}     # cylinders, displacement and the four noises

print(f"\n{'feature':>13} {'least sq.':>10} {'L2':>8} {'L1':>8}")
for i, name in enumerate(NAMES):
    print(f"{name:>13} {w_ols[i]:10.3f} {w_l2[i]:8.3f} {w_l1[i]:8.3f}")
print(f"{'‖w‖₂':>13} {np.linalg.norm(w_ols):10.3f} {np.linalg.norm(w_l2):8.3f} "
      f"{np.linalg.norm(w_l1):8.3f}")
print(f"{'test MSE':>13} {test_mse(w_ols, b_ols):10.3f} {test_mse(w_l2, b_l2):8.3f} "
      f"{test_mse(w_l1, b_l1):8.3f}")

# %% [markdown]
# What the three fits show, asserted below:
#
# * **L1** drops half the features: all four noise columns, and two of the four engine-size
#   features, which carry nearly the same information as the weight and horsepower it keeps.
#   With half the features, its error on the 100 held-out cars is no worse than the
#   unregularised fit's.
# * **L2** sets no weight to zero; it shrinks the weight vector as a whole ($\lVert w\rVert_2$
#   falls by more than a third).
# * Least squares gives displacement a *positive* weight (a bigger engine, more miles per
#   gallon?), an artefact of its near-copies among the features: the fit trades one
#   correlated feature against another. Both penalties remove it: L2 flips the weight to
#   negative, L1 sets it to 0.

# %%
assert test_mse(w_l1, b_l1) <= test_mse(w_ols, b_ols)
assert np.all(w_l2 != 0)
assert np.linalg.norm(w_l2) < 2 / 3 * np.linalg.norm(w_ols)
assert w_ols[1] > 0 and w_l2[1] < 0 and w_l1[1] == 0

# %%
fig, ax = plt.subplots(figsize=(11, 5.4))
positions = np.arange(d)
for k, (weights, label, colour) in enumerate([
        (w_ols, "least squares", "tab:gray"),
        (w_l2, f"L2, λ = {LAMBDA_2} (weight_decay)", "tab:blue"),
        (w_l1, f"L1, λ = {LAMBDA_1} (proximal)", "tab:red")]):
    ax.bar(positions + (k - 1) * 0.27, weights, width=0.27, color=colour, label=label)
for i in zero:
    ax.text(i + 0.27, 0.15, "0", color="tab:red", ha="center", fontsize=10, fontweight="bold")
ax.axhline(0, color="black", lw=0.8)
ax.set_xticks(positions)
ax.set_xticklabels(NAMES, rotation=30, ha="right")
ax.set_ylabel("weight (mpg per standard deviation of the feature)")
ax.set_xlabel("feature (standardised on the training cars)")
ax.set_title("Auto MPG, linear regression: L1 sets six weights to exactly 0 (red 0s), "
             "L2 shrinks them all", fontsize=11)
ax.legend(fontsize=9, loc="lower right")
ax.grid(alpha=0.3, axis="y")
fig.tight_layout()
figure_path = FIGURES / "04_l1_vs_l2.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# ## 6. Learning-rate schedules
#
# Seed 002 lists learning-rate decay, and seed 003 warmup, among the practices of
# fine-tuning; seed 001's recipe uses AdamW at $2\cdot10^{-5}$. `minigrad.optim` has PyTorch's
# and Hugging Face's schedules, each a factor on the base rate at step $t$:
#
# * constant: 1;
# * `StepLR`: $\gamma^{\lfloor t/s\rfloor}$, multiplied by γ every $s$ steps;
# * linear warmup + decay: $t/W$ for $t < W$, then a straight line to 0 at the last step
#   $T$ (the Hugging Face default for fine-tuning BERT);
# * cosine warmup: the same warmup, then half a cosine down to 0.
#
# Warmup exists for Adam-type optimizers at the start of training: their second-moment
# estimate $\hat v$ is built from a handful of gradients, so the first steps are poorly
# scaled, and small steps keep a pretrained model from being knocked far from where it
# started while that estimate settles. Decay exists for the end: with a constant rate the
# noise in each step keeps the parameters bouncing around the minimum.

# %%
T_SCHED, WARMUP, BASE_LR = 1000, 100, 2e-5


def lr_curve(make_scheduler):
    optimizer = optim.AdamW([minigrad.zeros(1, requires_grad=True)], lr=BASE_LR)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(T_SCHED + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    return np.array(rates)


schedules = {
    "constant": lr_curve(optim.get_constant_schedule),
    "StepLR (step_size 250, γ 0.5)": lr_curve(lambda o: optim.StepLR(o, 250, gamma=0.5)),
    "linear warmup + decay": lr_curve(
        lambda o: optim.get_linear_schedule_with_warmup(o, WARMUP, T_SCHED)),
    "cosine warmup": lr_curve(
        lambda o: optim.get_cosine_schedule_with_warmup(o, WARMUP, T_SCHED)),
}
constant, step_lr, linear, cosine = schedules.values()
assert np.all(constant == BASE_LR)
assert np.allclose(step_lr[[0, 249, 250, 500, 999]], BASE_LR * np.array([1, 1, 0.5, 0.25, 0.125]))
for warm in (linear, cosine):
    assert warm[0] == 0 and np.isclose(warm[WARMUP // 2], BASE_LR / 2)   # warms up linearly
    assert np.isclose(warm.max(), BASE_LR) and warm.argmax() == WARMUP  # peaks at step W
    assert warm[T_SCHED] == 0                                          # ends at 0
middle = (WARMUP + T_SCHED) // 2
assert np.isclose(linear[middle], BASE_LR / 2) and np.isclose(cosine[middle], BASE_LR / 2)
assert cosine[300] > linear[300] and cosine[800] < linear[800]   # cosine: high longer, then low
print("every schedule matches its formula at the checked steps")

# %% [markdown]
# ### Decay in action: the L1 subgradient settles
#
# Back to the lasso. Plain gradient descent on $\mathrm{MSE} + \lambda\lVert w\rVert_1$
# (`optim.l1_penalty`, no proximal step) with a constant rate keeps the would-be-zero weights
# bouncing: a step that crosses 0 is soon followed by one that crosses back, and they swing
# across it by amounts of the order of $\eta\lambda$. A cosine decay of the same base rate lets
# them settle: the steps, and the bouncing, shrink to nothing. We follow the largest $|w_i|$
# among the six features the proximal fit sets to 0.

# %%
_, _, bounce_constant = fit(l1=LAMBDA_1, record=zero)
w_cosine, _, bounce_cosine = fit(l1=LAMBDA_1, schedule="cosine", record=zero)
_, _, trace_proximal = fit(l1=LAMBDA_1, proximal=True, record=zero)
tail = STEPS_FIT // 5
print(f"max |w_i| over the zero set in the last {tail} steps: constant rate "
      f"{bounce_constant[-tail:].max():.1e}, cosine decay {bounce_cosine[-tail:].max():.1e}, "
      f"proximal {trace_proximal[-tail:].max():.1e}")
print(f"cosine-decayed subgradient vs proximal lasso: max |Δw| = "
      f"{np.abs(w_cosine - w_l1).max():.1e}")
assert bounce_constant[-tail:].max() > 0.01                   # still bouncing at the end
assert bounce_cosine[-1] < bounce_constant[-tail:].max() / 100
hits = np.flatnonzero(trace_proximal == 0)
assert np.all(trace_proximal[hits[0]:] == 0)                  # exactly zero, and it stays so
assert np.abs(w_cosine - w_l1).max() < 0.02

# %% [markdown]
# With a constant rate the would-be-zero weights still reach more than 0.01 in the last
# fifth of the run; with the cosine decay they end more than a hundred times smaller, and the
# whole weight vector lands within 0.02 of the proximal solution, which holds its zeros
# exactly. Early stopping, the last tool seed 002 lists, needs a model that can overfit;
# tutorial 07 shows it on real reviews.

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(15, 5.2), gridspec_kw={"width_ratios": [1, 1]})
for name, rates in schedules.items():
    ax0.plot(rates, lw=2, label=name)
ax0.set_ylim(-0.1 * BASE_LR, 1.45 * BASE_LR)
ax0.set_xlabel("step")
ax0.set_ylabel("learning rate")
ax0.set_title(f"Schedules: base lr {BASE_LR:g}, warmup {WARMUP} of {T_SCHED} steps")
ax0.legend(fontsize=9, loc="upper right", ncol=2)
ax0.grid(alpha=0.3)

steps = np.arange(1, STEPS_FIT + 1)
ax1.semilogy(steps, bounce_constant, color="tab:gray", lw=1, label="subgradient, constant η")
ax1.semilogy(steps, bounce_cosine, color="tab:purple", lw=1.5,
             label="subgradient, cosine decay (no warmup)")
ax1.semilogy(steps[: hits[0]], trace_proximal[: hits[0]], color="tab:red", lw=1.5,
             label=f"proximal: exactly 0 from step {hits[0] + 1} on")
ax1.set_ylim(1e-5, 3)
ax1.set_xlabel("step")
ax1.set_ylabel("max |wᵢ| over the six features L1 drops")
ax1.set_title("The lasso by gradient descent: decay lets the weights settle")
ax1.legend(fontsize=9, loc="lower left")
ax1.grid(alpha=0.3)
fig.tight_layout()
figure_path = FIGURES / "04_lr_schedules.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# ## What to take away
#
# * Gradient descent is seed 004's five-line loop; the learning rate must stay below $2/L$,
#   where $L$ is the sharpest curvature, and then the flat directions decide how long it takes.
# * Momentum and Nesterov carry speed along flat valleys; Adam rescales each coordinate. On
#   both surfaces here each beat plain SGD by more than a hundredfold. AdamW's weight decay is
#   a regulariser: it moves the optimum, on purpose.
# * L2 shrinks every weight, L1 removes some entirely, and gradient descent needs either a
#   proximal step or a decaying learning rate to show it.
# * Warmup protects the first steps, decay settles the last ones.
