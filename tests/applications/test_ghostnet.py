"""GhostNet 1.0x (second set): configurations, variants, quirks, arguments.

Exact counts of every registered variant are checked by test_registry_models.py.
"""

import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from keras_padfree.applications import GhostNet
from keras_padfree.applications import GhostNetPF
from keras_padfree.layers import AttentionDownsampling
from keras_padfree.layers import GhostModule
from keras_padfree.layers import HybridStem
from keras_padfree.layers import PaddingFreeDWConv
from keras_padfree.layers import SqueezeExcite


def _row(model, variant, table):
    (row,) = applications.reference_rows(model, variant, table)
    return row


def test_pf_cifar_builder_reproduces_the_paper_row():
    model = GhostNetPF(input_shape=(32, 32, 3), classes=100)
    row = _row("cifar_ghostnet", "pf", "set2")
    assert profiling.count_params(model, "thop_0.0.31") == row.params == 4029800
    assert profiling.count_flops(model, "thop_0.0.31") == row.flops == 34757820
    # The reference's dead bn1 (32 weights) is not created: documented deviation.
    all_weights = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert all_weights == row.params_all_weights - 32
    info = applications.get_model_info("ghostnet_pf_cifar")
    assert info.deviations["params_all_weights"][0] == -32
    assert model.get_layer("block9_0_conv").output.shape[1:3] == (3, 3)


def test_default_is_the_224_configuration():
    model = GhostNetPF(weights=None, classes=100)
    assert model.input_shape == (None, 224, 224, 3)
    assert model.get_layer("stem").output.shape[1:3] == (112, 112)
    assert model.get_layer("block1_0_dw_pf").output.shape[1:3] == (55, 55)
    assert model.get_layer("block9_0_conv").output.shape[1:3] == (6, 6)
    assert model.output_shape == (None, 100)


def test_cifar_block_1_0_loses_its_depthwise_conv():
    cifar = GhostNet(input_shape=(32, 32, 3), classes=10)
    names = {layer.name for layer in cifar.layers}
    assert "block1_0_dw_conv" not in names
    assert cifar.get_layer("block1_0_shortcut_dw_conv").strides == (1, 1)
    imagenet = GhostNet(input_shape=(64, 64, 3), classes=10, config="imagenet")
    assert imagenet.get_layer("block1_0_dw_conv").strides == (2, 2)
    assert imagenet.get_layer("block1_0_shortcut_dw_conv").strides == (2, 2)


def test_reference_quirks_of_the_pf_model():
    model = GhostNetPF(input_shape=(32, 32, 3), classes=10)
    stem = model.get_layer("stem")
    assert isinstance(stem, HybridStem) and stem.activation == "relu"
    pf = [layer for layer in model.layers if isinstance(layer, PaddingFreeDWConv)]
    assert [layer.name for layer in pf] == ["block3_0_dw_pf", "block5_0_dw_pf", "block7_0_dw_pf"]
    for layer in pf:
        # No activation on GhostNet's depthwise path; the pool joins after BN.
        assert layer.activation is None and layer.shortcut_position == "after_bn"
        expected = (3, 0) if layer.kernel_size == 3 else (5, 1)  # k5: 5x5/2/1, unlike MNv3
        assert (layer.shortcut_pool_size, layer.shortcut_padding) == expected
    assert [layer.kernel_size for layer in pf] == [5, 3, 5]
    # The strided conv shortcuts use the reduced padding: k5 -> 1, k3 -> 0.
    assert model.get_layer("block3_0_shortcut_dw_pad").padding == ((1, 1), (1, 1))
    assert "block5_0_shortcut_dw_pad" not in {layer.name for layer in model.layers}
    se = [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]
    assert [layer.squeeze_channels for layer in se] == [20, 32, 120, 168, 168, 240, 240]
    assert all(layer.pool_is_module and layer.gate == "hard_sigmoid" for layer in se)
    ghosts = [layer for layer in model.layers if isinstance(layer, GhostModule)]
    assert len(ghosts) == 32
    assert model.get_layer("conv_head").use_bias


def test_effv2_variant_structure_and_other_resolutions():
    model = applications.create_model("ghostnet_effv2_ds_cifar")
    emb = [layer for layer in model.layers if isinstance(layer, AttentionDownsampling)]
    assert [(layer.name, layer.use_attention) for layer in emb] == [
        ("block3_0_embedding", False),
        ("block5_0_embedding", True),
        ("block7_0_embedding", True),
    ]
    assert all((layer.bn_epsilon, layer.bn_momentum) == (1e-5, 0.9) for layer in emb)
    for size in (64, 96):
        model = applications.create_model(
            "ghostnet_effv2_ds_cifar", input_shape=(size, size, 3), classes=5
        )
        table = model.get_layer("block7_0_embedding").attention_biases
        assert tuple(table.shape) == (8, (size // 4) ** 2)
        out = model.predict(np.zeros((1, size, size, 3), "float32"), verbose=0)
        assert out.shape == (1, 5)


def test_headless_and_bad_arguments():
    model = GhostNet(input_shape=(32, 32, 3), include_top=False, pooling="max")
    assert model.output_shape == (None, 960)
    with pytest.raises(ValueError, match="stem"):
        GhostNet(stem="ghost")
    with pytest.raises(ValueError, match="downsampling"):
        GhostNet(downsampling="avg")
    with pytest.raises(ValueError, match="pooling"):
        GhostNet(include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="at least 15x15"):
        GhostNetPF(input_shape=(14, 14, 3))
    GhostNetPF(input_shape=(15, 15, 3), classes=3)
