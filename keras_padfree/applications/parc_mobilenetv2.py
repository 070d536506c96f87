"""ParC-MobileNetV2 of the padding-free paper: orig, PF, ablations, attention downsampling.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (second CIFAR-100
table, ablation, EfficientFormerV2-downsampling comparison, VegFru-292). Reference code:
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (folders
``CIFAR-100_second_ hyperparameter``, ``VegFru-292`` and
``CIFAR-100_comparing_with_self_attention_down_sampling``, files ``parc_mobilenet_v2*.py`` and
``parc_ours.py``), a MobileNetV2 whose late stages use ParC-Net's position-aware circular
convolutions (Zhang et al., ECCV 2022).
"""

import keras

from keras_padfree.applications import _common
from keras_padfree.applications._registry import register_model
from keras_padfree.applications._variants import DESCRIPTIONS, DOWNSAMPLINGS, STEMS, VARIANTS  # noqa: F401
from keras_padfree.blocks import parc_blocks as blocks
from keras_padfree.blocks.shufflenet_blocks import SpatialMean
from keras_padfree.layers.attention_downsampling import AttentionDownsampling
from keras_padfree.layers.hybrid_stem import HybridStem

__all__ = ["ParCMobileNetV2", "ParCMobileNetV2PF"]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"

# The reference's setting rows, one per stage. t: expansion, c: output channels, n: blocks,
# s: stride of the stage's first block at 224 (CIFAR changes the stem and the c=24 stage to 1),
# parc: index (within the stage) of the first ParC block, None when the stage has none. Blocks
# with index >= parc are ParC blocks; the one at index == parc carries the positional embedding.
# t, c, n, s, parc
STAGES = (
    (1, 16, 1, 1, None),
    (6, 24, 2, 2, None),
    (6, 32, 3, 2, None),
    (6, 64, 4, 2, 2),
    (6, 96, 3, 1, 2),
    (6, 160, 3, 2, 2),
    (6, 320, 1, 1, None),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
DROPOUT = 0.2

CONFIGS = {
    "cifar": {"stem_strides": 1, "stage_strides": (1, 1, 2, 2, 1, 2, 1), "default_size": 32},
    "imagenet": {"stem_strides": 2, "stage_strides": (1, 2, 2, 2, 1, 2, 1), "default_size": 224},
}
# EfficientFormerV2-downsampling variant: the stride-2 blocks (CIFAR: blocks 4, 7, 14), in order,
# become these embeddings (False: conv-only, True: with attention).
EFFV2_ATTENTION = (False, True, True)


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


def _block_plan(cfg):
    """Yields (block index, t, c, stride, kind, use_pe) for the 17 blocks."""
    index = 0
    for (t, c, n, _, parc), stage_stride in zip(STAGES, cfg["stage_strides"]):
        for i in range(n):
            index += 1
            is_parc = parc is not None and i >= parc
            yield index, t, c, stage_stride if i == 0 else 1, "parc" if is_parc else "ir", (
                is_parc and i == parc)


def _min_size(cfg, *, padding_free, effv2):
    """The smallest input side whose every feature map is >= 1 (>= 2 into an attention block)."""
    steps = [(3, cfg["stem_strides"], 1, 1)]
    strided = 0
    for _, _, _, stride, _, _ in _block_plan(cfg):
        if stride == 2:
            if effv2:
                steps.append((3, 2, 1, 2 if EFFV2_ATTENTION[strided] else 1))
            else:
                steps.append((3, 2, 0 if padding_free else 1, 1))
            strided += 1
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


def _parc_mobilenetv2(*, stem, downsampling, include_top, weights, input_tensor, input_shape,
                      pooling, classes, classifier_activation, name, config, dropout):
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    if stem not in STEMS:
        raise ValueError(f"Argument `stem` must be one of {list(STEMS)}. Received: stem={stem!r}.")
    if downsampling not in DOWNSAMPLINGS:
        raise ValueError(f"Argument `downsampling` must be one of {list(DOWNSAMPLINGS)}. "
                         f"Received: downsampling={downsampling!r}.")
    if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
            or not 0 <= dropout < 1):
        raise ValueError(
            f"Argument `dropout` must be a number in [0, 1). Received: dropout={dropout!r}."
        )
    config = _resolve_config(config, input_tensor, input_shape)
    if downsampling == "attention" and config != "cifar":
        raise ValueError(
            'Argument `downsampling="attention"` (the EfficientFormerV2 comparison) exists only in '
            'the CIFAR configuration, as in the paper. Pass config="cifar" (any input of at least '
            f"the minimum size works). Received: config={config!r}."
        )
    cfg = CONFIGS[config]
    hybrid_stem = stem == "hybrid"
    padding_free = downsampling == "padding_free"
    effv2 = downsampling == "attention"
    if name is None:
        variant = {v: k for k, v in VARIANTS.items()}.get((stem, downsampling))
        name = "parc_mobilenetv2" + ("" if variant == "orig" else f"_{variant}" if variant
                                     else f"_{stem}_stem_{downsampling}_downsampling")
    min_size = _min_size(cfg, padding_free=padding_free, effv2=effv2)
    inputs, x = _common.model_inputs(input_tensor, input_shape, default_size=cfg["default_size"],
                                     min_size=min_size, model_name=name)
    if x.shape[1] is None or x.shape[2] is None:
        raise ValueError(
            f"{name} sizes its ParC global kernels from the feature maps, so the input height "
            "and width must be known. Pass a full `input_shape`, e.g. (224, 224, 3). "
            f"Received: input_shape={tuple(x.shape[1:])}."
        )

    if hybrid_stem:
        x = HybridStem(STEM_CHANNELS, strides=cfg["stem_strides"], branch_strides=1,
                       activation="relu6", bn_epsilon=1e-5, bn_momentum=0.9,
                       kernel_initializer=blocks.conv_initializer(),
                       depthwise_initializer=blocks.depthwise_initializer(), name="stem")(x)
    else:
        x = blocks.conv_bn_relu6(x, STEM_CHANNELS, 3, cfg["stem_strides"], name="stem")

    strided = 0
    for index, t, c, stride, kind, use_pe in _block_plan(cfg):
        prefix = f"block{index}"
        if effv2 and stride == 2:
            x = AttentionDownsampling(
                c, use_attention=EFFV2_ATTENTION[strided],
                kernel_initializer=blocks.conv_initializer(),
                depthwise_initializer=blocks.depthwise_initializer(), name=f"{prefix}_embedding",
            )(x)
        elif kind == "parc":
            x = blocks.parc_block(x, c, expansion=t, use_pe=use_pe, name=prefix)
        else:
            x = blocks.inverted_residual(x, c, strides=stride, expansion=t,
                                         padding_free=padding_free, name=prefix)
        strided += stride == 2
    x = blocks.conv_bn_relu6(x, LAST_CHANNELS, 1, name="head")

    def top(x):
        x = SpatialMean(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(classes, kernel_initializer=keras.initializers.RandomNormal(
            stddev=0.01), bias_initializer="zeros", name="predictions")(x)
        return _common.classifier_activation_layer(x, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


_DOC = """Builds ParC-MobileNetV2{title}.

Reference configuration: {reference}

Architecture (reference behaviour that changes what was measured is reproduced):

* Stem: {stem}
* 17 blocks from the setting rows ``STAGES`` (t, c, n, s, parc): MobileNetV2 inverted residuals
  (1x1 expand [absent for t=1], 3x3 depthwise, 1x1 linear projection; identity shortcut iff stride
  1 and width kept) and four ParC blocks (blocks 9, 10, 13, 16): 1x1 expand, BN, ReLU6, the first
  half of the channels through a vertical ``K x 1`` :class:`ParCConv`, the second half through a
  horizontal ``1 x K`` one, concatenate, BN, ReLU6, 1x1 projection, BN, identity shortcut. The
  first ParC block of each stage (9, 13, 16) has positional embeddings.
* The ParC global kernel ``K`` is the feature-map size where the block sits, taken from the input
  shape when the model is built. This reproduces the reference's constants at the paper's sizes
  (CIFAR 32x32: K = 8/8/4 original, 7/7/3 with padding-free downsampling; 224x224: 14/14/7 and
  13/13/6) and keeps the conv global at any other input size, where the reference crashes. The
  input height and width must therefore be static.
* {downsampling}
* Head: 1x1 conv 320 -> 1280, BN, ReLU6; global average pool; Dropout(0.2); Dense "predictions".
  The pool is a functional call in the reference (no pooling module in its module tree; the
  paper's totals have no pooling term), reproduced by :class:`SpatialMean` (no FLOPs under
  thop 0.0.31).
* Configurations: ``config="cifar"`` (stem stride 1 and the (t6, c24) stage's first block stride 1:
  network stride 8) and ``"imagenet"`` (stride 32; VegFru-292 at 224x224). ``"auto"`` picks "cifar"
  for inputs up to 64 pixels high, else "imagenet".
* BatchNorm everywhere eps 1e-5, Keras momentum 0.9 (PyTorch's defaults; the hybrid stem too).
  Initialisation as the reference: convs kaiming-normal (PyTorch fan-out), conv biases 0,
  positional embeddings truncated normal (std 0.02), classifier N(0, 0.01) with zero bias.
* Counting (thop 0.0.31, the paper's counter): ``profiling.count_params(model, "thop_0.0.31")``
  leaves out the positional embeddings{pe_extra}, as the paper did; ``model.trainable_weights`` has
  them.

Args:
    include_top: whether to include the pool, dropout and classifier.
    weights: None (random init) or the path of a ``.weights.h5`` / ``.keras`` file.
    input_tensor: optional Keras tensor to build the model on.
    input_shape: (height, width, 3) with static height and width; default (32, 32, 3) for
        "cifar", (224, 224, 3) for "imagenet". Smallest accepted size: {min_text}.
    pooling: "avg", "max" or None, used when ``include_top=False``.
    classes: number of classes (100 for CIFAR-100, 292 for VegFru-292).
    classifier_activation: activation of the "predictions" output (None for logits).
    name: model name.{variant_arg}
    config: "auto", "cifar" or "imagenet".
    dropout: dropout rate before the classifier (0.2, as the reference).

Returns:
    A functional `keras.Model`.
"""

_ORIG_DOWNSAMPLING = (
    "``downsampling=\"standard\"``: the stride-2 depthwise convs (blocks 4, 7, 14, and block 2 "
    "at 224) are zero-padded symmetrically (padding 1; explicit ``ZeroPadding2D`` + valid conv, "
    "not Keras' asymmetric stride-2 \"same\"). ``\"padding_free\"``: padding 0 plus a "
    "3x3/stride-2/unpadded max-pool of the depthwise conv's input added after BN and ReLU6 "
    "(:class:`PaddingFreeDWConv`, ``shortcut_position=\"after_activation\"``): maps 32 -> 15 -> 7 "
    "-> 3 on CIFAR, 112 -> 55 -> 27 -> 13 -> 6 at 224. ``\"attention\"`` (CIFAR only): the three "
    "stride-2 blocks are replaced wholesale by EfficientFormerV2 "
    "embeddings (:class:`AttentionDownsampling`, dense 3x3/2 conv with bias + BN, no activation; "
    "block 4 conv-only, blocks 7 and 14 with 4-D attention whose resolution follows the input); "
    "the ParC kernels then stay 8/8/4 at 32x32."
)


def ParCMobileNetV2(include_top=True, weights=None, input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax", name=None,
                    stem="standard", downsampling="standard", config="auto", dropout=DROPOUT):
    return _parc_mobilenetv2(
        stem=stem, downsampling=downsampling, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, config=config, dropout=dropout,
    )


def ParCMobileNetV2PF(include_top=True, weights=None, input_tensor=None, input_shape=None,
                      pooling=None, classes=1000, classifier_activation="softmax", name=None,
                      config="auto", dropout=DROPOUT):
    return _parc_mobilenetv2(
        stem="hybrid", downsampling="padding_free", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, config=config, dropout=dropout,
    )


ParCMobileNetV2.__doc__ = _DOC.format(
    title=" (original, or an ablation / attention-downsampling variant)",
    reference="``ParC_MobileNetV2`` of ``parc_mobilenet_v2.py`` (CIFAR and VegFru folders) with "
              "the defaults ``stem=\"standard\", downsampling=\"standard\"``. The paper's other "
              "rows are ``stem``/``downsampling`` combinations: \"pf\" = (\"hybrid\", "
              "\"padding_free\"), same as :func:`ParCMobileNetV2PF`; the ablations the paper "
              "reports without shipping files, \"stem_only\" = (\"hybrid\", \"standard\") and "
              "\"downsampling_only\" = (\"standard\", \"padding_free\"), whose ParC kernels are "
              "the reduced 7/7/3 since they follow the maps (the reference's commented-out orig "
              "stem in the ours file); and \"effv2_downsampling\" = (\"standard\", \"attention\") "
              "from ``CIFAR-100_comparing_with_self_attention_down_sampling``.",
    stem="``stem=\"standard\"``: 3x3 conv 3 -> 32 (stride 1 CIFAR, 2 at 224, padding 1), BN, "
         "ReLU6. ``stem=\"hybrid\"``: the :class:`HybridStem` (ReLU6, BN eps 1e-5 / PyTorch "
         "momentum 0.1; its branches keep stride 1; +2,464 parameters). The reference's orig "
         "file ships an unused ``StemBlock`` class; it is not reproduced.",
    downsampling=_ORIG_DOWNSAMPLING,
    pe_extra=" (and, with ``downsampling=\"attention\"``, the attention bias tables)",
    min_text="the smallest input whose every feature map keeps at least one pixel (two into an "
             "attention block): 1 pixel with ``downsampling=\"standard\"`` (padded chain), 15 "
             "(CIFAR) / 61 (224) with ``\"padding_free\"``, 5 with ``\"attention\"``",
    variant_arg="\n    stem: \"standard\" (3x3 conv) or \"hybrid\" (the paper's hybrid stem)."
                "\n    downsampling: \"standard\", \"padding_free\" or \"attention\" (see above).",
)
ParCMobileNetV2PF.__doc__ = _DOC.format(
    title=" with padding-free downsampling and the hybrid stem (the paper's \"ours\")",
    reference="``parc_mobilenet_v2_ours.py`` (CIFAR) and ``parc_ours.py`` (VegFru-292).",
    stem=":class:`HybridStem` (3x3 conv 3 -> 32 [stride 1 CIFAR, 2 at 224] -> BN -> ReLU6; a "
         "depthwise 3x3 -> BN -> ReLU6 branch and a 3x3/1/1 max-pool branch, concatenated "
         "[depthwise first], 1x1 64 -> 32 -> BN -> ReLU6; BN eps 1e-5 / PyTorch momentum 0.1).",
    downsampling="Every stride-2 depthwise conv (blocks 4, 7, 14; and block 2 at 224) uses padding "
                 "0 and adds the 3x3/stride-2/unpadded max-pool of its input after BN and ReLU6 "
                 "(:class:`PaddingFreeDWConv`, ``shortcut_position=\"after_activation\"``): maps "
                 "32 -> 15 -> 7 -> 3 on CIFAR, 224 -> 112 -> 55 -> 27 -> 13 -> 6. The ParC kernels "
                 "follow (7/7/3 and 13/13/6), as the reference's hand-edited constants.",
    pe_extra="",
    min_text="15 pixels for \"cifar\", 61 for \"imagenet\" (each padding-free stage maps H to "
             "floor((H - 3) / 2) + 1)",
    variant_arg="",
)


_REGISTRATIONS = (
    # registry name, builder, variant, config, reference model key
    ("parc_mobilenetv2", ParCMobileNetV2, "orig", "imagenet", "parc_mobilenetv2"),
    ("parc_mobilenetv2_pf", ParCMobileNetV2PF, "pf", "imagenet", "parc_mobilenetv2"),
    ("parc_mobilenetv2_cifar", ParCMobileNetV2, "orig", "cifar", "cifar_parc_mobilenetv2"),
    ("parc_mobilenetv2_pf_cifar", ParCMobileNetV2PF, "pf", "cifar", "cifar_parc_mobilenetv2"),
    ("parc_mobilenetv2_stem_only_cifar", ParCMobileNetV2, "stem_only", "cifar",
     "cifar_parc_mobilenetv2"),
    ("parc_mobilenetv2_downsampling_only_cifar", ParCMobileNetV2, "downsampling_only", "cifar",
     "cifar_parc_mobilenetv2"),
    ("parc_mobilenetv2_effv2_ds_cifar", ParCMobileNetV2, "effv2_downsampling", "cifar",
     "cifar_parc_mobilenetv2"),
)


def _register():
    for reg_name, builder, variant, config, ref in _REGISTRATIONS:
        cifar = config == "cifar"
        kwargs = {"config": config}
        if builder is ParCMobileNetV2:
            kwargs["stem"], kwargs["downsampling"] = VARIANTS[variant]
        register_model(
            reg_name, builder, family="parc_mobilenetv2", variant=variant,
            input_shape=(32, 32, 3) if cifar else (224, 224, 3), classes=100 if cifar else 292,
            dataset="CIFAR-100" if cifar else "VegFru-292",
            description=f"ParC-MobileNetV2, {DESCRIPTIONS[variant]}, "
                        + ("CIFAR-100 32x32." if cifar else "VegFru-292 224x224."),
            reference=(ref, "effv2_downsampling" if variant == "effv2_downsampling" else variant),
            source=SOURCE, test_input_shape=(32, 32, 3) if cifar else (96, 96, 3), **kwargs,
        )


_register()
