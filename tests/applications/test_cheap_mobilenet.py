"""Cheap-operation MobileNets: the cheap operations' exact semantics, strides, arguments.

Exact params/MACs of every reference row are checked by ``test_registry_models.py``.
"""

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree.applications import cheap_mobilenet
from tests import helpers

TABLE = "cheap operations (MobileNetV2/V3)"


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_every_row_is_attached_to_exactly_one_model():
    rows = applications.reference_rows(table=TABLE)
    attached = [
        r
        for name in applications.list_models()
        for r in applications.get_model_info(name).references
        if r.table == TABLE
    ]
    assert len(rows) == 25
    assert sorted(map(repr, attached)) == sorted(map(repr, rows))
    # The three identical files are one registered network.
    se8 = applications.get_model_info("cheap_mobilenetv3_se8_cifar")
    assert {r.model for r in se8.references} == {
        "cheapV3_8",
        "cheapV3_shuffle",
        "cheapV3_Reuse_Shuffle",
    }
    assert len({(r.params, r.flops) for r in se8.references}) == 1


def _submodel(model, first, last):
    return keras.Model(model.get_layer(first).input, model.get_layer(last).output)


def test_reuse_tiles_copy_major_then_activation():
    model = cheap_mobilenet.CheapMobileNetV3("cheap", input_shape=(32, 32, 3))
    block = model.get_layer("block2_tile")
    x = np.random.RandomState(0).normal(size=(1, 32, 32, 16)).astype("float32")
    tiled = _np(block([x] * 6))
    assert tiled.shape == (1, 32, 32, 96)
    np.testing.assert_array_equal(tiled[..., 16:32], x)
    np.testing.assert_array_equal(tiled[..., 80:96], x)
    names = [layer.name for layer in model.layers]
    assert "block2_expand" not in names and "block2_expand_bn" not in names
    assert model.get_layer("block2_expand_act").input is model.get_layer("block2_tile").output


def test_shuffle6_then_tile_order():
    model = cheap_mobilenet.CheapMobileNetV3("reuse_shuffle6", input_shape=(32, 32, 3))
    sub = _submodel(model, "block2_shuffle", "block2_tile")
    x = np.arange(24, dtype="float32").reshape(1, 1, 1, 24) * np.ones((1, 32, 32, 1), "float32")
    y = _np(sub(x))[0, 0, 0]
    order = [0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23]
    np.testing.assert_array_equal(y[:24], order)
    np.testing.assert_array_equal(y[120:], order)


def test_se_variants():
    cheap = cheap_mobilenet.CheapMobileNetV3("cheap", input_shape=(32, 32, 3))
    reduce = cheap.get_layer("block4_se_reduce")
    assert reduce.kernel.shape == (144, 36) and not reduce.use_bias
    names = [layer.name for layer in cheap.layers]
    assert "block4_se_gate" not in names and "block4_se_expand" not in names  # S1: no gate
    se8 = cheap_mobilenet.CheapMobileNetV3("cheap_se8", input_shape=(32, 32, 3))
    assert se8.get_layer("block4_se_reduce").kernel.shape == (144, 18)
    assert se8.get_layer("block4_se_tile").output.shape[-1] == 144
    base = cheap_mobilenet.CheapMobileNetV3("baseline", input_shape=(32, 32, 3))
    assert base.get_layer("block4_se_expand").kernel.shape == (18, 72)


def test_se_tile4_without_gate_scales_by_relu_of_fc():
    model = cheap_mobilenet.CheapMobileNetV3("cheap", input_shape=(32, 32, 3))
    sub = _submodel(model, "block4_se_pool", "block4_se_scale")
    x = np.random.RandomState(1).normal(size=(1, 16, 16, 144)).astype("float32")
    w = _np(model.get_layer("block4_se_reduce").kernel)
    s = np.maximum(x.mean(axis=(1, 2)) @ w, 0)
    np.testing.assert_allclose(
        _np(sub(x)), x * np.tile(s, 4)[:, None, None, :], rtol=1e-5, atol=1e-6
    )


def test_layouts_follow_the_one_rule_and_the_reference_rows():
    cifar = cheap_mobilenet.CheapMobileNetV3("cheap", input_shape=(32, 32, 3))
    assert cifar.get_layer("block15_add").output.shape[1:3] == (4, 4)
    auto = cheap_mobilenet.CheapMobileNetV3("cheap", input_shape=(64, 64, 3))
    assert auto.get_layer("block15_add").output.shape[1:3] == (8, 8)  # below 128: CIFAR layout
    ol = cheap_mobilenet.CheapMobileNetV3("ol", input_shape=(32, 32, 3))  # ImageNet layout only
    assert ol.get_layer("block15_add").output.shape[1:3] == (1, 1)
    with pytest.raises(ValueError, match="config"):
        cheap_mobilenet.CheapMobileNetV3("ol", config="cifar")
    # The repository's V2 hard-codes the CIFAR strides, also for its 224-px rows.
    v2 = applications.create_model(
        "cheap_baseline_mobilenetv2_cifar", input_shape=(224, 224, 3), classes=1000
    )
    assert v2.get_layer("last_conv").output.shape[1:3] == (28, 28)
    v2_imagenet = cheap_mobilenet.CheapMobileNetV2(
        "baseline", input_shape=(224, 224, 3), classes=1000
    )
    assert v2_imagenet.get_layer("last_conv").output.shape[1:3] == (7, 7)


def test_arguments_of_earlier_versions_keep_working():
    with pytest.warns(FutureWarning, match="'cifar_strides' is now 'config'"):
        legacy = cheap_mobilenet.CheapMobileNetV2(
            config="baseline", cifar_strides=True, input_shape=(224, 224, 3), classes=1000
        )
    assert legacy.get_layer("last_conv").output.shape[1:3] == (28, 28)
    assert legacy.get_layer("block1_expand").filters == 32  # the baseline network


def test_cheap_v2_shortcuts_are_parameter_free_channel_matches():
    model = cheap_mobilenet.CheapMobileNetV2("cheap", input_shape=(32, 32, 3))
    names = [layer.name for layer in model.layers]
    assert not any(n.endswith("_shortcut") for n in names)
    block2 = _submodel(model, "block2_shortcut_split", "block2_shortcut_concat")
    x = np.arange(16, dtype="float32").reshape(1, 1, 1, 16) * np.ones((1, 32, 32, 1), "float32")
    np.testing.assert_array_equal(_np(block2(x))[0, 0, 0], list(range(16)) + list(range(8)))
    block11 = _submodel(model, "block11_shortcut_split", "block11_shortcut_concat")
    x = np.arange(64, dtype="float32").reshape(1, 1, 1, 64) * np.ones((1, 8, 8, 1), "float32")
    np.testing.assert_array_equal(_np(block11(x))[0, 0, 0], list(range(64)) + list(range(32, 64)))


def test_cv3k_grouped_expansion_and_output_shuffle():
    model = cheap_mobilenet.CheapMobileNetV3("cv3k", input_shape=(64, 64, 3), classes=10)
    expand = model.get_layer("block4_expand")
    assert expand.groups == 18 and expand.kernel.shape == (1, 1, 8, 144)
    assert model.get_layer("block4_out_shuffle").groups == 6


def test_group_variant_uses_grouped_convs_from_block_8():
    model = cheap_mobilenet.CheapMobileNetV3("group", input_shape=(32, 32, 3))
    assert isinstance(model.get_layer("block7_dw"), keras.layers.DepthwiseConv2D)
    conv = model.get_layer("block8_dw")
    assert isinstance(conv, keras.layers.Conv2D) and conv.groups == 288
    assert conv.kernel.shape == (3, 3, 2, 576)


@pytest.mark.all_backends
def test_pooled_backbone_and_logits():
    model = cheap_mobilenet.CheapMobileNetV3(
        "cheap_se8", include_top=False, pooling="avg", input_shape=(32, 32, 3)
    )
    assert model.output.shape == (None, 960)
    logits = cheap_mobilenet.CheapMobileNetV2("cheap", classes=7, classifier_activation=None)
    y = helpers.forward(logits, np.zeros((2, 32, 32, 3), "float32"))
    assert y.shape == (2, 7) and np.isfinite(y).all()


@pytest.mark.parametrize(
    "builder,kwargs,match",
    [
        (cheap_mobilenet.CheapMobileNetV3, {"config": "v4"}, "config"),
        (cheap_mobilenet.CheapMobileNetV3, {"operations": "v4"}, "operations"),
        (cheap_mobilenet.CheapMobileNetV3, {"cifar_strides": "yes"}, "cifar_strides"),
        (cheap_mobilenet.CheapMobileNetV3, {"dropout_rate": 1.5}, "dropout_rate"),
        (cheap_mobilenet.CheapMobileNetV2, {"operations": "cheap_se8"}, "operations"),
        (cheap_mobilenet.CheapMobileNetV2, {"classes": -1}, "classes"),
    ],
)
def test_rejects_bad_arguments(builder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        builder(**kwargs)
