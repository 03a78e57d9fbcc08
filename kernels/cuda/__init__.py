"""numba.cuda kernels, each fast one beside the naive reference it is tested against.

Every public function here is a pure array function: NumPy arrays, numba device arrays or CuPy
arrays (anything with ``__cuda_array_interface__``) in, arrays out (see :mod:`.common`). They
know nothing of Tensor or autograd; the kernel registry hands them to the ops (:mod:`.engine`).

* :mod:`.sgemm`: C = A·B, ``sgemm_v1`` (naive) → ``sgemm_v4`` (2-D register tiling) →
  ``sgemm_v5`` (v4 with cheap indices, an unrolled inner loop and prefetched tiles: ``sgemm``);
* :mod:`.softmax`: fused scale + key-padding mask + row softmax, forward and backward;
* :mod:`.layernorm`: LayerNorm forward (saving mean and rstd) and backward (dx, dw, db);
* :mod:`.attention`: flash-style attention with online softmax and torch's masks (key
  padding, bool, float, causal), forward (saving the rows' max and sum) and backward;
* :mod:`.precision`: the dtypes a kernel stores and computes in; softmax, LayerNorm and the
  attention forward also take float16 and bfloat16 (as uint16 bit patterns), summing in
  float32;
* :mod:`.adamw`: one fused AdamW step, in place (and the same step as one CuPy elementwise
  kernel, the ``"cupy"`` backend's);
* :mod:`.engine`: the kernels in the kernel registry's signatures, on the engine's CuPy arrays
  (imports CuPy; not imported by this package);
* :mod:`.checks`: the GPU's input checks, read at the next copy to the host (imports CuPy; not
  imported by this package).

:func:`set_allocator` makes the outputs come from another allocator (``cupy.empty``: CuPy's
memory pool). ``python -m minigrad.kernels.cuda.ptx`` compiles every kernel for an H100 without
a GPU and prints its registers, spills and shared memory (:mod:`.ptx`).

Importing this package imports ``numba.cuda``. To run the kernels on the CPU (CI has no GPU),
set ``NUMBA_ENABLE_CUDASIM=1`` before numba.cuda is first imported in the process.
"""

from .adamw import adamw_step, adamw_step_naive
from .attention import (
    attention_backward,
    attention_backward_naive,
    attention_forward,
    attention_forward_naive,
)
from .common import set_allocator
from .layernorm import (
    layernorm_backward,
    layernorm_backward_naive,
    layernorm_forward,
    layernorm_forward_naive,
)
from .sgemm import VERSIONS as SGEMM_VERSIONS
from .sgemm import sgemm, sgemm_v1, sgemm_v2, sgemm_v3, sgemm_v4, sgemm_v5
from .softmax import (
    softmax_backward,
    softmax_backward_naive,
    softmax_forward,
    softmax_forward_naive,
)

__all__ = [
    "SGEMM_VERSIONS",
    "adamw_step",
    "adamw_step_naive",
    "attention_backward",
    "attention_backward_naive",
    "attention_forward",
    "attention_forward_naive",
    "layernorm_backward",
    "layernorm_backward_naive",
    "layernorm_forward",
    "layernorm_forward_naive",
    "set_allocator",
    "sgemm",
    "sgemm_v1",
    "sgemm_v2",
    "sgemm_v3",
    "sgemm_v4",
    "sgemm_v5",
    "softmax_backward",
    "softmax_backward_naive",
    "softmax_forward",
    "softmax_forward_naive",
]
