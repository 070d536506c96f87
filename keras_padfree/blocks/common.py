"""What every family's blocks are made of: its quirks as data, and the conv/BN/activation units.

A family states how its reference implementation differs from the others in a :class:`Quirks`
record (BatchNorm settings, initialisers, where the padding-free max-pool shortcut joins, layer
names, ...). The builder hands the blocks a :class:`Context` made from it; blocks then build their
convolutions through the context (``ctx.conv_bn_act``, ``ctx.depthwise_bn_act``), so that

* every stride-2 depthwise convolution goes through the downsampling mode of the build (standard,
  padding-free or attention: :mod:`keras_padfree.blocks.downsampling`), never through an
  ``if padding_free`` of the block's own;
* every layer gets its own initializer instance (made by a factory per layer: two same-shaped
  kernels never start identical, and two builds differ);
* layer names follow the family's :class:`Names`, which keep the names (and so the weight files)
  of earlier versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

from keras_padfree.layers import _utils

JOIN_POINTS = ("after_activation", "after_bn", "before_bn")
SHORTCUT_POOLS = ("3x3", "kernel")


@dataclasses.dataclass(frozen=True)
class Initializers:
    """Factories of a family's initializers: each call makes a new instance (a new seed)."""

    conv: Callable[[], Any]
    depthwise: Callable[[], Any]
    dense: Callable[[], Any]


# PyTorch's kaiming_normal_(mode="fan_out"): a Keras conv kernel (kh, kw, I, O) has PyTorch's
# fan-out; a depthwise kernel (kh, kw, C, 1) has PyTorch's fan-out (C * kh * kw) as its Keras
# fan-in.
KAIMING_NORMAL_FAN_OUT = Initializers(
    conv=lambda: keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
    depthwise=lambda: keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal"),
    dense=lambda: keras.initializers.RandomNormal(0.0, 0.01),
)
# PyTorch's default init of convs and Linear layers (kaiming_uniform_(a=sqrt(5))):
# U(+-1/sqrt(fan_in))
# with PyTorch's fan-in, which for a depthwise kernel is Keras' fan-out (kh * kw).
TORCH_DEFAULT = Initializers(
    conv=lambda: keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
    depthwise=lambda: keras.initializers.VarianceScaling(1.0 / 3.0, "fan_out", "uniform"),
    dense=lambda: keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
)
# kaiming_uniform_ (a = 0): U(+-sqrt(6 / fan_in)), depthwise fan-in kh * kw (the BSConv library).
KAIMING_UNIFORM = Initializers(
    conv=lambda: keras.initializers.HeUniform(),
    depthwise=lambda: keras.initializers.VarianceScaling(2.0, "fan_out", "uniform"),
    dense=lambda: keras.initializers.HeUniform(),
)
# Xavier (Glorot) uniform everywhere (the PydMobileNet training script).
GLOROT_UNIFORM = Initializers(
    conv=lambda: keras.initializers.GlorotUniform(),
    depthwise=lambda: keras.initializers.GlorotUniform(),
    dense=lambda: keras.initializers.GlorotUniform(),
)


@dataclasses.dataclass(frozen=True)
class Names:
    """How a family names the layers of a conv unit called ``N``.

    The conv is ``N + conv`` (``N + depthwise`` for a depthwise conv), its BN ``N + bn``, its
    activation ``N + act``, a padding-free downsampling layer ``N + padding_free``; an explicit
    ZeroPadding2D is named after the unit (``N_pad``) or after the conv (``N_conv_pad``).
    """

    conv: str = "_conv"
    depthwise: str = "_conv"
    bn: str = "_bn"
    act: str = "_act"
    padding_free: str = "_pf"
    pad_named_after_conv: bool = False


@dataclasses.dataclass(frozen=True)
class Quirks:
    """The data that distinguishes one reference implementation's blocks from another's.

    Attributes:
        bn_epsilon: BatchNorm epsilon.
        bn_momentum: BatchNorm momentum in Keras' convention (0.9 is PyTorch's 0.1).
        init: initializer factories.
        names: layer-name conventions.
        join: where the padding-free max-pool shortcut joins a stride-2 depthwise conv:
            "after_activation" (``act(BN(dw(x))) + pool(x)``), "after_bn" (``BN(dw(x)) + pool(x)``)
            or "before_bn" (``BN(dw(x) + pool(x))``).
        shortcut_pool: the pool of the padding-free shortcut: "3x3" (3x3/2/0 for every kernel) or
            "kernel" (k x k / 2 / (k - 3) // 2: 5x5/2/1 for 5x5 convs, GhostNet's reference).
        attention_conv_only: with attention downsampling, how many of the first downsampling
            blocks are conv-only embeddings (the rest use attention).
    """

    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9
    init: Initializers = TORCH_DEFAULT
    names: Names = Names()
    join: str = "after_activation"
    shortcut_pool: str = "3x3"
    attention_conv_only: int = 1

    def __post_init__(self):
        _utils.check_choice(self.join, "join", JOIN_POINTS)
        _utils.check_choice(self.shortcut_pool, "shortcut_pool", SHORTCUT_POOLS)


class Context:
    """What a block function gets: the family's quirks, the downsampling mode, the build's choices.

    Attributes:
        quirks: the family's :class:`Quirks`.
        mode: the downsampling mode (:mod:`keras_padfree.blocks.downsampling`).
        config: the layout's name ("cifar", "imagenet", ...).
        config_values: the layout's family-specific settings (e.g. ``{"stem_strides": 2}``).
        args: the family's architecture arguments of this build (e.g. ``width_multiplier``).
    """

    def __init__(
        self,
        quirks: Quirks,
        mode: Any,
        config: str,
        args: dict | None = None,
        config_values: dict | None = None,
    ):
        self.quirks = quirks
        self.mode = mode
        self.config = config
        self.config_values = dict(config_values or {})
        self.args = dict(args or {})

    # -- single layers --------------------------------------------------------------------------
    def bn(self, name: str, **kwargs: Any) -> keras.layers.Layer:
        return keras.layers.BatchNormalization(
            epsilon=self.quirks.bn_epsilon, momentum=self.quirks.bn_momentum, name=name, **kwargs
        )

    def activation(self, x, activation: str | None, name: str):
        """``activation`` as a named layer (ReLU/ReLU6 as ``ReLU`` layers); None leaves ``x``."""
        layer = _utils.activation_layer(activation, layer_name=name)
        return x if layer is None else layer(x)

    def conv(
        self,
        x,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        *,
        name: str,
        padding: int | None = None,
        pad_name: str | None = None,
        groups: int = 1,
        use_bias: bool = False,
        **kwargs: Any,
    ):
        """A full conv with PyTorch's symmetric ``padding`` (default ``(k - 1) // 2``)."""
        padding = (kernel_size - 1) // 2 if padding is None else padding
        x, keras_padding = _utils.pad_for_conv(x, kernel_size, strides, padding, pad_name or name)
        kwargs.setdefault("kernel_initializer", self.quirks.init.conv())
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=keras_padding,
            groups=groups,
            use_bias=use_bias,
            name=name,
            **kwargs,
        )(x)

    def depthwise(
        self,
        x,
        kernel_size: int,
        strides: int = 1,
        *,
        name: str,
        padding: int | None = None,
        pad_name: str | None = None,
    ):
        """A bias-free depthwise conv with PyTorch's symmetric ``padding``."""
        padding = (kernel_size - 1) // 2 if padding is None else padding
        x, keras_padding = _utils.pad_for_conv(x, kernel_size, strides, padding, pad_name or name)
        return keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding=keras_padding,
            use_bias=False,
            depthwise_initializer=self.quirks.init.depthwise(),
            name=name,
        )(x)

    # -- conv units -----------------------------------------------------------------------------
    def conv_bn_act(
        self,
        x,
        filters: int,
        kernel_size: int = 1,
        strides: int = 1,
        activation: str | None = None,
        *,
        name: str,
        padding: int | None = None,
        use_bn: bool = True,
        names: Names | None = None,
        **kwargs: Any,
    ):
        """``act(BN(conv(x)))`` named after the unit ``name`` by the family's (or ``names``)
        rules."""
        names = names or self.quirks.names
        conv_name = name + names.conv
        pad_base = conv_name if names.pad_named_after_conv else name
        x = self.conv(
            x,
            filters,
            kernel_size,
            strides,
            name=conv_name,
            padding=padding,
            pad_name=pad_base,
            **kwargs,
        )
        if use_bn:
            x = self.bn(name + names.bn)(x)
        return self.activation(x, activation, name + names.act)

    def depthwise_bn_act(
        self,
        x,
        kernel_size: int,
        strides: int,
        activation: str | None,
        *,
        name: str,
        names: Names | None = None,
    ):
        """A depthwise conv with its BN and activation; stride 2 is built by the mode."""
        names = names or self.quirks.names
        if strides == 2:
            return self.mode.depthwise_bn_act(
                self, x, kernel_size, activation, name=name, names=names
            )
        return self.plain_depthwise_bn_act(
            x, kernel_size, strides, activation, name=name, names=names
        )

    def plain_depthwise_bn_act(
        self,
        x,
        kernel_size: int,
        strides: int,
        activation: str | None,
        *,
        name: str,
        names: Names | None = None,
        padding: int | None = None,
    ):
        names = names or self.quirks.names
        conv_name = name + names.depthwise
        pad_base = conv_name if names.pad_named_after_conv else name
        x = self.depthwise(
            x, kernel_size, strides, name=conv_name, padding=padding, pad_name=pad_base
        )
        x = self.bn(name + names.bn)(x)
        return self.activation(x, activation, name + names.act)
