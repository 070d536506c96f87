"""torchvision-style MobileNetV3-large (second set): configurations, variants, quirks, arguments.

Exact counts of every registered variant are checked by test_registry_models.py.
"""

import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from keras_padfree.applications import MobileNetV3Large
from keras_padfree.applications import MobileNetV3LargePF
from keras_padfree.layers import AttentionDownsampling
from keras_padfree.layers import HybridStem
from keras_padfree.layers import PaddingFreeDWConv
from keras_padfree.layers import SqueezeExcite


def _row(model, variant, table):
    (row,) = applications.reference_rows(model, variant, table)
    return row


def test_pf_cifar_builder_reproduces_the_paper_row():
    model = MobileNetV3LargePF(input_shape=(32, 32, 3), classes=100)
    row = _row("cifar_mobilenetv3_large", "pf", "set2")
    assert profiling.count_params(model, "thop_0.0.31") == row.params == 4330852
    assert profiling.count_flops(model, "thop_0.0.31") == row.flops == 54733432
    assert model.get_layer("last_conv").output.shape[1:3] == (3, 3)
    assert model.get_layer("predictions").units == 100


def test_default_is_the_224_configuration():
    model = MobileNetV3LargePF(weights=None, classes=100)
    assert model.input_shape == (None, 224, 224, 3)
    assert model.get_layer("stem").output.shape[1:3] == (112, 112)
    # 112 -> 55 -> 27 -> 13 -> 6: blocks 2, 4, 7, 13 are padding-free.
    assert model.get_layer("block2_depthwise_pf").output.shape[1:3] == (55, 55)
    assert model.get_layer("last_conv").output.shape[1:3] == (6, 6)
    assert model.output_shape == (None, 100)


def test_explicit_config_wins_over_the_size_rule():
    model = MobileNetV3Large(input_shape=(64, 64, 3), classes=5, config="imagenet")
    assert model.get_layer("stem_conv").strides == (2, 2)
    model = MobileNetV3Large(input_shape=(64, 64, 3), classes=5)
    assert model.get_layer("stem_conv").strides == (1, 1)


def test_reference_quirks_of_the_pf_model():
    model = MobileNetV3LargePF(input_shape=(32, 32, 3), classes=10)
    stem = model.get_layer("stem")
    assert isinstance(stem, HybridStem)
    # The hybrid stem keeps PyTorch's default BN while the network uses eps 1e-3 / momentum 0.01.
    assert (stem.bn_epsilon, stem.bn_momentum, stem.activation) == (1e-5, 0.9, "hard_silu")
    assert model.get_layer("block1_depthwise_bn").epsilon == 1e-3
    assert model.get_layer("block1_depthwise_bn").momentum == 0.99
    pf = [layer for layer in model.layers if isinstance(layer, PaddingFreeDWConv)]
    assert [layer.name for layer in pf] == [
        "block4_depthwise_pf",
        "block7_depthwise_pf",
        "block13_depthwise_pf",
    ]
    for layer in pf:
        # Q1: the 3x3/2/0 pool also for the 5x5 convs; joined after BN and activation.
        assert (layer.shortcut_pool_size, layer.shortcut_padding) == (3, 0)
        assert layer.shortcut_position == "after_activation"
        assert (layer.bn_epsilon, layer.bn_momentum) == (1e-3, 0.99)
    assert [layer.kernel_size for layer in pf] == [5, 3, 5]
    se = [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]
    assert [layer.squeeze_channels for layer in se] == [24, 32, 32, 120, 168, 168, 240, 240]
    assert all(not layer.pool_is_module and layer.gate == "hard_sigmoid" for layer in se)


def test_effv2_variant_structure_and_other_resolutions():
    model = applications.create_model("mobilenetv3_large_effv2_ds_cifar")
    emb = [layer for layer in model.layers if isinstance(layer, AttentionDownsampling)]
    assert [(layer.name, layer.use_attention) for layer in emb] == [
        ("block4_embedding", False),
        ("block7_embedding", True),
        ("block13_embedding", True),
    ]
    assert all((layer.bn_epsilon, layer.bn_momentum) == (1e-3, 0.99) for layer in emb)
    assert tuple(emb[1].attention_biases.shape) == (8, 256)
    assert tuple(emb[2].attention_biases.shape) == (8, 64)
    for size in (64, 96):
        model = applications.create_model(
            "mobilenetv3_large_effv2_ds_cifar", input_shape=(size, size, 3), classes=5
        )
        table = model.get_layer("block7_embedding").attention_biases
        assert tuple(table.shape) == (8, (size // 2) ** 2)
        out = model.predict(np.zeros((1, size, size, 3), "float32"), verbose=0)
        assert out.shape == (1, 5)


def test_variants_by_keyword():
    stem_only = MobileNetV3Large(input_shape=(32, 32, 3), classes=100, stem="hybrid")
    assert stem_only.name == "mobilenetv3_large_stem_only"
    assert not any(isinstance(layer, PaddingFreeDWConv) for layer in stem_only.layers)
    row = _row("cifar_mobilenetv3_large", "stem_only", "ablation")
    assert profiling.count_flops(stem_only, "thop_0.0.31") == row.flops
    ds_only = MobileNetV3Large(input_shape=(32, 32, 3), classes=100, downsampling="padding_free")
    assert ds_only.name == "mobilenetv3_large_downsampling_only"
    assert not any(isinstance(layer, HybridStem) for layer in ds_only.layers)


def test_headless_and_pooling():
    model = MobileNetV3Large(input_shape=(32, 32, 3), include_top=False, pooling="avg")
    assert model.output_shape == (None, 960)
    model = MobileNetV3LargePF(input_shape=(32, 32, 3), include_top=False)
    assert model.output_shape == (None, 3, 3, 960)
    model = MobileNetV3Large(input_shape=(32, 32, 3), classes=7, classifier_activation=None)
    assert model.layers[-1].name == "predictions"


def test_bad_arguments():
    with pytest.raises(ValueError, match="stem"):
        MobileNetV3Large(stem="bsconv")
    with pytest.raises(ValueError, match="downsampling"):
        MobileNetV3Large(downsampling="strided")
    with pytest.raises(ValueError, match="dropout_rate"):
        MobileNetV3Large(dropout_rate=1.5)
    with pytest.raises(ValueError, match="classes"):
        MobileNetV3Large(classes=0)
    # 32 -> 15 -> 7 -> 3 needs 15 pixels on CIFAR; 7 pixels for the padded baseline (-> 4 -> 2 ->
    # 1).
    with pytest.raises(ValueError, match="at least 15x15"):
        MobileNetV3LargePF(input_shape=(14, 14, 3))
    MobileNetV3LargePF(input_shape=(15, 15, 3), classes=3)
    with pytest.raises(ValueError, match="at least"):
        MobileNetV3LargePF(input_shape=(40, 40, 3), config="imagenet")
