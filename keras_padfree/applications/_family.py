"""A model family as data: its table, its quirks, and the few functions only it can supply.

Every family module defines one :class:`Family` and hands it to the generic builder
(:mod:`keras_padfree.applications._builder`), which turns it into the public keras.applications-
style functions and registers its models. What the builder does for every family (argument
checks, configuration choice, minimum input size, preprocessing, stem, downsampling mode, head,
weights, docstring) is not repeated here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from keras_padfree.applications._arch import Table
from keras_padfree.blocks.common import Quirks


@dataclasses.dataclass(frozen=True)
class Config:
    """One input layout of a family (e.g. "cifar": 32x32 with the CIFAR strides).

    Attributes:
        name: "cifar", "imagenet", "imagenet32", ...
        default_size: input side when neither ``input_shape`` nor ``input_tensor`` is given.
        stride_column: the table column holding this layout's strides ("s32" or "s").
        stem_steps: the stem's downsampling steps ``(kernel, stride, padding)`` in this layout
            (stride-1 steps may be left out); the minimum input size is derived from them and
            the table.
        normalization: ``(mean, std)`` per RGB channel on [0, 1] pixels that the reference's
            training used, or None (pixels in [0, 1]); ``include_preprocessing=True`` builds it in.
        values: family-specific settings of this layout (e.g. the stem stride).
    """

    name: str
    default_size: int
    stride_column: str = "s"
    stem_steps: tuple = ()
    normalization: tuple | None = None
    values: dict = dataclasses.field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


@dataclasses.dataclass(frozen=True)
class Head:
    """A family's classifier head, between the feature maps and the "predictions" Dense layer.

    Attributes:
        pool: name of the global average pooling layer.
        pool_kind: "module" (``GlobalAveragePooling2D``), "keepdims" (the same, keeping 1x1
            spatial dims), or "functional" (:class:`~keras_padfree.layers.SpatialMean`: the
            reference pooled with a functional call, which the paper's counter does not charge).
        hidden: ``hidden(x, ctx)`` layers between the pool and the dropout (None: none).
        dropout: the reference's dropout rate before the classifier (0: none).
        dropout_name: its layer name.
        classifier: ``classifier(fan_in, classes)`` -> Dense keyword arguments (initializers).
    """

    pool: str = "avg_pool"
    pool_kind: str = "module"
    hidden: Callable | None = None
    dropout: float = 0.0
    dropout_name: str = "dropout"
    classifier: Callable[[int, int], dict] = lambda fan_in, classes: {}


@dataclasses.dataclass(frozen=True)
class Arg:
    """A family-specific builder argument (depth, width, head type, ...).

    Attributes:
        name: the keyword.
        default: its default.
        doc: one line for the docstring's ``Args:``.
        check: ``check(value)`` returns the (normalised) value or raises ``ValueError``.
        positional: whether it leads the signature as a positional argument.
        annotation: its type, for the signature.
    """

    name: str
    default: Any
    doc: str
    check: Callable[[Any], Any] | None = None
    positional: bool = False
    annotation: Any = Any


@dataclasses.dataclass(frozen=True)
class Family:
    """Everything that makes one family different from the others.

    Attributes:
        name: registry family key (e.g. "ghostnet").
        title: human name ("GhostNet 1.0x").
        description: the architecture in prose, with every reference quirk reproduced (goes into
            the builders' docstrings).
        source: URL of the reference implementation.
        configs: the input layouts, first = default.
        table: the architecture table, or ``table(args, config)`` for tables that depend on the
            build's arguments (depth, width, ...).
        quirks: :class:`~keras_padfree.blocks.common.Quirks`.
        block: ``block(x, row, ctx, strides=..., name=...)`` builds one table row.
        block_name: the layer-name prefix of a row, a format string over the row's columns and
            ``index``/``stage``/``unit`` (e.g. ``"block{index}"``) or a function of the row.
        stem: ``stem(x, ctx)``: the standard stem.
        hybrid_stem: ``hybrid_stem(ctx)`` -> :class:`HybridStem` keyword arguments (None: the
            family has no hybrid stem).
        input_layer: ``input_layer(x, ctx)`` before the stem (e.g. a learnable input BN), or None.
        tail: ``tail(x, ctx)`` after the last block (the last conv of the features), or None.
        head: ``head(ctx)`` -> :class:`Head`.
        args: family-specific :class:`Arg` s.
        downsampling: the downsampling modes the family supports (None: every mode of
            :data:`keras_padfree.blocks.downsampling.MODES`, so that a new mode needs no edit
            here).
        default_name: ``default_name(args, variant)`` -> the model name when none is given.
        needs_static_size: the family sizes layers from the feature maps (ParC kernels).
        recipes: training recipe per registry dataset token ("imagenet32", ...) where the
            reference trained differently on it, else per dataset style ("small": 32-px datasets,
            "large": 224-px ones).
        default_classes: ``classes`` when not given (None: the configuration's ``classes`` value).
        include_preprocessing: the default of ``include_preprocessing``.
        legacy_args: ``legacy_args(builder_name, kwargs)`` maps arguments of earlier versions
            (renamed or retired) to today's, warning once; None: the family has none.
        available_configs: ``available_configs(args)`` -> the layouts a build with these
            arguments has (None: all of ``configs``).
        check: ``check(ctx, stem=..., weights=..., include_top=...)``: cross-argument checks of
            the family, raising ``ValueError`` (None: none).
        extra_weight_suffixes: weight-file suffixes besides ``.weights.h5`` / ``.keras``.
        load_weights: ``load_weights(model, path)`` -> True when it loaded a file of the family's
            own format (e.g. MXNet ``.params``), False to let the builder load it.
        head_has_dropout: whether the builders take ``dropout_rate``.
        convert_options: how the family's padding-free models differ from its originals beyond
            the quirks' join point and pool, as :func:`keras_padfree.convert` arguments
            (``{}``: nothing more); None: its originals do not convert (no depthwise stride-2
            convs, or no padding-free form).
        module: the module of the public builders (for their ``__module__``).
    """

    name: str
    title: str
    description: str
    source: str
    configs: tuple
    table: Table | Callable
    quirks: Quirks
    block: Callable
    block_name: str | Callable
    stem: Callable
    head: Callable
    hybrid_stem: Callable | None = None
    input_layer: Callable | None = None
    tail: Callable | None = None
    args: tuple = ()
    downsampling: tuple | None = None
    default_name: Callable | None = None
    needs_static_size: bool = False
    recipes: dict = dataclasses.field(default_factory=dict)
    default_classes: int | None = 1000
    include_preprocessing: bool = False
    legacy_args: Callable | None = None
    available_configs: Callable | None = None
    check: Callable | None = None
    extra_weight_suffixes: tuple = ()
    load_weights: Callable | None = None
    head_has_dropout: bool = False
    convert_options: dict | None = None
    module: str = "keras_padfree.applications"

    @property
    def modes(self) -> tuple:
        """The names of the downsampling modes this family builds."""
        from keras_padfree.blocks.downsampling import MODES

        return tuple(MODES) if self.downsampling is None else tuple(self.downsampling)

    def config(self, name: str) -> Config:
        for config in self.configs:
            if config.name == name:
                return config
        raise KeyError(name)

    @property
    def config_names(self) -> tuple:
        return tuple(config.name for config in self.configs)

    def table_for(self, args: dict, config: Config) -> Table:
        return self.table(args, config) if callable(self.table) else self.table

    def row_name(self, row) -> str:
        if callable(self.block_name):
            return self.block_name(row)
        return self.block_name.format(index=row.index, stage=row.stage, unit=row.unit, **row.values)


# --------------------------------------------------------------------------------------------------
# The parts most families state the same way, as data.


def _value(value, ctx):
    return value(ctx) if callable(value) else value


def conv_unit(
    filters, kernel_size: int, activation: str | None, name: str, strides_key: str | None = None
) -> Callable:
    """``fn(x, ctx)``: a conv -> BN -> act unit (a standard stem, a last 1x1 conv).

    Args:
        filters: width, or ``filters(ctx)``.
        strides_key: the layout value holding the stride (e.g. "stem_strides"); None: stride 1.
    """

    def unit(x, ctx):
        strides = ctx.config_values.get(strides_key, 1) if strides_key else 1
        return ctx.conv_bn_act(x, _value(filters, ctx), kernel_size, strides, activation, name=name)

    return unit


def hybrid_stem(filters, activation: str, **extra: Any) -> Callable:
    """``fn(ctx)`` -> the :class:`HybridStem` arguments of a family.

    The first conv's stride is the layout's ``stem_strides`` (1 when the layout has none), the BNs
    keep PyTorch's defaults (eps 1e-5, momentum 0.1: every reference's hybrid stem does, also where
    the rest of the network does not), the initializers are the family's. ``extra`` adds or
    overrides arguments (values may be functions of the context).
    """

    def kwargs(ctx):
        args = dict(
            filters=_value(filters, ctx),
            strides=ctx.config_values.get("stem_strides", 1),
            activation=activation,
            bn_epsilon=1e-5,
            bn_momentum=0.9,
            kernel_initializer=ctx.quirks.init.conv(),
            depthwise_initializer=ctx.quirks.init.depthwise(),
        )
        args.update({key: _value(value, ctx) for key, value in extra.items()})
        return args

    return kwargs
