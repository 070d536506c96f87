"""ShuffleNetV2 1.0x of the padding-free paper: orig, PF, ablations, attention downsampling.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (second CIFAR-100
table, ablation, EfficientFormerV2-downsampling comparison, VegFru-292). Reference code:
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (folders
``CIFAR-100_second_ hyperparameter``, ``VegFru-292`` and
``CIFAR-100_comparing_with_self_attention_down_sampling``; files ``shufflenet_v2*.py`` and
``shufflenet*.py``), torchvision's ShuffleNetV2 (Ma et al., ECCV 2018) with CIFAR strides.
"""

import math

import keras

from keras_padfree.applications import _common
from keras_padfree.applications._registry import register_model
from keras_padfree.applications._variants import DESCRIPTIONS, DOWNSAMPLINGS, STEMS, VARIANTS  # noqa: F401
from keras_padfree.blocks import shufflenet_blocks as blocks
from keras_padfree.layers.attention_downsampling import AttentionDownsampling
from keras_padfree.layers.hybrid_stem import HybridStem

__all__ = ["ShuffleNetV2", "ShuffleNetV2PF"]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"

# ShuffleNetV2 1.0x: (units, output channels) per stage; the first unit of each stage has stride 2.
STAGES = ((4, 116), (8, 232), (4, 464))
STEM_CHANNELS = 24
LAST_CHANNELS = 1024

# Stride of conv1 and of the max-pool after it (the hybrid stem's first conv and its branches).
CONFIGS = {
    "cifar": {"conv1_strides": 1, "pool_strides": 1, "default_size": 32},
    "imagenet": {"conv1_strides": 2, "pool_strides": 2, "default_size": 224},
}
# EfficientFormerV2-downsampling variant: each stage's first unit becomes an embedding;
# stage2 and stage3 conv-only, stage4 with attention.
EFFV2_ATTENTION = (False, False, True)


def _resolve_config(config, input_tensor, input_shape):
    if config in CONFIGS:
        return config
    if config != "auto":
        raise ValueError(
            'Argument `config` must be one of "auto", "cifar", "imagenet". '
            f"Received: config={config!r}."
        )
    shape = tuple(input_tensor.shape[1:]) if input_tensor is not None else input_shape
    if shape is None or shape[0] is None:
        return "imagenet"
    return "cifar" if shape[0] <= 64 else "imagenet"


def _min_size(cfg, *, padding_free, effv2):
    """The smallest input side whose every feature map is >= 1 (>= 2 into an attention block)."""
    steps = [(3, cfg["conv1_strides"], 1, 1), (3, cfg["pool_strides"], 1, 1)]
    for attention in EFFV2_ATTENTION:
        if effv2:
            steps.append((3, 2, 1, 2 if attention else 1))
        else:
            steps.append((3, 2, 0 if padding_free else 1, 1))
    for size in range(1, 4096):
        h, ok = size, True
        for k, s, p, need in steps:
            if h < need:
                ok = False
                break
            h = (h + 2 * p - k) // s + 1
            if h < 1:
                ok = False
                break
        if ok:
            return size
    raise ValueError("No input size survives the downsampling chain.")  # unreachable


def _shufflenetv2(*, stem, downsampling, include_top, weights, input_tensor, input_shape, pooling,
                  classes, classifier_activation, name, config):
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    if stem not in STEMS:
        raise ValueError(f"Argument `stem` must be one of {list(STEMS)}. Received: stem={stem!r}.")
    if downsampling not in DOWNSAMPLINGS:
        raise ValueError(f"Argument `downsampling` must be one of {list(DOWNSAMPLINGS)}. "
                         f"Received: downsampling={downsampling!r}.")
    config = _resolve_config(config, input_tensor, input_shape)
    if downsampling == "attention" and config != "cifar":
        raise ValueError(
            'Argument `downsampling="attention"` (the EfficientFormerV2 comparison) exists only in '
            'the CIFAR configuration, as in the paper. Pass config="cifar" (any input of at least '
            f"the minimum size works). Received: config={config!r}."
        )
    cfg = CONFIGS[config]
    padding_free = downsampling == "padding_free"
    effv2 = downsampling == "attention"
    if name is None:
        variant = {v: k for k, v in VARIANTS.items()}.get((stem, downsampling))
        name = "shufflenetv2" + ("" if variant == "orig" else f"_{variant}" if variant
                                 else f"_{stem}_stem_{downsampling}_downsampling")
    inputs, x = _common.model_inputs(
        input_tensor, input_shape, default_size=cfg["default_size"],
        min_size=_min_size(cfg, padding_free=padding_free, effv2=effv2), model_name=name,
    )

    if stem == "hybrid":
        # Replaces conv1 *and* the max-pool: at 224 both branches have stride 2 (224 -> 112 -> 56).
        x = HybridStem(STEM_CHANNELS, strides=cfg["conv1_strides"],
                       branch_strides=cfg["pool_strides"], activation="relu", bn_epsilon=1e-5,
                       bn_momentum=0.9, kernel_initializer=blocks.conv_initializer(),
                       depthwise_initializer=blocks.depthwise_initializer(), name="stem")(x)
    else:
        x = blocks.conv_bn_relu(x, STEM_CHANNELS, 3, cfg["conv1_strides"], name="conv1")
        if cfg["pool_strides"] == 1:
            x = keras.layers.MaxPooling2D(3, 1, padding="same", name="maxpool")(x)
        else:
            # PyTorch pads with -inf; the input is a ReLU output (>= 0), so zero padding is exact.
            x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)
            x = keras.layers.MaxPooling2D(3, 2, padding="valid", name="maxpool")(x)

    for s, ((units, channels), attention) in enumerate(zip(STAGES, EFFV2_ATTENTION), start=2):
        for u in range(1, units + 1):
            prefix = f"stage{s}_unit{u}"
            if u == 1 and effv2:
                x = AttentionDownsampling(
                    channels, use_attention=attention,
                    kernel_initializer=blocks.conv_initializer(),
                    depthwise_initializer=blocks.depthwise_initializer(),
                    name=f"{prefix}_embedding",
                )(x)
            else:
                x = blocks.shuffle_unit(x, channels, strides=2 if u == 1 else 1,
                                        padding_free=padding_free, name=prefix)
    x = blocks.conv_bn_relu(x, LAST_CHANNELS, 1, name="conv5")

    def top(x):
        x = blocks.SpatialMean(name="avg_pool")(x)
        limit = 1.0 / math.sqrt(LAST_CHANNELS)
        x = keras.layers.Dense(
            classes, kernel_initializer=keras.initializers.VarianceScaling(
                1.0 / 3.0, mode="fan_in", distribution="uniform"),
            bias_initializer=keras.initializers.RandomUniform(-limit, limit), name="predictions",
        )(x)
        return _common.classifier_activation_layer(x, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


_DOC = """Builds ShuffleNetV2 1.0x{title}.

Reference configuration: {reference}

Architecture (reference behaviour that changes what was measured is reproduced):

* Stem: {stem}
* Stages 2, 3, 4 with 4, 8, 4 units and 116, 232, 464 channels (torchvision's
  ``InvertedResidual``). A stride-1 unit splits the channels in halves, passes the first half
  through and sends the second through [1x1, BN, ReLU, dw3x3, BN, 1x1, BN, ReLU]; a stride-2 unit
  (the first of each stage) has branch1 = [dw3x3/2, BN, 1x1, BN, ReLU] and branch2 = [1x1, BN,
  ReLU, dw3x3/2, BN, 1x1, BN, ReLU]. Both concatenate [first, branch2] and shuffle the channels
  with 2 groups (:class:`ChannelSplit`, :class:`ChannelShuffle`).
* {downsampling}
* Head: 1x1 conv 464 -> 1024, BN, ReLU; spatial mean; Dense "predictions". No dropout. The
  reference pools with ``x.mean([2, 3])``, a functional call (:class:`SpatialMean`: no FLOPs under
  thop 0.0.31).
* Configurations: ``config="cifar"`` (conv1 stride 1 and the max-pool stride 1, both kept:
  network stride 8) and ``"imagenet"`` (conv1 and max-pool stride 2; VegFru-292 at 224x224).
  ``"auto"`` picks "cifar" for inputs up to 64 pixels high, else "imagenet".
* BatchNorm everywhere eps 1e-5, Keras momentum 0.9 (PyTorch's defaults; the hybrid stem too).
  Initialisation: PyTorch's defaults, as the reference sets none (convs and classifier
  ``U(+-1/sqrt(fan_in))``, classifier bias likewise; the attention embeddings' conv biases start at
  0).

Args:
    include_top: whether to include the pool and the classifier.
    weights: None (random init) or the path of a ``.weights.h5`` / ``.keras`` file.
    input_tensor: optional Keras tensor to build the model on.
    input_shape: (height, width, 3); default (32, 32, 3) for "cifar", (224, 224, 3) for
        "imagenet". Smallest accepted size: {min_text}.
    pooling: "avg", "max" or None, used when ``include_top=False``.
    classes: number of classes (100 for CIFAR-100, 292 for VegFru-292).
    classifier_activation: activation of the "predictions" output (None for logits).
    name: model name.{variant_args}
    config: "auto", "cifar" or "imagenet".

Returns:
    A functional `keras.Model`.
"""


def ShuffleNetV2(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", name=None, stem="standard",
                 downsampling="standard", config="auto"):
    return _shufflenetv2(
        stem=stem, downsampling=downsampling, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, config=config,
    )


def ShuffleNetV2PF(include_top=True, weights=None, input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax", name=None,
                   config="auto"):
    return _shufflenetv2(
        stem="hybrid", downsampling="padding_free", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, config=config,
    )


_HYBRID_STEM = (
    ":class:`HybridStem` in place of conv1 **and** the max-pool: 3x3 conv 3 -> 24 (stride 1 "
    "CIFAR, 2 at 224; padding 1) -> BN -> ReLU; a depthwise 3x3 -> BN -> ReLU branch and a 3x3 "
    "max-pool branch (padding 1), both with stride 1 on CIFAR and **stride 2 at 224** (224 -> 112 "
    "-> 56, matching conv1 + max-pool), concatenated [depthwise first], 1x1 48 -> 24 -> BN -> ReLU "
    "(+1,464 parameters). The reference still constructs the unused max-pool; it is not "
    "reproduced."
)
_PF = (
    "both depthwise convs (branch1 and branch2) of each stage's first unit use padding 0 and "
    "add the 3x3/stride-2/unpadded max-pool of the conv's input **before** the BN, "
    "``BN(dw(x) + maxpool(x))`` (:class:`PaddingFreeDWConv`, ``shortcut_position=\"before_bn\"``;"
    " no activation follows, as in ShuffleNetV2): maps 32 -> 15 -> 7 -> 3 on CIFAR, 56 -> 27 -> "
    "13 -> 6 at 224."
)

ShuffleNetV2.__doc__ = _DOC.format(
    title=" (original, or an ablation / attention-downsampling variant)",
    reference="torchvision-style ``shufflenet_v2_x1_0`` of ``shufflenet_v2.py`` (CIFAR) and "
              "``shufflenet.py`` (VegFru) with the defaults ``stem=\"standard\", "
              "downsampling=\"standard\"``. The paper's other rows are ``stem``/``downsampling`` "
              "combinations: \"pf\" = (\"hybrid\", \"padding_free\"), same as "
              ":func:`ShuffleNetV2PF`; the ablations the paper reports without shipping files, "
              "\"stem_only\" = (\"hybrid\", \"standard\") and \"downsampling_only\" = "
              "(\"standard\", \"padding_free\"); and \"effv2_downsampling\" = (\"standard\", "
              "\"attention\") from ``CIFAR-100_comparing_with_self_attention_down_sampling``.",
    stem="``stem=\"standard\"``: conv1 = 3x3 conv 3 -> 24 (stride 1 CIFAR, 2 at 224; padding 1), "
         "BN, ReLU, then a 3x3 max-pool with padding 1 (stride 1 CIFAR, 2 at 224). "
         "``stem=\"hybrid\"``: " + _HYBRID_STEM,
    downsampling="``downsampling=\"standard\"``: the stride-2 depthwise convs are zero-padded "
                 "symmetrically (padding 1; explicit ``ZeroPadding2D`` + valid conv, not Keras' "
                 "asymmetric stride-2 \"same\"). ``\"padding_free\"``: " + _PF + " "
                 "``\"attention\"`` (CIFAR only): each stage's first unit is replaced wholesale by "
                 "an EfficientFormerV2 embedding (:class:`AttentionDownsampling`: dense 3x3/2 conv "
                 "with bias + BN, no activation, no channel shuffle after it); stages 2 and 3 "
                 "conv-only, stage 4 with 4-D attention whose resolution follows the input.",
    min_text="the smallest input whose every feature map keeps at least one pixel (two into the "
             "attention block): 1 pixel for the padded variants, 15 (CIFAR) / 57 (224) with "
             "``downsampling=\"padding_free\"``, 5 with ``\"attention\"``",
    variant_args="\n    stem: \"standard\" (conv1 + max-pool) or \"hybrid\" (the paper's hybrid "
                 "stem).\n    downsampling: \"standard\", \"padding_free\" or \"attention\" (see "
                 "above).",
)
ShuffleNetV2PF.__doc__ = _DOC.format(
    title=" with padding-free downsampling and the hybrid stem (the paper's \"ours\")",
    reference="``shufflenet_v2_x1_0`` of ``shufflenet_v2_ours.py`` (CIFAR) and "
              "``shufflenet_ours.py`` (VegFru-292).",
    stem=_HYBRID_STEM,
    downsampling="Padding-free downsampling: " + _PF,
    min_text="15 pixels for \"cifar\", 57 for \"imagenet\"",
    variant_args="",
)


_REGISTRATIONS = (
    # registry name, builder, variant, config, reference model key
    ("shufflenetv2", ShuffleNetV2, "orig", "imagenet", "shufflenetv2"),
    ("shufflenetv2_pf", ShuffleNetV2PF, "pf", "imagenet", "shufflenetv2"),
    ("shufflenetv2_cifar", ShuffleNetV2, "orig", "cifar", "cifar_shufflenetv2"),
    ("shufflenetv2_pf_cifar", ShuffleNetV2PF, "pf", "cifar", "cifar_shufflenetv2"),
    ("shufflenetv2_stem_only_cifar", ShuffleNetV2, "stem_only", "cifar", "cifar_shufflenetv2"),
    ("shufflenetv2_downsampling_only_cifar", ShuffleNetV2, "downsampling_only", "cifar",
     "cifar_shufflenetv2"),
    ("shufflenetv2_effv2_ds_cifar", ShuffleNetV2, "effv2_downsampling", "cifar",
     "cifar_shufflenetv2"),
)


def _register():
    for reg_name, builder, variant, config, ref in _REGISTRATIONS:
        cifar = config == "cifar"
        kwargs = {"config": config}
        if builder is ShuffleNetV2:
            kwargs["stem"], kwargs["downsampling"] = VARIANTS[variant]
        register_model(
            reg_name, builder, family="shufflenetv2", variant=variant,
            input_shape=(32, 32, 3) if cifar else (224, 224, 3), classes=100 if cifar else 292,
            dataset="CIFAR-100" if cifar else "VegFru-292",
            description=f"ShuffleNetV2 1.0x, {DESCRIPTIONS[variant]}, "
                        + ("CIFAR-100 32x32." if cifar else "VegFru-292 224x224."),
            reference=(ref, variant), source=SOURCE,
            test_input_shape=(32, 32, 3) if cifar else (96, 96, 3), **kwargs,
        )


_register()
