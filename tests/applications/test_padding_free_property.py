"""Registry-wide property of padding-free downsampling, for every "pf" / "downsampling_only" model.

Whatever the family, in a padding-free model every downsampling step of the body
* maps a spatial size H to ``floor((H - 3) / 2) + 1`` (32 -> 15 -> 7 -> 3, 112 -> 55 -> 27 -> 13 ->
6),
  checked on the actual output shapes of every layer call of the built functional graph; a padded
  stride-2 op (``ceil(H / 2)``) never satisfies it for H >= 2;
* is padding-free as a layer: a stride-2 Keras conv/pool has ``padding="valid"`` and at most the
  padding-free rule's symmetric zero padding in front of it (k3: 0, k5: 1); every stride-2
  depthwise conv is a :class:`PaddingFreeDWConv` (padding ``(k - 3) // 2``) or such a valid op.

The stem is exempt: :class:`HybridStem` layers, and in 224-pixel configurations the strided op that
reads the raw input (the original stem conv, e.g. 224 -> 112).

``assert_padding_free`` runs on every such model in ``test_registry_models.test_registered_model``
(which builds each registered model once); this module checks the property itself.
"""

import keras

from keras_padfree import applications
from keras_padfree.layers import HybridStem
from keras_padfree.layers import MaxPoolShortcut
from keras_padfree.layers import PaddingFreeDWConv

PF_VARIANTS = ("pf", "downsampling_only")
MODELS = [
    name
    for name in applications.list_models()
    if applications.get_model_info(name).variant in PF_VARIANTS
]

_STRIDED_KERAS = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
)
_GLOBAL = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def _pf_size(h):
    return (h - 3) // 2 + 1


def _calls(model, prefix=""):
    """(path, layer, input tensors, output tensors) of every layer call, nested models included."""
    in_model = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
    for layer in model._operations:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for node in layer._inbound_nodes:
            if id(node) not in in_model:
                continue
            path = f"{prefix}{layer.name}"
            if isinstance(layer, keras.Model) and hasattr(layer, "_operations"):
                yield from _calls(layer, prefix=path + "/")
            else:
                yield path, layer, list(node.input_tensors), list(node.outputs)


def _kernel_and_strides(layer):
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        return tuple(layer.pool_size), tuple(layer.strides)
    return tuple(layer.kernel_size), tuple(layer.strides)


def _preceding_padding(tensor):
    """Symmetric zero padding a ZeroPadding2D right before this tensor's consumer added (or 0)."""
    producer = tensor._keras_history.operation
    if isinstance(producer, keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = producer.padding
        return max(top, bottom, left, right)
    return 0


def _check_model(name):
    info = applications.get_model_info(name)
    model = applications.create_model(name, input_shape=info.input_shape, classes=info.classes)
    return (model, *check_padding_free(model, info))


def check_padding_free(model, info):
    """``(steps, problems)`` of a model built at its registered input (see the module docstring)."""
    size = info.input_shape[0]
    steps = []
    problems = []
    for path, layer, ins, outs in _calls(model):
        if isinstance(layer, HybridStem) or isinstance(layer, _GLOBAL):
            continue
        if len(outs) != 1 or len(outs[0].shape) != 4 or len(ins[0].shape) != 4:
            continue
        if isinstance(layer, keras.layers.ZeroPadding2D):
            continue  # judged with the op it pads
        # The size the step starts from: before a ZeroPadding2D feeding this op, if any.
        source = ins[0]
        if isinstance(source._keras_history.operation, keras.layers.ZeroPadding2D):
            source = source._keras_history.operation._inbound_nodes[0].input_tensors[0]
        (h_in, w_in), (h_out, w_out) = source.shape[1:3], outs[0].shape[1:3]
        if (h_out, w_out) == (h_in, w_in):
            if isinstance(layer, PaddingFreeDWConv):
                problems.append(f"{path}: a PaddingFreeDWConv that does not downsample")
            continue
        if size >= 128 and h_in == size:
            continue  # the original stem conv of a 224-pixel configuration
        steps.append((path, h_in, h_out))
        if (h_out, w_out) != (_pf_size(h_in), _pf_size(w_in)):
            problems.append(
                f"{path} ({type(layer).__name__}): {h_in}x{w_in} -> {h_out}x{w_out}, padding-free "
                f"downsampling gives {_pf_size(h_in)}x{_pf_size(w_in)}"
            )
        if isinstance(layer, PaddingFreeDWConv):
            if layer.padding != (layer.kernel_size - 3) // 2:
                problems.append(f"{path}: PaddingFreeDWConv with padding {layer.padding}")
        elif isinstance(layer, MaxPoolShortcut):
            pass  # its size is checked above; its padding only matters through that size
        elif isinstance(layer, _STRIDED_KERAS):
            (kh, kw), strides = _kernel_and_strides(layer)
            allowed = max(0, (max(kh, kw) - 3) // 2)
            if layer.padding != "valid":
                problems.append(
                    f"{path}: stride {strides} {type(layer).__name__} with "
                    f"padding={layer.padding!r}"
                )
            pad = _preceding_padding(ins[0])
            if pad > allowed:
                problems.append(
                    f"{path}: {kh}x{kw} stride {strides} op after ZeroPadding2D({pad}) "
                    f"(the padding-free rule allows {allowed})"
                )
    return steps, problems


def test_there_are_padding_free_models_of_several_families():
    families = {applications.get_model_info(name).family for name in MODELS}
    assert {"mobilenetv3_large", "ghostnet"} <= families
    assert len(MODELS) >= 6


def assert_padding_free(model, info):
    steps, problems = check_padding_free(model, info)
    assert not problems, "\n".join(problems)
    # At least two body downsampling steps (ResNet-20: 32 -> 15 -> 7; MobileNetV3: 32 -> 15 -> 7
    # -> 3; 224 models: 112 -> 55 -> 27 -> 13 -> 6) were seen.
    sizes = sorted({h_in for _, h_in, _ in steps}, reverse=True)
    assert len(sizes) >= 2, f"{info.name}: only found downsampling at input sizes {sizes}: {steps}"


def test_a_padding_free_model_passes():
    name = "ghostnet_pf_cifar"
    model, _, _ = _check_model(name)
    assert_padding_free(model, applications.get_model_info(name))


def test_property_catches_padded_downsampling():
    """The check fails on the baselines (padded stride-2 convs): it can fail."""
    for name in ("mobilenetv3_large_cifar", "ghostnet_cifar"):
        info = applications.get_model_info(name)
        assert info.variant == "orig"
        _, steps, problems = _check_model(name)
        assert steps and problems, name
        assert any("padding-free downsampling gives" in p for p in problems)
