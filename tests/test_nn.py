"""``minigrad.nn``: how a Module registers, names, saves and loads its parameters, and each layer
against its ``torch.nn`` twin holding the same weights (forward and backward, float64)."""

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


class Block(nn.Module):
    """A small module with a nested submodule, a list of layers and a plain attribute."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter([1.0, 2.0])
        self.proj = nn.Linear(2, 3)
        self.layers = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 1, bias=False)])
        self.note = "not a parameter"

    def forward(self, x):
        x = self.proj(x * self.scale)
        for layer in self.layers:
            x = layer(x)
        return x


class Tied(nn.Module):
    """Two Linear layers sharing one weight, as a masked-LM decoder shares the embeddings."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


BLOCK_NAMES = ["scale", "proj.weight", "proj.bias", "layers.0.weight", "layers.0.bias",
               "layers.1.weight"]


# --- Parameter -------------------------------------------------------------------------------
def test_parameter_is_a_float32_leaf_that_requires_grad():
    p = nn.Parameter([1.0, 2.0])
    assert isinstance(p, mg.Tensor)
    assert p.requires_grad and p.is_leaf and p.dtype == mg.float32
    assert not nn.Parameter([1.0], requires_grad=False).requires_grad
    assert nn.Parameter(np.zeros(2)).dtype == mg.float64  # arrays keep their dtype
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")


def test_parameter_made_from_a_tensor_shares_its_array_and_ops_make_plain_tensors():
    t = mg.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert p.data is t.data
    assert type(p * 2) is mg.Tensor


def test_integer_parameter_is_refused():
    with pytest.raises(TypeError, match=r"floating-point.*int64"):
        nn.Parameter([1, 2])


# --- registration ----------------------------------------------------------------------------
def test_parameters_and_submodules_are_registered_in_assignment_order_with_dotted_names():
    m = Block()
    assert [name for name, _ in m.named_parameters()] == BLOCK_NAMES
    assert list(m.parameters()) == [p for _, p in m.named_parameters()]
    assert [name for name, _ in m.named_children()] == ["proj", "layers"]
    assert list(m.children()) == [m.proj, m.layers]
    assert [name for name, _ in m.named_modules()] == ["", "proj", "layers", "layers.0",
                                                       "layers.1"]
    assert next(m.modules()) is m
    assert m.note == "not a parameter"
    assert m.num_parameters() == 2 + (6 + 3) + (9 + 3) + 3


def test_reassigning_a_parameter_keeps_its_place_and_none_keeps_the_slot_empty():
    m = Block()
    new = nn.Parameter(np.ones((3, 2), dtype=np.float32))
    m.proj.weight = new
    assert m.proj.weight is new
    assert [name for name, _ in m.named_parameters()] == BLOCK_NAMES
    m.proj.bias = None
    assert m.proj.bias is None
    assert "proj.bias" not in dict(m.named_parameters())


def test_assigning_a_plain_tensor_to_a_parameter_slot_is_refused():
    m = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="parameter 'weight' of Linear: expected a Parameter"):
        m.weight = mg.zeros(3, 2)


def test_assigning_a_layer_before_module_init_says_to_call_super_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Forgetful()


def test_missing_attribute_error_names_the_module_class_and_delattr_unregisters():
    m = Block()
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'nope'"):
        _ = m.nope
    del m.proj
    assert "proj.weight" not in dict(m.named_parameters())
    with pytest.raises(AttributeError):
        _ = m.proj


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="ModuleList does not define forward"):
        nn.ModuleList()(mg.zeros(1))


def test_tied_parameter_is_yielded_once_under_its_first_name_but_saved_under_both():
    m = Tied()
    assert [name for name, _ in m.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    assert list(m.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert m.state_dict()["b.weight"] is m.state_dict()["a.weight"]
    assert m.num_parameters() == 9 + 3 + 3


def test_tied_weight_gradient_is_the_sum_of_both_uses_as_in_torch():
    m = Tied().double()
    ref = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)).double()
    with torch.no_grad():
        ref[0].weight.copy_(torch.from_numpy(m.a.weight.data))
        ref[0].bias.copy_(torch.from_numpy(m.a.bias.data))
        ref[1].bias.copy_(torch.from_numpy(m.b.bias.data))
    ref[1].weight = ref[0].weight
    x = np.random.default_rng(0).standard_normal((4, 3))
    m(mg.tensor(x)).sum().backward()
    ref(torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(m.a.weight.grad, ref[0].weight.grad.numpy(), rtol=1e-12)


def test_repr_is_the_pytorch_module_tree():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2, bias=False), nn.Tanh())
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 2, bias=False), torch.nn.Tanh())
    assert repr(m) == repr(ref)
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.LayerNorm(8)) == "LayerNorm((8,), eps=1e-05)"


def test_apply_visits_every_submodule_then_the_module():
    m = Block()
    visited = []
    assert m.apply(lambda module: visited.append(type(module).__name__)) is m
    assert visited == ["Linear", "Linear", "Linear", "ModuleList", "Block"]


# --- state_dict and load_state_dict ----------------------------------------------------------
def test_state_dict_holds_the_parameters_own_arrays_in_registration_order():
    m = Block()
    state = m.state_dict()
    assert list(state) == BLOCK_NAMES
    assert state["proj.weight"] is m.proj.weight.data


def test_state_dict_round_trip_gives_an_identical_model():
    mg.manual_seed(0)
    a = Block()
    mg.manual_seed(1)
    b = Block()
    x = mg.randn(5, 2)
    assert not np.allclose(a(x).data, b(x).data)
    result = b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    assert result == nn.LoadResult([], [])
    for (name, p), (name_b, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert name == name_b
        np.testing.assert_array_equal(p.data, q.data)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_copies_in_place_so_parameter_objects_survive():
    m = nn.Linear(2, 2)
    weight, array = m.weight, m.weight.data
    m.load_state_dict({"weight": mg.ones(2, 2), "bias": np.zeros(2, dtype=np.float32)})
    assert m.weight is weight and m.weight.data is array
    np.testing.assert_array_equal(array, np.ones((2, 2)))


def test_load_names_every_missing_and_unexpected_key_and_changes_nothing():
    m = Block()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    state = {k: np.zeros_like(v) for k, v in m.state_dict().items()}
    del state["proj.bias"], state["layers.1.weight"]
    state["extra.weight"] = np.zeros(1, dtype=np.float32)
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(state)
    message = str(info.value)
    assert 'Missing key(s) in state_dict: "proj.bias", "layers.1.weight"' in message
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in message
    assert "for Block" in message
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_names_a_shape_mismatch_with_both_shapes_even_when_not_strict():
    m = Block()
    state = m.state_dict() | {"proj.weight": np.zeros((2, 3), dtype=np.float32)}
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for proj.weight: copying a param "
                                               r"with shape \(2, 3\) from checkpoint, the shape "
                                               r"in current model is \(3, 2\)"):
            m.load_state_dict(state, strict=strict)


def test_load_refuses_a_dtype_mismatch_naming_both_dtypes():
    m = nn.Linear(2, 3)
    state = {"weight": np.zeros((3, 2)), "bias": np.zeros(3, dtype=np.float32)}
    with pytest.raises(RuntimeError, match="dtype mismatch for weight: the checkpoint holds "
                                           "float64 of shape \\(3, 2\\), the model float32"):
        m.load_state_dict(state)


def test_non_strict_load_reports_what_it_skipped_and_loads_the_rest():
    m = nn.Linear(2, 3)
    result = m.load_state_dict({"weight": np.ones((3, 2), dtype=np.float32), "other": [1.0]},
                               strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    np.testing.assert_array_equal(m.weight.data, np.ones((3, 2)))


def test_a_tied_parameter_loads_from_either_name_but_not_from_two_different_values():
    m = Tied()
    state = {k: np.full_like(v, 0.5) for k, v in m.state_dict().items()}
    del state["b.weight"]
    m.load_state_dict(state)
    np.testing.assert_array_equal(m.b.weight.data, np.full((3, 3), 0.5))
    state["b.weight"] = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"tied parameters a\.weight and b\.weight"):
        m.load_state_dict(state)


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(TypeError, match="mapping"):
        nn.Linear(1, 1).load_state_dict([("weight", np.zeros((1, 1)))])


def test_a_buffer_is_state_without_gradient_saved_loaded_and_converted_as_in_torch():
    m = Block()
    m.proj.register_buffer("weight_mask", np.ones((3, 2), dtype=np.float32))
    assert m.proj.weight_mask.shape == (3, 2)
    assert [name for name, _ in m.named_buffers()] == ["proj.weight_mask"]
    assert list(m.state_dict())[-1] == "proj.weight_mask"  # after the parameters, as in torch
    assert "proj.weight_mask" not in dict(m.named_parameters())  # no optimizer sees it
    mask = m.proj.weight_mask
    m.load_state_dict(m.state_dict() | {"proj.weight_mask": np.zeros((3, 2), np.float32)})
    assert m.proj.weight_mask is mask and not mask.any()  # filled in place
    with pytest.raises(RuntimeError, match=r"size mismatch for proj.weight_mask"):
        m.load_state_dict(m.state_dict() | {"proj.weight_mask": np.zeros(2, np.float32)})
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "proj.weight_mask"'):
        m.load_state_dict({k: v for k, v in m.state_dict().items() if k != "proj.weight_mask"})
    m.proj.register_buffer("count", np.zeros(1, dtype=np.int64))
    m.double()
    assert m.proj.weight_mask.dtype == np.float64 and m.proj.count.dtype == np.int64
    m.proj.weight_mask = np.ones((3, 2))  # assigning replaces the buffer
    assert dict(m.named_buffers())["proj.weight_mask"].all()
    del m.proj.weight_mask
    assert [name for name, _ in m.named_buffers()] == ["proj.count"]


# --- modes, gradients, dtypes ----------------------------------------------------------------
def test_train_and_eval_set_training_on_every_submodule_and_return_the_module():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert all(module.training for module in m.modules())
    assert m.eval() is m
    assert not any(module.training for module in m.modules())
    assert m.train() is m
    assert all(module.training for module in m.modules())
    m.train(False)
    assert not m[1][0].training


def test_dropout_is_active_only_in_training():
    mg.manual_seed(0)
    drop = nn.Sequential(nn.Dropout(0.5))
    x = mg.ones(1000, requires_grad=True)
    y = drop(x)
    kept = y.data != 0
    assert 400 < kept.sum() < 600
    np.testing.assert_array_equal(y.data[kept], 2.0)  # survivors scaled by 1/(1-p)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.where(kept, 2.0, 0.0))
    drop.eval()
    assert drop(x) is x


def test_zero_grad_sets_every_gradient_to_none():
    m = Block()
    m(mg.randn(4, 2)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_requires_grad_false_freezes_a_submodule():
    m = Block()
    m.proj.requires_grad_(False)
    m(mg.randn(4, 2)).sum().backward()
    assert m.proj.weight.grad is None and m.proj.bias.grad is None
    assert m.layers[0].weight.grad is not None


def test_to_dtype_converts_in_place_keeping_the_parameter_objects():
    m = Tied()
    params = list(m.parameters())
    assert m.double() is m
    assert list(m.parameters()) == params
    assert all(p.dtype == mg.float64 for p in m.parameters())
    assert m.b.weight is m.a.weight
    assert m.to("cpu") is m
    with pytest.raises(TypeError, match="floating point"):
        m.to("int64")


@pytest.mark.gpu
def test_to_cuda_moves_every_parameter_and_back():
    m = Block()
    x = mg.randn(4, 2)
    expected = m(x).data
    m.to("cuda")
    assert all(p.device == "cuda" for p in m.parameters())
    np.testing.assert_allclose(m(x.to("cuda")).data.get(), expected, rtol=1e-5, atol=1e-6)
    m.cpu()
    assert all(p.device == "cpu" for p in m.parameters())


# --- initialisation --------------------------------------------------------------------------
def test_linear_init_is_pytorchs_uniform_within_one_over_sqrt_fan_in():
    fan_in = 64
    m = nn.Linear(fan_in, 256)
    bound = 1 / np.sqrt(fan_in)
    for p in (m.weight.data, m.bias.data):
        assert np.abs(p).max() <= bound
    w = m.weight.data
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound  # the std of U(-b, b)
    assert abs(w.mean()) < 0.05 * bound
    assert m.weight.dtype == mg.float32


def test_embedding_init_is_standard_normal_with_the_padding_row_zero():
    e = nn.Embedding(500, 64, padding_idx=-1)
    assert e.padding_idx == 499
    np.testing.assert_array_equal(e.weight.data[499], 0)
    assert abs(e.weight.data[:499].std() - 1) < 0.05


def test_manual_seed_makes_layers_reproducible():
    mg.manual_seed(7)
    a = nn.Sequential(nn.Linear(3, 4), nn.Embedding(5, 4))
    mg.manual_seed(7)
    b = nn.Sequential(nn.Linear(3, 4), nn.Embedding(5, 4))
    c = nn.Sequential(nn.Linear(3, 4), nn.Embedding(5, 4))
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
        assert not np.array_equal(v, c.state_dict()[k])


# --- each layer against torch.nn, forward and backward in float64 ----------------------------
def twin(layer, ref):
    """Give the torch layer the minigrad layer's weights, both in float64."""
    layer.double()
    ref.double()
    ref.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.state_dict().items()})
    return layer, ref


def check_against_torch(layer, ref, x, seed=0):
    """Same output, same input gradient, same parameter gradients, for a random upstream grad."""
    layer, ref = twin(layer, ref)
    floating = np.asarray(x).dtype.kind == "f"
    mx = mg.tensor(x, requires_grad=floating)
    tx = torch.tensor(x, requires_grad=floating)
    y, ty = layer(mx), ref(tx)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(seed).standard_normal(ty.shape)
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    if floating:
        np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    torch_params = dict(ref.named_parameters())
    assert [n for n, _ in layer.named_parameters()] == list(torch_params)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, torch_params[name].grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=name)


def randn(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    check_against_torch(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias),
                        randn(2, 4, 5))


def test_embedding_matches_torch_with_repeated_ids():
    ids = np.array([[1, 3, 3], [0, 1, 4]])
    check_against_torch(nn.Embedding(6, 4), torch.nn.Embedding(6, 4), ids)


def test_embedding_padding_row_gets_no_gradient_as_in_torch():
    ids = np.array([[1, 0, 3], [0, 0, 2]])
    layer = nn.Embedding(5, 4, padding_idx=0)
    layer.weight.data[0] = 0.25  # a non-zero padding row is still read as it is
    check_against_torch(layer, torch.nn.Embedding(5, 4, padding_idx=0), ids)
    np.testing.assert_array_equal(layer.weight.grad[0], 0)


def test_embedding_out_of_range_id_is_named():
    with pytest.raises(IndexError, match="id 9 is out of range for a table of 5 rows"):
        nn.Embedding(5, 2)([[1, 9]])


@pytest.mark.parametrize("shape", [4, (3, 4)])
def test_layer_norm_matches_torch(shape):
    layer, ref = nn.LayerNorm(shape, eps=1e-6), torch.nn.LayerNorm(shape, eps=1e-6)
    layer.weight.data[...] = randn(*layer.weight.shape, seed=2)  # not the identity affine
    layer.bias.data[...] = randn(*layer.bias.shape, seed=3)
    check_against_torch(layer, ref, randn(2, 3, 4))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(approximate):
    check_against_torch(nn.GELU(approximate), torch.nn.GELU(approximate), randn(3, 5) * 3)


@pytest.mark.parametrize(("layer", "ref"), [(nn.ReLU, torch.nn.ReLU), (nn.Tanh, torch.nn.Tanh)])
def test_activations_match_torch(layer, ref):
    check_against_torch(layer(), ref(), randn(3, 5) * 2)


@pytest.mark.parametrize(("layer", "ref"), [
    (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.ReLU(), torch.nn.ReLU())], ids=["gelu", "gelu-tanh", "relu"])
def test_an_activation_called_with_a_bias_is_the_activation_of_the_sum(layer, ref):
    """act(x, bias) = act(x + bias), as BERT's feed-forward calls it (GELU's is one op)."""
    x, b = (mg.tensor(a, requires_grad=True) for a in (randn(2, 3, 5) * 3, randn(5, seed=2)))
    tx, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, b))
    y, ty = layer(x, b), ref(tx + tb)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = randn(2, 3, 5, seed=3)
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dropout_in_eval_matches_torch_identity():
    check_against_torch(nn.Dropout(0.3).eval(), torch.nn.Dropout(0.3).eval(), randn(4, 4))


def test_sequential_mlp_matches_torch():
    layer = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 2))
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.LayerNorm(8),
                              torch.nn.Linear(8, 2))
    check_against_torch(layer, ref, randn(6, 4))


# --- containers and argument checks ----------------------------------------------------------
def test_sequential_indexes_slices_and_iterates():
    a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    assert list(seq[1:]) == [b, c] and isinstance(seq[1:], nn.Sequential)
    x = mg.randn(3, 2)
    np.testing.assert_array_equal(seq(x).data, c(b(a(x))).data)
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]


def test_module_list_appends_indexes_and_names_children_by_position():
    layers = nn.ModuleList()
    assert len(layers) == 0
    first, second = nn.Linear(1, 1), nn.Linear(1, 1)
    assert layers.append(first) is layers
    layers.extend([second])
    assert len(layers) == 2 and layers[0] is first and layers[-1] is second
    assert list(layers) == [first, second]
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                         "1.bias"]
    with pytest.raises(IndexError, match="index -3 is out of range for 2 modules"):
        layers[-3]


def test_layers_refuse_bad_arguments_with_clear_errors():
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="padding_idx 5 is out of range for 5 embeddings"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="must be positive"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match=r"input of shape \(2, 4\) does not fit weight of shape "
                                         r"\(3, 5\)"):
        nn.Linear(5, 3)(mg.zeros(2, 4))


def test_nn_exports_functional():
    assert nn.functional is F
