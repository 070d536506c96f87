"""PydMobileNet (pyramid depthwise separable convolutions) and the baselines of its paper's table.

Paper: Hoang & Jo, "PydMobileNet: Improved Version of MobileNets with Pyramid Depthwise Separable
Convolution" (2018). Reference implementation and released weights (MXNet Gluon):
https://github.com/thanhhvnqb/pydmobilenet_mxnet (HEAD ffb6cfc). Specification of what is rebuilt here:
``/work/shared/reference/pydmobilenet_and_cheap_ops.md`` part A.

Network (CIFAR): input BatchNorm without scale/offset (MXNet ``fix_gamma``) -> 3x3 conv 3->32 (no
BN/ReLU after it) -> 3 stages of ``n = (depth - 2) / 9`` pre-activation residual bottlenecks of width
32/64/128 (the first block of stages 2 and 3 has stride 2 and a 1x1/s2 conv + BN shortcut) ->
global average pool of the last block output (no final BN/ReLU) -> Dense. The bottleneck width is
``mid = int(stage_width * width_multiplier)``. PydMobileNet's block has three parallel depthwise
convs (3x3, 5x5, 7x7, :class:`~keras_padfree.layers.PyramidDWConv`) combined by Add or Concat;
the MobileNet baseline a 3x3 depthwise conv; the ResNet baseline a full 3x3 conv.
ImageNet32 (``config="imagenet32"``, the reference's ``pydnet.py``): stem 64, stage widths
64/128/256, and the head ``BN -> ReLU -> 1x1 conv 256->1280 (bias) -> GAP -> Dense``.

Released weights: ``PydMobileNet(..., weights="cifar10_pydmobilenet29_0.25_concat-0000.params")``
reads the authors' MXNet file with NumPy (:mod:`keras_padfree.applications.mxnet_params`) and maps
every tensor by name (BN gamma/beta/running mean/variance included). ``save_mxnet_params`` writes a
model back in the same layout.

Input normalisation: the authors normalised [0, 1] images with the CIFAR mean (0.4914, 0.4822,
0.4465) / std (0.2023, 0.1994, 0.2010) (ImageNet32: ImageNet mean/std). With
``include_preprocessing=True`` (the default) the model contains that normalisation (a Rescaling by
1/255 and a Normalization layer) and takes RGB images in [0, 255]; with ``False`` it takes
normalised images, e.g. from :func:`preprocess_input`.

Counting conventions (reference rows ``PydMobileNet (cifar10|cifar100|imagenet32)``): MACs are
conv + dense multiply-accumulates at 32x32 and equal the rows exactly. The rows' parameters follow
MXNet's ``print_summary`` and include the input BatchNorm's gamma/beta (3 + 3 stored constants,
fixed at 1 and 0, never trained); this Keras input BN has no scale/offset, so every model has 6
trainable parameters fewer than its row (registered as a documented deviation of -6).
"""

import numpy as np

import keras

from keras_padfree.applications import _common
from keras_padfree.applications import _registry
from keras_padfree.applications import mxnet_params
from keras_padfree.blocks import pyd_blocks
from keras_padfree.layers.hybrid_stem import HybridStem

__all__ = [
    "PydBaselineMobileNet",
    "PydBaselineResNet",
    "PydMobileNet",
    "PydMobileNetPF",
    "load_mxnet_params",
    "mxnet_param_names",
    "preprocess_input",
    "save_mxnet_params",
]

SOURCE = "https://github.com/thanhhvnqb/pydmobilenet_mxnet"

# config: (stem width, stage widths, last 1x1 conv width or None, default classes, mean, std)
CONFIGS = {
    "cifar": dict(stem=32, widths=(32, 64, 128), last_conv=None, classes=100,
                  mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010)),
    "imagenet32": dict(stem=64, widths=(64, 128, 256), last_conv=1280, classes=1000,
                       mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
}
COMBINES = ("add", "concat")

STEM_BN_DEVIATION = (
    -6,
    "the reference count includes the input BatchNorm's frozen gamma/beta (MXNet fix_gamma, 2 x 3 "
    "stored constants); the Keras input BN has no scale/offset (center=False, scale=False)",
)


def preprocess_input(x, config="cifar"):
    """Normalises RGB images in [0, 255] as the authors' data loaders did.

    ``(x / 255 - mean) / std`` with the CIFAR (``config="cifar"``) or ImageNet
    (``config="imagenet32"``) mean/std. Use it only with ``include_preprocessing=False`` models.
    """
    if config not in CONFIGS:
        raise ValueError(f"Argument `config` must be one of {list(CONFIGS)}. Received: config={config!r}.")
    mean = np.asarray(CONFIGS[config]["mean"], "float32")
    std = np.asarray(CONFIGS[config]["std"], "float32")
    return (keras.ops.convert_to_tensor(x, "float32") / 255.0 - mean) / std


def _check_depth(depth):
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 11 or (depth - 2) % 9:
        raise ValueError(
            "Argument `depth` must be 9 * n + 2 for n >= 1 blocks per stage (29 -> 3, 56 -> 6). "
            f"Received: depth={depth!r}."
        )
    return (depth - 2) // 9


def _mids(widths, width_multiplier):
    if (isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float))
            or width_multiplier <= 0):
        raise ValueError(
            "Argument `width_multiplier` must be a positive number. "
            f"Received: width_multiplier={width_multiplier!r}."
        )
    mids = [int(w * width_multiplier) for w in widths]  # the reference's int() truncation
    if min(mids) < 1:
        raise ValueError(
            f"Argument `width_multiplier` leaves no bottleneck channel in a stage of width "
            f"{min(widths)}. Received: width_multiplier={width_multiplier!r}."
        )
    return mids


def _build(block_type, depth, width_multiplier, *, config, padding_free, include_preprocessing,
           include_top, weights, input_tensor, input_shape, pooling, classes,
           classifier_activation, name, default_name):
    if config not in CONFIGS:
        raise ValueError(f"Argument `config` must be one of {list(CONFIGS)}. Received: config={config!r}.")
    cfg = CONFIGS[config]
    if classes is None:
        classes = cfg["classes"]
    _common.validate_args(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation,
                          extra_weight_suffixes=(".params",))
    n = _check_depth(depth)
    mids = _mids(cfg["widths"], width_multiplier)
    name = name or default_name
    params_file = weights is not None and str(weights).endswith(".params")
    if params_file and padding_free:
        raise ValueError(
            "No MXNet weights exist for the padding-free PydMobileNetPF (its stem and downsampling "
            "differ from the released models). Pass a .weights.h5/.keras file or weights=None. "
            f"Received: weights={weights!r}."
        )
    if params_file and not include_top:
        raise ValueError(
            "MXNet .params files hold the whole network; build with include_top=True to load them "
            f"(then take the backbone's layers). Received: include_top=False, weights={weights!r}."
        )

    if padding_free:
        # stem (3x3, s1, p1 in HybridStem: no downsampling) then two 3x3/s2/p0 downsamplings.
        min_size = _common.min_input_size([(3, 2, 0), (3, 2, 0)])
    else:
        min_size = 1
    inputs, x = _common.model_inputs(input_tensor, input_shape, default_size=32, min_size=min_size,
                                     model_name=name)
    if include_preprocessing:
        x = keras.layers.Rescaling(1.0 / 255.0, name="preprocessing_rescale")(x)
        x = keras.layers.Normalization(mean=list(cfg["mean"]),
                                       variance=[s * s for s in cfg["std"]],
                                       name="preprocessing_normalize")(x)
    x = pyd_blocks.bn("stem_bn", center=False, scale=False)(x)
    if padding_free:
        x = HybridStem(cfg["stem"], strides=1, activation="relu", ordering="pre",
                       bn_epsilon=pyd_blocks.BN_EPSILON, bn_momentum=pyd_blocks.BN_MOMENTUM,
                       kernel_initializer=pyd_blocks.KERNEL_INITIALIZER, name="stem")(x)
    else:
        x = keras.layers.Conv2D(cfg["stem"], 3, padding="same", use_bias=False,
                                kernel_initializer=pyd_blocks.KERNEL_INITIALIZER,
                                name="stem_conv")(x)
    for s, (width, mid) in enumerate(zip(cfg["widths"], mids)):
        for b in range(n):
            strides = 2 if (s > 0 and b == 0) else 1
            x = pyd_blocks.residual_block(
                x, block_type=block_type, filters=width, mid=mid, strides=strides,
                prefix=f"stage{s + 1}_block{b + 1}_", padding_free=padding_free,
            )
    if cfg["last_conv"] is not None:
        x = pyd_blocks.bn("head_bn")(x)
        x = keras.layers.ReLU(name="head_relu")(x)
        x = pyd_blocks.conv1x1(cfg["last_conv"], "head_conv", use_bias=True)(x)

    def top(h):
        h = keras.layers.GlobalAveragePooling2D(name="avg_pool")(h)
        h = keras.layers.Dense(classes, name=_common.CLASSIFIER_NAME)(h)
        return _common.classifier_activation_layer(h, classifier_activation)

    outputs = _common.head(x, include_top=include_top, pooling=pooling, top_fn=top)
    if params_file:
        model = _common.finish(inputs, outputs, name=name, weights=None, include_top=include_top,
                               classes=classes)
        load_mxnet_params(model, weights)
        return model
    return _common.finish(inputs, outputs, name=name, weights=weights, include_top=include_top,
                          classes=classes)


_ARGS_DOC = """Args:
        depth: 9 * n + 2 (n blocks per stage): 29 or 56 in the paper.
        width_multiplier: bottleneck width relative to the stage width (``mid = int(C * m)``).
{extra}        config: "cifar" (stem 32, widths 32/64/128, GAP -> Dense) or "imagenet32" (stem 64,
            widths 64/128/256, head BN -> ReLU -> 1x1 conv to 1280 with bias -> GAP -> Dense).
        include_preprocessing: include the authors' input normalisation (inputs in [0, 255]);
            False takes images already normalised (see :func:`preprocess_input`).
        include_top: whether to include the GAP + "predictions" Dense classifier.
        weights: None, or a ``.weights.h5`` / ``.keras`` file{params_doc}
        input_tensor: optional ``keras.Input`` to build on.
        input_shape: (H, W, 3); default (32, 32, 3).
        pooling: None, "avg" or "max" when ``include_top=False``.
        classes: number of classes; default 100 ("cifar") or 1000 ("imagenet32").
        classifier_activation: activation of the "predictions" layer (None for logits).
        name: model name.

    Returns:
        A functional ``keras.Model``."""

_PARAMS_DOC = (", or an MXNet ``.params`` file the authors\n            released for this "
               "architecture (tensor names and shapes must match, and ``classes`` the file's).")


def PydMobileNet(depth=29, width_multiplier=0.25, combine="concat", *, config="cifar",
                 include_preprocessing=True, include_top=True, weights=None, input_tensor=None,
                 input_shape=None, pooling=None, classes=None, classifier_activation="softmax",
                 name=None):
    """PydMobileNet-{depth}-{width_multiplier} with Add or Concat pyramids (thanhhvnqb/pydmobilenet_mxnet).

    Builds the reference ``ResPydBlock`` network exactly as the released symbol graphs show: an
    input BN without scale/offset, a 3x3 stem conv with no BN/ReLU after it, pre-activation
    bottlenecks ``BN-ReLU-1x1(mid, stride 1 even when downsampling)-BN-ReLU-[dw3 | dw5 | dw7]
    (stride s, no BN on the branches)-BN-ReLU-1x1-BN + shortcut`` with no ReLU after the addition,
    and GAP directly on the last block output (CIFAR). Reference quirks kept: the downsampling
    block's expansion 1x1 runs at the input resolution; the shortcut is a 1x1 stride-2 conv + BN on
    the raw block input; MXNet's symmetric paddings (explicit, not Keras "same", for stride 2);
    Concat keeps the branch order [3, 5, 7]; BN eps 1e-5, momentum 0.9.

    Reference rows: ``pydmobilenet{29,56}_{0.25,0.5,0.75,1}_plus`` (Add) and
    ``pydmobilenet{29,56}_{0.25,0.5,0.75}_concat`` (CIFAR-10/100), ``pydnet_0_{25,5,75}``
    (ImageNet32, Concat-56). Params: -6 vs the rows (input BN, see the module docstring).
    {args}
    """
    _check_combine(combine)
    return _build(f"pyd_{combine}", depth, width_multiplier, config=config, padding_free=False,
                  include_preprocessing=include_preprocessing, include_top=include_top,
                  weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                  pooling=pooling, classes=classes, classifier_activation=classifier_activation,
                  name=name, default_name=f"pydmobilenet{depth}_{_wm(width_multiplier)}_{combine}")


def PydMobileNetPF(depth=29, width_multiplier=0.25, combine="concat", *, config="cifar",
                   include_preprocessing=True, include_top=True, weights=None, input_tensor=None,
                   input_shape=None, pooling=None, classes=None, classifier_activation="softmax",
                   name=None):
    """PydMobileNet with the paper's padding-free downsampling and hybrid stem (no reference row).

    Exactly what changes with respect to :func:`PydMobileNet` (everything else is identical):

    * Stem: the 3x3 conv after the input BN becomes a pre-activation
      :class:`~keras_padfree.layers.HybridStem` (``ordering="pre"``, ReLU, stride 1): conv3x3 ->
      [depthwise 3x3 of BN-ReLU(.) | 3x3/s1 max-pool] -> BN-ReLU -> 1x1 fuse, output without
      activation (the first block's pre-activation follows, as in the reference).
    * Stride-2 pyramid of the two downsampling blocks: each branch is padded ``(k - 3) // 2`` (3x3:
      0, 5x5: 1, 7x7: 2) instead of ``k // 2``, and the 3x3/stride-2/unpadded max-pool of the
      branch input is added to every branch before Add/Concat (``PyramidDWConv(padding_free=True)``;
      the max-pool shortcut of ``PaddingFreeDWConv``, at its "before_bn" position since the
      pyramid branches have no BN of their own).
    * Shortcut of the two downsampling blocks: ``MaxPoolShortcut(filters=C_out)`` (3x3/s2/p0
      max-pool + 1x1 projection) + BN instead of 1x1/stride-2 conv + BN, so both paths have the
      padding-free size: 32 -> 15 -> 7 (ImageNet32 likewise).

    Parameters: the row's count -6 (input BN) + the hybrid stem's extra depthwise 3x3, 1x1 fuse
    and BNs (+2 528 at CIFAR widths). MACs: the stages get cheaper (15x15 and 7x7 instead of 16x16
    and 8x8), but the stem's 1x1 fuse at full resolution costs more at these small widths, so the
    totals rise (PydMobileNet-29-0.25 Add at 32x32: 10.75 M -> 12.18 M MACs).
    No MXNet weights exist for it.
    {args}
    """
    _check_combine(combine)
    return _build(f"pyd_{combine}", depth, width_multiplier, config=config, padding_free=True,
                  include_preprocessing=include_preprocessing, include_top=include_top,
                  weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                  pooling=pooling, classes=classes, classifier_activation=classifier_activation,
                  name=name,
                  default_name=f"pydmobilenet{depth}_{_wm(width_multiplier)}_{combine}_pf")


def PydBaselineMobileNet(depth=29, width_multiplier=1.0, *, config="cifar",
                         include_preprocessing=True, include_top=True, weights=None,
                         input_tensor=None, input_shape=None, pooling=None, classes=None,
                         classifier_activation="softmax", name=None):
    """The "MobileNet-{depth}-{m}" baseline of PydMobileNet's table (released graphs only).

    The PydMobileNet network with only a 3x3 depthwise conv (stride s, padding 1) in every block:
    ``BN-ReLU-1x1(mid)-BN-ReLU-dw3x3-BN-ReLU-1x1-BN + shortcut``. Reference rows
    ``mobilenet{29,56}_{0.5,1,1.5}`` (CIFAR-10/100). Params: -6 vs the rows (input BN).
    {args}
    """
    return _build("mobilenet", depth, width_multiplier, config=config, padding_free=False,
                  include_preprocessing=include_preprocessing, include_top=include_top,
                  weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                  pooling=pooling, classes=classes, classifier_activation=classifier_activation,
                  name=name, default_name=f"mobilenet{depth}_{_wm(width_multiplier)}")


def PydBaselineResNet(depth=29, width_multiplier=0.5, *, config="cifar",
                      include_preprocessing=True, include_top=True, weights=None,
                      input_tensor=None, input_shape=None, pooling=None, classes=None,
                      classifier_activation="softmax", name=None):
    """The "ResNet-{depth}" (bottleneck 0.5) baseline of PydMobileNet's table.

    Pre-activation bottleneck ``BN-ReLU-1x1(mid)-BN-ReLU-conv3x3(mid, stride s)-BN-ReLU-1x1-BN +
    shortcut`` with ``mid = 0.5 * C`` (16/32/64). Reference rows ``resnet29`` / ``resnet56``
    (CIFAR-10/100; the released files are named ``*_resne29`` inside, a typo the loader accepts since
    it ignores the prefix). Params: -6 vs the rows (input BN).
    {args}
    """
    return _build("resnet", depth, width_multiplier, config=config, padding_free=False,
                  include_preprocessing=include_preprocessing, include_top=include_top,
                  weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                  pooling=pooling, classes=classes, classifier_activation=classifier_activation,
                  name=name, default_name=f"resnet{depth}")


for _fn, _extra in ((PydMobileNet, '        combine: "add" (the release\'s "plus") or "concat".\n'),
                    (PydMobileNetPF, '        combine: "add" or "concat".\n'),
                    (PydBaselineMobileNet, ""), (PydBaselineResNet, "")):
    _params = _PARAMS_DOC if _fn is not PydMobileNetPF else " (no MXNet weights exist for PF)."
    _fn.__doc__ = _fn.__doc__.replace(
        "{args}", _ARGS_DOC.format(extra=_extra, params_doc=_params))


def _check_combine(combine):
    if combine not in COMBINES:
        raise ValueError(
            f'Argument `combine` must be "add" or "concat". Received: combine={combine!r}.'
        )


def _wm(m):
    return f"{m:g}".replace(".", "")


# --------------------------------------------------------------------------------------------------
# MXNet weights.

_BN_PARAMS = (("arg", "gamma", "gamma"), ("arg", "beta", "beta"),
              ("aux", "running_mean", "moving_mean"), ("aux", "running_var", "moving_variance"))


def _bn_entries(model, layer_name, mx_name):
    layer = model.get_layer(layer_name)
    entries = []
    for kind, mx_param, attr in _BN_PARAMS:
        var = getattr(layer, attr, None)
        entries.append((f"{kind}:{mx_name}_{mx_param}", layer, attr, var, "vector"))
    return entries


def _conv_entries(model, layer_name, mx_name, layout="conv", layer=None):
    layer = layer if layer is not None else model.get_layer(layer_name)
    entries = [(f"arg:{mx_name}_weight", layer, "kernel", layer.kernel, layout)]
    if getattr(layer, "use_bias", False):
        entries.append((f"arg:{mx_name}_bias", layer, "bias", layer.bias, "vector"))
    return entries


def _mxnet_entries(model):
    """(mxnet name without prefix, layer, attribute, keras variable or None, layout) per tensor."""
    names = {layer.name for layer in model.layers}
    if "stem" in names:
        raise ValueError(
            f"Model {model.name!r} is a padding-free PydMobileNetPF; no MXNet layout exists for its "
            "hybrid stem."
        )
    if "stem_conv" not in names or "stem_bn" not in names:
        raise ValueError(
            f"Model {model.name!r} is not a PydMobileNet / baseline built by this module (no "
            "'stem_bn'/'stem_conv' layers)."
        )
    e = _bn_entries(model, "stem_bn", "conv0/batchnorm0")
    e += _conv_entries(model, "stem_conv", "conv0/conv0")
    s = 1
    while f"stage{s}_block1_pre_bn" in names:
        b = 1
        while f"stage{s}_block{b}_pre_bn" in names:
            p = f"stage{s}_block{b}_"
            mx = f"stg{s - 1}/blk{b - 1}/"
            if f"{p}pyramid" in names:
                e += _bn_entries(model, f"{p}pre_bn", f"{mx}btl_in/batchnorm0")
                e += _conv_entries(model, f"{p}expand", f"{mx}btl_in/conv0")
                e += _bn_entries(model, f"{p}expand_bn", f"{mx}btl_in/batchnorm1")
                pyramid = model.get_layer(f"{p}pyramid")
                for k, branch in zip(pyramid.kernel_sizes, pyramid.branches):
                    e += _conv_entries(model, None, f"{mx}conv{k}/conv0", "depthwise", branch)
                e += _bn_entries(model, f"{p}dw_bn", f"{mx}btl_out/batchnorm0")
                e += _conv_entries(model, f"{p}project", f"{mx}btl_out/conv0")
                e += _bn_entries(model, f"{p}project_bn", f"{mx}btl_out/batchnorm1")
            else:
                spatial = f"{p}dw" if f"{p}dw" in names else f"{p}conv"
                layout = "depthwise" if spatial.endswith("dw") else "conv"
                e += _bn_entries(model, f"{p}pre_bn", f"{mx}body/batchnorm0")
                e += _conv_entries(model, f"{p}expand", f"{mx}body/conv0")
                e += _bn_entries(model, f"{p}expand_bn", f"{mx}body/batchnorm1")
                e += _conv_entries(model, spatial, f"{mx}body/conv1", layout)
                e += _bn_entries(model, f"{p}dw_bn", f"{mx}body/batchnorm2")
                e += _conv_entries(model, f"{p}project", f"{mx}body/conv2")
                e += _bn_entries(model, f"{p}project_bn", f"{mx}body/batchnorm3")
            if f"{p}shortcut" in names:
                e += _conv_entries(model, f"{p}shortcut", f"{mx}conv0")
                e += _bn_entries(model, f"{p}shortcut_bn", f"{mx}batchnorm0")
            b += 1
        s += 1
    if "head_conv" in names:
        e += _bn_entries(model, "head_bn", "classifier/batchnorm0")
        e += _conv_entries(model, "head_conv", "classifier/conv0")
    if _common.CLASSIFIER_NAME in names:
        e += _conv_entries(model, _common.CLASSIFIER_NAME, "classifier/dense0", "dense")
    return e


def _to_mxnet(value, layout):
    if layout == "conv":  # HWIO -> OIHW
        return np.transpose(value, (3, 2, 0, 1))
    if layout == "depthwise":  # (k, k, C, 1) -> (C, 1, k, k)
        return np.transpose(value, (2, 3, 0, 1))
    if layout == "dense":  # (in, out) -> (out, in)
        return np.transpose(value, (1, 0))
    return value


def _from_mxnet(value, layout):
    if layout == "conv":  # OIHW -> HWIO
        return np.transpose(value, (2, 3, 1, 0))
    if layout == "depthwise":  # (C, 1, k, k) -> (k, k, C, 1)
        return np.transpose(value, (2, 3, 0, 1))
    if layout == "dense":
        return np.transpose(value, (1, 0))
    return value


def _variable_shape(layer, attr, var):
    if var is not None:
        return tuple(var.shape)
    # A BatchNormalization without scale/offset (the input BN) has no gamma/beta variables.
    return (int(layer.moving_mean.shape[0]),)


def mxnet_param_names(model):
    """The ``arg:``/``aux:`` tensor names (without the model prefix) and MXNet shapes of ``model``."""
    out = {}
    for mx_name, layer, attr, var, layout in _mxnet_entries(model):
        shape = _variable_shape(layer, attr, var)
        out[mx_name] = tuple(_to_mxnet(np.zeros(shape, "float32"), layout).shape)
    return out


def _split_prefix(name):
    kind, sep, rest = name.partition(":")
    if not sep or kind not in ("arg", "aux") or "/" not in rest:
        return None, None
    prefix, _, local = rest.partition("/")
    return prefix, f"{kind}:{local}"


def load_mxnet_params(model, path):
    """Loads an authors' MXNet ``.params`` file into a model built by this module.

    Every tensor of the file is mapped by name (``arg:<prefix>/stg{s}/blk{b}/btl_in/conv0_weight``
    -> ``stage{s+1}_block{b+1}_expand`` kernel, ...; ``<prefix>`` such as
    ``cifar10_pydmobilenet29_0.25_concat`` is ignored) and transposed to Keras' layout (OIHW ->
    HWIO, depthwise (C, 1, k, k) -> (k, k, C, 1), Dense (out, in) -> (in, out)). BN gamma, beta and
    running mean/variance are all loaded; the input BN's stored gamma/beta must be 1/0 (MXNet
    ``fix_gamma``), which is what its scale-free Keras BN computes.

    Raises:
        ValueError: naming the first tensor the file lacks, the first it has in excess, or the
            first whose shape differs from the architecture's; nothing is assigned then.
    """
    arrays = mxnet_params.read_params(path)
    entries = _mxnet_entries(model)
    local = {}
    prefixes = set()
    for name, value in arrays.items():
        prefix, key = _split_prefix(name)
        if key is None:
            raise ValueError(
                f"The MXNet params file {path!r} has a tensor named {name!r}; expected "
                "'arg:<prefix>/...' or 'aux:<prefix>/...' names as Gluon exports them."
            )
        prefixes.add(prefix)
        local[key] = (name, value)
    if len(prefixes) > 1:
        raise ValueError(
            f"The MXNet params file {path!r} mixes the model prefixes {sorted(prefixes)}; it must "
            "hold one network."
        )
    expected = [entry[0] for entry in entries]
    expected_set = set(expected)
    for key in expected:
        if key not in local:
            raise ValueError(
                f"The MXNet params file {path!r} does not match the architecture of "
                f"{model.name!r}: it has no tensor '{key.split(':')[0]}:<prefix>/"
                f"{key.split(':', 1)[1]}' (first missing of {len(expected)} expected)."
            )
    for key, (name, _) in local.items():
        if key not in expected_set:
            raise ValueError(
                f"The MXNet params file {path!r} does not match the architecture of "
                f"{model.name!r}: its tensor {name!r} has no place in the model."
            )
    assignments = []
    for mx_name, layer, attr, var, layout in entries:
        name, value = local[mx_name]
        shape = _variable_shape(layer, attr, var)
        want = tuple(_to_mxnet(np.zeros(shape, "float32"), layout).shape)
        if tuple(value.shape) != want:
            hint = ""
            if layer.name == _common.CLASSIFIER_NAME and layout == "dense" and len(value.shape) == 2:
                hint = f" The file's classifier has {value.shape[0]} classes: pass classes={value.shape[0]}."
            elif layer.name == _common.CLASSIFIER_NAME and len(value.shape) == 1:
                hint = f" The file's classifier has {value.shape[0]} classes: pass classes={value.shape[0]}."
            raise ValueError(
                f"The MXNet params file {path!r} does not match the architecture of "
                f"{model.name!r}: tensor {name!r} has shape {tuple(value.shape)}, the model's "
                f"{layer.name!r} {attr} needs {want}.{hint}"
            )
        if var is None:
            fixed = 1.0 if attr == "gamma" else 0.0
            if not np.all(value == fixed):
                raise ValueError(
                    f"The MXNet params file {path!r}: tensor {name!r} must be all {fixed:g} (the "
                    f"input BN has no learned {attr}); found {value.tolist()}."
                )
            continue
        assignments.append((var, _from_mxnet(value, layout).astype(var.dtype)))
    for var, value in assignments:
        var.assign(value)
    return model


def save_mxnet_params(model, path, prefix=None):
    """Writes ``model`` (built by this module, not PF) as an MXNet ``.params`` file.

    The names follow the authors' release (``arg:<prefix>/stg0/blk0/btl_in/conv0_weight``, ...);
    ``prefix`` defaults to the model name. The input BN's gamma/beta are written as 1/0.
    """
    prefix = prefix or model.name
    arrays = {}
    for mx_name, layer, attr, var, layout in _mxnet_entries(model):
        kind, local = mx_name.split(":", 1)
        if var is None:
            shape = _variable_shape(layer, attr, var)
            value = np.full(shape, 1.0 if attr == "gamma" else 0.0, "float32")
        else:
            value = _to_mxnet(keras.ops.convert_to_numpy(var.value), layout)
        arrays[f"{kind}:{prefix}/{local}"] = np.ascontiguousarray(value, dtype="float32")
    mxnet_params.write_params(path, arrays)


# --------------------------------------------------------------------------------------------------
# Registry.

# The padding-free variants in the registry (PydMobileNetPF builds every configuration; registering
# each one would double the registry-wide test time for no new code path).
PF_REGISTERED = ((29, 0.25),)
PF_REGISTERED_IMAGENET32 = ((56, 0.25),)

_CIFAR_DESC = "CIFAR-10/100 (rows for both; classes=100 by default, pass classes=10)"


def _register():
    common = dict(family="pydmobilenet", input_shape=(32, 32, 3), classes=100,
                  source=SOURCE, test_input_shape=(32, 32, 3),
                  deviations={"params": STEM_BN_DEVIATION})
    pyd = {"plus": (0.25, 0.5, 0.75, 1), "concat": (0.25, 0.5, 0.75)}
    for depth in (29, 56):
        for kind, widths in pyd.items():
            combine = "add" if kind == "plus" else "concat"
            for m in widths:
                key = f"pydmobilenet{depth}_{m:g}_{kind}"
                name = f"pydmobilenet{depth}_{_wm(m)}_{kind}_cifar"
                _registry.register_model(
                    name, PydMobileNet, variant="orig", dataset="cifar10/cifar100",
                    description=f"PydMobileNet-{depth}-{m:g} ({combine.capitalize()}), "
                                f"{_CIFAR_DESC}.",
                    reference=(key, "orig", "PydMobileNet (cifar"),
                    depth=depth, width_multiplier=m, combine=combine, **common)
                if (depth, m) in PF_REGISTERED:
                    _registry.register_model(
                        f"pydmobilenet{depth}_{_wm(m)}_{kind}_pf_cifar", PydMobileNetPF,
                        variant="pf", dataset="cifar10/cifar100",
                        description=f"PydMobileNet-{depth}-{m:g} ({combine.capitalize()}) with "
                                    "padding-free downsampling and hybrid stem, CIFAR (no row).",
                        depth=depth, width_multiplier=m, combine=combine,
                        **{k: v for k, v in common.items() if k != "deviations"})
        for m in (0.5, 1, 1.5):
            _registry.register_model(
                f"pyd_mobilenet{depth}_{_wm(m)}_cifar", PydBaselineMobileNet, variant="orig",
                dataset="cifar10/cifar100",
                description=f"MobileNet-{depth}-{m:g} baseline of PydMobileNet's table, "
                            f"{_CIFAR_DESC}.",
                reference=(f"mobilenet{depth}_{m:g}", "orig", "PydMobileNet (cifar"),
                depth=depth, width_multiplier=m, **common)
        _registry.register_model(
            f"pyd_resnet{depth}_cifar", PydBaselineResNet, variant="orig",
            dataset="cifar10/cifar100",
            description=f"ResNet-{depth} (bottleneck 0.5) baseline of PydMobileNet's table, "
                        f"{_CIFAR_DESC}.",
            reference=(f"resnet{depth}", "orig", "PydMobileNet (cifar"),
            depth=depth, width_multiplier=0.5, **common)
    for m in (0.25, 0.5, 0.75):
        suffix = f"{m:g}".replace("0.", "0_")
        common32 = dict(common, classes=1000)
        _registry.register_model(
            f"pydnet_{_wm(m)}_imagenet32", PydMobileNet, variant="orig", dataset="imagenet32",
            description=f"PydMobileNet-56-{m:g} (Concat), ImageNet 32x32 configuration "
                        "(pydnet.py: stem 64, widths 64/128/256, 1x1-1280 head).",
            reference=(f"pydnet_{suffix}", "orig", "PydMobileNet (imagenet32)"),
            depth=56, width_multiplier=m, combine="concat", config="imagenet32", **common32)
        if (56, m) not in PF_REGISTERED_IMAGENET32:
            continue
        _registry.register_model(
            f"pydnet_{_wm(m)}_pf_imagenet32", PydMobileNetPF, variant="pf", dataset="imagenet32",
            description=f"PydMobileNet-56-{m:g} (Concat) ImageNet32 with padding-free "
                        "downsampling and hybrid stem (no row).",
            depth=56, width_multiplier=m, combine="concat", config="imagenet32",
            **{k: v for k, v in common32.items() if k != "deviations"})


_register()
