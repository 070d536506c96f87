"""What an app needs next to an exported model: the sidecar JSON and the labels file.

The sidecar describes the model's input and output in words and numbers (no Python needed): the
input tensor's shape, layout (NHWC), dtype, colour order and value range, how raw RGB pixels become
the model's input (``x = (pixel * pixel_scale - mean) / std``), where that normalisation came from,
the output's meaning, the quantisation parameters of both tensors, the model's counts and the
exporter's version. A multi-output model's sidecar has ``outputs`` (every output: its name, its
position in the file, shape, dtype, meaning, quantisation) instead of ``output``.
:data:`SIDECAR_SCHEMA` is its schema (documented in ``docs/android.md``).

The normalisation is read from the model, never guessed. A model that *holds its preprocessing*
starts, right after its image input, with a chain of ``keras.layers.Rescaling`` and/or
``keras.layers.Normalization`` layers (the builders' ``include_preprocessing=True``, and the models
``training/fit.py`` saves) and takes raw RGB pixels in [0, 255]: its sidecar says so (source
``"model"``) and also records, for information, the affine map the chain applies. A model without
such a chain is exported only with an explicit mean/std (source ``"user"``).
"""

import json
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

# 0.1.0 kept these statistics here; they live in keras_padfree.normalization now.
from keras_padfree.normalization import CIFAR100_MEAN  # noqa: F401
from keras_padfree.normalization import CIFAR100_STD  # noqa: F401
from keras_padfree.normalization import IMAGENET_MEAN  # noqa: F401
from keras_padfree.normalization import IMAGENET_STD  # noqa: F401

if TYPE_CHECKING:
    import keras

SCHEMA_VERSION = 2

CIFAR10_LABELS = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# CIFAR-100 fine labels in the dataset's index order.
CIFAR100_LABELS = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)
DIGITS_LABELS = tuple(str(d) for d in range(10))

_DATASET_LABELS = {"cifar10": CIFAR10_LABELS, "cifar100": CIFAR100_LABELS, "digits": DIGITS_LABELS}


# --------------------------------------------------------------------------------------------------
# The normalisation, from the model.


def model_preprocessing(model: "keras.Model") -> dict | None:
    """The preprocessing a model holds, composed into one per-channel affine map, or None.

    Follows the graph from the model's single image input through the chain of
    ``keras.layers.Rescaling`` (``y = x * scale + offset``) and ``keras.layers.Normalization``
    (``y = (x - mean) / sqrt(variance)``, or its ``invert``) layers that directly follow it,
    whatever their names, and composes them into ``y = scale * x + offset`` per channel. The chain
    ends at the first other layer, or where a tensor feeds more than one layer. Layers that read
    only a tensor's size, not its values (a segmentation head's
    :class:`~keras_padfree.layers.ResizeToMatch` resizing its logits to the input image's size)
    do not count.

    Returns:
        None when the input is not followed by such a chain; else a dict with ``layers`` (their
        names, in order), ``scale`` and ``offset`` (one float per channel: the map on raw pixels)
        and the equivalent ``mean`` / ``std`` on pixels scaled to [0, 1]
        (``y = (pixel / 255 - mean) / std``).

    Raises:
        ValueError: the chain's values are not per-channel (e.g. a Normalization over the spatial
            axes) or make the map degenerate (a zero scale).
    """
    import keras

    if len(model.inputs) != 1:
        return None
    tensor = model.inputs[0]
    channels = tensor.shape[-1]
    if channels is None:
        return None
    channels = int(channels)
    consumers = _consumers(model)
    scale = np.ones(channels, "float64")
    offset = np.zeros(channels, "float64")
    names = []
    while True:
        users = [
            (layer, node)
            for layer, node in consumers.get(id(tensor), [])
            if not _reads_only_size(layer, node, tensor)
        ]
        if len(users) != 1:
            break
        layer, node = users[0]
        if not isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            break
        if len(node.input_tensors) != 1 or len(node.output_tensors) != 1:
            break
        if isinstance(layer, keras.layers.Rescaling):
            s = _per_channel(layer.scale, channels, layer, "scale")
            o = _per_channel(layer.offset, channels, layer, "offset")
            scale, offset = scale * s, offset * s + o
        else:
            if tuple(int(a) % 4 for a in layer.axis) != (3,):
                raise ValueError(
                    f"Layer {layer.name!r} (Normalization) normalises over axis={layer.axis}; only "
                    "per-channel preprocessing (axis=-1 of an NHWC image) can be described in the "
                    "sidecar."
                )
            mean = _per_channel(keras.ops.convert_to_numpy(layer.mean), channels, layer, "mean")
            var = _per_channel(
                keras.ops.convert_to_numpy(layer.variance), channels, layer, "variance"
            )
            denom = np.maximum(np.sqrt(var), keras.config.epsilon())
            if layer.invert:
                scale, offset = scale * denom, mean + offset * denom
            else:
                scale, offset = scale / denom, (offset - mean) / denom
        names.append(layer.name)
        tensor = node.output_tensors[0]
    if not names:
        return None
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(offset)) and np.all(scale != 0)):
        raise ValueError(
            f"The preprocessing layers {names} of model {model.name!r} compose to a degenerate map "
            f"(scale={scale.tolist()}, offset={offset.tolist()})."
        )
    std = 1.0 / (255.0 * scale)
    mean = -offset * std + 0.0  # + 0.0: no negative zeros in the JSON
    return {
        "layers": names,
        "scale": scale.tolist(),
        "offset": offset.tolist(),
        "mean": mean.tolist(),
        "std": std.tolist(),
    }


def _reads_only_size(layer, node, tensor):
    """Whether ``layer`` uses ``tensor`` only for its spatial size: the reference of a
    ``ResizeToMatch([x, reference])`` that is not also its ``x``."""
    from keras_padfree.layers.resize_to_match import ResizeToMatch

    inputs = list(node.input_tensors)
    return (
        isinstance(layer, ResizeToMatch)
        and len(inputs) == 2
        and inputs[1] is tensor
        and inputs[0] is not tensor
    )


def _consumers(model):
    """``{id(tensor): [(layer, node), ...]}`` for every call of a layer inside ``model``."""
    out = {}
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):
            seen = set()
            for t in node.input_tensors:
                if id(t) in seen:
                    continue
                seen.add(id(t))
                out.setdefault(id(t), []).append((layer, node))
    return out


def _per_channel(value, channels, layer, what):
    arr = np.asarray(value, "float64")
    flat = arr.reshape(-1)
    if flat.size == 1:
        return np.full(channels, float(flat[0]))
    if flat.size == channels and arr.shape[-1] == channels:
        return flat.copy()
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) has a {what} of shape {arr.shape}; only "
        f"one value or one per channel ({channels}) can be described in the sidecar."
    )


def _value_ranges(pixel_scale, mean, std):
    lo = [(0.0 * pixel_scale - m) / s for m, s in zip(mean, std)]
    hi = [(255.0 * pixel_scale - m) / s for m, s in zip(mean, std)]
    return [min(lo), max(hi)], [[a, b] for a, b in zip(lo, hi)]


def _channel_values(values, channels, argname):
    try:
        arr = np.asarray(values, "float64").reshape(-1)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.size not in (1, channels) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"Argument `normalization['{argname}']` must be one finite number or {channels} (one "
            f"per channel). Received: {argname}={values!r}."
        )
    return [float(v) for v in np.broadcast_to(arr, (channels,))]


def model_normalization(pre: dict, channels: int = 3) -> dict:
    """The sidecar record of a model that holds its preprocessing (``pre`` from
    :func:`model_preprocessing`): the app feeds raw pixels."""
    rng, per_channel = _value_ranges(1.0, [0.0] * channels, [1.0] * channels)
    inside = ", ".join(pre["layers"])
    return {
        "source": "model",
        "type": "in_model",
        "description": (
            "x = pixel: raw RGB values in [0, 255] as float32; the model rescales and "
            f"normalises them itself ({inside})"
        ),
        "pixel_scale": 1.0,
        "mean": [0.0] * channels,
        "std": [1.0] * channels,
        "value_range": rng,
        "value_range_per_channel": per_channel,
        "model_preprocessing": {
            "layers": list(pre["layers"]),
            "scale": list(pre["scale"]),
            "offset": list(pre["offset"]),
            "mean": list(pre["mean"]),
            "std": list(pre["std"]),
            "description": (
                "inside the model, for information: y = scale * x + offset, i.e. "
                "(x / 255 - mean) / std"
            ),
        },
    }


def user_normalization(
    mean: Sequence[float] | float, std: Sequence[float] | float, channels: int = 3
) -> dict:
    """The sidecar record of a user-given normalisation ``x = (pixel / 255 - mean) / std``."""
    mean = _channel_values(mean, channels, "mean")
    std = _channel_values(std, channels, "std")
    if any(s <= 0 for s in std):
        raise ValueError(f"Argument `normalization['std']` must be positive. Received: std={std}.")
    pixel_scale = 1.0 / 255.0
    rng, per_channel = _value_ranges(pixel_scale, mean, std)
    return {
        "source": "user",
        "type": "mean_std",
        "description": "x = (pixel / 255 - mean) / std, per RGB channel",
        "pixel_scale": pixel_scale,
        "mean": mean,
        "std": std,
        "value_range": rng,
        "value_range_per_channel": per_channel,
        "model_preprocessing": None,
    }


def mean_std_normalization(mean: Sequence[float] | float, std: Sequence[float] | float) -> dict:
    """The 0.1.0 name of :func:`user_normalization` (3 channels)."""
    return user_normalization(mean, std, 3)


def resolve_normalization(normalization: str | dict, model: "keras.Model") -> dict:
    """Turns the exporters' ``normalization`` argument into the sidecar's record.

    Args:
        normalization: ``"auto"`` (read it from the model: the model must hold its preprocessing),
            or ``{"mean": [...], "std": [...]}`` for a model that does not (on pixels scaled to
            [0, 1]; one value or one per channel). ``"none"`` (alias ``"internal"``) states that
            the model takes ``pixel / 255`` as it is (mean 0, std 1).
        model: the Keras model.

    Raises:
        ValueError: "auto" for a model without preprocessing layers, an explicit normalisation for
            a model that holds its own (it would be applied twice), or malformed values.
    """
    channels = int(model.inputs[0].shape[-1] or 3)
    pre = model_preprocessing(model)
    if isinstance(normalization, str) and normalization in ("none", "internal"):
        normalization = {"mean": 0.0, "std": 1.0}
    if isinstance(normalization, dict):
        if set(normalization) != {"mean", "std"}:
            raise ValueError(
                "Argument `normalization` as a dict must have exactly the keys 'mean' and 'std'. "
                f"Received: normalization={normalization!r}."
            )
        if pre is not None:
            raise ValueError(
                f"Argument `normalization`: the model {model.name!r} holds its preprocessing "
                f"(layers {pre['layers']}: (pixel / 255 - mean) / std with mean="
                f"{_short(pre['mean'])}, std={_short(pre['std'])}); it takes raw pixels in "
                "[0, 255], so a mean/std given here would be applied twice. Leave it 'auto' "
                f"(command line: no --mean/--std). Received: normalization={normalization!r}."
            )
        return user_normalization(normalization["mean"], normalization["std"], channels)
    if normalization != "auto":
        raise ValueError(
            "Argument `normalization` must be 'auto', 'none' or a dict with 'mean' and 'std'. "
            f"Received: normalization={normalization!r}."
        )
    if pre is None:
        raise ValueError(
            f"The model {model.name!r} does not hold its preprocessing (no Rescaling/"
            "Normalization layers right after its input), so how pixels become its input is "
            "unknown. Pass the normalisation it was trained with: normalization={'mean': [...], "
            "'std': [...]} on pixels scaled to [0, 1] (command line: --mean and --std), or rebuild "
            "it with include_preprocessing=True. Received: normalization='auto'."
        )
    return model_normalization(pre, channels)


def _short(values):
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def preprocess_pixels(pixels: np.ndarray, metadata: dict) -> np.ndarray:
    """Applies the sidecar's normalisation to raw RGB pixels in [0, 255] (what an app does)."""
    norm = metadata["input"]["normalization"]
    x = np.asarray(pixels, "float32") * np.float32(norm["pixel_scale"])
    mean = np.asarray(norm["mean"], "float32")
    std = np.asarray(norm["std"], "float32")
    return (x - mean) / std


# --------------------------------------------------------------------------------------------------
# Labels.


def _registry_dataset(model_name):
    try:
        from keras_padfree.applications import get_model_info

        return get_model_info(model_name).dataset
    except (ImportError, KeyError, ValueError):  # not a registry name
        return None


def resolve_labels(
    labels: Sequence[str] | None,
    classes: int | None,
    model_name: str | None = None,
    dataset: str | None = None,
) -> list[str]:
    """The class names written to the labels file (one per line, index order).

    Given ``labels`` win; else the dataset's names (CIFAR-10/100, digits) when the class count
    matches; else ``class_0`` ... ``class_{N-1}``.
    """
    if labels is not None:
        labels = [str(v) for v in labels]
        if classes is not None and len(labels) != classes:
            raise ValueError(
                f"Argument `labels` must have one name per class ({classes}). "
                f"Received {len(labels)} labels."
            )
        if any("\n" in v or "\r" in v for v in labels):
            raise ValueError("Argument `labels`: a label may not contain a line break.")
        return labels
    if model_name is not None and dataset is None:
        dataset = _registry_dataset(model_name)
    key = (dataset or "").lower().replace("-", "").replace("_", "")
    known = _DATASET_LABELS.get(key)
    if known is not None and classes == len(known):
        return list(known)
    return [f"class_{i}" for i in range(classes or 0)]


# --------------------------------------------------------------------------------------------------
# Counts and the exporter.


def model_counts(model: "keras.Model", input_shape: tuple, classes: int | None) -> dict:
    """``{"params", "trainable_params", "macs", "classes"}`` of the exported model.

    ``macs`` are the conv + dense multiply-accumulates of one image
    (``keras_padfree.profiling.count_flops(model, "macs")``); null when the model's input shape is
    not the exported one or the model has layers the profiler does not describe.
    """
    params = int(model.count_params())
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    macs = None
    if tuple(model.inputs[0].shape[1:]) == tuple(input_shape):
        from keras_padfree import profiling

        try:
            macs = int(profiling.count_flops(model, "macs"))
        except ValueError:  # a layer the analytic profiler does not know
            macs = None
    return {"params": params, "trainable_params": trainable, "macs": macs, "classes": classes}


def exporter_record() -> dict:
    """The exporter's name and the versions that produced the file."""
    import keras

    import keras_padfree

    rec = {
        "name": "keras_padfree",
        "version": keras_padfree.__version__,
        "keras": keras.__version__,
    }
    try:
        import tensorflow as tf

        rec["tensorflow"] = tf.__version__
    except ImportError:  # pragma: no cover - the converters need TensorFlow
        rec["tensorflow"] = None
    return rec


# --------------------------------------------------------------------------------------------------
# The schema, writing and reading.

# Types of the schema: a tuple of Python types (None allowed when NoneType is listed), a dict (a
# nested object with exactly these keys), or a list of one element (an array of that type).
# Keys marked optional (suffix "?") may be absent.
_NUM = (int, float)
_NULL = type(None)
_NORMALIZATION = {
    "source": (str,),
    "type": (str,),
    "description": (str,),
    "pixel_scale": _NUM,
    "mean": [_NUM],
    "std": [_NUM],
    "value_range": [_NUM],
    "value_range_per_channel": [[_NUM]],
    "model_preprocessing": (
        {
            "layers": [(str,)],
            "scale": [_NUM],
            "offset": [_NUM],
            "mean": [_NUM],
            "std": [_NUM],
            "description": (str,),
        },
        _NULL,
    ),
}
_TENSOR_QUANTIZATION = {"scale": _NUM, "zero_point": (int,), "description": (str,)}
SIDECAR_SCHEMA = {
    "schema_version": (int,),
    "format": (str,),
    "model_file": (str,),
    "model_name": (str,),
    "exporter": {"name": (str,), "version": (str,), "keras": (str,), "tensorflow": (str, _NULL)},
    "runtime": (str,),
    "input": {
        "name": (str,),
        "shape": [(int, _NULL)],
        "dtype": (str,),
        "layout": (str,),
        "color_order": (str,),
        "height": (int,),
        "width": (int,),
        "channels": (int,),
        "value_range": [_NUM],
        "normalization": _NORMALIZATION,
        "quantization?": _TENSOR_QUANTIZATION,
    },
    "output?": {
        "name": (str,),
        "shape": [(int, _NULL)],
        "dtype": (str,),
        "meaning": (str,),
        "quantization?": _TENSOR_QUANTIZATION,
    },
    "signature?": {"key": (str,), "input": (str,)},
    "outputs?": [
        {
            "key": (str,),
            "index": (int,),
            "name": (str,),
            "shape": [(int, _NULL)],
            "dtype": (str,),
            "meaning": (str,),
            "reduction?": (int,),
            "quantization?": _TENSOR_QUANTIZATION,
        }
    ],
    "num_classes": (int, _NULL),
    "counts": {
        "params": (int,),
        "trainable_params": (int,),
        "macs": (int, _NULL),
        "classes": (int, _NULL),
    },
    "quantization": {
        "type": (str,),
        "weights": (str,),
        "activations": (str,),
        "input_output?": (str,),
        "calibration_samples?": (int,),
    },
    "parity": {
        "samples": (int,),
        "max_abs_diff": _NUM,
        "compared": (str,),
        "top1_agreement?": _NUM,
        "criterion": (str,),
        "tolerance?": _NUM,
        "min_top1_agreement?": _NUM,
        "cosine_similarity?": _NUM,
        "min_cosine_similarity?": _NUM,
        "reference_backend": (str,),
        "sample_source": (str,),
        "outputs?": [
            {
                "key": (str,),
                "max_abs_diff": _NUM,
                "compared": (str,),
                "top1_agreement?": _NUM,
                "criterion": (str,),
                "tolerance?": _NUM,
                "min_top1_agreement?": _NUM,
                "cosine_similarity?": _NUM,
                "min_cosine_similarity?": _NUM,
            }
        ],
    },
    "labels_file": (str, _NULL),
}
# Values fixed by the schema.
SIDECAR_ENUMS = {
    "format": ("tflite", "onnx"),
    "input.dtype": ("float32", "int8"),
    "input.layout": ("NHWC",),
    "input.color_order": ("RGB",),
    "input.normalization.source": ("model", "user"),
    "input.normalization.type": ("in_model", "mean_std"),
    "output.dtype": ("float32", "int8"),
    "outputs[].dtype": ("float32", "int8"),
    "quantization.type": ("none", "float16", "dynamic", "int8"),
    "parity.criterion": ("max_abs_diff", "top1_agreement", "cosine_similarity", "per_output"),
    "parity.compared": ("probabilities", "outputs", "per_output"),
    "parity.sample_source": ("sample_inputs", "representative_data", "synthetic"),
    "parity.outputs[].criterion": ("max_abs_diff", "top1_agreement", "cosine_similarity"),
    "parity.outputs[].compared": ("probabilities", "outputs"),
}


def schema_keys(schema: dict | None = None, prefix: str = "") -> list[str]:
    """Every key path of the schema (``"input.normalization.mean"``; the keys of the objects in
    an array as ``"outputs[].key"``), in order; optional keys without their ``?``."""
    schema = SIDECAR_SCHEMA if schema is None else schema
    out = []
    for key, spec in schema.items():
        path = prefix + key.rstrip("?")
        out.append(path)
        nested = _nested_object(spec)
        if nested is not None:
            out.extend(schema_keys(nested, path + "."))
        elif isinstance(spec, list) and isinstance(spec[0], dict):
            out.extend(schema_keys(spec[0], path + "[]."))
    return out


def _nested_object(spec):
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, tuple):
        for s in spec:
            if isinstance(s, dict):
                return s
    return None


def _values_at(value, parts):
    """The values at a key path (``"a.b[].c"`` split on dots); absent optional keys give none."""
    if not parts:
        yield value
        return
    part, rest = parts[0], parts[1:]
    array = part.endswith("[]")
    key = part[:-2] if array else part
    if not isinstance(value, dict) or key not in value:
        return
    items = value[key] if array else [value[key]]
    for item in items:
        yield from _values_at(item, rest)


def validate_sidecar(meta: dict) -> None:
    """Checks a sidecar dict against :data:`SIDECAR_SCHEMA` and :data:`SIDECAR_ENUMS`.

    A single-output model's sidecar has ``output``; a multi-output model's has ``outputs`` (one
    record per output, with unique keys and positions) and, for a LiteRT file, ``signature``; the
    parity record then has ``outputs`` for the same keys.

    Raises:
        ValueError: naming the first key that is missing, unexpected, of the wrong type or has a
            value outside its enumeration.
    """
    _validate(meta, SIDECAR_SCHEMA, "")
    for path, allowed in SIDECAR_ENUMS.items():
        for value in _values_at(meta, path.split(".")):
            if value not in allowed:
                raise ValueError(
                    f"Sidecar key {path!r} must be one of {list(allowed)}. Received: {value!r}."
                )
    if ("output" in meta) == ("outputs" in meta):
        raise ValueError(
            "A sidecar has either 'output' (one output) or 'outputs' (several), "
            f"not {'both' if 'output' in meta else 'neither'}."
        )
    if "outputs" in meta:
        keys = [o["key"] for o in meta["outputs"]]
        indices = sorted(o["index"] for o in meta["outputs"])
        if not keys or len(set(keys)) != len(keys) or indices != list(range(len(keys))):
            raise ValueError(
                "Sidecar key 'outputs' must list each output once: unique keys, positions 0.."
                f"{len(keys) - 1}. Received: keys {keys}, positions {indices}."
            )
        checked = [o["key"] for o in meta["parity"].get("outputs", [])]
        if sorted(checked) != sorted(keys):
            raise ValueError(
                f"Sidecar key 'parity.outputs' must check the outputs {keys}. Received: {checked}."
            )
        if "signature" not in meta and meta["format"] == "tflite":
            raise ValueError(
                "The sidecar of a multi-output LiteRT file lacks the keys ['signature']."
            )
    else:
        for key in ("signature", "parity.outputs"):
            if list(_values_at(meta, key.split("."))):
                raise ValueError(
                    f"Sidecar key {key!r} belongs to a multi-output model "
                    "('outputs'); this one has 'output'."
                )
    if meta["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"Sidecar schema_version must be {SCHEMA_VERSION}. "
            f"Received: {meta['schema_version']!r}."
        )


def _validate(value, spec, path):
    where = path or "(top level)"
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ValueError(f"Sidecar key {where!r} must be an object. Received: {value!r}.")
        required = {k for k in spec if not k.endswith("?")}
        known = {k.rstrip("?"): s for k, s in spec.items()}
        missing = sorted(required - set(value))
        if missing:
            raise ValueError(f"Sidecar object {where!r} lacks the keys {missing}.")
        extra = sorted(set(value) - set(known))
        if extra:
            raise ValueError(
                f"Sidecar object {where!r} has keys the schema does not know: {extra}."
            )
        for k, v in value.items():
            _validate(v, known[k], f"{path}.{k}" if path else k)
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise ValueError(f"Sidecar key {where!r} must be an array. Received: {value!r}.")
        for i, v in enumerate(value):
            _validate(v, spec[0], f"{path}[{i}]")
        return
    for option in spec:  # a tuple of alternatives
        if isinstance(option, (dict, list)):
            try:
                _validate(value, option, path)
                return
            except ValueError:
                continue
        elif isinstance(value, option) and not (isinstance(value, bool) and option is not bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"Sidecar key {where!r} must be finite. Received: {value!r}.")
            return
    raise ValueError(f"Sidecar key {where!r} has the wrong type: {value!r}.")


def sidecar_paths(model_path: str | os.PathLike) -> tuple[str, str]:
    """``(json_path, labels_path)`` written next to ``model_path`` (``out.tflite`` -> ``out.json``,
    ``out.labels.txt``)."""
    stem, _ = os.path.splitext(os.fspath(model_path))
    return stem + ".json", stem + ".labels.txt"


def dumps_sidecar(obj: object, indent: int = 0) -> str:
    """JSON text of a sidecar: objects one key per line, arrays of numbers or strings (and of such
    arrays) on one line. NaN and infinity are refused."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        pad = " " * (indent + 2)
        items = [f"{pad}{json.dumps(k)}: {dumps_sidecar(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        pad = " " * (indent + 2)
        items = [pad + dumps_sidecar(v, indent + 2) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(obj, allow_nan=False)


def sidecar_texts(model_path: str, metadata: dict, labels: list[str] | None) -> dict:
    """``{path: text}`` of the JSON and labels files for ``model_path`` (validated, not written)."""
    json_path, labels_path = sidecar_paths(model_path)
    metadata = dict(metadata)
    metadata["labels_file"] = os.path.basename(labels_path) if labels is not None else None
    validate_sidecar(metadata)
    texts = {json_path: dumps_sidecar(metadata) + "\n"}
    if labels is not None:
        texts[labels_path] = "\n".join(labels) + "\n"
    return texts


def load_metadata(model_path: str | os.PathLike) -> dict:
    """Reads the sidecar JSON of an exported model."""
    json_path, _ = sidecar_paths(model_path)
    with open(json_path) as f:
        return json.load(f)
