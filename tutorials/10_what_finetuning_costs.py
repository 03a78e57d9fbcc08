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
# # 10 · What fine-tuning costs
#
# Seed 003 ("the price and performance of large models") measures a model by accuracy *and* by
# speed, memory and cost, and names the ways to pay less: parameter-efficient fine-tuning
# (adapters, prompt tuning, LoRA), distillation, quantisation and pruning. minigrad has each of
# them (`minigrad.peft`, `minigrad.distill`, `minigrad.compress`). This tutorial opens them up
# on all-MiniLM-L6-v2 and checks each idea with numbers:
#
# 1. LoRA's update is a low-rank matrix, a few percent of the weights it changes, and merging it
#    into the weight is exact;
# 2. int8 quantisation rounds each weight to within half a step of the grid;
# 3. a distillation temperature softens the teacher's targets, and T² keeps their gradient's
#    scale;
# 4. the experiment of `benchmarks/efficiency.py`: every method's accuracy against what it
#    trains and what it deploys, and seed 003's claims about cost against those measurements.
#
# Run it as a script (`.venv/bin/python tutorials/10_what_finetuning_costs.py`, under a
# minute) or open it as a notebook (`make notebooks`). It reads the experiment's committed
# results; it does not rerun it (`python benchmarks/efficiency.py` does, in about an hour).

# %%
import json
import os
import sys
from itertools import pairwise
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minigrad
from minigrad import nn
from minigrad.compress.quantize import QuantizedLinear, quantize_weight
from minigrad.data.datasets import load_rotten_tomatoes
from minigrad.models import minilm, minilm_path
from minigrad.models.pretrained import load_tokenizer
from minigrad.nn import functional as F
from minigrad.peft import LoRAConfig, LoRALinear, get_peft_model

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)
RESULTS = HERE.parent / "benchmarks" / "results"
sys.path.insert(0, str(HERE.parent / "benchmarks"))
from efficiency import plot  # noqa: E402  (benchmarks/efficiency.py draws its results)

FAST = os.environ.get("MINIGRAD_FAST") == "1"
minigrad.manual_seed(0)
rng = np.random.default_rng(0)

reviews = load_rotten_tomatoes()
texts = reviews.texts[:8 if FAST else 32]
tokenizer = load_tokenizer(minilm_path())
batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="np")
inputs = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
print(f"{len(texts)} reviews, padded to {batch['input_ids'].shape[1]} tokens")

# %% [markdown]
# ## 1. LoRA: a low-rank update, merged exactly
#
# Fine-tuning changes a weight W (out × in) by some ΔW. LoRA (Hu et al. 2021) bets that the
# useful ΔW has low rank, and trains it as a product: ΔW = (α/r)·B·A with A (r × in) and
# B (out × r). For MiniLM's query projection (384 × 384) at r = 8 that is 8·(384 + 384) = 6,144
# numbers instead of 147,456: 4.2%. B starts at zero, so the wrapped model starts as the
# pretrained one; only A, B (and the classifier head) train, and everything else is frozen.
#
# Training moves B away from zero. To see a real update without training here, we give B the
# scale a few hundred steps would give it, and look at the four matrices.

# %%
model = minilm("sequence-classification", num_labels=2).eval()
peft_model = get_peft_model(model, LoRAConfig(r=8, lora_alpha=8,
                                              target_modules=("query", "value")))
peft_model.print_trainable_parameters()
lora_layers = {name: m for name, m in peft_model.named_modules() if isinstance(m, LoRALinear)}
assert len(lora_layers) == 2 * 6                            # query and value in 6 layers
n_lora = sum(m.lora_A.weight.data.size + m.lora_B.weight.data.size for m in lora_layers.values())
assert n_lora == 73_728                                     # HF peft's count for this setting
for m in lora_layers.values():                              # as if trained for a while
    m.lora_B.weight.data = (0.02 * rng.standard_normal(m.lora_B.weight.shape)).astype(np.float32)

query = next(iter(lora_layers.values()))                    # layer 0's query
W = query.base_layer.weight.numpy()                         # (384, 384)
delta = query.delta_weight().numpy()                        # (α/r)·B·A, (384, 384)
print(f"rank of ΔW: {np.linalg.matrix_rank(delta)}; LoRA numbers for this layer: "
      f"{query.lora_A.weight.data.size + query.lora_B.weight.data.size:,} of {W.size:,} "
      f"({(query.lora_A.weight.data.size + query.lora_B.weight.data.size) / W.size:.1%})")
assert np.linalg.matrix_rank(delta) == 8

fig, axes = plt.subplots(1, 4, figsize=(15, 4.2),
                         gridspec_kw={"width_ratios": [8, 1.2, 8, 8]})
shown = [("W (384 × 384), frozen", W), ("B (384 × 8)", query.lora_B.weight.numpy()),
         ("A (8 × 384)", query.lora_A.weight.numpy()), ("ΔW = (α/r)·B·A, rank 8", delta)]
for ax, (title, matrix) in zip(axes, shown, strict=True):
    limit = np.abs(matrix).max()
    ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("LoRA on MiniLM's layer-0 query: the update is the product of two thin matrices")
fig.savefig(FIGURES / "10_lora_update.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# Merging folds ΔW into W (`merge_and_unload()`): the model becomes a plain BERT again, with no
# extra work per token at inference. The merged model's logits are the LoRA model's, to float32
# rounding; unmerging gives W back.

# %%
with minigrad.no_grad():
    lora_logits = peft_model(*inputs).logits.numpy()
    before = W.copy()
    query.merge()
    merged_w = query.base_layer.weight.numpy().copy()
    query.unmerge()
    restored = query.base_layer.weight.numpy().copy()
    plain = peft_model.merge_and_unload()
    merged_logits = plain(*inputs).logits.numpy()
assert not any(isinstance(m, LoRALinear) for m in plain.modules())   # plain Linear layers
assert isinstance(plain.bert.encoder.layer[0].attention.self.query, nn.Linear)
gap = np.abs(merged_logits - lora_logits).max()
print(f"max |merged − LoRA| logits: {gap:.1e}; max |unmerged W − W|: "
      f"{np.abs(restored - before).max():.1e}; max |W + ΔW − merged W|: "
      f"{np.abs(before + delta - merged_w).max():.1e}")
assert gap < 1e-4
assert np.abs(restored - before).max() < 1e-6
assert np.abs(before + delta - merged_w).max() < 1e-6

# %% [markdown]
# ## 2. int8: every weight within half a step
#
# Dynamic quantisation (`quantize_dynamic`, torch's name) stores each row c of a Linear weight
# as int8 numbers Q and one float32 scale s_c = max|W_c| / 127: Ŵ = s_c·Q with Q = round(W/s_c).
# Rounding moves a number by at most half a step, so |W − Ŵ| ≤ s_c / 2, element by element.
# At inference the input rows are quantised the same way, the product is summed exactly in
# int32 and rescaled. The int8 weight takes a quarter of the float32 bytes (plus 4 bytes of
# scale per row).

# %%
dense = model.bert.encoder.layer[0].intermediate.dense                  # (1536, 384)
q, scale = quantize_weight(dense.weight.numpy())
error = dense.weight.numpy() - q.astype(np.float32) * scale[:, None]
ratio = np.abs(error) / scale[:, None]                                   # in steps of the grid
print(f"largest |W − Ŵ| / s: {ratio.max():.4f} steps; mean {ratio.mean():.3f} "
      f"(uniform rounding error averages 0.25)")
assert ratio.max() <= 0.5 + 1e-6
assert abs(ratio.mean() - 0.25) < 0.02
int8_layer = QuantizedLinear.from_float(dense)
x = minigrad.randn(16, 384)
with minigrad.no_grad():
    exact, approx = dense(x).numpy(), int8_layer(x).numpy()
relative = np.linalg.norm(approx - exact) / np.linalg.norm(exact)
nbytes = q.nbytes + scale.nbytes
print(f"int8 layer output off by {relative:.2%} (relative L2); weight bytes {nbytes:,} against "
      f"{dense.weight.numpy().nbytes:,} in float32 ({nbytes / dense.weight.numpy().nbytes:.1%})")
assert relative < 0.02 and nbytes / dense.weight.numpy().nbytes < 0.26

fig, ax = plt.subplots(figsize=(7, 4))
ax.hist(ratio.ravel(), bins=50, color="tab:purple")
ax.axvline(0.5, color="tab:red", ls="--", label="the bound: half a step")
ax.set_xlabel("|W − Ŵ| / s  (rounding error in steps of the row's grid)")
ax.set_ylabel("weights")
ax.set_title("int8 rounding of MiniLM's layer-0 feed-forward weight")
ax.legend()
fig.savefig(FIGURES / "10_quantisation_error.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# ## 3. Distillation: the temperature softens the targets
#
# A student learns from the teacher's probabilities at temperature T, softmax(t/T)
# (Hinton et al. 2015). At T = 1 a confident teacher's target is almost one-hot; raising T
# spreads it, and the small probabilities (which wrong classes the teacher finds plausible) carry
# information the labels do not. The loss is α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1−α)·CE:
# the gradient of the KL term with respect to the student's logits is (p_s − p_t)/T, which for a
# large T is about (s − t)/(C·T²) for C classes (zero-mean logits), so the T² factor keeps the
# soft term's gradient at the scale of the logit gap whatever T is.

# %%
teacher = np.array([[4.0, 1.5, 0.5, -1.0, -5.0]])                      # (1, C) logits
student = np.array([[2.0, 2.0, 0.0, 0.0, -4.0]])
teacher, student = teacher - teacher.mean(), student - student.mean()   # zero-mean
entropies, gradients = [], {}
for T in (1.0, 2.0, 4.0, 8.0, 16.0, 64.0):
    p = F.softmax(minigrad.tensor(teacher / T), dim=-1).numpy()[0]
    entropies.append(-(p * np.log(p)).sum())
    s = minigrad.tensor(student, requires_grad=True)
    F.distillation_loss(s, minigrad.tensor(teacher), np.array([0]), T=T, alpha=1.0).backward()
    gradients[T] = s.grad[0]                                            # with the T² factor
    print(f"T = {T:4.0f}: soft target {np.round(p, 3)}, entropy {entropies[-1]:.3f}")
assert all(a < b for a, b in pairwise(entropies))                     # softer with T
limit = (student - teacher)[0] / teacher.shape[1]                       # (s − t)/C
errors = {T: np.abs(gradients[T] - limit).max() / np.abs(limit).max() for T in (4.0, 16.0, 64.0)}
print("T²-scaled gradient at T = 64:", np.round(gradients[64.0], 4), "≈ (s − t)/C =",
      np.round(limit, 4), "; relative gap at T = 4, 16, 64:",
      ", ".join(f"{e:.1%}" for e in errors.values()))
print("without T² the same gradient at T = 64 would be", np.round(gradients[64.0] / 64**2, 6))
assert errors[4.0] > errors[16.0] > errors[64.0] and errors[64.0] < 0.05

# %% [markdown]
# ## 4. The experiment: accuracy against cost
#
# `benchmarks/efficiency.py` fine-tunes MiniLM on the rotten-tomatoes reviews with every method,
# the same split, seed and number of steps (its docstring and `benchmarks/results/efficiency.md`
# say exactly how), runs each in a fresh process to measure its peak memory, and scores the
# saved model on the test reviews. Two peers run in the same experiment: Hugging Face peft's
# LoRA and torch's `quantize_dynamic`. Here we read its results and put each method on two
# axes: what it trains (the cost of fine-tuning) and what it deploys (the cost of inference).

# %%
results = json.loads((RESULTS / "efficiency.json").read_text())
rows = {r["method"]: r for r in results["rows"]}
print(results["command"], results["date"])
for r in results["rows"]:
    print(f"{r['label']:32s} accuracy {r['accuracy']:.4f}  trainable "
          f"{r.get('trainable_params', 0):>11,}  weights {r['model_bytes'] / 2**20:6.1f} MB  "
          f"{r['inference_ms_per_example']:5.2f} ms/review  peak RSS {r['peak_rss_mb']:5.0f} MB")

plot(results["rows"], FIGURES / "10_accuracy_vs_size.png")  # the experiment's own figure

# %% [markdown]
# ![Accuracy against what each method trains and deploys](figures/10_accuracy_vs_size.png)
#
# ### Seed 003's claims, against the measurements
#
# The seed says PEFT makes fine-tuning affordable, that distillation, quantisation and pruning
# make deployment cheaper, and that each trades some accuracy for it. Each claim below is
# checked on the experiment's own numbers; the ones about cost are asserted (they follow from
# how the methods work), the ones about accuracy are printed with their verdict (they are
# measurements of one run, and the README quotes them).

# %%
full = rows["full"]
lora = rows["lora"]
share = lora["trainable_params"] / full["trainable_params"]
print(f"LoRA trains {share:.2%} of the weights; its optimizer state is "
      f"{lora['optimizer_state_bytes'] / 2**20:.2f} MB against "
      f"{full['optimizer_state_bytes'] / 2**20:.0f} MB; peak memory "
      f"{lora['peak_rss_mb']:.0f} MB against {full['peak_rss_mb']:.0f} MB; its directory "
      f"{lora['checkpoint_bytes'] / 2**20:.2f} MB against "
      f"{full['checkpoint_bytes'] / 2**20:.0f} MB")
assert share < 0.01
assert lora["optimizer_state_bytes"] < 0.01 * full["optimizer_state_bytes"]
assert lora["checkpoint_bytes"] < 0.01 * full["checkpoint_bytes"]
int8 = rows["int8"]
print(f"int8: weights {int8['model_bytes'] / 2**20:.1f} MB against "
      f"{full['model_bytes'] / 2**20:.1f} MB; inference {int8['inference_ms_per_example']:.2f} "
      f"against {full['inference_ms_per_example']:.2f} ms/review on this CPU")
assert int8["model_bytes"] < 0.7 * full["model_bytes"]
student = rows["distilled"]
print(f"3-layer student: {student['model_bytes'] / 2**20:.1f} MB, "
      f"{student['inference_ms_per_example']:.2f} ms/review")
assert student["model_bytes"] < full["model_bytes"]
heads = rows["heads50"]
assert heads["model_bytes"] < full["model_bytes"]
for target in results["targets"]:
    print(f"{'met   ' if target['met'] else 'MISSED'} {target['target']}: {target['detail']}")

# %% [markdown]
# ## What to take away
#
# * LoRA trains a rank-r product B·A beside a frozen weight: a few percent of that weight's
#   numbers, under 1% of the model's; merged, it costs nothing at inference.
# * int8 keeps every weight within half a step of its row's grid and a quarter of the bytes;
#   whether it is faster depends on the CPU having int8 dot-product instructions that the
#   kernel uses (this one's does not: see the experiment's inference column).
# * A temperature softens a teacher's targets; T² keeps the soft loss's gradient at the scale of
#   the logit gap.
# * The experiment puts every method on one page: what it trains, what it deploys, what it
#   costs in memory and time, and what it keeps of the accuracy.
