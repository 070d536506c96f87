"""GhostNet 1.0x: the paper's second set (CIFAR-100, VegFru-292, ablations, attention downsampling).

Reference: ``ghostnet.py`` / ``ghostnet_ours.py`` of
github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (CIFAR-100 second hyper-parameter
set, VegFru-292 and EfficientFormerV2-downsampling folders), the Huawei/timm GhostNet 1.0x with
``num_classes`` changed. Counts follow thop 0.0.31, the paper's counter.
"""

import keras

from keras_padfree.applications import _second_set
from keras_padfree.applications._arch import parse
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import conv_unit
from keras_padfree.blocks import common
from keras_padfree.blocks.ghost_bottleneck import ghost_bottleneck

__all__ = ["GhostNet", "GhostNetPF"]

# GhostNet 1.0x (Han et al. 2020, table 1): the 16 bottlenecks by their reference names
# (stage.unit),
# kernel, expanded and output width, SE ratio, stride at 224 px and in the CIFAR layout.
TABLE = parse("""
    # id   k  exp  out   se    s  s32
      0.0  3   16   16   -     1   1
      1.0  3   48   24   -     2   1
      2.0  3   72   24   -     1   1
      3.0  5   72   40   0.25  2   2
      4.0  5  120   40   0.25  1   1
      5.0  3  240   80   -     2   2
      6.0  3  200   80   -     1   1
      6.1  3  184   80   -     1   1
      6.2  3  184   80   -     1   1
      6.3  3  480  112   0.25  1   1
      6.4  3  672  112   0.25  1   1
      7.0  5  672  160   0.25  2   2
      8.0  5  960  160   -     1   1
      8.1  5  960  160   0.25  1   1
      8.2  5  960  160   -     1   1
      8.3  5  960  160   0.25  1   1
""")

# PyTorch's defaults everywhere (BN eps 1e-5 / momentum 0.1, kaiming-uniform(a=sqrt(5)) init). The
# padding-free shortcut joins after the depthwise BN (that path has no activation) and pools 5x5/2/1
# for 5x5 convs, as the reference.
QUIRKS = common.Quirks(init=common.TORCH_DEFAULT, join="after_bn", shortcut_pool="kernel")

DEAD_BN1_REASON = (
    "the reference GhostNet-ours still builds the original stem's bn1 (BatchNorm 16: 32 weights) "
    "but never calls it; this port does not create dead weights"
)


def _block(x, row, ctx, *, strides, name):
    return ghost_bottleneck(
        x,
        ctx,
        kernel_size=row.k,
        expanded=row.exp,
        filters=row.out,
        se_ratio=row.se,
        strides=strides,
        name=name,
    )


def _hidden(x, ctx):
    # conv_head: a 1x1 conv with bias on the pooled 1x1 map, then ReLU and flatten.
    x = keras.layers.Conv2D(
        1280, 1, use_bias=True, kernel_initializer=ctx.quirks.init.conv(), name="conv_head"
    )(x)
    x = ctx.activation(x, "relu", "head_act")
    return keras.layers.Flatten(name="flatten")(x)


FAMILY = _second_set.family(
    "ghostnet",
    title="GhostNet 1.0x",
    module=__name__,
    description="""
        Builds the reference's ``ghostnet.py`` (GhostNet 1.0x, width 1.0): 3x3 stem conv (16) +
        BN + ReLU, the 16 Ghost bottlenecks of ``TABLE`` (:func:`ghost_bottleneck`), 1x1 conv
        160 -> 960 + BN + ReLU, global average pool (a module), ``conv_head`` 1x1 conv 960 ->
        1280 **with bias** + ReLU, flatten, Dropout(0.2), Linear 1280 -> ``classes``
        ("predictions"). BN is PyTorch's default everywhere (eps 1e-5, momentum 0.1 = Keras 0.9);
        initialisation is PyTorch's default. The CIFAR layout runs the stem and bottleneck 1.0 at
        stride 1; a stride-1 Ghost bottleneck has no depthwise conv, so there block 1.0 **loses
        its depthwise conv** and its shortcut becomes dw3x3/1 + BN + 1x1 + BN, exactly as the
        reference's CIFAR file.

        Padding-free: every strided bottleneck's depthwise conv uses padding 0 (k3) / 1 (k5) and
        adds a max-pool of the ``ghost1`` output **after its BN** (the path has no activation;
        :class:`PaddingFreeDWConv` with ``"after_bn"``); the pool is **3x3/2/0 for k3 and 5x5/2/1
        for k5**, as the reference (MobileNetV3 uses 3x3/2/0 for both). The strided conv
        shortcut's depthwise conv gets the same reduced padding. The reference's GhostNet-ours
        still constructs the original ``bn1`` (32 weights) without using it; this port does not
        create the dead layer (a registered ``params_all_weights`` deviation of -32; the paper's
        thop counts are matched exactly). Hybrid stem: 16 channels, ReLU, default BN; stride 1 on
        CIFAR, 2 at 224. Attention: the strided bottlenecks are replaced by EfficientFormerV2's
        ``Embedding`` (default BN), the first conv-only, the others with attention.
    """,
    table=TABLE,
    quirks=QUIRKS,
    block=_block,
    block_name=lambda row: "block" + row.id.replace(".", "_"),
    stem=(16, "relu"),
    tail=conv_unit(960, 1, "relu", "block9_0"),
    head=lambda ctx: Head(
        pool="global_pool",
        pool_kind="keepdims",
        hidden=_hidden,
        dropout=0.2,
        dropout_name="head_dropout",
        classifier=lambda fan_in, classes: {"kernel_initializer": ctx.quirks.init.dense()},
    ),
    head_has_dropout=True,
    # The strided block's conv shortcut (dw k x k/2 -> BN -> 1x1 -> BN) gets the reduced padding
    # only, no pool.
    convert_options={"padding_only": ("*_shortcut_dw_conv",)},
)

GhostNet, GhostNetPF = _second_set.builders(
    FAMILY,
    "GhostNet",
    "GhostNet 1.0x, as the paper's second set (and its variants) built it.",
    'GhostNet 1.0x "ours": hybrid stem + padding-free downsampling.',
)


def _deviations(variant):
    return {"params_all_weights": (-32, DEAD_BN1_REASON)} if variant == "pf" else None


_second_set.register(FAMILY, GhostNet, "ghostnet", "ghostnet", _deviations)
