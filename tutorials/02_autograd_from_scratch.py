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
# # 02 · Autograd from scratch
#
# Every training step in these tutorials ends with `loss.backward()`, which fills each
# parameter's `.grad` with $\partial L/\partial\theta$. Here we build that machinery ourselves,
# for single numbers, in about seventy lines: a `Value` that remembers how it was computed and
# can send gradients back along the way it came (the design of Andrej Karpathy's micrograd).
# Then we run the same computations with minigrad's `Tensor` and check that the two engines
# agree to the last digits.
#
# Run it as a script (`.venv/bin/python tutorials/02_autograd_from_scratch.py`) or open it as
# a notebook (`make notebooks`).

# %%
import itertools
import math
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyBboxPatch, Patch

import minigrad

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = HERE / "figures"
FIGURES.mkdir(exist_ok=True)

# %% [markdown]
# ## 1. The idea: one local rule per operation, and the chain rule
#
# A computation is a graph: numbers flow forward through operations to the loss $L$. Going
# backward, each node $v$ receives $\partial L/\partial v$ (its `grad`) from the nodes that used
# it, and each operation knows only its own local derivative. For $c = a\cdot b$:
#
# $$\frac{\partial L}{\partial a} \mathrel{+}= \frac{\partial L}{\partial c}\cdot b,\qquad
#   \frac{\partial L}{\partial b} \mathrel{+}= \frac{\partial L}{\partial c}\cdot a.$$
#
# That is the chain rule, applied one node at a time. Two details make it work:
#
# * **order**: a node may pass its gradient on only once it is complete, that is after every
#   node that used it has passed its share back. A *topological order* of the graph (each node
#   after everything it was made from), walked in reverse, guarantees this;
# * **`+=`, not `=`**: a node used twice receives a share from each use, and the shares add up
#   (the multivariable chain rule).
#
# ## 2. The scalar engine

# %%
class Value:
    """A scalar that remembers the operation that made it, to send gradients back through it."""

    def __init__(self, data, children=(), op="", label=""):
        self.data = float(data)
        self.grad = 0.0                  # ∂L/∂self, filled in by backward()
        self._children = children        # the Values this one was computed from
        self._op = op                    # the operation that made it ("" for a leaf)
        self.label = label
        self._backward = lambda: None    # passes self.grad on to the children

    def __repr__(self):
        return f"Value({self.label or self._op}, data={self.data:.6g}, grad={self.grad:.6g})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other, label=f"{other:g}")
        out = Value(self.data + other.data, (self, other), "+")

        def backward():                  # ∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other, label=f"{other:g}")
        out = Value(self.data * other.data, (self, other), "×")

        def backward():                  # ∂(ab)/∂a = b, ∂(ab)/∂b = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = backward
        return out

    def __sub__(self, other):
        other = other if isinstance(other, Value) else Value(other, label=f"{other:g}")
        out = Value(self.data - other.data, (self, other), "−")

        def backward():                  # ∂(a−b)/∂a = 1, ∂(a−b)/∂b = −1
            self.grad += out.grad
            other.grad -= out.grad
        out._backward = backward
        return out

    def __pow__(self, k):                # k a plain number
        out = Value(self.data**k, (self,), f"**{k:g}")

        def backward():                  # ∂(aᵏ)/∂a = k·aᵏ⁻¹
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = backward
        return out

    def __radd__(self, other):           # 0 + v, so that sum() works
        return self + other

    def __rmul__(self, other):           # 0.5 * v
        return self * other

    def _unary(self, value, derivative, op):
        out = Value(value, (self,), op)

        def backward():
            self.grad += derivative * out.grad
        out._backward = backward
        return out

    def exp(self):                       # (eˣ)′ = eˣ
        e = math.exp(self.data)
        return self._unary(e, e, "exp")

    def tanh(self):                      # tanh′ = 1 − tanh²
        t = math.tanh(self.data)
        return self._unary(t, 1 - t * t, "tanh")

    def sigmoid(self):                   # σ′ = σ(1 − σ); e^(−|x|) ≤ 1 never overflows
        e = math.exp(-abs(self.data))
        s = 1 / (1 + e) if self.data >= 0 else e / (1 + e)
        return self._unary(s, s * (1 - s), "σ")

    def backward(self):
        """Fill .grad of every Value this one depends on with ∂self/∂(that Value)."""
        order, seen = [], set()

        def visit(v):                    # post-order: children before the node itself
            if v not in seen:
                seen.add(v)
                for child in v._children:
                    visit(child)
                order.append(v)
        visit(self)
        self.grad = 1.0                  # ∂self/∂self
        for v in reversed(order):        # from the output back to the leaves
            v._backward()


# %% [markdown]
# That is the whole engine. Each operation computes its result and leaves behind a small
# closure, `backward`, holding its local derivative; `Value.backward()` sorts the graph and
# calls the closures from the output back to the inputs.
#
# A first check, the two details above: in $b = a\cdot a$ the node $a$ is used twice, and
# $db/da = 2a$; in $c = a + a$, $dc/da = 2$. With `=` instead of `+=` the second use would
# overwrite the first one's share instead of adding to it.

# %%
a = Value(3.0)
b = a * a
b.backward()
print("d(a·a)/da at a = 3:", a.grad)
assert a.grad == 6.0

a = Value(3.0)
c = a + a
c.backward()
print("d(a+a)/da:", a.grad)
assert a.grad == 2.0

# %% [markdown]
# ## 3. Seed 000's two neurons, by the scalar engine
#
# Seed 000 (§4.3) works through two sigmoid neurons, $o_i = \sigma(z_i)$ with
# $z_i = w_{i1}x_1 + w_{i2}x_2 + b_i$, for $w_{11}=0.5$, $w_{12}=0.7$, $w_{21}=0.3$,
# $w_{22}=0.8$, $b=(0.2, 0.4)$ and $x=(1, 2)$. As in tutorial 01 we score the outputs with the
# document's loss $J = \tfrac12\sum_i (y_i - o_i)^2$ against the target $y = (1, 0)$, and ask
# for the gradient of $J$ with respect to everything: weights, biases and inputs.

# %%
W_INIT = [[0.5, 0.7], [0.3, 0.8]]
B_INIT = [0.2, 0.4]
X_INIT = [1.0, 2.0]
Y_TARGET = [1.0, 0.0]

w = [[Value(W_INIT[i][j], label=f"w{i + 1}{j + 1}") for j in range(2)] for i in range(2)]
bias = [Value(B_INIT[i], label=f"b{i + 1}") for i in range(2)]
x = [Value(X_INIT[j], label=f"x{j + 1}") for j in range(2)]
z = [w[i][0] * x[0] + w[i][1] * x[1] + bias[i] for i in range(2)]
o = [zi.sigmoid() for zi in z]
J = 0.5 * ((Value(Y_TARGET[0], label="y1") - o[0]) ** 2
           + (Value(Y_TARGET[1], label="y2") - o[1]) ** 2)
J.backward()

print(f"z = ({z[0].data:.4f}, {z[1].data:.4f}),  o = ({o[0].data:.4f}, {o[1].data:.4f}),  "
      f"J = {J.data:.6f}")
for v in [*w[0], *w[1], *bias, *x]:
    print(f"  ∂J/∂{v.label} = {v.grad:+.8f}")

# %% [markdown]
# Before trusting the engine, compare one entry with the chain rule by hand:
# $\partial J/\partial w_{11} = -(y_1 - o_1)\,\sigma'(z_1)\,x_1$ with
# $\sigma'(z) = \sigma(z)(1-\sigma(z))$. The input gradient mixes both neurons, because $x_1$
# feeds both: $\partial J/\partial x_1 = -\sum_i (y_i - o_i)\,\sigma'(z_i)\,w_{i1}$, the sum
# that `+=` accumulates.

# %%
ds = [oi.data * (1 - oi.data) for oi in o]                      # σ'(z_i)
err = [Y_TARGET[i] - o[i].data for i in range(2)]              # y_i − o_i
by_hand_w11 = -err[0] * ds[0] * X_INIT[0]
by_hand_x1 = -sum(err[i] * ds[i] * W_INIT[i][0] for i in range(2))
print(f"∂J/∂w11: engine {w[0][0].grad:.12f}, by hand {by_hand_w11:.12f}")
print(f"∂J/∂x1:  engine {x[0].grad:.12f}, by hand {by_hand_x1:.12f}")
assert abs(w[0][0].grad - by_hand_w11) < 1e-15
assert abs(x[0].grad - by_hand_x1) < 1e-15

# %% [markdown]
# ## 4. The same computation with minigrad's Tensor
#
# minigrad does exactly this, with arrays instead of single numbers: $z = Wx + b$ is one
# matrix-vector product and one addition, and each op's backward is a vector-Jacobian product
# on whole arrays (see `minigrad/autograd.py` and `minigrad/ops/`). In float64 the two engines
# agree to rounding.

# %%
Wt = minigrad.tensor(W_INIT, dtype="float64", requires_grad=True)
bt = minigrad.tensor(B_INIT, dtype="float64", requires_grad=True)
xt = minigrad.tensor(X_INIT, dtype="float64", requires_grad=True)
yt = minigrad.tensor(Y_TARGET, dtype="float64")
ot = minigrad.sigmoid(Wt @ xt + bt)             # (2,)
Jt = 0.5 * ((yt - ot) ** 2).sum()               # ()
Jt.backward()

scalar_grads = {
    "W": np.array([[v.grad for v in row] for row in w]),
    "b": np.array([v.grad for v in bias]),
    "x": np.array([v.grad for v in x]),
}
tensor_grads = {"W": Wt.grad, "b": bt.grad, "x": xt.grad}
for name in scalar_grads:
    diff = np.abs(scalar_grads[name] - tensor_grads[name]).max()
    print(f"∂J/∂{name}: Value {scalar_grads[name].ravel()}  Tensor {tensor_grads[name].ravel()}"
          f"  max |difference| {diff:.1e}")
    assert diff < 1e-15
assert abs(J.data - Jt.item()) < 1e-15

# %% [markdown]
# ## 5. The computation graph, drawn
#
# Every box below is one `Value`: its operation (or its name, for a leaf), its value from the
# forward pass and its gradient $\partial J/\partial v$ from the backward pass. The forward
# pass runs left to right, the backward pass right to left. Note $x_1$ and $x_2$: each has
# two outgoing edges, and its gradient is the sum of what comes back along both.

# %%
def topological_order(root):
    """Every Value that ``root`` depends on, each after its children (as in backward())."""
    order, seen = [], set()

    def visit(v):
        if v not in seen:
            seen.add(v)
            for child in v._children:
                visit(child)
            order.append(v)
    visit(root)
    return order


def draw_graph(root, ax, parameters, inputs):
    """Boxes for the nodes (op or name, data, grad) and arrows for the edges, no graphviz.

    Column: the longest path from the node to ``root`` (the loss sits at the right). Row: leaves
    in the order a depth-first walk meets them, every other node at the mean of its children,
    then moved down where it would overlap the box above it.
    """
    order = topological_order(root)
    depth = {root: 0}
    for v in reversed(order):                   # parents before children
        for child in v._children:
            depth[child] = max(depth.get(child, 0), depth[v] + 1)
    columns = max(depth.values())
    pos, row = {}, 0
    for v in order:                             # children before parents
        if not v._children:
            pos[v] = (columns - depth[v], -row)
            row += 1
        else:
            pos[v] = (columns - depth[v], np.mean([pos[c][1] for c in v._children]))
    for column in range(columns + 1):           # push apart boxes that would overlap
        stacked = sorted((v for v in order if pos[v][0] == column), key=lambda v: -pos[v][1])
        for upper, lower in itertools.pairwise(stacked):
            pos[lower] = (column, min(pos[lower][1], pos[upper][1] - 1))
    bottom = min(y for _, y in pos.values())
    box_w, box_h = 0.66, 0.78
    for v in order:
        for child in v._children:
            (x0, y0), (x1, y1) = pos[child], pos[v]
            ax.annotate("", xy=(x1 - box_w / 2, y1), xytext=(x0 + box_w / 2, y0),
                        arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 1})
    for v in order:
        if v is root:
            colour = "#f4a6a6"
        elif v in parameters:
            colour = "#a9c8ef"
        elif v in inputs:
            colour = "#b6e2b0"
        elif not v._children:
            colour = "#dddddd"
        else:
            colour = "#fbd8a5"
        cx, cy = pos[v]
        ax.add_patch(FancyBboxPatch((cx - box_w / 2, cy - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.02", fc=colour, ec="0.3"))
        name = v.label or v._op
        ax.text(cx, cy, f"{name}\ndata {v.data:.4f}\ngrad {v.grad:+.4f}", ha="center",
                va="center", fontsize=8.5, family="monospace")
    ax.set_xlim(-0.6, columns + 0.6)
    ax.set_ylim(bottom - 0.6, 0.6)
    ax.set_xticks(range(columns + 1))
    ax.set_xticklabels([f"{columns - k}" for k in range(columns + 1)])
    ax.set_yticks([])
    ax.set_ylabel("one box per Value")
    ax.set_xlabel("longest path to the loss (forward pass → left to right, backward pass ← "
                  "right to left)")
    legend = [Patch(fc="#a9c8ef", ec="0.3", label="parameter (w, b)"),
              Patch(fc="#b6e2b0", ec="0.3", label="input x"),
              Patch(fc="#dddddd", ec="0.3", label="constant (target y, ½)"),
              Patch(fc="#fbd8a5", ec="0.3", label="operation"),
              Patch(fc="#f4a6a6", ec="0.3", label="loss J")]
    ax.legend(handles=legend, loc="lower left", fontsize=9, framealpha=0.95)
    return order


fig, ax = plt.subplots(figsize=(15, 9.5))
nodes = draw_graph(J, ax, parameters={*w[0], *w[1], *bias}, inputs=set(x))
ax.set_title("Seed 000's two sigmoid neurons and the loss J = ½Σ(yᵢ − oᵢ)²: "
             f"{len(nodes)} Values, each with its data and ∂J/∂value")
fig.tight_layout()
graph_path = FIGURES / "02_computation_graph.png"
fig.savefig(graph_path, dpi=110)
print("saved", graph_path, "with", len(nodes), "nodes")
assert len(nodes) == 27   # 8 leaves w, b, x; 3 constants; 16 operations

# %% [markdown]
# ## 6. Gradient descent with both engines
#
# Seed 004 (§3) lists the steps of gradient descent: initialise the parameters $\theta_0$ and
# the learning rate $\eta$; run the model forward; compute the loss; compute its gradient;
# update $\theta_{t+1} = \theta_t - \eta\,\nabla_\theta L$; repeat. We train the same small
# network, 2 inputs → 4 tanh units → 1 output, on the four XOR points with both engines from
# the same initial weights, and compare the loss at every step.

# %%
X_XOR = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y_XOR = np.array([-1.0, 1.0, 1.0, -1.0])
HIDDEN, LR, STEPS = 4, 0.2, 200
init = np.random.default_rng(0)
W1_0 = init.normal(0, 1, (2, HIDDEN))
b1_0 = np.zeros(HIDDEN)
W2_0 = init.normal(0, 1 / math.sqrt(HIDDEN), (HIDDEN, 1))
b2_0 = np.zeros(1)

# the scalar engine: one Value per weight
W1 = [[Value(W1_0[i, j]) for j in range(HIDDEN)] for i in range(2)]
b1 = [Value(v) for v in b1_0]
W2 = [Value(W2_0[j, 0]) for j in range(HIDDEN)]
b2 = Value(b2_0[0])
scalar_params = [*W1[0], *W1[1], *b1, *W2, b2]


def scalar_loss():
    total = 0
    for xs, target in zip(X_XOR, Y_XOR, strict=True):
        h = [(W1[0][j] * xs[0] + W1[1][j] * xs[1] + b1[j]).tanh() for j in range(HIDDEN)]
        out = sum(h[j] * W2[j] for j in range(HIDDEN)) + b2
        total = total + (out - target) ** 2
    return total * (1 / len(X_XOR))


# minigrad: four Tensors
W1t = minigrad.tensor(W1_0, dtype="float64", requires_grad=True)
b1t = minigrad.tensor(b1_0, dtype="float64", requires_grad=True)
W2t = minigrad.tensor(W2_0, dtype="float64", requires_grad=True)
b2t = minigrad.tensor(b2_0, dtype="float64", requires_grad=True)
tensor_params = [W1t, b1t, W2t, b2t]
Xt = minigrad.tensor(X_XOR, dtype="float64")
Yt = minigrad.tensor(Y_XOR, dtype="float64")


def tensor_loss():
    h = minigrad.tanh(Xt @ W1t + b1t)           # (4, HIDDEN)
    out = (h @ W2t + b2t).squeeze(-1)           # (4,)
    return ((out - Yt) ** 2).mean()


def count_graph_vertices(root):
    """The ops (nodes) and the parameters (leaves) that backward() walks from ``root``."""
    seen, stack = set(), [root._ctx]
    while stack:
        v = stack.pop()
        if v is not None and id(v) not in seen:
            seen.add(id(v))
            stack.extend(getattr(v, "parents", ()))  # a leaf Tensor has no parents
    return len(seen)


scalar_history, tensor_history = [], []
for step in range(STEPS):
    # forward and loss
    loss_s, loss_t = scalar_loss(), tensor_loss()
    if step == 0:
        n_scalar, n_tensor = len(topological_order(loss_s)), count_graph_vertices(loss_t)
    # gradient
    for p in scalar_params:
        p.grad = 0.0
    for p in tensor_params:
        p.grad = None
    loss_s.backward()
    loss_t.backward()
    # update θ ← θ − η·∇θL
    for p in scalar_params:
        p.data -= LR * p.grad
    for p in tensor_params:
        p.data -= LR * p.grad
    scalar_history.append(loss_s.data)
    tensor_history.append(loss_t.item())

scalar_history, tensor_history = np.array(scalar_history), np.array(tensor_history)
print(f"loss: step 0 {scalar_history[0]:.4f}, step {STEPS - 1} {scalar_history[-1]:.6f}")
print("largest difference between the engines' losses:",
      f"{np.abs(scalar_history - tensor_history).max():.1e}")
assert np.abs(scalar_history - tensor_history).max() < 1e-13
assert scalar_history[-1] < 0.05 * scalar_history[0]
with minigrad.no_grad():
    fitted = (minigrad.tanh(Xt @ W1t + b1t) @ W2t + b2t).squeeze(-1).numpy()
print("outputs on the XOR points:", np.round(fitted, 3), " targets:", Y_XOR)
assert np.array_equal(np.sign(fitted), Y_XOR)

# %% [markdown]
# Both engines take the same 200 steps and their losses agree to within 1e-13 at every step
# (only the order of the additions differs); the loss falls to under 5% of where it started,
# and the small network has learned XOR: every output has the target's sign.
#
# ## 7. What the arrays buy: fewer, bigger nodes
#
# The scalar engine makes one node per operation on single numbers; minigrad makes one node
# per operation on a whole array, here more than ten times fewer. Both graphs hold the same
# arithmetic, but the Python overhead of a node (the closure, the bookkeeping of the sort) is
# paid once per array op instead of once per number, and NumPy runs the arithmetic inside each
# node in compiled code.

# %%
print(f"one loss evaluation on 4 examples: {n_scalar} Values, {n_tensor} tensor ops and "
      "parameters")
assert n_scalar > 10 * n_tensor

# %% [markdown]
# ## 8. Deep graphs: why minigrad sorts without recursion
#
# `Value.backward()` sorts the graph with a recursive function: one Python call per level of
# depth. Python stops recursion at about a thousand levels, so a chain of a few thousand
# operations (a long recurrent network, or a deep network unrolled step by step) breaks it.
# minigrad's `run_backward` does the same post-order walk with an explicit stack (see
# `minigrad/autograd.py`) and has no such limit.

# %%
depth = 2 * sys.getrecursionlimit()
v = Value(1.0)
for _ in range(depth):
    v = v * 0.999
try:
    v.backward()
    scalar_deep = "ok"
except RecursionError:
    scalar_deep = "RecursionError"

t = minigrad.tensor(1.0, dtype="float64", requires_grad=True)
chain = t
for _ in range(depth):
    chain = chain * 0.999
chain.backward()
print(f"a chain of {depth} multiplications: Value.backward() -> {scalar_deep}; "
      f"minigrad: dL/dt = {float(t.grad):.10f} (0.999^{depth} = {0.999**depth:.10f})")
assert scalar_deep == "RecursionError"
assert abs(float(t.grad) - 0.999**depth) < 1e-12

# %% [markdown]
# ## What to take away
#
# * Reverse mode needs, per operation, only the forward result and its local derivative; the
#   chain rule does the rest, node by node.
# * The walk backward must follow a reverse topological order, and gradients must accumulate
#   (`+=`) where a value is used more than once.
# * minigrad's `Tensor` is the same design with arrays: its ops are `Function`s with a
#   `forward` and a `backward` side by side (`minigrad/ops/`), and each backward is checked
#   against finite differences, which is tutorial 03's subject.
