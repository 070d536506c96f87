"""torchvision-style MobileNetV3-large: the paper's second set (CIFAR-100, VegFru-292, ablations).

Reference: ``mobilenet_v3.py`` / ``mobilenet_v3_ours.py`` of
github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (CIFAR-100 second hyper-parameter
set, VegFru-292 and EfficientFormerV2-downsampling folders), a torchvision MobileNetV3-large with
``num_classes`` changed. Counts follow thop 0.0.31, the paper's counter.
"""

import keras

from keras_padfree.applications import _second_set
from keras_padfree.applications._arch import MOBILENETV3_LARGE
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import conv_unit
from keras_padfree.blocks import common
from keras_padfree.blocks.inverted_residual import inverted_residual
from keras_padfree.layers._utils import make_divisible
from keras_padfree.layers.squeeze_excite import SqueezeExcite

__all__ = ["MobileNetV3Large", "MobileNetV3LargePF"]

# torchvision's MobileNetV3: BN eps 1e-3, PyTorch momentum 0.01 (Keras 0.99); convs kaiming-normal
# (fan-out), Linear N(0, 0.01).
QUIRKS = common.Quirks(
    bn_epsilon=1e-3,
    bn_momentum=0.99,
    init=common.KAIMING_NORMAL_FAN_OUT,
    join="after_activation",
    shortcut_pool="3x3",
)


def _squeeze_excite(x, expanded, name):
    # torchvision: make_divisible(expanded // 4, 8), ReLU, hard-sigmoid gate, functional pooling
    # (F.adaptive_avg_pool2d: thop 0.0.31 does not count it).
    return SqueezeExcite(
        make_divisible(expanded // 4, 8),
        activation="relu",
        gate="hard_sigmoid",
        pool_is_module=False,
        kernel_initializer=QUIRKS.init.conv(),
        name=name,
    )(x)


def _block(x, row, ctx, *, strides, name):
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
    )


def _hidden(x, ctx):
    x = keras.layers.Dense(1280, kernel_initializer=ctx.quirks.init.dense(), name="head_dense")(x)
    return ctx.activation(x, "hard_silu", "head_act")


FAMILY = _second_set.family(
    "mobilenetv3_large",
    title="MobileNetV3-large (torchvision)",
    module=__name__,
    description="""
        Builds ``torchvision.models.mobilenet_v3_large`` as the reference's ``mobilenet_v3.py``:
        3x3 stem (16, hard-swish), the 15 inverted residuals of ``MOBILENETV3_LARGE`` (expansion
        1x1 omitted where it would keep the width, block 1), 1x1 conv 160 -> 960 + BN + hard-swish,
        global average pool, Linear 960 -> 1280 + hard-swish + Dropout(0.2) + Linear 1280 ->
        ``classes`` ("predictions"). Every BN has eps 1e-3 and PyTorch momentum 0.01 (Keras 0.99);
        SE squeezes to ``make_divisible(expanded // 4, 8)`` with a hard-sigmoid gate and pools with
        a functional ``F.adaptive_avg_pool2d`` (not counted by thop 0.0.31, the paper's counter).
        The CIFAR layout (the paper's 32x32 rows) runs the stem and block 2 at stride 1 (network
        stride 8: 32 -> 4, or 32 -> 3 padding-free).

        Padding-free ("pf", "downsampling_only"): every stride-2 depthwise conv uses padding 0
        (k3) / 1 (k5) plus a max-pool of its input added **after** BN and activation
        (:class:`PaddingFreeDWConv`, ``"after_activation"``); the pool is **3x3/2/0 for k5 convs
        too** (the reference builds a 5x5/2/1 pool and then overwrites it). The hybrid stem
        (:class:`HybridStem`, 16 channels, hard-swish, stride 1 on CIFAR and 2 at 224) keeps
        PyTorch's **default** BN (eps 1e-5, momentum 0.1), unlike the rest of the network, as the
        reference. Attention ("effv2_downsampling"): every stride-2 block is replaced by
        EfficientFormerV2's ``Embedding`` (:class:`AttentionDownsampling`), the first conv-only,
        the others with 4-D attention whose bias tables follow the input size; its conv-branch BN
        is MobileNetV3's (1e-3, 0.01).
    """,
    table=MOBILENETV3_LARGE,
    quirks=QUIRKS,
    block=_block,
    stem=(16, "hard_silu"),
    tail=conv_unit(960, 1, "hard_silu", "last"),
    head=lambda ctx: Head(
        pool="avg_pool",
        hidden=_hidden,
        dropout=0.2,
        dropout_name="head_dropout",
        classifier=lambda fan_in, classes: {"kernel_initializer": ctx.quirks.init.dense()},
    ),
    head_has_dropout=True,
)

MobileNetV3Large, MobileNetV3LargePF = _second_set.builders(
    FAMILY,
    "MobileNetV3Large",
    "torchvision-style MobileNetV3-large, as the paper's second set (and its variants) built it.",
    'MobileNetV3-large "ours": hybrid stem + padding-free downsampling.',
)

_second_set.register(FAMILY, MobileNetV3Large, "mobilenetv3_large", "mobilenetv3_large")
