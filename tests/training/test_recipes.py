"""Recipes as model metadata: ``default_recipe_for`` reads ``ModelInfo.recipes``.

The rule it replaced picked by the family name's prefix; it is kept here, verbatim, as the
reference that the metadata must reproduce for every registered model on every dataset.
"""

import pytest

from keras_padfree import applications
from keras_padfree import normalization
from keras_padfree.data import augment
from keras_padfree.data import get_dataset_spec
from keras_padfree.data import list_datasets
from keras_padfree.training import default_recipe_for
from keras_padfree.training import get_recipe
from keras_padfree.training import list_recipes


def _prefix_rule(model_info, dataset):
    """``default_recipe_for`` before recipes were model metadata (keras_padfree 9d7ac73)."""
    spec = get_dataset_spec(dataset)
    if dataset == "digits":
        return "digits"
    family = (model_info.family if model_info is not None else "") or ""
    small = spec.style == "small"
    if family.startswith("bsconv"):
        return "bsconv_set1" if small else "bsconv_set1_dogs"
    if family.startswith("pyd"):
        return "pydmobilenet_imagenet32" if dataset.startswith("imagenet") else "pydmobilenet_cifar"
    if "cheap" in family:
        return "cheap_ops_cifar" if small else "cheap_ops_imagenet"
    if model_info is not None and family:
        return "second_set_cifar" if small else "vegfru292"
    return spec.default_recipe


def _mismatches(models):
    found = []
    for name in models:
        info = applications.get_model_info(name)
        for dataset in list_datasets():
            new, old = default_recipe_for(info, dataset), _prefix_rule(info, dataset)
            if new != old:
                found.append(f"{name} on {dataset}: {new} (the prefix rule: {old})")
    return found


def _pyd(name):
    return applications.get_model_info(name).family == "pydmobilenet"


def test_every_model_gets_the_prefix_rules_recipe_on_every_dataset():
    models = applications.list_models()
    assert len(models) > 80
    # Both styles and every registry dataset token are covered by the datasets.
    specs = [get_dataset_spec(d) for d in list_datasets()]
    assert {s.style for s in specs} == {"small", "large"}
    assert {s.registry_dataset for s in specs} >= {"cifar", "imagenet32", "dogs", "imagenet"}
    assert _mismatches([m for m in models if not _pyd(m)]) == []


def test_pydmobilenet_models_get_the_prefix_rules_recipe_on_every_dataset():
    models = [m for m in applications.list_models() if _pyd(m)]
    assert models
    assert _mismatches(models) == []


def test_the_rule_reads_the_metadata():
    """Dataset token first, then style; the digits keep theirs; no metadata: the dataset's."""
    info = applications.get_model_info("ghostnet_pf_cifar")
    assert info.recipe == "second_set_cifar"
    assert info.recipes == {"small": "second_set_cifar", "large": "vegfru292"}

    class Info:  # a model stating a recipe for one dataset and one style
        recipes = {
            "dogs": "bsconv_set1_dogs",
            "large": "cheap_ops_imagenet",
            "small": "cheap_ops_cifar",
        }

    assert default_recipe_for(Info, "stanford_dogs") == "bsconv_set1_dogs"
    assert default_recipe_for(Info, "imagenet2012") == "cheap_ops_imagenet"
    assert default_recipe_for(Info, "cifar10") == "cheap_ops_cifar"
    assert default_recipe_for(Info, "digits") == "digits"
    Info.recipes = {}
    for dataset in list_datasets():
        assert default_recipe_for(Info, dataset) == get_dataset_spec(dataset).default_recipe
        assert default_recipe_for(None, dataset) == get_dataset_spec(dataset).default_recipe
    Info.recipes = {"small": "no_such_recipe"}
    with pytest.raises(ValueError, match="no_such_recipe"):
        default_recipe_for(Info, "cifar100")


def test_every_registered_models_recipes_exist():
    names = set(list_recipes())
    for name in applications.list_models():
        info = applications.get_model_info(name)
        assert info.recipe in names, name
        assert set(info.recipes.values()) <= names, name


def test_the_normalisation_constants_come_from_one_place():
    for name in (
        "CIFAR100_MEAN",
        "CIFAR100_STD",
        "CIFAR10_GLUON_MEAN",
        "CIFAR10_GLUON_STD",
        "IMAGENET_MEAN",
        "IMAGENET_STD",
        "CIFAR100_ROUNDED_MEAN",
        "CIFAR100_ROUNDED_STD",
    ):
        assert getattr(augment, name) is getattr(normalization, name), name
    prep = get_recipe("cheap_ops_cifar").preprocessing
    assert (prep.mean, prep.std) == normalization.CIFAR100_ROUNDED
    assert get_recipe("second_set_cifar").preprocessing.mean == normalization.CIFAR100_MEAN
    assert get_recipe("pydmobilenet_cifar").preprocessing.std == normalization.CIFAR10_GLUON_STD
    assert get_recipe("vegfru292").preprocessing.mean == normalization.IMAGENET_MEAN
