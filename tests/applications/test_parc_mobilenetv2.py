"""ParC-MobileNetV2: builders, configurations, ParC kernel sizing, input sizes, argument errors.

The exact counts of every registered variant are checked by ``test_registry_models.py``; here the
public builders are checked directly (defaults, automatic configuration) plus the behaviour the
counts cannot see.
"""

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from keras_padfree.applications import ParCMobileNetV2
from keras_padfree.applications import ParCMobileNetV2PF
from keras_padfree.layers import AttentionDownsampling
from keras_padfree.layers import HybridStem
from keras_padfree.layers import PaddingFreeDWConv
from keras_padfree.layers import ParCConv


def _row(model, variant):
    (row,) = applications.reference_rows(model, variant)
    return row


def _assert_counts(model, row):
    assert profiling.count_params(model, "thop_0.0.31") == row.params
    assert profiling.count_flops(model, "thop_0.0.31") == row.flops
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == row.params_all_weights


def _parc_layers(model):
    return [layer for layer in model.layers if isinstance(layer, ParCConv)]


def test_pf_builder_at_32_is_the_paper_cifar_row():
    model = ParCMobileNetV2PF(input_shape=(32, 32, 3), classes=100)  # config="auto" -> cifar
    _assert_counts(model, _row("cifar_parc_mobilenetv2", "pf"))


def test_default_input_is_224_vegfru_configuration():
    model = ParCMobileNetV2(classes=292)
    assert tuple(model.input.shape) == (None, 224, 224, 3)
    _assert_counts(model, _row("parc_mobilenetv2", "orig"))


@pytest.mark.parametrize(
    "kwargs,size,expected",
    [
        ({"config": "cifar"}, 32, [8, 8, 8, 8, 8, 8, 4, 4]),
        ({"config": "cifar", "pf": True}, 32, [7, 7, 7, 7, 7, 7, 3, 3]),
        ({"config": "cifar", "downsampling": "padding_free"}, 32, [7, 7, 7, 7, 7, 7, 3, 3]),
        ({"config": "cifar", "stem": "hybrid"}, 32, [8, 8, 8, 8, 8, 8, 4, 4]),
        ({"config": "cifar", "downsampling": "attention"}, 32, [8, 8, 8, 8, 8, 8, 4, 4]),
        ({"config": "imagenet"}, 224, [14, 14, 14, 14, 14, 14, 7, 7]),
        ({"config": "imagenet", "pf": True}, 224, [13, 13, 13, 13, 13, 13, 6, 6]),
        ({"config": "cifar"}, 64, [16, 16, 16, 16, 16, 16, 8, 8]),
    ],
)
def test_parc_kernels_follow_the_feature_maps(kwargs, size, expected):
    kwargs = dict(kwargs)
    builder = ParCMobileNetV2PF if kwargs.pop("pf", False) else ParCMobileNetV2
    model = builder(input_shape=(size, size, 3), classes=10, **kwargs)
    layers = _parc_layers(model)
    assert [layer.kernel_size for layer in layers] == expected
    # Positional embeddings on the first ParC block of each stage (blocks 9, 13, 16), not block 10.
    with_pe = sorted({layer.name.split("_")[0] for layer in layers if layer.use_pe})
    assert with_pe == ["block13", "block16", "block9"]


def test_variants_have_the_expected_layers():
    orig = ParCMobileNetV2(input_shape=(32, 32, 3), classes=10)
    assert not any(isinstance(layer, (HybridStem, PaddingFreeDWConv)) for layer in orig.layers)
    pf = ParCMobileNetV2PF(input_shape=(32, 32, 3), classes=10)
    assert [layer.name for layer in pf.layers if isinstance(layer, HybridStem)] == ["stem"]
    pf_dw = [layer for layer in pf.layers if isinstance(layer, PaddingFreeDWConv)]
    assert [layer.name for layer in pf_dw] == [
        "block4_depthwise_pf",
        "block7_depthwise_pf",
        "block14_depthwise_pf",
    ]
    assert all(
        layer.shortcut_position == "after_activation" and layer.activation == "relu6"
        for layer in pf_dw
    )
    # The padding-free network has no zero padding and no stride-2 "same" conv anywhere.
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in pf.layers)
    effv2 = ParCMobileNetV2(input_shape=(32, 32, 3), classes=10, downsampling="attention")
    emb = [layer for layer in effv2.layers if isinstance(layer, AttentionDownsampling)]
    assert [(layer.name, layer.use_attention, layer.filters) for layer in emb] == [
        ("block4_embedding", False, 32),
        ("block7_embedding", True, 64),
        ("block14_embedding", True, 160),
    ]
    imagenet_pf = ParCMobileNetV2PF(input_shape=(224, 224, 3), classes=10)
    assert len([layer for layer in imagenet_pf.layers if isinstance(layer, PaddingFreeDWConv)]) == 4
    assert imagenet_pf.get_layer("stem").strides == 2
    assert tuple(imagenet_pf.get_layer("head_conv").output.shape) == (None, 6, 6, 1280)


@pytest.mark.parametrize(
    "builder,kwargs,size,out",
    [
        (ParCMobileNetV2, {}, 64, 8),  # auto -> cifar: 64 -> 32 -> 16 -> 8
        pytest.param(ParCMobileNetV2PF, {}, 64, 7, marks=pytest.mark.large),  # 64 -> 31 -> 15 -> 7
        (ParCMobileNetV2, {}, 128, 4),  # auto -> imagenet: 128 -> 4
        # 128 -> 64 -> 31 -> 15 -> 7 -> 3
        pytest.param(ParCMobileNetV2PF, {}, 128, 3, marks=pytest.mark.large),
        pytest.param(ParCMobileNetV2PF, {"config": "imagenet"}, 64, 1, marks=pytest.mark.large),
        pytest.param(ParCMobileNetV2, {"config": "cifar"}, 96, 12, marks=pytest.mark.large),
        pytest.param(
            ParCMobileNetV2,
            {"downsampling": "attention", "config": "cifar"},
            64,
            8,
            marks=pytest.mark.large,
        ),
    ],
)
def test_builds_and_runs_at_other_input_sizes(builder, kwargs, size, out):
    model = builder(input_shape=(size, size, 3), classes=7, **kwargs)
    assert tuple(model.get_layer("head_conv").output.shape) == (None, out, out, 1280)
    x = np.random.RandomState(0).rand(1, size, size, 3).astype("float32")
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == (1, 7) and np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "builder,kwargs,minimum",
    [
        (ParCMobileNetV2PF, {"config": "cifar"}, 15),
        (ParCMobileNetV2PF, {"config": "imagenet"}, 61),
        (ParCMobileNetV2, {"config": "cifar", "downsampling": "padding_free"}, 15),
        (ParCMobileNetV2, {"config": "cifar", "downsampling": "attention"}, 5),
    ],
)
def test_too_small_input_is_a_clear_error(builder, kwargs, minimum):
    builder(input_shape=(minimum, minimum, 3), classes=5, **kwargs)
    with pytest.raises(ValueError, match=f"at least {minimum}x{minimum}"):
        builder(input_shape=(minimum - 1, minimum - 1, 3), classes=5, **kwargs)


def test_dynamic_input_size_is_a_clear_error():
    with pytest.raises(ValueError, match="height and width must be known"):
        ParCMobileNetV2(input_shape=(None, None, 3), config="cifar")


def test_bad_arguments():
    with pytest.raises(ValueError, match="`stem`"):
        ParCMobileNetV2(input_shape=(32, 32, 3), stem="fancy")
    with pytest.raises(ValueError, match="`downsampling`"):
        ParCMobileNetV2(input_shape=(32, 32, 3), downsampling="strided")
    with pytest.raises(ValueError, match="`config`"):
        ParCMobileNetV2(input_shape=(32, 32, 3), config="cifar10")
    with pytest.raises(ValueError, match="`dropout_rate`"):
        ParCMobileNetV2(input_shape=(32, 32, 3), dropout_rate=1.5)
    with (
        pytest.warns(FutureWarning, match="'dropout' is now 'dropout_rate'"),
        pytest.raises(ValueError, match="`dropout_rate`"),
    ):
        ParCMobileNetV2(input_shape=(32, 32, 3), dropout=1.5)
    with pytest.raises(ValueError, match="`pooling`"):
        ParCMobileNetV2PF(input_shape=(32, 32, 3), include_top=False, pooling="mean")


def test_headless_and_pooling():
    model = ParCMobileNetV2PF(input_shape=(32, 32, 3), include_top=False)
    assert tuple(model.output.shape) == (None, 3, 3, 1280)
    model = ParCMobileNetV2(input_shape=(32, 32, 3), include_top=False, pooling="avg")
    assert tuple(model.output.shape) == (None, 1280)
