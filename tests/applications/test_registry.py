"""The registry API and the keras.applications-style argument checks every builder shares."""

import json

import numpy as np
import pytest

import keras

from keras_padfree import applications
from keras_padfree.applications import _common
from tests.conftest import REFERENCE_DIR

NAME = "bsconv_resnet20_cifar_pf"


def test_packaged_reference_counts_equal_the_shared_reference():
    import os

    shared = os.path.join(REFERENCE_DIR, "reference_counts.json")
    if not os.path.exists(shared):
        pytest.skip("shared/reference is not beside this checkout")
    packaged = os.path.join(os.path.dirname(applications.__file__), "reference_counts.json")
    with open(shared) as a, open(packaged) as b:
        assert json.load(a) == json.load(b)


def test_every_reference_row_belongs_to_exactly_one_registered_model():
    owners = {}
    for name in applications.list_models():
        for row in applications.get_model_info(name).references:
            key = (row.table, row.model, row.variant, row.input_size, row.classes)
            assert key not in owners, f"{key} attached to {owners.get(key)} and {name}"
            owners[key] = name
    # Rows no registered model claims yet are listed so that nothing silently drops out.
    unclaimed = [(r.table, r.model, r.variant) for r in applications.reference_rows()
                 if (r.table, r.model, r.variant, r.input_size, r.classes) not in owners]
    registered_families = {applications.get_model_info(n).family for n in applications.list_models()}
    assert registered_families, "no model registered"
    if len(registered_families) >= 10:  # the whole zoo is present: every row must be claimed
        assert not unclaimed, unclaimed


def test_list_models_filters():
    assert NAME in applications.list_models()
    assert applications.list_models("bsconv_resnet20*") == ["bsconv_resnet20_cifar",
                                                            "bsconv_resnet20_cifar_pf"]
    set1 = applications.list_models(table="set1")
    assert NAME in set1 and len(set1) == 18
    assert applications.list_models("no_such_model*") == []


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="bsconv_resnet20_cifar_pf") as err:
        applications.create_model("bsconv_resnet20_cifar_fp")
    assert "Unknown model name" in str(err.value)


def test_model_info_metadata():
    info = applications.get_model_info(NAME)
    assert info.variant == "pf"
    assert info.input_shape == (32, 32, 3)
    assert info.paper_top1 == 68.3
    (row,) = info.references
    assert (row.params, row.flops, row.flops_convention) == (282138, 37802324, "bsconv_profile")


def test_create_model_overrides_defaults():
    model = applications.create_model(NAME, classes=10, classifier_activation=None)
    assert model.output.shape == (None, 10)
    assert model.name == NAME
    headless = applications.create_model(NAME, include_top=False, pooling="avg")
    assert len(headless.output.shape) == 2


@pytest.mark.parametrize("kwargs,match", [
    ({"classes": 0}, "classes"),
    ({"classes": 2.5}, "classes"),
    ({"pooling": "mean", "include_top": False}, "pooling"),
    ({"weights": "imagenet"}, "weights"),
    ({"weights": "/no/such/file.weights.h5"}, "does not exist"),
    ({"input_shape": (6, 6, 3)}, "at least 7x7"),
    ({"input_shape": (32, 32)}, "input_shape"),
    ({"classifier_activation": "no_such_activation"}, "classifier_activation"),
])
def test_bad_arguments_raise_clear_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        applications.create_model(NAME, **kwargs)


def test_weights_round_trip_and_class_mismatch(tmp_path):
    model = applications.create_model(NAME, classes=7)
    h5 = str(tmp_path / "m.weights.h5")
    full = str(tmp_path / "m.keras")
    model.save_weights(h5)
    model.save(full)
    x = np.random.RandomState(0).rand(1, 32, 32, 3).astype("float32")
    for path in (h5, full):
        loaded = applications.create_model(NAME, classes=7, weights=path)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="classes"):
            applications.create_model(NAME, classes=5, weights=path)
    backbone = applications.create_model(NAME, include_top=False, weights=h5)
    assert backbone is not None


def test_min_input_size_helper():
    assert _common.min_input_size([(3, 2, 0)] * 3) == 15  # 15 -> 7 -> 3 -> 1
    assert _common.min_input_size([(5, 2, 1)] * 2) == 7   # 7 -> 3 -> 1
    assert _common.make_divisible(72 * 0.25, 8) == 24
    keras.backend.clear_session()
