"""CoupledSGD against the torch.optim.SGD update formula; the recipes' learning rates."""

import math

import keras
import numpy as np
import pytest

from keras_padfree.training import CoupledSGD
from keras_padfree.training import EpochSchedule
from keras_padfree.training import get_recipe
from keras_padfree.training import list_recipes


def _numpy_sgd(params, grads_per_step, lrs, momentum, nesterov, l2, decays):
    """torch.optim.SGD (dampening 0), written out in NumPy."""
    params = [p.astype(np.float64).copy() for p in params]
    bufs = [None] * len(params)
    for grads, lr in zip(grads_per_step, lrs):
        for i, (p, g) in enumerate(zip(params, grads)):
            d = g.astype(np.float64) + (l2 * p if decays[i] else 0.0)
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = p - lr * d
    return params


@pytest.mark.all_backends
@pytest.mark.parametrize("nesterov", [False, True])
def test_coupled_sgd_matches_the_update_formula(nesterov):
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (2, 2, 3)]
    init = [rng.normal(size=s).astype("float32") for s in shapes]
    names = ["dense_kernel", "bn_gamma", "conv_bias"]
    variables = [keras.Variable(v, name=n) for v, n in zip(init, names)]
    steps, spe = 6, 2
    schedule = EpochSchedule(0.1, spe, kind="multistep", epochs=3, milestones=(1, 2), gamma=0.1)
    opt = CoupledSGD(
        learning_rate=schedule, momentum=0.9, nesterov=nesterov, l2=1e-2, l2_exclude=("gamma",)
    )
    grads = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(steps)]
    for g in grads:
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(x) for x in g], variables))
    lrs = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    expected = _numpy_sgd(init, grads, lrs, 0.9, nesterov, 1e-2, decays=[True, False, True])
    for v, e in zip(variables, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), e, rtol=1e-5, atol=1e-6)
    assert int(keras.ops.convert_to_numpy(opt.iterations)) == steps


@pytest.mark.all_backends
def test_coupled_sgd_differs_from_keras_decoupled_sgd():
    # The reason CoupledSGD exists: Keras' SGD(weight_decay=...) is a different update.
    init = np.linspace(-1, 1, 6).astype("float32")
    g = np.full(6, 0.5, "float32")
    a, b = keras.Variable(init), keras.Variable(init)
    ours = CoupledSGD(learning_rate=0.1, momentum=0.9, l2=0.1)
    theirs = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        ours.apply_gradients([(keras.ops.convert_to_tensor(g), a)])
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), b)])
    assert not np.allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.all_backends
@pytest.mark.parametrize("nesterov", [False, True])
def test_coupled_sgd_equals_torch_sgd(nesterov):
    """Against torch.optim.SGD itself (foreach), one decayed and one excluded variable: on the
    torch backend the same bits (the same torch._foreach_* calls), elsewhere float32 rounding."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = [rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32")]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in w0] for _ in range(4)]
    tw = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    groups = [{"params": [tw[0]], "weight_decay": 1e-3}, {"params": [tw[1]], "weight_decay": 0.0}]
    topt = torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=nesterov, foreach=True)
    kw = [keras.Variable(w0[0], name="kernel"), keras.Variable(w0[1], name="gamma")]
    kopt = CoupledSGD(
        learning_rate=0.05, momentum=0.9, nesterov=nesterov, l2=1e-3, l2_exclude=("gamma",)
    )
    for g in grads:
        for t, x in zip(tw, g):
            t.grad = torch.tensor(x)
        topt.step()
        kopt.apply_gradients(zip([keras.ops.convert_to_tensor(x) for x in g], kw))
    for k, t in zip(kw, tw):
        got, want = keras.ops.convert_to_numpy(k), t.detach().numpy()
        if keras.backend.backend() == "torch":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.all_backends
def test_coupled_sgd_updates_all_torch_variables_at_once(monkeypatch):
    """On the torch backend no per-variable update_step (a Python call per op and variable)."""
    if keras.backend.backend() != "torch":
        pytest.skip("the all-at-once update is the torch backend's")

    def per_variable(*args, **kwargs):
        raise AssertionError("update_step called on the torch backend")

    monkeypatch.setattr(CoupledSGD, "update_step", per_variable)
    v = keras.Variable(np.ones(3, "float32"))
    CoupledSGD(learning_rate=0.5, momentum=0.9, l2=0.1).apply_gradients([(keras.ops.ones((3,)), v)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(v), np.full(3, 1 - 0.5 * 1.1), 1e-6)


def test_coupled_sgd_rejects_bad_arguments():
    with pytest.raises(ValueError, match="momentum"):
        CoupledSGD(momentum=1.5)
    with pytest.raises(ValueError, match="l2"):
        CoupledSGD(l2=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        CoupledSGD(weight_decay=1e-4)
    with pytest.raises(ValueError, match="Nesterov"):
        CoupledSGD(momentum=0.0, nesterov=True)


def test_coupled_sgd_config_round_trip():
    opt = CoupledSGD(
        learning_rate=EpochSchedule(0.1, 10, kind="cosine_epoch", epochs=5),
        momentum=0.9,
        nesterov=True,
        l2=1e-4,
        l2_exclude=("beta",),
    )
    clone = CoupledSGD.from_config(keras.optimizers.serialize(opt)["config"])
    assert (clone.momentum, clone.nesterov, clone.l2, clone.l2_exclude) == (
        0.9,
        True,
        1e-4,
        ("beta",),
    )


def _lr(recipe, epoch, step=0, spe=10):
    return get_recipe(recipe).make_schedule(spe).lr_at(epoch, step)


@pytest.mark.parametrize(
    "recipe,epoch,expected",
    [
        # bsconv set 1: epochs 1-100 (0-based 0-99) at 0.1, then x0.1 after 100, 150, 180.
        ("bsconv_set1", 0, 0.1),
        ("bsconv_set1", 99, 0.1),
        ("bsconv_set1", 100, 0.01),
        ("bsconv_set1", 149, 0.01),
        ("bsconv_set1", 150, 1e-3),
        ("bsconv_set1", 179, 1e-3),
        ("bsconv_set1", 180, 1e-4),
        ("bsconv_set1", 199, 1e-4),
        ("bsconv_set1_dogs", 100, 0.01),
        # second set: LambdaLR ((1+cos(pi e/300))/2)*(1-0.1)+0.1 times 0.03.
        ("second_set_cifar", 0, 0.03),
        ("second_set_cifar", 150, 0.03 * (0.5 * 0.9 + 0.1)),
        ("second_set_cifar", 75, 0.03 * (((1 + math.cos(math.pi / 4)) / 2) * 0.9 + 0.1)),
        ("second_set_cifar", 300, 0.003),
        ("vegfru292", 29, 0.1),
        ("vegfru292", 30, 0.01),
        ("vegfru292", 60, 1e-3),
        ("vegfru292", 90, 1e-4),
        ("pydmobilenet_cifar", 149, 0.1),
        ("pydmobilenet_cifar", 150, 0.01),
        ("pydmobilenet_cifar", 225, 1e-3),
        ("cheap_ops_cifar", 1, 0.1),
        ("cheap_ops_cifar", 59, 0.1),
        ("cheap_ops_cifar", 60, 0.02),
        ("cheap_ops_cifar", 120, 0.004),
        ("cheap_ops_cifar", 160, 0.0008),
        ("pydmobilenet_imagenet32", 5, 0.4),
        ("pydmobilenet_imagenet32", 5 + 115 / 2, 0.2),
        ("cheap_ops_imagenet", 0, 0.05),
        ("cheap_ops_imagenet", 75, 0.025),
    ],
)
def test_recipe_learning_rate_at_boundary_epochs(recipe, epoch, expected):
    spe = 10
    e, frac = int(epoch), epoch - int(epoch)
    assert _lr(recipe, e, int(round(frac * spe)), spe) == pytest.approx(expected, rel=1e-5)


def test_warmup_is_linear_from_zero():
    # cheap-ops CIFAR: one warm-up epoch, lr = 0.1 * step / steps_per_epoch.
    assert _lr("cheap_ops_cifar", 0, 0) == 0.0
    assert _lr("cheap_ops_cifar", 0, 5) == pytest.approx(0.05)
    assert _lr("pydmobilenet_imagenet32", 2, 5) == pytest.approx(0.4 * 25 / 50)


def test_every_recipe_is_complete():
    for name in list_recipes():
        r = get_recipe(name)
        assert r.epochs > 0 and r.batch_size > 0 and r.learning_rate > 0, name
        opt = r.make_optimizer(7)
        assert isinstance(opt, CoupledSGD) and opt.l2 == r.l2
    assert get_recipe("bsconv_set1").l2_exclude == ()  # decay on BN and biases too
    assert get_recipe("pydmobilenet_imagenet32").l2_exclude != ()
    with pytest.raises(ValueError, match="Unknown recipe"):
        get_recipe("nope")
