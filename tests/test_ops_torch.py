"""Every op agrees with PyTorch: the forward value and the gradient of every input.

For each case of the battery, both libraries run the same float64 inputs and back-propagate the
same random upstream gradient. PyTorch is the test oracle only; minigrad never imports it.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from minigrad import Tensor, maximum
from minigrad.gradcheck import BATTERY, OpCase, case_shape
from minigrad.nn import functional as F


def dims(x: torch.Tensor, dim: int | tuple[int, ...] | None) -> tuple[int, ...] | int:
    """minigrad's dim=None (every dim) for the functions that spell it as a tuple."""
    return tuple(range(x.ndim)) if dim is None else dim


def as_torch_index(index: Any) -> Any:
    """NumPy index arrays as torch tensors; slices, Ellipsis and ints as they are."""
    if isinstance(index, tuple):
        return tuple(as_torch_index(i) for i in index)
    return torch.from_numpy(index) if isinstance(index, np.ndarray) else index


t = torch.as_tensor


def attend(key_padding_mask: np.ndarray | None) -> torch.Tensor | None:
    """A (B, S) key padding mask (True = padded) as torch's boolean attn_mask (True = attend)."""
    return None if key_padding_mask is None else ~t(key_padding_mask)[:, None, None, :]


def attention_with_dropout_mask(q, k, v, key_padding_mask, scale, mask, p):
    """torch's math path of scaled_dot_product_attention, with a given dropout keep-mask."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if key_padding_mask is not None:
        scores = scores.masked_fill(~attend(key_padding_mask), float("-inf"))
    return (scores.softmax(-1) * t(mask) / (1 - p)) @ v


def masked_attention(q, k, v, key_padding_mask, scale, attn_mask=None, is_causal=False):
    """torch's scaled_dot_product_attention with minigrad's key padding mask folded into
    attn_mask (torch has no key_padding_mask, and takes no attn_mask beside is_causal; nor a
    mask of under 2 dims: that one with leading 1s)."""
    mask = None if attn_mask is None else t(attn_mask)
    if mask is not None and mask.ndim < 2:
        mask = mask.reshape((1,) * (2 - mask.ndim) + tuple(mask.shape))
    keys = attend(key_padding_mask)
    if keys is not None:
        if is_causal:
            mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril() & keys
            is_causal = False
        elif mask is None or mask.dtype == torch.bool:
            mask = keys if mask is None else mask & keys
        else:
            mask = mask.masked_fill(~keys, float("-inf"))
    return TF.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                           scale=scale)


def distillation_loss(s, teacher_logits, target, T, alpha, ignore_index, reduction):  # noqa: N803
    """Hinton et al.'s loss from torch's own kl_div and cross_entropy: α·T²·KL(p ‖ q) per
    example (kl_div summed over the class dim) + (1 − α)·CE, ignored examples left out."""
    dim = 0 if s.ndim == 1 else 1
    y = t(target)
    soft = TF.kl_div(TF.log_softmax(s / T, dim), TF.log_softmax(t(teacher_logits) / T, dim),
                     reduction="none", log_target=True).sum(dim)
    hard = TF.cross_entropy(s, y, ignore_index=ignore_index, reduction="none")
    valid = y != ignore_index
    loss = torch.where(valid, alpha * T**2 * soft + (1 - alpha) * hard, 0.0)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / valid.sum().clamp(min=1)


def weighted_cat(pieces: tuple[torch.Tensor, ...], dim: int) -> torch.Tensor:
    """The pieces joined again, piece i times i + 1 (as the battery's split and chunk)."""
    return torch.cat([p * (i + 1.0) for i, p in enumerate(pieces)], dim)


def setitem(x: torch.Tensor, v: torch.Tensor, index: Any) -> torch.Tensor:
    y = x * 1.0
    y[index] = v
    return y


# Each battery case's PyTorch equivalent: the same inputs (torch tensors), the same params.
TORCH: dict[str, Callable[..., torch.Tensor]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow_scalar": lambda x: x**2.5,
    "pow": lambda a, b: a**b,
    "neg": lambda x: -x,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "abs": torch.abs,
    "clip": lambda x, min, max: torch.clamp(x, min, max),
    "maximum": torch.maximum,
    "where": lambda a, b, condition: torch.where(t(condition), a, b),
    "masked_fill": lambda x, mask, value: x.masked_fill(t(mask), value),
    "sum": lambda x, dim, keepdim: torch.sum(x, dims(x, dim), keepdim),
    "mean": lambda x, dim, keepdim: torch.mean(x, dims(x, dim), keepdim),
    "max": lambda x, dim, keepdim: torch.amax(x, dims(x, dim), keepdim),
    "min": lambda x, dim, keepdim: torch.amin(x, dims(x, dim), keepdim),
    "var": lambda x, dim, keepdim: torch.var(x, dim, correction=1, keepdim=keepdim),
    "reshape": lambda x, shape: x.reshape(shape),
    "view": lambda x, shape: x.view(shape),
    "transpose": lambda x, dim0, dim1: x.transpose(dim0, dim1),
    "permute": lambda x, dims: x.permute(dims),
    "unsqueeze": lambda x, dim: x.unsqueeze(dim),
    "squeeze": lambda x, dim: x.squeeze(dim),
    "expand": lambda x, sizes: x.expand(sizes),
    "getitem_slice": lambda x, index: x[as_torch_index(index)],
    "getitem_int_array": lambda x, index: x[as_torch_index(index)],
    "getitem_bool_mask": lambda x, index: x[as_torch_index(index)],
    "getitem_mixed": lambda x, index: x[as_torch_index(index)],
    "setitem": lambda x, v, index: setitem(x, v, as_torch_index(index)),
    "inplace_arithmetic": lambda a, b, op: getattr(a * 1.0, op)(b),
    "cat": lambda *xs, dim: torch.cat(xs, dim),
    "stack": lambda *xs, dim: torch.stack(xs, dim),
    "matmul": torch.matmul,
    "matmul_1d": torch.matmul,
    "softmax": lambda x, dim: TF.softmax(x, dim),
    "log_softmax": lambda x, dim: TF.log_softmax(x, dim),
    "gelu": TF.gelu,
    "gelu_tanh": lambda x: TF.gelu(x, approximate="tanh"),
    "layer_norm": lambda x, w, b, normalized_shape: TF.layer_norm(x, normalized_shape, w, b,
                                                                  eps=1e-5),
    "embedding": lambda w, idx: TF.embedding(t(idx), w),
    "dropout": lambda x, mask, p: x * t(mask) / (1 - p),
    "linear": TF.linear,
    "linear_gelu": lambda x, w, b: TF.gelu(TF.linear(x, w, b)),
    "linear_gelu_tanh": lambda x, w, b: TF.gelu(TF.linear(x, w, b), approximate="tanh"),
    "scaled_dot_product_attention": lambda q, k, v, key_padding_mask, scale:
        TF.scaled_dot_product_attention(q, k, v, attn_mask=attend(key_padding_mask), scale=scale),
    "scaled_dot_product_attention_dropout": lambda q, k, v, key_padding_mask, scale, mask, p:
        attention_with_dropout_mask(q, k, v, key_padding_mask, scale, mask, p),
    "mse_loss": lambda x, target, reduction: TF.mse_loss(x, t(target), reduction=reduction),
    "binary_cross_entropy": lambda x, target, reduction: TF.binary_cross_entropy(
        x, t(target), reduction=reduction),
    "binary_cross_entropy_with_logits": lambda x, target, reduction:
        TF.binary_cross_entropy_with_logits(x, t(target), reduction=reduction),
    "mse_loss_target": lambda x, y, reduction: TF.mse_loss(x, y, reduction=reduction),
    "binary_cross_entropy_target": lambda p, y, reduction: TF.binary_cross_entropy(
        p, y, reduction=reduction),
    "binary_cross_entropy_with_logits_target": lambda x, y, reduction:
        TF.binary_cross_entropy_with_logits(x, y, reduction=reduction),
    "cross_entropy": lambda x, target, ignore_index, label_smoothing, reduction:
        TF.cross_entropy(x, torch.as_tensor(target), ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing),
    # indexing, scans and sorting (issue 15)
    "gather": lambda x, dim, index: torch.gather(x, dim, t(index)),
    "scatter": lambda x, src, dim, index: torch.scatter(x, dim, t(index), src),
    "scatter_value": lambda x, dim, index, value: torch.scatter(x, dim, t(index), value),
    "scatter_add": lambda x, src, dim, index: torch.scatter_add(x, dim, t(index), src),
    "index_select": lambda x, dim, index: torch.index_select(x, dim, t(index)),
    "masked_select": lambda x, mask: torch.masked_select(x, t(mask)),
    "take_along_dim": lambda x, indices, dim: torch.take_along_dim(x, t(indices), dim),
    "cumsum": torch.cumsum,
    "cumprod": torch.cumprod,
    "sort": lambda x, dim, descending, stable: torch.sort(x, dim=dim, descending=descending,
                                                          stable=stable).values,
    "topk": lambda x, k, dim, largest: torch.topk(x, k, dim, largest).values,
    "flip": lambda x, dims: torch.flip(x, dims),
    "roll": lambda x, shifts, dims: torch.roll(x, shifts, dims),
    # shape ops, reductions and einsum (issue 15)
    "split": lambda x, split_size_or_sections, dim: weighted_cat(
        torch.split(x, split_size_or_sections, dim), dim),
    "chunk": lambda x, chunks, dim: weighted_cat(torch.chunk(x, chunks, dim), dim),
    "tril": lambda x, diagonal: torch.tril(x, diagonal),
    "triu": lambda x, diagonal: torch.triu(x, diagonal),
    "repeat": lambda x, sizes: x.repeat(sizes),
    "repeat_interleave": lambda x, repeats, dim: torch.repeat_interleave(
        x, repeats if isinstance(repeats, int) else t(repeats), dim),
    "pad_constant": lambda x, pad, mode, value: TF.pad(x, pad, mode, value),
    "pad_reflect_replicate": lambda x, pad, mode, value: TF.pad(x, pad, mode, value),
    "unflatten": lambda x, dim, sizes: torch.unflatten(x, dim, sizes),
    "movedim": lambda x, source, destination: torch.movedim(x, source, destination),
    "einsum": lambda *xs, equation: torch.einsum(equation, *xs),
    "std": lambda x, dim, keepdim, correction: torch.std(x, dim, correction=correction,
                                                        keepdim=keepdim),
    "prod": lambda x, dim, keepdim: torch.prod(x) if dim is None else torch.prod(x, dim, keepdim),
    "logsumexp": lambda x, dim, keepdim: torch.logsumexp(x, dim, keepdim),
    "max_dim": lambda x, dim, keepdim: torch.max(x, dim, keepdim).values,
    "min_dim": lambda x, dim, keepdim: torch.min(x, dim, keepdim).values,
    # elementwise ops and losses (issue 15)
    "minimum": torch.minimum,
    "silu": TF.silu,
    "softplus": lambda x, beta, threshold: TF.softplus(x, beta, threshold),
    "erf": torch.erf,
    "rsqrt": torch.rsqrt,
    "sin": torch.sin,
    "cos": torch.cos,
    "log1p": torch.log1p,
    "expm1": torch.expm1,
    "sign": torch.sign,
    "floor": torch.floor,
    "ceil": torch.ceil,
    "round": torch.round,
    "lerp": torch.lerp,
    "lerp_scalar_weight": lambda a, b, weight: torch.lerp(a, b, weight),
    "hardtanh": lambda x, min, max: TF.hardtanh(x, min, max),
    "leaky_relu": lambda x, negative_slope: TF.leaky_relu(x, negative_slope),
    "elu": lambda x, alpha: TF.elu(x, alpha),
    "mish": TF.mish,
    "rms_norm": lambda x, w, normalized_shape, eps: TF.rms_norm(x, normalized_shape, w, eps),
    "nll_loss": lambda x, target, weight, ignore_index, reduction: TF.nll_loss(
        x, t(target), None if weight is None else t(weight), ignore_index=ignore_index,
        reduction=reduction),
    "cross_entropy_probabilities": lambda z, y, label_smoothing, reduction: TF.cross_entropy(
        z, y, reduction=reduction, label_smoothing=label_smoothing),
    "kl_div": lambda x, target, reduction, log_target: TF.kl_div(
        x, target, reduction=reduction, log_target=log_target),
    "binary_cross_entropy_with_logits_pos_weight": lambda x, y, pos_weight, reduction:
        TF.binary_cross_entropy_with_logits(x, y, reduction=reduction, pos_weight=t(pos_weight)),
    "smooth_l1_loss": lambda x, y, beta, reduction: TF.smooth_l1_loss(
        x, y, reduction=reduction, beta=beta),
    "huber_loss": lambda x, y, delta, reduction: TF.huber_loss(x, y, reduction=reduction,
                                                               delta=delta),
    # attention masks (issue 15)
    "scaled_dot_product_attention_bool_mask": masked_attention,
    "scaled_dot_product_attention_float_mask": masked_attention,
    "scaled_dot_product_attention_causal": masked_attention,
    # knowledge distillation (issue 16)
    "distillation_loss": distillation_loss,
}


def test_every_battery_case_has_a_torch_equivalent() -> None:
    assert set(TORCH) == {case.name for case in BATTERY}


def shape_and_seed(case: OpCase) -> st.SearchStrategy:
    shapes = array_shapes(min_dims=case.min_ndim, max_dims=case.max_ndim,
                          min_side=case.min_side, max_side=4)
    return st.tuples(shapes, st.integers(0, 2**32 - 1))


def assert_close(ours: np.ndarray, theirs: torch.Tensor, what: str) -> None:
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("case", BATTERY, ids=[case.name for case in BATTERY])
@given(data=st.data())
def test_forward_and_gradients_match_torch(case: OpCase, data: st.DataObject) -> None:
    shape, seed = data.draw(shape_and_seed(case), label="shape, seed")
    rng = np.random.default_rng(seed)
    arrays, params = case.build(rng, case_shape(case, shape))
    ours = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]

    out = case.fn(*ours, **params)
    expected = TORCH[case.name](*theirs, **params)
    assert_close(out.data, expected, "forward")

    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for i, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        ref_grad = ref.grad if ref.grad is not None else torch.zeros_like(ref)
        my_grad = mine.grad if mine.grad is not None else np.zeros(mine.shape)
        assert_close(my_grad, ref_grad, f"gradient of input {i}")


def test_cross_entropy_with_every_target_ignored_is_zero_where_torch_gives_nan() -> None:
    """The one documented difference: a mean over no targets is 0 with a zero gradient."""
    logits = np.random.default_rng(0).standard_normal((3, 4))
    target = np.full(3, -100)
    x = Tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target)
    loss.backward()
    assert loss.item() == 0.0
    np.testing.assert_array_equal(x.grad, np.zeros((3, 4)))
    assert torch.isnan(TF.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)))


TIES: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "max over all": (lambda x: x.max(), torch.amax),
    "amax over dim 1": (lambda x: x.amax(1), lambda x: torch.amax(x, 1)),
    "amin over dims (0, 1)": (lambda x: x.amin((0, 1)), lambda x: torch.amin(x, (0, 1))),
    "max(dim 1).values: the first of the ties": (lambda x: x.max(1).values,
                                                 lambda x: torch.max(x, 1).values),
    "min(dim 0).values: the first of the ties": (lambda x: x.min(0).values,
                                                 lambda x: torch.min(x, 0).values),
    "maximum with itself": (lambda x: maximum(x, x.relu()), lambda x: torch.maximum(x, x.relu())),
}


@pytest.mark.parametrize("name", TIES)
def test_ties_share_the_gradient_evenly_as_in_torch(name: str) -> None:
    """The battery draws tie-free values; here every reduction meets ties on purpose."""
    data = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0], [3.0, 0.0, 3.0, 3.0]])
    ours, theirs = TIES[name]
    x, tx = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, expected = ours(x), theirs(tx)
    assert_close(out.data, expected, "forward")
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    assert_close(x.grad, tx.grad, "gradient")
