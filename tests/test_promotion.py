"""PyTorch's type promotion, checked against torch over a grid of (tensor dtype, operand kind).

For each of ``+ - * / **`` and the comparisons, a tensor of every dtype meets, on both sides,
every kind of operand: Python and NumPy numbers, 0-d tensors and tensors with dims of every
dtype. minigrad must give torch's dtype and values, or raise where torch raises. The README's
dtype table is the summary of this grid. Also: integer and bool results never join the graph.
"""

import operator

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad.ops.common import promote_types, result_type

DTYPES = ["bool", "uint8", "int32", "int64", "float16", "float32", "float64"]
TORCH_DTYPE = {"bool": torch.bool, "uint8": torch.uint8, "int32": torch.int32,
               "int64": torch.int64, "float16": torch.float16, "float32": torch.float32,
               "float64": torch.float64}
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
       "**": operator.pow, "<": operator.lt, "==": operator.eq, ">=": operator.ge}
NUMBERS = {"python bool": True, "python int": 3, "python float": 2.5, "np.int64": np.int64(3),
           "np.int32": np.int32(2), "np.float64": np.float64(2.5), "np.float32": np.float32(1.5)}
# (not np.bool_: torch reads it as a float, 2 + np.bool_(True) being float32; minigrad reads it
# as a Python bool)


def values(dtype: str, ndim: int) -> np.ndarray:
    a = np.array([1, 2, 3]) if ndim else np.array(2)
    return (a % 2 == 1) if dtype == "bool" else a.astype(dtype)


def operands(dtype: str) -> dict[str, tuple]:
    """Every kind of right-hand operand: (minigrad's, torch's)."""
    kinds: dict[str, tuple] = {name: (v, v) for name, v in NUMBERS.items()}
    for other in DTYPES:
        for ndim, label in ((0, "0-d"), (1, "1-d")):
            a = values(other, ndim)
            kinds[f"{label} {other} tensor"] = (mg.tensor(a), torch.tensor(a))
    return kinds


# Where minigrad raises although torch computes (never the other way round):
# ``bool_tensor ** True`` is bool in torch, which refuses every other bool ** bool.
REFUSED_ONLY_HERE = {("bool", "tensor OP b", "python bool", "**")}


def run(f, *args):
    try:
        return f(*args), None
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        return None, exc


CASES = [(dtype, op, kind) for dtype in DTYPES for op in OPS for kind in operands(dtype)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_every_operand_kind_gives_torchs_dtype_and_values(dtype: str, op: str) -> None:
    f = OPS[op]
    a = values(dtype, 1)
    mine, theirs = mg.tensor(a), torch.tensor(a)
    failures = []
    for kind, (ours_b, torch_b) in operands(dtype).items():
        for side, (x, y, tx, ty) in (("tensor OP b", (mine, ours_b, theirs, torch_b)),
                                     ("b OP tensor", (ours_b, mine, torch_b, theirs))):
            if not isinstance(x, mg.Tensor) and not isinstance(y, mg.Tensor):
                continue
            expected, torch_error = run(f, tx, ty)
            got, error = run(f, x, y)
            what = f"{dtype} {side} ({kind}), op {op}"
            if (dtype, side, kind, op) in REFUSED_ONLY_HERE:
                assert error is not None and torch_error is None, what
                continue
            if torch_error is not None:
                if error is None:
                    failures.append(f"{what}: torch raises ({torch_error}), minigrad gives "
                                    f"{got.dtype}")
                continue
            if error is not None:
                failures.append(f"{what}: minigrad raises {error!r}, torch gives "
                                f"{expected.dtype}")
                continue
            if str(expected.dtype) != f"torch.{got.dtype}":
                failures.append(f"{what}: minigrad {got.dtype}, torch {expected.dtype}")
                continue
            want = expected.double().numpy() if expected.dtype != torch.bool else expected.numpy()
            np.testing.assert_allclose(got.data.astype(want.dtype), want, rtol=1e-3,
                                       err_msg=what)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("b", DTYPES)
def test_promote_types_is_torchs(a: str, b: str) -> None:
    ours = promote_types(np.dtype(a), np.dtype(b))
    assert f"torch.{ours}" == str(torch.promote_types(TORCH_DTYPE[a], TORCH_DTYPE[b]))


def test_the_bert_mask_idiom_stays_float32() -> None:
    """``(1.0 - int_mask) * -10000.0``: the extended attention mask of HF's BERT."""
    mask = mg.tensor([[1, 1, 0]])
    extended = (1.0 - mask) * -10000.0
    assert extended.dtype == np.float32
    scores = mg.randn(1, 3) + extended
    assert scores.dtype == np.float32


@pytest.mark.parametrize("expression, dtype", [
    ("mg.arange(3) * 0.5", "float32"), ("mg.tensor([5, 6, 7]) / 2", "float32"),
    ("mg.randn(2) ** np.float64(2)", "float32"), ("mg.randn(2) * np.float64(2)", "float32"),
    ("mg.full((2,), 4)", "int64"), ("mg.full((2,), True)", "bool"),
    ("mg.full((2,), 4.0)", "float32"), ("mg.arange(3) + mg.randn(3)", "float32"),
    ("mg.tensor([1, 2], dtype=mg.int32) * mg.tensor(2.0, dtype=mg.float64)", "float64"),
    ("mg.randn(2) + mg.tensor(2.0, dtype=mg.float64)", "float32"),
])
def test_the_issue_examples(expression: str, dtype: str) -> None:
    assert eval(expression).dtype == np.dtype(dtype)
    torch_expression = expression.replace("mg.", "torch.").replace("torch.randn(2)",
                                                                   "torch.randn(2)")
    assert str(eval(torch_expression).dtype) == f"torch.{dtype}"


def test_result_type_ranks_dims_then_0d_then_numbers() -> None:
    f32, f64, i64 = (np.dtype(t) for t in ("float32", "float64", "int64"))
    assert result_type(mg.zeros(2), mg.zeros((), dtype=mg.float64)) == f32
    assert result_type(mg.zeros(2, dtype=mg.int64), mg.zeros((), dtype=mg.float64)) == f64
    assert result_type(mg.zeros(2, dtype=mg.int64), 2.5) == f32
    assert result_type(mg.zeros((), dtype=mg.int32), 7) == np.dtype("int32")
    assert result_type(mg.zeros(2, dtype=mg.bool_), 7) == i64


# --- only floating-point outputs can require grad ----------------------------------------------
def test_casting_to_int_cuts_the_graph() -> None:
    x = mg.tensor([1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad and x.long().grad_fn is None
    y = (x.long().float() * 3).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()  # torch too: the true derivative through a rounding is 0, not 3
    tx = torch.tensor([1.5, 2.5], requires_grad=True)
    with pytest.raises(RuntimeError):
        (tx.long().float() * 3).sum().backward()


@pytest.mark.parametrize("make", [
    lambda x: x > 0, lambda x: x.argmax(), lambda x: x.long() + 1,
    lambda x: x.to("int32") * 2, lambda x: x.to("bool"),
])
def test_no_integer_or_bool_output_joins_the_graph(make) -> None:
    out = make(mg.tensor([1.0, -2.0], requires_grad=True))
    assert out.dtype.kind in "biu" and not out.requires_grad and out.grad_fn is None
