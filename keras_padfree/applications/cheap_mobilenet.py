"""Cheap-operation MobileNetV2/V3 ("Efficient operations for lightweight deep neural networks").

Reference: https://github.com/kai-pixel/-Efficient-Operations-for-Lightweight-Deep-Neural-Networks
(PyTorch; no trained weights published). Specification of what is rebuilt here:
``/work/shared/reference/pydmobilenet_and_cheap_ops.md`` part B.

The cheap operations replace learned layers by parameter-free ones: ``tile_r`` (``r`` channel-wise
copies of a tensor, copy-major, as ``torch.cat([x] * r, 1)``) and ShuffleNet's channel shuffle.

* R1 "Reuse": the 1x1 expansion conv + BN before the depthwise conv becomes ``tile_6`` (the block's
  activation stays); the depthwise conv then gives each copy its own filter. R3 "Reuse + Shuffle6":
  ``ChannelShuffle(6)`` before the tile. R4 (CV3K): ``t = tile_g(x); t + BN(grouped 1x1(t))``.
* SE: S1 (cheapV3) ``pool -> FC(C/4) -> ReLU -> tile_4`` and no gate; S2 ``FC(C/8) -> ReLU -> tile_8
  -> h-sigmoid``; S3 (CV3K) ``FC(C/4) -> ReLU -> tile_4 -> h-sigmoid``. FCs have no bias.
* Stems: F1 ``conv3x3(3->3) -> BN -> tile_16 -> 1x1 (48->c0) -> BN -> h-swish``; F2 (ImageNet file
  @663d360) ``tile_4 -> conv3x3(12->12) -> BN -> tile_4 -> 1x1 (48->24) -> BN -> h-swish``.
* Last stage L1: ``tile_6 -> h-swish -> GAP -> tile_2 -> h-swish -> Linear`` (1920 or 2160 inputs)
  instead of ``1x1 (160->960) + BN + h-swish -> GAP -> 1x1 (960->1280) + h-swish -> Linear``.
  cheapV2's L2: ``tile_4 -> GAP -> Linear(1280)`` instead of ``1x1 + BN + ReLU``.

Networks of :func:`CheapMobileNetV3` (``operations=``), with the reference files they reproduce:

================== ===================================================== ===========================
operations         reference (row key of ``cheap operations``)             changes vs baseline
================== ===================================================== ===========================
"baseline"         ``MobileNetV3`` (repo's V3-Large: SE FCs without bias)  --
"cheap"            ``cheapV3``                                            R1, S1, L1
"cheap_se8"        ``cheapV3_8`` = ``cheapV3_shuffle`` =                  F1, R1, S2, L1
                   ``cheapV3_Reuse_Shuffle`` (one network: the three
                   files differ only in class names; their "shuffle" has
                   g = input channels, an identity)
"reuse_shuffle6"   ``cheapV3_Reuse_Shuffle6``                             F1, R3, S2, L1, WIDE6
"imagenet_f2"      ``cheapV3_Reuse_Shuffle6_ImageNet@663d360``            F2, R3, S2, L1, WIDE6,
                                                                          no dropout
"ol"               ``V3_Reuse6_Shuffle6_OL(ImageNet@b3f00e0)``            R3, S2, WIDE6, std last
                                                                          stage (1080/1280), no
                                                                          dropout, no CIFAR strides
"cv3k"             ``CV3K(ImageNet)``                                     R4 + output shuffle, S3,
                                                                          CV3K widths, no CIFAR
                                                                          strides
"group"            ``cheapV3G(group conv/model.py)``                      reuse_shuffle6 with
grouped
                                                                          (2 ch/group) k x k convs
                                                                          in
                                                                          blocks 8-15
================== ===================================================== ===========================

:func:`CheapMobileNetV2` (``operations="baseline"`` = kuangliu-flavour ``MobileNetV2`` of the repo,
``"cheap"`` = ``cheapV2``). Counting convention of the rows: conv + Linear MACs ("macs").

Earlier versions called ``operations`` ``config`` and chose the layout with ``cifar_strides``;
both spellings still work (with a warning) and mean ``operations`` and ``config="cifar" |
"imagenet"``.
"""

import dataclasses

import keras

from keras_padfree import normalization
from keras_padfree.applications import _builder
from keras_padfree.applications._arch import MOBILENETV2
from keras_padfree.applications._arch import MOBILENETV3_LARGE
from keras_padfree.applications._family import Arg
from keras_padfree.applications._family import Config
from keras_padfree.applications._family import Family
from keras_padfree.applications._family import Head
from keras_padfree.blocks import cheap_ops
from keras_padfree.blocks import common
from keras_padfree.layers import _utils

__all__ = ["CheapMobileNetV2", "CheapMobileNetV3"]

SOURCE = "https://github.com/kai-pixel/-Efficient-Operations-for-Lightweight-Deep-Neural-Networks"

# The repository's MobileNetV3-large widths per variant family (expanded, output) of blocks 1-15;
# kernels, SE, activations and strides are MobileNetV3-large's table.
V3_WIDTHS = {
    "v3_large": (MOBILENETV3_LARGE.column("exp"), MOBILENETV3_LARGE.column("out")),
    "cheap": (
        (16, 96, 144, 144, 240, 240, 240, 480, 480, 480, 480, 672, 672, 960, 960),
        (16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160),
    ),
    "wide6": (
        (24, 144, 144, 144, 288, 288, 288, 576, 576, 576, 576, 720, 720, 1080, 1080),
        (24, 24, 24, 48, 48, 48, 96, 96, 96, 96, 120, 120, 180, 180, 180),
    ),
    "cv3k": (
        (24, 72, 72, 144, 144, 144, 288, 216, 216, 216, 432, 648, 648, 972, 972),
        (24, 24, 24, 48, 48, 48, 72, 72, 72, 72, 108, 108, 162, 162, 162),
    ),
}


@dataclasses.dataclass(frozen=True)
class V3Variant:
    stem: str  # "std", "f1" or "f2"
    stem_width: int
    widths: str  # key of V3_WIDTHS
    expansion: str  # cheap_ops.EXPANSIONS
    se: str  # cheap_ops.SE_KINDS
    last: str  # "std" (conv + BN + hs, pool, conv 1280 + hs) or "tile" (L1)
    dropout: float
    cifar_mode: bool  # whether the reference has a CIFAR-stride mode
    grouped_from: int = 0  # first block (1-based) with a grouped k x k conv (cheapV3G), 0 = none
    out_shuffle: bool = False  # CV3K's shuffle after the projection


V3_VARIANTS = {
    "baseline": V3Variant("std", 16, "v3_large", "conv", "fc2", "std", 0.2, True),
    "cheap": V3Variant("std", 16, "cheap", "tile", "tile4_nogate", "tile", 0.2, True),
    "cheap_se8": V3Variant("f1", 16, "cheap", "tile", "tile8", "tile", 0.2, True),
    "reuse_shuffle6": V3Variant("f1", 24, "wide6", "shuffle_tile", "tile8", "tile", 0.2, True),
    "imagenet_f2": V3Variant("f2", 24, "wide6", "shuffle_tile", "tile8", "tile", 0.0, True),
    "ol": V3Variant("std", 24, "wide6", "shuffle_tile", "tile8", "std", 0.0, False),
    "cv3k": V3Variant(
        "std", 24, "cv3k", "grouped_tile", "tile4", "std", 0.2, False, out_shuffle=True
    ),
    "group": V3Variant(
        "f1", 24, "wide6", "shuffle_tile", "tile8", "tile", 0.2, True, grouped_from=8
    ),
}
V2_VARIANTS = ("baseline", "cheap")
# cheapV2's channel-match half for the stride-1 blocks that widen by 1.5.
V2_MATCH_HALF = {(16, 24): 0, (64, 96): 1}

# BN eps 1e-5 / momentum 0.1; convs kaiming-normal (fan-out, PyTorch's fan of depthwise kernels
# too), Linear layers N(0, 0.001).
QUIRKS = common.Quirks(
    init=dataclasses.replace(
        common.KAIMING_NORMAL_FAN_OUT, dense=lambda: keras.initializers.RandomNormal(0.0, 0.001)
    )
)

CONFIGS = (
    Config("cifar", 32, "s32", (), normalization.CIFAR100_ROUNDED, {"stem_strides": 1}),
    Config("imagenet", 224, "s", ((3, 2, 1),), normalization.IMAGENET, {"stem_strides": 2}),
)


def _operations(v3):
    names = tuple(V3_VARIANTS) if v3 else V2_VARIANTS
    return lambda value: _utils.check_choice(value, "operations", names)


def _legacy(builder_name, kwargs):
    """Earlier versions: ``config`` named the operations, ``cifar_strides`` chose the layout."""
    kwargs = dict(kwargs)
    if kwargs.get("config") in set(V3_VARIANTS) | set(V2_VARIANTS):
        _builder.warn_renamed("config", "operations", f"{builder_name}() argument")
        kwargs["operations"] = kwargs.pop("config")
    if "cifar_strides" in kwargs:
        value = kwargs.pop("cifar_strides")
        if value is not None and not isinstance(value, bool):
            raise ValueError(
                "Argument `cifar_strides` must be True, False or None. "
                f"Received: cifar_strides={value!r}."
            )
        _builder.warn_renamed("cifar_strides", "config", f"{builder_name}() argument")
        if value is not None:
            kwargs["config"] = "cifar" if value else "imagenet"
    return kwargs


# -- MobileNetV3 -----------------------------------------------------------------------------------


def _v3_table(args, config):
    spec = V3_VARIANTS[args["operations"]]
    exps, outs = V3_WIDTHS[spec.widths]
    return MOBILENETV3_LARGE.with_columns(exp=exps, out=outs)


def _v3_stem(x, ctx):
    spec = V3_VARIANTS[ctx.args["operations"]]
    strides = ctx.config_values["stem_strides"]
    if spec.stem == "std":
        x = ctx.conv(x, spec.stem_width, 3, strides, name="stem_conv")
    else:
        if spec.stem == "f2":
            x = cheap_ops.tile(x, 4, "stem_input_tile")
        x = ctx.conv(x, 3 if spec.stem == "f1" else 12, 3, strides, name="stem_conv")
        x = ctx.bn("stem_conv_bn")(x)
        x = cheap_ops.tile(x, 16 if spec.stem == "f1" else 4, "stem_tile")
        x = cheap_ops.pointwise(x, ctx, spec.stem_width, "stem_pw")
    x = ctx.bn("stem_bn")(x)
    return ctx.activation(x, "hard_silu", "stem_act")


def _v3_block(x, row, ctx, *, strides, name):
    spec = V3_VARIANTS[ctx.args["operations"]]
    c_in = int(x.shape[-1])
    copies = row.exp // c_in if row.exp % c_in == 0 else None
    grouped = spec.grouped_from and row.index >= spec.grouped_from
    return cheap_ops.v3_bottleneck(
        x,
        ctx,
        kernel_size=row.k,
        exp=row.exp,
        out=row.out,
        strides=strides,
        se=bool(row.se),
        activation=row.nl,
        prefix=name,
        expansion=spec.expansion,
        se_kind=spec.se,
        shuffle_groups=6,
        spatial_groups=row.exp // 2 if grouped else None,
        out_shuffle=copies if spec.out_shuffle and row.exp != c_in else None,
    )


def _v3_tail(x, ctx):
    spec = V3_VARIANTS[ctx.args["operations"]]
    if spec.last == "std":
        x = cheap_ops.pointwise(x, ctx, 6 * int(x.shape[-1]), "last_conv")
        x = ctx.bn("last_bn")(x)
    else:
        x = cheap_ops.tile(x, 6, "last_tile")
    return ctx.activation(x, "hard_silu", "last_act")


def _v3_hidden(x, ctx):
    if V3_VARIANTS[ctx.args["operations"]].last == "std":
        x = cheap_ops.pointwise(x, ctx, 1280, "head_conv")
        x = ctx.activation(x, "hard_silu", "head_act")
        return keras.layers.Flatten(name="flatten")(x)
    x = cheap_ops.tile(x, 2, "head_tile")
    return ctx.activation(x, "hard_silu", "head_act")


def _v3_head(ctx):
    spec = V3_VARIANTS[ctx.args["operations"]]
    return Head(
        pool="avg_pool",
        pool_kind="keepdims" if spec.last == "std" else "module",
        hidden=_v3_hidden,
        dropout=spec.dropout,
        dropout_name="dropout",
        classifier=lambda fan_in, classes: {"kernel_initializer": ctx.quirks.init.dense()},
    )


V3_FAMILY = Family(
    name="cheap_mobilenetv3",
    title="cheap-operation MobileNetV3-large",
    source=SOURCE,
    module=__name__,
    description="""
        A MobileNetV3-large of kai-pixel's repository, baseline or with cheap operations (see the
        module docstring for the variants and what each changes). Reproduces the repository's V3
        (not torchvision's): SE after the depthwise BN and before the activation, SE FCs without
        bias and exact ``C / r`` widths, 960->1280 head conv without bias, BN eps 1e-5 / PyTorch
        momentum 0.1, tiles in copy-major order (``Concatenate([x] * r)``, not
        ``DepthwiseConv2D(depth_multiplier=r)``). ``"cheap_se8"`` is the one network behind the
        identical rows ``cheapV3_8``, ``cheapV3_shuffle`` and ``cheapV3_Reuse_Shuffle``.
        ``"group"`` (cheapV3G) instantiates a depthwise *and* a grouped conv (+ BN each) in every
        block but uses one; only the used one is built here (a registered, documented deviation).
        The CIFAR layout runs the stem and block 2 at stride 1, as the reference files with a CIFAR
        mode; "ol" and "cv3k" have none (ImageNet layout only). ``dropout_rate`` None: the
        variant's (0.2; none for "imagenet_f2" and "ol").
    """,
    configs=CONFIGS,
    table=_v3_table,
    quirks=QUIRKS,
    block=_v3_block,
    block_name="block{index}_",
    stem=_v3_stem,
    tail=_v3_tail,
    head=_v3_head,
    args=(
        Arg(
            "operations",
            "cheap",
            'the network: "' + '", "'.join(V3_VARIANTS) + '".',
            _operations(True),
            positional=True,
            annotation=str,
        ),
    ),
    downsampling=("standard",),
    available_configs=lambda args: CONFIGS_OF[V3_VARIANTS[args["operations"]].cifar_mode],
    head_has_dropout=True,
    default_classes=100,
    default_name=lambda args, variant: f"cheap_mobilenetv3_{args['operations']}",
    recipes={"small": "cheap_ops_cifar", "large": "cheap_ops_imagenet"},
    legacy_args=_legacy,
)
CONFIGS_OF = {True: ("cifar", "imagenet"), False: ("imagenet",)}


# -- MobileNetV2 -----------------------------------------------------------------------------------


def _v2_stem(x, ctx):
    x = ctx.conv(x, 32, 3, ctx.config_values["stem_strides"], name="stem_conv")
    x = ctx.bn("stem_bn")(x)
    return ctx.activation(x, "relu", "stem_act")


def _v2_block(x, row, ctx, *, strides, name):
    return cheap_ops.v2_block(
        x,
        ctx,
        expansion_ratio=row.t,
        out=row.out,
        strides=strides,
        prefix=name,
        cheap=ctx.args["operations"] == "cheap",
        match_half=V2_MATCH_HALF.get((int(x.shape[-1]), row.out), 0),
    )


def _v2_tail(x, ctx):
    if ctx.args["operations"] == "cheap":
        return cheap_ops.tile(x, 4, "last_tile")
    x = cheap_ops.pointwise(x, ctx, 1280, "last_conv")
    x = ctx.bn("last_bn")(x)
    return ctx.activation(x, "relu", "last_act")


V2_FAMILY = dataclasses.replace(
    V3_FAMILY,
    name="cheap_mobilenetv2",
    title="cheap-operation MobileNetV2",
    description="""
        The repository's MobileNetV2 (kuangliu "pytorch-cifar" flavour) or cheapV2. Baseline
        quirks kept: the t = 1 block still has its 1x1 expansion conv (32 -> 32), and stride-1
        blocks that change width get a 1x1 + BN projection shortcut (32->16, 16->24, 64->96,
        160->320); stride-2 blocks have no shortcut; head 1x1 320->1280 + BN + ReLU -> GAP ->
        Linear; no dropout. cheapV2 (``operations="cheap"``): R1-V2 (``tile_6`` without BN or
        activation; none for t = 1), the projections become parameter-free channel matches
        (first 16 of 32; ``x | x[:8]``; ``x | x[32:64]``; ``x | x``), and the head L2 ``tile_4 ->
        GAP -> Linear`` (no BN, no ReLU). The repository hard-codes the CIFAR strides (stem and
        the 24-wide stage at stride 1, so 224-pixel inputs keep 28x28 maps): its 224-pixel rows
        are ``config="cifar"``; ``"imagenet"`` has the official MobileNetV2 strides.
    """,
    table=MOBILENETV2,
    block=_v2_block,
    stem=_v2_stem,
    tail=_v2_tail,
    head=lambda ctx: Head(pool="avg_pool"),
    args=(
        Arg(
            "operations",
            "cheap",
            'the network: "baseline" or "cheap".',
            _operations(False),
            positional=True,
            annotation=str,
        ),
    ),
    available_configs=None,
    head_has_dropout=False,
    default_name=lambda args, variant: f"cheap_mobilenetv2_{args['operations']}",
)

CheapMobileNetV3 = _builder.make_builder(
    V3_FAMILY,
    "CheapMobileNetV3",
    "A MobileNetV3-Large of kai-pixel's repository, baseline or with cheap operations.",
)
CheapMobileNetV2 = _builder.make_builder(
    V2_FAMILY, "CheapMobileNetV2", "The repository's MobileNetV2 (kuangliu flavour) or cheapV2."
)


# -- Registry --------------------------------------------------------------------------------------

_TABLE = "cheap operations"
_SAME_NETWORK = ("cheapV3_8", "cheapV3_shuffle", "cheapV3_Reuse_Shuffle")
_GROUP_DEVIATION = (
    "cheapV3G instantiates a depthwise and a grouped k x k conv (+ BN each) in every "
    "block but uses one; the unused one is not built here"
)


def _group_unused_params():
    """Weights of cheapV3G's unused k x k convs + BNs (the reference counts them; they do no work).

    Every block with an expansion (blocks 2-15; block 1 has ``exp == in`` and only its depthwise
    conv) holds a depthwise ``k x k`` conv + BN and a grouped (2 channels per group) ``k x k`` conv
    + BN, and runs one of them.
    """
    spec = V3_VARIANTS["group"]
    exps, outs = V3_WIDTHS[spec.widths]
    total = 0
    for i, (k, e) in enumerate(zip(MOBILENETV3_LARGE.column("k"), exps)):
        if e == (outs[i - 1] if i else spec.stem_width):
            continue  # no expansion, only the depthwise conv
        grouped = i + 1 >= spec.grouped_from
        total += (e * k * k if grouped else e * 2 * k * k) + 2 * e
    return total


def _register_v3(variant, architecture, options, key, description, datasets):
    for dataset in datasets:
        rows = "100cls_32px" if dataset == "cifar" else "1000cls_224px"
        if not V3_VARIANTS[variant].cifar_mode:
            rows = None
        keys = [(key, rows, _TABLE)]
        if variant == "cheap_se8":  # one network under three names in the reference
            keys += [(other, rows, _TABLE) for other in _SAME_NETWORK[1:]]
        old = (
            "_".join(("cheap_mobilenetv3", "imagenet_f2", dataset))
            if variant == "imagenet_f2"
            else None
        )
        _builder.register(
            V3_FAMILY,
            CheapMobileNetV3,
            architecture=architecture,
            options=options,
            dataset=dataset,
            reference=keys,
            description=description,
            deviations={"params": (-_group_unused_params(), _GROUP_DEVIATION)}
            if variant == "group"
            else None,
            aliases=(old,) if old else (),
            test_input_shape=(32, 32, 3),
            operations=variant,
        )


for _args in (
    (
        "baseline",
        "cheap_baseline_mobilenetv3",
        (),
        "MobileNetV3",
        "the repository's MobileNetV3-Large baseline",
    ),
    ("cheap", "cheap_mobilenetv3", (), "cheapV3", "cheapV3 (Reuse, SE tile_4 without gate, L1)"),
    (
        "cheap_se8",
        "cheap_mobilenetv3",
        ("se8",),
        "cheapV3_8",
        "cheapV3_8 = cheapV3_shuffle = cheapV3_Reuse_Shuffle (one network: stem F1, Reuse, SE r8 + "
        "tile_8, L1)",
    ),
    (
        "reuse_shuffle6",
        "cheap_mobilenetv3",
        ("reuse_shuffle6",),
        "cheapV3_Reuse_Shuffle6",
        "cheapV3_Reuse_Shuffle6 (shuffle 6 + tile 6, WIDE6 widths)",
    ),
    (
        "imagenet_f2",
        "cheap_mobilenetv3",
        ("f2",),
        "cheapV3_Reuse_Shuffle6_ImageNet@663d360",
        "the ImageNet file @663d360 (Reuse+Shuffle6, stem F2, no dropout)",
    ),
    (
        "group",
        "cheap_mobilenetv3",
        ("group",),
        "cheapV3G(group conv/model.py)",
        "cheapV3G (Reuse+Shuffle6 with grouped convs in blocks 8-15)",
    ),
):
    _register_v3(*_args, datasets=("cifar", "imagenet"))
_register_v3(
    "ol",
    "cheap_mobilenetv3",
    ("ol",),
    "V3_Reuse6_Shuffle6_OL(ImageNet@b3f00e0)",
    "V3_Reuse6_Shuffle6_OL (ImageNet file @b3f00e0: standard stem and last stage; no "
    "CIFAR layout, its 32-px row uses ImageNet strides)",
    datasets=("imagenet",),
)
_register_v3(
    "cv3k",
    "cheap_mobilenetv3",
    ("cv3k",),
    "CV3K(ImageNet)",
    "CV3K (tile + grouped 1x1 residual expansion, output shuffle, SE tile_4; no CIFAR "
    "layout, its 32-px row uses ImageNet strides)",
    datasets=("imagenet",),
)
for _variant, _arch, _dataset, _key, _description in (
    (
        "baseline",
        "cheap_baseline_mobilenetv2",
        "cifar",
        "MobileNetV2(repo CIFAR strides)",
        "the repository's MobileNetV2 (kuangliu flavour) with its hard-coded CIFAR strides (rows "
        "at 32 and 224 px)",
    ),
    (
        "baseline",
        "cheap_baseline_mobilenetv2",
        "imagenet",
        "MobileNetV2(same blocks, ImageNet strides)",
        "the same MobileNetV2 blocks with ImageNet strides",
    ),
    (
        "cheap",
        "cheap_mobilenetv2",
        "cifar",
        "cheapV2(hard-coded CIFAR strides)",
        "cheapV2 (tile_6 expansion, parameter-free shortcuts, tile_4 head) with its hard-coded "
        "CIFAR strides (rows at 32 and 224 px)",
    ),
):
    _builder.register(
        V2_FAMILY,
        CheapMobileNetV2,
        architecture=_arch,
        dataset=_dataset,
        reference=(_key, None, _TABLE),
        description=_description,
        test_input_shape=(32, 32, 3),
        operations=_variant,
    )
