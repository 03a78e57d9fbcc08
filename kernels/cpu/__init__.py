"""Numba CPU kernels (@njit), each beside its naive reference.

Every kernel is a pure array function, NumPy arrays in and out, with a forward and a backward
form; ``*_reference`` is the plain NumPy composite it is tested and benchmarked against. Read
:mod:`.common` first (why the loops look the way they do), then :mod:`.softmax`.

==================  ==========================================================================
module              kernels
==================  ==========================================================================
:mod:`.softmax`     ``softmax_forward(x, scale, mask)``, ``softmax_backward(y, dy, scale, mask)``
:mod:`.layernorm`   ``layernorm_forward(x, w, b, eps)`` → (y, mean, rstd), ``layernorm_backward``
:mod:`.gelu`        ``gelu_forward/backward``, ``bias_gelu_forward/backward`` (erf and tanh)
:mod:`.attention`   ``attention_forward(q, k, v, mask, scale, dropout_mask)`` → (out, probs),
                    ``attention_backward``
:mod:`.cross_entropy`  ``cross_entropy_forward(logits, target, ...)`` → (loss, lse), backward
:mod:`.optim`       ``adamw_step``, ``adam_step``, ``sgd_step`` (in place, as torch.optim)
:mod:`.matmul`      ``matmul.matmul(a, b, version)``: the educational matmul, v0 to v3
:mod:`.int8`        ``int8.int8_matmul(a, b)``: int8 × int8 → int32, exact (int8 inference)
:mod:`.vecmath`     exp and erf as plain arithmetic, so the loops that call them vectorize
==================  ==========================================================================

Wiring a kernel into an op (a kernel knows nothing of autograd): :mod:`.engine` hands each
kernel pair to the kernel registry (:mod:`minigrad.kernels.registry`) in the registry's
signature for its op; the op asks the registry for it, and its forward calls the kernel's
forward and saves what the kernel's backward takes, for example

.. code-block:: python

    class LayerNorm(Function):
        @staticmethod
        def forward(ctx, x, w, b, eps):
            ctx.kernel = registry.kernel("layer_norm", x, w, b)  # engine.LAYER_NORM
            y, mean, rstd = ctx.kernel.forward(x, w, b, eps)
            ctx.save_for_backward(x, w, mean, rstd)
            return y

        @staticmethod
        def backward(ctx, g):
            x, w, mean, rstd = ctx.saved
            return ctx.kernel.backward(g, x, w, mean, rstd)  # (dx, dw, db)

What each forward keeps for its backward: softmax its output y; LayerNorm mean and rstd (with
x and w); GELU its input x (bias-GELU x and b); attention probs (with q, k, v, the mask and
the dropout mask); cross-entropy row_max and log_sum (with the logits and targets). Inputs are
float32 or float64 NumPy arrays of one dtype; outputs are new arrays of that dtype, except the
optimizer steps, which update their arrays in place.
"""

import os

# Numba runs its parallel loops on the OpenMP threading layer (GNU libgomp). By default
# libgomp's idle threads spin for a while after each parallel loop, and on a machine with few
# cores they take the cores from the OpenBLAS threads of the matmul that follows: a bert-mini
# forward pass ran 1.6x slower (benchmarks/bert_step.py, 2 threads). Passive waiting puts them
# to sleep at once. libgomp reads this when it loads, at the first parallel kernel call.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .attention import attention_backward, attention_forward
from .cross_entropy import cross_entropy_backward, cross_entropy_forward
from .gelu import bias_gelu_backward, bias_gelu_forward, gelu_backward, gelu_forward
from .layernorm import layernorm_backward, layernorm_forward
from .optim import adam_step, adamw_step, sgd_step
from .softmax import softmax_backward, softmax_forward

__all__ = [
    "adam_step",
    "adamw_step",
    "attention_backward",
    "attention_forward",
    "bias_gelu_backward",
    "bias_gelu_forward",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "gelu_backward",
    "gelu_forward",
    "layernorm_backward",
    "layernorm_forward",
    "sgd_step",
    "softmax_backward",
    "softmax_forward",
]
