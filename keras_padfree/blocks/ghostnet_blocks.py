"""Functional blocks of GhostNet 1.0x (the paper's second set).

Every function takes a tensor and returns a tensor; layer names are ``f"{name}_..."`` so a model's
layer names are deterministic. GhostNet keeps PyTorch's default initialisation (kaiming-uniform
with ``a = sqrt(5)``, i.e. U(+-1/sqrt(fan_in))) and default BatchNorm (eps 1e-5, momentum 0.1).
"""

import keras

from keras_padfree.layers import _utils
from keras_padfree.layers.attention_downsampling import AttentionDownsampling
from keras_padfree.layers.ghost_module import GhostModule
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv
from keras_padfree.layers.squeeze_excite import SqueezeExcite

# (kernel, mid, out, se_ratio, imagenet stride) of the 16 Ghost bottlenecks, with their names.
GHOSTNET_BLOCKS = (
    ("0.0", 3, 16, 16, 0.0, 1),
    ("1.0", 3, 48, 24, 0.0, 2),
    ("2.0", 3, 72, 24, 0.0, 1),
    ("3.0", 5, 72, 40, 0.25, 2),
    ("4.0", 5, 120, 40, 0.25, 1),
    ("5.0", 3, 240, 80, 0.0, 2),
    ("6.0", 3, 200, 80, 0.0, 1),
    ("6.1", 3, 184, 80, 0.0, 1),
    ("6.2", 3, 184, 80, 0.0, 1),
    ("6.3", 3, 480, 112, 0.25, 1),
    ("6.4", 3, 672, 112, 0.25, 1),
    ("7.0", 5, 672, 160, 0.25, 2),
    ("8.0", 5, 960, 160, 0.0, 1),
    ("8.1", 5, 960, 160, 0.25, 1),
    ("8.2", 5, 960, 160, 0.0, 1),
    ("8.3", 5, 960, 160, 0.25, 1),
)


def conv_initializer():
    """PyTorch's default conv/Linear init: U(+-1/sqrt(fan_in)) (kaiming-uniform, a = sqrt(5))."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")


def batch_norm(name):
    return _utils.batch_norm(1e-5, 0.9, name=name)


def squeeze_channels(channels, se_ratio):
    """GhostNet's ``_make_divisible(channels * se_ratio, 4)``."""
    from keras_padfree.applications._common import make_divisible  # avoids an import cycle

    return make_divisible(channels * se_ratio, 4)


def _depthwise(x, kernel_size, strides, padding, name):
    x, keras_padding = _utils.pad_for_conv(x, kernel_size, strides, padding, name)
    return keras.layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=keras_padding, use_bias=False,
        depthwise_initializer=_utils.uniform_limit_initializer(kernel_size * kernel_size),
        name=f"{name}_conv")(x)


def conv_bn_act(x, filters, kernel_size, strides, activation, *, name):
    """``act(BN(conv(x)))``, no bias, symmetric padding ``kernel_size // 2``."""
    x, padding = _utils.pad_for_conv(x, kernel_size, strides, kernel_size // 2, name)
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                            kernel_initializer=conv_initializer(), name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    act = _utils.activation_layer(activation, f"{name}_act")
    return act(x) if act is not None else x


def ghost_bottleneck(x, *, kernel_size, mid, filters, se_ratio, strides, padding_free, name):
    """GhostNet's ``GhostBottleneck``.

    ``ghost1`` (GhostModule with ReLU) -> [stride 2 only: depthwise k x k / 2 conv + BN, **no**
    activation] -> [SE] -> ``ghost2`` (GhostModule, no activation) -> + shortcut. A stride-1
    bottleneck has no depthwise conv at all.

    The shortcut is the identity when the stride is 1 and the channels do not change; otherwise a
    depthwise k x k conv with the block's stride, BN, 1x1 conv, BN.

    With ``padding_free`` (and stride 2) the depthwise conv is a :class:`PaddingFreeDWConv` (k3:
    padding 0, k5: padding 1) whose max-pool of the ``ghost1`` output is added **after BN** (the
    path has no activation), as in the reference: a **3x3/2/0 pool for k3 and 5x5/2/1 for k5**
    (unlike MobileNetV3, where the 5x5 pool was overwritten by a 3x3 one). The strided conv
    shortcut gets the same reduced padding (no pool), so both paths have ``floor((H - 3)/2) + 1``.

    SE: ``SqueezeExcite(make_divisible(mid * 0.25, 4))`` with ReLU, a hard-sigmoid gate
    (``relu6(x + 3) / 6``) and an ``nn.AdaptiveAvgPool2d`` module (counted by thop 0.0.31).
    """
    in_channels = int(x.shape[-1])
    shortcut = x
    x = GhostModule(mid, activation="relu", kernel_initializer=conv_initializer(),
                    name=f"{name}_ghost1")(x)
    if strides > 1:
        if padding_free:
            x = PaddingFreeDWConv(
                kernel_size=kernel_size, activation=None, shortcut_position="after_bn",
                shortcut_pool_size=3 if kernel_size == 3 else 5,
                shortcut_padding=0 if kernel_size == 3 else 1,
                name=f"{name}_dw_pf",
            )(x)
        else:
            x = _depthwise(x, kernel_size, strides, (kernel_size - 1) // 2, f"{name}_dw")
            x = batch_norm(f"{name}_dw_bn")(x)
    if se_ratio:
        x = SqueezeExcite(squeeze_channels(mid, se_ratio), activation="relu", gate="hard_sigmoid",
                          pool_is_module=True, kernel_initializer=conv_initializer(),
                          name=f"{name}_se")(x)
    x = GhostModule(filters, activation=None, kernel_initializer=conv_initializer(),
                    name=f"{name}_ghost2")(x)
    if strides == 1 and in_channels == filters:
        return keras.layers.Add(name=f"{name}_add")([x, shortcut])
    pad = (kernel_size - 1) // 2
    if strides > 1 and padding_free:
        pad = (kernel_size - 3) // 2
    s = _depthwise(shortcut, kernel_size, strides, pad, f"{name}_shortcut_dw")
    s = batch_norm(f"{name}_shortcut_dw_bn")(s)
    s = keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=conv_initializer(),
                            name=f"{name}_shortcut_conv")(s)
    s = batch_norm(f"{name}_shortcut_bn")(s)
    return keras.layers.Add(name=f"{name}_add")([x, s])


def attention_embedding(x, filters, *, use_attention, name):
    """The reference's EfficientFormerV2 ``Embedding`` replacing a whole strided Ghost bottleneck.

    GhostNet's E file uses PyTorch's default BN in both branches.
    """
    return AttentionDownsampling(filters, use_attention=use_attention, bn_epsilon=1e-5,
                                 bn_momentum=0.9, kernel_initializer=conv_initializer(),
                                 name=name)(x)
