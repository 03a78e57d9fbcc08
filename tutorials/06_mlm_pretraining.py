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
# # 06 · Pre-training with masked-language modelling
#
# BERT learns language before it learns any task: it reads raw text with some of the words
# hidden and is trained to guess them back. Seed 001 (§4.2.1) writes the objective as
#
# $$L_{\mathrm{MLM}} = -\sum_i \log P(\hat y_i = y_i \mid x_i)
#   = -\sum_i \log \frac{\exp(z_i\cdot w_{y_i})}{\sum_{j=1}^{V}\exp(z_i\cdot w_j)},$$
#
# where $i$ runs over the hidden tokens, $x_i$ is the corrupted text around one of them,
# $y_i$ the token that was there, $z_i$ the model's final vector at that position and $w_j$
# the output vector of vocabulary entry $j$ (V = 30,522 WordPiece tokens here).
#
# This tutorial takes the recipe apart with `minigrad.pretrain` on real text, one-sentence
# movie reviews from Rotten Tomatoes: how tokens are chosen and corrupted (15%, then
# 80/10/10), seed 001's loss computed by hand and compared with the library's, and a small
# BERT trained from random weights with its loss curve, measured against what word
# frequencies alone achieve.
#
# Run it as a script (`.venv/bin/python tutorials/06_mlm_pretraining.py`) or open it as a
# notebook (`make notebooks`). `MINIGRAD_FAST=1` trains on fewer reviews for fewer steps.

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minigrad
from minigrad.data.datasets import load_rotten_tomatoes
from minigrad.models import BertConfig, BertForMaskedLM
from minigrad.models.pretrained import load_tokenizer, minilm_path
from minigrad.pretrain import (
    IGNORE_INDEX,
    PretrainConfig,
    mask_tokens,
    masked_batches,
    mlm_loss,
    pretrain,
    unigram_loss,
)

FAST = os.environ.get("MINIGRAD_FAST") == "1"
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)

# %% [markdown]
# ## 1. The text, as token ids
#
# Each review is one sequence, `[CLS] review [SEP]`, in MiniLM's WordPiece vocabulary.

# %%
tokenizer = load_tokenizer(minilm_path())
reviews = load_rotten_tomatoes().texts
V = tokenizer.vocab_size
MAX_LENGTH = 64
print(f"{len(reviews)} reviews; vocabulary of {V} tokens")
print(reviews[0])
print(tokenizer.convert_ids_to_tokens(tokenizer(reviews[0])["input_ids"]))

# %% [markdown]
# ## 2. Masking: 15%, then 80/10/10
#
# `mask_tokens` (Devlin et al. 2019, §3.1) *selects* each real, non-special token with
# probability 15% ([CLS], [SEP] and padding never), and then corrupts each selected token:
#
# * 80% of the time it becomes [MASK];
# * 10% of the time a random token;
# * 10% of the time it stays as it is.
#
# The labels hold the original id at the selected positions and −100 (ignored by the loss)
# everywhere else. Why not always [MASK]? [MASK] never occurs in the text a model is later
# fine-tuned on; with the random and unchanged tokens the model cannot tell which positions
# are being tested, so it has to keep a good representation of *every* token.
#
# One review, corrupted:

# %%
special = tokenizer.all_special_ids
masking = {"mask_token_id": tokenizer.mask_token_id, "special_ids": special, "vocab_size": V}
rng = np.random.default_rng(0)
ids = np.array([tokenizer(reviews[3])["input_ids"]])                    # (1, S)
corrupted, labels = mask_tokens(ids, np.ones_like(ids), rng=rng, **masking)
print(f"{'original':>12} {'model reads':>12} {'label':>10}")
for original, seen, label in zip(*(tokenizer.convert_ids_to_tokens(a[0])
                                   for a in (ids, corrupted)), labels[0], strict=True):
    print(f"{original:>12} {seen:>12} {'' if label == IGNORE_INDEX else original:>10}")

# %% [markdown]
# The probabilities only show over many tokens. We mask 2,000 reviews, padded to a common
# length, and count.

# %%
encoded = tokenizer(reviews[:2000], truncation=True, max_length=MAX_LENGTH, padding=True,
                    return_tensors="np")
ids, attention = encoded["input_ids"], encoded["attention_mask"]             # (2000, S)
corrupted, labels = mask_tokens(ids, attention, rng=np.random.default_rng(1), **masking)
selectable = (attention == 1) & ~np.isin(ids, special)
selected = labels != IGNORE_INDEX
as_mask = selected & (corrupted == tokenizer.mask_token_id)
kept = selected & (corrupted == ids)
as_random = selected & ~as_mask & ~kept
stats = {"selected / real tokens": selected.sum() / selectable.sum(),
         "[MASK] / selected": as_mask.sum() / selected.sum(),
         "random / selected": as_random.sum() / selected.sum(),
         "unchanged / selected": kept.sum() / selected.sum()}
expected = dict(zip(stats, [0.15, 0.8, 0.1, 0.1], strict=True))
print(f"{selectable.sum()} real tokens, {selected.sum()} selected")
for name, share in stats.items():
    print(f"{name:24s} {share:.4f}   (expected {expected[name]})")
assert not (selected & ~selectable).any()                # no special token or padding, ever
assert np.array_equal(labels[selected], ids[selected])   # labels: the original ids
assert np.all(corrupted[~selected] == ids[~selected])    # the rest is untouched
assert selectable.sum() > 45_000
assert abs(stats["selected / real tokens"] - 0.15) < 0.01
for name in list(stats)[1:]:
    assert abs(stats[name] - expected[name]) < 0.02, name
assert not np.isin(corrupted[as_random], special).any()  # random tokens are ordinary words

# %% [markdown]
# Over about 50,000 real tokens the shares come out within one percentage point of 15% and
# within two of 80/10/10 (asserted), labels are the original ids, unselected positions are
# untouched, and no special token or padding is ever selected. (A "random" token may by
# chance be the original one, about once in 30,000 draws; it then counts as unchanged.)

# %%
fig, ax = plt.subplots(figsize=(8, 4.6))
names = list(stats)
ax.bar(np.arange(4) - 0.2, [expected[n] for n in names], width=0.4, color="tab:gray",
       label="the recipe")
ax.bar(np.arange(4) + 0.2, [stats[n] for n in names], width=0.4, color="tab:blue",
       label=f"measured ({selected.sum():,} selected tokens)")
for i, n in enumerate(names):
    ax.text(i + 0.2, stats[n] + 0.015, f"{stats[n]:.3f}", ha="center", fontsize=9)
ax.set_xticks(np.arange(4))
ax.set_xticklabels(names)
ax.set_ylabel("share")
ax.set_xlabel("what happens to a token")
ax.set_title("BERT's masking on 2,000 rotten-tomatoes reviews: 15%, then 80/10/10")
ax.legend()
ax.grid(alpha=0.3, axis="y")
fig.tight_layout()
figure_path = FIGURES / "06_masking.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# ## 3. Seed 001's loss, by hand
#
# `BertForMaskedLM` ends in a prediction head: the final hidden state $h_i$ is transformed,
# $z_i = \mathrm{LN}(\mathrm{GELU}(h_i W + b))$, and projected onto the vocabulary with the
# word-embedding matrix $E$ itself (*tied* weights: $w_j = E_j$, the same vector that feeds
# token $j$ in) plus a bias $c_j$. So the logit of token $j$ at position $i$ is
# $z_i\cdot w_j + c_j$, and the loss is seed 001's sum, which the library divides by the
# number M of selected tokens (the same minimum; the gradient is only scaled).
#
# We take a small random BERT (the "bert-tiny" size: 2 layers, H = 128) in float64, one batch
# of 8 masked reviews, and compute $L_{\mathrm{MLM}}$ with NumPy from $z$ and $E$.

# %%
minigrad.manual_seed(0)
tiny = BertForMaskedLM(BertConfig.named("bert-tiny", vocab_size=V)).to("float64").eval()
assert tiny.cls.predictions.decoder.weight is tiny.bert.embeddings.word_embeddings.weight
batch_ids, batch_mask = ids[:8], attention[:8]                               # (8, S)
batch_in, batch_labels = mask_tokens(batch_ids, batch_mask, rng=np.random.default_rng(2),
                                     **masking)
with minigrad.no_grad():
    hidden = tiny.bert(batch_in, batch_mask).last_hidden_state               # (8, S, H)
    z = tiny.cls.predictions.transform(hidden).numpy()                       # (8, S, H)
E = tiny.bert.embeddings.word_embeddings.weight.numpy()                      # (V, H)
c = tiny.cls.predictions.bias.numpy()                                        # (V,)
rows, cols = np.nonzero(batch_labels != IGNORE_INDEX)                        # M positions
y = batch_labels[rows, cols]                                                 # (M,)
logits = z[rows, cols] @ E.T + c                                             # (M, V)
top = logits.max(axis=1, keepdims=True)
log_p = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
seed_loss = -log_p[np.arange(len(y)), y].sum()                               # seed 001's sum
M = len(y)
with minigrad.no_grad():
    library = mlm_loss(tiny, batch_in, batch_mask, batch_labels).item()
    full_head = tiny(batch_in, batch_mask, labels=batch_labels).loss.item()
print(f"M = {M} selected tokens; seed 001's sum {seed_loss:.6f}, / M = {seed_loss / M:.10f}")
print(f"mlm_loss (only the M rows through the head) {library:.10f}")
print(f"BertForMaskedLM(labels=...) (all B·S rows)  {full_head:.10f}")
print(f"ln V = {math.log(V):.4f}: the loss of a uniform guess")
assert abs(seed_loss / M - library) < 1e-10 and abs(library - full_head) < 1e-10
assert abs(library - math.log(V)) < 0.1

# %% [markdown]
# The three agree to $10^{-10}$ (asserted): `mlm_loss` sends only the M selected positions
# through the vocabulary projection, an (M, V) matrix instead of (B, S, V), and gets the same
# number. A random model's loss is within 0.1 of $\ln V \approx 10.33$, the loss of a uniform
# guess over the vocabulary: it knows nothing yet.
#
# ## 4. Training a small BERT from scratch
#
# `minigrad.pretrain.pretrain` runs the whole recipe: it holds out 10% of the reviews (masked
# once, with a fixed seed), draws a new mask for each training batch, and trains with AdamW,
# linear warmup and decay, and gradient clipping. We train bert-tiny at lr 1e-3 (small models
# from scratch take a large rate) and score the held-out reviews after every epoch.
#
# What should "learnt something" mean? A model that ignores the context and always predicts
# the same distribution, the word frequencies of the training text, already scores far below
# $\ln V$. `pretrain` reports this *unigram* loss with add-one smoothing (every one of the
# 30,522 tokens gets one extra count). Add-one is a weak baseline on a small text, where the
# extra counts outnumber the real ones, so we also compute a stronger one: the smoothing
# $\alpha$ that scores best on the held-out tokens themselves, an optimistic choice.

# %%
N_LINES, EPOCHS = (600, 6) if FAST else (4000, 6)
config = PretrainConfig(config="bert-tiny", max_length=MAX_LENGTH, epochs=EPOCHS, batch_size=32,
                        lr=1e-3, valid_fraction=0.1, seed=0, progress=False)
result = pretrain(reviews[:N_LINES], config)
steps = np.array([s["step"] for s in result.history.steps])
train_losses = np.array([s["loss"] for s in result.history.steps])
epochs = result.history.epochs
print(f"{result.num_train_sequences} training reviews, {result.num_valid_sequences} held out, "
      f"{len(steps)} steps in {result.seconds:.0f} s")
for e in epochs:
    print(f"epoch {e['epoch']}: train loss {e['train_loss']:.3f}, held-out MLM loss "
          f"{e['val_mlm_loss']:.3f}, accuracy {e['val_mlm_accuracy']:.3f}")

# %% [markdown]
# To compute the stronger baseline we rebuild `pretrain`'s split (the same seeded permutation
# and the same masked held-out batches) and check it by recomputing the library's add-one
# unigram loss from it.

# %%
all_ids = [s for s in tokenizer(reviews[:N_LINES], truncation=True,
                                max_length=MAX_LENGTH)["input_ids"] if len(s) > 2]
order = np.random.default_rng(config.seed).permutation(len(all_ids))
n_valid = min(int(len(all_ids) * config.valid_fraction), 1000)
train_ids = [all_ids[i] for i in order[n_valid:]]
valid_batches = masked_batches([all_ids[i] for i in order[:n_valid]], config.batch_size,
                               tokenizer.pad_token_id,
                               np.random.default_rng([config.seed, 1]),
                               mlm_probability=config.mlm_probability, **masking)
add_one = unigram_loss(train_ids, valid_batches, V)
assert abs(add_one - result.unigram_val_loss) < 1e-12

counts = np.zeros(V)
for s in train_ids:
    np.add.at(counts, s[1:-1], 1)
targets = np.concatenate([b[2][b[2] != IGNORE_INDEX] for b in valid_batches])
alphas = 10.0 ** np.arange(-3, 0.5, 0.5)
tuned = {a: float(-np.log((counts + a) / (counts + a).sum())[targets].mean()) for a in alphas}
best_alpha = min(tuned, key=tuned.get)
tuned_unigram = tuned[best_alpha]
top_share = np.bincount(targets).max() / len(targets)
final = epochs[-1]
print(f"held-out MLM loss: uniform ln V {math.log(V):.3f}, add-one unigram {add_one:.3f}, "
      f"tuned unigram (α = {best_alpha:.3g}) {tuned_unigram:.3f}, "
      f"bert-tiny {final['val_mlm_loss']:.3f}")
print(f"held-out accuracy {final['val_mlm_accuracy']:.3f}; share of the most frequent "
      f"held-out token: {top_share:.3f}")

first, last = train_losses[:5].mean(), train_losses[-5:].mean()
assert last < first - 3                                          # the training loss falls
assert np.all(np.diff([e["val_mlm_loss"] for e in epochs]) < 0)
assert final["val_mlm_loss"] < add_one < math.log(V)
if FAST:
    assert final["val_mlm_loss"] > tuned_unigram
    assert final["val_mlm_accuracy"] <= top_share + 0.01
else:
    assert final["val_mlm_loss"] < tuned_unigram
    assert final["val_mlm_accuracy"] > 2 * top_share

# %% [markdown]
# What the run shows (asserted above):
#
# * the training loss falls by more than 3 nats, from about $\ln V$ over the first steps;
#   the held-out MLM loss falls at every epoch;
# * the held-out loss ends below the add-one unigram baseline, which is itself far below
#   $\ln V$;
# * in fast mode (600 reviews, about a hundred steps) it does **not** reach the tuned unigram
#   baseline, and its held-out accuracy is no better than always guessing the most frequent
#   token: so far the model has learnt *which tokens are common*, not yet how the context
#   decides between them. That is the first thing every MLM learns, and the reason to compare
#   with a strong frequency baseline before believing a loss curve;
# * in the full mode (4,000 reviews, about 680 steps) it does pass the tuned unigram baseline,
#   and its accuracy is more than twice the share of the most frequent token: it has begun to
#   read the context.

# %%
fig, ax = plt.subplots(figsize=(10, 5.4))
ax.plot(steps, train_losses, color="tab:blue", lw=1, alpha=0.7,
        label="training loss (each batch, a new mask)")
ax.plot([e["step"] for e in epochs], [e["val_mlm_loss"] for e in epochs], "o-",
        color="tab:red", label="held-out MLM loss (end of each epoch)")
for level, label, colour in ((math.log(V), "uniform guess, ln V", "black"),
                             (add_one, "unigram, add-one smoothing", "tab:orange"),
                             (tuned_unigram, f"unigram, tuned α = {best_alpha:.3g}",
                              "tab:green")):
    ax.axhline(level, color=colour, ls="--", lw=1.2, label=f"{label}: {level:.2f}")
ax.set_xlabel("optimizer step")
ax.set_ylabel("MLM loss (mean −log P over the masked tokens, nats)")
ax.set_title(f"Pre-training bert-tiny from scratch on {result.num_train_sequences} "
             f"rotten-tomatoes reviews")
ax.legend(fontsize=9)
ax.grid(alpha=0.3)
fig.tight_layout()
figure_path = FIGURES / "06_mlm_loss_curve.png"
fig.savefig(figure_path, dpi=110)
print("saved", figure_path)

# %% [markdown]
# ## What to take away
#
# * MLM picks 15% of the real tokens and corrupts them 80/10/10; the loss is seed 001's
#   $-\sum_i \log P(y_i\mid x_i)$ over the picked tokens only (the library takes the mean).
# * The output projection is the word-embedding matrix itself, so only the M picked rows need
#   the (M, V) projection.
# * A loss curve means little without baselines: $\ln V$ for knowing nothing, and a
#   well-smoothed unigram for knowing only word frequencies. Beating the second takes more
#   text and steps than fast mode has (the full mode just gets there); real pre-training
#   reads billions of tokens. Tutorial 07 fine-tunes a BERT that was pre-trained properly,
#   and shows what that buys.
