"""ParC-MobileNetV2 of the padding-free paper: orig, PF, ablations, attention downsampling.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (second CIFAR-100
table, ablation, EfficientFormerV2-downsampling comparison, VegFru-292). Reference code:
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (folders
``CIFAR-100_second_ hyperparameter``, ``VegFru-292`` and
``CIFAR-100_comparing_with_self_attention_down_sampling``, files ``parc_mobilenet_v2*.py`` and
``parc_ours.py``), a MobileNetV2 whose late stages use ParC-Net's position-aware circular
convolutions (Zhang et al., ECCV 2022).
"""

from keras_padfree.applications import _builder
from keras_padfree.applications import _second_set
from keras_padfree.applications._arch import MOBILENETV2
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import conv_unit
from keras_padfree.blocks import common
from keras_padfree.blocks.inverted_residual import inverted_residual
from keras_padfree.blocks.parc_block import parc_block

__all__ = ["ParCMobileNetV2", "ParCMobileNetV2PF"]

# MobileNetV2's table; ParC-Net's global-conv blocks replace the last units of the 64-, 96- and
# 160-wide stages ("parc_pe": the first of a stage, with positional embeddings).
TABLE = MOBILENETV2.with_columns(
    block=(
        "ir",
        "ir",
        "ir",
        "ir",
        "ir",
        "ir",
        "ir",
        "ir",
        "parc_pe",
        "parc",
        "ir",
        "ir",
        "parc_pe",
        "ir",
        "ir",
        "parc_pe",
        "ir",
    )
)

# PyTorch's default BN everywhere; the reference initialises every conv kaiming-normal (fan-out)
# and the classifier N(0, 0.01).
QUIRKS = common.Quirks(
    init=common.KAIMING_NORMAL_FAN_OUT,
    names=common.Names(depthwise="_dw", act="_relu6"),
    join="after_activation",
    shortcut_pool="3x3",
)


def _block(x, row, ctx, *, strides, name):
    if row.block == "ir":
        expanded = int(round(int(x.shape[-1]) * row.t))
        return inverted_residual(
            x,
            ctx,
            expanded=expanded,
            filters=row.out,
            kernel_size=3,
            strides=strides,
            activation="relu6",
            name=name,
        )
    return parc_block(
        x, ctx, filters=row.out, expansion=row.t, use_pe=row.block == "parc_pe", name=name
    )


FAMILY = _second_set.family(
    "parc_mobilenetv2",
    title="ParC-MobileNetV2",
    module=__name__,
    description="""
        The 17 blocks of MobileNetV2's table: inverted residuals (1x1 expand [absent for t=1],
        3x3 depthwise, 1x1 linear projection; identity shortcut iff stride 1 and width kept) and
        four ParC blocks (blocks 9, 10, 13, 16; :func:`parc_block`): 1x1 expand, BN, ReLU6, the
        first half of the channels through a vertical ``K x 1`` :class:`ParCConv`, the second
        half through a horizontal ``1 x K`` one, concatenate, BN, ReLU6, 1x1 projection, BN,
        identity shortcut. The first ParC block of each stage (9, 13, 16) has positional
        embeddings. ``K`` is the feature-map size where the block sits, taken from the input
        shape when the model is built: the reference's constants at the paper's sizes (CIFAR:
        K = 8/8/4 original, 7/7/3 padding-free; 224: 14/14/7 and 13/13/6), and a global conv at
        any other size, where the reference crashes; so the input height and width must be
        static. Head: 1x1 conv 320 -> 1280, BN, ReLU6; global average pool (functional in the
        reference: :class:`SpatialMean`, no FLOPs under thop 0.0.31); Dropout(0.2); Dense
        "predictions" (N(0, 0.01), zero bias). BatchNorm eps 1e-5, Keras momentum 0.9 everywhere
        (the hybrid stem too); convs kaiming-normal (fan-out), positional embeddings truncated
        normal (std 0.02). ``profiling.count_params(model, "thop_0.0.31")`` leaves the positional
        embeddings (and attention bias tables) out, as the paper did.

        Stride-2 depthwise convs (blocks 4, 7, 14; and block 2 at 224) are zero-padded
        symmetrically; padding-free, they use padding 0 plus a 3x3/2/0 max-pool of the input
        added after BN and ReLU6 (:class:`PaddingFreeDWConv`, ``"after_activation"``), and the
        ParC kernels follow the smaller maps. Hybrid stem: 3x3 conv 3 -> 32 (stride 1 CIFAR, 2 at
        224), depthwise and 3x3/1/1 max-pool branches at stride 1, 1x1 fuse; ReLU6, default BN.
        Attention: the stride-2 blocks become EfficientFormerV2 embeddings (the first conv-only,
        the others with attention); at 32x32 the ParC kernels then stay 8/8/4. The reference's
        orig file ships an unused ``StemBlock`` class; it is not reproduced.
    """,
    table=TABLE,
    quirks=QUIRKS,
    block=_block,
    stem=(32, "relu6"),
    tail=conv_unit(1280, 1, "relu6", "head"),
    head=lambda ctx: Head(
        pool="avg_pool",
        pool_kind="functional",
        dropout=0.2,
        dropout_name="dropout",
        classifier=lambda fan_in, classes: {
            "kernel_initializer": ctx.quirks.init.dense(),
            "bias_initializer": "zeros",
        },
    ),
    head_has_dropout=True,
    needs_static_size=True,
    legacy_args=_builder.renamed_args({"dropout": "dropout_rate"}),
)

ParCMobileNetV2, ParCMobileNetV2PF = _second_set.builders(
    FAMILY,
    "ParCMobileNetV2",
    "ParC-MobileNetV2 (original, or an ablation / attention-downsampling variant).",
    'ParC-MobileNetV2 with padding-free downsampling and the hybrid stem (the paper\'s "ours").',
)

_second_set.register(FAMILY, ParCMobileNetV2, "parc_mobilenetv2", "parc_mobilenetv2")
