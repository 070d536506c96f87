"""Family-specific facts of the BSConv-library zoo (MobileNetV3-large, CIFAR ResNets and WRNs).

Exact params/FLOPs of the 18 paper rows, and build/train/round-trip on every backend, are tested for
every registered model in ``test_registry_models.py``; this file tests what is particular to the
family: feature-map sizes, the BSConv-S regulariser, padding, initialisers and argument errors.
"""

import math
import os

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from keras_padfree.applications import bsconv_mobilenetv3 as mbv3
from keras_padfree.applications import bsconv_resnet as resnet
from keras_padfree.layers import OrthonormalRegularizer

MBV3_STAGE_ENDS = (
    "stem",
    "stage1_unit1_add",
    "stage2_unit2_add",
    "stage3_unit3_add",
    "stage4_unit6_add",
    "stage5_unit3_add",
)


def _spatial(model, names):
    return [model.get_layer(n).output.shape[1] for n in names]


@pytest.mark.parametrize(
    "builder,shape,config,expected",
    [
        (mbv3.BSConvMobileNetV3LargePF, 32, "cifar", [32, 32, 32, 15, 7, 3]),
        (mbv3.BSConvMobileNetV3Large, 32, "cifar", [32, 32, 32, 16, 8, 4]),
        (mbv3.BSConvMobileNetV3LargePF, 224, "imagenet", [112, 112, 55, 27, 13, 6]),
        (mbv3.BSConvMobileNetV3Large, 224, "imagenet", [112, 112, 56, 28, 14, 7]),
    ],
)
def test_mobilenetv3_feature_map_sizes(builder, shape, config, expected):
    model = builder(input_shape=(shape, shape, 3), config=config)
    ends = MBV3_STAGE_ENDS
    if builder is mbv3.BSConvMobileNetV3Large:
        ends = ("stem_act",) + ends[1:]
    assert _spatial(model, ends) == expected
    assert model.get_layer("final_conv1_act").output.shape[1] == expected[-1]


def test_mobilenetv3_config_auto_follows_input_size():
    small = mbv3.BSConvMobileNetV3LargePF(input_shape=(32, 32, 3))
    large = mbv3.BSConvMobileNetV3LargePF(input_shape=(224, 224, 3))
    assert small.get_layer("stem").strides == 1
    assert large.get_layer("stem").strides == 2
    assert large.get_layer("stage2_unit1_conv2").output.shape[1] == 55


@pytest.mark.parametrize(
    "builder,ends,expected",
    [
        (
            resnet.CifarResNet20PF,
            ("stem", "stage1_unit3_relu", "stage2_unit3_relu", "stage3_unit3_relu"),
            [32, 32, 15, 7],
        ),
        (
            resnet.CifarResNet20,
            ("stem_act", "stage1_unit3_relu", "stage2_unit3_relu", "stage3_unit3_relu"),
            [32, 32, 16, 8],
        ),
        (
            resnet.CifarWRN40_3PF,
            ("stem", "stage1_unit6_add", "stage2_unit6_add", "stage3_unit6_add"),
            [32, 32, 15, 7],
        ),
        (
            resnet.CifarWRN40_8BSConvUPF,
            ("stem", "stage1_unit6_add", "stage2_unit6_add", "stage3_unit6_add"),
            [32, 32, 15, 7],
        ),
    ],
)
def test_resnet_feature_map_sizes(builder, ends, expected):
    model = builder(input_shape=(32, 32, 3))
    assert _spatial(model, ends) == expected


def _numpy_orthonormal_loss(model, alpha):
    total = 0.0
    for layer in model.layers:
        if layer.name.endswith("_conv3_conv"):
            kernel = keras.ops.convert_to_numpy(layer.kernel).astype("float64")
            w = kernel.reshape(-1, kernel.shape[-1]).T  # [C_out x C_mid], PyTorch's layout
            total += np.linalg.norm(w @ w.T - np.eye(w.shape[0]), ord="fro")
    return alpha * total


@pytest.mark.all_backends
def test_bsconv_s_regulariser_losses_match_numpy():
    model = applications.create_model(
        "bsconv_mobilenetv3_large_bsconvs_pf_cifar", input_shape=(32, 32, 3), classes=10
    )
    losses = model.losses
    assert len(losses) == 15
    regularised = [
        layer
        for layer in model.layers
        if isinstance(getattr(layer, "kernel_regularizer", None), OrthonormalRegularizer)
    ]
    assert sorted(layer.name for layer in regularised) == sorted(
        f"stage{s}_unit{u}_conv3_conv"
        for s, n in enumerate((1, 2, 3, 6, 3), start=1)
        for u in range(1, n + 1)
    )
    assert all(layer.kernel_regularizer.alpha == 0.1 for layer in regularised)
    value = float(sum(float(keras.ops.convert_to_numpy(v)) for v in losses))
    expected = _numpy_orthonormal_loss(model, 0.1)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    # The spec measured alpha * sum ~ 19.2 at initialisation for CIFAR MobileNetV3.
    assert 10.0 < value < 30.0


def test_plain_model_has_no_regulariser_and_alpha_is_configurable():
    plain = applications.create_model("bsconv_mobilenetv3_large_pf_cifar")
    assert len(plain.losses) == 0
    model = mbv3.BSConvMobileNetV3Large(
        input_shape=(32, 32, 3), bsconv_s=True, orthonormal_alpha=0.5
    )
    value = float(sum(float(keras.ops.convert_to_numpy(v)) for v in model.losses))
    np.testing.assert_allclose(value, _numpy_orthonormal_loss(model, 0.5), rtol=1e-5)


def _all_layers(model):
    return list(model._flatten_layers(include_self=False, recursive=True))


@pytest.mark.parametrize(
    "name",
    [
        "bsconv_mobilenetv3_large_pf_cifar",
        "bsconv_mobilenetv3_large_pf_dogs",
        "bsconv_resnet110_bsconvu_pf_cifar",
        "bsconv_wrn40_3_pf_cifar",
        "bsconv_wrn40_8_bsconvu_pf_cifar",
    ],
)
def test_padding_free_models_pad_no_stride2_conv(name):
    info = applications.get_model_info(name)
    model = applications.create_model(name, input_shape=info.test_input_shape)
    # No top-level zero padding; the only padded stride-2 convs are the 5x5 p1 depthwise convs
    # inside PaddingFreeDWConv, and the stem's 3x3 p1 conv at 224.
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in model.layers)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2):
            assert layer.padding == "valid", layer.name


@pytest.mark.parametrize(
    "name",
    ["bsconv_mobilenetv3_large_dogs", "bsconv_resnet20_cifar", "bsconv_wrn40_8_bsconvu_cifar"],
)
def test_original_models_pad_stride2_symmetrically(name):
    info = applications.get_model_info(name)
    model = applications.create_model(name, input_shape=info.test_input_shape)
    stride2 = [
        layer
        for layer in _all_layers(model)
        if isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2)
    ]
    assert stride2
    for layer in stride2:
        assert layer.padding == "valid", layer.name  # never Keras' bottom/right "same"
    assert any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in _all_layers(model))


def test_wrn40_8_bsconvu_head_projection_count():
    # The projection at the paper's HEAD (3x3/2/0, BSConv-U-replaced, + its own 1x1 of the
    # max-pool) gives the spec's 4,621,626 params: one more set of 1x1 shortcut convs than the row.
    model = resnet.BSConvCifarWRN(
        depth=40,
        width_factor=8,
        bsconv_u=True,
        padding_free=True,
        pf_projection="conv3x3",
        input_shape=(32, 32, 3),
    )
    assert profiling.count_params(model, "bsconv_profile") == 4_621_626
    flops = profiling.count_flops(model, "bsconv_profile")
    assert round(flops / 1e6, 1) == 679.0


def _trainable(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def test_stems():
    bsu = applications.create_model("bsconv_wrn40_8_bsconvu_pf_cifar").get_layer("stem")
    assert (bsu.ordering, bsu.first_conv, _trainable(bsu)) == ("pre", "bsconv_u", 944)
    wrn = applications.create_model("bsconv_wrn40_3_pf_cifar").get_layer("stem")
    assert (wrn.ordering, wrn.residual, _trainable(wrn)) == ("pre", True, 1184)
    res = applications.create_model("bsconv_resnet20_pf_cifar").get_layer("stem")
    assert (res.ordering, res.residual, _trainable(res)) == ("post", True, 1184)
    res110 = applications.create_model("bsconv_resnet110_bsconvu_pf_cifar").get_layer("stem")
    assert (res110.ordering, res110.first_conv, _trainable(res110)) == ("post", "bsconv_u", 944)
    mb = applications.create_model("bsconv_mobilenetv3_large_pf_cifar").get_layer("stem")
    assert (mb.activation, mb.residual, _trainable(mb)) == ("hard_silu", False, 1184)


def test_heads_and_batchnorm_settings():
    full = applications.create_model(
        "bsconv_mobilenetv3_large_pf_imagenet", input_shape=(64, 64, 3)
    )
    top = full.get_layer("final_conv2")
    assert top.units == 1280 and not top.use_bias
    assert full.get_layer("predictions").kernel.shape == (1280, 1000)
    light = applications.create_model("bsconv_mobilenetv3_large_dogs", input_shape=(64, 64, 3))
    with pytest.raises(ValueError):
        light.get_layer("final_conv2")
    assert light.get_layer("predictions").kernel.shape == (960, 120)
    assert light.get_layer("stage3_unit1_se").squeeze_channels == 18
    assert light.get_layer("stage5_unit2_se").squeeze_channels == 240
    for layer in _all_layers(light):
        if isinstance(layer, keras.layers.BatchNormalization):
            assert (layer.epsilon, layer.momentum) == (1e-5, 0.9), layer.name


def test_initialisers():
    model = mbv3.BSConvMobileNetV3Large(input_shape=(32, 32, 3), classes=100)
    dw = keras.ops.convert_to_numpy(model.get_layer("stage5_unit2_conv2_dw").kernel)
    # kaiming-uniform with fan-in k*k = 25, not Keras' k*k*C.
    assert np.abs(dw).max() <= math.sqrt(6 / 25) + 1e-6
    assert np.abs(dw).max() > 0.9 * math.sqrt(6 / 25)
    pred = model.get_layer("predictions")
    kernel = keras.ops.convert_to_numpy(pred.kernel)
    np.testing.assert_allclose(kernel.std(), math.sqrt(2 / (960 + 100)), rtol=0.05)
    assert np.abs(kernel).max() > 2.5 * math.sqrt(2 / (960 + 100))  # not truncated
    bias = keras.ops.convert_to_numpy(pred.bias)
    assert np.abs(bias).max() <= 1 / math.sqrt(960) and np.abs(bias).max() > 0
    bsu = resnet.CifarResNet110BSConvU(input_shape=(32, 32, 3))
    pw = keras.ops.convert_to_numpy(bsu.get_layer("stage3_unit2_conv1_conv").pointwise.kernel)
    assert np.abs(pw).max() <= 1 / math.sqrt(64) + 1e-6  # PyTorch default init, fan-in 64


@pytest.mark.parametrize(
    "builder,channels",
    [
        (mbv3.BSConvMobileNetV3LargePF, 960),
        (resnet.CifarResNet20PF, 64),
        (resnet.CifarWRN40_3, 192),
        (resnet.CifarWRN40_8BSConvUPF, 512),
    ],
)
def test_include_top_false_with_avg_pooling(builder, channels):
    model = builder(include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert model.output.shape == (None, channels)
    out = model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    assert out.shape == (2, channels)
    maps = builder(include_top=False, input_shape=(32, 32, 3))
    assert len(maps.output.shape) == 4


@pytest.mark.parametrize(
    "builder,kwargs,minimum",
    [
        (mbv3.BSConvMobileNetV3LargePF, {"input_shape": (14, 14, 3)}, 15),
        (mbv3.BSConvMobileNetV3LargePF, {"input_shape": (60, 60, 3), "config": "imagenet"}, 61),
        (resnet.CifarResNet20PF, {"input_shape": (6, 6, 3)}, 7),
        (resnet.CifarWRN40_3PF, {"input_shape": (6, 32, 3)}, 7),
    ],
)
def test_input_too_small_names_minimum(builder, kwargs, minimum):
    with pytest.raises(ValueError, match=f"at least {minimum}x{minimum}"):
        builder(**kwargs)
    ok = dict(kwargs, input_shape=(minimum, minimum, 3))
    assert builder(**ok).output.shape == (None, 100)


@pytest.mark.parametrize(
    "builder", [mbv3.BSConvMobileNetV3Large, resnet.CifarResNet20PF, resnet.BSConvCifarWRN]
)
@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"classes": 0}, "classes"),
        ({"pooling": "mean", "include_top": False}, "pooling"),
        ({"weights": "/nonexistent/model.weights.h5"}, "weights"),
        ({"weights": "imagenet"}, "weights"),
    ],
)
def test_shared_argument_errors(builder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        builder(input_shape=(32, 32, 3), **kwargs)


@pytest.mark.parametrize(
    "builder,kwargs,match",
    [
        (mbv3.BSConvMobileNetV3Large, {"head": "heavy"}, "head"),
        (mbv3.BSConvMobileNetV3Large, {"config": "tiny"}, "config"),
        (mbv3.BSConvMobileNetV3Large, {"bsconv_s": 1}, "bsconv_s"),
        (mbv3.BSConvMobileNetV3Large, {"orthonormal_alpha": -1.0}, "orthonormal_alpha"),
        (resnet.BSConvCifarResNet, {"depth": 21}, "depth"),
        (resnet.BSConvCifarWRN, {"depth": 38}, "depth"),
        (resnet.BSConvCifarWRN, {"width_factor": 0}, "width_factor"),
        (resnet.BSConvCifarWRN, {"pf_projection": "1x1", "padding_free": True}, "pf_projection"),
        (resnet.BSConvCifarResNet, {"bsconv_u": "yes"}, "bsconv_u"),
    ],
)
def test_family_argument_errors(builder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        builder(input_shape=(32, 32, 3), **kwargs)


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_weights_file_with_other_classes_is_rejected(tmp_path, suffix):
    source = resnet.CifarResNet20PF(input_shape=(32, 32, 3), classes=10)
    path = os.path.join(tmp_path, "resnet20" + suffix)
    if suffix == ".keras":
        source.save(path)
    else:
        source.save_weights(path)
    with pytest.raises(ValueError, match="class"):
        resnet.CifarResNet20PF(input_shape=(32, 32, 3), classes=5, weights=path)
    # Same classes: loads, and gives the source model's outputs.
    loaded = resnet.CifarResNet20PF(input_shape=(32, 32, 3), classes=10, weights=path)
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    # The backbone alone loads too from a .weights.h5 built without the top.
    if suffix == ".weights.h5":
        headless = resnet.CifarResNet20PF(input_shape=(32, 32, 3), include_top=False)
        path2 = os.path.join(tmp_path, "backbone.weights.h5")
        headless.save_weights(path2)
        reloaded = resnet.CifarResNet20PF(input_shape=(32, 32, 3), include_top=False, weights=path2)
        np.testing.assert_array_equal(
            reloaded.predict(x, verbose=0), headless.predict(x, verbose=0)
        )
