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

Variants of :func:`CheapMobileNetV3` (``config=``), with the reference files they reproduce:

================== ===================================================== ===========================
config             reference (row key of ``cheap operations``)             changes vs baseline
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
"group"            ``cheapV3G(group conv/model.py)``                      reuse_shuffle6 with grouped
                                                                          (2 ch/group) k x k convs in
                                                                          blocks 8-15
================== ===================================================== ===========================

:func:`CheapMobileNetV2` (``config="baseline"`` = kuangliu-flavour ``MobileNetV2`` of the repo,
``"cheap"`` = ``cheapV2``).

CIFAR strides: the reference switches the stem and block-2 strides to 1 when the input is 32 or
56 pixels (V3 files with a CIFAR mode) or hard-codes them (V2 files). ``cifar_strides=None`` does
what the reference does for the variant (auto from the input size for V3, always for V2, never for
"ol"/"cv3k"); True/False forces it. Counting convention of the rows: conv + Linear MACs ("macs").
"""

import dataclasses

import keras

from keras_padfree.applications import _common
from keras_padfree.applications import _registry
from keras_padfree.blocks import cheap_blocks as cb
from keras_padfree.layers import _utils

__all__ = ["CheapMobileNetV2", "CheapMobileNetV3"]

SOURCE = "https://github.com/kai-pixel/-Efficient-Operations-for-Lightweight-Deep-Neural-Networks"

# V3-Large pattern shared by every V3 variant: kernel, SE, activation, stride ("s" = 1 with CIFAR
# strides, else 2).
V3_KERNELS = (3, 3, 3, 5, 5, 5, 3, 3, 3, 3, 3, 3, 5, 5, 5)
V3_SE = (0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1)
V3_ACT = ("relu",) * 6 + ("hard_silu",) * 9
V3_STRIDES = (1, "s", 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1)

# (expansion widths, output widths) of blocks 1-15.
V3_WIDTHS = {
    "v3_large": ((16, 64, 72, 72, 120, 120, 240, 200, 184, 184, 480, 672, 672, 960, 960),
                 (16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160)),
    "cheap": ((16, 96, 144, 144, 240, 240, 240, 480, 480, 480, 480, 672, 672, 960, 960),
              (16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160)),
    "wide6": ((24, 144, 144, 144, 288, 288, 288, 576, 576, 576, 576, 720, 720, 1080, 1080),
              (24, 24, 24, 48, 48, 48, 96, 96, 96, 96, 120, 120, 180, 180, 180)),
    "cv3k": ((24, 72, 72, 144, 144, 144, 288, 216, 216, 216, 432, 648, 648, 972, 972),
             (24, 24, 24, 48, 48, 48, 72, 72, 72, 72, 108, 108, 162, 162, 162)),
}


@dataclasses.dataclass(frozen=True)
class _V3Spec:
    stem: str            # "std", "f1" or "f2"
    stem_width: int
    widths: str          # key of V3_WIDTHS
    expansion: str       # cheap_blocks.EXPANSIONS
    se: str              # cheap_blocks.SE_KINDS
    last: str            # "std" (conv + BN + hs, pool, conv 1280 + hs) or "tile" (L1)
    dropout: float
    cifar_mode: bool     # whether the reference has a CIFAR-stride mode
    grouped_from: int = 0  # first block (1-based) with a grouped k x k conv (cheapV3G), 0 = none
    out_shuffle: bool = False  # CV3K's shuffle after the projection


V3_VARIANTS = {
    "baseline": _V3Spec("std", 16, "v3_large", "conv", "fc2", "std", 0.2, True),
    "cheap": _V3Spec("std", 16, "cheap", "tile", "tile4_nogate", "tile", 0.2, True),
    "cheap_se8": _V3Spec("f1", 16, "cheap", "tile", "tile8", "tile", 0.2, True),
    "reuse_shuffle6": _V3Spec("f1", 24, "wide6", "shuffle_tile", "tile8", "tile", 0.2, True),
    "imagenet_f2": _V3Spec("f2", 24, "wide6", "shuffle_tile", "tile8", "tile", 0.0, True),
    "ol": _V3Spec("std", 24, "wide6", "shuffle_tile", "tile8", "std", 0.0, False),
    "cv3k": _V3Spec("std", 24, "cv3k", "grouped_tile", "tile4", "std", 0.2, False,
                    out_shuffle=True),
    "group": _V3Spec("f1", 24, "wide6", "shuffle_tile", "tile8", "tile", 0.2, True,
                     grouped_from=8),
}

# MobileNetV2 of the repository: (expansion t, out channels, repeats, stride; "s" = 1 with CIFAR
# strides, else 2), and cheapV2's channel-match half for stride-1 blocks that widen by 1.5.
V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, "s"), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))
V2_MATCH_HALF = {(16, 24): 0, (64, 96): 1}


def _stride(s, cifar):
    return (1 if cifar else 2) if s == "s" else s


def _resolve_cifar(cifar_strides, x, default):
    if cifar_strides is None:
        if default == "auto":
            return x.shape[1] in (32, 56)
        return default
    if not isinstance(cifar_strides, bool):
        raise ValueError(
            "Argument `cifar_strides` must be True, False or None. "
            f"Received: cifar_strides={cifar_strides!r}."
        )
    return cifar_strides


def _v3_stem(x, spec, strides):
    if spec.stem == "std":
        x = cb.conv(x, spec.stem_width, 3, "stem_conv", strides=strides)
    elif spec.stem == "f1":
        x = cb.conv(x, 3, 3, "stem_conv", strides=strides)
        x = cb.bn("stem_conv_bn")(x)
        x = cb.tile(x, 16, "stem_tile")
        x = keras.layers.Conv2D(spec.stem_width, 1, use_bias=False,
                                kernel_initializer=cb.CONV_INITIALIZER, name="stem_pw")(x)
    else:  # f2
        x = cb.tile(x, 4, "stem_input_tile")
        x = cb.conv(x, 12, 3, "stem_conv", strides=strides)
        x = cb.bn("stem_conv_bn")(x)
        x = cb.tile(x, 4, "stem_tile")
        x = keras.layers.Conv2D(spec.stem_width, 1, use_bias=False,
                                kernel_initializer=cb.CONV_INITIALIZER, name="stem_pw")(x)
    x = cb.bn("stem_bn")(x)
    return cb.act(x, "hard_silu", "stem_act")


def CheapMobileNetV3(config="cheap", *, cifar_strides=None, dropout_rate=None, include_top=True,
                     weights=None, input_tensor=None, input_shape=None, pooling=None, classes=100,
                     classifier_activation="softmax", name=None):
    """A MobileNetV3-Large of kai-pixel's repository, baseline or with cheap operations.

    Reproduces the repository's V3 (not torchvision's): SE after the depthwise BN and before the
    activation, SE FCs without bias and exact ``C / r`` widths, 960->1280 head conv without bias, BN
    eps 1e-5 / PyTorch momentum 0.1, stride-2 convs padded symmetrically (explicit padding), tiles
    in copy-major order (``Concatenate([x] * r)``, not ``DepthwiseConv2D(depth_multiplier=r)``).
    See the module docstring for the variants and what each changes. ``"cheap_se8"`` is the one
    network behind the identical rows ``cheapV3_8``, ``cheapV3_shuffle`` and
    ``cheapV3_Reuse_Shuffle``. ``"group"`` (cheapV3G) instantiates a depthwise *and* a grouped conv
    (+ BN each) in every block but uses one; only the used one is built here, so its parameters are
    fewer than the row's by the unused weights (a registered, documented deviation).

    Args:
        config: one of "baseline", "cheap", "cheap_se8", "reuse_shuffle6", "imagenet_f2", "ol",
            "cv3k", "group".
        cifar_strides: None (the reference's rule: stem and block-2 stride 1 for 32/56-pixel inputs
            where the file has that mode; "ol"/"cv3k" never), True or False.
        dropout_rate: dropout before the classifier; None = the reference default (0.2; none for
            "imagenet_f2" and "ol").
        include_top: whether to include the head and the "predictions" Dense.
        weights: None or a ``.weights.h5`` / ``.keras`` file (no trained weights were published).
        input_tensor: optional ``keras.Input``.
        input_shape: (H, W, 3); default (32, 32, 3) (CIFAR strides) unless ``cifar_strides=False``
            or the config has no CIFAR mode ("ol", "cv3k"): then (224, 224, 3).
        pooling: None, "avg" or "max" when ``include_top=False``.
        classes: number of classes (100 for CIFAR-100, 1000 for ImageNet).
        classifier_activation: activation of "predictions" (None for logits).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    _utils.check_choice(config, "config", tuple(V3_VARIANTS))
    spec = V3_VARIANTS[config]
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    rate = spec.dropout if dropout_rate is None else dropout_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(
            f"Argument `dropout_rate` must be in [0, 1) or None. Received: dropout_rate={dropout_rate!r}."
        )
    name = name or f"cheap_mobilenetv3_{config}"
    default_size = 32 if (cifar_strides is not False and spec.cifar_mode) else 224
    inputs, x = _common.model_inputs(input_tensor, input_shape, default_size=default_size,
                                     min_size=1, model_name=name)
    cifar = _resolve_cifar(cifar_strides, x, "auto" if spec.cifar_mode else False)
    s = 1 if cifar else 2
    x = _v3_stem(x, spec, s)
    exps, outs = V3_WIDTHS[spec.widths]
    for i in range(15):
        c_in = int(x.shape[-1])
        copies = exps[i] // c_in if exps[i] % c_in == 0 else None
        x = cb.v3_bottleneck(
            x, kernel_size=V3_KERNELS[i], exp=exps[i], out=outs[i],
            strides=_stride(V3_STRIDES[i], cifar), se=bool(V3_SE[i]), activation=V3_ACT[i],
            prefix=f"block{i + 1}_", expansion=spec.expansion, se_kind=spec.se,
            shuffle_groups=6,
            spatial_groups=exps[i] // 2 if spec.grouped_from and i + 1 >= spec.grouped_from
            else None,
            out_shuffle=copies if spec.out_shuffle and exps[i] != c_in else None,
        )
    last = 6 * outs[-1]
    if spec.last == "std":
        x = keras.layers.Conv2D(last, 1, use_bias=False, kernel_initializer=cb.CONV_INITIALIZER,
                                name="last_conv")(x)
        x = cb.bn("last_bn")(x)
    else:
        x = cb.tile(x, 6, "last_tile")
    x = cb.act(x, "hard_silu", "last_act")

    def top(h):
        h = keras.layers.GlobalAveragePooling2D(keepdims=spec.last == "std", name="avg_pool")(h)
        if spec.last == "std":
            h = keras.layers.Conv2D(1280, 1, use_bias=False, kernel_initializer=cb.CONV_INITIALIZER,
                                    name="head_conv")(h)
            h = cb.act(h, "hard_silu", "head_act")
            h = keras.layers.Flatten(name="flatten")(h)
        else:
            h = cb.tile(h, 2, "head_tile")
            h = cb.act(h, "hard_silu", "head_act")
        if rate:
            h = keras.layers.Dropout(rate, name="dropout")(h)
        h = keras.layers.Dense(classes, kernel_initializer=cb.DENSE_INITIALIZER,
                               name=_common.CLASSIFIER_NAME)(h)
        return _common.classifier_activation_layer(h, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


def CheapMobileNetV2(config="cheap", *, cifar_strides=None, include_top=True, weights=None,
                     input_tensor=None, input_shape=None, pooling=None, classes=100,
                     classifier_activation="softmax", name=None):
    """The repository's MobileNetV2 (kuangliu "pytorch-cifar" flavour) or cheapV2.

    Baseline quirks kept: the t = 1 block still has its 1x1 expansion conv (32 -> 32), and stride-1
    blocks that change width get a 1x1 + BN projection shortcut (32->16, 16->24, 64->96, 160->320);
    stride-2 blocks have no shortcut; head 1x1 320->1280 + BN + ReLU -> GAP -> Linear; no dropout.
    cheapV2 (``config="cheap"``): R1-V2 (``tile_6`` without BN or activation; none for t = 1), the
    projections become parameter-free channel matches (first 16 of 32; ``x ‖ x[:8]``;
    ``x ‖ x[32:64]``; ``x ‖ x``), and the head L2 ``tile_4 -> GAP -> Linear`` (no BN, no ReLU).

    Args:
        config: "baseline" or "cheap".
        cifar_strides: None or True = the repository's hard-coded CIFAR strides (stem and the
            24-channel stage stride 1, so 224-pixel inputs keep 28x28 maps); False = the ImageNet
            strides of the official MobileNetV2 (stem and 24-channel stage stride 2).
        include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
            name: as in :func:`CheapMobileNetV3`.

    Returns:
        A functional ``keras.Model``.
    """
    _utils.check_choice(config, "config", ("baseline", "cheap"))
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    name = name or f"cheap_mobilenetv2_{config}"
    cifar = True if cifar_strides is None else cifar_strides
    inputs, x = _common.model_inputs(input_tensor, input_shape, default_size=32 if cifar else 224,
                                     min_size=1, model_name=name)
    cifar = _resolve_cifar(cifar_strides, x, True)
    cheap = config == "cheap"
    x = cb.conv(x, 32, 3, "stem_conv", strides=1 if cifar else 2)
    x = cb.bn("stem_bn")(x)
    x = keras.layers.ReLU(name="stem_act")(x)
    index = 1
    for t, c, n, s in V2_BLOCKS:
        for j in range(n):
            c_in = int(x.shape[-1])
            x = cb.v2_block(x, expansion_ratio=t, out=c, strides=_stride(s, cifar) if j == 0 else 1,
                            prefix=f"block{index}_", cheap=cheap,
                            match_half=V2_MATCH_HALF.get((c_in, c), 0))
            index += 1
    if cheap:
        x = cb.tile(x, 4, "last_tile")
    else:
        x = keras.layers.Conv2D(1280, 1, use_bias=False, kernel_initializer=cb.CONV_INITIALIZER,
                                name="last_conv")(x)
        x = cb.bn("last_bn")(x)
        x = keras.layers.ReLU(name="last_act")(x)

    def top(h):
        h = keras.layers.GlobalAveragePooling2D(name="avg_pool")(h)
        h = keras.layers.Dense(classes, name=_common.CLASSIFIER_NAME)(h)
        return _common.classifier_activation_layer(h, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


# --------------------------------------------------------------------------------------------------
# Registry.

_TABLE = "cheap operations"
_SAME_NETWORK = ("cheapV3_8", "cheapV3_shuffle", "cheapV3_Reuse_Shuffle")


def _register():
    common = dict(family="cheap_mobilenet", source=SOURCE, test_input_shape=(32, 32, 3))
    cifar = dict(input_shape=(32, 32, 3), classes=100, dataset="cifar100", **common)
    imnet = dict(input_shape=(224, 224, 3), classes=1000, dataset="imagenet", **common)
    v3 = [
        ("baseline", "cheap_baseline_mobilenetv3", "MobileNetV3",
         "the repository's MobileNetV3-Large baseline"),
        ("cheap", "cheap_mobilenetv3", "cheapV3", "cheapV3 (Reuse, SE tile_4 without gate, L1)"),
        ("cheap_se8", "cheap_mobilenetv3_se8", "cheapV3_8",
         "cheapV3_8 = cheapV3_shuffle = cheapV3_Reuse_Shuffle (one network: stem F1, Reuse, SE "
         "r8 + tile_8, L1)"),
        ("reuse_shuffle6", "cheap_mobilenetv3_reuse_shuffle6", "cheapV3_Reuse_Shuffle6",
         "cheapV3_Reuse_Shuffle6 (shuffle 6 + tile 6, WIDE6 widths)"),
        ("imagenet_f2", "cheap_mobilenetv3_imagenet_f2", "cheapV3_Reuse_Shuffle6_ImageNet@663d360",
         "the ImageNet file @663d360 (Reuse+Shuffle6, stem F2, no dropout)"),
        ("group", "cheap_mobilenetv3_group", "cheapV3G(group conv/model.py)",
         "cheapV3G (Reuse+Shuffle6 with grouped convs in blocks 8-15)"),
    ]
    for config, base, key, desc in v3:
        for suffix, kw, rows_variant, cifar_flag in (("cifar", cifar, "100cls_32px", True),
                                                     ("imagenet", imnet, "1000cls_224px", False)):
            deviations = None
            if config == "group":
                deviations = {"params": (-_group_unused_params(), _GROUP_DEVIATION)}
            scale = "CIFAR (32 px, CIFAR strides)" if cifar_flag else "ImageNet (224 px)"
            keys = [(key, rows_variant, _TABLE)]
            if config == "cheap_se8":  # one network under three names in the reference
                keys += [(other, rows_variant, _TABLE) for other in _SAME_NETWORK[1:]]
            _registry.register_model(
                f"{base}_{suffix}", CheapMobileNetV3, variant="orig",
                description=f"{desc}, {scale}.", reference=keys,
                deviations=deviations, config=config, cifar_strides=cifar_flag, **kw)
    for config, base, key, desc in (
            ("ol", "cheap_mobilenetv3_ol", "V3_Reuse6_Shuffle6_OL(ImageNet@b3f00e0)",
             "V3_Reuse6_Shuffle6_OL (ImageNet file @b3f00e0: standard stem and last stage)"),
            ("cv3k", "cheap_mobilenetv3_cv3k", "CV3K(ImageNet)",
             "CV3K (tile + grouped 1x1 residual expansion, output shuffle, SE tile_4)")):
        _registry.register_model(
            f"{base}_imagenet", CheapMobileNetV3, variant="orig",
            description=f"{desc}; no CIFAR-stride mode, so its 32-px row uses ImageNet strides.",
            reference=(key, None, _TABLE), cifar_strides=False, config=config, **imnet)
    _registry.register_model(
        "cheap_baseline_mobilenetv2_cifar", CheapMobileNetV2, variant="orig",
        description="The repository's MobileNetV2 (kuangliu flavour) with its hard-coded CIFAR "
                    "strides (rows at 32 and 224 px).",
        reference=("MobileNetV2(repo CIFAR strides)", None, _TABLE), cifar_strides=True, **cifar,
        config="baseline")
    _registry.register_model(
        "cheap_baseline_mobilenetv2_imagenet", CheapMobileNetV2, variant="orig",
        description="The same MobileNetV2 blocks with ImageNet strides (224 px).",
        reference=("MobileNetV2(same blocks, ImageNet strides)", None, _TABLE),
        cifar_strides=False, **imnet, config="baseline")
    _registry.register_model(
        "cheap_mobilenetv2_cifar", CheapMobileNetV2, variant="orig",
        description="cheapV2 (tile_6 expansion, parameter-free shortcuts, tile_4 head) with its "
                    "hard-coded CIFAR strides (rows at 32 and 224 px).",
        reference=("cheapV2(hard-coded CIFAR strides)", None, _TABLE), cifar_strides=True,
        **cifar, config="cheap")


_GROUP_DEVIATION = ("cheapV3G instantiates a depthwise and a grouped k x k conv (+ BN each) in every "
                    "block but uses one; the unused one is not built here")


def _group_unused_params():
    """Weights of cheapV3G's unused k x k convs + BNs (the reference counts them; they do no work).

    Every block with an expansion (blocks 2-15; block 1 has ``exp == in`` and only its depthwise
    conv) holds a depthwise ``k x k`` conv + BN and a grouped (2 channels per group) ``k x k`` conv
    + BN, and runs one of them.
    """
    exps, outs = V3_WIDTHS["wide6"]
    spec = V3_VARIANTS["group"]
    total = 0
    for i, (k, e) in enumerate(zip(V3_KERNELS, exps)):
        if e == (outs[i - 1] if i else spec.stem_width):
            continue  # no expansion, only the depthwise conv
        grouped = i + 1 >= spec.grouped_from
        unused_conv = e * k * k if grouped else e * 2 * k * k
        total += unused_conv + 2 * e
    return total


_register()
