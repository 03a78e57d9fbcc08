"""minigrad.optim against torch.optim: update rules, schedules, clipping, accumulation, state.

Each trajectory test trains the same small network from the same start in both libraries, each
library computing its own gradients, and compares every parameter after every step (float64).
"""

import copy
import math

import numpy as np
import pytest
import torch

import minigrad
from minigrad import optim

ATOL = 1e-6

# A small network, y = (tanh(x·W1 + b1) ⊙ g)·W2 + b2, with Hugging Face-style names so that the
# weight-decay groups have something to sort: two weights, two biases and a LayerNorm gain.
SHAPES = {
    "dense.weight": (4, 5),
    "dense.bias": (5,),
    "LayerNorm.weight": (5,),
    "classifier.weight": (5, 3),
    "classifier.bias": (3,),
}
DECAY = ["dense.weight", "classifier.weight"]
NO_DECAY = ["dense.bias", "LayerNorm.weight", "classifier.bias"]


def start_values(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.5, shape) for name, shape in SHAPES.items()}


def batch(n=16, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 3))


def forward(p, x, y):
    """Mean squared error of the network; the same code runs on minigrad and torch tensors."""
    tanh = torch.tanh if isinstance(x, torch.Tensor) else minigrad.tanh
    h = tanh(x @ p["dense.weight"] + p["dense.bias"]) * p["LayerNorm.weight"]
    out = h @ p["classifier.weight"] + p["classifier.bias"]
    return ((out - y) ** 2).mean()


class Lib:
    """One library's side of a comparison: its tensors, optimizers and schedulers."""

    def __init__(self, name, start):
        self.name = name
        self.optim = optim if name == "minigrad" else torch.optim
        if name == "minigrad":
            self.params = {n: minigrad.tensor(a.copy(), requires_grad=True)
                           for n, a in start.items()}
        else:
            self.params = {n: torch.tensor(a.copy(), requires_grad=True)
                           for n, a in start.items()}

    def tensor(self, a):
        return minigrad.tensor(a) if self.name == "minigrad" else torch.tensor(a)

    def groups(self, overrides=None):
        """Two groups: weights with the optimizer's defaults, the rest with ``overrides``."""
        return [{"params": [self.params[n] for n in DECAY]},
                {"params": [self.params[n] for n in NO_DECAY], **(overrides or {})}]

    def grads_of(self, x, y, k=1):
        """Fill .grad: the mean loss over the batch, from k micro-batches of loss/k each."""
        for xs, ys in zip(np.split(x, k), np.split(y, k), strict=True):
            (forward(self.params, self.tensor(xs), self.tensor(ys)) / k).backward()

    def values(self):
        if self.name == "minigrad":
            return {n: p.data.copy() for n, p in self.params.items()}
        return {n: p.detach().numpy().copy() for n, p in self.params.items()}


def train(lib, make_optimizer, steps=100, make_scheduler=None, k=1, clip=None, overrides=None):
    """Run ``steps`` optimizer steps; return the parameters after each step and the lrs."""
    x, y = batch()
    opt = make_optimizer(lib.optim, lib.groups(overrides))
    sched = make_scheduler(lib, opt) if make_scheduler else None
    trajectory, lrs = [], [[g["lr"] for g in opt.param_groups]]
    for _ in range(steps):
        opt.zero_grad()
        lib.grads_of(x, y, k)
        if clip is not None:
            clip_fn = optim.clip_grad_norm_ if lib.name == "minigrad" else \
                torch.nn.utils.clip_grad_norm_
            clip_fn(list(lib.params.values()), clip)
        opt.step()
        if sched:
            sched.step()
        trajectory.append(lib.values())
        lrs.append([g["lr"] for g in opt.param_groups])
    return trajectory, lrs


def assert_same_trajectory(ours, theirs, atol=ATOL):
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for name in SHAPES:
            np.testing.assert_allclose(a[name], b[name], rtol=0, atol=atol,
                                       err_msg=f"{name} after step {step + 1}")


# --- update rules against torch.optim -----------------------------------------------------
# (optimizer, its keyword arguments, the second group's overrides)
OPTIMIZERS = {
    "sgd": ("SGD", {"lr": 0.1}, {"lr": 0.03}),
    "sgd-momentum": ("SGD", {"lr": 0.05, "momentum": 0.9}, {"momentum": 0.5}),
    "sgd-dampening": ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3},
                      {"dampening": 0.0}),
    "sgd-nesterov": ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, {"lr": 0.01}),
    "sgd-weight-decay": ("SGD", {"lr": 0.05, "weight_decay": 0.1}, {"weight_decay": 0.0}),
    "sgd-all": ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05},
                {"lr": 0.02, "weight_decay": 0.0}),
    "adam": ("Adam", {"lr": 1e-2}, {"lr": 3e-2}),
    "adam-betas-eps": ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-4},
                       {"betas": (0.5, 0.9)}),
    "adam-weight-decay": ("Adam", {"lr": 1e-2, "weight_decay": 0.1}, {"weight_decay": 0.0}),
    "adamw-default-decay": ("AdamW", {"lr": 1e-2}, {"lr": 2e-2}),
    "adamw": ("AdamW", {"lr": 1e-2, "weight_decay": 0.3}, {"weight_decay": 0.0}),
}


def make(name):
    cls, kwargs, _ = OPTIMIZERS[name]
    return lambda module, groups: getattr(module, cls)(groups, **kwargs)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_trajectory_matches_torch_over_100_steps(name):
    start = start_values()
    overrides = OPTIMIZERS[name][2]
    ours, _ = train(Lib("minigrad", start), make(name), overrides=overrides)
    theirs, _ = train(Lib("torch", start), make(name), overrides=overrides)
    assert_same_trajectory(ours, theirs)
    moved = max(np.abs(ours[-1][n] - start[n]).max() for n in SHAPES)
    assert moved > 0.05  # the comparison is between trajectories that went somewhere


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW"])
def test_defaults_match_torch(cls):
    ours = getattr(optim, cls)([minigrad.zeros(2, requires_grad=True)]).defaults
    theirs = getattr(torch.optim, cls)([torch.zeros(2, requires_grad=True)]).defaults
    assert ours == {k: theirs[k] for k in ours}


def test_parameters_without_grad_are_skipped():
    p = minigrad.tensor(np.ones(3), requires_grad=True)
    unused = minigrad.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([p, unused], lr=0.1, weight_decay=0.1)
    (p * p).sum().backward()
    opt.step()
    assert unused not in opt.state and p in opt.state
    np.testing.assert_array_equal(unused.data, np.ones(2))
    assert not np.array_equal(p.data, np.ones(3))


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    p = minigrad.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    grad = p.grad
    opt.zero_grad(set_to_none=set_to_none)
    if set_to_none:
        assert p.grad is None
    else:
        assert p.grad is grad
        np.testing.assert_array_equal(grad, np.zeros(3))


def test_step_with_closure_returns_the_loss():
    p = minigrad.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 5.0
    np.testing.assert_allclose(p.data, [0.8, -1.6])  # θ − η·2θ


# --- schedules ----------------------------------------------------------------------------
def hf_linear(t, warmup, total):
    """transformers.get_linear_schedule_with_warmup's lr_lambda, written out."""
    if t < warmup:
        return float(t) / float(max(1, warmup))
    return max(0.0, float(total - t) / float(max(1, total - warmup)))


def hf_cosine(t, warmup, total, cycles=0.5):
    """transformers.get_cosine_schedule_with_warmup's lr_lambda, written out."""
    if t < warmup:
        return float(t) / float(max(1, warmup))
    progress = float(t - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress)))


# name -> (our scheduler, torch's scheduler)
SCHEDULES = {
    "constant": (lambda o: optim.get_constant_schedule(o),
                 lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1.0)),
    "step": (lambda o: optim.StepLR(o, step_size=7, gamma=0.5),
             lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    "linear-warmup": (
        lambda o: optim.get_linear_schedule_with_warmup(o, 10, 80),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: hf_linear(t, 10, 80))),
    "linear-no-warmup": (
        lambda o: optim.get_linear_schedule_with_warmup(o, 0, 100),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: hf_linear(t, 0, 100))),
    "cosine-warmup": (
        lambda o: optim.get_cosine_schedule_with_warmup(o, 10, 90),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: hf_cosine(t, 10, 90))),
    "cosine-two-cycles": (
        lambda o: optim.get_cosine_schedule_with_warmup(o, 5, 100, num_cycles=2.0),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: hf_cosine(t, 5, 100, 2.0))),
}


def scheduler(name):
    ours, theirs = SCHEDULES[name]
    return lambda lib, opt: ours(opt) if lib.name == "minigrad" else theirs(opt)


@pytest.mark.parametrize("opt_name", ["sgd-momentum", "adamw"])
@pytest.mark.parametrize("sched_name", SCHEDULES)
def test_schedule_matches_torch(sched_name, opt_name):
    start = start_values()
    overrides = {"lr": 0.02}  # two groups, two base learning rates
    ours, our_lrs = train(Lib("minigrad", start), make(opt_name), overrides=overrides,
                          make_scheduler=scheduler(sched_name))
    theirs, their_lrs = train(Lib("torch", start), make(opt_name), overrides=overrides,
                              make_scheduler=scheduler(sched_name))
    np.testing.assert_allclose(our_lrs, their_lrs, rtol=1e-12, atol=0)
    distinct = len(set(map(tuple, our_lrs)))
    assert distinct == 1 if sched_name == "constant" else distinct > 5
    assert_same_trajectory(ours, theirs)


def test_get_last_lr_and_last_epoch():
    p = minigrad.tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = optim.get_linear_schedule_with_warmup(opt, num_warmup_steps=4, num_training_steps=8)
    seen = [(sched.last_epoch, sched.get_last_lr())]
    for _ in range(9):
        sched.step()
        seen.append((sched.last_epoch, sched.get_last_lr()))
    expected = [0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert seen == [(t, [lr]) for t, lr in enumerate(expected)]
    assert opt.param_groups[0]["initial_lr"] == 1.0


# --- gradient clipping --------------------------------------------------------------------
CLIP_SHAPES = [(3, 4), (5,), (2, 2, 2), (1,)]


def clip_both(grads, max_norm, norm_type, error_if_nonfinite=False):
    ours = [minigrad.tensor(np.zeros(s), requires_grad=True) for s in CLIP_SHAPES]
    theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in CLIP_SHAPES]
    for a, b, g in zip(ours, theirs, grads, strict=True):
        a.grad = None if g is None else g.copy()
        b.grad = None if g is None else torch.tensor(g.copy())
    our_norm = optim.clip_grad_norm_(ours, max_norm, norm_type, error_if_nonfinite)
    their_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type,
                                                error_if_nonfinite).item()
    for a, b in zip(ours, theirs, strict=True):
        if b.grad is None:
            assert a.grad is None
        else:
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-12, atol=0)
    return our_norm, their_norm


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(2)
    grads = [rng.normal(0, 2, s) for s in CLIP_SHAPES]
    grads[3] = None  # a parameter without a gradient is skipped
    our_norm, their_norm = clip_both(grads, max_norm, norm_type)
    assert isinstance(our_norm, float)
    assert our_norm == pytest.approx(their_norm, rel=1e-12)
    assert (our_norm > max_norm) == (max_norm == 0.5)  # one case clips, the other does not


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf·0 and NaN, as in torch
@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_clip_grad_norm_nonfinite_matches_torch(bad):
    grads = [np.ones(s) for s in CLIP_SHAPES]
    grads[0][1, 2] = bad
    p = minigrad.tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array([1.0, bad])
    with pytest.raises(RuntimeError, match=f"norm of order 2.0 .* is {bad}, so they cannot be"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert p.grad[0] == 1.0  # refused before any scaling
    our_norm, their_norm = clip_both(grads, 1.0, 2.0)  # then scaled as torch does
    assert our_norm == their_norm or (math.isnan(our_norm) and math.isnan(their_norm))


def test_clip_grad_norm_without_grads_is_zero():
    assert optim.clip_grad_norm_(minigrad.zeros(3, requires_grad=True), 1.0) == 0.0


# --- gradient accumulation ----------------------------------------------------------------
@pytest.mark.parametrize("opt_name", ["sgd-momentum", "adamw"])
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("clip", [None, 0.1])
def test_gradient_accumulation(opt_name, k, clip):
    start = start_values()
    accumulated, _ = train(Lib("minigrad", start), make(opt_name), steps=50, k=k, clip=clip)
    torch_accumulated, _ = train(Lib("torch", start), make(opt_name), steps=50, k=k, clip=clip)
    full_batch, _ = train(Lib("minigrad", start), make(opt_name), steps=50, k=1, clip=clip)
    assert_same_trajectory(accumulated, torch_accumulated)
    assert_same_trajectory(accumulated, full_batch, atol=1e-9)


# --- state_dict ---------------------------------------------------------------------------
def run_steps(lib, opt, sched, steps):
    x, y = batch()
    for _ in range(steps):
        opt.zero_grad()
        lib.grads_of(x, y)
        opt.step()
        if sched:
            sched.step()


def as_json_would(state_dict):
    """What a JSON round trip does to a state_dict: string keys, lists for tuples."""
    return {
        "state": {str(i): s for i, s in state_dict["state"].items()},
        "param_groups": [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
                         for g in state_dict["param_groups"]],
    }


@pytest.mark.parametrize("opt_name", ["sgd-all", "adam-weight-decay", "adamw"])
@pytest.mark.parametrize("sched_name", [None, "step", "cosine-warmup"])
@pytest.mark.parametrize("json_like", [False, True])
def test_resume_from_state_dict_is_bit_exact(opt_name, sched_name, json_like):
    def setup(lib):
        opt = make(opt_name)(lib.optim, lib.groups({"lr": 0.02}))
        sched = SCHEDULES[sched_name][0](opt) if sched_name else None
        return opt, sched

    uninterrupted = Lib("minigrad", start_values())
    opt, sched = setup(uninterrupted)
    run_steps(uninterrupted, opt, sched, 20)
    saved_values = uninterrupted.values()
    saved_opt = opt.state_dict()
    saved_sched = sched.state_dict() if sched else None
    run_steps(uninterrupted, opt, sched, 20)  # the saved dicts must not follow these steps

    resumed = Lib("minigrad", saved_values)
    opt2, sched2 = setup(resumed)
    opt2.load_state_dict(as_json_would(saved_opt) if json_like else saved_opt)
    if sched2:
        sched2.load_state_dict(saved_sched)
    run_steps(resumed, opt2, sched2, 20)

    for name in SHAPES:
        np.testing.assert_array_equal(resumed.values()[name], uninterrupted.values()[name])
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("opt_name", ["sgd-momentum", "adam-weight-decay", "adamw"])
def test_state_dict_layout_matches_torch(opt_name):
    libs = [Lib("minigrad", start_values()), Lib("torch", start_values())]
    dicts = []
    for lib in libs:
        groups = lib.groups({"lr": 0.02})
        groups[1]["params"].append(lib.tensor(np.ones(2)).requires_grad_())  # never gets a grad
        opt = make(opt_name)(lib.optim, groups)
        sched = optim.StepLR(opt, 3) if lib.name == "minigrad" else \
            torch.optim.lr_scheduler.StepLR(opt, 3)
        run_steps(lib, opt, sched, 3)
        dicts.append(opt.state_dict())
    ours, theirs = dicts

    assert list(ours["state"]) == list(theirs["state"]) == [0, 1, 2, 3, 4]
    for i, state in ours["state"].items():
        assert set(state) == set(theirs["state"][i])
        for key, value in state.items():
            np.testing.assert_allclose(value, theirs["state"][i][key].numpy(), atol=ATOL)
    for ours_g, theirs_g in zip(ours["param_groups"], theirs["param_groups"], strict=True):
        assert list(ours_g)[-1] == "params" and ours_g["params"] == theirs_g["params"]
        assert ours_g == {k: theirs_g[k] for k in ours_g}


def test_state_dict_scheduler_layout_matches_torch():
    ours_opt = optim.SGD([minigrad.zeros(2, requires_grad=True)], lr=0.1)
    theirs_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    ours = optim.StepLR(ours_opt, 3, gamma=0.5)
    theirs = torch.optim.lr_scheduler.StepLR(theirs_opt, 3, gamma=0.5)
    for _ in range(4):
        theirs_opt.step()  # torch warns about a scheduler step before any optimizer step
        ours.step()
        theirs.step()
    sd = ours.state_dict()
    assert sd == {k: theirs.state_dict()[k] for k in sd}
    assert set(sd) >= {"base_lrs", "last_epoch", "_last_lr", "step_size", "gamma"}
    hf = optim.get_cosine_schedule_with_warmup(ours_opt, 2, 10).state_dict()
    assert hf["lr_lambdas"] == [{}]  # as torch saves a functools.partial


# --- errors ---------------------------------------------------------------------------------
def p_():
    return minigrad.tensor(np.ones(3), requires_grad=True)


@pytest.mark.parametrize("build, match", [
    (lambda: optim.SGD([p_()], lr=-0.1), r"SGD: invalid lr -0\.1"),
    (lambda: optim.SGD([p_()], lr=float("nan")), "invalid lr nan"),
    (lambda: optim.SGD([p_()], momentum=-0.5), "invalid momentum"),
    (lambda: optim.SGD([p_()], weight_decay=-1), "invalid weight_decay"),
    (lambda: optim.SGD([p_()], nesterov=True), "Nesterov momentum needs momentum > 0"),
    (lambda: optim.SGD([p_()], momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
    (lambda: optim.Adam([p_()], lr=-1), "Adam: invalid lr"),
    (lambda: optim.Adam([p_()], betas=(1.0, 0.999)), r"beta at index 0: 1\.0 .*\[0, 1\)"),
    (lambda: optim.Adam([p_()], betas=(0.9, -0.1)), "beta at index 1"),
    (lambda: optim.Adam([p_()], betas=(0.9,)), "pair"),
    (lambda: optim.Adam([p_()], eps=-1e-8), "invalid eps"),
    (lambda: optim.Adam([p_()], weight_decay=-0.1), "invalid weight_decay"),
    (lambda: optim.AdamW([p_()], betas=(0.9, 1.0)), "AdamW: invalid beta at index 1"),
    (lambda: optim.AdamW([p_()], lr=-1e-3), "AdamW: invalid lr"),
    (lambda: optim.SGD([{"params": [p_()], "lr": -1}], lr=0.1), "invalid lr -1"),
    (lambda: optim.SGD([{"params": [p_()], "momentun": 0.9}]), r"unknown .*\['momentun'\]"),
])
def test_bad_hyperparameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_params_raise():
    p = p_()
    with pytest.raises(TypeError, match=r"iterable of Tensors.*shape \(3,\)"):
        optim.SGD(p)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(ValueError, match="groups without parameters"):
        optim.AdamW(optim.param_groups_for_weight_decay([], 0.01))
    with pytest.raises(TypeError, match=r"only optimize Tensors.*float"):
        optim.SGD([1.0])
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD([{"params": {p}}])
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p])
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2])
    with pytest.raises(TypeError, match=r"floating-point.*int64"):
        optim.SGD([minigrad.tensor([1, 2])])
    with pytest.raises(TypeError, match="must be a dict"):
        optim.SGD([{"params": [p]}, p_()])


def test_gradient_of_the_wrong_shape_or_dtype_raises():
    p = p_()
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones((3, 1))
    with pytest.raises(ValueError, match=r"shape \(3,\), .* gradient of shape \(3, 1\)"):
        opt.step()
    p.grad = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"dtype float64 .* gradient of .* dtype float32"):
        opt.step()


def adam_state(shapes=((4, 5), (5,)), groups=2):
    """A stepped Adam over parameters of ``shapes`` (split into ``groups``), and its state."""
    params = [minigrad.tensor(np.ones(s), requires_grad=True) for s in shapes]
    split = [params[:1], params[1:]] if groups == 2 else [params]
    opt = optim.Adam([{"params": g} for g in split], lr=0.1)
    for p in params:
        p.grad = np.ones(p.shape)
    opt.step()
    return opt


@pytest.mark.parametrize("target, edit, match", [
    (lambda: adam_state(groups=1), None, "2 parameter groups, but this Adam has 1"),
    (lambda: adam_state(shapes=((4, 5), (5,), (5,))), None,
     "group 1 of the loaded state_dict holds 1 parameters, but group 1 of this Adam holds 2"),
    (lambda: adam_state(shapes=((5, 4), (5,))), None,
     r"'exp_avg' of parameter 0 .* shape \(4, 5\), but the parameter has shape \(5, 4\)"),
    (lambda: optim.SGD([{"params": [p_()]}, {"params": [p_()]}], momentum=0.9), None,
     r"does not fit SGD \(missing \['dampening', 'momentum', 'nesterov'\]"),
    (adam_state, lambda sd: sd["state"][0].pop("exp_avg_sq"), "keeps"),
    (adam_state, lambda sd: sd["state"].update({7: sd["state"][0]}), "state for parameter 7"),
    (adam_state, lambda sd: sd["param_groups"][0].update(lr=-1.0), "invalid lr -1.0"),
    (adam_state, lambda sd: sd["state"][0].update(exp_avg=[1.0]), "exp_avg' of parameter 0 in the "
     "loaded state_dict has a list"),
    (adam_state, lambda sd: sd.pop("state"), "exactly the keys"),
])
def test_mismatched_optimizer_state_dict_raises_and_changes_nothing(target, edit, match):
    sd = adam_state().state_dict()
    if edit:
        edit(sd)
    opt = target()
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i, state in before["state"].items():
        for key, value in state.items():
            np.testing.assert_array_equal(after["state"][i][key], value)


def test_bad_schedules_raise():
    opt = optim.SGD([p_()], lr=0.1)
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="expected 1 lr_lambdas"):
        optim.LambdaLR(opt, [lambda t: 1.0, lambda t: 1.0])
    with pytest.raises(ValueError, match="num_warmup_steps must be >= 0"):
        optim.get_linear_schedule_with_warmup(opt, -1, 10)
    with pytest.raises(ValueError, match=r"num_training_steps \(5\) must be at least"):
        optim.get_cosine_schedule_with_warmup(opt, 10, 5)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.StepLR(optim.SGD([p_()]), step_size=2, last_epoch=4)
    with pytest.raises(TypeError, match="needs an Optimizer"):
        optim.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), 2)
    step_state = optim.StepLR(opt, 3).state_dict()
    with pytest.raises(ValueError, match=r"does not fit LambdaLR"):
        optim.get_constant_schedule(opt).load_state_dict(step_state)
    with pytest.raises(ValueError, match=r"missing keys \['gamma', 'step_size'\]"):
        optim.StepLR(opt, 3).load_state_dict(optim.get_constant_schedule(opt).state_dict())
    two_groups = optim.SGD([{"params": [p_()]}, {"params": [p_()]}], lr=0.1)
    with pytest.raises(ValueError, match="1 base_lrs, but the optimizer has 2"):
        optim.StepLR(two_groups, 3).load_state_dict(step_state)


def test_bad_clip_and_penalty_arguments_raise():
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        optim.clip_grad_norm_([p_()], -1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        optim.clip_grad_norm_([p_()], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        optim.l1_penalty([p_()], -0.1)
    with pytest.raises(ValueError, match="no parameters"):
        optim.l1_penalty([], 0.1)
    with pytest.raises(TypeError, match=r"\(name, Tensor\) pairs"):
        optim.param_groups_for_weight_decay([p_()], 0.01)


# --- regularization helpers -----------------------------------------------------------------
def test_l1_penalty_matches_torch():
    values = [np.array([[0.5, -1.5], [0.0, 2.0]]), np.array([-0.25, 0.0, 3.0])]
    ours = [minigrad.tensor(v, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    our_penalty = optim.l1_penalty(ours, 0.01)
    their_penalty = 0.01 * sum(t.abs().sum() for t in theirs)
    assert our_penalty.shape == ()
    assert our_penalty.item() == pytest.approx(their_penalty.item(), rel=1e-15)
    our_penalty.backward()
    their_penalty.backward()
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.grad, b.grad.numpy())  # 0.01·sign(θ), 0 at θ = 0


def test_param_groups_for_weight_decay_follows_hugging_face():
    names = ["bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight",
             "bert.embeddings.LayerNorm.bias",
             "bert.encoder.layer.0.attention.self.query.weight",
             "bert.encoder.layer.0.attention.self.query.bias",
             "bert.encoder.layer.0.output.LayerNorm.weight", "classifier.weight",
             "classifier.bias"]
    named = [(n, minigrad.zeros(2, requires_grad=True)) for n in names]
    decay, no_decay = optim.param_groups_for_weight_decay(named, 0.01)
    hf_no_decay = ["bias", "LayerNorm.weight"]  # transformers' Trainer and run_glue.py
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == \
        [id(p) for n, p in named if not any(nd in n for nd in hf_no_decay)]
    assert [id(p) for p in no_decay["params"]] == \
        [id(p) for n, p in named if any(nd in n for nd in hf_no_decay)]
    same = optim.param_groups_for_weight_decay(dict(named), 0.01)
    assert [len(g["params"]) for g in same] == [3, 5]
    only_weights = optim.AdamW(optim.param_groups_for_weight_decay(named[:1], 0.01))
    assert [len(g["params"]) for g in only_weights.param_groups] == [1, 0]  # still two groups


def test_adamw_with_weight_decay_groups_matches_torch():
    def trained(lib):
        if lib.name == "minigrad":
            groups = optim.param_groups_for_weight_decay(lib.params.items(), 0.1)
        else:
            groups = [{"params": [p for n, p in lib.params.items() if n in DECAY],
                       "weight_decay": 0.1},
                      {"params": [p for n, p in lib.params.items() if n not in DECAY],
                       "weight_decay": 0.0}]
        opt = lib.optim.AdamW(groups, lr=1e-2)
        run_steps(lib, opt, None, 100)
        return lib.values()

    ours, theirs = trained(Lib("minigrad", start_values())), trained(Lib("torch", start_values()))
    assert_same_trajectory([ours], [theirs])


# --- GPU --------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("opt_name", ["sgd-all", "adamw"])
def test_gpu_matches_cpu(opt_name):
    """The same code path on CuPy arrays: same trajectory, and its state loads on the CPU."""
    pytest.importorskip("cupy")

    def trained(device, steps):
        params = {n: minigrad.tensor(a, requires_grad=True, device=device)
                  for n, a in start_values().items()}
        opt = make(opt_name)(optim, [{"params": list(params.values())}])
        x, y = (minigrad.tensor(a, device=device) for a in batch())
        for _ in range(steps):
            opt.zero_grad()
            forward(params, x, y).backward()
            optim.clip_grad_norm_(params.values(), 1.0)
            opt.step()
        return params, opt

    cpu, _ = trained("cpu", 20)
    gpu, gpu_opt = trained("cuda", 20)
    for name in SHAPES:
        np.testing.assert_allclose(gpu[name].data.get(), cpu[name].data, atol=1e-10)
    on_cpu = make(opt_name)(optim, [{"params": [p.cpu().detach() for p in gpu.values()]}])
    on_cpu.load_state_dict(gpu_opt.state_dict())
    for state in on_cpu.state.values():
        assert all(not hasattr(v, "shape") or isinstance(v, np.ndarray) for v in state.values())
