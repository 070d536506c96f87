"""Functional blocks of the torchvision-style MobileNetV3-large of the paper's second set.

Every function takes a tensor and returns a tensor; layer names are ``f"{name}_..."`` so a model's
layer names are deterministic. Initialisers follow torchvision: convs kaiming-normal
(``mode="fan_out"``), BN gamma 1 / beta 0, Linear N(0, 0.01).
"""

import keras

from keras_padfree.layers import _utils
from keras_padfree.layers.attention_downsampling import AttentionDownsampling
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv
from keras_padfree.layers.squeeze_excite import SqueezeExcite

# torchvision's MobileNetV3 BatchNorm: eps 1e-3, PyTorch momentum 0.01 (= Keras 0.99).
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99

# (kernel, expanded, out, use_se, activation, imagenet stride) of blocks 1..15 (MobileNetV3-large).
LARGE_BLOCKS = (
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hard_silu", 2),
    (3, 200, 80, False, "hard_silu", 1),
    (3, 184, 80, False, "hard_silu", 1),
    (3, 184, 80, False, "hard_silu", 1),
    (3, 480, 112, True, "hard_silu", 1),
    (3, 672, 112, True, "hard_silu", 1),
    (5, 672, 160, True, "hard_silu", 2),
    (5, 960, 160, True, "hard_silu", 1),
    (5, 960, 160, True, "hard_silu", 1),
)


def conv_initializer():
    """PyTorch ``kaiming_normal_(mode="fan_out")`` for a Keras Conv2D kernel ``(kh, kw, I, O)``."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def depthwise_initializer():
    """PyTorch ``kaiming_normal_(mode="fan_out")`` of a depthwise weight: fan = ``C * kh * kw``.

    That is the fan-*in* of Keras' depthwise layout ``(kh, kw, C, 1)``.
    """
    return keras.initializers.VarianceScaling(2.0, mode="fan_in", distribution="untruncated_normal")


def dense_initializer():
    """torchvision's ``nn.init.normal_(m.weight, 0, 0.01)`` for the Linear layers."""
    return keras.initializers.RandomNormal(0.0, 0.01)


def batch_norm(name):
    return _utils.batch_norm(BN_EPSILON, BN_MOMENTUM, name=name)


def squeeze_channels(expanded):
    """torchvision's ``_make_divisible(expanded // 4, 8)``."""
    from keras_padfree.applications._common import make_divisible  # avoids an import cycle

    return make_divisible(expanded // 4, 8)


def conv_bn_act(x, filters, kernel_size, strides, activation, *, name):
    """``act(BN(conv(x)))``, no bias, PyTorch's symmetric padding ``(k - 1) // 2``."""
    x, padding = _utils.pad_for_conv(x, kernel_size, strides, (kernel_size - 1) // 2, name)
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                            kernel_initializer=conv_initializer(), name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    act = _utils.activation_layer(activation, f"{name}_act")
    return act(x) if act is not None else x


def depthwise_bn_act(x, kernel_size, strides, activation, *, padding_free, name):
    """The depthwise conv of an inverted residual with its BN and activation.

    Stride 1, or stride 2 without ``padding_free``: symmetric padding ``(k - 1) // 2``. Stride 2
    with ``padding_free``: :class:`PaddingFreeDWConv` (k3: padding 0, k5: padding 1) plus a
    **3x3/2/0** max-pool of the input added after the activation, for k5 as well (the reference's
    5x5/2/1 pool is overwritten by a 3x3/2/0 one, quirk Q1; the sizes agree).
    """
    if strides == 2 and padding_free:
        return PaddingFreeDWConv(
            kernel_size=kernel_size, activation=activation, shortcut_position="after_activation",
            shortcut_pool_size=3, shortcut_padding=0, bn_epsilon=BN_EPSILON,
            bn_momentum=BN_MOMENTUM, depthwise_initializer=depthwise_initializer(),
            name=f"{name}_pf",
        )(x)
    x, padding = _utils.pad_for_conv(x, kernel_size, strides, (kernel_size - 1) // 2, name)
    x = keras.layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding,
                                     use_bias=False, depthwise_initializer=depthwise_initializer(),
                                     name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return _utils.activation_layer(activation, f"{name}_act")(x)


def inverted_residual(x, *, kernel_size, expanded, filters, use_se, activation, strides,
                      padding_free, name):
    """torchvision's ``InvertedResidual``: expand 1x1, depthwise, SE, project 1x1, residual.

    The expand conv is omitted when ``expanded`` equals the input channels (block 1). SE squeezes
    to ``make_divisible(expanded // 4, 8)`` with ReLU, gates with hard-sigmoid, and pools with a
    functional ``F.adaptive_avg_pool2d`` (``pool_is_module=False``: thop 0.0.31 does not count it).
    The residual is added when the stride is 1 and the channels do not change.
    """
    in_channels = int(x.shape[-1])
    shortcut = x
    if expanded != in_channels:
        x = conv_bn_act(x, expanded, 1, 1, activation, name=f"{name}_expand")
    x = depthwise_bn_act(x, kernel_size, strides, activation, padding_free=padding_free,
                         name=f"{name}_depthwise")
    if use_se:
        x = SqueezeExcite(squeeze_channels(expanded), activation="relu", gate="hard_sigmoid",
                          pool_is_module=False, kernel_initializer=conv_initializer(),
                          name=f"{name}_se")(x)
    x = conv_bn_act(x, filters, 1, 1, None, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def attention_embedding(x, filters, *, use_attention, name):
    """The reference's EfficientFormerV2 ``Embedding`` replacing a whole stride-2 block.

    MobileNetV3 passes its own BN (eps 1e-3, momentum 0.01) to the embedding's conv-branch BN; the
    BNs inside the attention keep PyTorch's defaults.
    """
    return AttentionDownsampling(
        filters, use_attention=use_attention, bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM,
        kernel_initializer=conv_initializer(), name=name,
    )(x)
