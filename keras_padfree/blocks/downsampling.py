"""The downsampling modes: how a network halves its feature maps, decided in this one place.

The builder picks one mode per model (``downsampling="standard" | "padding_free" | "attention"``)
and hands it to every block through the context. A block never asks which mode it runs under: it
asks the mode for what it needs.

* ``depthwise_bn_act(ctx, x, k, act, name=...)``: a stride-2 depthwise conv with its BN and
  activation (the main case of the paper);
* ``padding(k)``: the symmetric padding of any other stride-2 conv of kernel ``k`` (full convs,
  projection shortcuts, pyramid branches);
* ``shortcut(ctx, x, filters=..., name=...)``: the parallel path the mode adds next to a
  stride-2 conv (the max-pool shortcut), or None;
* ``output_size(h, k)`` / ``min_input(h_out, k)``: the size rule, forwards and backwards, from
  which the builder derives every model's minimum input size;
* ``replaces_blocks`` / ``replace_block(...)``: a mode may replace a whole downsampling block
  (EfficientFormerV2's attention embedding).

A new mode is one class here, added to :data:`MODES`.
"""

from __future__ import annotations

from typing import Any

from keras_padfree.layers import _utils
from keras_padfree.layers.attention_downsampling import AttentionDownsampling
from keras_padfree.layers.max_pool_shortcut import MaxPoolShortcut
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv


class Standard:
    """Stride-2 convs with PyTorch's symmetric "same" padding ``(k - 1) // 2``."""

    name = "standard"
    replaces_blocks = False
    padding_free = False  # whether stride-2 convs drop their border padding (for fused layers)

    def padding(self, kernel_size: int) -> int:
        return (kernel_size - 1) // 2

    def output_size(self, size: int | None, kernel_size: int = 3) -> int | None:
        return _utils.conv_output_size(size, kernel_size, 2, self.padding(kernel_size))

    def min_input(self, out_size: int, kernel_size: int = 3, *, attention: bool = False) -> int:
        """The smallest input a stride-2 step of this mode maps to at least ``out_size``."""
        return max(1, (out_size - 1) * 2 + kernel_size - 2 * self.padding(kernel_size))

    def depthwise_bn_act(
        self, ctx: Any, x, kernel_size: int, activation: str | None, *, name: str, names: Any
    ):
        return ctx.plain_depthwise_bn_act(x, kernel_size, 2, activation, name=name, names=names)

    def shortcut(self, ctx: Any, x, *, filters: int | None = None, name: str):
        return None


class PaddingFree(Standard):
    """The paper's padding-free downsampling.

    A stride-2 conv of kernel ``k`` drops its border padding (``(k - 3) // 2``: 3x3 -> 0, 5x5 -> 1)
    and the block input's max-pool (:class:`MaxPoolShortcut`, 3x3/2/0, same output size) is added
    at the family's join point. Maps go 32 -> 15 -> 7 -> 3, 224 -> 112 -> 55 -> 27 -> 13 -> 6.
    """

    name = "padding_free"
    padding_free = True

    def padding(self, kernel_size: int) -> int:
        return (kernel_size - 3) // 2

    def depthwise_bn_act(
        self, ctx: Any, x, kernel_size: int, activation: str | None, *, name: str, names: Any
    ):
        q = ctx.quirks
        pool, pool_padding = 3, 0
        if q.shortcut_pool == "kernel":
            pool, pool_padding = kernel_size, self.padding(kernel_size)
        return PaddingFreeDWConv(
            kernel_size=kernel_size,
            activation=activation,
            shortcut_position=q.join,
            shortcut_pool_size=pool,
            shortcut_padding=pool_padding,
            bn_epsilon=q.bn_epsilon,
            bn_momentum=q.bn_momentum,
            depthwise_initializer=q.init.depthwise(),
            name=name + names.padding_free,
        )(x)

    def shortcut(self, ctx: Any, x, *, filters: int | None = None, name: str):
        return MaxPoolShortcut(
            filters=filters, kernel_initializer=ctx.quirks.init.conv(), name=name
        )(x)


class Attention(Standard):
    """EfficientFormerV2's attention downsampling, replacing every downsampling block wholesale.

    The first ``quirks.attention_conv_only`` replaced blocks are conv-only embeddings (dense 3x3/2/1
    conv with bias + BN), the others add 4-D attention, which needs at least a 2x2 input.
    """

    name = "attention"
    replaces_blocks = True

    def min_input(self, out_size: int, kernel_size: int = 3, *, attention: bool = False) -> int:
        size = super().min_input(out_size, 3)
        return max(size, 2) if attention else size

    def uses_attention(self, ctx: Any, index: int) -> bool:
        """Whether the ``index``-th (0-based) replaced block uses attention."""
        return index >= ctx.quirks.attention_conv_only

    def replace_block(self, ctx: Any, x, filters: int, index: int, *, name: str):
        q = ctx.quirks
        return AttentionDownsampling(
            filters,
            use_attention=self.uses_attention(ctx, index),
            bn_epsilon=q.bn_epsilon,
            bn_momentum=q.bn_momentum,
            kernel_initializer=q.init.conv(),
            depthwise_initializer=q.init.depthwise(),
            name=f"{name}_embedding",
        )(x)


MODES = {mode.name: mode for mode in (Standard(), PaddingFree(), Attention())}


def get_mode(name: str):
    """The downsampling mode called ``name`` (one of :data:`MODES`)."""
    return MODES[_utils.check_choice(name, "downsampling", tuple(MODES))]
