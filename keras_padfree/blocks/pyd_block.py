"""PydMobileNet's residual bottleneck and its baselines (thanhhvnqb/pydmobilenet_mxnet).

All blocks are pre-activation residual bottlenecks ``BN -> ReLU -> 1x1 -> BN -> ReLU -> spatial ->
BN -> ReLU -> 1x1 -> BN`` plus a shortcut, with no ReLU after the addition; they differ in the
spatial stage: PydMobileNet's pyramid depthwise conv (:class:`PyramidDWConv`), a 3x3 depthwise conv
(MobileNet baseline) or a full 3x3 conv (ResNet baseline). Layer names are
``{prefix}{pre_bn, pre_relu, expand, expand_bn, expand_relu, <spatial>, dw_bn, dw_relu, project,
project_bn, shortcut, shortcut_bn, add}`` with ``<spatial>`` = ``pyramid``, ``dw`` or ``conv``: the
MXNet weight loader maps the released tensors onto these names.
"""

from __future__ import annotations

import keras

from keras_padfree.blocks.common import Context
from keras_padfree.layers import _utils
from keras_padfree.layers.pyramid_dw_conv import PyramidDWConv

BLOCK_TYPES = ("pyd_add", "pyd_concat", "mobilenet", "resnet")
SPATIAL_NAMES = {"pyd_add": "pyramid", "pyd_concat": "pyramid", "mobilenet": "dw", "resnet": "conv"}


def residual_block(
    x, ctx: Context, *, block_type: str, filters: int, mid: int, strides: int, prefix: str
):
    """One pre-activation residual bottleneck of PydMobileNet (``ResPydBlock``) or a baseline.

    Args:
        x: block input (NHWC, ``C_in`` channels).
        ctx: the build's context.
        block_type: "pyd_add", "pyd_concat", "mobilenet" or "resnet".
        filters: output channels ``C_out`` (the stage width).
        mid: bottleneck width (``int(C_out * width_multiplier)``).
        strides: 1, or 2 for the first block of stages 2 and 3.
        prefix: layer-name prefix, e.g. ``"stage2_block1_"``.

    Returns:
        The block output ``BN(project(...)) + shortcut(x)`` (no activation after the addition).
        With padding-free downsampling the pyramid branches use padding ``(k - 3) // 2`` plus the
        3x3/s2/p0 max-pool of their input, and the block shortcut is the mode's max-pool shortcut
        (3x3/s2/p0 + 1x1 projection) + BN instead of the 1x1 stride-2 conv + BN.
    """
    _utils.check_choice(block_type, "block_type", BLOCK_TYPES)
    c_in = x.shape[-1]
    h = ctx.bn(f"{prefix}pre_bn")(x)
    h = ctx.activation(h, "relu", f"{prefix}pre_relu")
    h = ctx.conv(h, mid, 1, name=f"{prefix}expand")
    h = ctx.bn(f"{prefix}expand_bn")(h)
    h = ctx.activation(h, "relu", f"{prefix}expand_relu")
    spatial = f"{prefix}{SPATIAL_NAMES[block_type]}"
    if block_type.startswith("pyd"):
        h = PyramidDWConv(
            (3, 5, 7),
            strides=strides,
            combine=block_type[4:],
            padding_free=ctx.mode.padding_free and strides == 2,
            depthwise_initializer=ctx.quirks.init.depthwise(),
            name=spatial,
        )(h)
    elif block_type == "mobilenet":
        h = ctx.depthwise(h, 3, strides, name=spatial)
    else:
        h = ctx.conv(h, mid, 3, strides, name=spatial)
    h = ctx.bn(f"{prefix}dw_bn")(h)
    h = ctx.activation(h, "relu", f"{prefix}dw_relu")
    h = ctx.conv(h, filters, 1, name=f"{prefix}project")
    h = ctx.bn(f"{prefix}project_bn")(h)
    shortcut = x
    if strides != 1 or c_in != filters:
        shortcut = None
        if strides == 2:
            shortcut = ctx.mode.shortcut(ctx, x, filters=filters, name=f"{prefix}shortcut")
        if shortcut is None:
            shortcut = ctx.conv(x, filters, 1, strides, name=f"{prefix}shortcut")
        shortcut = ctx.bn(f"{prefix}shortcut_bn")(shortcut)
    return keras.layers.Add(name=f"{prefix}add")([h, shortcut])
