"""CIFAR ResNets and Wide ResNets as the BSConv library builds them, original and padding-free.

Paper: "Lightweight Deep Neural Network Model With Padding-free Downsampling" (first table: BSConv
library models on CIFAR-100). Reference code: the BSConv copy in
https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem (``BSConv-master``), on top of
https://github.com/zeiss-microscopy/BSConv v0.4.0 (``bsconv/pytorch/resnet.py``), with the BSConv-U
replacer (``bsconv.pytorch.BSConvU_Replacer``) for the "-BSConv-U" models.

Two generic builders, :func:`BSConvCifarResNet` (post-activation ``StandardUnit``) and
:func:`BSConvCifarWRN` (pre-activation ``PreactUnit``), with thin variant functions over them for the
paper's rows: ResNet-20, ResNet-110 BSConv-U, WRN-40-3 and WRN-40-8 BSConv-U, each ``...PF`` for the
padding-free version.
"""

import keras

from keras_padfree.applications import _common
from keras_padfree.applications._registry import register_model
from keras_padfree.blocks import bsconv_blocks as blocks

__all__ = [
    "BSConvCifarResNet",
    "BSConvCifarWRN",
    "CifarResNet20",
    "CifarResNet20PF",
    "CifarResNet110BSConvU",
    "CifarResNet110BSConvUPF",
    "CifarWRN40_3",
    "CifarWRN40_3PF",
    "CifarWRN40_8BSConvU",
    "CifarWRN40_8BSConvUPF",
]

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"
STEM_CHANNELS = 16
RESNET_WIDTHS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)
PF_PROJECTIONS = ("conv3x3", "separable")


def _check_bool(value, argname):
    if not isinstance(value, bool):
        raise ValueError(f"Argument `{argname}` must be True or False. Received: {argname}={value!r}.")


def _min_size(padding_free):
    chain = [(3, 1, 1)] + [(3, 2, 0 if padding_free else 1) for s in STAGE_STRIDES if s == 2]
    return _common.min_input_size(chain)


def _build(*, kind, depth, width_factor, bsconv_u, padding_free, pf_projection, include_top,
           weights, input_tensor, input_shape, pooling, classes, classifier_activation, name):
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    _check_bool(bsconv_u, "bsconv_u")
    _check_bool(padding_free, "padding_free")
    if kind == "resnet":
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                "Argument `depth` of a CIFAR ResNet must be an integer 6n + 2 >= 8 (20, 56, 110, "
                f"...). Received: depth={depth!r}."
            )
        units = (depth - 2) // 6
        widths = RESNET_WIDTHS
    else:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
            raise ValueError(
                "Argument `depth` of a WRN must be an integer 6n + 4 >= 10 (16, 28, 40, ...). "
                f"Received: depth={depth!r}."
            )
        if (isinstance(width_factor, bool) or not isinstance(width_factor, int)
                or width_factor < 1):
            raise ValueError(
                "Argument `width_factor` must be a positive integer. "
                f"Received: width_factor={width_factor!r}."
            )
        if pf_projection not in PF_PROJECTIONS:
            raise ValueError(
                f"Argument `pf_projection` must be one of {list(PF_PROJECTIONS)}. "
                f"Received: pf_projection={pf_projection!r}."
            )
        units = (depth - 4) // 6
        widths = tuple(w * width_factor for w in RESNET_WIDTHS)
    if name is None:
        name = (f"bsconv_resnet{depth}" if kind == "resnet" else f"bsconv_wrn{depth}_{width_factor}")
        name += ("_bsconvu" if bsconv_u else "") + ("_pf" if padding_free else "")
    inputs, x = _common.model_inputs(input_tensor, input_shape, default_size=32,
                                     min_size=_min_size(padding_free), model_name=name)

    x = blocks.batch_norm(x, "data_bn")
    x = blocks.resnet_stem(x, STEM_CHANNELS, ordering="post" if kind == "resnet" else "pre",
                           bsconv_u=bsconv_u, padding_free=padding_free)
    for s, (width, stride) in enumerate(zip(widths, STAGE_STRIDES), start=1):
        for u in range(1, units + 1):
            unit_name = f"stage{s}_unit{u}"
            strides = stride if u == 1 else 1
            if kind == "resnet":
                x = blocks.standard_unit(x, width, strides=strides, bsconv_u=bsconv_u,
                                         padding_free=padding_free, name=unit_name)
            else:
                x = blocks.preact_unit(x, width, strides=strides, bsconv_u=bsconv_u,
                                       padding_free=padding_free, pf_projection=pf_projection,
                                       name=unit_name)
    if kind == "wrn":
        x = blocks.batch_norm(x, "final_bn")
        x = blocks.activation(x, "final_relu", "relu")

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
        x = blocks.classifier(x, classes)
        return _common.classifier_activation_layer(x, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


_COMMON_ARGS = """    include_top: whether to include the global pool and the classifier ("predictions").
    weights: None (random init) or the path of a ``.weights.h5`` / ``.keras`` file.
    input_tensor: optional Keras tensor to build the model on.
    input_shape: (height, width, 3), default (32, 32, 3). At least 1 pixel (orig) or 7 pixels
        (padding-free: 32 -> 15 -> 7, each stage maps H to floor((H - 3) / 2) + 1).
    pooling: "avg", "max" or None, used when ``include_top=False``.
    classes: number of classes (100 for CIFAR-100).
    classifier_activation: activation of the "predictions" output (None for logits).
    name: model name."""

_SHARED_QUIRKS = """* ``data_bn``: a learnable BatchNorm over the 3 raw [0, 1] input channels.
* Convs have no bias and kaiming-uniform init ``U(+-sqrt(6/fan_in))`` (depthwise fan-in 9);
  BSConv-U layers keep PyTorch's default ``U(+-1/sqrt(fan_in))`` (the library replaces after
  initialising); BatchNorm epsilon 1e-5, Keras momentum 0.9; classifier (Dense "predictions", the
  library's 1x1 conv with bias) normal std ``sqrt(2/(in + classes))``, bias ``U(+-1/sqrt(in))``.
* ``bsconv_u=True`` replaces every groups-1 3x3 conv (the stem's first conv included) by
  :class:`BSConvU`: pointwise 1x1 at the input resolution, then depthwise 3x3 with the original
  stride and padding, no BN between. 1x1 convs, depthwise convs and the padding-free 1x1 shortcut
  convs are not replaced.
* Orig stride-2 convs pad symmetrically (``ZeroPadding2D(1)`` + valid), as PyTorch does."""


def BSConvCifarResNet(depth=20, include_top=True, weights=None, input_tensor=None,
                      input_shape=None, pooling=None, classes=100,
                      classifier_activation="softmax", name=None, bsconv_u=False,
                      padding_free=False):
    return _build(kind="resnet", depth=depth, width_factor=1, bsconv_u=bsconv_u,
                  padding_free=padding_free, pf_projection="separable", include_top=include_top,
                  weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                  pooling=pooling, classes=classes, classifier_activation=classifier_activation,
                  name=name)


BSConvCifarResNet.__doc__ = f"""Builds a BSConv-library CIFAR ResNet (post-activation ``StandardUnit``).

Reference configuration: ``bsconv.pytorch.get_model("cifar_resnet<depth>")`` (with
``"..._bsconvu"`` for ``bsconv_u=True``) of BSConv v0.4.0; ``padding_free=True`` is the paper's
"ours", i.e. the BSConv copy at HEAD 7a0c4b8 **with the commented-out 1x1 ``conv2`` of ``ConvBlock``
enabled** (HEAD without it crashes with a channel mismatch, and the paper's counts include it).

Architecture: ``data_bn`` -> stem (16 ch) -> 3 stages of ``(depth - 2) / 6`` units, widths
16 / 32 / 64, the first unit of stages 2 and 3 with stride 2 -> global average pool -> classifier.
Unit: ``ReLU(BN(conv3x3(ReLU(BN(conv3x3(x))))) + shortcut(x))``.

* Orig: stem 3x3 conv -> BN -> ReLU; stride-2 conv1 3x3/2/1; shortcut 1x1/2 conv -> BN.
* Padding-free: stem = residual :class:`HybridStem` in the post-activation ("# ResNet") ordering
  (the ordering the code comment assigns to ResNets; both orderings count the same); stride-2 conv1
  is 3x3/2/**0** -> BN -> ReLU, **plus** ``conv1x1(maxpool_3x3/2/0(x))`` (:class:`MaxPoolShortcut`
  with a projection, added after the ReLU); the stride-2 shortcut is depthwise 3x3/2/0 -> BN(in) ->
  1x1 -> BN(out). Maps 32 -> 15 -> 7.
{_SHARED_QUIRKS}

Args:
    depth: 6n + 2 (20, 110, ...).
{_COMMON_ARGS}
    bsconv_u: the BSConv-U model.
    padding_free: the paper's padding-free downsampling and hybrid stem.

Returns:
    A functional `keras.Model`.
"""


def BSConvCifarWRN(depth=40, width_factor=3, include_top=True, weights=None, input_tensor=None,
                   input_shape=None, pooling=None, classes=100, classifier_activation="softmax",
                   name=None, bsconv_u=False, padding_free=False, pf_projection="conv3x3"):
    return _build(kind="wrn", depth=depth, width_factor=width_factor, bsconv_u=bsconv_u,
                  padding_free=padding_free, pf_projection=pf_projection,
                  include_top=include_top, weights=weights, input_tensor=input_tensor,
                  input_shape=input_shape, pooling=pooling, classes=classes,
                  classifier_activation=classifier_activation, name=name)


BSConvCifarWRN.__doc__ = f"""Builds a BSConv-library CIFAR Wide ResNet (pre-activation ``PreactUnit``).

Reference configuration: ``bsconv.pytorch.get_model("cifar_wrn<depth>_<k>")`` (``..._bsconvu`` for
``bsconv_u=True``) of BSConv v0.4.0; ``padding_free=True`` is the paper's "ours" (HEAD 7a0c4b8 with
the 1x1 ``conv2`` of ``ConvBlock`` enabled).

Architecture: ``data_bn`` -> stem (16 ch) -> 3 stages of ``(depth - 4) / 6`` units, widths
16k / 32k / 64k -> final BN -> ReLU -> global average pool -> classifier. No dropout.
Unit: ``x' = ReLU(BN(x))``; main path conv3x3 (stride s) -> BN -> ReLU -> conv3x3 (no BN, no act);
shortcut ``x``, or ``proj(x')`` when the unit changes width or stride; no activation after the sum.
Stage 1's first unit (16 -> 16k) projects with a 1x1 conv (no BN).

* Orig: stem a bare 3x3 conv (no BN, no act); stride-2 conv1 3x3/2/1; projection 1x1/2 conv.
* Padding-free: stem = residual :class:`HybridStem` in the pre-activation ordering (the HEAD
  state); stride-2 conv1 3x3/2/**0** -> BN -> ReLU **plus** ``conv1x1(maxpool_3x3/2/0(x'))``.
  The stride-2 projection on ``x'`` is ``pf_projection``:

  - ``"conv3x3"`` (the code at HEAD; reproduces the paper's WRN-40-3 row): a 3x3/2/0 conv with no
    BN or activation **plus** its own ``conv1x1(maxpool(x'))`` (BSConv-U-replaced when
    ``bsconv_u``);
  - ``"separable"`` (reproduces the paper's WRN-40-8 BSConv-U row, an edit not in the repository):
    the ResNet projection, depthwise 3x3/2/0 -> BN(in) -> 1x1 -> BN(out).
{_SHARED_QUIRKS}

Args:
    depth: 6n + 4 (16, 28, 40, ...).
    width_factor: k.
{_COMMON_ARGS}
    bsconv_u: the BSConv-U model.
    padding_free: the paper's padding-free downsampling and hybrid stem.
    pf_projection: "conv3x3" or "separable" (see above; padding-free only).

Returns:
    A functional `keras.Model`.
"""


def _variant(fn, doc, **arch):
    def builder(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=100, classifier_activation="softmax", name=None):
        return fn(include_top=include_top, weights=weights, input_tensor=input_tensor,
                  input_shape=input_shape, pooling=pooling, classes=classes,
                  classifier_activation=classifier_activation, name=name, **arch)

    builder.__doc__ = f"""{doc}

Calls ``{fn.__name__}({", ".join(f"{k}={v!r}" for k, v in arch.items())})``;
its docstring lists every reproduced reference quirk.

Args:
{_COMMON_ARGS}

Returns:
    A functional `keras.Model`.
"""
    return builder


CifarResNet20 = _variant(
    BSConvCifarResNet, "CIFAR ResNet-20 of the BSConv library, original (278,330 params at 100 "
    "classes).", depth=20)
CifarResNet20PF = _variant(
    BSConvCifarResNet, "CIFAR ResNet-20 with padding-free downsampling and the residual hybrid stem "
    "(282,138 params).", depth=20, padding_free=True)
CifarResNet110BSConvU = _variant(
    BSConvCifarResNet, "CIFAR ResNet-110 BSConv-U, original (244,810 params).", depth=110,
    bsconv_u=True)
CifarResNet110BSConvUPF = _variant(
    BSConvCifarResNet, "CIFAR ResNet-110 BSConv-U, padding-free (248,618 params).", depth=110,
    bsconv_u=True, padding_free=True)
CifarWRN40_3 = _variant(
    BSConvCifarWRN, "CIFAR WRN-40-3, original (5,055,930 params).", depth=40, width_factor=3)
CifarWRN40_3PF = _variant(
    BSConvCifarWRN, "CIFAR WRN-40-3, padding-free, with the HEAD 3x3 + max-pool projection "
    "(5,287,082 params).", depth=40, width_factor=3, padding_free=True,
    pf_projection="conv3x3")
CifarWRN40_8BSConvU = _variant(
    BSConvCifarWRN, "CIFAR WRN-40-8 BSConv-U, original (4,286,282 params).", depth=40,
    width_factor=8, bsconv_u=True)
CifarWRN40_8BSConvUPF = _variant(
    BSConvCifarWRN, "CIFAR WRN-40-8 BSConv-U, padding-free, with the depthwise-separable stride-2 "
    "projection the paper's count needs (4,456,634 params).", depth=40, width_factor=8,
    bsconv_u=True, padding_free=True, pf_projection="separable")
for _fn, _name in ((CifarResNet20, "CifarResNet20"), (CifarResNet20PF, "CifarResNet20PF"),
                   (CifarResNet110BSConvU, "CifarResNet110BSConvU"),
                   (CifarResNet110BSConvUPF, "CifarResNet110BSConvUPF"),
                   (CifarWRN40_3, "CifarWRN40_3"), (CifarWRN40_3PF, "CifarWRN40_3PF"),
                   (CifarWRN40_8BSConvU, "CifarWRN40_8BSConvU"),
                   (CifarWRN40_8BSConvUPF, "CifarWRN40_8BSConvUPF")):
    _fn.__name__ = _fn.__qualname__ = _name


def _register():
    rows = (
        ("bsconv_resnet20_cifar", CifarResNet20, CifarResNet20PF, "cifar_resnet20",
         "ResNet-20"),
        ("bsconv_resnet110_bsconvu_cifar", CifarResNet110BSConvU, CifarResNet110BSConvUPF,
         "cifar_resnet110_bsconvu", "ResNet-110 BSConv-U"),
        ("bsconv_wrn40_3_cifar", CifarWRN40_3, CifarWRN40_3PF, "cifar_wrn40_3", "WRN-40-3"),
        ("bsconv_wrn40_8_bsconvu_cifar", CifarWRN40_8BSConvU, CifarWRN40_8BSConvUPF,
         "cifar_wrn40_8_bsconvu", "WRN-40-8 BSConv-U"),
    )
    for name, orig, pf, ref, title in rows:
        family = "bsconv_resnet" if "resnet" in name else "bsconv_wrn"
        register_model(
            name, orig, family=family, variant="orig", input_shape=(32, 32, 3), classes=100,
            dataset="CIFAR-100", description=f"BSConv-library CIFAR {title}, original.",
            reference=(ref, "orig", "set1"), source=SOURCE, test_input_shape=(32, 32, 3),
        )
        register_model(
            f"{name}_pf", pf, family=family, variant="pf", input_shape=(32, 32, 3), classes=100,
            dataset="CIFAR-100",
            description=f"BSConv-library CIFAR {title}, padding-free downsampling + hybrid stem.",
            reference=(ref, "pf", "set1"), source=SOURCE, test_input_shape=(32, 32, 3),
        )


_register()
