"""The registry API: names (one grammar, aliases of earlier versions), metadata, argument checks."""

import json
import os
import warnings

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree.applications import _registry
from keras_padfree.layers import _utils
from tests.conftest import REFERENCE_DIR

NAME = "bsconv_resnet20_pf_cifar"
FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "saved_architectures_v0.1.0.json")


def _old_names():
    with open(FIXTURE) as f:
        return json.load(f)["models"]


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
    unclaimed = [
        (r.table, r.model, r.variant)
        for r in applications.reference_rows()
        if (r.table, r.model, r.variant, r.input_size, r.classes) not in owners
    ]
    assert not unclaimed, unclaimed
    assert len(owners) == len(applications.reference_rows()) == 118


def test_every_name_follows_the_grammar():
    tokens = {v: t for v, t in _registry.VARIANT_TOKENS.items()}
    for name in applications.list_models():
        info = applications.get_model_info(name)
        dataset = name.rsplit("_", 1)[1]
        assert dataset in _registry.DATASETS, name
        assert info.dataset == _registry.DATASETS[dataset][0], name
        stem = name[: -len(dataset) - 1]
        token = tokens[info.variant]
        if token is None:
            assert not any(stem.endswith("_" + t) for t in tokens.values() if t), name
        else:
            assert stem.endswith("_" + token), name
        assert info.input_shape[0] == (224 if dataset in ("vegfru", "dogs", "imagenet") else 32)
        style = _registry.DATASETS[dataset][2]
        assert info.recipe is not None
        assert info.recipe == info.recipes.get(dataset, info.recipes[style]), name
    assert _registry.model_name("ghostnet", "cifar", "pf") == "ghostnet_pf_cifar"
    assert (
        _registry.model_name(
            "pydmobilenet29", "cifar", "orig", (_registry.width_token(0.25), "add")
        )
        == "pydmobilenet29_025_add_cifar"
    )
    assert [_registry.width_token(m) for m in (0.25, 0.5, 0.75, 1, 1.5)] == [
        "025",
        "050",
        "075",
        "100",
        "150",
    ]


def test_every_name_of_version_0_1_0_still_resolves_with_one_warning():
    old = _old_names()
    assert len(old) == 91
    renamed = {name: rec["name"] for name, rec in old.items() if name != rec["name"]}
    assert len(renamed) == 42
    assert renamed["ghostnet_pf"] == "ghostnet_pf_vegfru"
    assert renamed["bsconv_resnet20_cifar_pf"] == "bsconv_resnet20_pf_cifar"
    assert renamed["pydmobilenet29_025_plus_cifar"] == "pydmobilenet29_025_add_cifar"
    assert renamed["pyd_mobilenet29_05_cifar"] == "pyd_baseline_mobilenet29_050_cifar"
    assert renamed["pydnet_025_imagenet32"] == "pydmobilenet56_025_concat_imagenet32"
    _registry._WARNED.clear()
    for name, new in renamed.items():
        assert name not in applications.list_models()
        with pytest.warns(FutureWarning, match=f"'{name}' is now '{new}'"):
            assert applications.get_model_info(name).name == new
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the second use does not warn again
            assert applications.get_model_info(name).name == new
    for name in old:
        if name not in renamed:
            assert applications.get_model_info(name).name == name


def test_list_models_filters():
    assert NAME in applications.list_models()
    assert applications.list_models("bsconv_resnet20*") == [
        "bsconv_resnet20_cifar",
        "bsconv_resnet20_pf_cifar",
    ]
    set1 = applications.list_models(table="set1")
    assert NAME in set1 and len(set1) == 18
    assert applications.list_models("no_such_model*") == []
    assert len(applications.list_models(family="ghostnet")) == 7


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="bsconv_resnet20_pf_cifar") as err:
        applications.create_model("bsconv_resnet20_fp_cifar")
    assert "Unknown model name" in str(err.value)


def test_model_info_metadata():
    info = applications.get_model_info(NAME)
    assert info.variant == "pf"
    assert info.input_shape == (32, 32, 3)
    assert info.paper_top1 == 68.3
    assert info.recipe == "bsconv_set1" and info.recipes["large"] == "bsconv_set1_dogs"
    assert info.aliases == ("bsconv_resnet20_cifar_pf",)
    (row,) = info.references
    assert (row.params, row.flops, row.flops_convention) == (282138, 37802324, "bsconv_profile")


def test_create_model_overrides_defaults():
    model = applications.create_model(NAME, classes=10, classifier_activation=None)
    assert model.output.shape == (None, 10)
    assert model.name == NAME
    headless = applications.create_model(NAME, include_top=False, pooling="avg")
    assert headless.output.shape == (None, 64)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"classes": 0}, "classes"),
        ({"classes": 2.5}, "classes"),
        ({"pooling": "mean", "include_top": False}, "pooling"),
        ({"weights": "imagenet"}, "weights"),
        ({"weights": "/no/such/file.weights.h5"}, "does not exist"),
        ({"input_shape": (6, 6, 3)}, "at least 7x7"),
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"classifier_activation": "no_such_activation"}, "classifier_activation"),
        ({"include_preprocessing": "yes"}, "include_preprocessing"),
        ({"normalization": {"mean": [0.5] * 3, "std": [0.2] * 3}}, "include_preprocessing=True"),
        ({"include_preprocessing": True, "normalization": {"mean": 0.5}}, "normalization"),
        ({"include_preprocessing": True, "normalization": {"mean": 0.5, "std": 0}}, "positive"),
        ({"downsampling": "attention"}, "downsampling"),
        ({"stem": "fancy"}, "stem"),
        ({"padding_free": "yes"}, "padding_free"),
        ({"depth": 21}, "depth"),
    ],
)
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
        np.testing.assert_allclose(
            loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
        )
        with pytest.raises(ValueError, match="classes"):
            applications.create_model(NAME, classes=5, weights=path)
    backbone = applications.create_model(NAME, include_top=False, weights=h5)
    for layer in backbone.layers:
        for got, want in zip(layer.weights, model.get_layer(layer.name).weights):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
            )
    assert sum(len(layer.weights) for layer in backbone.layers) == len(model.weights) - 2


def test_make_divisible():
    assert _utils.make_divisible(72 * 0.25, 8) == 24
    assert _utils.make_divisible(480 * 0.25, 4) == 120
    assert _utils.make_divisible(3, 8) == 8


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Weights of NAME with 7 classes and of another model with 7 classes."""
    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for key, name in (("same", NAME), ("other", "bsconv_resnet20_cifar")):
        model = applications.create_model(name, classes=7)
        paths[key] = str(folder / f"{key}.weights.h5")
        model.save_weights(paths[key])
    model.save(str(folder / "same.keras"))
    paths["keras"] = str(folder / "same.keras")
    keras.backend.clear_session()
    return paths


def test_weights_of_another_architecture_are_named_as_such(saved):
    with pytest.raises(ValueError, match="holds another architecture") as err:
        applications.create_model(NAME, classes=7, weights=saved["other"])
    assert "classes" not in str(err.value).split("holds")[0]
    assert "tensors" in str(err.value)


def test_weights_with_another_number_of_classes_say_how_many(saved):
    for path in (saved["same"], saved["keras"]):
        with pytest.raises(ValueError, match="has a 7-class classifier.*classes=7"):
            applications.create_model(NAME, classes=5, weights=path)


@pytest.mark.parametrize(
    "suffix,body",
    [(".weights.h5", b"not an hdf5 file at all"), (".keras", b"PK\x03\x04 truncated zip")],
)
def test_a_damaged_weights_file_is_a_clear_error(tmp_path, suffix, body):
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(body)
    with pytest.raises(ValueError, match=r"Argument `weights` names .*damaged.* not a readable"):
        applications.create_model(NAME, weights=str(path))
