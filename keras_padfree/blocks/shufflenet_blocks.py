"""Functional blocks of ShuffleNetV2 (torchvision layout), plus the functional global mean pool.

Every function takes a tensor and returns a tensor; layer names are ``f"{name}_..."``.
Initialisers are PyTorch's defaults (the reference sets none): every conv and the classifier
weight uniform in ``+-1/sqrt(fan_in)`` with PyTorch's fan-in (``kh * kw * in / groups``), BN
gamma 1, beta 0.
"""

import keras

from keras_padfree import profiling
from keras_padfree.layers import _utils
from keras_padfree.layers.channel_shuffle import ChannelShuffle, ChannelSplit
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv


@keras.saving.register_keras_serializable(package="keras_padfree")
class SpatialMean(keras.layers.GlobalAveragePooling2D):
    """Global average pooling that the reference computed with a functional call.

    Numerically :class:`keras.layers.GlobalAveragePooling2D`. ShuffleNetV2 pools with
    ``x.mean([2, 3])``, and ParC-MobileNetV2's reference pools functionally too (its module tree
    has no pooling module, and the paper's totals contain no pooling term): the paper's counter
    (thop 0.0.31, which charges ``(area + 1)`` per output of an ``nn.AdaptiveAvgPool2d`` module)
    charges nothing. This layer reports itself as a functional op
    so that :mod:`keras_padfree.profiling` reproduces that.
    """

    def profile_ops(self, input_shape):
        input_shape = tuple(input_shape)
        return [profiling.Op("global_pool", elems_in=profiling._elems(input_shape),
                             elems_out=int(input_shape[-1]), detail="avg", module=False)]


def conv_initializer():
    """PyTorch's default conv init (``kaiming_uniform_(a=sqrt(5))``: U(+-1/sqrt(fan_in)))."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")


def depthwise_initializer():
    """PyTorch's default init of a depthwise conv: U(+-1/sqrt(kh * kw)).

    Keras' fan-out of a depthwise kernel ``(kh, kw, C, 1)`` is ``kh * kw``: PyTorch's fan-in.
    """
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_out", distribution="uniform")


def batch_norm(name):
    """BN with PyTorch's defaults (eps 1e-5, momentum 0.1 = Keras 0.9), as everywhere here."""
    return _utils.batch_norm(1e-5, 0.9, name=name)


def conv_bn_relu(x, filters, kernel_size=1, strides=1, *, name):
    """``ReLU(BN(conv(x)))``, no bias, PyTorch's symmetric padding ``(k - 1) // 2``."""
    x, padding = _utils.pad_for_conv(x, kernel_size, strides, (kernel_size - 1) // 2, name)
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                            kernel_initializer=conv_initializer(), name=name)(x)
    x = batch_norm(f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def depthwise_bn(x, strides, *, padding_free=False, name):
    """3x3 depthwise conv + BN, no activation (both ShuffleNetV2 branches).

    Stride 1: padding 1. Stride 2: padding 1, or with ``padding_free`` the paper's form for
    ShuffleNetV2: padding 0 and a 3x3/2/0 max-pool of the conv's input added **before** the BN,
    ``BN(dw(x) + maxpool(x))`` (:class:`PaddingFreeDWConv`, ``shortcut_position="before_bn"``).
    """
    if strides == 2 and padding_free:
        return PaddingFreeDWConv(
            3, activation=None, shortcut_position="before_bn", bn_epsilon=1e-5, bn_momentum=0.9,
            depthwise_initializer=depthwise_initializer(), name=f"{name}_pf",
        )(x)
    if strides == 2:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same" if strides == 1 else "valid", use_bias=False,
        depthwise_initializer=depthwise_initializer(), name=name,
    )(x)
    return batch_norm(f"{name}_bn")(x)


def shuffle_unit(x, filters, *, strides, padding_free=False, name):
    """ShuffleNetV2's unit (torchvision's ``InvertedResidual``).

    Stride 1 (``filters`` equals the input width): split the channels in halves; the first half
    passes through, the second goes through branch2 = [1x1, BN, ReLU, dw3x3, BN, 1x1, BN, ReLU];
    concatenate [first half, branch2] and shuffle with 2 groups.

    Stride 2: branch1 = [dw3x3/2, BN, 1x1, BN, ReLU] and branch2 = [1x1, BN, ReLU, dw3x3/2, BN,
    1x1, BN, ReLU], each ``filters // 2`` wide, on the whole input; concatenate [branch1, branch2]
    and shuffle. ``padding_free`` makes both stride-2 depthwise convs padding-free (see
    :func:`depthwise_bn`).
    """
    in_channels = int(x.shape[-1])
    branch = filters // 2
    if strides == 1:
        if in_channels != filters or filters % 2:
            raise ValueError(
                f"A stride-1 ShuffleNetV2 unit keeps an even width; unit {name!r} got "
                f"{in_channels} -> {filters} channels."
            )
        passthrough, y = ChannelSplit(2, name=f"{name}_split")(x)
        first = passthrough
    else:
        first = depthwise_bn(x, 2, padding_free=padding_free, name=f"{name}_branch1_dw")
        first = conv_bn_relu(first, branch, name=f"{name}_branch1_pw")
        y = x
    y = conv_bn_relu(y, branch, name=f"{name}_branch2_pw1")
    y = depthwise_bn(y, strides, padding_free=padding_free, name=f"{name}_branch2_dw")
    y = conv_bn_relu(y, branch, name=f"{name}_branch2_pw2")
    y = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([first, y])
    return ChannelShuffle(2, name=f"{name}_shuffle")(y)
