"""Registry-wide tests: every registered model, whatever its family.

* its counts equal the reference's exact integers, for every paper row it reproduces;
* it builds, trains one step, and round-trips through `.keras` with identical outputs (every backend).
"""

import os

import numpy as np
import pytest

import keras

from keras_padfree import applications, profiling
from tests import helpers

MODELS = applications.list_models()
ROWS = [
    pytest.param(name, i, id=f"{name}-{row.input_size}px-{row.classes}cls")
    for name in MODELS
    for i, row in enumerate(applications.get_model_info(name).references)
]


def _expected(info, row, field):
    value = getattr(row, field)
    delta = info.deviations.get(field, (0, ""))[0]
    return None if value is None else value + delta


@pytest.mark.parametrize("name,row_index", ROWS)
def test_counts_equal_reference(name, row_index):
    info = applications.get_model_info(name)
    row = info.references[row_index]
    model = applications.create_model(
        name, input_shape=(row.input_size, row.input_size, 3), classes=row.classes
    )
    convention = profiling.normalize_convention(row.flops_convention)
    assert profiling.count_params(model, convention) == _expected(info, row, "params")
    assert profiling.count_flops(model, convention) == _expected(info, row, "flops")
    if row.params_all_weights is not None:
        all_weights = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert all_weights == _expected(info, row, "params_all_weights")


# Every model runs this test with --run-large on every backend. Without it (every CI run): one
# model per family on every backend (its padding-free variant where it has one), and on TensorFlow
# also the first registered model of every (family, variant) kind: orig and PF of each family, and
# the second set's stem-only, downsampling-only and attention variants. The layers that only other
# kinds use have their own every-backend tests (attention downsampling: build, one training step,
# serialisation; BSConv-U: also in bsconv_wrn40_8_bsconvu_cifar_pf).
EVERY_BACKEND = {
    "bsconv_mobilenetv3_large_bsconvs_cifar_pf", "bsconv_resnet20_cifar_pf",
    "bsconv_wrn40_8_bsconvu_cifar_pf", "mobilenetv3_large_pf_cifar", "ghostnet_pf_cifar",
    "parc_mobilenetv2_pf_cifar", "shufflenetv2_pf_cifar", "pydmobilenet29_025_concat_pf_cifar",
    "cheap_mobilenetv3_se8_cifar",
}


def test_every_family_runs_on_every_backend():
    assert EVERY_BACKEND <= set(MODELS)
    families = {applications.get_model_info(name).family for name in MODELS}
    assert sorted(applications.get_model_info(name).family for name in EVERY_BACKEND) == sorted(
        families)


def _first_of_each_kind():
    first = {}
    for name in MODELS:
        info = applications.get_model_info(name)
        first.setdefault((info.family, info.variant), name)
    return set(first.values())


TENSORFLOW_DEFAULT = _first_of_each_kind()


def _round_trip_param(name):
    if name in EVERY_BACKEND:
        return pytest.param(name, marks=pytest.mark.all_backends)
    if name in TENSORFLOW_DEFAULT:
        return pytest.param(name)
    return pytest.param(name, marks=[pytest.mark.large, pytest.mark.all_backends])


# One train step and two forward passes per model, each run the backend's cheapest way: eagerly on
# TensorFlow and PyTorch (no graph tracing), compiled on JAX (see tests.helpers). fit.py's tests
# cover the other path on each backend.
@pytest.mark.parametrize("name", [_round_trip_param(n) for n in MODELS])
def test_builds_trains_and_round_trips(name, tmp_path):
    info = applications.get_model_info(name)
    shape = info.test_input_shape
    model = applications.create_model(name, input_shape=shape, classes=5)
    rng = np.random.RandomState(0)
    x = rng.rand(2, *shape).astype("float32")
    y = np.array([1, 3])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                  run_eagerly=helpers.EAGER)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    before = helpers.forward(model, x)
    assert before.shape == (2, 5)
    assert np.isfinite(before).all()
    np.testing.assert_allclose(before.sum(axis=-1), 1.0, rtol=1e-4)
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    after = helpers.forward(restored, x)
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
