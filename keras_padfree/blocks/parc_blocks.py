"""Functional blocks of ParC-MobileNetV2: conv-BN-ReLU6, inverted residual, ParC block.

Every function takes a tensor and returns a tensor; layer names are ``f"{name}_..."`` so a model's
layer names are deterministic. Initialisers follow the reference (``_initialize_weights``): every
conv kaiming-normal with PyTorch's ``mode="fan_out"``, BN gamma 1 / beta 0.
"""

import keras

from keras_padfree.layers import _utils
from keras_padfree.layers.channel_shuffle import ChannelSplit
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv
from keras_padfree.layers.parc_conv import ParCConv


def conv_initializer():
    """PyTorch ``kaiming_normal_(mode="fan_out")`` for a Keras ``Conv2D`` kernel ``(kh, kw, I, O)``.

    Keras' fan-out of that shape is ``kh * kw * O``, PyTorch's too.
    """
    return keras.initializers.VarianceScaling(2.0, mode="fan_out",
                                              distribution="untruncated_normal")


def depthwise_initializer():
    """PyTorch ``kaiming_normal_(mode="fan_out")`` for a Keras depthwise kernel ``(kh, kw, C, 1)``.

    PyTorch's fan-out of a depthwise weight ``(C, 1, kh, kw)`` is ``C * kh * kw``, which is what
    Keras calls the fan-*in* of the Keras layout, hence ``mode="fan_in"``.
    """
    return keras.initializers.VarianceScaling(2.0, mode="fan_in", distribution="untruncated_normal")


def batch_norm(name):
    """BN with PyTorch's defaults (eps 1e-5, momentum 0.1 = Keras 0.9), as everywhere in ParC."""
    return _utils.batch_norm(1e-5, 0.9, name=name)


def relu6(name):
    return keras.layers.ReLU(max_value=6.0, name=name)


def conv_bn_relu6(x, filters, kernel_size=1, strides=1, *, name):
    """``ReLU6(BN(conv(x)))`` with PyTorch's symmetric padding ``(k - 1) // 2`` and no bias."""
    x, padding = _utils.pad_for_conv(x, kernel_size, strides, (kernel_size - 1) // 2, name)
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                            kernel_initializer=conv_initializer(), name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return relu6(f"{name}_relu6")(x)


def depthwise_bn_relu6(x, strides, *, padding_free, name):
    """The 3x3 depthwise conv of an inverted residual, with BN and ReLU6.

    Stride 1: padding 1. Stride 2: padding 1 (symmetric, as PyTorch) or, when ``padding_free``, the
    paper's padding-free form: padding 0 plus a 3x3/2/0 max-pool of the input added after ReLU6
    (:class:`PaddingFreeDWConv`, ``shortcut_position="after_activation"``).
    """
    if strides == 2 and padding_free:
        return PaddingFreeDWConv(
            3, activation="relu6", shortcut_position="after_activation", bn_epsilon=1e-5,
            bn_momentum=0.9, depthwise_initializer=depthwise_initializer(), name=f"{name}_pf",
        )(x)
    x, padding = _utils.pad_for_conv(x, 3, strides, 1, name)
    x = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding=padding, use_bias=False,
        depthwise_initializer=depthwise_initializer(), name=f"{name}_dw",
    )(x)
    x = batch_norm(f"{name}_bn")(x)
    return relu6(f"{name}_relu6")(x)


def project_bn(x, filters, *, name):
    """The linear 1x1 projection of a block: conv (no bias), then BN, no activation."""
    x = keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=conv_initializer(),
                            name=f"{name}_conv")(x)
    return batch_norm(f"{name}_bn")(x)


def inverted_residual(x, filters, *, strides, expansion, padding_free=False, name):
    """MobileNetV2's inverted residual block (the reference's ``InvertedResidual``).

    ``[1x1 expand, BN, ReLU6]`` (omitted when ``expansion == 1``), 3x3 depthwise (stride
    ``strides``), BN, ReLU6, 1x1 projection, BN; identity shortcut when the stride is 1 and the
    width is kept. ``padding_free`` makes a stride-2 depthwise conv padding-free with a max-pool
    shortcut (see :func:`depthwise_bn_relu6`).
    """
    in_channels = int(x.shape[-1])
    hidden = int(round(in_channels * expansion))
    y = x
    if expansion != 1:
        y = conv_bn_relu6(y, hidden, 1, name=f"{name}_expand")
    y = depthwise_bn_relu6(y, strides, padding_free=padding_free, name=f"{name}_depthwise")
    y = project_bn(y, filters, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def parc_block(x, filters, *, expansion, use_pe, name):
    """ParC-MobileNetV2's global-conv block (the reference's ``InvertedResidual_parc``).

    1x1 expand (always present), BN, ReLU6; the first half of the hidden channels goes through a
    vertical ParC conv (``K x 1``), the second half through a horizontal one (``1 x K``), with ``K``
    the feature-map size (see :class:`ParCConv`); concatenate [vertical, horizontal], BN, ReLU6;
    1x1 projection, BN; identity shortcut when the width is kept. Stride is always 1.

    Args:
        use_pe: give both ParC convs a positional embedding (the reference does so on the first
            ParC block of each stage).
    """
    in_channels = int(x.shape[-1])
    hidden = int(round(in_channels * expansion))
    if hidden % 2:
        raise ValueError(
            f"A ParC block splits its hidden channels in two halves; block {name!r} has "
            f"{hidden} (input {in_channels} x expansion {expansion})."
        )
    y = conv_bn_relu6(x, hidden, 1, name=f"{name}_expand")
    y_h, y_w = ChannelSplit(2, name=f"{name}_split")(y)
    y_h = ParCConv("vertical", use_pe=use_pe, kernel_initializer=None, name=f"{name}_parc_h")(y_h)
    y_w = ParCConv("horizontal", use_pe=use_pe, kernel_initializer=None, name=f"{name}_parc_w")(y_w)
    y = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([y_h, y_w])
    y = batch_norm(f"{name}_bn")(y)
    y = relu6(f"{name}_relu6")(y)
    y = project_bn(y, filters, name=f"{name}_project")
    if in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y
