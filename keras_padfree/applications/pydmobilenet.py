"""PydMobileNet (pyramid depthwise separable convolutions) and the baselines of its paper's table.

Paper: Hoang & Jo, "PydMobileNet: Improved Version of MobileNets with Pyramid Depthwise Separable
Convolution" (2018). Reference implementation and released weights (MXNet Gluon):
https://github.com/thanhhvnqb/pydmobilenet_mxnet (HEAD ffb6cfc). Specification of what is rebuilt
here:
``/work/shared/reference/pydmobilenet_and_cheap_ops.md`` part A.

Released weights: ``PydMobileNet(..., weights="cifar10_pydmobilenet29_0.25_concat-0000.params")``
reads the authors' MXNet file with NumPy (:mod:`keras_padfree.applications.mxnet_params`) and maps
every tensor by name (BN gamma/beta/running mean/variance included). ``save_mxnet_params`` writes a
model back in the same layout.

Counting conventions (reference rows ``PydMobileNet (cifar10|cifar100|imagenet32)``): MACs are
conv + dense multiply-accumulates at 32x32 and equal the rows exactly. The rows' parameters follow
MXNet's ``print_summary`` and include the input BatchNorm's gamma/beta (3 + 3 stored constants,
fixed at 1 and 0, never trained); this Keras input BN has no scale/offset, so every model has 6
trainable parameters fewer than its row (registered as a documented deviation of -6).
"""

import dataclasses

import keras
import numpy as np

from keras_padfree import normalization
from keras_padfree.applications import _builder
from keras_padfree.applications import _registry
from keras_padfree.applications._arch import parse
from keras_padfree.applications._family import Arg
from keras_padfree.applications._family import Config
from keras_padfree.applications._family import Family
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import hybrid_stem
from keras_padfree.applications.mxnet_params import load_mxnet_params
from keras_padfree.applications.mxnet_params import mxnet_param_names
from keras_padfree.applications.mxnet_params import save_mxnet_params
from keras_padfree.blocks import common
from keras_padfree.blocks.pyd_block import residual_block
from keras_padfree.layers import _utils

__all__ = [
    "PydBaselineMobileNet",
    "PydBaselineResNet",
    "PydMobileNet",
    "PydMobileNetPF",
    "load_mxnet_params",
    "mxnet_param_names",
    "preprocess_input",
    "save_mxnet_params",
]

SOURCE = "https://github.com/thanhhvnqb/pydmobilenet_mxnet"
COMBINES = ("add", "concat")

# Three stages of n = (depth - 2) / 9 bottlenecks; the first block of stages 2 and 3 has stride 2.
TABLE = """
    # out   n    s
      {w1}  {n}  1
      {w2}  {n}  2
      {w3}  {n}  2
"""

CONFIGS = (
    Config(
        "cifar",
        32,
        "s",
        (),
        normalization.CIFAR10_GLUON,
        {"stem": 32, "widths": (32, 64, 128), "last_conv": None, "classes": 100},
    ),
    Config(
        "imagenet32",
        32,
        "s",
        (),
        normalization.IMAGENET,
        {"stem": 64, "widths": (64, 128, 256), "last_conv": 1280, "classes": 1000},
    ),
)

# MXNet's BN (eps 1e-5, momentum 0.9), Xavier (Glorot) initialisation as the training script; the
# padding-free pyramid adds the max-pool to every branch before the BN that follows them.
QUIRKS = common.Quirks(init=common.GLOROT_UNIFORM, join="before_bn")

STEM_BN_DEVIATION = (
    -6,
    "the reference count includes the input BatchNorm's frozen gamma/beta (MXNet fix_gamma, 2 x 3 "
    "stored constants); the Keras input BN has no scale/offset (center=False, scale=False)",
)


def preprocess_input(x, config="cifar"):
    """Normalises RGB images in [0, 255] as the authors' data loaders did.

    ``(x / 255 - mean) / std`` with the CIFAR (``config="cifar"``) or ImageNet
    (``config="imagenet32"``) mean/std. Use it only with ``include_preprocessing=False`` models.
    """
    names = [c.name for c in CONFIGS]
    _utils.check_choice(config, "config", names)
    mean, std = (np.asarray(v, "float32") for v in CONFIGS[names.index(config)].normalization)
    return (keras.ops.convert_to_tensor(x, "float32") / 255.0 - mean) / std


def _check_depth(depth):
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 11 or (depth - 2) % 9:
        raise ValueError(
            "Argument `depth` must be 9 * n + 2 for n >= 1 blocks per stage (29 -> 3, 56 -> 6). "
            f"Received: depth={depth!r}."
        )
    return depth


def _check_width(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(
            "Argument `width_multiplier` must be a positive number. "
            f"Received: width_multiplier={value!r}."
        )
    if int(32 * value) < 1:
        raise ValueError(
            "Argument `width_multiplier` leaves no bottleneck channel in a stage of width 32. "
            f"Received: width_multiplier={value!r}."
        )
    return value


def _check_combine(value):
    if value not in COMBINES:
        raise ValueError(
            f'Argument `combine` must be "add" or "concat". Received: combine={value!r}.'
        )
    return value


def _table(args, config):
    w1, w2, w3 = config["widths"]
    return parse(TABLE, w1=w1, w2=w2, w3=w3, n=(args["depth"] - 2) // 9)


def _block(block_type):
    def block(x, row, ctx, *, strides, name):
        kind = block_type or f"pyd_{ctx.args['combine']}"
        mid = int(row.out * ctx.args["width_multiplier"])  # the reference's int() truncation
        return residual_block(
            x, ctx, block_type=kind, filters=row.out, mid=mid, strides=strides, prefix=name
        )

    return block


def _tail(x, ctx):
    last = ctx.config_values["last_conv"]
    if last is None:
        return x
    x = ctx.bn("head_bn")(x)
    x = ctx.activation(x, "relu", "head_relu")
    return ctx.conv(x, last, 1, name="head_conv", use_bias=True)


def _check(ctx, *, stem, weights, include_top):
    if weights is None or not str(weights).endswith(".params"):
        return
    if stem == "hybrid" or ctx.mode.name != "standard":
        raise ValueError(
            "No MXNet weights exist for the padding-free PydMobileNetPF (its stem and downsampling "
            "differ from the released models). Pass a .weights.h5/.keras file or weights=None. "
            f"Received: weights={weights!r}."
        )
    if not include_top:
        raise ValueError(
            "MXNet .params files hold the whole network; build with include_top=True to load them "
            f"(then take the backbone's layers). Received: include_top=False, weights={weights!r}."
        )


def _load_weights(model, path):
    if str(path).endswith(".params"):
        load_mxnet_params(model, path)
        return True
    return False


def _wm(m):
    return f"{m:g}".replace(".", "")


_ARGS = (
    Arg(
        "depth",
        29,
        "9 * n + 2 (n blocks per stage): 29 or 56 in the paper.",
        _check_depth,
        positional=True,
        annotation=int,
    ),
    Arg(
        "width_multiplier",
        0.25,
        "bottleneck width relative to the stage width (``mid = int(C * m)``).",
        _check_width,
        positional=True,
        annotation=float,
    ),
)

PYD = Family(
    name="pydmobilenet",
    title="PydMobileNet",
    source=SOURCE,
    module=__name__,
    description="""
        The reference ``ResPydBlock`` network exactly as the released symbol graphs show: an input
        BN without scale/offset (MXNet ``fix_gamma``), a 3x3 stem conv with no BN/ReLU after it,
        3 stages of ``n = (depth - 2) / 9`` pre-activation bottlenecks ``BN-ReLU-1x1(mid, stride 1
        even when downsampling)-BN-ReLU-[dw3 | dw5 | dw7] (stride s, no BN on the branches)-BN-
        ReLU-1x1-BN + shortcut`` (:class:`PyramidDWConv`, combined by Add or Concat in the order
        [3, 5, 7]) with no ReLU after the addition, and GAP directly on the last block output
        (CIFAR). The downsampling block's expansion 1x1 runs at the input resolution; its shortcut
        is a 1x1 stride-2 conv + BN on the raw block input; MXNet's symmetric paddings; BN eps
        1e-5, momentum 0.9; Xavier initialisation. Layouts: "cifar" (stem 32, widths 32/64/128,
        GAP -> Dense) and "imagenet32" (the reference's ``pydnet.py``: stem 64, widths 64/128/256,
        head BN -> ReLU -> 1x1 conv to 1280 with bias -> GAP -> Dense). With
        ``include_preprocessing=True`` (the default) the model holds the authors' input
        normalisation (CIFAR mean/std (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010),
        ImageNet32 ImageNet's) and takes RGB in [0, 255]; with False it takes normalised images,
        e.g. from :func:`preprocess_input`.

        Padding-free (``PydMobileNetPF``, no reference row): the stem becomes a pre-activation
        :class:`HybridStem` (``ordering="pre"``, ReLU, stride 1); the two stride-2 pyramids pad
        each branch ``(k - 3) // 2`` (3x3: 0, 5x5: 1, 7x7: 2) instead of ``k // 2`` and add the
        3x3/2/0 max-pool of the branch input to every branch before Add/Concat; their shortcuts
        become :class:`MaxPoolShortcut` (3x3/2/0 max-pool + 1x1 projection) + BN, so both paths
        have the padding-free size: 32 -> 15 -> 7. Parameters: the row's -6 (input BN) + the
        hybrid stem's extra depthwise 3x3, 1x1 fuse and BNs (+2,528 at CIFAR widths). MACs: the
        stages get cheaper (15x15 and 7x7 instead of 16x16 and 8x8), but the stem's 1x1 fuse at
        full resolution costs more at these small widths, so the totals rise (PydMobileNet-29-0.25
        Add at 32x32: 10.75 M -> 12.18 M MACs). No MXNet weights exist for it.
    """,
    configs=CONFIGS,
    table=_table,
    quirks=QUIRKS,
    block=_block(None),
    block_name="stage{stage}_block{unit}_",
    input_layer=lambda x, ctx: ctx.bn("stem_bn", center=False, scale=False)(x),
    stem=lambda x, ctx: ctx.conv(x, ctx.config_values["stem"], 3, name="stem_conv"),
    hybrid_stem=hybrid_stem(lambda ctx: ctx.config_values["stem"], "relu", ordering="pre"),
    tail=_tail,
    head=lambda ctx: Head(pool="avg_pool"),
    args=_ARGS
    + (
        Arg(
            "combine",
            "concat",
            '"add" (the release\'s "plus") or "concat".',
            _check_combine,
            positional=True,
            annotation=str,
        ),
    ),
    downsampling=("standard", "padding_free"),
    # The stride-2 1x1 shortcut conv becomes max-pool + the same 1x1 conv.
    convert_options={"pointwise_shortcuts": "max_pool"},
    default_classes=None,
    include_preprocessing=True,
    check=_check,
    extra_weight_suffixes=(".params",),
    load_weights=_load_weights,
    default_name=lambda args, variant: (
        f"pydmobilenet{args['depth']}_"
        f"{_wm(args['width_multiplier'])}_{args['combine']}" + ("" if variant == "orig" else "_pf")
    ),
    # The authors trained with pydmobilenet_imagenet32 on ImageNet (32 px), with the CIFAR recipe
    # otherwise.
    recipes={
        "small": "pydmobilenet_cifar",
        "large": "pydmobilenet_cifar",
        "imagenet32": "pydmobilenet_imagenet32",
        "imagenet": "pydmobilenet_imagenet32",
    },
)

_BASELINE = dict(hybrid_stem=None, downsampling=("standard",), convert_options=None)
MOBILENET_BASELINE = dataclasses.replace(
    PYD,
    title="PydMobileNet's MobileNet baseline",
    block=_block("mobilenet"),
    description="""
        The "MobileNet-{depth}-{m}" baseline of PydMobileNet's table (released graphs only): the
        PydMobileNet network with only a 3x3 depthwise conv (stride s, padding 1) in every block:
        ``BN-ReLU-1x1(mid)-BN-ReLU-dw3x3-BN-ReLU-1x1-BN + shortcut``. Reference rows
        ``mobilenet{29,56}_{0.5,1,1.5}`` (CIFAR-10/100). Params: -6 vs the rows (input BN).
    """,
    args=(_ARGS[0], dataclasses.replace(_ARGS[1], default=1.0)),
    default_name=lambda args, variant: f"mobilenet{args['depth']}_{_wm(args['width_multiplier'])}",
    **_BASELINE,
)
RESNET_BASELINE = dataclasses.replace(
    PYD,
    title="PydMobileNet's ResNet baseline",
    block=_block("resnet"),
    description="""
        The "ResNet-{depth}" (bottleneck 0.5) baseline of PydMobileNet's table: pre-activation
        bottleneck ``BN-ReLU-1x1(mid)-BN-ReLU-conv3x3(mid, stride s)-BN-ReLU-1x1-BN + shortcut``
        with ``mid = 0.5 * C`` (16/32/64). Reference rows ``resnet29`` / ``resnet56``
        (CIFAR-10/100; the released files are named ``*_resne29`` inside, a typo the loader
        accepts since it ignores the prefix). Params: -6 vs the rows (input BN).
    """,
    args=(_ARGS[0], dataclasses.replace(_ARGS[1], default=0.5)),
    default_name=lambda args, variant: f"resnet{args['depth']}",
    **_BASELINE,
)

PydMobileNet = _builder.make_builder(
    PYD, "PydMobileNet", "PydMobileNet-{depth}-{width_multiplier} with Add or Concat pyramids."
)
PydMobileNetPF = _builder.make_builder(
    PYD,
    "PydMobileNetPF",
    "PydMobileNet with the paper's padding-free downsampling and hybrid stem (no reference row).",
    stem="hybrid",
    downsampling="padding_free",
)
PydBaselineMobileNet = _builder.make_builder(
    MOBILENET_BASELINE, "PydBaselineMobileNet", "The MobileNet baseline of PydMobileNet's table."
)
PydBaselineResNet = _builder.make_builder(
    RESNET_BASELINE,
    "PydBaselineResNet",
    "The ResNet (bottleneck 0.5) baseline of PydMobileNet's table.",
)


# -- Registry --------------------------------------------------------------------------------------

# The padding-free variants in the registry (PydMobileNetPF builds every configuration; registering
# each one would double the registry-wide test time for no new code path).
PF_REGISTERED = {("cifar", 29, 0.25), ("imagenet32", 56, 0.25)}
_CIFAR = "CIFAR-10/100 rows (classes=100 by default, pass classes=10)"
_DEVIATION = {"params": STEM_BN_DEVIATION}


def _register():
    w = _registry.width_token
    for depth in (29, 56):
        for kind, widths in (("plus", (0.25, 0.5, 0.75, 1)), ("concat", (0.25, 0.5, 0.75))):
            combine = "add" if kind == "plus" else "concat"
            for m in widths:
                old = f"pydmobilenet{depth}_{_wm(m)}_{kind}"
                for variant in (
                    ("orig", "pf") if ("cifar", depth, m) in PF_REGISTERED else ("orig",)
                ):
                    old_name = old + ("_pf" if variant == "pf" else "") + "_cifar"
                    new = _registry.model_name(
                        f"pydmobilenet{depth}", "cifar", variant, (w(m), combine)
                    )
                    _builder.register(
                        PYD,
                        PydMobileNet,
                        architecture=f"pydmobilenet{depth}",
                        options=(w(m), combine),
                        dataset="cifar",
                        variant=variant,
                        reference=(
                            f"pydmobilenet{depth}_{m:g}_{kind}",
                            "orig",
                            "PydMobileNet (cifar",
                        )
                        if variant == "orig"
                        else None,
                        deviations=_DEVIATION if variant == "orig" else None,
                        aliases=(old_name,) if old_name != new else (),
                        description=f"PydMobileNet-{depth}-{m:g} ({combine}), {_CIFAR}",
                        depth=depth,
                        width_multiplier=m,
                        combine=combine,
                    )
        for m in (0.5, 1, 1.5):
            _builder.register(
                MOBILENET_BASELINE,
                PydBaselineMobileNet,
                architecture=f"pyd_baseline_mobilenet{depth}",
                options=(w(m),),
                dataset="cifar",
                reference=(f"mobilenet{depth}_{m:g}", "orig", "PydMobileNet (cifar"),
                deviations=_DEVIATION,
                aliases=(f"pyd_mobilenet{depth}_{_wm(m)}_cifar",),
                description=f"MobileNet-{depth}-{m:g} baseline of PydMobileNet's table, {_CIFAR}",
                depth=depth,
                width_multiplier=m,
            )
        _builder.register(
            RESNET_BASELINE,
            PydBaselineResNet,
            architecture=f"pyd_baseline_resnet{depth}",
            dataset="cifar",
            reference=(f"resnet{depth}", "orig", "PydMobileNet (cifar"),
            deviations=_DEVIATION,
            aliases=(f"pyd_resnet{depth}_cifar",),
            description=f"ResNet-{depth} (bottleneck 0.5) baseline of PydMobileNet's table, "
            f"{_CIFAR}",
            depth=depth,
            width_multiplier=0.5,
        )
    for m in (0.25, 0.5, 0.75):
        for variant in ("orig", "pf") if ("imagenet32", 56, m) in PF_REGISTERED else ("orig",):
            _builder.register(
                PYD,
                PydMobileNet,
                architecture="pydmobilenet56",
                options=(w(m), "concat"),
                dataset="imagenet32",
                variant=variant,
                reference=(f"pydnet_{m:g}".replace("0.", "0_"), "orig", "PydMobileNet (imagenet32)")
                if variant == "orig"
                else None,
                deviations=_DEVIATION if variant == "orig" else None,
                aliases=(f"pydnet_{_wm(m)}{'_pf' if variant == 'pf' else ''}_imagenet32",),
                description=f"PydMobileNet-56-{m:g} (Concat), ImageNet 32x32 layout (pydnet.py)",
                depth=56,
                width_multiplier=m,
                combine="concat",
            )


_register()
