"""Functional blocks of PydMobileNet and its CIFAR baselines (thanhhvnqb/pydmobilenet_mxnet).

All blocks are pre-activation residual bottlenecks ``BN -> ReLU -> 1x1 -> BN -> ReLU -> spatial ->
BN -> ReLU -> 1x1 -> BN`` plus a shortcut, with no ReLU after the addition; they differ in the
spatial stage: PydMobileNet's pyramid depthwise conv (:class:`PyramidDWConv`), a 3x3 depthwise conv
(MobileNet baseline) or a full 3x3 conv (ResNet baseline). Layer names are
``{prefix}{pre_bn, pre_relu, expand, expand_bn, expand_relu, <spatial>, dw_bn, dw_relu, project,
project_bn, shortcut, shortcut_bn, add}`` with ``<spatial>`` = ``pyramid``, ``dw`` or ``conv``: the
MXNet weight loader maps the released tensors onto these names.
"""

import keras

from keras_padfree.layers import _utils
from keras_padfree.layers.max_pool_shortcut import MaxPoolShortcut
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv  # noqa: F401 (doc link)
from keras_padfree.layers.pyramid_dw_conv import PyramidDWConv

BLOCK_TYPES = ("pyd_add", "pyd_concat", "mobilenet", "resnet")
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # MXNet momentum 0.9: moving = 0.9 * moving + 0.1 * batch (Keras convention too)
KERNEL_INITIALIZER = "glorot_uniform"  # the reference training used Xavier initialisation


def bn(name, center=True, scale=True):
    """BatchNorm with MXNet's settings (eps 1e-5, momentum 0.9)."""
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, center=center,
                                           scale=scale, name=name)


def conv1x1(filters, name, strides=1, use_bias=False):
    return keras.layers.Conv2D(filters, 1, strides=strides, use_bias=use_bias,
                               kernel_initializer=KERNEL_INITIALIZER, name=name)


def spatial_layer_name(block_type):
    """The name suffix of a block's spatial layer (``pyramid``, ``dw`` or ``conv``)."""
    return {"pyd_add": "pyramid", "pyd_concat": "pyramid", "mobilenet": "dw", "resnet": "conv"}[
        block_type]


def residual_block(x, *, block_type, filters, mid, strides, prefix, padding_free=False):
    """One pre-activation residual bottleneck of PydMobileNet (``ResPydBlock``) or a baseline.

    Args:
        x: block input (NHWC, ``C_in`` channels).
        block_type: "pyd_add", "pyd_concat", "mobilenet" or "resnet".
        filters: output channels ``C_out`` (the stage width).
        mid: bottleneck width (``int(C_out * width_multiplier)``).
        strides: 1, or 2 for the first block of stages 2 and 3.
        prefix: layer-name prefix, e.g. ``"stage2_block1_"``.
        padding_free: (``strides=2`` only, Pyd blocks only) padding-free downsampling: the pyramid
            branches use padding ``(k - 3) // 2`` plus the 3x3/s2/p0 max-pool of their input, and the
            block shortcut is :class:`MaxPoolShortcut` (3x3/s2/p0 max-pool + 1x1 projection) + BN
            instead of the 1x1 stride-2 conv + BN.

    Returns:
        The block output ``BN(project(...)) + shortcut(x)`` (no activation after the addition).
    """
    _utils.check_choice(block_type, "block_type", BLOCK_TYPES)
    c_in = x.shape[-1]
    h = bn(f"{prefix}pre_bn")(x)
    h = keras.layers.ReLU(name=f"{prefix}pre_relu")(h)
    h = conv1x1(mid, f"{prefix}expand")(h)
    h = bn(f"{prefix}expand_bn")(h)
    h = keras.layers.ReLU(name=f"{prefix}expand_relu")(h)
    spatial = f"{prefix}{spatial_layer_name(block_type)}"
    if block_type.startswith("pyd"):
        h = PyramidDWConv((3, 5, 7), strides=strides, combine=block_type[4:],
                          padding_free=padding_free and strides == 2,
                          depthwise_initializer=KERNEL_INITIALIZER, name=spatial)(h)
    else:
        if padding_free:
            raise ValueError(
                "Padding-free downsampling is defined for the PydMobileNet blocks only. "
                f"Received: block_type={block_type!r}, padding_free=True."
            )
        h, padding = _utils.pad_for_conv(h, 3, strides, 1, spatial)
        if block_type == "mobilenet":
            h = keras.layers.DepthwiseConv2D(3, strides=strides, padding=padding, use_bias=False,
                                             depthwise_initializer=KERNEL_INITIALIZER,
                                             name=spatial)(h)
        else:
            h = keras.layers.Conv2D(mid, 3, strides=strides, padding=padding, use_bias=False,
                                    kernel_initializer=KERNEL_INITIALIZER, name=spatial)(h)
    h = bn(f"{prefix}dw_bn")(h)
    h = keras.layers.ReLU(name=f"{prefix}dw_relu")(h)
    h = conv1x1(filters, f"{prefix}project")(h)
    h = bn(f"{prefix}project_bn")(h)
    if strides == 1 and c_in == filters:
        shortcut = x
    elif padding_free and strides == 2:
        shortcut = MaxPoolShortcut(filters=filters, kernel_initializer=KERNEL_INITIALIZER,
                                   name=f"{prefix}shortcut")(x)
        shortcut = bn(f"{prefix}shortcut_bn")(shortcut)
    else:
        shortcut = conv1x1(filters, f"{prefix}shortcut", strides=strides)(x)
        shortcut = bn(f"{prefix}shortcut_bn")(shortcut)
    return keras.layers.Add(name=f"{prefix}add")([h, shortcut])
