"""What an app needs next to an exported model: input size/layout/normalisation, labels.

The sidecar JSON describes the model's input and output in words and numbers (no Python needed):
the input tensor's shape, layout (NHWC), dtype, colour order, how pixels become the model's input
(``x = (pixel / 255 - mean) / std`` or "the model normalises internally"), the output's meaning and
the quantisation parameters of both tensors.
"""

import json
import os

import numpy as np

SCHEMA_VERSION = 1

# Per-channel statistics of the papers' pipelines (RGB order, on pixels scaled to [0, 1]).
CIFAR100_MEAN = (0.5070751592371323, 0.48654887331495095, 0.4409178433670343)
CIFAR100_STD = (0.2673342858792401, 0.2564384629170883, 0.27615047132568404)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                  "truck")
# CIFAR-100 fine labels in the dataset's index order.
CIFAR100_LABELS = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

_DATASET_LABELS = {"cifar10": CIFAR10_LABELS, "cifar100": CIFAR100_LABELS}


def sidecar_paths(model_path):
    """``(json_path, labels_path)`` written next to ``model_path`` (``out.tflite`` -> ``out.json``,
    ``out.labels.txt``)."""
    stem, _ = os.path.splitext(os.fspath(model_path))
    return stem + ".json", stem + ".labels.txt"


def mean_std_normalization(mean, std):
    """A normalisation record ``x = (pixel / 255 - mean) / std`` (per RGB channel)."""
    mean = [float(v) for v in np.broadcast_to(np.asarray(mean, "float64"), (3,))]
    std = [float(v) for v in np.broadcast_to(np.asarray(std, "float64"), (3,))]
    if any(s <= 0 for s in std):
        raise ValueError(f"Normalisation `std` must be positive. Received: std={std}.")
    lo = [(0.0 - m) / s for m, s in zip(mean, std)]
    hi = [(1.0 - m) / s for m, s in zip(mean, std)]
    return {
        "type": "mean_std",
        "description": "x = (pixel / 255 - mean) / std, per RGB channel",
        "pixel_scale": 1.0 / 255.0,
        "mean": mean,
        "std": std,
        "value_range": [min(lo), max(hi)],
        "value_range_per_channel": [[a, b] for a, b in zip(lo, hi)],
    }


def internal_normalization(raw_pixels=False):
    """A normalisation record for models that normalise internally.

    They take pixels / 255 in [0, 1] (a learnable input BN), or with ``raw_pixels`` the pixels
    themselves in [0, 255] (an in-model Rescaling, e.g. PydMobileNet's ``include_preprocessing``).
    """
    return {
        "type": "internal",
        "description": ("x = pixel (0-255); the model rescales and normalises internally"
                        if raw_pixels else
                        "x = pixel / 255; the model normalises internally (learnable input BN)"),
        "pixel_scale": 1.0 if raw_pixels else 1.0 / 255.0,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "value_range": [0.0, 255.0 if raw_pixels else 1.0],
    }


def _data_module_normalization(model_name, dataset):
    """The training pipeline's normalisation, when ``keras_padfree.data`` describes it."""
    try:
        from keras_padfree import data as kp_data
    except Exception:  # noqa: BLE001 - the data package is optional here
        return None
    fn = getattr(kp_data, "normalization_for", None)
    if fn is None:
        return None
    try:
        spec = fn(model_name=model_name, dataset=dataset)
    except Exception:  # noqa: BLE001 - unknown model/dataset: fall back to the table below
        return None
    if spec is None:
        return None
    if isinstance(spec, str) and spec == "internal":
        return internal_normalization()
    if isinstance(spec, dict) and "mean" in spec and "std" in spec:
        return mean_std_normalization(spec["mean"], spec["std"])
    return None


def _input_layer_normalization(model):
    """The record of a model that normalises its own input, else None.

    The image input feeding straight into a ``Rescaling`` means raw pixels in [0, 255]; into a
    BatchNormalization (the BSConv ``data_bn``) or a Normalization, pixels / 255 in [0, 1].
    """
    import keras

    try:
        inp = model.inputs[0]
    except (AttributeError, IndexError):
        return None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            if any(t is inp for t in node.input_tensors):
                if isinstance(layer, keras.layers.Rescaling):
                    return internal_normalization(raw_pixels=True)
                if isinstance(layer, (keras.layers.BatchNormalization,
                                      keras.layers.Normalization)):
                    return internal_normalization()
                return None
    return None


def resolve_normalization(normalization, model, model_name=None, dataset=None):
    """Turns the ``normalization`` argument of the exporters into a sidecar record.

    Args:
        normalization: "auto", "internal", "none" (model input is pixel / 255 as-is), or a dict
            ``{"mean": [...], "std": [...]}`` (on pixels scaled to [0, 1]).
        model: the Keras model (to detect an input BatchNormalization).
        model_name: registry name, if known (to look up the training dataset).
        dataset: training dataset name, if known ("cifar100", "cifar10", "imagenet", ...).
    """
    if isinstance(normalization, dict):
        if set(normalization) - {"mean", "std"} or not {"mean", "std"} <= set(normalization):
            raise ValueError(
                "Argument `normalization` as a dict must have exactly the keys 'mean' and 'std'. "
                f"Received: normalization={normalization!r}."
            )
        return mean_std_normalization(normalization["mean"], normalization["std"])
    if normalization == "internal":
        return internal_normalization()
    if normalization == "none":
        rec = internal_normalization()
        rec.update(type="none", description="x = pixel / 255 (no normalisation)")
        return rec
    if normalization != "auto":
        raise ValueError(
            "Argument `normalization` must be 'auto', 'internal', 'none' or a dict with 'mean' and "
            f"'std'. Received: normalization={normalization!r}."
        )
    if model_name is not None and dataset is None:
        dataset = _registry_dataset(model_name)
    rec = _data_module_normalization(model_name, dataset)
    if rec is not None:
        return rec
    rec = _input_layer_normalization(model)
    if rec is not None:
        return rec
    ds = (dataset or "").lower().replace("-", "").replace("_", "")
    if ds.startswith("cifar"):
        return mean_std_normalization(CIFAR100_MEAN, CIFAR100_STD)
    return mean_std_normalization(IMAGENET_MEAN, IMAGENET_STD)


def _registry_dataset(model_name):
    try:
        from keras_padfree.applications import get_model_info

        return get_model_info(model_name).dataset
    except Exception:  # noqa: BLE001 - not a registry name
        return None


def resolve_labels(labels, classes, model_name=None, dataset=None):
    """The class names written to the labels file (one per line, index order)."""
    if labels is not None:
        labels = [str(v) for v in labels]
        if classes is not None and len(labels) != classes:
            raise ValueError(
                f"Argument `labels` must have one name per class ({classes}). "
                f"Received {len(labels)} labels."
            )
        if any("\n" in v for v in labels):
            raise ValueError("Argument `labels`: a label may not contain a newline.")
        return labels
    if model_name is not None and dataset is None:
        dataset = _registry_dataset(model_name)
    key = (dataset or "").lower().replace("-", "").replace("_", "")
    known = _DATASET_LABELS.get(key)
    if known is not None and classes == len(known):
        return list(known)
    return [f"class_{i}" for i in range(classes or 0)]


def write_sidecars(model_path, metadata, labels):
    """Writes the JSON metadata and the labels file next to ``model_path``; returns their paths."""
    json_path, labels_path = sidecar_paths(model_path)
    metadata = dict(metadata)
    metadata["labels_file"] = os.path.basename(labels_path) if labels is not None else None
    with open(json_path, "w") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    if labels is not None:
        with open(labels_path, "w") as f:
            f.write("\n".join(labels) + "\n")
    return json_path, labels_path if labels is not None else None


def load_metadata(model_path):
    """Reads the sidecar JSON of an exported model."""
    json_path, _ = sidecar_paths(model_path)
    with open(json_path) as f:
        return json.load(f)


def preprocess_pixels(pixels, metadata):
    """Applies the sidecar's normalisation to uint8-range RGB pixels (what an app does)."""
    norm = metadata["input"]["normalization"]
    x = np.asarray(pixels, "float32") * np.float32(norm["pixel_scale"])
    mean = np.asarray(norm["mean"], "float32")
    std = np.asarray(norm["std"], "float32")
    return (x - mean) / std
