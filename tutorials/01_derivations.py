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
# # 01 · The seed documents' derivations, checked by minigrad
#
# The seed documents (`shared/seeds/`, in Chinese) teach fine-tuning from gradient descent
# upward, and print formulas and numbers along the way. Here we compute each of them three
# ways — with minigrad's autograd, with a closed form, and with central finite differences —
# and see where the printed numbers are right and where they are not.
#
# Run it as a script (`.venv/bin/python tutorials/01_derivations.py`) or open it as a notebook
# with jupytext. `minigrad derive` prints the same claims as one table.

# %%
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minigrad
from minigrad import derivations
from minigrad.metrics import classification_report
from minigrad.nn import functional as F

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)


def sigma(z):
    return 1 / (1 + np.exp(-z))


# %% [markdown]
# ## 1. Two sigmoid neurons (seed 000, §4.3)
#
# Each neuron computes $o_i = \sigma(z_i)$ with $z_i = \sum_j w_{ij} x_j + b_i$. The document's
# example has $w_{11}=0.5, w_{12}=0.7, w_{21}=0.3, w_{22}=0.8$, $b = (0.2, 0.4)$ and
# $x = (1, 2)$. In matrix form $z = Wx + b$. We use float64 so that finite differences are
# accurate.

# %%
W = minigrad.tensor([[0.5, 0.7], [0.3, 0.8]], dtype="float64", requires_grad=True)
b = minigrad.tensor([0.2, 0.4], dtype="float64", requires_grad=True)
x = minigrad.tensor([1.0, 2.0], dtype="float64", requires_grad=True)

z = W @ x + b              # (2,)
o = minigrad.sigmoid(z)    # (2,)
print("z =", z.numpy(), "  o =", o.numpy())

# %% [markdown]
# The document prints $z_1 = 2.1$ (right) and $z_2 = 0.3\cdot1 + 0.8\cdot2 + 0.4 = 2.5$. That
# sum is 2.3: the printed line is mis-added.

# %%
z1, z2 = z.numpy()
assert abs(z1 - 2.1) < 1e-12
assert abs(z2 - 2.3) < 1e-12 and abs(z2 - 2.5) > 0.05

# %% [markdown]
# It then prints $o_1 = \sigma(2.1) = 0.8788$ and $o_2 = \sigma(2.5) = 0.9130$. Neither is the
# sigmoid of anything in the example: $\sigma(2.1) = 0.8909$, $\sigma(2.3) = 0.9089$ and even
# $\sigma(2.5) = 0.9241$. Inverting, $0.8788 = \sigma(1.98)$ and $0.9130 = \sigma(2.35)$.

# %%
o1, o2 = o.numpy()
print(f"σ(2.1) = {o1:.4f} (printed 0.8788),  σ(2.3) = {o2:.4f} (printed 0.9130),  "
      f"σ(2.5) = {sigma(2.5):.4f}")
assert round(o1, 4) != 0.8788 and round(o2, 4) != 0.9130 and round(sigma(2.5), 4) != 0.9130
print(f"σ⁻¹(0.8788) = {math.log(0.8788 / 0.1212):.3f},  "
      f"σ⁻¹(0.9130) = {math.log(0.913 / 0.087):.3f}")

# %% [markdown]
# ## 2. The derivative of the sigmoid
#
# $\sigma'(z) = \sigma(z)\,(1 - \sigma(z))$. Autograd gets it by calling `backward()` on
# $o_1$ with $z$ as a leaf; finite differences get it from two forward passes.

# %%
zleaf = minigrad.tensor([z1, z2], dtype="float64", requires_grad=True)
minigrad.sigmoid(zleaf).sum().backward()   # each o_i depends only on its own z_i
dsig_autograd = zleaf.grad
eps = 1e-6
dsig_fd = (sigma(np.array([z1, z2]) + eps) - sigma(np.array([z1, z2]) - eps)) / (2 * eps)
dsig_closed = o.numpy() * (1 - o.numpy())
print("σ'(z) autograd:", dsig_autograd, " closed form:", dsig_closed, " finite diff:", dsig_fd)
assert np.allclose(dsig_autograd, dsig_closed, atol=1e-15)
assert np.allclose(dsig_autograd, dsig_fd, atol=1e-9)

# %% [markdown]
# The document prints $\sigma'(z_1) = 0.1212$ and $\sigma'(z_2) = 0.0869$. The true values are
# 0.0972 and 0.0828. The printed ones are $1 - o$ computed from its own wrong $o$: $1 - 0.8788
# = 0.1212$ exactly, and $1 - 0.9130 = 0.0870$ to within the last digit. It dropped the factor
# $\sigma(z)$ of $\sigma(z)(1-\sigma(z))$.

# %%
assert abs((1 - 0.8788) - 0.1212) < 1e-12
assert abs((1 - 0.9130) - 0.0869) <= 1e-4 + 1e-12
assert abs(dsig_closed[0] - 0.1212) > 0.02 and abs(dsig_closed[1] - 0.0869) > 0.004

# %% [markdown]
# ### Figure: σ and σ′ at the worked example's points
#
# Circles are the true values at the true $z$; crosses are what the document prints, at the $z$
# it prints.

# %%
zs = np.linspace(-3, 6, 400)
near = np.linspace(1.9, 2.7, 100)
fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(14, 4.2))
ax0.plot(zs, sigma(zs), color="tab:blue", label="σ(z)")
ax0.axvspan(1.9, 2.7, color="grey", alpha=0.2, label="zoomed in the middle panel")
ax0.set_xlabel("z")
ax0.set_ylabel("σ(z)")
ax0.set_title("sigmoid")
ax0.legend(loc="lower right", fontsize=9)
ax0.grid(alpha=0.3)
ax1.plot(near, sigma(near), color="tab:blue", label="σ(z)")
ax1.plot([z1, z2], o.numpy(), "o", color="tab:blue", ms=7,
         label=f"true: σ(2.1) = {o1:.4f}, σ(2.3) = {o2:.4f}")
ax1.plot([2.1, 2.5], [0.8788, 0.9130], "x", color="tab:red", ms=9, mew=2,
         label="printed: 0.8788 at z = 2.1, 0.9130 at z = 2.5")
ax1.set_xlabel("z")
ax1.set_ylabel("σ(z)")
ax1.set_title("sigmoid near the example's z")
ax1.set_ylim(0.85, 0.96)
ax1.legend(loc="upper left", fontsize=9)
ax1.grid(alpha=0.3)
ax2.plot(zs, sigma(zs) * (1 - sigma(zs)), color="tab:green", label="σ′(z) = σ(z)(1 − σ(z))")
ax2.plot([z1, z2], dsig_closed, "o", color="tab:green", ms=7,
         label=f"true: σ′(2.1) = {dsig_closed[0]:.4f}, σ′(2.3) = {dsig_closed[1]:.4f}")
ax2.plot([2.1, 2.5], [0.1212, 0.0869], "x", color="tab:red", ms=9, mew=2,
         label="printed: 0.1212 at z = 2.1, 0.0869 at z = 2.5")
ax2.set_xlim(-1, 6)
ax2.set_ylim(0, 0.33)
ax2.set_xlabel("z")
ax2.set_ylabel("σ′(z)")
ax2.set_title("its derivative")
ax2.legend(loc="upper right", fontsize=9)
ax2.grid(alpha=0.3)
fig.suptitle("Seed 000 §4.3: the worked example's points, true and printed")
fig.tight_layout()
figure_path = FIGURES / "01_sigmoid_worked_example.png"
fig.savefig(figure_path, dpi=120)
print("saved", figure_path)

# %% [markdown]
# ## 3. How the outputs depend on the inputs: ∂o_i/∂x_j = σ′(z_i)·w_ij
#
# Each output's gradient with respect to $x$ is one `backward()`: it fills `x.grad` with a row
# of the Jacobian.

# %%
jacobian = np.zeros((2, 2))
for i in range(2):
    x.grad = None
    o_i = minigrad.sigmoid(W @ x + b)[i]
    o_i.backward()
    jacobian[i] = x.grad
closed = dsig_closed[:, None] * W.numpy()   # σ'(z_i)·w_ij
print("∂o_i/∂x_j by autograd:\n", jacobian)
assert np.allclose(jacobian, closed, atol=1e-15)

printed = np.array([[0.1212, 0.0606], [0.0260, 0.0695]])
print("printed:\n", printed)
assert not np.any(np.abs(jacobian - printed) <= 0.5e-4)   # none of the four survives

# %% [markdown]
# All four printed values differ, for three different reasons:
#
# * $\partial o_1/\partial x_1$ is printed as $\sigma'(z_1)$, with the weight $w_{11}$ missing;
# * $\partial o_1/\partial x_2$ is printed as $\sigma'(z_1)\cdot w_{11}$: $x_1$'s weight, where
#   $w_{12} = 0.7$ belongs ($0.1212 \cdot 0.5 = 0.0606$);
# * $\partial o_2/\partial x_j = \sigma'(z_2)\,w_{2j}$ are the right formulas, fed the wrong
#   $\sigma'(z_2) = 0.0869$ (and $0.0869 \cdot 0.3 = 0.02607$ is printed as 0.0260, not 0.0261).

# %%
assert abs(0.1212 * 0.5 - 0.0606) < 1e-12
assert abs(jacobian[0, 1] - dsig_closed[0] * 0.7) < 1e-15   # w12, not w11
assert round(0.0869 * 0.3, 4) == 0.0261

# %% [markdown]
# ## 4. The loss and its chain rule (seed 000, §4.2)
#
# $J(\theta) = \tfrac12 \sum_i (y_i - \hat y_i)^2$. We score the two outputs against the target
# $y = (1, 0)$. The document then writes
# $\partial J/\partial\theta = \tfrac12 \sum_i \partial(y_i-\hat y_i)/\partial\hat y_i \cdot
# \partial \hat y_i/\partial\theta$. But the derivative of the *square* is
# $\partial(y-\hat y)^2/\partial\hat y = -2(y-\hat y)$, so the true gradient is
# $$\frac{\partial J}{\partial\theta}
#   = -\sum_i (y_i - \hat y_i)\,\frac{\partial\hat y_i}{\partial\theta}.$$
# The printed line gives $-\tfrac12\sum_i \partial\hat y_i/\partial\theta$, which does not even
# depend on the error: it would push the weights just as hard at a perfect fit.

# %%
y = minigrad.tensor([1.0, 0.0], dtype="float64")
for t in (W, b, x):
    t.grad = None
J = 0.5 * F.mse_loss(minigrad.sigmoid(W @ x + b), y, reduction="sum")
J.backward()
true_dw11 = -(1 - o1) * dsig_closed[0] * 1.0
printed_rule_dw11 = 0.5 * (-1.0) * dsig_closed[0] * 1.0
print(f"J = {J.item():.4f};  ∂J/∂w11: autograd {W.grad[0, 0]:.6f}, true closed form "
      f"{true_dw11:.6f}, the printed rule {printed_rule_dw11:.6f}")
assert abs(W.grad[0, 0] - true_dw11) < 1e-15
assert abs(W.grad[0, 0] / printed_rule_dw11 - 2 * (1 - o1)) < 1e-12  # off by the factor 2(y−ŷ)

# %% [markdown]
# ## 5. One step of gradient descent, α = 0.01
#
# $\theta_{new} = \theta_{old} - \alpha\,\partial J/\partial\theta$ for every weight and bias.
# The loss goes down.

# %%
alpha = 0.01
with minigrad.no_grad():
    W_new = W - alpha * minigrad.tensor(W.grad)
    b_new = b - alpha * minigrad.tensor(b.grad)
    J_new = 0.5 * F.mse_loss(minigrad.sigmoid(W_new @ x + b_new), y, reduction="sum")
print("W after one step:\n", W_new.numpy(), "\nb:", b_new.numpy())
print(f"J: {J.item():.6f} -> {J_new.item():.6f}")
assert J_new.item() < J.item()

# %% [markdown]
# ## 6. Softmax cross-entropy (seed 001, §4.1–§4.2)
#
# The MLM loss is $-\sum_i \log \mathrm{softmax}(s_i)_{y_i}$ over the masked positions, with
# logits $s_{ij} = z_i \cdot w_j$. Its gradient with respect to the logits is the classic
# *softmax minus one-hot*: no Jacobian of the softmax is needed.

# %%
logits = np.array(derivations.Z) @ np.array(derivations.WJ).T     # (N=2, d=3) @ (d, C=4)
s = minigrad.tensor(logits, dtype="float64", requires_grad=True)  # (N, C)
labels = minigrad.tensor(derivations.LABELS)
loss = F.cross_entropy(s, labels, reduction="sum")
loss.backward()
p = np.exp(s.numpy()) / np.exp(s.numpy()).sum(axis=1, keepdims=True)
one_hot = np.eye(4)[labels.numpy()]
print(f"L = {loss.item():.4f}\n∂L/∂s =\n{s.grad}\nsoftmax − one-hot =\n{p - one_hot}")
assert np.allclose(s.grad, p - one_hot, atol=1e-15)

# %% [markdown]
# §4.1.2 defines the fine-tuning loss as the *sum* $L_{CE} = -\sum_i \log P(y_i|x_i)$, and §4.2.2
# gives its gradient as $-\frac1N\sum_i \nabla_\theta \log P(y_i|x_i)$: that is the gradient of
# the *mean*. Either loss is fine, but the pair is inconsistent by the factor $N$.

# %%
c = {claim.id: claim for claim in derivations.run_all()}["001.ce_gradient"]
print(f"gradient of the sum: {c.computed:.4f};  the printed formula: {c.computed / 2:.4f} (N = 2)")
assert c.verdict == "differs"

# %% [markdown]
# ## 7. Binary cross-entropy and the logit (seed 004, §4.1–§4.2)
#
# With the model output $y$ and the label $y^*$, BCE is $L = -(y^*\log y + (1-y^*)\log(1-y))$
# and $\partial L/\partial y = -y^*/y + (1-y^*)/(1-y)$: both right as printed. When $y =
# \sigma(z)$, the chain rule collapses: $\partial L/\partial z = \partial L/\partial y \cdot
# \sigma'(z) = y - y^*$.

# %%
zl = minigrad.tensor(2.1, dtype="float64", requires_grad=True)
yhat = minigrad.sigmoid(zl)
F.binary_cross_entropy(yhat, minigrad.tensor(0.0, dtype="float64")).backward()
print(f"∂L/∂z = {float(zl.grad):.6f},  y − y* = {yhat.item() - 0:.6f}")
assert abs(zl.grad - (yhat.item() - 0.0)) < 1e-12

# %% [markdown]
# §4.1, though, prints the cross-entropy as $L = -\frac1N\sum_i y_i \log y_i^*$ with $y$ the
# output and $y^*$ the label: the arguments are swapped. With a one-hot label, $\log y^* =
# \log 0 = -\infty$ for every wrong class, so the loss is infinite for any output, and its
# gradient $-\log(y^*)/N$ does not depend on the model at all.

# %%
probs = np.array(derivations.Y_PROBS)
onehot = np.array(derivations.Y_ONEHOT)
with np.errstate(divide="ignore"):
    swapped = -(probs * np.log(onehot)).sum() / len(probs)
standard = -(onehot * np.log(probs)).sum() / len(probs)
print(f"as printed: {swapped};  standard: {standard:.4f}")
assert swapped == math.inf and np.isfinite(standard)

# %% [markdown]
# ## 8. Every claim, one table
#
# `minigrad.derivations.run_all()` holds each claim with its printed value, the computed one
# and its finite difference; verdicts are computed, never written in.

# %%
claims = derivations.run_all()
print(derivations.format_table(claims))
assert derivations.inconsistencies(claims) == []
assert all(abs(c.computed - c.finite_difference) <= 1e-6
           for c in claims if c.finite_difference is not None)

# %% [markdown]
# ## 9. The §5 experiment: "validation loss 0.0356"
#
# Seed 000 §5 trains `Linear(2, 2) → Sigmoid → Linear(2, 1)` with MSE and Adam (lr 0.01, batch
# 64, 100 epochs) "on MNIST", and reports a validation loss of 0.0356. As printed the code
# cannot run (two inputs cannot take 784 pixels), and its "validation" loss is computed on the
# training loader. `benchmarks/seed000_sigmoid_nets.py` runs what can be run, with minigrad's
# Adam; here we read its committed results rather than train again.

# %%
results_path = HERE.parent / "benchmarks" / "results" / "seed000_sigmoid_nets.json"
report = json.loads(results_path.read_text())
print(f"command: {report['command']}\n")
print(f"{'experiment':<24} {'held-out MSE':>16} {'train MSE':>10} {'baseline':>9}  target")
for e in report["experiments"]:
    print(f"{e['name']:<24} {e['val_mse_mean']:>8.4f} ± {e['val_mse_std']:.4f} "
          f"{e['train_mse_mean']:>10.4f} {e['constant_baseline_val_mse']:>9.4f}  {e['target']}")
print(f"\nprinted: {report['printed']['validation_loss']}")
for note in report["not_comparable"]:
    print(" -", note)
assert report["printed"]["validation_loss"] == 0.0356
assert all(e["val_mse_mean"] < e["constant_baseline_val_mse"] for e in report["experiments"])

# %% [markdown]
# The held-out MSE beats the constant baseline in every experiment, but the numbers say
# nothing about 0.0356: the MSE's scale is set by the target (a 0/1 class, a digit 0..9, or a
# one-hot vector averaged over 10 outputs), and the document's number comes from code that
# cannot have produced it. The loss curves are in `benchmarks/results/seed000_sigmoid_nets.png`.

# %% [markdown]
# ## 10. Seeds 002 and 003 on real reviews: a classifier's log-probabilities
#
# Seeds 002 and 003 state objectives over a data set, and print code rather than numbers, so
# their claims are computed on real data: rotten-tomatoes reviews, each turned into MiniLM's
# sentence embedding $x$ (384 numbers, kept frozen), and a linear head on top,
# $P(y \mid x) = \mathrm{softmax}(Wx + b)_y$ with $y \in$ {fresh, rotten}. Only the head is
# trained, so every objective below is convex and its argmin can be found exactly and
# checked. (These are a classifier's $\log P(y \mid x)$, not a masked-LM pseudo-likelihood:
# the installed MiniLM is a sentence encoder and ships no MLM head.) `head_runs()` embeds 96
# training, 32 validation and 16 test reviews and trains the head every way the claims need.

# %%
runs = derivations.head_runs()
by_id = {claim.id: claim for claim in claims}
print(f"{len(runs.train.y)} training, {len(runs.val.y)} validation, {len(runs.test.y)} test "
      f"reviews; classes {runs.label_names}; embeddings {runs.train.x.shape[1]}-dimensional")

# %% [markdown]
# ### Seed 002 §3: $\theta^* = \arg\min_\theta L(\cdot;\theta)$, "solved by SGD and its variants"
#
# With the L2 term $(\lambda/2)\lVert W\rVert^2$ (SGD's `weight_decay`) the cross-entropy has a
# unique minimum. Full-batch SGD with Nesterov momentum, run through `train.fit`, reaches the
# same loss as Newton's method in NumPy, to the last digits: for a smooth convex $L$ the
# statement holds.

# %%
L_star = derivations.objective(runs.argmin["weight"], runs.argmin["bias"], runs.train,
                               l2=derivations.L2)
c = by_id["002.argmin_sgd"]
print(f"L after {derivations.SGD_STEPS} SGD steps: {c.computed:.12f};  min L (Newton): "
      f"{L_star:.12f}  -> {c.verdict}")
assert c.verdict == "matches" and abs(c.computed - L_star) < 1e-9

# %% [markdown]
# L1 is where plain SGD falls short. Its term $\lambda\lVert W\rVert_1$ has no derivative at 0;
# `optim.l1_penalty` gives SGD the subgradient $\lambda\,\mathrm{sign}(w)$, and a step moves a
# weight *across* 0, not onto it. The argmin (found by proximal steps, i.e. soft-thresholding
# as in tutorial 04, then Newton, and certified by its optimality conditions in the tests)
# ignores most of the embedding's features; SGD sets none of them exactly to 0.

# %%
c = by_id["002.l1_sgd"]
zero_at_argmin = np.sum(~runs.l1_argmin["weight"].any(axis=0))
print(f"features with W[:, j] = 0: SGD {c.computed:.0f}, the argmin {zero_at_argmin}")
print("↳", c.explanation)
assert c.verdict == "differs"

# %% [markdown]
# Early stopping keeps the epoch with the lowest validation loss, and that is not
# $\arg\min L$ on the training set: it stops short on purpose, because the argmin fits the 96
# training reviews more closely and new ones less well.

# %%
c = by_id["002.early_stopping"]
val_early = derivations.objective(runs.early["weight"], runs.early["bias"], runs.val)
val_star = derivations.objective(runs.argmin["weight"], runs.argmin["bias"], runs.val)
print(f"training L: early stopping {c.computed:.4f} vs min L {L_star:.4f};  validation loss: "
      f"{val_early:.4f} vs {val_star:.4f} at the argmin")
assert c.computed > L_star and val_early < val_star

# %% [markdown]
# ### Seed 003 §4.2: the log of an average of log-probabilities
#
# The document writes the fine-tuning objective as
# $\max_\theta \log \frac1N \sum_i \log P(y_i \mid x_i, t)$. Here are the $\log P(y_i \mid x_i)$
# of the 16 test reviews, under the head trained to the argmin above:

# %%
logits = runs.test.x @ runs.sgd["weight"].T + runs.sgd["bias"]              # (16, 2)
log_p = F.log_softmax(minigrad.tensor(logits), dim=-1).numpy()[np.arange(len(runs.test.y)),
                                                               runs.test.y]
for text, y, lp in list(zip(runs.test.texts, runs.test.y, log_p, strict=True))[:5]:
    print(f"{lp:8.4f}  [{runs.label_names[y]}] {text[:70]}")
print(f"... mean of the 16: {log_p.mean():.4f}")
with np.errstate(invalid="ignore"):
    print(f"log of that mean: {np.log(log_p.mean())}")
assert np.all(log_p <= 0) and log_p.mean() < 0

# %% [markdown]
# Every $\log P \le 0$, so their mean is negative and the outer log is undefined. The objective
# is the average log-likelihood $\frac1N\sum_i \log P(y_i \mid x_i)$ itself (minus the
# cross-entropy), maximised. The pre-training line has the same outer log, and its first
# "=" confuses two things: $\sum_y P(x, y) = P(x)$ sums the label *out*; it is the marginal,
# not the joint $P(x, y) = P(x)\,P(y \mid x)$. With $P(x)$ the empirical distribution of the 16
# reviews ($1/N$ each), the two logs differ by exactly $\log P(y \mid x)$:

# %%
for claim_id in ("003.pretrain_joint", "003.pretrain_objective", "003.finetune_objective"):
    c = by_id[claim_id]
    print(f"{c.quantity}: computed {c.computed:.4f} -> {c.verdict}\n  ↳ {c.explanation}")
    assert c.verdict == "differs"
assert abs(by_id["003.finetune_objective"].computed - log_p.mean()) < 1e-12

# %% [markdown]
# ### Seed 003 §5.2: the ResNet code
#
# The code fine-tunes `ResNetForImageClassification` with a loop written for a token
# classifier. A ResNet's `forward(pixel_values, labels, ...)` takes an image batch
# (B, 3, H, W), not `input_ids` and `attention_mask`; a classifier's logits are (B, C), so
# `argmax(dim=2)` raises; and the per-example lists it builds are not what
# `classification_report` takes (the tests check each of these against transformers, torch and
# scikit-learn). minigrad raises the same IndexError as torch:

# %%
try:
    minigrad.tensor(logits).argmax(dim=2)
except IndexError as error:
    print("IndexError:", error)
preds = minigrad.tensor(logits).argmax(dim=-1).numpy()
print(classification_report(runs.test.y, preds, target_names=runs.label_names))
for claim_id in ("003.resnet_inputs", "003.argmax_dim2", "003.classification_report"):
    c = by_id[claim_id]
    print(f"{c.id}: {c.verdict}\n  ↳ {c.explanation}")
    assert c.verdict == "differs"
