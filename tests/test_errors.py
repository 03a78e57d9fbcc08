"""Bad input raises at once, and the message names the shapes, dtypes or devices involved.

No GPU is needed: a CUDA array is faked with a NumPy subclass whose class lives in a module named
``cupy...`` (that is how :mod:`minigrad.backend` tells devices apart), and the CuPy import is
replaced by a stand-in to play "CuPy missing" and "CuPy present, no GPU".
"""

import re
import sys
import types

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.nn import functional as F


def shapes_named(*shapes):
    """A regex that requires every shape, in order, somewhere in the message."""
    return ".*".join(re.escape(str(tuple(s))) for s in shapes)


# --- matmul and broadcasting -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [((2, 3), (4, 5)),        # 2-D: inner dims 3 vs 4
     ((2, 3, 4), (3, 4, 5)),  # batched: batch dims 2 vs 3 do not broadcast
     ((5, 2, 3), (5, 4, 2)),  # batched: inner dims 3 vs 4
     ((3,), (4,)),            # 1-D · 1-D of different lengths
     ((3,), (4, 5)),          # 1-D @ 2-D
     ((4, 5), (3,))],         # 2-D @ 1-D
)
def test_matmul_shape_mismatch_names_both_shapes_as_given(a, b):
    with pytest.raises(ValueError, match=r"matmul.*" + shapes_named(a, b)):
        mg.randn(*a) @ mg.randn(*b)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv"])
def test_broadcast_mismatch_in_a_binary_op_names_both_shapes(op):
    a, b = mg.randn(2, 3), mg.randn(4)
    with pytest.raises(ValueError, match=shapes_named((2, 3), (4,)) + ".*cannot be broadcast"):
        getattr(a, f"__{op}__")(b)


# --- devices ---------------------------------------------------------------------------------
class FakeCudaArray(np.ndarray):
    """A NumPy array that minigrad's backend takes for a CuPy (GPU) array."""


FakeCudaArray.__module__ = "cupy._core.core"


def fake_cuda_tensor(*shape):
    t = mg.randn(*shape)
    t.data = t.data.view(FakeCudaArray)
    assert t.device == "cuda"
    return t


@pytest.mark.parametrize(
    "combine",
    [lambda a, b: a + b, lambda a, b: b * a, lambda a, b: a @ b,
     lambda a, b: mg.cat([a, b]), lambda a, b: mg.where(a > 0, a, b)],
    ids=["add", "mul", "matmul", "cat", "where"],
)
def test_mixing_cpu_and_cuda_tensors_names_both_devices_and_shapes(combine):
    cpu, gpu = mg.randn(3, 3), fake_cuda_tensor(3, 3)
    with pytest.raises(mg.DeviceError, match=r"cpu tensor of shape \(3, 3\)") as info:
        combine(cpu, gpu)
    assert "cuda tensor of shape (3, 3)" in str(info.value)


def test_a_cuda_array_operand_beside_a_cpu_tensor_is_refused():
    cpu = mg.randn(2, 3)
    gpu_array = np.ones((2, 3), dtype=np.float32).view(FakeCudaArray)
    with pytest.raises(mg.DeviceError, match=r"cpu.*\(2, 3\).*cuda.*\(2, 3\)"):
        cpu * gpu_array


def test_a_cuda_mask_beside_a_cpu_tensor_is_refused():
    cpu = mg.randn(2, 3)
    mask = np.zeros((2, 3), dtype=bool).view(FakeCudaArray)
    with pytest.raises(mg.DeviceError, match=r"cpu.*\(2, 3\).*cuda"):
        cpu.masked_fill(mask, 0.0)


@pytest.fixture
def no_cupy(monkeypatch):
    """Play a machine without CuPy, even where it is installed."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError


@pytest.mark.parametrize(
    "make",
    [lambda: mg.tensor([1.0, 2.0], device="cuda"), lambda: mg.zeros(2, device="cuda"),
     lambda: mg.randn(2, device="cuda"), lambda: mg.randn(2).to("cuda"),
     lambda: mg.randn(2).cuda()],
    ids=["tensor", "zeros", "randn", "to", "cuda"],
)
def test_cuda_without_cupy_says_cupy_is_missing_and_how_to_install_it(no_cupy, make):
    with pytest.raises(mg.DeviceError, match=r"CuPy.*not installed.*pip install"):
        make()


def fake_cupy(device_count):
    """A stand-in CuPy module whose CUDA runtime finds no GPU."""
    def get_device_count():
        if device_count is None:
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return device_count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(__version__="13.9.9", cuda=types.SimpleNamespace(runtime=runtime))


@pytest.mark.parametrize(("count", "says"), [(None, "found no device"), (0, "0 devices")])
def test_cuda_with_cupy_but_no_gpu_says_no_device_was_found(monkeypatch, count, says):
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count))
    with pytest.raises(mg.DeviceError, match=r"needs an NVIDIA GPU.*CuPy 13\.9\.9") as info:
        mg.zeros(2, device="cuda")
    assert says in str(info.value)
    assert backend._cupy is None  # nothing half-initialized is cached


def test_unknown_device_names_it():
    with pytest.raises(mg.DeviceError, match="'tpu'"):
        mg.zeros(2, device="tpu")


# --- autograd misuse -------------------------------------------------------------------------
def test_backward_on_a_non_scalar_without_grad_names_the_shape():
    y = mg.randn(2, 3, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"single-element.*\(2, 3\)"):
        y.backward()


def test_backward_with_a_grad_of_the_wrong_shape_names_both_shapes():
    y = mg.randn(2, 3, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=shapes_named((3, 2), (2, 3))):
        y.backward(np.ones((3, 2)))


@pytest.mark.parametrize(
    "make",
    [lambda: mg.tensor([1, 2], requires_grad=True),
     lambda: mg.zeros(3, dtype=mg.int64, requires_grad=True),
     lambda: mg.arange(3).requires_grad_(),
     lambda: mg.Tensor(np.array([True, False]), requires_grad=True)],
    ids=["tensor", "zeros", "requires_grad_", "bool"],
)
def test_requires_grad_on_a_non_float_tensor_names_the_dtype(make):
    with pytest.raises(TypeError, match=r"floating-point.*dtype (int64|bool)"):
        make()


# --- shape ops -------------------------------------------------------------------------------
def test_reshape_to_an_incompatible_shape_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*6 elements.*\(4, 2\)"):
        mg.randn(2, 3).reshape(4, 2)


def test_cat_of_mismatched_shapes_names_them():
    with pytest.raises(ValueError, match=r"cat.*dim 0.*" + shapes_named((2, 3), (2, 4))):
        mg.cat([mg.randn(2, 3), mg.randn(2, 4)], dim=0)


def test_cat_of_different_ranks_names_them():
    with pytest.raises(ValueError, match=r"cat.*" + shapes_named((2, 3), (2,))):
        mg.cat([mg.randn(2, 3), mg.randn(2)])


def test_out_of_range_dim_names_dim_and_shape():
    with pytest.raises(IndexError, match=r"dim 3.*\(2, 3\)"):
        mg.randn(2, 3).sum(dim=3)


# --- layers ----------------------------------------------------------------------------------
def test_layer_norm_normalized_shape_mismatch_names_both():
    with pytest.raises(ValueError, match=r"normalized_shape \(5,\).*\(2, 4\)"):
        F.layer_norm(mg.randn(2, 4), 5)


def test_layer_norm_weight_of_the_wrong_shape_names_it():
    with pytest.raises(ValueError, match=r"weight.*\(3,\).*\(4,\)"):
        F.layer_norm(mg.randn(2, 4), 4, weight=mg.ones(3))


def test_linear_with_mismatched_in_features_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear.*\(8, 5\).*\(3, 4\)"):
        F.linear(mg.randn(8, 5), mg.randn(3, 4))


def test_linear_bias_of_the_wrong_shape_names_it():
    with pytest.raises(ValueError, match=r"bias.*\(4,\).*\(3,\)"):
        F.linear(mg.randn(8, 4), mg.randn(3, 4), mg.randn(4))


def test_embedding_id_out_of_range_names_the_id_and_the_table():
    with pytest.raises(IndexError, match=r"id 10.*10 rows.*\(10, 4\).*\(2, 2\)"):
        F.embedding(np.array([[0, 10], [3, 2]]), mg.randn(10, 4))


def test_embedding_negative_id_is_refused():
    with pytest.raises(IndexError, match=r"id -1"):
        F.embedding(np.array([-1, 2]), mg.randn(10, 4))


def test_embedding_float_ids_name_the_dtype():
    with pytest.raises(TypeError, match="float64"):
        F.embedding(np.array([0.0, 1.0]), mg.randn(10, 4))


def test_embedding_weight_must_be_a_matrix():
    with pytest.raises(ValueError, match=r"\(10,\)"):
        F.embedding(np.array([0, 1]), mg.randn(10))


# --- losses ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [4, -3])
def test_cross_entropy_target_out_of_range_names_target_classes_and_shape(bad):
    logits = mg.randn(3, 4, requires_grad=True)
    with pytest.raises(IndexError, match=rf"target {bad}\b.*4 classes.*\(3, 4\)"):
        F.cross_entropy(logits, np.array([0, bad, 1]))


def test_cross_entropy_ignore_index_is_not_out_of_range():
    loss = F.cross_entropy(mg.randn(3, 4), np.array([0, -100, 1]))
    assert np.isfinite(loss.item())


def test_cross_entropy_target_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3,\).*\(2,\)"):
        F.cross_entropy(mg.randn(3, 4), np.array([0, 1]))


def test_cross_entropy_float_targets_name_the_dtype():
    with pytest.raises(TypeError, match="float"):
        F.cross_entropy(mg.randn(3, 4), np.array([0.0, 1.0, 2.0]))


def test_mse_loss_with_mismatched_shapes_refuses_to_broadcast():
    # (3, 1) against (3,) would silently broadcast to (3, 3) and average the wrong 9 numbers.
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\).*broadcast"):
        F.mse_loss(mg.randn(3, 1), np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_binary_cross_entropy_outside_0_1_names_the_range_and_shape(bad):
    p = mg.tensor([[0.2, bad], [0.5, 0.9]])
    with pytest.raises(ValueError, match=r"\(2, 2\).*\[0, 1\].*with_logits"):
        F.binary_cross_entropy(p, np.ones((2, 2), dtype=np.float32))


def test_a_loss_reduction_name_is_checked():
    with pytest.raises(ValueError, match="'avg'"):
        F.mse_loss(mg.randn(3), mg.randn(3), reduction="avg")
