"""Registry-wide tests: every registered model, whatever its family.

One build per model (at its registered input and classes) checks

* that files saved by earlier versions keep loading: the model's weight paths and shapes equal
  those of version 0.1.0 (``fixtures/saved_architectures_v0.1.0.json``);
* its counts against the exact integers of every paper row at that input and classes (rows at
  other inputs build once more);
* that its initial values are independent: no two weight tensors start identical;
* for a padding-free model, that its downsampling is padding-free (tests/applications/
  test_padding_free_property.py).

Then each model builds, trains one step and round-trips through ``.keras`` (every model on
TensorFlow with --run-large; a representative set on every backend).
"""

import hashlib
import json
import os

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from tests import helpers
from tests.applications.test_padding_free_property import PF_VARIANTS
from tests.applications.test_padding_free_property import assert_padding_free

MODELS = applications.list_models()
FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "saved_architectures_v0.1.0.json")
with open(FIXTURE) as _f:
    SAVED = {rec["name"]: rec for rec in json.load(_f)["models"].values()}


def _expected(info, row, field):
    value = getattr(row, field)
    delta = info.deviations.get(field, (0, ""))[0]
    return None if value is None else value + delta


def _check_counts(model, info, row):
    convention = profiling.normalize_convention(row.flops_convention)
    where = f"{info.name} at {row.input_size}px/{row.classes} classes ({row.table})"
    assert profiling.count_params(model, convention) == _expected(info, row, "params"), where
    assert profiling.count_flops(model, convention) == _expected(info, row, "flops"), where
    if row.params_all_weights is not None:
        all_weights = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert all_weights == _expected(info, row, "params_all_weights"), where


def fingerprint(model):
    layout = json.dumps([(w.path, tuple(w.shape)) for w in model.weights])
    return hashlib.sha256(layout.encode()).hexdigest()[:16]


def _value_hashes(model):
    """Hashes of the initial values of every weight that is not a constant (zeros, ones, ...)."""
    hashes = {}
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w.value)
        if value.size > 1 and value.min() != value.max():
            hashes.setdefault(hashlib.sha256(value.tobytes()).hexdigest(), []).append(w.path)
    return hashes


def _at_registered(info, row):
    return (row.input_size, row.classes) == (info.input_shape[0], info.classes)


@pytest.mark.parametrize("name", MODELS)
def test_registered_model(name):
    info = applications.get_model_info(name)
    model = applications.create_model(name)
    saved = SAVED.get(name)
    if saved is not None:
        assert fingerprint(model) == saved["fingerprint"], (
            f"{name}: weight paths or shapes differ from version 0.1.0; its saved .weights.h5 "
            "files would no longer load"
        )
        assert len(model.weights) == saved["weights"]
        assert (
            sum(int(np.prod(w.shape)) for w in model.trainable_weights) == saved["trainable_params"]
        )
    for row in info.references:
        if _at_registered(info, row):
            _check_counts(model, info, row)
    duplicates = [paths for paths in _value_hashes(model).values() if len(paths) > 1]
    assert not duplicates, f"{name}: weights that start identical: {duplicates}"
    if info.variant in PF_VARIANTS:
        assert_padding_free(model, info)


OTHER_ROWS = [
    pytest.param(name, i, id=f"{name}-{row.input_size}px-{row.classes}cls")
    for name in MODELS
    for i, row in enumerate(applications.get_model_info(name).references)
    if not _at_registered(applications.get_model_info(name), row)
]


@pytest.mark.parametrize("name,row_index", OTHER_ROWS)
def test_counts_of_rows_at_other_inputs(name, row_index):
    info = applications.get_model_info(name)
    row = info.references[row_index]
    model = applications.create_model(
        name, input_shape=(row.input_size, row.input_size, 3), classes=row.classes
    )
    _check_counts(model, info, row)


def test_every_model_of_version_0_1_0_is_registered():
    assert set(SAVED) <= set(MODELS)
    assert len(SAVED) == 91


# Every model runs this test with --run-large on every backend. Without it (every CI run): one
# model per family on every backend (its padding-free variant where it has one), and on TensorFlow
# also one model of every other (family, variant) kind: the one with the fewest reference FLOPs
# (depth drives the cost of this test; ResNet-110 costs ten times ResNet-20 and tests nothing more).
EVERY_BACKEND = {
    "bsconv_mobilenetv3_large_bsconvs_pf_cifar",
    "bsconv_resnet20_pf_cifar",
    "bsconv_wrn40_8_bsconvu_pf_cifar",
    "mobilenetv3_large_pf_cifar",
    "ghostnet_pf_cifar",
    "parc_mobilenetv2_pf_cifar",
    "shufflenetv2_pf_cifar",
    "pydmobilenet29_025_concat_pf_cifar",
    "cheap_mobilenetv3_se8_cifar",
    "cheap_mobilenetv2_cifar",
}


def _kind(name):
    info = applications.get_model_info(name)
    return info.family, info.variant


def test_every_family_runs_on_every_backend():
    assert EVERY_BACKEND <= set(MODELS)
    families = {applications.get_model_info(name).family for name in MODELS}
    assert sorted(applications.get_model_info(name).family for name in EVERY_BACKEND) == sorted(
        families
    )


def _cheapest_of_each_other_kind():
    covered = {_kind(name) for name in EVERY_BACKEND}
    cheapest = {}
    for name in MODELS:
        kind = _kind(name)
        if kind in covered:
            continue
        flops = min((r.flops for r in applications.get_model_info(name).references), default=0)
        cheapest[kind] = min(cheapest.get(kind, (flops, name)), (flops, name))
    return {name for _, name in cheapest.values()}


TENSORFLOW_DEFAULT = _cheapest_of_each_other_kind()


def test_every_kind_of_model_round_trips_on_tensorflow_by_default():
    kinds = {_kind(name) for name in MODELS}
    assert {_kind(name) for name in EVERY_BACKEND | TENSORFLOW_DEFAULT} == kinds
    assert len(EVERY_BACKEND | TENSORFLOW_DEFAULT) == len(kinds)  # one model per kind
    assert "bsconv_resnet20_cifar" in TENSORFLOW_DEFAULT  # not ResNet-110


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
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        run_eagerly=helpers.EAGER,
    )
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    before = helpers.forward(model, x)
    assert before.shape == (2, 5)
    assert np.isfinite(before).all()
    np.testing.assert_allclose(before.sum(axis=-1), 1.0, rtol=1e-4)
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    if helpers.EAGER:
        after = helpers.forward(restored, x)
    else:
        # JAX: the restored weights through the program compiled above (compiling the restored
        # model's own would double the test's time); the restored architecture computing the same
        # is checked on TensorFlow and PyTorch.
        assert [w.path for w in restored.weights] == [w.path for w in model.weights]
        model.set_weights(restored.get_weights())
        after = helpers.forward(model, x)
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(EVERY_BACKEND))
def test_two_builds_start_from_different_weights(name):
    a = _value_hashes(applications.create_model(name))
    b = _value_hashes(applications.create_model(name))
    assert a and not set(a) & set(b), f"{name}: two builds share initial values"
