"""MobileNetV3-large as the BSConv library builds it, original and with padding-free downsampling.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (first table: BSConv
library models on CIFAR-100, Stanford Dogs and ImageNet). Reference code: the BSConv copy in
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (``BSConv-master``), on top
of
https://github.com/zeiss-microscopy/BSConv v0.4.0 (``bsconv/pytorch/mobilenet.py``).

This is the BSConv library's MobileNetV3, not torchvision's or keras.applications': its first unit
has a 1x1 expansion conv even though ``exp == in``, SE squeezes to a plain ``C // 4``, there is no
ReLU6, and the default head is the library's lightweight one (no 1280-wide layer).
"""

import keras

from keras_padfree.applications import _builder
from keras_padfree.applications._arch import MOBILENETV3_LARGE
from keras_padfree.applications._family import Arg
from keras_padfree.applications._family import Config
from keras_padfree.applications._family import Family
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import conv_unit
from keras_padfree.applications._family import hybrid_stem
from keras_padfree.applications.bsconv_resnet import QUIRKS
from keras_padfree.applications.bsconv_resnet import classifier
from keras_padfree.applications.bsconv_resnet import data_bn
from keras_padfree.blocks.inverted_residual import inverted_residual
from keras_padfree.layers import _utils
from keras_padfree.layers.orthonormal_regularizer import OrthonormalRegularizer
from keras_padfree.layers.squeeze_excite import SqueezeExcite

__all__ = ["BSConvMobileNetV3Large", "BSConvMobileNetV3LargePF"]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"
HEADS = ("lightweight", "full")


def _squeeze_excite(x, expanded, name):
    # The library's SE: a plain C // 4 squeeze, pooling module, h-sigmoid gate.
    return SqueezeExcite(
        expanded // 4,
        activation="relu",
        gate="hard_sigmoid",
        pool_is_module=True,
        kernel_initializer=QUIRKS.init.conv(),
        name=name,
    )(x)


def _block(x, row, ctx, *, strides, name):
    alpha = ctx.args["orthonormal_alpha"] if ctx.args["bsconv_s"] else None
    project = {} if alpha is None else {"kernel_regularizer": OrthonormalRegularizer(alpha)}
    return inverted_residual(
        x,
        ctx,
        expanded=row.exp,
        filters=row.out,
        kernel_size=row.k,
        strides=strides,
        activation=row.nl,
        name=name,
        squeeze_excite=_squeeze_excite if row.se else None,
        always_expand=True,
        units=("conv1", "conv2", "conv3"),
        project_kwargs=project,
    )


def _hidden(x, ctx):
    if ctx.args["head"] == "lightweight":
        return x
    x = keras.layers.Dense(
        1280, use_bias=False, kernel_initializer=ctx.quirks.init.dense(), name="final_conv2"
    )(x)
    return ctx.activation(x, "hard_silu", "final_conv2_act")


def _check_alpha(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(
            "Argument `orthonormal_alpha` must be a number >= 0. "
            f"Received: orthonormal_alpha={value!r}."
        )
    return float(value)


FAMILY = Family(
    name="bsconv_mobilenetv3",
    title="BSConv-library MobileNetV3-large",
    source=SOURCE,
    module=__name__,
    description="""
        ``bsconv.pytorch.get_mobilenet("mobilenetv3_large_w1")`` of the BSConv library (v0.4.0):
        ``data_bn`` (a learnable BatchNorm over the raw [0, 1] input channels; no mean/std
        normalisation), stem 3x3 conv 3 -> 16 -> BN -> h-swish, the 15 ``LinearBottleneck`` units
        of ``MOBILENETV3_LARGE`` in 5 stages. ``conv1`` (1x1 expansion -> BN -> act) is present
        in every unit, even the first where ``exp == in`` (torchvision drops it). SE squeezes to
        a plain ``C // 4`` (72 -> 18, 120 -> 30, ...), pools with a module, gates with h-sigmoid,
        and sits after the depthwise conv. Activations are ReLU then h-swish (no ReLU6). Identity
        residual iff ``in == out`` and stride 1. ``final_conv1``: 1x1 160 -> 960 -> BN ->
        h-swish; global average pool; then the classifier, a Dense layer named "predictions" (the
        library's 1x1 conv with bias on the pooled map). With ``head="full"`` (what the paper's
        ImageNet row counts) a 1x1 960 -> 1280 layer without bias and without BN, h-swish, comes
        before it. No dropout. Convs kaiming-uniform (depthwise fan-in ``k*k``), SE biases 0,
        classifier xavier-normal with bias ``U(+-1/sqrt(in))``; BN eps 1e-5, momentum 0.1.
        ``bsconv_s=True`` is the paper's "MobileNetV3-large BSConv-S (p=1/6)": no layer changes;
        each unit's projection (``conv3``) kernel ``W`` gets the orthonormal regulariser
        ``alpha * ||W W^T - I||_F`` (plain Frobenius norm; alpha 0.1), so ``model.losses`` has 15
        terms.

        Padding-free (the BSConv copy at HEAD 7a0c4b8 with the 224 stem fix below): every
        stride-2 depthwise conv drops its border padding (3x3: 0; 5x5: 1) and adds the 3x3/2/0
        max-pool of its input *after* the activation (:class:`PaddingFreeDWConv`); the max-pool is
        3x3 even for 5x5 convs, and the SE unit then gates the sum. The reference's optional 1x1
        ``conv2`` on the max-pooled input is off, as the paper's counts require. The stem is a
        non-residual :class:`HybridStem` (1,184 params) whose first conv has stride 2 with padding
        1 at 224: the reference hard-codes stride 1 (899 MFLOPs), but the paper's 212.6/214.9
        MFLOPs need stride 2 there.
    """,
    configs=(
        Config("imagenet", 224, "s", ((3, 2, 1),), None, {"stem_strides": 2}),
        Config("cifar", 32, "s32", (), None, {"stem_strides": 1}),
    ),
    table=MOBILENETV3_LARGE.staged("s"),
    quirks=QUIRKS,
    block=_block,
    block_name="stage{stage}_unit{unit}",
    input_layer=data_bn,
    stem=conv_unit(16, 3, "hard_silu", "stem", strides_key="stem_strides"),
    hybrid_stem=hybrid_stem(16, "hard_silu", residual=False, ordering="post"),
    tail=conv_unit(960, 1, "hard_silu", "final_conv1"),
    head=lambda ctx: Head(pool="final_pool", hidden=_hidden, classifier=classifier),
    args=(
        Arg(
            "head",
            "lightweight",
            '"lightweight" (the library\'s default: pool -> classifier) '
            'or "full" (pool -> 1x1 960 -> 1280 -> h-swish -> classifier).',
            lambda v: _utils.check_choice(v, "head", HEADS),
            annotation=str,
        ),
        Arg(
            "bsconv_s",
            False,
            "add the BSConv-S orthonormal regulariser (see above).",
            lambda v: _utils.check_bool(v, "bsconv_s"),
            annotation=bool,
        ),
        Arg(
            "orthonormal_alpha",
            0.1,
            "its weight (0.1 in the paper).",
            _check_alpha,
            annotation=float,
        ),
    ),
    downsampling=("standard", "padding_free"),
    convert_options={},
    default_classes=100,
    default_name=lambda args, variant: (
        "bsconv_mobilenetv3_large" + ("" if variant == "orig" else f"_{variant}")
    ),
    recipes={"small": "bsconv_set1", "large": "bsconv_set1_dogs"},
)

BSConvMobileNetV3Large = _builder.make_builder(
    FAMILY, "BSConvMobileNetV3Large", "The BSConv library's MobileNetV3-large."
)
BSConvMobileNetV3LargePF = _builder.make_builder(
    FAMILY,
    "BSConvMobileNetV3LargePF",
    "The BSConv library's MobileNetV3-large with padding-free "
    'downsampling and the hybrid stem (the paper\'s "ours").',
    stem="hybrid",
    downsampling="padding_free",
)

for _dataset, _ref, _head in (
    ("cifar", "cifar_mobilenetv3_large", "lightweight"),
    ("dogs", "mobilenetv3_large_dogs", "lightweight"),
    ("imagenet", "mobilenetv3_large_imagenet", "full"),
):
    for _bsconv_s in (False, True) if _dataset != "imagenet" else (False,):
        _options = ("bsconvs",) if _bsconv_s else ()
        _key = _ref.replace("mobilenetv3_large", "mobilenetv3_large_bsconvs") if _bsconv_s else _ref
        for _variant in ("orig", "pf"):
            _old = "_".join(("bsconv_mobilenetv3_large", *_options, _dataset))
            _builder.register(
                FAMILY,
                BSConvMobileNetV3Large,
                architecture="bsconv_mobilenetv3_large",
                options=_options,
                dataset=_dataset,
                variant=_variant,
                reference=(_key, _variant, "set1"),
                aliases=(_old + "_pf",) if _variant == "pf" else (),
                description=f"{FAMILY.title}{' BSConv-S' if _bsconv_s else ''}, {_head} head",
                head=_head,
                bsconv_s=_bsconv_s,
            )
