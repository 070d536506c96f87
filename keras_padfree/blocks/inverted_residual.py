"""The inverted residual (MobileNetV2/V3) block, shared by every family that uses it.

``[1x1 expand -> BN -> act] -> depthwise k x k (stride) -> BN -> act -> [SE] -> 1x1 project ->
BN (+ identity)``. The families differ only in data: when the expansion conv exists, how SE is
built, the names of the three conv units; the stride-2 depthwise conv comes from the build's
downsampling mode (padding-free: :class:`~keras_padfree.layers.PaddingFreeDWConv`).
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_padfree.blocks.common import Context

UNIT_NAMES = ("expand", "depthwise", "project")


def inverted_residual(
    x,
    ctx: Context,
    *,
    expanded: int,
    filters: int,
    kernel_size: int,
    strides: int,
    activation: str | None,
    name: str,
    squeeze_excite: Callable | None = None,
    always_expand: bool = False,
    units: tuple = UNIT_NAMES,
    project_kwargs: dict | None = None,
):
    """One inverted residual block.

    Args:
        x: block input.
        ctx: the build's :class:`~keras_padfree.blocks.common.Context`.
        expanded: width after the expansion (the depthwise conv's width).
        filters: output width.
        kernel_size: depthwise kernel size.
        strides: depthwise stride (1 or 2).
        activation: activation after the expansion and the depthwise conv.
        name: layer-name prefix of the block.
        squeeze_excite: ``squeeze_excite(x, expanded, name)`` applied after the depthwise
            conv's activation (None: no SE). The SE layer is named ``f"{name}_se"``.
        always_expand: build the 1x1 expansion even when ``expanded`` equals the input width
            (the BSConv library does; torchvision drops it).
        units: the names of the expansion, depthwise and projection units within the block.
        project_kwargs: extra Conv2D arguments of the projection (e.g. a kernel regulariser).

    Returns:
        The block output; the identity is added when the stride is 1 and the width is kept.
    """
    in_channels = int(x.shape[-1])
    expand, depthwise, project = (f"{name}_{unit}" for unit in units)
    y = x
    if always_expand or expanded != in_channels:
        y = ctx.conv_bn_act(y, expanded, 1, 1, activation, name=expand)
    y = ctx.depthwise_bn_act(y, kernel_size, strides, activation, name=depthwise)
    if squeeze_excite is not None:
        y = squeeze_excite(y, expanded, f"{name}_se")
    y = ctx.conv_bn_act(y, filters, 1, 1, None, name=project, **(project_kwargs or {}))
    if strides == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y
