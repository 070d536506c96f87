"""ShuffleNetV2 1.0x of the padding-free paper: orig, PF, ablations, attention downsampling.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (second CIFAR-100
table, ablation, EfficientFormerV2-downsampling comparison, VegFru-292). Reference code:
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (folders
``CIFAR-100_second_ hyperparameter``, ``VegFru-292`` and
``CIFAR-100_comparing_with_self_attention_down_sampling``; files ``shufflenet_v2*.py`` and
``shufflenet*.py``), torchvision's ShuffleNetV2 (Ma et al., ECCV 2018) with CIFAR strides.
"""

import dataclasses

import keras

from keras_padfree.applications import _second_set
from keras_padfree.applications._arch import parse
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import conv_unit
from keras_padfree.applications._family import hybrid_stem
from keras_padfree.blocks import common
from keras_padfree.blocks.shuffle_unit import shuffle_unit

__all__ = ["ShuffleNetV2", "ShuffleNetV2PF"]

# ShuffleNetV2 1.0x (Ma et al. 2018, table 5): stages 2-4, output width, units, stride of the
# first unit (the same in both layouts: the CIFAR layout changes the stem only).
TABLE = parse("""
    # out  n  s
      116  4  2
      232  8  2
      464  4  2
""")

# PyTorch's defaults (the reference sets no init). The padding-free shortcut joins before the BN
# (``BN(dw(x) + maxpool(x))``); with attention downsampling only the last stage uses attention.
QUIRKS = common.Quirks(
    init=common.TORCH_DEFAULT,
    names=common.Names(conv="", depthwise="", act="_relu"),
    join="before_bn",
    shortcut_pool="3x3",
    attention_conv_only=2,
)


def _block(x, row, ctx, *, strides, name):
    return shuffle_unit(x, ctx, filters=row.out, strides=strides, name=name)


def _stem(x, ctx):
    x = ctx.conv_bn_act(x, 24, 3, ctx.config_values["stem_strides"], "relu", name="conv1")
    if ctx.config_values["stem_strides"] == 1:
        return keras.layers.MaxPooling2D(3, 1, padding="same", name="maxpool")(x)
    # PyTorch pads with -inf; the input is a ReLU output (>= 0), so zero padding is exact.
    x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    return keras.layers.MaxPooling2D(3, 2, padding="valid", name="maxpool")(x)


def _classifier(ctx):
    def kwargs(fan_in, classes):
        limit = fan_in**-0.5
        return {
            "kernel_initializer": ctx.quirks.init.dense(),
            "bias_initializer": keras.initializers.RandomUniform(-limit, limit),
        }

    return kwargs


FAMILY = _second_set.family(
    "shufflenetv2",
    title="ShuffleNetV2 1.0x",
    module=__name__,
    description="""
        torchvision-style ``shufflenet_v2_x1_0``: conv1 = 3x3 conv 3 -> 24 + BN + ReLU, then a 3x3
        max-pool (both stride 1 in the CIFAR layout, stride 2 at 224: network stride 8 / 32);
        stages 2, 3, 4 with 4, 8, 4 units and 116, 232, 464 channels (:func:`shuffle_unit`);
        1x1 conv 464 -> 1024 + BN + ReLU; spatial mean (``x.mean([2, 3])`` in the reference:
        :class:`SpatialMean`, no FLOPs under thop 0.0.31); Dense "predictions". No dropout.
        BatchNorm eps 1e-5, Keras momentum 0.9 everywhere (the hybrid stem too); PyTorch's
        default initialisation (the attention embeddings' conv biases start at 0).

        Stride-2 depthwise convs are zero-padded symmetrically; padding-free, both depthwise
        convs (branch1 and branch2) of each stage's first unit use padding 0 and add the
        3x3/2/0 max-pool of the conv's input **before** the BN, ``BN(dw(x) + maxpool(x))``
        (:class:`PaddingFreeDWConv`, ``"before_bn"``; no activation follows): maps 32 -> 15 -> 7
        -> 3 on CIFAR, 56 -> 27 -> 13 -> 6 at 224. The hybrid stem replaces conv1 **and** the
        max-pool: 3x3 conv 3 -> 24 (stride 1 CIFAR, 2 at 224), a depthwise 3x3 and a 3x3
        max-pool branch (stride 1 CIFAR, **2 at 224**), concatenated, 1x1 48 -> 24 (+1,464
        parameters); the reference's unused max-pool is not built. Attention: each stage's first
        unit is replaced by an EfficientFormerV2 embedding (dense 3x3/2 conv with bias + BN, no
        activation, no channel shuffle after it): stages 2 and 3 conv-only, stage 4 with 4-D
        attention whose resolution follows the input.
    """,
    # The max-pool after conv1 has conv1's stride (the CIFAR layout changes the stem only).
    configs=(
        dataclasses.replace(_second_set.CONFIGS[0], stem_steps=((3, 2, 1), (3, 2, 1))),
        _second_set.CONFIGS[1],
    ),
    table=TABLE,
    quirks=QUIRKS,
    block=_block,
    block_name=lambda row: f"stage{row.stage + 1}_unit{row.unit}",
    stem=_stem,
    # Replaces conv1 *and* the max-pool: at 224 both branches have stride 2 (224 -> 112 -> 56).
    hybrid_stem=hybrid_stem(
        24, "relu", branch_strides=lambda ctx: ctx.config_values["stem_strides"]
    ),
    tail=conv_unit(1024, 1, "relu", "conv5"),
    # The hybrid stem replaces conv1 and the max-pool after it.
    convert_options={"stem_options": {"replace_pool": True}},
    head=lambda ctx: Head(pool="avg_pool", pool_kind="functional", classifier=_classifier(ctx)),
)

ShuffleNetV2, ShuffleNetV2PF = _second_set.builders(
    FAMILY,
    "ShuffleNetV2",
    "ShuffleNetV2 1.0x (original, or an ablation / attention-downsampling variant).",
    'ShuffleNetV2 1.0x with padding-free downsampling and the hybrid stem (the paper\'s "ours").',
)

_second_set.register(FAMILY, ShuffleNetV2, "shufflenetv2", "shufflenetv2")
