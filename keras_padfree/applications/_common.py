"""The keras.applications-style arguments every zoo builder shares: checks, input, weights.

Used by the one builder (:mod:`keras_padfree.applications._builder`): :func:`validate_args` at the
top, :func:`model_inputs` for the input, :func:`load_weights` at the end.
"""

import io
import json
import os
import tempfile
import zipfile

import keras

from keras_padfree.layers._utils import make_divisible  # noqa: F401 (re-exported)

POOLINGS = (None, "avg", "max")
WEIGHT_SUFFIXES = (".weights.h5", ".keras")
CLASSIFIER_NAME = "predictions"


def validate_args(
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    extra_weight_suffixes=(),
):
    """Checks the shared arguments up front; raises ValueError naming the argument."""
    if not isinstance(include_top, bool):
        raise ValueError(
            f"Argument `include_top` must be True or False. Received: include_top={include_top!r}."
        )
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(
            f"Argument `classes` must be an integer >= 1. Received: classes={classes!r}."
        )
    if pooling not in POOLINGS:
        raise ValueError(
            'Argument `pooling` must be one of None, "avg" or "max". Received: '
            f"pooling={pooling!r}."
        )
    if classifier_activation is not None and not isinstance(classifier_activation, str):
        raise ValueError(
            "Argument `classifier_activation` must be a string (e.g. 'softmax') or None. "
            f"Received: classifier_activation={classifier_activation!r}."
        )
    if classifier_activation is not None:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError) as e:
            raise ValueError(
                "Argument `classifier_activation` is not a Keras activation. "
                f"Received: classifier_activation={classifier_activation!r}."
            ) from e
    suffixes = tuple(WEIGHT_SUFFIXES) + tuple(extra_weight_suffixes)
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise ValueError(
                f"Argument `weights` must be None or the path of a {' / '.join(suffixes)} file "
                f"(no pretrained weights can be downloaded). Received: weights={weights!r}."
            )
        path = os.fspath(weights)
        if not path.endswith(suffixes):
            raise ValueError(
                f"Argument `weights` must be None or a path ending in {' or '.join(suffixes)}. "
                f"Received: weights={path!r}."
            )
        if not os.path.isfile(path):
            raise ValueError(
                f"Argument `weights` names a file that does not exist. Received: weights={path!r}."
            )
    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise ValueError(
            "Argument `input_tensor` must be a symbolic tensor from `keras.Input()`. "
            f"Received: input_tensor={input_tensor!r} (of type {type(input_tensor).__name__})."
        )
    if input_shape is not None:
        if (
            not isinstance(input_shape, (tuple, list))
            or len(input_shape) != 3
            or any(
                d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1)
                for d in input_shape
            )
        ):
            raise ValueError(
                "Argument `input_shape` must be a tuple (height, width, channels) of positive "
                f"integers (or None for height/width). Received: input_shape={input_shape!r}."
            )


def model_inputs(input_tensor, input_shape, *, default_size, min_size, model_name, channels=3):
    """Returns ``(inputs, x)``: the model's Input(s) and the image tensor to build on.

    Checks that the spatial size is at least ``min_size`` (the smallest input the network's
    downsampling chain leaves at least one pixel for), naming it in the error.
    """
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
        inputs = keras.utils.get_source_inputs(input_tensor)
        x = input_tensor
    else:
        shape = (
            tuple(input_shape)
            if input_shape is not None
            else (default_size, default_size, channels)
        )
        inputs = keras.Input(shape=shape, name="image")
        x = inputs
    if len(shape) != 3:
        raise ValueError(
            f"{model_name} takes images of shape (height, width, channels). Received input shape "
            f"{shape}."
        )
    for d in shape[:2]:
        if d is not None and d < min_size:
            raise ValueError(
                f"Input size must be at least {min_size}x{min_size} for {model_name}; its "
                f"downsampling chain leaves no pixel below that. Received: input_shape={shape}."
            )
    return inputs, x


def classifier_activation_layer(x, classifier_activation):
    """Applies the classifier activation (None/"linear" leaves logits)."""
    if classifier_activation in (None, "linear"):
        return x
    return keras.layers.Activation(classifier_activation, name="predictions_activation")(x)


def _file_classes(path):
    """The number of classes of a saved model's "predictions" layer, or None if unknown."""
    if path.endswith(".keras"):
        try:
            with zipfile.ZipFile(path) as zf:
                config = json.loads(zf.read("config.json"))
        except (KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return None
        for layer in config.get("config", {}).get("layers", []):
            if layer.get("config", {}).get("name") == CLASSIFIER_NAME:
                cfg = layer["config"]
                return cfg.get("units") or cfg.get("filters")
    return None


def _layout(h5file):
    """``{tensor key: shape}`` of a Keras weights file (keys follow layer classes and order)."""
    layout = {}
    h5file.visititems(
        lambda key, obj: (
            layout.__setitem__(key, tuple(obj.shape)) if hasattr(obj, "shape") else None
        )
    )
    return layout


def file_layout(path):
    """The weight layout of a ``.weights.h5`` or ``.keras`` file; a clear error if unreadable."""
    import h5py

    kind = ".keras model" if path.endswith(".keras") else ".weights.h5"
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as zf:
                data = zf.read("model.weights.h5")
            with h5py.File(io.BytesIO(data), "r") as f:
                return _layout(f)
        with h5py.File(path, "r") as f:
            return _layout(f)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"Argument `weights` names {path!r}, which is not a readable {kind} file ({e}). "
            "Pass a file written by Keras (model.save_weights() / model.save()), or weights=None."
        ) from e


def model_layout(model):
    """The weight layout ``model.save_weights`` would write."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.weights.h5")
        model.save_weights(path)
        return file_layout(path)


def _check_layout(model, path, *, include_top, classes):
    got, want = file_layout(path), model_layout(model)
    missing = [k for k in want if k not in got]
    differ = [(k, got[k], want[k]) for k in want if k in got and got[k] != want[k]]
    # Only the classifier differs (its kernel and bias end in the number of classes).
    if (
        include_top
        and differ
        and not missing
        and all(w[-1] == classes and g[:-1] == w[:-1] for _, g, w in differ)
    ):
        file_classes = sorted({g[-1] for _, g, _ in differ})
        raise ValueError(
            f"The weights file {path!r} has a {file_classes[0]}-class classifier, but the model "
            f"was built with classes={classes}. Pass classes={file_classes[0]}, or "
            "include_top=False to reuse the backbone."
        )
    extra = [k for k in got if k not in want] if include_top else []
    if missing or differ or extra:
        parts = []
        if differ:
            key, g, w = differ[0]
            parts.append(
                f"{len(differ)} tensors differ in shape (first: {key}: {g} in the file, "
                f"{w} in the model)"
            )
        if missing:
            parts.append(
                f"{len(missing)} tensors of the model are not in the file (first: {missing[0]})"
            )
        if extra:
            parts.append(
                f"{len(extra)} tensors of the file have no place in the model (first: {extra[0]})"
            )
        raise ValueError(
            f"The weights file {path!r} holds another architecture than {model.name!r}: "
            + "; ".join(parts)
            + ". Build the model the file was saved from (same registry name, "
            "arguments and classes), or pass weights=None."
        )


def load_weights(model, weights, *, include_top, classes):
    """Loads a ``.weights.h5`` or ``.keras`` file into ``model`` with clear errors.

    The file's weight layout is compared with the model's first, so that a file of another
    architecture is refused with what differs instead of being loaded in part.
    """
    path = os.fspath(weights)
    file_classes = _file_classes(path)
    if include_top and file_classes is not None and file_classes != classes:
        raise ValueError(
            f"The weights file {path!r} has a {file_classes}-class classifier, but the model was "
            f"built with classes={classes}. Pass classes={file_classes}, or include_top=False to "
            "reuse the backbone."
        )
    _check_layout(model, path, include_top=include_top, classes=classes)
    try:
        model.load_weights(path)
    except Exception as e:  # noqa: BLE001 - re-raised with the reason users need
        raise ValueError(
            f"The weights file {path!r} could not be loaded into {model.name!r}: {e}"
        ) from e
