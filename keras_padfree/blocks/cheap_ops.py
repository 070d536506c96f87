"""The blocks of the cheap-operation MobileNetV2/V3 variants (kai-pixel, "Efficient operations").

The "cheap operations" replace learned layers by parameter-free channel copies (``tile_r``: the
concatenation of ``r`` copies of a tensor along channels, copy-major, as ``torch.cat([x] * r, 1)``)
and channel shuffles. Layer names are ``{prefix}{expand, expand_bn, expand_act, shuffle, tile, dw,
dw_bn, se_*, dw_act, project, project_bn, out_shuffle, add}``.
"""

from __future__ import annotations

import keras

from keras_padfree.blocks.common import Context
from keras_padfree.layers import _utils
from keras_padfree.layers.channel_shuffle import ChannelShuffle
from keras_padfree.layers.channel_shuffle import ChannelSplit

EXPANSIONS = ("conv", "tile", "shuffle_tile", "grouped_tile")
SE_KINDS = ("fc2", "tile4_nogate", "tile8", "tile4")


def tile(x, copies: int, name: str):
    """``tile_r(x)``: ``copies`` copies of ``x`` concatenated along channels (copy-major)."""
    if copies == 1:
        return x
    return keras.layers.Concatenate(axis=-1, name=name)([x] * copies)


def pointwise(x, ctx: Context, filters: int, name: str, groups: int = 1):
    return ctx.conv(x, filters, 1, name=name, groups=groups)


def squeeze_excite(x, ctx: Context, kind: str, prefix: str):
    """The SE variants of the repository (Dense layers without bias, exact ``C / r`` widths).

    * ``"fc2"`` (baseline): pool -> Dense(C/4) -> ReLU -> Dense(C) -> h-sigmoid -> multiply.
    * ``"tile4_nogate"`` (cheapV3, S1): pool -> Dense(C/4) -> ReLU -> tile_4 -> multiply (no gate).
    * ``"tile8"`` (S2): pool -> Dense(C/8) -> ReLU -> tile_8 -> h-sigmoid -> multiply.
    * ``"tile4"`` (CV3K, S3): pool -> Dense(C/4) -> ReLU -> tile_4 -> h-sigmoid -> multiply.
    """
    _utils.check_choice(kind, "se", SE_KINDS)
    channels = int(x.shape[-1])
    reduction = 8 if kind == "tile8" else 4
    if channels % reduction:
        raise ValueError(
            f"The SE of {prefix!r} needs channels divisible by {reduction}. Received: {channels}."
        )
    dense = ctx.quirks.init.dense
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}se_pool")(x)
    s = keras.layers.Dense(
        channels // reduction, use_bias=False, kernel_initializer=dense(), name=f"{prefix}se_reduce"
    )(s)
    s = keras.layers.ReLU(name=f"{prefix}se_relu")(s)
    if kind == "fc2":
        s = keras.layers.Dense(
            channels, use_bias=False, kernel_initializer=dense(), name=f"{prefix}se_expand"
        )(s)
    else:
        s = tile(s, reduction, f"{prefix}se_tile")
    if kind != "tile4_nogate":
        s = keras.layers.Activation("hard_sigmoid", name=f"{prefix}se_gate")(s)
    return keras.layers.Multiply(name=f"{prefix}se_scale")([x, s])


def spatial_conv(x, ctx: Context, kernel_size: int, strides: int, name: str, groups: int = 0):
    """The block's k x k conv: depthwise, or grouped with ``groups`` groups (cheapV3G)."""
    padding = ctx.mode.padding(kernel_size) if strides == 2 else (kernel_size - 1) // 2
    if groups:
        return ctx.conv(
            x, int(x.shape[-1]), kernel_size, strides, name=name, padding=padding, groups=groups
        )
    return ctx.depthwise(x, kernel_size, strides, name=name, padding=padding)


def v3_bottleneck(
    x,
    ctx: Context,
    *,
    kernel_size,
    exp,
    out,
    strides,
    se,
    activation,
    prefix,
    expansion="conv",
    se_kind="fc2",
    shuffle_groups=None,
    spatial_groups=None,
    out_shuffle=None,
):
    """A MobileNetV3 bottleneck as the repository writes it, with the cheap replacements.

    ``[expansion] -> act -> dw k x k (stride) -> BN -> [SE] -> act -> 1x1 -> BN (+ residual)``: the
    SE sits after the depthwise BN and before its activation; residual iff stride 1 and in == out.

    Args:
        expansion: "conv" (1x1 + BN), "tile" (``tile_{exp/in}``, no BN; R1),
            "shuffle_tile" (``ChannelShuffle(shuffle_groups)`` then tile, no BN; R3),
            "grouped_tile" (CV3K's R4: ``t = tile_g(x); t + BN(grouped 1x1 (groups 3g)(t))``).
            Skipped entirely when ``exp == in`` (the first block).
        spatial_groups: if set, the k x k conv is a grouped conv with this many groups instead of
            a depthwise conv (cheapV3G blocks 8-15).
        out_shuffle: CV3K's ``ChannelShuffle(g)`` after the projection BN (before the residual add).
    """
    c_in = int(x.shape[-1])
    h = x
    if exp != c_in:
        if expansion == "conv":
            h = pointwise(h, ctx, exp, f"{prefix}expand")
            h = ctx.bn(f"{prefix}expand_bn")(h)
        else:
            if exp % c_in:
                raise ValueError(
                    f"Block {prefix!r}: a tiled expansion needs exp ({exp}) to be a multiple of "
                    "the "
                    f"input channels ({c_in})."
                )
            copies = exp // c_in
            if expansion == "shuffle_tile":
                h = ChannelShuffle(shuffle_groups, name=f"{prefix}shuffle")(h)
            h = tile(h, copies, f"{prefix}tile")
            if expansion == "grouped_tile":
                g = pointwise(h, ctx, exp, f"{prefix}expand", groups=3 * copies)
                g = ctx.bn(f"{prefix}expand_bn")(g)
                h = keras.layers.Add(name=f"{prefix}expand_add")([h, g])
        h = ctx.activation(h, activation, f"{prefix}expand_act")
    h = spatial_conv(h, ctx, kernel_size, strides, f"{prefix}dw", groups=spatial_groups or 0)
    h = ctx.bn(f"{prefix}dw_bn")(h)
    if se:
        h = squeeze_excite(h, ctx, se_kind, prefix)
    h = ctx.activation(h, activation, f"{prefix}dw_act")
    h = pointwise(h, ctx, out, f"{prefix}project")
    h = ctx.bn(f"{prefix}project_bn")(h)
    if out_shuffle:
        h = ChannelShuffle(out_shuffle, name=f"{prefix}out_shuffle")(h)
    if strides == 1 and c_in == out:
        h = keras.layers.Add(name=f"{prefix}add")([h, x])
    return h


def v2_block(x, ctx: Context, *, expansion_ratio, out, strides, prefix, cheap=False, match_half=0):
    """A MobileNetV2 block of the repository (kuangliu "pytorch-cifar" flavour) or its cheap form.

    Baseline: ``1x1 (in -> t * in) -> BN -> ReLU -> dw3x3 (stride) -> BN -> ReLU -> 1x1 -> BN``,
    also
    for t = 1; shortcut: identity (stride 1, in == out), 1x1 + BN projection (stride 1, in != out),
    none (stride 2). Cheap (cheapV2): the expansion is ``tile_t`` with no BN and no activation (none
    at all when t = 1), and the stride-1 projection becomes a parameter-free channel match: the
    first ``out`` channels when out < in, else ``x`` concatenated with ``out - in`` of its channels
    (``x[:8]`` for 16 -> 24, ``x[32:64]`` for 64 -> 96, all of ``x`` for 160 -> 320), taken as one
    half of ``x``: ``match_half`` 0 (first) or 1 (second), as the reference hard-codes per block.
    """
    c_in = int(x.shape[-1])
    h = x
    if cheap:
        h = tile(h, expansion_ratio, f"{prefix}tile")
    else:
        h = pointwise(h, ctx, expansion_ratio * c_in, f"{prefix}expand")
        h = ctx.bn(f"{prefix}expand_bn")(h)
        h = ctx.activation(h, "relu", f"{prefix}expand_act")
    h = spatial_conv(h, ctx, 3, strides, f"{prefix}dw")
    h = ctx.bn(f"{prefix}dw_bn")(h)
    h = ctx.activation(h, "relu", f"{prefix}dw_act")
    h = pointwise(h, ctx, out, f"{prefix}project")
    h = ctx.bn(f"{prefix}project_bn")(h)
    if strides != 1:
        return h
    if c_in == out:
        shortcut = x
    elif not cheap:
        shortcut = pointwise(x, ctx, out, f"{prefix}shortcut")
        shortcut = ctx.bn(f"{prefix}shortcut_bn")(shortcut)
    else:
        shortcut = _channel_match(x, out, prefix, match_half)
    return keras.layers.Add(name=f"{prefix}add")([h, shortcut])


def _channel_match(x, out, prefix, match_half):
    c_in = int(x.shape[-1])
    if out == 2 * c_in:
        return tile(x, 2, f"{prefix}shortcut_tile")
    if 2 * out == c_in:
        return ChannelSplit(2, name=f"{prefix}shortcut_split")(x)[0]
    if c_in < out < 2 * c_in and 2 * (out - c_in) == c_in:
        halves = ChannelSplit(2, name=f"{prefix}shortcut_split")(x)
        extra = halves[match_half]
        return keras.layers.Concatenate(axis=-1, name=f"{prefix}shortcut_concat")([x, extra])
    raise ValueError(
        f"Block {prefix!r}: no parameter-free channel match from {c_in} to {out} channels "
        "(cheapV2 knows out = in / 2, in * 1.5 and in * 2)."
    )
