"""Functional building blocks of the BSConv-library models (MobileNetV3-large, CIFAR ResNets, WRNs).

These reproduce the BSConv library (``zeiss-microscopy/BSConv`` v0.4.0) as the paper used it, in its
original form ("orig") and with the paper's padding-free downsampling ("pf"). Every function composes
Keras and keras_padfree layers with deterministic names under the prefix it is given.

Conventions of the library kept here:

* every conv has no bias (except the SE convs and the classifier) and is initialised with PyTorch's
  ``kaiming_uniform_`` (``U(+-sqrt(6 / fan_in))``; depthwise fan-in ``k * k``);
* BatchNorm is PyTorch's default (epsilon 1e-5, Keras momentum 0.9);
* convs the BSConv-U replacer swaps (groups 1, kernel 3x3 or 5x5) become :class:`BSConvU`
  (pointwise then depthwise, no BN between, PyTorch's default ``U(+-1/sqrt(fan_in))`` init, since the
  library replaces after initialising);
* stride-1 convs are "same"-padded; stride-2 convs of the original library pad symmetrically
  (``ZeroPadding2D`` + "valid", never Keras' asymmetric "same"); padding-free stride-2 convs use
  padding 0 (k=3) or 1 (k=5) and add a 3x3/stride-2/unpadded max-pool of the block input.
"""

import math

import keras

from keras_padfree.layers import _utils
from keras_padfree.layers.bsconv import BSConvU
from keras_padfree.layers.hybrid_stem import HybridStem
from keras_padfree.layers.max_pool_shortcut import MaxPoolShortcut
from keras_padfree.layers.orthonormal_regularizer import OrthonormalRegularizer
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv
from keras_padfree.layers.squeeze_excite import SqueezeExcite

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Keras convention: PyTorch's momentum 0.1.


def batch_norm(x, name):
    """PyTorch-default BatchNormalization (epsilon 1e-5, Keras momentum 0.9)."""
    return _utils.batch_norm(BN_EPSILON, BN_MOMENTUM, name=name)(x)


def activation(x, name, act):
    """Applies ``act`` ("relu", "hard_silu", ...) as a named layer; None leaves ``x``."""
    layer = _utils.activation_layer(act, layer_name=name)
    return x if layer is None else layer(x)


def conv(x, filters, kernel_size, *, strides=1, padding=None, bsconv_u=False, regularizer=None,
         name):
    """A full (groups=1) conv without bias, or its BSConv-U replacement.

    Args:
        padding: symmetric padding, default ``(kernel_size - 1) // 2``.
        bsconv_u: replace a 3x3 / 5x5 conv by BSConv-U, as the library's replacer does (1x1 convs are
            never replaced).
        regularizer: kernel regularizer of a plain conv.
    """
    if padding is None:
        padding = (kernel_size - 1) // 2
    if bsconv_u and kernel_size in (3, 5):
        pad = "same" if strides == 1 and 2 * padding == kernel_size - 1 else padding
        return BSConvU(filters, kernel_size, strides=strides, padding=pad, name=name)(x)
    x, keras_padding = _utils.pad_for_conv(x, kernel_size, strides, padding, name)
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=keras_padding, use_bias=False,
        kernel_initializer="he_uniform", kernel_regularizer=regularizer, name=name,
    )(x)


def depthwise_conv(x, kernel_size, *, strides=1, padding=None, name):
    """Depthwise conv without bias, kaiming-uniform with PyTorch's fan-in ``k * k``."""
    if padding is None:
        padding = (kernel_size - 1) // 2
    x, keras_padding = _utils.pad_for_conv(x, kernel_size, strides, padding, name)
    return keras.layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=keras_padding, use_bias=False,
        depthwise_initializer=_utils.uniform_limit_initializer(kernel_size * kernel_size),
        name=name,
    )(x)


def conv_block(x, filters, kernel_size, *, strides=1, padding=None, act="relu", use_bn=True,
               bsconv_u=False, regularizer=None, name):
    """The library's ConvBlock: conv -> [BN] -> [act]."""
    x = conv(x, filters, kernel_size, strides=strides, padding=padding, bsconv_u=bsconv_u,
             regularizer=regularizer, name=f"{name}_conv")
    if use_bn:
        x = batch_norm(x, f"{name}_bn")
    return activation(x, f"{name}_act", act)


def padding_free_conv_block(x, filters, *, act="relu", use_bn=True, bsconv_u=False, name):
    """The paper's stride-2 ConvBlock for full convs (ResNet/WRN, with the 1x1 ``conv2`` enabled).

    ``out = act(BN(conv3x3_{s2,p0}(x))) + conv1x1(maxpool_{3,2,0}(x))``; without BN and activation
    (the WRN-40-3 projection) it is ``conv3x3_{s2,p0}(x) + conv1x1(maxpool(x))``.
    """
    y = conv_block(x, filters, 3, strides=2, padding=0, act=act if use_bn else None,
                   use_bn=use_bn, bsconv_u=bsconv_u, name=name)
    s = MaxPoolShortcut(filters=filters, name=f"{name}_shortcut")(x)
    return keras.layers.Add(name=f"{name}_add")([y, s])


def classifier(x, classes, name="predictions"):
    """The library's classifier (a 1x1 conv with bias on the pooled features) as a Dense layer.

    Weight ``xavier_normal_`` (non-truncated normal, std ``sqrt(2 / (in + classes))``); bias keeps
    PyTorch's default ``U(+-1/sqrt(in))``.
    """
    in_channels = int(x.shape[-1])
    std = math.sqrt(2.0 / (in_channels + classes))
    limit = 1.0 / math.sqrt(in_channels)
    return keras.layers.Dense(
        classes, use_bias=True,
        kernel_initializer=keras.initializers.RandomNormal(stddev=std),
        bias_initializer=keras.initializers.RandomUniform(-limit, limit), name=name,
    )(x)


# --------------------------------------------------------------------------------------------------
# MobileNetV3


def mobilenetv3_stem(x, filters, *, strides, padding_free, name="stem"):
    """Orig: 3x3 conv (padding 1) -> BN -> h-swish. PF: the MobileNet :class:`HybridStem`."""
    if padding_free:
        return HybridStem(filters, strides=strides, activation="hard_silu", residual=False,
                          ordering="post", bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM,
                          name=name)(x)
    return conv_block(x, filters, 3, strides=strides, padding=1, act="hard_silu", name=name)


def linear_bottleneck(x, *, exp_channels, out_channels, kernel_size, strides, use_se, act,
                      padding_free, orthonormal_alpha=None, name):
    """The library's MobileNetV3 ``LinearBottleneck``.

    ``conv1`` 1x1 -> BN -> act (always present, even when ``exp == in``); ``conv2`` depthwise
    k x k -> BN -> act (padding-free for stride 2 in "pf": padding ``(k - 3) // 2`` plus the
    3x3/2/0 max-pool shortcut added after the activation); optional SE (squeeze ``C // 4``,
    module pooling, h-sigmoid gate) on the conv2 output (after the shortcut sum); ``conv3`` 1x1 ->
    BN; identity residual iff ``in == out`` and stride 1.

    Args:
        orthonormal_alpha: if set, the BSConv-S orthonormal regulariser on the ``conv3`` kernel.
    """
    in_channels = int(x.shape[-1])
    y = conv_block(x, exp_channels, 1, act=act, name=f"{name}_conv1")
    if strides == 2 and padding_free:
        y = PaddingFreeDWConv(kernel_size, activation=act, shortcut_position="after_activation",
                              bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM,
                              name=f"{name}_conv2")(y)
    else:
        y = depthwise_conv(y, kernel_size, strides=strides, name=f"{name}_conv2_dw")
        y = batch_norm(y, f"{name}_conv2_bn")
        y = activation(y, f"{name}_conv2_act", act)
    if use_se:
        y = SqueezeExcite(exp_channels // 4, activation="relu", gate="hard_sigmoid",
                          pool_is_module=True, name=f"{name}_se")(y)
    regularizer = None if orthonormal_alpha is None else OrthonormalRegularizer(orthonormal_alpha)
    y = conv_block(y, out_channels, 1, act=None, regularizer=regularizer, name=f"{name}_conv3")
    if in_channels == out_channels and strides == 1:
        y = keras.layers.Add(name=f"{name}_add")([y, x])
    return y


# --------------------------------------------------------------------------------------------------
# CIFAR ResNets and WRNs


def resnet_stem(x, filters, *, ordering, bsconv_u, padding_free, name="stem"):
    """The CIFAR init unit.

    Orig: "post" (ResNet) is conv3x3 -> BN -> ReLU; "pre" (WRN) is a bare conv3x3. PF: the residual
    :class:`HybridStem` in the same ordering (its first 3x3 conv BSConv-U when ``bsconv_u``).
    """
    if padding_free:
        return HybridStem(filters, strides=1, activation="relu", residual=True, ordering=ordering,
                          first_conv="bsconv_u" if bsconv_u else "standard",
                          bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM, name=name)(x)
    if ordering == "post":
        return conv_block(x, filters, 3, act="relu", bsconv_u=bsconv_u, name=name)
    return conv(x, filters, 3, bsconv_u=bsconv_u, name=f"{name}_conv")


def _separable_projection(x, filters, name):
    """The paper's stride-2 projection: depthwise 3x3/2/0 -> BN(in) -> 1x1 in->out -> BN(out)."""
    s = depthwise_conv(x, 3, strides=2, padding=0, name=f"{name}_dw")
    s = batch_norm(s, f"{name}_dw_bn")
    s = conv(s, filters, 1, name=f"{name}_pw")
    return batch_norm(s, f"{name}_pw_bn")


def standard_unit(x, filters, *, strides, bsconv_u, padding_free, name):
    """Post-activation residual unit: ``ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))``.

    Stride 2, orig: conv1 3x3/2/1, shortcut 1x1/2 conv -> BN. PF: conv1 3x3/2/0 plus
    ``conv1x1(maxpool(x))`` after its ReLU, shortcut depthwise 3x3/2/0 -> BN -> 1x1 -> BN.
    """
    in_channels = int(x.shape[-1])
    if strides == 2 and padding_free:
        y = padding_free_conv_block(x, filters, act="relu", bsconv_u=bsconv_u,
                                    name=f"{name}_conv1")
    else:
        y = conv_block(x, filters, 3, strides=strides, padding=1, act="relu", bsconv_u=bsconv_u,
                       name=f"{name}_conv1")
    y = conv_block(y, filters, 3, act=None, bsconv_u=bsconv_u, name=f"{name}_conv2")
    if strides == 2 and padding_free:
        shortcut = _separable_projection(x, filters, f"{name}_projection")
    elif strides != 1 or in_channels != filters:
        shortcut = conv_block(x, filters, 1, strides=strides, padding=0, act=None,
                              name=f"{name}_projection")
    else:
        shortcut = x
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return activation(y, f"{name}_relu", "relu")


def preact_unit(x, filters, *, strides, bsconv_u, padding_free, pf_projection="conv3x3",
                name):
    """Pre-activation (WRN) unit: ``conv2(ReLU(BN(conv1(x')))) + shortcut``, ``x' = ReLU(BN(x))``.

    The shortcut is ``x`` without a projection, else ``proj(x')``: a 1x1 conv (stride s, no BN) in
    orig and for stride 1. Stride 2 in PF: conv1 is 3x3/2/0 -> BN -> ReLU plus
    ``conv1x1(maxpool(x'))``; the projection is ``pf_projection``: "conv3x3" (the paper's code: 3x3/2/0
    conv, BSConv-U when ``bsconv_u``, plus ``conv1x1(maxpool(x'))``) or "separable" (depthwise
    3x3/2/0 -> BN -> 1x1 -> BN, what the paper's WRN-40-8 BSConv-U row counted).
    """
    in_channels = int(x.shape[-1])
    has_projection = in_channels != filters or strides != 1
    pre = batch_norm(x, f"{name}_bn")
    pre = activation(pre, f"{name}_relu", "relu")
    if strides == 2 and padding_free:
        y = padding_free_conv_block(pre, filters, act="relu", bsconv_u=bsconv_u,
                                    name=f"{name}_conv1")
    else:
        y = conv_block(pre, filters, 3, strides=strides, padding=1, act="relu", bsconv_u=bsconv_u,
                       name=f"{name}_conv1")
    y = conv(y, filters, 3, bsconv_u=bsconv_u, name=f"{name}_conv2")
    if not has_projection:
        shortcut = x
    elif strides == 2 and padding_free:
        if pf_projection == "conv3x3":
            shortcut = padding_free_conv_block(pre, filters, use_bn=False, bsconv_u=bsconv_u,
                                               name=f"{name}_projection")
        else:
            shortcut = _separable_projection(pre, filters, f"{name}_projection")
    else:
        shortcut = conv(pre, filters, 1, strides=strides, padding=0, name=f"{name}_projection")
    return keras.layers.Add(name=f"{name}_add")([y, shortcut])
