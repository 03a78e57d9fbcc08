"""Attention's masks (issue 15), beyond the battery: ``attn_mask`` (bool or float), ``is_causal``
and ``key_padding_mask`` in ``F.scaled_dot_product_attention``.

The battery (gradcheck, torch, dtype) checks each mask kind on random inputs with no fully
masked row. Here: the numpy and numba backends agree on every mask kind (the numba backend runs
the fused kernel for each of them; ``tests/test_attention_backends.py`` checks every backend,
the CUDA kernels under the simulator, against torch); a fully masked row
follows the codebase's rule (uniform, gradient 0) for bool masks, causal and padding, and is NaN
for a float mask of -inf (the composite's formula); the causal triangle is torch's (top-left
aligned, also for L != S); and the errors are torch's kind and name the shapes.
"""

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from minigrad.kernels import registry

import minigrad
import minigrad.nn.functional as F

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN rows on purpose

DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-9, "atol": 1e-12}}
KINDS = ["bool", "float", "causal", "padding"]


@pytest.fixture(autouse=True)
def restore_backend() -> Iterator[None]:
    previous = minigrad.get_backend()
    yield
    minigrad.set_backend(previous)


def inputs(kind: str, seed: int, b: int = 2, a: int = 3, s: int = 5, d: int = 4
           ) -> tuple[list[np.ndarray], dict]:
    """Self-attention q, k, v (B, A, S, D) and the keyword arguments of one mask kind; every
    kind also pads some keys (sequence 0 every key: fully masked rows)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((b, a, s, d)) for _ in range(3)]
    padding = rng.random((b, s)) < 0.3
    padding[0] = True
    kwargs: dict = {"key_padding_mask": padding}
    if kind == "bool":
        kwargs["attn_mask"] = rng.random((a, s, s)) < 0.6  # (A, L, S), broadcast over B
    elif kind == "float":
        kwargs["attn_mask"] = rng.standard_normal((b, 1, s, s))  # (B, 1, L, S)
    elif kind == "causal":
        kwargs["is_causal"] = True
    return arrays, kwargs


def run(name: str, arrays: list[np.ndarray], kwargs: dict, dtype: type, dropout: float,
        seed: int) -> tuple[np.ndarray, list[np.ndarray], bool]:
    """Output, input gradients and whether the registry handed out an attention kernel."""
    minigrad.set_backend(name)
    tensors = [minigrad.tensor(x.astype(dtype), requires_grad=True) for x in arrays]
    mask = kwargs.get("attn_mask")
    if mask is not None and mask.dtype != bool:
        kwargs = {**kwargs, "attn_mask": mask.astype(dtype)}
    found: list[object] = []
    original = registry.kernel

    def spy(op: str, *xs: np.ndarray) -> object:
        kernel = original(op, *xs)
        found.append(op == "attention" and kernel is not None)
        return kernel

    registry.kernel = spy
    try:
        minigrad.manual_seed(seed)
        out = F.scaled_dot_product_attention(*tensors, dropout_p=dropout, **kwargs)
        out.backward(np.random.default_rng(seed).standard_normal(out.shape).astype(dtype))
    finally:
        registry.kernel = original
    return out.data, [t.grad for t in tensors], any(found)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_numpy_and_numba_backends_agree_for_every_mask_kind(kind, dropout, dtype, seed):
    arrays, kwargs = inputs(kind, seed)
    expected, expected_grads, _ = run("numpy", arrays, kwargs, dtype, dropout, seed)
    out, grads, fused = run("numba", arrays, kwargs, dtype, dropout, seed)
    assert fused, "the fused kernel takes every mask kind"
    assert out.dtype == dtype and np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, err_msg="forward", **TOL[dtype])
    for i, (g, e) in enumerate(zip(grads, expected_grads, strict=True)):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, e, err_msg=f"gradient of input {i}", **TOL[dtype])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("how", ["bool attn_mask", "causal and padding"])
def test_a_row_with_every_key_masked_is_uniform_with_zero_gradient(backend, how):
    """The rule of kernels/cpu/softmax.py: every score finfo.min, so P = 1/S and dS = 0."""
    minigrad.set_backend(backend)
    rng = np.random.default_rng(0)
    q, k, v = (minigrad.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
               for _ in range(3))
    if how == "bool attn_mask":
        mask = np.ones((3, 3), dtype=bool)
        mask[1] = False  # query 1 attends to nothing
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:  # query 0 attends to key 0 only, which is padding
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             key_padding_mask=np.array([[True, False, False]]))
    row = 1 if how == "bool attn_mask" else 0
    np.testing.assert_allclose(out.data[0, :, row], v.data[0].mean(axis=1), rtol=1e-12)
    upstream = np.zeros(out.shape)
    upstream[0, :, row] = rng.standard_normal((2, 4))
    out.backward(upstream)
    np.testing.assert_array_equal(q.grad, 0.0)  # only the masked row's gradient flows
    np.testing.assert_array_equal(k.grad, 0.0)
    np.testing.assert_allclose(v.grad, np.broadcast_to(upstream[:, :, row:row + 1] / 3,
                                                       v.shape), rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_float_mask_row_of_minus_inf_is_nan_the_composites_formula(backend):
    """NaN, as F.softmax of a row of -inf. (torch 2.13's math path gives 0 there instead: its
    safe softmax; the other rows agree with it.)"""
    minigrad.set_backend(backend)
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 1, 3, 4)) for _ in range(3))
    mask = rng.standard_normal((3, 3))
    mask[2] = -np.inf
    mask[0, 1] = -np.inf
    out = F.scaled_dot_product_attention(*(minigrad.tensor(x) for x in (q, k, v)),
                                         attn_mask=mask).data
    expected = TF.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)),
                                               attn_mask=torch.from_numpy(mask)).numpy()
    assert np.isnan(out[0, 0, 2]).all()
    np.testing.assert_allclose(out[0, 0, :2], expected[0, 0, :2], rtol=1e-12)


@pytest.mark.parametrize("length, keys", [(3, 5), (5, 3), (4, 4)])
def test_is_causal_is_torchs_top_left_triangle(length, keys):
    rng = np.random.default_rng(2)
    q = rng.standard_normal((2, 2, length, 3))
    k, v = rng.standard_normal((2, 2, keys, 3)), rng.standard_normal((2, 2, keys, 3))
    ours = F.scaled_dot_product_attention(*(minigrad.tensor(x) for x in (q, k, v)),
                                          is_causal=True)
    theirs = TF.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), is_causal=True)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
    explicit = F.scaled_dot_product_attention(
        *(minigrad.tensor(x) for x in (q, k, v)), attn_mask=np.tri(length, keys, dtype=bool))
    np.testing.assert_array_equal(ours.data, explicit.data)


def test_positional_arguments_are_torchs():
    """attn_mask, dropout_p, is_causal, scale, in torch's order; key_padding_mask by keyword."""
    rng = np.random.default_rng(3)
    q, k, v = (minigrad.tensor(rng.standard_normal((1, 2, 3, 4))) for _ in range(3))
    mask = rng.random((3, 3)) < 0.5
    mask[:, 0] = True
    positional = F.scaled_dot_product_attention(q, k, v, mask, 0.0, False, 0.7)
    keywords = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.7)
    np.testing.assert_array_equal(positional.data, keywords.data)
    with pytest.raises(TypeError):
        F.scaled_dot_product_attention(q, k, v, mask, 0.0, False, 0.7, None)


def test_errors_are_torchs_kind_and_name_the_shapes():
    q = minigrad.tensor(np.zeros((2, 3, 4, 5)))
    k = v = minigrad.tensor(np.zeros((2, 3, 6, 5)))
    with pytest.raises(RuntimeError, match=r"attn_mask of shape \(4, 5\) does not broadcast "
                                           r"to \(B, A, L, S\) = \(2, 3, 4, 6\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 5), dtype=bool))
    with pytest.raises(RuntimeError, match=r"does not broadcast"):  # it would grow the output
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((7, 2, 3, 4, 6), dtype=bool))
    with pytest.raises(RuntimeError, match=r"attn_mask \(shape \(4, 6\)\) and is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 6), dtype=bool),
                                       is_causal=True)
    with pytest.raises(RuntimeError, match="bool or query's dtype float64, got int64"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 6), dtype=np.int64))
    with pytest.raises(RuntimeError, match="bool or query's dtype float32, got float64"):
        F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                       attn_mask=np.zeros((4, 6)))
    with pytest.raises(RuntimeError, match="attn_mask requires grad"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=minigrad.tensor(
            np.zeros((4, 6)), requires_grad=True))
    for torch_kwargs in ({"attn_mask": torch.ones(4, 5, dtype=torch.bool)},
                         {"attn_mask": torch.ones(4, 6, dtype=torch.int64)}):
        with pytest.raises(RuntimeError):  # torch's kind for the same mistakes
            TF.scaled_dot_product_attention(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 6, 5),
                                            torch.zeros(2, 3, 6, 5), **torch_kwargs)
