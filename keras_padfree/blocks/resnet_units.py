"""The CIFAR ResNet / Wide ResNet units of the BSConv library, standard or padding-free.

Post-activation (ResNet, ``StandardUnit``) and pre-activation (WRN, ``PreactUnit``) residual
units with optional BSConv-U replacement of their 3x3 convs. Their stride-2 conv comes from the
downsampling mode (padding-free: 3x3/2/0 plus a projected max-pool shortcut); how a stride-2 unit
projects its shortcut is the family's data, ``projection = {mode name: kind}``:

* ``"conv1x1"``: a 1x1 stride-s conv (+ BN in the ResNet), the original library;
* ``"separable"``: depthwise 3x3/2 (the mode's padding) -> BN -> 1x1 -> BN, what the paper's
  padding-free ResNets (and its WRN-40-8 BSConv-U row) count;
* ``"conv3x3"``: the strided 3x3 conv without BN plus the mode's shortcut, the paper's padding-free
  WRN code at HEAD.
"""

from __future__ import annotations

import keras

from keras_padfree.blocks.common import Context
from keras_padfree.layers.bsconv import BSConvU


def conv(
    x,
    ctx: Context,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    padding: int | None = None,
    bsconv_u: bool = False,
):
    """A bias-free full conv, or (``bsconv_u``, 3x3/5x5 only) its BSConv-U replacement.

    The BSConv library's replacer swaps every groups-1 3x3/5x5 conv for pointwise -> depthwise,
    after initialisation (so the BSConv-U layers keep PyTorch's default init).
    """
    if padding is None:
        padding = (kernel_size - 1) // 2
    if bsconv_u and kernel_size in (3, 5):
        pad = "same" if strides == 1 and 2 * padding == kernel_size - 1 else padding
        return BSConvU(filters, kernel_size, strides=strides, padding=pad, name=name)(x)
    return ctx.conv(x, filters, kernel_size, strides, name=name, padding=padding, pad_name=name)


def conv_block(
    x,
    ctx: Context,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    padding: int | None = None,
    activation: str | None = "relu",
    use_bn: bool = True,
    bsconv_u: bool = False,
):
    """The library's ConvBlock: conv -> [BN] -> [act], named ``name_conv``, ``name_bn``, ..."""
    x = conv(
        x,
        ctx,
        filters,
        kernel_size,
        name=f"{name}_conv",
        strides=strides,
        padding=padding,
        bsconv_u=bsconv_u,
    )
    if use_bn:
        x = ctx.bn(f"{name}_bn")(x)
    return ctx.activation(x, activation, f"{name}_act")


def strided_conv_block(
    x,
    ctx: Context,
    filters: int,
    *,
    name: str,
    activation: str | None,
    use_bn: bool = True,
    bsconv_u: bool = False,
):
    """A stride-2 3x3 ConvBlock with the downsampling mode's padding and shortcut.

    Padding-free: ``act(BN(conv3x3_{s2,p0}(x))) + conv1x1(maxpool_{3,2,0}(x))`` (the paper's
    ``ConvBlock`` with its 1x1 ``conv2`` enabled).
    """
    y = conv_block(
        x,
        ctx,
        filters,
        3,
        name=name,
        strides=2,
        padding=ctx.mode.padding(3),
        activation=activation if use_bn else None,
        use_bn=use_bn,
        bsconv_u=bsconv_u,
    )
    s = ctx.mode.shortcut(ctx, x, filters=filters, name=f"{name}_shortcut")
    return y if s is None else keras.layers.Add(name=f"{name}_add")([y, s])


def _projection(
    x,
    ctx: Context,
    filters: int,
    strides: int,
    *,
    name: str,
    use_bn: bool,
    bsconv_u: bool,
    projection: dict,
):
    kind = projection[ctx.mode.name] if strides == 2 else "conv1x1"
    if kind == "separable":
        s = ctx.depthwise(x, 3, 2, name=f"{name}_dw", padding=ctx.mode.padding(3))
        s = ctx.bn(f"{name}_dw_bn")(s)
        s = ctx.conv(s, filters, 1, name=f"{name}_pw")
        return ctx.bn(f"{name}_pw_bn")(s)
    if kind == "conv3x3":
        return strided_conv_block(
            x, ctx, filters, name=name, activation=None, use_bn=False, bsconv_u=bsconv_u
        )
    if use_bn:
        return conv_block(
            x, ctx, filters, 1, name=name, strides=strides, padding=0, activation=None
        )
    return conv(x, ctx, filters, 1, name=name, strides=strides, padding=0)


def standard_unit(
    x, ctx: Context, *, filters: int, strides: int, bsconv_u: bool, projection: dict, name: str
):
    """Post-activation unit: ``ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))``."""
    in_channels = int(x.shape[-1])
    if strides == 2:
        y = strided_conv_block(
            x, ctx, filters, name=f"{name}_conv1", activation="relu", bsconv_u=bsconv_u
        )
    else:
        y = conv_block(x, ctx, filters, 3, name=f"{name}_conv1", bsconv_u=bsconv_u)
    y = conv_block(y, ctx, filters, 3, name=f"{name}_conv2", activation=None, bsconv_u=bsconv_u)
    shortcut = x
    if strides != 1 or in_channels != filters:
        shortcut = _projection(
            x,
            ctx,
            filters,
            strides,
            name=f"{name}_projection",
            use_bn=True,
            bsconv_u=bsconv_u,
            projection=projection,
        )
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return ctx.activation(y, "relu", f"{name}_relu")


def preact_unit(
    x, ctx: Context, *, filters: int, strides: int, bsconv_u: bool, projection: dict, name: str
):
    """Pre-activation (WRN) unit: ``conv2(ReLU(BN(conv1(x')))) + shortcut``, ``x' = ReLU(BN(x))``.

    The shortcut is ``x`` when the unit keeps width and stride, else a projection of ``x'``.
    """
    in_channels = int(x.shape[-1])
    pre = ctx.bn(f"{name}_bn")(x)
    pre = ctx.activation(pre, "relu", f"{name}_relu")
    if strides == 2:
        y = strided_conv_block(
            pre, ctx, filters, name=f"{name}_conv1", activation="relu", bsconv_u=bsconv_u
        )
    else:
        y = conv_block(pre, ctx, filters, 3, name=f"{name}_conv1", bsconv_u=bsconv_u)
    y = conv(y, ctx, filters, 3, name=f"{name}_conv2", bsconv_u=bsconv_u)
    shortcut = x
    if in_channels != filters or strides != 1:
        shortcut = _projection(
            pre,
            ctx,
            filters,
            strides,
            name=f"{name}_projection",
            use_bn=False,
            bsconv_u=bsconv_u,
            projection=projection,
        )
    return keras.layers.Add(name=f"{name}_add")([y, shortcut])
