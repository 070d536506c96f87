"""The one builder behind every family: a :class:`~keras_padfree.applications._family.Family` in,
keras.applications-style functions out.

:func:`build` does, for every family, in this order:

1. checks the keras.applications arguments and the family's own (one message style);
2. picks the downsampling mode (:mod:`keras_padfree.blocks.downsampling`) and the stem;
3. picks the input layout (``config``) by one rule for all families (:func:`resolve_config`);
4. derives the minimum input size from the architecture table (:func:`min_input_size`);
5. builds input, optional preprocessing, input layer, stem, the table's blocks (a downsampling
   mode that replaces whole blocks, EfficientFormerV2's attention, replaces them here), tail,
   and head or pooling;
6. loads ``weights``.

:func:`make_builder` turns a family into its public functions (``GhostNet``, ``GhostNetPF``)
with a real signature and a generated docstring.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import textwrap
import warnings
from typing import Any

import keras

from keras_padfree.applications import _common
from keras_padfree.applications._family import Config
from keras_padfree.applications._family import Family
from keras_padfree.blocks import downsampling as ds
from keras_padfree.blocks.common import Context
from keras_padfree.layers import _utils
from keras_padfree.layers.hybrid_stem import HybridStem
from keras_padfree.layers.spatial_mean import SpatialMean

STEMS = ("standard", "hybrid")
# (stem, downsampling) of the papers' variants.
VARIANTS = {
    "orig": ("standard", "standard"),
    "pf": ("hybrid", "padding_free"),
    "stem_only": ("hybrid", "standard"),
    "downsampling_only": ("standard", "padding_free"),
    "effv2_downsampling": ("standard", "attention"),
}
VARIANT_DESCRIPTIONS = {
    "orig": "original",
    "pf": "padding-free downsampling + hybrid stem",
    "stem_only": "ablation: hybrid stem only",
    "downsampling_only": "ablation: padding-free downsampling only",
    "effv2_downsampling": "EfficientFormerV2 attention downsampling",
}
# config=None: inputs below this side use the CIFAR layout (the ImageNet layout's 32x
# downsampling would leave at most 3x3 feature maps).
CIFAR_BELOW = 128

CONFIG_RULE = (
    'Layout (``config``): ``"cifar"`` (the CIFAR strides of the papers\' 32x32 rows) or '
    '``"imagenet"`` (224x224 strides) where the family has both. Left as None, the input size '
    f"decides: inputs whose height or width is below {CIFAR_BELOW} pixels use the CIFAR layout, "
    "others (and inputs of unknown size) the family's default layout; a family with one of the "
    'two layouts always uses it. Other layouts (e.g. PydMobileNet\'s "imagenet32") are chosen '
    "explicitly."
)


def variant_of(stem: str, downsampling: str) -> str:
    """The variant name of a (stem, downsampling) pair ("pf", ...; else "<stem>_stem_<mode>")."""
    for variant, pair in VARIANTS.items():
        if pair == (stem, downsampling):
            return variant
    return f"{stem}_stem_{downsampling}"


def _known_shape(input_tensor, input_shape) -> tuple | None:
    if input_tensor is not None:
        return tuple(input_tensor.shape[1:])
    if input_shape is not None:
        return tuple(input_shape)
    return None


def resolve_config(
    family: Family, config: str | None, shape: tuple | None, available: tuple | None = None
) -> Config:
    """The layout of a build: ``config`` if given, else the one rule (see :data:`CONFIG_RULE`)."""
    names = available or family.config_names
    if config == "auto":  # the spelling of earlier versions
        config = None
    if config is not None:
        return family.config(_utils.check_choice(config, "config", names))
    layouts = [n for n in names if n in ("cifar", "imagenet")]
    sides = [d for d in (shape or ())[:2] if d is not None]
    if len(layouts) == 2 and sides:
        return family.config("cifar" if min(sides) < CIFAR_BELOW else "imagenet")
    if len(layouts) == 1:
        return family.config(layouts[0])
    return family.config(names[0])


def min_input_size(family: Family, table, config: Config, mode: Any) -> int:
    """The smallest input side that leaves every feature map at least 1x1 (2x2 into attention).

    Derived backwards from the table's downsampling steps: a step (k, s, p) maps ``h`` to
    ``floor((h + 2p - k) / s) + 1``, so it needs ``h >= (h_out - 1) * s + k - 2p`` for ``h_out``.
    """
    steps = [("conv", k, s, p) for k, s, p in config.stem_steps]
    index = 0
    for row in table:
        if row.stride(config.stride_column) == 2:
            steps.append(("mode", row.values.get("k") or 3, index))
            index += 1
    size = 1
    for step in reversed(steps):
        if step[0] == "conv":
            _, k, s, p = step
            size = max(1, (size - 1) * s + k - 2 * p)
        else:
            _, k, i = step
            attention = mode.replaces_blocks and i >= family.quirks.attention_conv_only
            size = mode.min_input(size, k, attention=attention)
    return size


@dataclasses.dataclass(frozen=True)
class FeatureLevel:
    """One level of a model's feature pyramid.

    Attributes:
        level: its name, ``"P<n>"`` with ``2**n`` the nominal reduction (keras-hub's naming).
        channels: feature channels.
        reduction: the nominal reduction ``2**n`` (the number of stride-2 steps before it).
        size: the actual ``(height, width)`` at the model's input size (None where unknown).
            Padding-free downsampling maps H to ``floor((H - 3) / 2) + 1``, so at 224 px the
            levels are 112/55/27/13/6, not 112/56/28/14/7: a neck must resize to the size it
            merges into, never assume a factor of 2.
        layer: the name of the layer whose output it is.
    """

    level: str
    channels: int
    reduction: int
    size: tuple
    layer: str


def feature_info(pyramid: dict) -> tuple:
    """The :class:`FeatureLevel` s of a pyramid ``{"P<n>": tensor}`` (e.g. ``model.pyramid_outputs``
    or the outputs of a ``features_only`` model), finest first."""
    levels = []
    for level, tensor in sorted(pyramid.items(), key=lambda item: int(item[0][1:])):
        history = getattr(tensor, "_keras_history", None)
        layer = history.operation.name if history is not None else None
        levels.append(
            FeatureLevel(
                level, int(tensor.shape[-1]), 2 ** int(level[1:]), tuple(tensor.shape[1:3]), layer
            )
        )
    return tuple(levels)


def _check_levels(feature_levels, available):
    if feature_levels is None:
        return tuple(available)
    if (
        not isinstance(feature_levels, (list, tuple))
        or not feature_levels
        or any(level not in available for level in feature_levels)
    ):
        raise ValueError(
            f"Argument `feature_levels` must be a non-empty list of this model's levels "
            f"{list(available)}. Received: feature_levels={feature_levels!r}."
        )
    return tuple(feature_levels)


def _check_rate(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            "Argument `dropout_rate` must be a number in [0, 1) (or None for the reference's "
            f"rate). Received: dropout_rate={value!r}."
        )
    return float(value)


def _check_normalization(normalization, include_preprocessing):
    if normalization is None:
        return None
    if not include_preprocessing:
        raise ValueError(
            "Argument `normalization` only applies with include_preprocessing=True. "
            f"Received: normalization={normalization!r}, include_preprocessing=False."
        )
    if not isinstance(normalization, dict) or set(normalization) != {"mean", "std"}:
        raise ValueError(
            'Argument `normalization` must be a dict {"mean": [...], "std": [...]} (per RGB '
            f"channel, on pixels in [0, 1]). Received: normalization={normalization!r}."
        )
    mean, std = (
        list(normalization[k])
        if isinstance(normalization[k], (list, tuple))
        else [normalization[k]] * 3
        for k in ("mean", "std")
    )
    if (
        len(mean) != 3
        or len(std) != 3
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in mean + std)
        or any(not s > 0 for s in std)
    ):
        raise ValueError(
            "Argument `normalization` needs 3 numbers for `mean` and 3 positive numbers for "
            f"`std` (or one each). Received: normalization={normalization!r}."
        )
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _preprocessing(x, normalization):
    # In float32 also under a mixed-precision policy: raw pixels up to 255 and their normalised
    # values lose more than one 16-bit rounding when computed in 16 bits.
    x = keras.layers.Rescaling(1.0 / 255.0, dtype="float32", name="preprocessing_rescale")(x)
    if normalization is None:
        return x
    mean, std = normalization
    return keras.layers.Normalization(
        mean=list(mean),
        variance=[s * s for s in std],
        dtype="float32",
        name="preprocessing_normalize",
    )(x)


def _head(
    x,
    family: Family,
    ctx: Context,
    *,
    include_top,
    pooling,
    classes,
    classifier_activation,
    dropout_rate,
):
    if not include_top:
        if pooling == "avg":
            return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if pooling == "max":
            return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
        return x
    head = family.head(ctx)
    if head.pool_kind == "functional":
        x = SpatialMean(name=head.pool)(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(
            keepdims=head.pool_kind == "keepdims", name=head.pool
        )(x)
    if head.hidden is not None:
        x = head.hidden(x, ctx)
    rate = head.dropout if dropout_rate is None else dropout_rate
    if rate:
        x = keras.layers.Dropout(rate, name=head.dropout_name)(x)
    x = keras.layers.Dense(
        classes, name=_common.CLASSIFIER_NAME, **head.classifier(int(x.shape[-1]), classes)
    )(x)
    return _common.classifier_activation_layer(x, classifier_activation)


def build(
    family: Family,
    *,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=None,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=None,
    normalization=None,
    stem="standard",
    downsampling="standard",
    padding_free=None,
    config=None,
    dropout_rate=None,
    features_only=False,
    feature_levels=None,
    **family_args,
) -> keras.Model:
    """Builds a model of ``family``; the public builders call this with their arguments."""
    # 1. arguments
    if padding_free is not None:
        if not isinstance(padding_free, bool):
            raise ValueError(
                "Argument `padding_free` must be True, False or None. "
                f"Received: padding_free={padding_free!r}."
            )
        if padding_free and (stem, downsampling) != ("standard", "standard"):
            raise ValueError(
                "Argument `padding_free=True` means stem='hybrid', downsampling='padding_free'; "
                f"don't pass it with them. Received: stem={stem!r}, "
                f"downsampling={downsampling!r}, padding_free=True."
            )
        if padding_free:
            stem, downsampling = VARIANTS["pf"]
    args = {}
    known = {arg.name: arg for arg in family.args}
    for key in family_args:
        if key not in known:
            raise TypeError(f"{family.title} builders got an unexpected argument {key!r}.")
    for arg in family.args:
        value = family_args.get(arg.name, arg.default)
        args[arg.name] = arg.check(value) if arg.check is not None else value
    _utils.check_choice(stem, "stem", STEMS if family.hybrid_stem is not None else ("standard",))
    _utils.check_choice(downsampling, "downsampling", family.modes)
    mode = ds.get_mode(downsampling)
    if include_preprocessing is None:
        include_preprocessing = family.include_preprocessing
    if not isinstance(include_preprocessing, bool):
        raise ValueError(
            "Argument `include_preprocessing` must be True or False. "
            f"Received: include_preprocessing={include_preprocessing!r}."
        )
    normalization = _check_normalization(normalization, include_preprocessing)
    dropout_rate = _check_rate(dropout_rate)
    if not isinstance(features_only, bool):
        raise ValueError(
            "Argument `features_only` must be True or False. "
            f"Received: features_only={features_only!r}."
        )
    if features_only and pooling is not None:
        raise ValueError(
            "Argument `pooling` applies to include_top=False models; a features_only model "
            f"outputs its feature maps unpooled. Received: pooling={pooling!r}."
        )
    if feature_levels is not None and not features_only:
        raise ValueError(
            "Argument `feature_levels` selects the outputs of a features_only=True "
            f"model. Received: feature_levels={feature_levels!r}."
        )
    if features_only:
        include_top = False
    available = family.available_configs(args) if family.available_configs else None
    cfg = resolve_config(family, config, _known_shape(input_tensor, input_shape), available)
    if classes is None:
        classes = family.default_classes or cfg["classes"]
    _common.validate_args(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        extra_weight_suffixes=family.extra_weight_suffixes,
    )
    variant = variant_of(stem, downsampling)
    if name is None:
        name = family.default_name(args, variant)
    ctx = Context(family.quirks, mode, cfg.name, args, cfg.values)
    if family.check is not None:
        family.check(ctx, stem=stem, weights=weights, include_top=include_top)

    # 2. input, preprocessing, stem
    table = family.table_for(args, cfg)
    inputs, x = _common.model_inputs(
        input_tensor,
        input_shape,
        default_size=cfg.default_size,
        min_size=min_input_size(family, table, cfg, mode),
        model_name=f"{name} ({cfg.name})",
    )
    if family.needs_static_size and (x.shape[1] is None or x.shape[2] is None):
        raise ValueError(
            f"{name} sizes layers from its feature maps, so the input height and width must be "
            f"known. Pass a full `input_shape`, e.g. ({cfg.default_size}, {cfg.default_size}, 3). "
            f"Received: input_shape={tuple(x.shape[1:])}."
        )
    if include_preprocessing:
        x = _preprocessing(x, normalization or cfg.normalization)
    if family.input_layer is not None:
        x = family.input_layer(x, ctx)
    if stem == "hybrid":
        x = HybridStem(**family.hybrid_stem(ctx), name="stem")(x)
    else:
        x = family.stem(x, ctx)

    # 3. the table's blocks; the feature map before each downsampling step is a pyramid level
    reduction = math.prod(s for _, s, _ in cfg.stem_steps)
    pyramid = {}
    index = 0
    for row in table:
        strides = row.stride(cfg.stride_column)
        prefix = family.row_name(row)
        if strides == 2:
            pyramid[f"P{int(math.log2(reduction))}"] = x
            reduction *= 2
        if strides == 2 and mode.replaces_blocks:
            x = mode.replace_block(ctx, x, row.out, index, name=prefix)
        else:
            x = family.block(x, row, ctx, strides=strides, name=prefix)
        index += strides == 2
    if family.tail is not None:
        x = family.tail(x, ctx)
    pyramid[f"P{int(math.log2(reduction))}"] = x

    # 4. head (or the pyramid), model, weights
    if features_only:
        levels = _check_levels(feature_levels, pyramid)
        outputs = {level: pyramid[level] for level in levels}
    else:
        outputs = _head(
            x,
            family,
            ctx,
            include_top=include_top,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            dropout_rate=dropout_rate,
        )
    model = keras.Model(inputs, outputs, name=name)
    # keras-hub's attribute (``keras.Model(model.inputs, model.pyramid_outputs)``) and the facts
    # of each level; neither is saved with the model (``feature_info(model.output)`` rebuilds the
    # latter from a reloaded features_only model).
    model.pyramid_outputs = pyramid
    model.feature_info = feature_info(pyramid)
    if weights is not None:
        if family.load_weights is not None and family.load_weights(model, weights):
            return model
        _common.load_weights(model, weights, include_top=include_top, classes=classes)
    return model


# --------------------------------------------------------------------------------------------------
# Public functions and their docstrings.

_KERAS_ARGS = (
    (
        "include_top",
        True,
        bool,
        "whether to include the classifier head (pool, hidden layers, "
        'dropout, the "predictions" Dense).',
    ),
    (
        "weights",
        None,
        "str | None",
        "None (random initialisation) or the path of a "
        "``.weights.h5`` / ``.keras`` file{extra_weights}.",
    ),
    ("input_tensor", None, Any, "optional Keras tensor (from ``keras.Input``) to build on."),
    (
        "input_shape",
        None,
        "tuple | None",
        "``(height, width, 3)``; default: the layout's (see above).",
    ),
    (
        "pooling",
        None,
        "str | None",
        'with ``include_top=False``: None (4-D features), "avg" or "max".',
    ),
    ("classes", None, "int | None", "number of classes{classes_default}."),
    (
        "classifier_activation",
        "softmax",
        "str | None",
        'activation of the "predictions" output (None for logits).',
    ),
    ("name", None, "str | None", "model name."),
)


def _signature(family: Family, fixed: dict) -> inspect.Signature:
    P = inspect.Parameter
    params = [
        P(a.name, P.POSITIONAL_OR_KEYWORD, default=a.default, annotation=a.annotation)
        for a in family.args
        if a.positional
    ]
    for key, default, annotation, _ in _KERAS_ARGS:
        if key == "classes":
            default = family.default_classes
        params.append(P(key, P.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation))
    keyword = [
        ("include_preprocessing", family.include_preprocessing, bool),
        ("normalization", None, "dict | None"),
    ]
    if family.hybrid_stem is not None and "stem" not in fixed:
        keyword.append(("stem", "standard", str))
    if len(family.modes) > 1 and "downsampling" not in fixed:
        keyword.append(("downsampling", "standard", str))
        keyword.append(("padding_free", None, "bool | None"))
    if len(family.configs) > 1 or family.available_configs is not None:
        keyword.append(("config", None, "str | None"))
    if family.head_has_dropout:
        keyword.append(("dropout_rate", None, "float | None"))
    keyword += [("features_only", False, bool), ("feature_levels", None, "tuple | None")]
    params += [P(k, P.KEYWORD_ONLY, default=d, annotation=a) for k, d, a in keyword]
    params += [
        P(a.name, P.KEYWORD_ONLY, default=a.default, annotation=a.annotation)
        for a in family.args
        if not a.positional
    ]
    return inspect.Signature(params, return_annotation=keras.Model)


def make_builder(family: Family, public_name: str, summary: str, **fixed: Any):
    """A public builder of ``family`` (e.g. ``GhostNetPF``), with ``fixed`` arguments preset."""
    signature = _signature(family, fixed)

    def builder(*args, **kwargs):
        if family.legacy_args is not None:
            kwargs = family.legacy_args(public_name, kwargs)
        bound = signature.bind(*args, **kwargs)
        return build(family, **fixed, **bound.arguments)

    builder.__signature__ = signature
    builder.__name__ = builder.__qualname__ = public_name
    builder.__module__ = family.module
    builder.__doc__ = docstring(family, summary, fixed)
    builder.family = family
    builder.fixed = dict(fixed)
    builder.summary = summary
    builder.registered = []
    return builder


def _min_size_text(family: Family) -> str:
    lines = []
    for cfg in family.configs:
        sizes = []
        for mode_name in family.modes:
            mode = ds.get_mode(mode_name)
            args = {a.name: a.default for a in family.args}
            try:
                table = family.table_for(args, cfg)
            except ValueError:
                continue
            sizes.append(f"{mode_name} {min_input_size(family, table, cfg, mode)}")
        lines.append(
            f"``{cfg.name}`` ({cfg.default_size}x{cfg.default_size} default): " + ", ".join(sizes)
        )
    return "; ".join(lines)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def docstring(family: Family, summary: str, fixed: dict, registered: list = ()) -> str:
    """The one docstring format of every public builder."""
    text = _docstring_parts(family, summary, fixed, registered)
    lines = []
    for line in text:
        if line.startswith("    "):
            lines += textwrap.wrap(
                line,
                100,
                initial_indent="",
                subsequent_indent=" " * 8,
                break_long_words=False,
                break_on_hyphens=False,
            ) or [""]
        elif line:
            lines += textwrap.wrap(line, 100, break_long_words=False, break_on_hyphens=False)
        else:
            lines.append("")
    return "\n".join(lines)


def _registered_lines(registered) -> list:
    lines = [
        "Registered models (``create_model(name)``; exact counts of the reference "
        "implementation, in the paper's convention):",
        "",
    ]
    for info in registered:
        rows = info.references
        if rows:
            row = rows[0]
            counts = (
                f"{row.params:,} params, {row.flops / 1e6:.2f} M FLOPs ({row.flops_convention})"
            )
            top1 = f", paper top-1 {row.paper_top1}" if row.paper_top1 is not None else ""
        else:
            counts, top1 = "no reference row", ""
        lines.append(
            f"* ``{info.name}``: {info.variant}, {info.input_shape[0]} px, "
            f"{info.classes} classes, {counts}{top1}."
        )
    return lines + [""]


def _docstring_parts(family: Family, summary: str, fixed: dict, registered=()) -> list:
    description = inspect.cleandoc(family.description).split("\n\n")
    parts = [summary, ""]
    for paragraph in description:
        parts += [" ".join(paragraph.split()), ""]
    if family.hybrid_stem is not None or len(family.modes) > 1:
        if fixed:
            preset = variant_of(
                fixed.get("stem", "standard"), fixed.get("downsampling", "standard")
            )
            parts.append(
                "Preset: "
                + ", ".join(f"``{k}={v!r}``" for k, v in fixed.items())
                + f' (the paper\'s "{preset}").'
            )
        else:
            rows = [
                f"``{v}`` = ``stem={s!r}, downsampling={d!r}`` ({VARIANT_DESCRIPTIONS[v]})"
                for v, (s, d) in VARIANTS.items()
                if (s == "standard" or family.hybrid_stem is not None) and d in family.modes
            ]
            parts.append(
                "Variants (the papers' rows): " + "; ".join(rows) + ". "
                '``padding_free=True`` is short for the "pf" pair.'
            )
        parts.append("")
    parts += [
        CONFIG_RULE
        + " Layouts of this family: "
        + ", ".join(f"``{c.name}``" for c in family.configs)
        + ".",
        "",
        "Minimum input side, derived from the architecture table: "
        + _min_size_text(family)
        + ". A smaller input fails with that size in the message.",
        "",
    ]
    if registered:
        parts += _registered_lines(registered)
    parts.append("Args:")
    for arg in family.args:
        if arg.positional:
            parts.append(f"    {arg.name}: {arg.doc}")
    extra = ", or an MXNet ``.params`` file" if family.extra_weight_suffixes else ""
    classes_default = (
        f" (default {family.default_classes})"
        if family.default_classes
        else " (default: the layout's)"
    )
    for key, _, _, doc in _KERAS_ARGS:
        parts.append(
            f"    {key}: " + doc.format(extra_weights=extra, classes_default=classes_default)
        )
    norm = (
        "the layout's normalisation ("
        + "; ".join(
            f"{c.name}: "
            + (
                f"mean {_fmt(c.normalization[0])}, std {_fmt(c.normalization[1])}"
                if c.normalization
                else "none, pixels / 255 only"
            )
            for c in family.configs
        )
        + ")"
    )
    parts.append(
        f"    include_preprocessing: with True (default {family.include_preprocessing}) "
        "the model takes RGB pixels in [0, 255] and holds its input normalisation "
        f"(``Rescaling(1/255)`` then ``Normalization``: {norm}); with False it takes "
        "pixels already normalised."
    )
    parts.append(
        '    normalization: ``{"mean": [...], "std": [...]}`` on [0, 1] pixels '
        "instead of the layout's (with ``include_preprocessing=True``; what fit.py uses "
        "to build a dataset's normalisation into the model)."
    )
    sig = _signature(family, fixed)
    docs = {
        "stem": '"standard" or "hybrid" (the paper\'s :class:`HybridStem`).',
        "downsampling": '"' + '", "'.join(family.modes) + '" (see '
        ":mod:`keras_padfree.blocks.downsampling`).",
        "padding_free": 'True: short for ``stem="hybrid", downsampling="padding_free"``.',
        "config": "layout: "
        + ", ".join(f'"{c.name}"' for c in family.configs)
        + " or None (the rule above).",
        "dropout_rate": "dropout before the classifier; None: the reference's rate.",
        "features_only": "True: a multi-output model whose outputs are the feature pyramid "
        '``{"P<n>": feature map}`` (keras-hub\'s level names: ``2**n`` is the '
        "nominal reduction; the actual sizes are in ``model.feature_info``), no "
        "head. Every model also has ``model.pyramid_outputs`` and "
        "``model.feature_info``.",
        "feature_levels": 'with ``features_only``: the levels to output, e.g. ``("P3", '
        '"P4", "P5")`` (default: all).',
    }
    for key, doc in docs.items():
        if key in sig.parameters:
            parts.append(f"    {key}: {doc}")
    for arg in family.args:
        if not arg.positional:
            parts.append(f"    {arg.name}: {arg.doc}")
    parts += ["", "Returns:", "    A functional `keras.Model`."]
    return parts


def renamed_args(renames: dict):
    """A ``legacy_args`` function for keyword arguments renamed since earlier versions."""

    def legacy(builder_name: str, kwargs: dict) -> dict:
        kwargs = dict(kwargs)
        for old, new in renames.items():
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{builder_name}() got both {old!r} and its new name {new!r}.")
                warn_renamed(old, new, f"{builder_name}() argument")
                kwargs[new] = kwargs.pop(old)
        return kwargs

    return legacy


def warn_renamed(old: str, new: str, where: str) -> None:
    """Warns (once per process and name) that ``old`` is now ``new``."""
    key = (where, old)
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(
        f"{where}: {old!r} is now {new!r}; the old name keeps working.", FutureWarning, stacklevel=4
    )


_WARNED: set = set()


# --------------------------------------------------------------------------------------------------
# Registration: one call per registered model, its name from the one grammar.

LAYOUT_OF_DATASET = {
    "cifar": "cifar",
    "imagenet32": "imagenet32",
    "vegfru": "imagenet",
    "dogs": "imagenet",
    "imagenet": "imagenet",
}


def register(
    family: Family,
    builder,
    *,
    architecture: str,
    dataset: str,
    variant: str = "orig",
    options: tuple = (),
    reference=None,
    aliases: tuple = (),
    deviations=None,
    description: str | None = None,
    test_input_shape=None,
    **kwargs: Any,
) -> str:
    """Registers ``builder(**kwargs)`` under the grammar's name; returns the name.

    Input shape, classes, recipe and the layout (``config``) follow from ``dataset``; the
    (stem, downsampling) pair from ``variant`` unless ``builder`` presets it.
    """
    from keras_padfree.applications import _registry

    name = _registry.model_name(architecture, dataset, variant, options)
    title, classes, style = _registry.DATASETS[dataset]
    layout = LAYOUT_OF_DATASET[dataset]
    size = family.config(layout).default_size
    fixed = getattr(builder, "fixed", {})
    if variant != "orig" and "stem" not in fixed:
        kwargs["stem"], kwargs["downsampling"] = VARIANTS[variant]
    if len(family.configs) > 1 or family.available_configs is not None:
        kwargs.setdefault("config", layout)
    if description is None:
        description = f"{family.title}, {VARIANT_DESCRIPTIONS[variant]}"
    _registry.register_model(
        name,
        builder,
        family=family.name,
        variant=variant,
        input_shape=(size, size, 3),
        classes=classes,
        dataset=title,
        description=f"{description} ({title}, {size}x{size}).",
        reference=reference,
        source=family.source,
        deviations=deviations,
        test_input_shape=test_input_shape or ((32, 32, 3) if size <= 32 else (96, 96, 3)),
        recipe=family.recipes.get(dataset) or family.recipes.get(style),
        recipes=family.recipes,
        aliases=aliases,
        **kwargs,
    )
    builder.registered.append(_registry._REGISTRY[name])
    builder.__doc__ = docstring(family, builder.summary, fixed, builder.registered)
    return name
