"""The keras.applications-style arguments every zoo builder shares: checks, input, weights.

Used by the one builder (:mod:`keras_padfree.applications._builder`): :func:`validate_args` at the
top, :func:`model_inputs` for the input, :func:`load_weights` at the end.
"""

import json
import os
import zipfile

import keras

from keras_padfree.layers._utils import make_divisible  # noqa: F401 (re-exported)

POOLINGS = (None, "avg", "max")
WEIGHT_SUFFIXES = (".weights.h5", ".keras")
CLASSIFIER_NAME = "predictions"


def validate_args(*, include_top, weights, input_tensor, input_shape, pooling, classes,
                  classifier_activation, extra_weight_suffixes=()):
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
            f'Argument `pooling` must be one of None, "avg" or "max". Received: pooling={pooling!r}.'
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
        if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
                or any(d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1)
                       for d in input_shape)):
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
        shape = tuple(input_shape) if input_shape is not None else (default_size, default_size,
                                                                      channels)
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


def _h5_shapes(path):
    import h5py

    shapes = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: shapes.append(tuple(o.shape)) if hasattr(o, "shape") else None)
    return shapes


def load_weights(model, weights, *, include_top, classes):
    """Loads a ``.weights.h5`` or ``.keras`` file into ``model`` with clear errors."""
    path = os.fspath(weights)
    classifier = None
    if include_top:
        try:
            classifier = model.get_layer(CLASSIFIER_NAME)
        except ValueError:
            classifier = None
    file_classes = _file_classes(path)
    if include_top and file_classes is not None and file_classes != classes:
        raise ValueError(
            f"The weights file {path!r} has a {file_classes}-class classifier, but the model was "
            f"built with classes={classes}. Pass classes={file_classes}, or include_top=False to "
            "reuse the backbone."
        )
    try:
        model.load_weights(path)
    except Exception as e:  # noqa: BLE001 - re-raised with the reason users need
        if include_top and classifier is not None and path.endswith(".h5"):
            kernel_shape = tuple(classifier.weights[0].shape)
            shapes = _h5_shapes(path)
            if kernel_shape not in shapes:
                others = sorted({s[-1] for s in shapes if len(s) == len(kernel_shape)
                                 and s[:-1] == kernel_shape[:-1]})
                raise ValueError(
                    f"The weights file {path!r} does not fit include_top=True with "
                    f"classes={classes}: its classifier has {others or 'another number of'} "
                    "classes. Pass the file's number of classes, or include_top=False."
                ) from e
        raise ValueError(
            f"The weights file {path!r} does not match the architecture of {model.name!r}: {e}"
        ) from e
