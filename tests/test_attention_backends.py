"""``F.scaled_dot_product_attention`` with every mask kind gives one answer on every backend, and
it is torch's (issue 15).

The backends: "numpy" (the composite in :class:`minigrad.ops.nn.ScaledDotProductAttention`),
"numba" (the fused CPU kernel, :mod:`minigrad.kernels.cpu.attention`) and the CUDA flash kernel
(:mod:`minigrad.kernels.cuda.attention`) run by numba's simulator on the CPU, plugged into the
registry the way ``kernels/cuda/engine.py`` plugs it in on a GPU. The "cupy" and "cuda"
backends themselves need a GPU: ``tests/test_gpu.py::test_attention_masks_on_every_gpu_backend``.

torch's math backend is the oracle (``SDPBackend.MATH``, its reference implementation) for every
row that attends to at least one key. Not its default CPU dispatch: that is a flash kernel which
saves only L = m + log l, and in the HF case below (a padded sequence, every score tied at
finfo.min) log l is lost in rounding, so its backward takes P = 1 for each of the S keys instead
of the 1/S its forward used: q, k and v gradients S times too large (torch 2.13; minigrad's
kernels save m and l apart, ``kernels/cuda/attention.py``). A row whose every key is
masked is where the two rules differ: torch 2.13's math path gives it zero weights (its "safe
softmax"); minigrad's rule (``kernels/cpu/softmax.py``) gives it uniform weights and no
gradient through the scores, on every backend. Those rows are checked against that rule.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from minigrad.kernels import registry
from torch.nn.attention import SDPBackend, sdpa_kernel

import minigrad
import minigrad.nn.functional as F

DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 2e-4, "atol": 2e-5}, np.float64: {"rtol": 1e-9, "atol": 1e-11}}
KINDS = ["bool", "float", "hf float", "causal", "padding"]
B, A, S, D = 2, 2, 5, 4


@pytest.fixture(autouse=True)
def restore_backend() -> Iterator[None]:
    previous = minigrad.get_backend()
    yield
    minigrad.set_backend(previous)


def case(kind: str, dtype: type, seed: int) -> tuple[list[np.ndarray], dict, np.ndarray]:
    """q, k, v (B, A, S, D), the keyword arguments of one mask kind (with some keys padded), and
    where a score is kept (B, A, L, S) by a bool mask, causal or padding, for the oracle."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((B, A, S, D)).astype(dtype) for _ in range(3)]
    padding = rng.random((B, S)) < 0.3
    padding[:, 0] = False
    kwargs: dict = {"key_padding_mask": padding}
    if kind == "bool":
        attend = rng.random((A, S, S)) < 0.6  # (A, L, S): broadcast over the batch
        attend[:, :, 0] = True
        attend[:, 1, :] = False  # query 1 attends to nothing
        kwargs["attn_mask"] = attend
    elif kind == "float":
        bias = rng.standard_normal((B, 1, S, S)).astype(dtype)  # (B, 1, L, S)
        bias[rng.random(bias.shape) < 0.2] = -np.inf
        bias[..., 0] = 0.5  # no row of -inf (NaN in both rules)
        kwargs["attn_mask"] = bias
    elif kind == "hf float":  # HF's additive mask, finfo.min at padding, a sequence all padded:
        padding[1] = True  # its rows are S ties at finfo.min, uniform (torch agrees)
        kwargs = {"attn_mask": np.where(padding[:, None, None, :], np.finfo(dtype).min,
                                        0).astype(dtype)}  # (B, 1, 1, S)
        return arrays, kwargs, np.ones((B, A, S, S), dtype=bool)
    elif kind == "causal":
        padding[1, 0] = True  # query 0 of sequence 1 sees only key 0: padding
        kwargs["is_causal"] = True
    else:
        padding[1] = True  # a whole sequence of padding
    kept = ~padding[:, None, None, :]
    if kind == "bool":
        kept = kept & kwargs["attn_mask"]
    if kind == "causal":
        kept = kept & np.tri(S, dtype=bool)
    return arrays, kwargs, np.broadcast_to(kept, (B, A, S, S))


def minigrad_attention(arrays: list[np.ndarray], kwargs: dict, upstream: np.ndarray
                       ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Output and input gradients, under whatever backend and registry is current."""
    tensors = [minigrad.tensor(x, requires_grad=True) for x in arrays]
    out = F.scaled_dot_product_attention(*tensors, **kwargs)
    out.backward(upstream)
    return out.data, [t.grad for t in tensors]


def torch_attention(arrays: list[np.ndarray], kwargs: dict, upstream: np.ndarray
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The oracle, given one mask: key padding and a bool mask or causal as one bool mask, or
    the padding as -inf added to a float mask."""
    q, k, v = (torch.from_numpy(x).requires_grad_() for x in arrays)
    padding = kwargs.get("key_padding_mask")
    mask = kwargs.get("attn_mask")
    attend = None if padding is None else torch.from_numpy(~padding)[:, None, None, :]
    if kwargs.get("is_causal"):
        attend = attend & torch.ones(S, S, dtype=torch.bool).tril()
    if mask is not None and mask.dtype == bool:
        attend = attend & torch.from_numpy(mask)
    elif mask is not None:
        bias = torch.from_numpy(mask)
        attend = bias if attend is None else bias.masked_fill(~attend, float("-inf"))
    with sdpa_kernel(SDPBackend.MATH):
        out = TF.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    out.backward(torch.from_numpy(upstream))
    return out.detach().numpy(), [t.grad.numpy() for t in (q, k, v)]


@pytest.fixture(scope="module")
def simulated_flash(simulated_cuda_kernels: types.ModuleType) -> registry.Kernel:
    """The CUDA flash kernel (simulator) as the registry's attention kernel, as
    ``kernels/cuda/engine.py`` wraps it on a GPU, on host arrays."""
    kc = simulated_cuda_kernels

    def forward(q: Any, k: Any, v: Any, masks: registry.AttentionMasks, scale: float,
                dropout_mask: Any, need_backward: bool) -> tuple[Any, tuple]:
        assert dropout_mask is None, "the flash kernel has no dropout"
        q, k, v = (np.ascontiguousarray(a) for a in (q, k, v))
        out, row_max, row_sum = kc.attention_forward(q, k, v, masks.keep, scale, masks.attend,
                                                     masks.bias, masks.causal)
        return out, (q, k, v, out, row_max, row_sum)

    def backward(dout: Any, masks: registry.AttentionMasks, scale: float, dropout_mask: Any,
                 saved: tuple) -> tuple:
        q, k, v, out, row_max, row_sum = saved
        return kc.attention_backward(np.ascontiguousarray(dout), q, k, v, out, row_max, row_sum,
                                     masks.keep, scale, masks.attend, masks.bias, masks.causal)

    return registry.Kernel(forward, backward)


def run_on(name: str, arrays: list[np.ndarray], kwargs: dict, upstream: np.ndarray,
           monkeypatch: pytest.MonkeyPatch, flash: registry.Kernel | None = None
           ) -> tuple[np.ndarray, list[np.ndarray]]:
    """minigrad's answer on backend ``name``, asserting that the fused kernel ran ("numba",
    "cuda simulator") or that none did ("numpy")."""
    used: list[bool] = []
    original = registry.kernel

    def spy(op: str, *xs: Any) -> Any:
        found = original(op, *xs) if flash is None or op != "attention" else flash
        if op == "attention":
            used.append(found is not None)
        return found

    minigrad.set_backend("numpy" if name == "cuda simulator" else name)
    with monkeypatch.context() as patch:
        patch.setattr(registry, "kernel", spy)
        result = minigrad_attention(arrays, kwargs, upstream)
    assert used == [name != "numpy"], f"{name}: the attention kernel ran: {used}"
    return result


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", ["numpy", "numba", "cuda simulator"])
def test_every_mask_kind_matches_torch_on_every_backend(backend, kind, dtype, monkeypatch,
                                                        request):
    flash = request.getfixturevalue("simulated_flash") if backend == "cuda simulator" else None
    arrays, kwargs, kept = case(kind, dtype, seed=KINDS.index(kind))
    upstream = np.random.default_rng(7).standard_normal((B, A, S, D)).astype(dtype)
    out, grads = run_on(backend, arrays, kwargs, upstream, monkeypatch, flash)
    seen = kept.any(axis=-1)  # (B, A, L): rows that attend to some key
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert np.isfinite(out).all() and all(np.isfinite(g).all() for g in grads)

    # rows that see a key: torch's answer, and so are the gradients from those rows alone
    expected, _ = torch_attention(arrays, kwargs, upstream)
    np.testing.assert_allclose(out[seen], expected[seen], err_msg="forward", **TOL[dtype])
    only_seen = np.where(seen[..., None], upstream, 0).astype(dtype)
    _, grads_seen = run_on(backend, arrays, kwargs, only_seen, monkeypatch, flash)
    _, expected_grads = torch_attention(arrays, kwargs, only_seen)
    for i, (g, e) in enumerate(zip(grads_seen, expected_grads, strict=True)):
        np.testing.assert_allclose(g, e, err_msg=f"gradient of input {i}", **TOL[dtype])

    # rows that see none: the mean of the values, and no gradient through the scores
    if not seen.all():
        v = arrays[2]
        mean = np.broadcast_to(v.mean(axis=2, keepdims=True), v.shape)
        np.testing.assert_allclose(out[~seen], mean[~seen], **TOL[dtype])
        only_unseen = np.where(seen[..., None], 0, upstream).astype(dtype)
        _, (gq, gk, gv) = run_on(backend, arrays, kwargs, only_unseen, monkeypatch, flash)
        np.testing.assert_array_equal(gq, 0.0)
        np.testing.assert_array_equal(gk, 0.0)
        np.testing.assert_allclose(gv, np.broadcast_to(only_unseen.sum(axis=2, keepdims=True)
                                                       / S, gv.shape), **TOL[dtype])


def test_the_cases_cover_unseen_rows_and_hf_ties():
    """The cases above reach what they claim: rows that see no key in the bool, causal and
    padding kinds, -inf in the float one, and whole rows at finfo.min in the HF one."""
    for kind in ("bool", "causal", "padding"):
        assert not case(kind, np.float32, 0)[2].any(axis=-1).all(), kind
    assert np.isneginf(case("float", np.float32, 1)[1]["attn_mask"]).any()
    hf = case("hf float", np.float32, 2)[1]["attn_mask"]
    assert (hf[1] == np.finfo(np.float32).min).all()


@pytest.mark.parametrize("kind", KINDS)
def test_numba_and_numpy_agree_with_dropout(kind, monkeypatch):
    """With dropout the fused CPU kernel still takes every mask; the same seed gives the same
    dropout mask on both backends, so their answers must agree (torch draws another)."""
    arrays, kwargs, _ = case(kind, np.float64, seed=3)
    upstream = np.random.default_rng(8).standard_normal((B, A, S, D))
    results = []
    for name in ("numpy", "numba"):
        minigrad.set_backend(name)
        minigrad.manual_seed(11)
        tensors = [minigrad.tensor(x, requires_grad=True) for x in arrays]
        out = F.scaled_dot_product_attention(*tensors, dropout_p=0.4, **kwargs)
        out.backward(upstream)
        results.append([out.data] + [t.grad for t in tensors])
    for got, want in zip(*results, strict=True):
        np.testing.assert_allclose(got, want, **TOL[np.float64])
