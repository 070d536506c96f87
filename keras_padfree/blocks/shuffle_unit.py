"""ShuffleNetV2's unit (Ma et al. 2018; torchvision's ``InvertedResidual``)."""

from __future__ import annotations

import keras

from keras_padfree.blocks.common import Context
from keras_padfree.layers.channel_shuffle import ChannelShuffle
from keras_padfree.layers.channel_shuffle import ChannelSplit


def shuffle_unit(x, ctx: Context, *, filters: int, strides: int, name: str):
    """One ShuffleNetV2 unit.

    Stride 1 (``filters`` equals the input width): split the channels in halves; the first half
    passes through, the second goes through branch2 = [1x1, BN, ReLU, dw3x3, BN, 1x1, BN, ReLU];
    concatenate [first half, branch2] and shuffle with 2 groups.

    Stride 2: branch1 = [dw3x3/2, BN, 1x1, BN, ReLU] and branch2 = [1x1, BN, ReLU, dw3x3/2, BN,
    1x1, BN, ReLU], each ``filters // 2`` wide, on the whole input; concatenate [branch1, branch2]
    and shuffle. Both stride-2 depthwise convs come from the downsampling mode (padding-free:
    ``BN(dw(x) + maxpool(x))``, the "before_bn" join).
    """
    in_channels = int(x.shape[-1])
    branch = filters // 2
    if strides == 1:
        if in_channels != filters or filters % 2:
            raise ValueError(
                f"A stride-1 ShuffleNetV2 unit keeps an even width; unit {name!r} got "
                f"{in_channels} -> {filters} channels."
            )
        first, y = ChannelSplit(2, name=f"{name}_split")(x)
    else:
        first = ctx.depthwise_bn_act(x, 3, 2, None, name=f"{name}_branch1_dw")
        first = ctx.conv_bn_act(first, branch, 1, 1, "relu", name=f"{name}_branch1_pw")
        y = x
    y = ctx.conv_bn_act(y, branch, 1, 1, "relu", name=f"{name}_branch2_pw1")
    y = ctx.depthwise_bn_act(y, 3, strides, None, name=f"{name}_branch2_dw")
    y = ctx.conv_bn_act(y, branch, 1, 1, "relu", name=f"{name}_branch2_pw2")
    y = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([first, y])
    return ChannelShuffle(2, name=f"{name}_shuffle")(y)
