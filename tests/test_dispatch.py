"""The kernel registry and the backend switch: the "numba" backend computes what "numpy" does.

Each op that has a fused kernel runs twice on the same inputs, once per backend; its output and
the gradient of every input must agree (float32 and float64, shapes drawn by hypothesis), and a
spy on the kernel registry checks that the numba run called the registry's kernels, forward and
backward. Then a whole tiny BERT (loss, every parameter gradient, an AdamW step) agrees across
the backends, in train mode with dropout too; the optimizers' fused updates agree with their
NumPy code; the registry's table covers each fused op for ("cpu", "numba") and ("cuda",
"cuda"), and an op without an entry runs its reference; and set_backend, get_backend and
MINIGRAD_BACKEND behave as documented.

Run it twice, as tests/test_kernels_cpu.py: as is, and with ``NUMBA_DISABLE_JIT=1`` (the
kernels as plain Python loops; the shapes stay small enough for that).
"""

import ast
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from minigrad.kernels import registry
from minigrad.kernels.registry import Kernel

import minigrad
import minigrad.nn.functional as F
from minigrad import backend, optim
from minigrad.models import BertConfig, BertForMaskedLM, BertForSequenceClassification

DTYPES = [np.float32, np.float64]
# float32: the kernels' vectorized exp/erf are within a few ulp of NumPy's, and sums run in
# another order; float64: the same algorithms agree to rounding.
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-9, "atol": 1e-12}}

sides = st.integers(1, 6)
seeds = st.integers(0, 2**32 - 1)


@pytest.fixture(autouse=True, scope="module")
def restore_backend() -> Iterator[None]:
    previous = minigrad.get_backend()
    yield
    minigrad.set_backend(previous)


@contextlib.contextmanager
def kernel_calls() -> Iterator[list[str]]:
    """The registry's implementations called inside the block, in order: "softmax forward",
    "softmax backward", "adamw_step"..."""
    calls: list[str] = []
    original = registry.kernel

    def spy(name: str, fn: Callable) -> Callable:
        def called(*args, **kwargs):
            calls.append(name)
            return fn(*args, **kwargs)
        return called

    def spying(op: str, *arrays: np.ndarray) -> object:
        found = original(op, *arrays)
        if isinstance(found, Kernel):
            return Kernel(spy(f"{op} forward", found.forward),
                          spy(f"{op} backward", found.backward))
        return None if found is None else spy(op, found)

    registry.kernel = spying
    try:
        yield calls
    finally:
        registry.kernel = original


def run(name: str, fn: Callable, arrays: list[np.ndarray], dtype: type, seed: int
        ) -> tuple[np.ndarray, list[np.ndarray]]:
    """fn's output and the gradient of each input under backend ``name``, for a fixed random
    upstream gradient (and a fixed seed for anything random inside fn, such as dropout)."""
    minigrad.set_backend(name)
    tensors = [minigrad.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    minigrad.manual_seed(seed)
    out = fn(*tensors)
    out.backward(np.random.default_rng(seed).standard_normal(out.shape))
    return out.data, [t.grad for t in tensors]


def assert_backends_agree(fn: Callable, arrays: list[np.ndarray], dtype: type, seed: int,
                          kernels: set[str]) -> None:
    """Both backends give fn's output and input gradients; numba through ``kernels``."""
    with kernel_calls() as calls:
        expected, expected_grads = run("numpy", fn, arrays, dtype, seed)
    assert not calls, f"the numpy backend called kernels {calls}"
    with kernel_calls() as calls:
        out, grads = run("numba", fn, arrays, dtype, seed)
    assert set(calls) == kernels, f"expected the kernels {sorted(kernels)}, called {calls}"
    assert out.dtype == expected.dtype == dtype
    np.testing.assert_allclose(out, expected, err_msg="forward", **TOL[dtype])
    for i, (g, e) in enumerate(zip(grads, expected_grads, strict=True)):
        assert g.dtype == dtype and g.shape == arrays[i].shape
        np.testing.assert_allclose(g, e, err_msg=f"gradient of input {i}", **TOL[dtype])


# --- each op with a kernel ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=st.lists(sides, min_size=1, max_size=4), seed=seeds)
def test_softmax(dtype, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    assert_backends_agree(lambda x: F.softmax(x, dim=-1), [x], dtype, seed,
                          {"softmax forward", "softmax backward"})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@given(shape=st.lists(sides, min_size=0, max_size=4), seed=seeds)
def test_gelu(dtype, approximate, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3  # 0-d too
    assert_backends_agree(lambda x: F.gelu(x, approximate), [x], dtype, seed,
                          {"gelu forward", "gelu backward"})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@given(rows=st.lists(sides, min_size=1, max_size=2), n_in=sides, n_out=sides, seed=seeds)
def test_linear_gelu(dtype, approximate, rows, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*rows, n_in))
    w, b = rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    assert_backends_agree(lambda x, w, b: F.linear_gelu(x, w, b, approximate), [x, w, b],
                          dtype, seed, {"bias_gelu forward", "bias_gelu backward"})


@pytest.mark.parametrize("dtype", DTYPES)
@given(rows=st.lists(sides, min_size=0, max_size=2), h=st.integers(2, 9), seed=seeds)
def test_layer_norm(dtype, rows, h, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((*rows, h)) * 2 + 1, rng.standard_normal(h),
              rng.standard_normal(h)]
    assert_backends_agree(lambda x, w, b: F.layer_norm(x, h, w, b, eps=1e-5), arrays, dtype,
                          seed, {"layer_norm forward", "layer_norm backward"})


@pytest.mark.parametrize("dtype", DTYPES)
@given(b=st.integers(1, 3), a=st.integers(1, 3), s=sides, d=sides, masked=st.booleans(),
       dropout=st.sampled_from([0.0, 0.3]), seed=seeds)
def test_scaled_dot_product_attention(dtype, b, a, s, d, masked, dropout, seed):
    """Self-attention shapes, with and without a key padding mask (including a sequence that is
    all padding) and dropout (the same seed draws the same dropout mask on both backends)."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((b, a, s, d)) for _ in range(3))
    padding = rng.random((b, s)) < 0.4 if masked else None
    if masked:
        padding[0] = True

    def attention(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout,
                                              key_padding_mask=padding)

    assert_backends_agree(attention, [q, k, v], dtype, seed,
                          {"attention forward", "attention backward"})


def test_attention_under_no_grad_keeps_no_probabilities_and_gives_the_same_output(monkeypatch):
    """Inference (no_grad) asks the kernel not to store P (B, A, S, S): nothing will read it."""
    import minigrad.kernels.cpu.attention as kernel

    rng = np.random.default_rng(3)
    q, k, v = (minigrad.tensor(rng.standard_normal((2, 3, 7, 4)), requires_grad=True)
               for _ in range(3))
    padding = rng.random((2, 7)) < 0.3
    minigrad.set_backend("numba")
    training = F.scaled_dot_product_attention(q, k, v, key_padding_mask=padding)
    original = kernel.attention_forward
    asked: list[bool] = []

    def spy(*args, **kwargs):
        asked.append(kwargs["keep_probs"])
        return original(*args, **kwargs)

    monkeypatch.setattr(kernel, "attention_forward", spy)
    with minigrad.no_grad():
        inference = F.scaled_dot_product_attention(q, k, v, key_padding_mask=padding)
    assert asked == [False] and not inference.requires_grad
    np.testing.assert_array_equal(inference.data, training.data)


@pytest.mark.parametrize("dtype", DTYPES)
@given(m=sides, c=sides, smoothing=st.sampled_from([0.0, 0.1]), seed=seeds)
def test_cross_entropy(dtype, m, c, smoothing, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((m, c)) * 3
    target = rng.integers(0, c, m)
    target[rng.random(m) < 0.3] = -100

    def loss(z):
        return F.cross_entropy(z, target, label_smoothing=smoothing, reduction="none")

    assert_backends_agree(loss, [logits], dtype, seed,
                          {"cross_entropy forward", "cross_entropy backward"})


def test_cases_the_kernels_do_not_take_run_the_composite():
    """softmax over another dim, LayerNorm over two dims, without affine parameters or with
    mixed dtypes, and cross-attention shapes: the numba backend computes them as numpy does."""
    minigrad.set_backend("numba")
    rng = np.random.default_rng(0)
    x = minigrad.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    with kernel_calls() as calls:
        outputs = [
            F.softmax(x, dim=1),
            F.layer_norm(x, (3, 4), w, w),
            F.layer_norm(x, 4),
            F.layer_norm(x, 4, w[0].float(), w[1].float()),  # float64 x, float32 w and b
            F.scaled_dot_product_attention(x[None], x[None, :, :2], x[None, :, :2, :3]),
        ]
        for out in outputs:
            out.sum().backward()
    assert calls == []


def test_backward_follows_the_backend_its_forward_chose():
    """LayerNorm saves other arrays for its kernel; switching the backend between forward and
    backward must not mix the two."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(3, 5), 5, 5]]
    g = rng.standard_normal((3, 5))
    grads = {}
    for forward in ("numba", "numpy"):
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in arrays)
        with kernel_calls() as calls:
            minigrad.set_backend(forward)
            y = F.layer_norm(x, 5, w, b)
            minigrad.set_backend("numpy")
            y.backward(g)
        grads[forward] = [x.grad, w.grad, b.grad]
        assert calls == (["layer_norm forward", "layer_norm backward"] if forward == "numba"
                         else [])
    for fused, composite in zip(grads["numba"], grads["numpy"], strict=True):
        np.testing.assert_allclose(fused, composite, **TOL[np.float64])


# --- the optimizers' fused updates ----------------------------------------------------------
OPTIMIZERS = {
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.1),
    "Adam with L2": lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
    "SGD": lambda ps: optim.SGD(ps, lr=0.1),
    "SGD momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1,
                                         weight_decay=0.01),
    "SGD Nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
}


def optimizer_run(name: str, make: Callable, dtype: type) -> list[np.ndarray]:
    """Parameters after three steps on fixed gradients, under backend ``name``."""
    minigrad.set_backend(name)
    rng = np.random.default_rng(0)
    params = [minigrad.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
              for s in [(40, 1000), (7,), ()]]  # one above the kernels' parallel threshold
    opt = make(params)
    for _ in range(3):
        for p in params:
            p.grad = rng.standard_normal(p.shape).astype(dtype)
        opt.step()
    return [p.data for p in params]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fused_optimizer_updates_match_the_numpy_code(name, dtype):
    with kernel_calls() as calls:
        expected = optimizer_run("numpy", OPTIMIZERS[name], dtype)
    assert not calls
    with kernel_calls() as calls:
        updated = optimizer_run("numba", OPTIMIZERS[name], dtype)
    assert set(calls) == {{"AdamW": "adamw_step", "Adam with L2": "adam_step"}.get(name,
                                                                                "sgd_step")}
    for p, e in zip(updated, expected, strict=True):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, e, **TOL[dtype])


# --- a whole BERT ----------------------------------------------------------------------------
CONFIG = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=24, max_position_embeddings=10, num_labels=3)
INPUT_IDS = np.array([[2, 11, 7, 19, 33, 5, 3], [2, 45, 8, 3, 0, 0, 0], [2, 14, 3, 27, 9, 0, 0]])
ATTENTION_MASK = (INPUT_IDS != 0).astype(np.int64)


def bert_step(name: str, head: type, dtype: type, train: bool
              ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(loss, gradients, parameters after one AdamW step) of a fresh seeded model."""
    minigrad.set_backend(name)
    minigrad.manual_seed(0)
    model = head(CONFIG).to(np.dtype(dtype).name).train(train)
    labels = (np.array([0, 2, 1]) if head is BertForSequenceClassification
              else np.where(np.random.default_rng(0).random(INPUT_IDS.shape) < 0.3, INPUT_IDS,
                            -100))
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(INPUT_IDS, ATTENTION_MASK, labels=labels).loss
    loss.backward()
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    opt.step()
    return loss.item(), grads, {n: p.data for n, p in model.named_parameters()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head", [BertForSequenceClassification, BertForMaskedLM])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train with dropout"])
def test_bert_loss_gradients_and_update_agree_across_backends(dtype, head, train):
    with kernel_calls() as calls:
        loss, grads, params = bert_step("numpy", head, dtype, train)
    assert not calls
    with kernel_calls() as calls:
        fused_loss, fused_grads, fused_params = bert_step("numba", head, dtype, train)
    assert {"attention forward", "bias_gelu backward", "layer_norm backward", "adamw_step",
            "cross_entropy forward"} <= set(calls)
    tol = TOL[dtype]
    assert fused_loss == pytest.approx(loss, rel=tol["rtol"])
    assert fused_grads.keys() == grads.keys()
    for name in grads:
        scale = max(1.0, float(np.abs(grads[name]).max()))
        np.testing.assert_allclose(fused_grads[name], grads[name], rtol=tol["rtol"],
                                   atol=tol["atol"] * scale, err_msg=name)
        np.testing.assert_allclose(fused_params[name], params[name], err_msg=name, **tol)


# --- the switch itself -----------------------------------------------------------------------
def test_set_backend_and_get_backend():
    for name in ("numpy", "numba", "numpy"):
        minigrad.set_backend(name)
        assert minigrad.get_backend() == name == backend.get_backend("cpu")


def test_a_gpu_backend_sets_the_gpu_choice_and_leaves_the_cpu_one():
    gpu_before = minigrad.get_backend("cuda")
    try:
        minigrad.set_backend("numba")
        for name in ("cupy", "cuda", "cupy"):
            minigrad.set_backend(name)
            assert minigrad.get_backend("cuda") == name
            assert minigrad.get_backend("cuda:0") == name
            assert minigrad.get_backend() == "numba"
        minigrad.set_backend("numpy")
        assert minigrad.get_backend("cuda") == "cupy"
    finally:
        minigrad.set_backend(gpu_before)


def test_a_gpu_backend_gives_numpy_arrays_no_gpu_kernel():
    gpu_before, cpu_before = minigrad.get_backend("cuda"), minigrad.get_backend()
    try:
        minigrad.set_backend("cuda")
        minigrad.set_backend("numpy")
        assert registry.kernel("softmax", np.ones(3, np.float32)) is None  # the CPU's choice
        assert registry.kernel("softmax") is None and registry.kernel("softmax", None) is None
    finally:
        minigrad.set_backend(gpu_before)
        minigrad.set_backend(cpu_before)


def test_an_unknown_backend_is_refused_naming_the_choices():
    before = minigrad.get_backend()
    with pytest.raises(ValueError, match=r"unknown kernel backend 'torch'; expected one of "
                                         r"'numpy', 'numba', 'cupy', 'cuda'"):
        minigrad.set_backend("torch")
    assert minigrad.get_backend() == before


def test_the_registry_gives_kernels_float32_or_float64_arrays_of_one_dtype():
    minigrad.set_backend("numba")
    f32, f64 = np.ones(3, np.float32), np.ones(3)
    assert registry.kernel("softmax", f32) is registry.lookup("softmax", "cpu", "numba")
    assert registry.kernel("layer_norm", f64, None, f64) is not None  # None entries skipped
    assert registry.kernel("softmax", f32, f64) is None  # mixed dtypes
    assert registry.kernel("softmax", np.ones(3, np.float16)) is None
    assert registry.kernel("softmax", np.ones(3, np.int64)) is None
    assert registry.kernel("softmax", [1.0, 2.0]) is None  # not an ndarray
    assert registry.kernel("softmax", np.float64(1.0)) is None  # a NumPy scalar
    minigrad.set_backend("numpy")
    assert registry.kernel("softmax", f32) is None


# --- the registry's table ----------------------------------------------------------------------
FUSED_OPS = {
    ("cpu", "numba"): {"softmax", "layer_norm", "gelu", "bias_gelu", "attention", "cross_entropy",
                       "adam_step", "adamw_step", "sgd_step", "int8_matmul"},
    ("cuda", "cuda"): {"softmax", "layer_norm", "attention", "adamw_step", "check"},
    ("cuda", "cupy"): {"adamw_step", "check"},  # the composites, but AdamW in one CuPy kernel
}


def defined_names(module: str) -> set[str]:
    """The top-level names a kernel module defines, read from its source: importing
    minigrad.kernels.cuda here would start numba.cuda without the simulator that
    tests/test_kernels_cuda.py needs, and the CUDA modules import CuPy."""
    path = Path(registry.__file__).parent.joinpath(*module.split(".")[2:]).with_suffix(".py")
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_the_registry_covers_each_fused_op_for_numba_and_cuda():
    """Every (device, backend) but "numpy" has its ops; each entry names a function or Kernel
    that its module defines; the Numba entries are minigrad.kernels.cpu's kernels."""
    covered = {pair: {op for op, *key in registry.TABLE if tuple(key) == pair}
               for pair in FUSED_OPS}
    assert covered == FUSED_OPS
    assert {(device, name) for _, device, name in registry.TABLE} == set(FUSED_OPS)
    for where in registry.TABLE.values():
        module, attribute = where.split(":")
        assert attribute in defined_names(module), where
    for op in FUSED_OPS["cpu", "numba"]:
        found = registry.lookup(op, "cpu", "numba")
        functions = found if isinstance(found, Kernel) else [found]
        for fn in functions:
            fn = getattr(fn, "func", fn)  # (Adam with L2 is adam_step, decoupled=False)
            assert fn.__module__.startswith("minigrad.kernels.cpu."), (op, fn)


def test_an_op_without_a_registry_entry_runs_its_reference(monkeypatch):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal(5)
    expected, expected_grads = run("numpy", lambda x: F.softmax(x, dim=-1), [x], np.float64, 0)
    monkeypatch.delitem(registry.TABLE, ("softmax", "cpu", "numba"))
    with kernel_calls() as calls:
        out, grads = run("numba", lambda x: F.softmax(x, dim=-1), [x], np.float64, 0)
        F.layer_norm(minigrad.tensor(x), 5, minigrad.tensor(w), minigrad.tensor(b))
    assert calls == ["layer_norm forward"]  # an op that still has its entry calls it
    np.testing.assert_array_equal(out, expected)  # the same reference, bit for bit
    np.testing.assert_array_equal(grads[0], expected_grads[0])
    assert registry.lookup("softmax", "cpu", "numba") is None
    assert registry.lookup("cross_entropy", "cuda", "cuda") is None  # no CUDA kernel
    assert registry.lookup("softmax", "cpu", "numpy") is None  # the reference backend


def test_the_numba_backend_checks_inputs_at_once():
    """"check" has no CPU entry: the reference reads the flag at the call."""
    minigrad.set_backend("numba")
    assert registry.lookup("check", "cpu") is None
    with pytest.raises(IndexError, match="target 7 is out of range for 3 classes"):
        F.cross_entropy(minigrad.tensor(np.zeros((2, 3))), np.array([0, 7]))


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with the given environment variables set or, where
    the value is empty, removed."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MINIGRAD_BACKEND", "NUMBA_DISABLE_JIT")}
    environ.update({k: v for k, v in env.items() if v})
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          text=True, timeout=120)


def test_the_environment_variable_sets_the_backend_and_the_defaults_are_numba_and_cupy():
    code = "import minigrad; print(minigrad.get_backend(), minigrad.get_backend('cuda'))"
    assert python(code, MINIGRAD_BACKEND="numpy").stdout.split() == ["numpy", "cupy"]
    assert python(code, MINIGRAD_BACKEND="numba").stdout.split() == ["numba", "cupy"]
    assert python(code, MINIGRAD_BACKEND="cuda").stdout.split() == ["numba", "cuda"]
    assert python(code, MINIGRAD_BACKEND="numpy,cuda").stdout.split() == ["numpy", "cuda"]
    assert python(code).stdout.split() == ["numba", "cupy"]
    # with the JIT off the kernels are Python loops: the default falls back to numpy
    assert python(code, NUMBA_DISABLE_JIT="1").stdout.split() == ["numpy", "cupy"]


def test_an_unknown_environment_value_fails_at_import_naming_the_variable():
    result = python("import minigrad", MINIGRAD_BACKEND="numba,torch")
    assert result.returncode != 0
    assert ("MINIGRAD_BACKEND: unknown kernel backend 'torch'; expected one of 'numpy', "
            "'numba', 'cupy', 'cuda'" in result.stderr)


def test_import_minigrad_does_not_import_numba_until_a_kernel_runs():
    code = ("import sys, numpy as np, minigrad\n"
            "print('numba' in sys.modules)\n"
            "minigrad.nn.functional.softmax(minigrad.tensor(np.ones((2, 3))))\n"
            "print('numba' in sys.modules)")
    assert python(code, MINIGRAD_BACKEND="numba").stdout.split() == ["False", "True"]


def test_a_source_tree_that_was_not_installed_finds_its_kernels():
    """``PYTHONPATH=.`` in a copied checkout (how the GPU benchmarks run): no installed package
    maps minigrad.kernels, and ``import minigrad`` loads kernels/ from beside the package."""
    root = Path(__file__).resolve().parents[1]
    code = ("import sys\n"
            "sys.meta_path = [f for f in sys.meta_path\n"
            "                 if '__editable__' not in getattr(f, '__module__', '')]\n"
            f"sys.path.insert(0, {str(root)!r})\n"
            "import numpy as np, minigrad\n"
            "minigrad.nn.functional.softmax(minigrad.tensor(np.ones((2, 3))))\n"
            "print(sys.modules['minigrad.kernels.cpu.engine'].__file__)")
    run = python(code, MINIGRAD_BACKEND="numba")
    assert run.stdout.strip() == str(root / "kernels" / "cpu" / "engine.py"), run.stderr

