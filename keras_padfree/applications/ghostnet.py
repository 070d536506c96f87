"""GhostNet 1.0x: the paper's second set (CIFAR-100, VegFru-292, ablations, attention downsampling).

Reference: ``ghostnet.py`` / ``ghostnet_ours.py`` of
github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (CIFAR-100 second hyper-parameter
set, VegFru-292 and EfficientFormerV2-downsampling folders), the Huawei/timm GhostNet 1.0x with
``num_classes`` changed. Counts follow thop 0.0.31, the paper's counter.
"""

import keras

from keras_padfree.applications import _common
from keras_padfree.applications._registry import register_model
from keras_padfree.applications._variants import DOWNSAMPLINGS, STEMS, VARIANTS  # noqa: F401
from keras_padfree.blocks import ghostnet_blocks as blocks
from keras_padfree.layers import _utils
from keras_padfree.layers.hybrid_stem import HybridStem

__all__ = ["GhostNet", "GhostNetPF"]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"

CONFIGS = ("cifar", "imagenet")
CIFAR_MAX_SIZE = 127  # inputs up to this side use the CIFAR strides when `config=None`

DEAD_BN1_REASON = (
    "the reference GhostNet-ours still builds the original stem's bn1 (BatchNorm 16: 32 weights) "
    "but never calls it; this port does not create dead weights"
)


def resolve_config(config, shape):
    """``config`` if given; else "cifar" for inputs whose height or width is below 128 pixels.

    An unknown (None) spatial size gets the ImageNet configuration.
    """
    if config is not None:
        return _utils.check_choice(config, "config", CONFIGS)
    sides = [d for d in tuple(shape)[:2] if d is not None]
    if sides and min(sides) <= CIFAR_MAX_SIZE:
        return "cifar"
    return "imagenet"


def _input_shape_of(input_tensor, input_shape, default_size):
    if input_tensor is not None:
        return tuple(input_tensor.shape[1:])
    if input_shape is not None:
        return tuple(input_shape)
    return (default_size, default_size, 3)


def _block_strides(config):
    """Per-block strides: CIFAR turns the stem's and block 1.0's stride 2 into 1."""
    strides = [row[5] for row in blocks.GHOSTNET_BLOCKS]
    if config == "cifar":
        strides[1] = 1
    return strides


def _min_input_size(config, downsampling):
    """The smallest input side this configuration keeps at least one pixel (and the attention 2)."""
    stem_stride = 1 if config == "cifar" else 2
    strides = _block_strides(config)
    for size in range(1, 4096):
        h = _utils.conv_output_size(size, 3, stem_stride, 1)
        first_replaced = True
        ok = True
        for (_, k, _, _, _, _), s in zip(blocks.GHOSTNET_BLOCKS, strides):
            if s == 1:
                continue
            if downsampling == "padding_free":
                h = _utils.conv_output_size(h, 3, 2, 0)
            elif downsampling == "attention":
                if not first_replaced and h < 2:
                    ok = False
                    break
                first_replaced = False
                h = _utils.conv_output_size(h, 3, 2, 1)
            else:
                h = _utils.conv_output_size(h, k, 2, (k - 1) // 2)
            if h < 1:
                ok = False
                break
        if ok:
            return size
    raise ValueError("No input size survives the GhostNet downsampling chain.")


def GhostNet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name=None, *, stem="standard",
             downsampling="standard", config=None, dropout_rate=0.2):
    """GhostNet 1.0x, as the paper's second set (and its variants) built it.

    Builds the reference's ``ghostnet.py`` (GhostNet 1.0x, width 1.0): 3x3 stem conv (16) + BN +
    ReLU, 16 Ghost bottlenecks (:func:`ghostnet_blocks.ghost_bottleneck`: GhostModule with ReLU,
    a depthwise k x k conv + BN without activation in strided blocks, SE with
    ``make_divisible(mid * 0.25, 4)`` channels and a hard-sigmoid gate, GhostModule without
    activation, identity or "dw conv + BN + 1x1 conv + BN" shortcut), 1x1 conv 160 -> 960 + BN +
    ReLU, global average pool (a module), ``conv_head`` 1x1 conv 960 -> 1280 **with bias** + ReLU,
    flatten, Dropout(0.2), Linear 1280 -> ``classes`` ("predictions"). BN is PyTorch's default
    everywhere (eps 1e-5, momentum 0.1 = Keras 0.9); initialisation is PyTorch's default.

    Configurations (``config``):

    * ``"imagenet"`` (224x224, the VegFru-292 rows): stem stride 2; bottlenecks 1.0, 3.0, 5.0,
      7.0 stride 2.
    * ``"cifar"`` (32x32, the CIFAR-100 rows): the stem and bottleneck 1.0 ``[k3, 48, 24]`` have
      stride 1. A stride-1 Ghost bottleneck has no depthwise conv, so on CIFAR block 1.0 **loses its
      depthwise conv** (432 weights + 96 BN values) and its shortcut becomes dw3x3/1 + BN + 1x1 + BN,
      exactly as the reference's CIFAR file.
    * ``None`` (default): ``"cifar"`` when the input height or width is below 128 pixels, else
      ``"imagenet"`` (also for an unknown size). The default input is 224x224x3, so
      ``GhostNet(classes=100)`` is the ImageNet configuration and
      ``GhostNet(input_shape=(32, 32, 3), classes=100)`` the paper's CIFAR-100 row.

    Variants, as in the paper's tables, are chosen with ``stem`` and ``downsampling``:

    * orig (``stem="standard", downsampling="standard"``): the baseline.
    * pf, "ours" (``stem="hybrid", downsampling="padding_free"``, or :func:`GhostNetPF`): the
      hybrid stem (:class:`HybridStem`, 16 channels, ReLU, default BN; stride 1 on CIFAR, 2 at 224)
      and padding-free downsampling in every strided bottleneck: the depthwise conv uses padding 0
      (k3) / 1 (k5) and adds a max-pool of the ``ghost1`` output **after its BN** (the path has no
      activation; :class:`PaddingFreeDWConv` with ``shortcut_position="after_bn"``); the pool is
      **3x3/2/0 for k3 and 5x5/2/1 for k5**, as the reference (MobileNetV3 uses 3x3/2/0 for both).
      The strided conv shortcut's depthwise conv gets the same reduced padding (k3 -> 0, k5 -> 1).
      The reference's GhostNet-ours still constructs the original ``bn1`` (32 weights) without
      using it; this port does not create the dead layer, so its total trainable weights are 32
      below the reference's ``sum(p.numel())`` (4 029 832 CIFAR / 4 276 312 VegFru); the paper's
      (thop) parameter counts are matched exactly. The registry records this as a
      ``params_all_weights`` deviation of -32.
    * stem only (``stem="hybrid"``): the baseline with the hybrid stem (ablation).
    * downsampling only (``downsampling="padding_free"``): "ours" with the original stem
      (ablation).
    * EfficientFormerV2 downsampling (``downsampling="attention"``): the baseline with every strided
      bottleneck replaced wholesale by EfficientFormerV2's ``Embedding``
      (:class:`AttentionDownsampling`, default BN): the first one conv-only (dense 3x3/2/1 conv with
      bias + BN), the others with 4-D attention; no activation after the block. On CIFAR that is
      3.0 (conv, 24 -> 40), 5.0 and 7.0 (attention), as the reference; the reference hard-wired
      the attention to 32x32 inputs, here its bias tables follow the input size. With the ImageNet
      configuration (not in the paper) 1.0 is conv-only and 3.0, 5.0, 7.0 use attention.

    Args:
        include_top: whether to include the pool + ``conv_head`` + classifier head.
        weights: None (random initialisation) or the path of a ``.weights.h5`` / ``.keras`` file.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: ``(height, width, 3)``; default (224, 224, 3).
        pooling: with ``include_top=False``: None (4-D features of the 960-channel last conv),
            "avg" or "max".
        classes: number of classes.
        classifier_activation: activation of the "predictions" layer's output (None for logits).
        name: model name (default ``"ghostnet"`` + variant suffix).
        stem: "standard" (3x3 conv + BN + ReLU) or "hybrid" (:class:`HybridStem`).
        downsampling: "standard", "padding_free" or "attention" (see above).
        config: "cifar", "imagenet" or None (chosen from the input size, see above).
        dropout_rate: dropout before the classifier (0.2).

    Returns:
        A functional `keras.Model`.
    """
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    _utils.check_choice(stem, "stem", STEMS)
    _utils.check_choice(downsampling, "downsampling", DOWNSAMPLINGS)
    if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, (int, float)) or not (
            0.0 <= dropout_rate < 1.0):
        raise ValueError(
            f"Argument `dropout_rate` must be a number in [0, 1). Received: dropout_rate="
            f"{dropout_rate!r}."
        )
    shape = _input_shape_of(input_tensor, input_shape, 224)
    config = resolve_config(config, shape)
    variant = {v: k for k, v in VARIANTS.items()}.get(
        (stem, downsampling), f"{stem}_stem_{downsampling}")
    if name is None:
        name = "ghostnet" + ("" if variant == "orig" else f"_{variant}")
    inputs, x = _common.model_inputs(
        input_tensor, input_shape, default_size=224,
        min_size=_min_input_size(config, downsampling), model_name=f"{name} ({config})",
    )

    stem_stride = 1 if config == "cifar" else 2
    if stem == "hybrid":
        x = HybridStem(16, strides=stem_stride, activation="relu", bn_epsilon=1e-5,
                       bn_momentum=0.9, kernel_initializer=blocks.conv_initializer(), name="stem")(x)
    else:
        x = blocks.conv_bn_act(x, 16, 3, stem_stride, "relu", name="stem")

    first_replaced = True
    for (block, k, mid, out, se, _), s in zip(blocks.GHOSTNET_BLOCKS, _block_strides(config)):
        prefix = f"block{block.replace('.', '_')}"
        if s == 2 and downsampling == "attention":
            x = blocks.attention_embedding(x, out, use_attention=not first_replaced,
                                           name=f"{prefix}_embedding")
            first_replaced = False
            continue
        x = blocks.ghost_bottleneck(
            x, kernel_size=k, mid=mid, filters=out, se_ratio=se, strides=s,
            padding_free=downsampling == "padding_free", name=prefix,
        )
    x = blocks.conv_bn_act(x, 960, 1, 1, "relu", name="block9_0")

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(x)
        x = keras.layers.Conv2D(1280, 1, use_bias=True, kernel_initializer=blocks.conv_initializer(),
                                name="conv_head")(x)
        x = keras.layers.ReLU(name="head_act")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
        x = keras.layers.Dense(classes, kernel_initializer=blocks.conv_initializer(),
                               name=_common.CLASSIFIER_NAME)(x)
        return _common.classifier_activation_layer(x, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


def GhostNetPF(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
               classes=1000, classifier_activation="softmax", name=None, *, config=None,
               dropout_rate=0.2):
    """GhostNet 1.0x "ours": hybrid stem + padding-free downsampling.

    Same as ``GhostNet(stem="hybrid", downsampling="padding_free")``; see :func:`GhostNet`.
    Without ``input_shape`` it builds the 224x224 ImageNet/VegFru configuration
    (``GhostNetPF(weights=None, classes=100)`` is that configuration with a 100-class head);
    ``GhostNetPF(input_shape=(32, 32, 3), classes=100)`` builds the CIFAR configuration of the
    paper's CIFAR-100 row. Reference quirks reproduced: the pool of the padding-free shortcut is
    3x3/2/0 for k3 and 5x5/2/1 for k5 and joins after the depthwise BN; the strided conv shortcut
    uses the reduced padding too; the reference's dead ``bn1`` (32 weights) is not created.
    """
    return GhostNet(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name or "ghostnet_pf", stem="hybrid",
        downsampling="padding_free", config=config, dropout_rate=dropout_rate,
    )


# --------------------------------------------------------------------------------------------------
# Registry.

_DESCRIPTIONS = {
    "orig": "GhostNet 1.0x",
    "pf": "GhostNet 1.0x with hybrid stem and padding-free downsampling",
    "stem_only": "GhostNet 1.0x with the hybrid stem only (ablation)",
    "downsampling_only": "GhostNet 1.0x with padding-free downsampling only (ablation)",
    "effv2_downsampling": "GhostNet 1.0x with EfficientFormerV2 attention downsampling",
}
_TABLES = {
    "orig": "set2",
    "pf": "set2",
    "stem_only": "ablation",
    "downsampling_only": "ablation",
    "effv2_downsampling": "EfficientFormerV2",
}


def _deviations(variant):
    if variant == "pf":
        return {"params_all_weights": (-32, DEAD_BN1_REASON)}
    return None


for _variant, _suffix in (("orig", ""), ("pf", "_pf")):
    register_model(
        f"ghostnet{_suffix}", GhostNet, family="ghostnet", variant=_variant,
        input_shape=(224, 224, 3), classes=292, dataset="VegFru-292",
        description=_DESCRIPTIONS[_variant] + " (224x224, ImageNet configuration)",
        reference=("ghostnet", _variant, "VegFru"), source=SOURCE, test_input_shape=(96, 96, 3),
        deviations=_deviations(_variant), config="imagenet",
        **dict(zip(("stem", "downsampling"), VARIANTS[_variant])),
    )

for _variant, _suffix in (("orig", ""), ("pf", "_pf"), ("stem_only", "_stem_only"),
                          ("downsampling_only", "_downsampling_only"),
                          ("effv2_downsampling", "_effv2_ds")):
    register_model(
        f"ghostnet{_suffix}_cifar", GhostNet, family="ghostnet", variant=_variant,
        input_shape=(32, 32, 3), classes=100, dataset="CIFAR-100",
        description=_DESCRIPTIONS[_variant] + " (32x32, CIFAR configuration)",
        reference=("cifar_ghostnet", _variant, _TABLES[_variant]), source=SOURCE,
        test_input_shape=(32, 32, 3), deviations=_deviations(_variant), config="cifar",
        **dict(zip(("stem", "downsampling"), VARIANTS[_variant])),
    )
