"""torchvision-style MobileNetV3-large: the paper's second set (CIFAR-100, VegFru-292, ablations).

Reference: ``mobilenet_v3.py`` / ``mobilenet_v3_ours.py`` of
github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (CIFAR-100 second hyper-parameter
set, VegFru-292 and EfficientFormerV2-downsampling folders), a torchvision MobileNetV3-large with
``num_classes`` changed. Counts follow thop 0.0.31, the paper's counter.
"""

import keras

from keras_padfree.applications import _common
from keras_padfree.applications._registry import register_model
from keras_padfree.applications._variants import DOWNSAMPLINGS, STEMS, VARIANTS  # noqa: F401
from keras_padfree.blocks import mobilenetv3_blocks as blocks
from keras_padfree.layers import _utils
from keras_padfree.layers.hybrid_stem import HybridStem

__all__ = ["MobileNetV3Large", "MobileNetV3LargePF"]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"

CONFIGS = ("cifar", "imagenet")
CIFAR_MAX_SIZE = 127  # inputs up to this side use the CIFAR strides when `config=None`


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
    """Per-block strides: CIFAR turns the stem's and block 2's stride 2 into 1."""
    strides = [row[5] for row in blocks.LARGE_BLOCKS]
    if config == "cifar":
        strides[1] = 1
    return strides


def _min_input_size(config, stem, downsampling):
    """The smallest input side this configuration keeps at least one pixel (and the attention 2)."""
    stem_stride = 1 if config == "cifar" else 2
    strides = _block_strides(config)
    for size in range(1, 4096):
        h = _utils.conv_output_size(size, 3, stem_stride, 1)
        first_replaced = True
        ok = True
        for (k, _, _, _, _, _), s in zip(blocks.LARGE_BLOCKS, strides):
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
        if ok and h >= 1:
            return size
    raise ValueError("No input size survives the MobileNetV3 downsampling chain.")


def MobileNetV3Large(include_top=True, weights=None, input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax", name=None, *,
                     stem="standard", downsampling="standard", config=None, dropout_rate=0.2):
    """torchvision-style MobileNetV3-large, as the paper's second set (and its variants) built it.

    Builds ``torchvision.models.mobilenet_v3_large`` as the reference's ``mobilenet_v3.py``:
    3x3 stem (16, hard-swish), 15 inverted residuals, 1x1 conv 160 -> 960 + BN + hard-swish, global
    average pool, Linear 960 -> 1280 + hard-swish + Dropout(0.2) + Linear 1280 -> ``classes``
    ("predictions"). Every BN has eps 1e-3 and PyTorch momentum 0.01 (Keras 0.99); SE squeezes to
    ``make_divisible(expanded // 4, 8)`` with a hard-sigmoid gate and pools with a functional
    ``F.adaptive_avg_pool2d`` (not counted by thop 0.0.31, the paper's counter).

    Configurations (``config``):

    * ``"imagenet"`` (224x224, the VegFru-292 rows): stem stride 2; blocks 2, 4, 7, 13 stride 2.
    * ``"cifar"`` (32x32, the CIFAR-100 rows): the stem and block 2 have stride 1, so the network
      stride is 8 (32 -> 4, or 32 -> 3 padding-free).
    * ``None`` (default): ``"cifar"`` when the input height or width is below 128 pixels, else
      ``"imagenet"`` (also for an unknown size). The default input is 224x224x3, so
      ``MobileNetV3Large()`` is the ImageNet configuration and
      ``MobileNetV3Large(input_shape=(32, 32, 3), classes=100)`` the paper's CIFAR row.

    Variants, as in the paper's tables, are chosen with ``stem`` and ``downsampling``:

    * orig (``stem="standard", downsampling="standard"``): the baseline.
    * pf, "ours" (``stem="hybrid", downsampling="padding_free"``, or
      :func:`MobileNetV3LargePF`): the hybrid stem (:class:`HybridStem`, 16 channels, hard-swish, stride 1 on
      CIFAR and 2 at 224; its BNs use PyTorch's **default** eps 1e-5 / momentum 0.1, unlike the rest
      of the network, as in the reference) and padding-free downsampling: every stride-2 depthwise
      conv uses padding 0 (k3) / 1 (k5) plus a max-pool of its input added **after** BN and
      activation (:class:`PaddingFreeDWConv`, ``"after_activation"``). The pool is **3x3/2/0 for
      k5 convs too**: the reference first builds a 5x5/2/1 pool and then overwrites it (quirk Q1).
    * stem only (``stem="hybrid"``): the baseline with the hybrid stem (ablation).
    * downsampling only (``downsampling="padding_free"``): "ours" with the original stem
      (ablation).
    * EfficientFormerV2 downsampling (``downsampling="attention"``): the baseline with every stride-2 block replaced wholesale by
      EfficientFormerV2's ``Embedding`` (:class:`AttentionDownsampling`): the first one conv-only
      (dense 3x3/2/1 conv with bias + BN), the others with 4-D attention, no activation after the
      block; the conv-branch BN is MobileNetV3's (1e-3, 0.01), the attention's BNs the default. On
      CIFAR that is blocks 4 (conv), 7 and 13 (attention), as the reference. The reference hard-wired
      the attention to 32x32 inputs; here its bias tables follow the input size. With the ImageNet
      configuration (not in the paper) block 2 is conv-only and blocks 4, 7, 13 use attention.

    Args:
        include_top: whether to include the pooling + 960 -> 1280 -> ``classes`` classifier head.
        weights: None (random initialisation) or the path of a ``.weights.h5`` / ``.keras`` file.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: ``(height, width, 3)``; default (224, 224, 3).
        pooling: with ``include_top=False``: None (4-D features of the 960-channel last conv),
            "avg" or "max".
        classes: number of classes.
        classifier_activation: activation of the "predictions" layer's output (None for logits).
        name: model name (default ``"mobilenetv3_large"`` + variant suffix).
        stem: "standard" (3x3 conv + BN + hard-swish) or "hybrid" (:class:`HybridStem`).
        downsampling: "standard", "padding_free" or "attention" (see above).
        config: "cifar", "imagenet" or None (chosen from the input size, see above).
        dropout_rate: dropout before the last Linear layer (0.2).

    Returns:
        A functional `keras.Model`.
    """
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    _utils.check_choice(stem, "stem", STEMS)
    _utils.check_choice(downsampling, "downsampling", DOWNSAMPLINGS)
    variant = {v: k for k, v in VARIANTS.items()}.get(
        (stem, downsampling), f"{stem}_stem_{downsampling}")
    if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, (int, float)) or not (
            0.0 <= dropout_rate < 1.0):
        raise ValueError(
            f"Argument `dropout_rate` must be a number in [0, 1). Received: dropout_rate="
            f"{dropout_rate!r}."
        )
    shape = _input_shape_of(input_tensor, input_shape, 224)
    config = resolve_config(config, shape)
    if name is None:
        name = "mobilenetv3_large" + ("" if variant == "orig" else f"_{variant}")
    inputs, x = _common.model_inputs(
        input_tensor, input_shape, default_size=224,
        min_size=_min_input_size(config, stem, downsampling), model_name=f"{name} ({config})",
    )

    stem_stride = 1 if config == "cifar" else 2
    if stem == "hybrid":
        x = HybridStem(16, strides=stem_stride, activation="hard_silu", bn_epsilon=1e-5,
                       bn_momentum=0.9, kernel_initializer=blocks.conv_initializer(),
                       depthwise_initializer=blocks.depthwise_initializer(), name="stem")(x)
    else:
        x = blocks.conv_bn_act(x, 16, 3, stem_stride, "hard_silu", name="stem")

    first_replaced = True
    for i, ((k, exp, out, se, act, _), s) in enumerate(
            zip(blocks.LARGE_BLOCKS, _block_strides(config)), start=1):
        if s == 2 and downsampling == "attention":
            x = blocks.attention_embedding(x, out, use_attention=not first_replaced,
                                           name=f"block{i}_embedding")
            first_replaced = False
            continue
        x = blocks.inverted_residual(
            x, kernel_size=k, expanded=exp, filters=out, use_se=se, activation=act, strides=s,
            padding_free=downsampling == "padding_free", name=f"block{i}",
        )
    x = blocks.conv_bn_act(x, 960, 1, 1, "hard_silu", name="last")

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(1280, kernel_initializer=blocks.dense_initializer(),
                               name="head_dense")(x)
        x = _utils.activation_layer("hard_silu", "head_act")(x)
        x = keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
        x = keras.layers.Dense(classes, kernel_initializer=blocks.dense_initializer(),
                               name=_common.CLASSIFIER_NAME)(x)
        return _common.classifier_activation_layer(x, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


def MobileNetV3LargePF(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=1000, classifier_activation="softmax", name=None, *,
                       config=None, dropout_rate=0.2):
    """MobileNetV3-large "ours": hybrid stem + padding-free downsampling.

    Same as ``MobileNetV3Large(stem="hybrid", downsampling="padding_free")``; see :func:`MobileNetV3Large` for the
    configurations (224x224 default input: the ImageNet/VegFru configuration; a 32x32
    ``input_shape`` builds the CIFAR configuration of the paper's CIFAR-100 row) and for every
    reference quirk it reproduces (default-BN stem, 3x3/2/0 shortcut pool for 5x5 convs, shortcut
    added after the activation).
    """
    return MobileNetV3Large(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
        name=name or "mobilenetv3_large_pf", stem="hybrid", downsampling="padding_free",
        config=config,
        dropout_rate=dropout_rate,
    )


# --------------------------------------------------------------------------------------------------
# Registry.

_DESCRIPTIONS = {
    "orig": "torchvision-style MobileNetV3-large",
    "pf": "MobileNetV3-large with hybrid stem and padding-free downsampling",
    "stem_only": "MobileNetV3-large with the hybrid stem only (ablation)",
    "downsampling_only": "MobileNetV3-large with padding-free downsampling only (ablation)",
    "effv2_downsampling": "MobileNetV3-large with EfficientFormerV2 attention downsampling",
}
_TABLES = {
    "orig": "set2",
    "pf": "set2",
    "stem_only": "ablation",
    "downsampling_only": "ablation",
    "effv2_downsampling": "EfficientFormerV2",
}

for _variant, _suffix in (("orig", ""), ("pf", "_pf")):
    register_model(
        f"mobilenetv3_large{_suffix}", MobileNetV3Large, family="mobilenetv3_large",
        variant=_variant, input_shape=(224, 224, 3), classes=292, dataset="VegFru-292",
        description=_DESCRIPTIONS[_variant] + " (224x224, ImageNet configuration)",
        reference=("mobilenetv3_large", _variant, "VegFru"), source=SOURCE,
        test_input_shape=(96, 96, 3), config="imagenet",
        **dict(zip(("stem", "downsampling"), VARIANTS[_variant])),
    )

for _variant, _suffix in (("orig", ""), ("pf", "_pf"), ("stem_only", "_stem_only"),
                          ("downsampling_only", "_downsampling_only"),
                          ("effv2_downsampling", "_effv2_ds")):
    register_model(
        f"mobilenetv3_large{_suffix}_cifar", MobileNetV3Large, family="mobilenetv3_large",
        variant=_variant, input_shape=(32, 32, 3), classes=100, dataset="CIFAR-100",
        description=_DESCRIPTIONS[_variant] + " (32x32, CIFAR configuration)",
        reference=("cifar_mobilenetv3_large", _variant, _TABLES[_variant]), source=SOURCE,
        test_input_shape=(32, 32, 3), config="cifar",
        **dict(zip(("stem", "downsampling"), VARIANTS[_variant])),
    )
