"""MobileNetV3-large as the BSConv library builds it, original and with padding-free downsampling.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (first table: BSConv
library models on CIFAR-100, Stanford Dogs and ImageNet). Reference code: the BSConv copy in
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (``BSConv-master``), on top of
https://github.com/zeiss-microscopy/BSConv v0.4.0 (``bsconv/pytorch/mobilenet.py``).

This is the BSConv library's MobileNetV3, not torchvision's or keras.applications': its first unit
has a 1x1 expansion conv even though ``exp == in``, SE squeezes to a plain ``C // 4``, there is no
ReLU6, and the default head is the library's lightweight one (no 1280-wide layer).
"""

import keras

from keras_padfree.applications import _common
from keras_padfree.applications._registry import register_model
from keras_padfree.blocks import bsconv_blocks as blocks

__all__ = ["BSConvMobileNetV3Large", "BSConvMobileNetV3LargePF"]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"

# One row per LinearBottleneck unit, grouped in stages.
# exp: expanded channels, out: output channels, k: depthwise kernel, se: squeeze-excite,
# act: activation, first: whether the unit is the first of its stage (takes the stage stride).
# exp, out, k, se, act
STAGES = (
    ((16, 16, 3, False, "relu"),),
    ((64, 24, 3, False, "relu"), (72, 24, 3, False, "relu")),
    ((72, 40, 5, True, "relu"), (120, 40, 5, True, "relu"), (120, 40, 5, True, "relu")),
    ((240, 80, 3, False, "hard_silu"), (200, 80, 3, False, "hard_silu"),
     (184, 80, 3, False, "hard_silu"), (184, 80, 3, False, "hard_silu"),
     (480, 112, 3, True, "hard_silu"), (672, 112, 3, True, "hard_silu")),
    ((672, 160, 5, True, "hard_silu"), (960, 160, 5, True, "hard_silu"),
     (960, 160, 5, True, "hard_silu")),
)
STEM_CHANNELS = 16
FINAL_CHANNELS = 960
FULL_HEAD_CHANNELS = 1280

# Stem stride and the stride of each stage's first unit.
CONFIGS = {
    "cifar": {"stem_strides": 1, "stage_strides": (1, 1, 2, 2, 2), "default_size": 32},
    "imagenet": {"stem_strides": 2, "stage_strides": (1, 2, 2, 2, 2), "default_size": 224},
}
HEADS = ("lightweight", "full")


def _resolve_config(config, input_tensor, input_shape):
    if config in CONFIGS:
        return config
    if config != "auto":
        raise ValueError(
            f'Argument `config` must be one of "auto", "cifar", "imagenet". Received: '
            f"config={config!r}."
        )
    shape = tuple(input_tensor.shape[1:]) if input_tensor is not None else input_shape
    if shape is None or shape[0] is None:
        return "imagenet"
    return "cifar" if shape[0] <= 64 else "imagenet"


def _downsampling_chain(cfg, padding_free):
    chain = [(3, cfg["stem_strides"], 1)]
    for s in cfg["stage_strides"]:
        if s == 2:
            chain.append((3, 2, 0) if padding_free else (3, 2, 1))
    return chain


def _mobilenetv3_large(*, padding_free, include_top, weights, input_tensor, input_shape, pooling,
                       classes, classifier_activation, name, head, bsconv_s, orthonormal_alpha,
                       config):
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    if head not in HEADS:
        raise ValueError(
            f'Argument `head` must be "lightweight" or "full". Received: head={head!r}.'
        )
    if not isinstance(bsconv_s, bool):
        raise ValueError(f"Argument `bsconv_s` must be True or False. Received: bsconv_s={bsconv_s!r}.")
    if (isinstance(orthonormal_alpha, bool) or not isinstance(orthonormal_alpha, (int, float))
            or orthonormal_alpha < 0):
        raise ValueError(
            "Argument `orthonormal_alpha` must be a number >= 0. "
            f"Received: orthonormal_alpha={orthonormal_alpha!r}."
        )
    config = _resolve_config(config, input_tensor, input_shape)
    cfg = CONFIGS[config]
    if name is None:
        name = "bsconv_mobilenetv3_large" + ("_pf" if padding_free else "")
    inputs, x = _common.model_inputs(
        input_tensor, input_shape, default_size=cfg["default_size"],
        min_size=_common.min_input_size(_downsampling_chain(cfg, padding_free)), model_name=name,
    )
    alpha = float(orthonormal_alpha) if bsconv_s else None

    x = blocks.batch_norm(x, "data_bn")
    x = blocks.mobilenetv3_stem(x, STEM_CHANNELS, strides=cfg["stem_strides"],
                                padding_free=padding_free)
    for s, (units, stage_stride) in enumerate(zip(STAGES, cfg["stage_strides"]), start=1):
        for u, (exp, out, k, se, act) in enumerate(units, start=1):
            x = blocks.linear_bottleneck(
                x, exp_channels=exp, out_channels=out, kernel_size=k,
                strides=stage_stride if u == 1 else 1, use_se=se, act=act,
                padding_free=padding_free, orthonormal_alpha=alpha, name=f"stage{s}_unit{u}",
            )
    x = blocks.conv_block(x, FINAL_CHANNELS, 1, act="hard_silu", name="final_conv1")

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(name="final_pool")(x)
        if head == "full":
            x = keras.layers.Dense(FULL_HEAD_CHANNELS, use_bias=False,
                                   kernel_initializer="he_uniform", name="final_conv2")(x)
            x = blocks.activation(x, "final_conv2_act", "hard_silu")
        x = blocks.classifier(x, classes)
        return _common.classifier_activation_layer(x, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


_DOC = """Builds the BSConv library's MobileNetV3-large{title}.

Reference configuration: ``bsconv.pytorch.get_mobilenet("mobilenetv3_large_w1")`` of the BSConv
library (v0.4.0) {variant_text}

Architecture (all reference quirks reproduced):

* ``data_bn``: a learnable BatchNorm over the 3 raw [0, 1] input channels (no mean/std input
  normalisation).
* {stem_text}
* 15 ``LinearBottleneck`` units in 5 stages (``STAGES``). ``conv1`` (1x1 expansion -> BN -> act) is
  present in every unit, even the first where ``exp == in`` (torchvision drops it). SE squeezes to
  a plain ``C // 4`` (72 -> 18, 120 -> 30, ...; no make-divisible rounding), pools with a module,
  gates with h-sigmoid, and sits after the depthwise conv. Activations are ReLU then h-swish (no
  ReLU6). Identity residual iff ``in == out`` and stride 1.
* ``final_conv1``: 1x1 160 -> 960 -> BN -> h-swish; global average pool; then the classifier, a
  Dense layer named "predictions" (the library's 1x1 conv with bias on the pooled map). With
  ``head="full"`` (what the paper's ImageNet row counts) a 1x1 960 -> 1280 layer without bias and
  without BN, h-swish, comes before it. No dropout.
* Configurations: ``config="cifar"`` (32x32: stem stride 1, stage strides 1, 1, 2, 2, 2) and
  ``"imagenet"`` (224x224, Stanford Dogs and ImageNet: stem stride 2, stage strides 1, 2, 2, 2, 2).
  ``"auto"`` picks "cifar" for inputs up to 64 pixels high, else "imagenet".
* ``bsconv_s=True`` is the paper's "MobileNetV3-large BSConv-S (p=1/6)": no layer changes; each
  unit's projection (``conv3``) kernel ``W`` [C_out x C_mid] gets the orthonormal regulariser
  ``alpha * ||W W^T - I||_F`` (plain, not squared, Frobenius norm; alpha 0.1), so ``model.losses``
  has 15 terms.
* Initialisation: convs kaiming-uniform ``U(+-sqrt(6/fan_in))`` (depthwise fan-in ``k*k``), SE
  biases 0, classifier weight non-truncated normal with std ``sqrt(2/(in + classes))`` and bias
  ``U(+-1/sqrt(in))``. BatchNorm epsilon 1e-5, Keras momentum 0.9 (PyTorch's 0.1).

Args:
    include_top: whether to include the global pool and the classifier.
    weights: None (random init) or the path of a ``.weights.h5`` / ``.keras`` file.
    input_tensor: optional Keras tensor to build the model on.
    input_shape: (height, width, 3); default (32, 32, 3) for "cifar", (224, 224, 3) for
        "imagenet". The smallest accepted size is {min_text}.
    pooling: "avg", "max" or None, used when ``include_top=False``.
    classes: number of classes (100 for CIFAR-100, 120 Stanford Dogs, 1000 ImageNet).
    classifier_activation: activation of the "predictions" output (None for logits).
    name: model name.
    head: "lightweight" (the library's default: pool -> classifier) or "full" (pool -> 1x1
        960 -> 1280 -> h-swish -> classifier).
    bsconv_s: add the BSConv-S orthonormal regulariser (see above).
    orthonormal_alpha: its weight (0.1 in the paper).
    config: "auto", "cifar" or "imagenet".

Returns:
    A functional `keras.Model`.
"""


def BSConvMobileNetV3Large(include_top=True, weights=None, input_tensor=None, input_shape=None,
                           pooling=None, classes=100, classifier_activation="softmax", name=None,
                           head="lightweight", bsconv_s=False, orthonormal_alpha=0.1,
                           config="auto"):
    return _mobilenetv3_large(
        padding_free=False, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, head=head, bsconv_s=bsconv_s,
        orthonormal_alpha=orthonormal_alpha, config=config,
    )


def BSConvMobileNetV3LargePF(include_top=True, weights=None, input_tensor=None, input_shape=None,
                             pooling=None, classes=100, classifier_activation="softmax",
                             name=None, head="lightweight", bsconv_s=False,
                             orthonormal_alpha=0.1, config="auto"):
    return _mobilenetv3_large(
        padding_free=True, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, head=head, bsconv_s=bsconv_s,
        orthonormal_alpha=orthonormal_alpha, config=config,
    )


BSConvMobileNetV3Large.__doc__ = _DOC.format(
    title=" (original, as upstream BSConv v0.4.0)",
    variant_text="as upstream: the stride-2 depthwise convs are zero-padded symmetrically "
                 "(3x3: padding 1, 5x5: padding 2; explicit ``ZeroPadding2D`` + valid, never "
                 "Keras' asymmetric stride-2 \"same\").",
    stem_text="Stem: 3x3 conv 3 -> 16 (stride 1 for CIFAR, 2 at 224; padding 1) -> BN -> "
              "h-swish.",
    min_text="1 pixel (the downsampling chain pads)",
)
BSConvMobileNetV3LargePF.__doc__ = _DOC.format(
    title=" with padding-free downsampling and the hybrid stem (the paper's \"ours\")",
    variant_text="with the paper's changes (the BSConv copy at HEAD 7a0c4b8, with the 224 stem fix "
                 "below): every stride-2 depthwise conv drops its border padding (3x3: padding "
                 "0; 5x5: padding 1) and adds the 3x3/stride-2/unpadded max-pool of its input "
                 "*after* the activation (:class:`PaddingFreeDWConv`); the max-pool is 3x3 even "
                 "for 5x5 convs, and the SE unit then gates the sum. The reference's optional 1x1 "
                 "``conv2`` on the max-pooled input is off, as the paper's counts require. Maps: "
                 "32 -> 15 -> 7 -> 3 (CIFAR), 224 -> 112 -> 55 -> 27 -> 13 -> 6.",
    stem_text="Stem: :class:`HybridStem` (3x3 conv 3 -> 16 -> BN -> h-swish; a depthwise 3x3 "
              "-> BN -> h-swish branch and a 3x3/1/1 max-pool branch, concatenated, 1x1 32 -> 16 "
              "-> BN -> h-swish; no residual, 1,184 params). Its first conv has stride 2 with "
              "padding 1 at 224: the reference hard-codes stride 1 (899 MFLOPs), but the "
              "paper's 212.6/214.9 MFLOPs need stride 2 there.",
    min_text="15 pixels for \"cifar\" and 61 for \"imagenet\" (each padding-free stage maps H "
             "to floor((H - 3) / 2) + 1)",
)


_DESCRIPTION = "BSConv-library MobileNetV3-large{what}, {where}."
_VARIANTS = (
    # name suffix, dataset, input size, classes, head, config, reference model key
    ("cifar", "CIFAR-100", 32, 100, "lightweight", "cifar", "cifar_mobilenetv3_large"),
    ("dogs", "Stanford Dogs", 224, 120, "lightweight", "imagenet", "mobilenetv3_large_dogs"),
    ("imagenet", "ImageNet", 224, 1000, "full", "imagenet", "mobilenetv3_large_imagenet"),
)


def _register():
    # The 224 configurations are smoke-tested at 96x96, not at their 61-pixel minimum: at 64x64
    # the padding-free chain ends in 1x1 maps, where training-mode BatchNorm over the test's batch
    # of 2 divides by a near-zero variance at every layer and one SGD step explodes the weights.
    for suffix, dataset, size, classes, head, config, ref in _VARIANTS:
        for bsconv_s in (False, True):
            if bsconv_s and suffix == "imagenet":
                continue
            ref_key = ref.replace("mobilenetv3_large", "mobilenetv3_large_bsconvs") if bsconv_s \
                else ref
            for pf in (False, True):
                name = "bsconv_mobilenetv3_large" + ("_bsconvs" if bsconv_s else "") + \
                       f"_{suffix}" + ("_pf" if pf else "")
                what = (" BSConv-S (orthonormal regulariser)" if bsconv_s else "") + (
                    ", padding-free downsampling + hybrid stem" if pf else "")
                register_model(
                    name, BSConvMobileNetV3LargePF if pf else BSConvMobileNetV3Large,
                    family="bsconv_mobilenetv3", variant="pf" if pf else "orig",
                    input_shape=(size, size, 3), classes=classes, dataset=dataset,
                    description=_DESCRIPTION.format(
                        what=what, where=f"{dataset} {size}x{size}, {head} head"),
                    reference=(ref_key, "pf" if pf else "orig", "set1"), source=SOURCE,
                    test_input_shape=(32, 32, 3) if size == 32 else (96, 96, 3),
                    head=head, bsconv_s=bsconv_s, config=config,
                )


_register()
