"""GhostNet's bottleneck (Han et al. 2020): two Ghost modules around an optional strided depthwise
conv, with SE and an identity or "depthwise + 1x1" shortcut."""

from __future__ import annotations

import keras

from keras_padfree.blocks.common import Context
from keras_padfree.layers._utils import make_divisible
from keras_padfree.layers.ghost_module import GhostModule
from keras_padfree.layers.squeeze_excite import SqueezeExcite


def ghost_bottleneck(
    x,
    ctx: Context,
    *,
    kernel_size: int,
    expanded: int,
    filters: int,
    se_ratio: float | None,
    strides: int,
    name: str,
):
    """GhostNet's ``GhostBottleneck``.

    ``ghost1`` (GhostModule with ReLU) -> [stride 2 only: depthwise k x k / 2 conv + BN, **no**
    activation] -> [SE] -> ``ghost2`` (GhostModule, no activation) -> + shortcut. A stride-1
    bottleneck has no depthwise conv at all.

    The shortcut is the identity when the stride is 1 and the width is kept; otherwise a depthwise
    k x k conv with the block's stride, BN, 1x1 conv, BN. Its stride-2 depthwise conv takes the
    downsampling mode's padding (padding-free: k3 -> 0, k5 -> 1) without a pool, so both paths
    have the same size.

    SE: ``SqueezeExcite(make_divisible(expanded * se_ratio, 4))`` with ReLU, a hard-sigmoid gate
    (``relu6(x + 3) / 6``) and an ``nn.AdaptiveAvgPool2d`` module (counted by thop 0.0.31).
    """
    init = ctx.quirks.init
    in_channels = int(x.shape[-1])
    shortcut = x
    x = GhostModule(
        expanded,
        activation="relu",
        kernel_initializer=init.conv(),
        depthwise_initializer=init.depthwise(),
        name=f"{name}_ghost1",
    )(x)
    if strides > 1:
        x = ctx.depthwise_bn_act(x, kernel_size, strides, None, name=f"{name}_dw")
    if se_ratio:
        x = SqueezeExcite(
            make_divisible(expanded * se_ratio, 4),
            activation="relu",
            gate="hard_sigmoid",
            pool_is_module=True,
            kernel_initializer=init.conv(),
            name=f"{name}_se",
        )(x)
    x = GhostModule(
        filters,
        activation=None,
        kernel_initializer=init.conv(),
        depthwise_initializer=init.depthwise(),
        name=f"{name}_ghost2",
    )(x)
    if strides == 1 and in_channels == filters:
        return keras.layers.Add(name=f"{name}_add")([x, shortcut])
    padding = ctx.mode.padding(kernel_size) if strides > 1 else (kernel_size - 1) // 2
    s = ctx.plain_depthwise_bn_act(
        shortcut, kernel_size, strides, None, name=f"{name}_shortcut_dw", padding=padding
    )
    s = ctx.conv_bn_act(s, filters, 1, 1, None, name=f"{name}_shortcut")
    return keras.layers.Add(name=f"{name}_add")([x, s])
