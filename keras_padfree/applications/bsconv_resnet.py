"""CIFAR ResNets and Wide ResNets as the BSConv library builds them, original and padding-free.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (first table: BSConv
library models on CIFAR-100). Reference code: the BSConv copy in
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (``BSConv-master``), on top
of
https://github.com/zeiss-microscopy/BSConv v0.4.0 (``bsconv/pytorch/resnet.py``), with the BSConv-U
replacer (``bsconv.pytorch.BSConvU_Replacer``) for the "-BSConv-U" models.

Two families, :func:`BSConvCifarResNet` (post-activation ``StandardUnit``) and
:func:`BSConvCifarWRN` (pre-activation ``PreactUnit``), with the paper's rows as presets:
ResNet-20, ResNet-110 BSConv-U, WRN-40-3 and WRN-40-8 BSConv-U, each ``...PF`` padding-free.
"""

import dataclasses
import math

import keras

from keras_padfree.applications import _builder
from keras_padfree.applications._arch import parse
from keras_padfree.applications._family import Arg
from keras_padfree.applications._family import Config
from keras_padfree.applications._family import Family
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import hybrid_stem
from keras_padfree.blocks import common
from keras_padfree.blocks import resnet_units
from keras_padfree.layers import _utils

__all__ = [
    "BSConvCifarResNet",
    "BSConvCifarWRN",
    "CifarResNet20",
    "CifarResNet20PF",
    "CifarResNet110BSConvU",
    "CifarResNet110BSConvUPF",
    "CifarWRN40_3",
    "CifarWRN40_3PF",
    "CifarWRN40_8BSConvU",
    "CifarWRN40_8BSConvUPF",
]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"

# The CIFAR ResNet of He et al. (2016, section 4.2): three stages of n units, widths 16/32/64
# (x k for a WRN), the first unit of stages 2 and 3 with stride 2.
TABLE = """
    # out  n    s
      16   {n}  1
      32   {n}  2
      64   {n}  2
"""

# The BSConv library: PyTorch's default BN, kaiming-uniform convs (depthwise fan-in k * k); names
# "<unit>_conv" / "_bn" / "_act", the padding-free depthwise layer named after its unit.
QUIRKS = common.Quirks(
    init=common.KAIMING_UNIFORM,
    names=common.Names(depthwise="_dw", padding_free="", pad_named_after_conv=True),
    join="after_activation",
    shortcut_pool="3x3",
)


def classifier(fan_in, classes):
    """The library's classifier: a 1x1 conv with bias on the pooled map, as a Dense layer.

    Weight ``xavier_normal_`` (non-truncated normal, std ``sqrt(2 / (in + classes))``); bias
    PyTorch's default ``U(+-1/sqrt(in))``.
    """
    limit = 1.0 / math.sqrt(fan_in)
    return {
        "kernel_initializer": keras.initializers.RandomNormal(
            stddev=math.sqrt(2.0 / (fan_in + classes))
        ),
        "bias_initializer": keras.initializers.RandomUniform(-limit, limit),
    }


def data_bn(x, ctx):
    """A learnable BatchNorm over the raw [0, 1] input channels (the library's ``data_bn``)."""
    return ctx.bn("data_bn")(x)


def _check_depth(kind, offset, minimum):
    def check(depth):
        if (
            isinstance(depth, bool)
            or not isinstance(depth, int)
            or depth < minimum
            or (depth - offset) % 6
        ):
            raise ValueError(
                f"Argument `depth` of a CIFAR {kind} must be an integer 6n + {offset} >= "
                f"{minimum}. Received: depth={depth!r}."
            )
        return depth

    return check


def _check_bsconv_u(value):
    return _utils.check_bool(value, "bsconv_u")


def _table(offset):
    return lambda args, config: parse(TABLE, n=(args["depth"] - offset) // 6)


def _hybrid_stem(ordering):
    # The residual hybrid stem, its first 3x3 conv BSConv-U when the model is.
    return hybrid_stem(
        16,
        "relu",
        residual=True,
        ordering=ordering,
        first_conv=lambda ctx: "bsconv_u" if ctx.args["bsconv_u"] else "standard",
    )


def _projection_of(pf_projection):
    """The stride-2 shortcut per downsampling mode: the library's 1x1/2 conv when padded."""
    return {"standard": "conv1x1", "padding_free": pf_projection}


def _resnet_block(x, row, ctx, *, strides, name):
    return resnet_units.standard_unit(
        x,
        ctx,
        filters=row.out,
        strides=strides,
        bsconv_u=ctx.args["bsconv_u"],
        projection=_projection_of("separable"),
        name=name,
    )


def _wrn_block(x, row, ctx, *, strides, name):
    return resnet_units.preact_unit(
        x,
        ctx,
        filters=row.out * ctx.args["width_factor"],
        strides=strides,
        bsconv_u=ctx.args["bsconv_u"],
        projection=_projection_of(ctx.args["pf_projection"]),
        name=name,
    )


def _wrn_tail(x, ctx):
    x = ctx.bn("final_bn")(x)
    return ctx.activation(x, "relu", "final_relu")


RESNET = Family(
    name="bsconv_resnet",
    title="BSConv-library CIFAR ResNet",
    source=SOURCE,
    module=__name__,
    description="""
        ``bsconv.pytorch.get_model("cifar_resnet<depth>")`` (``..._bsconvu`` for
        ``bsconv_u=True``) of BSConv v0.4.0: ``data_bn`` (a learnable BatchNorm over the raw [0, 1]
        input) -> stem (3x3 conv 16 -> BN -> ReLU) -> 3 stages of ``(depth - 2) / 6`` units,
        widths 16 / 32 / 64, the first unit of stages 2 and 3 with stride 2 -> global average pool
        -> classifier (Dense "predictions": the library's 1x1 conv with bias; xavier-normal
        weight, bias ``U(+-1/sqrt(in))``). Unit: ``ReLU(BN(conv3x3(ReLU(BN(conv3x3(x))))) +
        shortcut(x))``; stride-2 shortcut 1x1/2 conv -> BN. Convs have no bias and kaiming-uniform
        init ``U(+-sqrt(6/fan_in))``; BSConv-U layers keep PyTorch's default init (the library
        replaces after initialising); BN eps 1e-5, momentum 0.1. ``bsconv_u=True`` replaces every
        groups-1 3x3 conv (the stem's included) by :class:`BSConvU`; 1x1 and depthwise convs are
        not replaced. Stride-2 convs pad symmetrically, as PyTorch.

        Padding-free (the paper's "ours": the BSConv copy at HEAD 7a0c4b8 **with the
        commented-out 1x1 ``conv2`` of ``ConvBlock`` enabled**; HEAD without it crashes, and the
        paper's counts include it): the stem is the residual :class:`HybridStem` in the
        post-activation ("# ResNet") ordering; a stride-2 conv1 is 3x3/2/**0** -> BN -> ReLU
        **plus** ``conv1x1(maxpool_3x3/2/0(x))`` (:class:`MaxPoolShortcut` with a projection);
        the stride-2 shortcut is depthwise 3x3/2/0 -> BN(in) -> 1x1 -> BN(out). Maps 32 -> 15
        -> 7.
    """,
    configs=(Config("cifar", 32, "s", ()),),
    table=_table(2),
    quirks=QUIRKS,
    block=_resnet_block,
    block_name="stage{stage}_unit{unit}",
    input_layer=data_bn,
    stem=lambda x, ctx: resnet_units.conv_block(
        x, ctx, 16, 3, name="stem", bsconv_u=ctx.args["bsconv_u"]
    ),
    hybrid_stem=_hybrid_stem("post"),
    head=lambda ctx: Head(pool="global_pool", classifier=classifier),
    args=(
        Arg(
            "depth",
            20,
            "6n + 2 (20, 56, 110, ...).",
            _check_depth("ResNet", 2, 8),
            positional=True,
            annotation=int,
        ),
        Arg("bsconv_u", False, "the BSConv-U model.", _check_bsconv_u, annotation=bool),
    ),
    downsampling=("standard", "padding_free"),
    default_classes=100,
    default_name=lambda args, variant: (
        f"bsconv_resnet{args['depth']}"
        + ("_bsconvu" if args["bsconv_u"] else "")
        + ("" if variant == "orig" else f"_{variant}")
    ),
    recipes={"small": "bsconv_set1", "large": "bsconv_set1_dogs"},
)


def _check_width(value):
    return _utils.check_positive_int(value, "width_factor")


def _check_projection(value):
    return _utils.check_choice(value, "pf_projection", ("conv3x3", "separable"))


WRN = dataclasses.replace(
    RESNET,
    name="bsconv_wrn",
    title="BSConv-library CIFAR Wide ResNet",
    description="""
        ``bsconv.pytorch.get_model("cifar_wrn<depth>_<k>")`` (``..._bsconvu`` for
        ``bsconv_u=True``) of BSConv v0.4.0: ``data_bn`` -> stem (a bare 3x3 conv, 16) -> 3 stages
        of ``(depth - 4) / 6`` pre-activation units, widths 16k / 32k / 64k -> final BN -> ReLU
        -> global average pool -> classifier. No dropout. Unit: ``x' = ReLU(BN(x))``; main path
        conv3x3 (stride s) -> BN -> ReLU -> conv3x3 (no BN, no act); shortcut ``x``, or
        ``proj(x')`` when the unit changes width or stride (a 1x1 conv, no BN); no activation
        after the sum. Initialisation, BSConv-U replacement and padding as the CIFAR ResNet.

        Padding-free (HEAD 7a0c4b8 with the 1x1 ``conv2`` of ``ConvBlock`` enabled): the stem is
        the residual :class:`HybridStem` in the pre-activation ordering; stride-2 conv1 3x3/2/**0**
        -> BN -> ReLU **plus** ``conv1x1(maxpool(x'))``; the stride-2 projection on ``x'`` is
        ``pf_projection``: ``"conv3x3"`` (the code at HEAD; the paper's WRN-40-3 row): a 3x3/2/0
        conv with no BN or activation **plus** its own ``conv1x1(maxpool(x'))`` (BSConv-U-replaced
        when ``bsconv_u``); or ``"separable"`` (the paper's WRN-40-8 BSConv-U row, an edit not in
        the repository): depthwise 3x3/2/0 -> BN(in) -> 1x1 -> BN(out).
    """,
    table=_table(4),
    block=_wrn_block,
    stem=lambda x, ctx: resnet_units.conv(
        x, ctx, 16, 3, name="stem_conv", bsconv_u=ctx.args["bsconv_u"]
    ),
    hybrid_stem=_hybrid_stem("pre"),
    tail=_wrn_tail,
    args=(
        Arg(
            "depth",
            40,
            "6n + 4 (16, 28, 40, ...).",
            _check_depth("WRN", 4, 10),
            positional=True,
            annotation=int,
        ),
        Arg("width_factor", 3, "k.", _check_width, positional=True, annotation=int),
        Arg("bsconv_u", False, "the BSConv-U model.", _check_bsconv_u, annotation=bool),
        Arg(
            "pf_projection",
            "conv3x3",
            '"conv3x3" or "separable" (see above; padding-free only).',
            _check_projection,
            annotation=str,
        ),
    ),
    default_name=lambda args, variant: (
        f"bsconv_wrn{args['depth']}_{args['width_factor']}"
        + ("_bsconvu" if args["bsconv_u"] else "")
        + ("" if variant == "orig" else f"_{variant}")
    ),
)

BSConvCifarResNet = _builder.make_builder(
    RESNET, "BSConvCifarResNet", "A BSConv-library CIFAR ResNet (post-activation StandardUnit)."
)
BSConvCifarWRN = _builder.make_builder(
    WRN, "BSConvCifarWRN", "A BSConv-library CIFAR Wide ResNet (pre-activation PreactUnit)."
)

_PF = {"stem": "hybrid", "downsampling": "padding_free"}
CifarResNet20 = _builder.make_builder(
    RESNET, "CifarResNet20", "CIFAR ResNet-20 of the BSConv library, original.", depth=20
)
CifarResNet20PF = _builder.make_builder(
    RESNET,
    "CifarResNet20PF",
    "CIFAR ResNet-20 with padding-free downsampling and the residual hybrid stem.",
    depth=20,
    **_PF,
)
CifarResNet110BSConvU = _builder.make_builder(
    RESNET,
    "CifarResNet110BSConvU",
    "CIFAR ResNet-110 BSConv-U, original.",
    depth=110,
    bsconv_u=True,
)
CifarResNet110BSConvUPF = _builder.make_builder(
    RESNET,
    "CifarResNet110BSConvUPF",
    "CIFAR ResNet-110 BSConv-U, padding-free.",
    depth=110,
    bsconv_u=True,
    **_PF,
)
CifarWRN40_3 = _builder.make_builder(
    WRN, "CifarWRN40_3", "CIFAR WRN-40-3, original.", depth=40, width_factor=3
)
CifarWRN40_3PF = _builder.make_builder(
    WRN,
    "CifarWRN40_3PF",
    "CIFAR WRN-40-3, padding-free, with the HEAD 3x3 + max-pool projection.",
    depth=40,
    width_factor=3,
    pf_projection="conv3x3",
    **_PF,
)
CifarWRN40_8BSConvU = _builder.make_builder(
    WRN,
    "CifarWRN40_8BSConvU",
    "CIFAR WRN-40-8 BSConv-U, original.",
    depth=40,
    width_factor=8,
    bsconv_u=True,
)
CifarWRN40_8BSConvUPF = _builder.make_builder(
    WRN,
    "CifarWRN40_8BSConvUPF",
    "CIFAR WRN-40-8 BSConv-U, padding-free, with the "
    "depthwise-separable stride-2 projection the paper's count needs.",
    depth=40,
    width_factor=8,
    bsconv_u=True,
    pf_projection="separable",
    **_PF,
)

for _family, _builder_fn, _arch, _options, _ref, _kwargs in (
    (RESNET, BSConvCifarResNet, "bsconv_resnet20", (), "cifar_resnet20", {"depth": 20}),
    (
        RESNET,
        BSConvCifarResNet,
        "bsconv_resnet110",
        ("bsconvu",),
        "cifar_resnet110_bsconvu",
        {"depth": 110, "bsconv_u": True},
    ),
    (
        WRN,
        BSConvCifarWRN,
        "bsconv_wrn40_3",
        (),
        "cifar_wrn40_3",
        {"depth": 40, "width_factor": 3, "pf_projection": "conv3x3"},
    ),
    (
        WRN,
        BSConvCifarWRN,
        "bsconv_wrn40_8",
        ("bsconvu",),
        "cifar_wrn40_8_bsconvu",
        {"depth": 40, "width_factor": 8, "bsconv_u": True, "pf_projection": "separable"},
    ),
):
    for _variant in ("orig", "pf"):
        _old = "_".join((_arch, *_options, "cifar")) + ("_pf" if _variant == "pf" else "")
        _builder.register(
            _family,
            _builder_fn,
            architecture=_arch,
            options=_options,
            dataset="cifar",
            variant=_variant,
            reference=(_ref, _variant, "set1"),
            aliases=(_old,) if _variant == "pf" else (),
            **_kwargs,
        )
