"""ParC-MobileNetV2's global-conv block (ParC-Net, Zhang et al. 2022)."""

from __future__ import annotations

import keras

from keras_padfree.blocks.common import Context
from keras_padfree.layers.channel_shuffle import ChannelSplit
from keras_padfree.layers.parc_conv import ParCConv


def parc_block(x, ctx: Context, *, filters: int, expansion: float, use_pe: bool, name: str):
    """The reference's ``InvertedResidual_parc``.

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
    y = ctx.conv_bn_act(x, hidden, 1, 1, "relu6", name=f"{name}_expand")
    y_h, y_w = ChannelSplit(2, name=f"{name}_split")(y)
    y_h = ParCConv("vertical", use_pe=use_pe, kernel_initializer=None, name=f"{name}_parc_h")(y_h)
    y_w = ParCConv("horizontal", use_pe=use_pe, kernel_initializer=None, name=f"{name}_parc_w")(y_w)
    y = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([y_h, y_w])
    y = ctx.bn(f"{name}_bn")(y)
    y = ctx.activation(y, "relu6", f"{name}_relu6")
    y = ctx.conv_bn_act(y, filters, 1, 1, None, name=f"{name}_project")
    if in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y
