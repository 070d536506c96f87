"""Backend-independent preparation shared by the exporters: float32 copies, inputs, references."""

import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras


def load_if_path(
    model: "keras.Model | str | os.PathLike", argname: str = "model"
) -> tuple["keras.Model", str | None]:
    """Returns ``(model, path_or_None)``: a Keras model, loading it when given a ``.keras`` path.

    Raises:
        ValueError: naming ``argname`` when the path is not an existing, readable ``.keras`` file
            or the object is not a Keras model.
    """
    import zipfile

    import keras

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not path.endswith(".keras") or not os.path.isfile(path):
            raise ValueError(
                f"Argument `{argname}` must be a Keras model or the path of an existing .keras "
                f"file. Received: {argname}={path!r}."
            )
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"Argument `{argname}`: {path!r} is not a .keras file (a .keras file is a zip "
                f"archive; this one is not: damaged, or another format). Received: "
                f"{argname}={path!r}."
            )
        from keras_padfree.export._convert import load_model

        try:
            return load_model(path), path
        except Exception as e:  # noqa: BLE001 - any failure to read the file is a bad argument
            raise ValueError(
                f"Argument `{argname}`: {path!r} could not be loaded as a Keras model "
                f"({type(e).__name__}: {e}). Received: {argname}={path!r}."
            ) from e
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Argument `{argname}` must be a keras.Model or a .keras path. "
            f"Received: {argname} of type {type(model).__name__}."
        )
    return model, None


def static_input_shape(model, input_shape=None):
    """The (H, W, C) the exported file takes: the model's, or ``input_shape`` for None dims."""
    if len(model.inputs) != 1:
        raise ValueError(
            f"Only single-input models can be exported; {model.name!r} has {len(model.inputs)} "
            "inputs."
        )
    shape = tuple(model.inputs[0].shape[1:])
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if (
            len(input_shape) != len(shape)
            or any(not isinstance(d, int) or d < 1 for d in input_shape)
            or any(m is not None and m != d for m, d in zip(shape, input_shape))
        ):
            raise ValueError(
                f"Argument `input_shape` must be {len(shape)} positive ints matching the model's "
                f"input {shape} where it is fixed. Received: input_shape={input_shape!r}."
            )
        return input_shape
    if any(d is None for d in shape):
        raise ValueError(
            f"The model's input shape {shape} has unknown dimensions; TFLite files need a static "
            "shape. Pass `input_shape=(H, W, C)`."
        )
    return tuple(int(d) for d in shape)


def _is_float32(model):
    for layer in model._flatten_layers(include_self=True):
        policy = getattr(layer, "dtype_policy", None)
        if policy is None:
            continue
        if policy.compute_dtype != "float32" or policy.variable_dtype != "float32":
            return False
    return True


def _float32_config(obj):
    """Rewrites every dtype policy in a serialised config to plain float32."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "dtype" and _is_policy(v):
                out[k] = "float32"
            else:
                out[k] = _float32_config(v)
        return out
    if isinstance(obj, list):
        return [_float32_config(v) for v in obj]
    return obj


def _is_policy(v):
    if isinstance(v, str):
        return v.startswith("mixed_") or v in ("float16", "bfloat16", "float32")
    if isinstance(v, dict):
        return "Policy" in str(v.get("class_name", ""))
    return False


def float32_copy(model):
    """``model`` itself when it computes in float32; otherwise a float32 rebuild with its weights.

    A mixed-precision model (``mixed_float16`` / ``mixed_bfloat16``) keeps float32 variables, so
    rebuilding it from its config under the float32 policy and copying the weights gives the same
    network computed in float32, which is what the converters expect.
    """
    import keras

    if _is_float32(model):
        return model
    config = _float32_config(keras.saving.serialize_keras_object(model))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        import keras_padfree.applications  # noqa: F401 - registers the zoo's layers
        import keras_padfree.layers  # noqa: F401

        copy = keras.saving.deserialize_keras_object(config)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(
        [
            np.asarray(keras.ops.convert_to_numpy(w), dtype="float32")
            if np.issubdtype(np.asarray(keras.ops.convert_to_numpy(w)).dtype, np.floating)
            else keras.ops.convert_to_numpy(w)
            for w in model.get_weights()
        ]
    )
    if not _is_float32(copy):
        raise RuntimeError(f"Could not make a float32 copy of {model.name!r}.")
    return copy


def as_array(data, input_shape, limit, argname):
    """Stacks images from an array, a list, a tf.data.Dataset or an iterable of batches.

    Elements may be ``images`` or ``(images, labels)``; batched or single images. At most ``limit``
    images are taken. Returns float32 (N, H, W, C).
    """
    if data is None:
        return None
    if callable(data) and not hasattr(data, "__iter__"):
        data = data()
    if isinstance(data, np.ndarray) or hasattr(data, "__array__") and not hasattr(data, "take"):
        arr = np.asarray(data, dtype="float32")
        if arr.ndim == len(input_shape):
            arr = arr[None]
        chunks = [arr[:limit]]
    else:
        chunks, n = [], 0
        for item in data:
            if isinstance(item, (tuple, list)):
                item = item[0]
            if isinstance(item, dict):
                item = next(iter(item.values()))
            arr = np.asarray(item, dtype="float32")
            if arr.ndim == len(input_shape):
                arr = arr[None]
            chunks.append(arr)
            n += arr.shape[0]
            if n >= limit:
                break
    if not chunks:
        raise ValueError(f"Argument `{argname}` yielded no images.")
    arr = np.concatenate(chunks, axis=0)[:limit]
    if tuple(arr.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"Argument `{argname}` must hold images of shape {tuple(input_shape)}. "
            f"Received images of shape {tuple(arr.shape[1:])}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"Argument `{argname}` yielded no images.")
    return np.ascontiguousarray(arr)


def synthetic_images(input_shape, count, normalization, seed=0):
    """Deterministic test images: smooth random colour fields + noise, normalised like real input.

    Only for parity checks (and tests): they exercise the whole value range the model sees after
    normalisation without any dataset.
    """
    rng = np.random.default_rng(seed)
    h, w, c = input_shape
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    images = []
    for _ in range(count):
        base = np.empty((h, w, c), "float64")
        for ch in range(c):
            a, b, p = rng.uniform(-3, 3, size=3)
            base[..., ch] = 0.5 + 0.5 * np.sin(a * xx * np.pi + b * yy * np.pi + p)
        base += rng.normal(0, 0.08, size=base.shape)
        pixels = np.clip(base, 0, 1) * 255.0
        images.append(pixels)
    pixels = np.stack(images).astype("float32")
    scale = np.float32(normalization["pixel_scale"])
    mean = np.asarray(normalization["mean"][:c], "float32")
    std = np.asarray(normalization["std"][:c], "float32")
    return ((pixels * scale - mean) / std).astype("float32")


def keras_outputs(model, x, batch_size=8):
    """The model's inference outputs (training=False) as a float32 numpy array."""
    import keras

    outs = []
    for i in range(0, x.shape[0], batch_size):
        y = model(x[i : i + batch_size], training=False)
        outs.append(np.asarray(keras.ops.convert_to_numpy(y), dtype="float32"))
    return np.concatenate(outs, axis=0)


def output_keys(model: "keras.Model") -> list[str] | None:
    """None for a model with one output tensor; else the names of its outputs, in the model's order.

    A dict output gives its keys (a ``features_only`` backbone: ``"P0"``, ``"P1"``, ...); a list
    or tuple gives ``"output_0"``, ``"output_1"``, ... (the names Keras' LiteRT export gives them in
    the file's signature). A list of one tensor is a multi-output model of one output.

    Raises:
        ValueError: naming ``model`` when the outputs are nested (a dict of lists, ...) or a dict
            key is not a non-empty string.
    """
    out = model.output
    if isinstance(out, dict):
        items = list(out.items())
        bad = [k for k, _ in items if not isinstance(k, str) or not k]
        if bad:
            raise ValueError(
                f"Argument `model`: the output dict of {model.name!r} has keys that are not "
                f"non-empty strings: {bad!r}; every output needs a name in the exported file."
            )
        keys = [k for k, _ in items]
        values = [v for _, v in items]
    elif isinstance(out, (list, tuple)):
        keys = [f"output_{i}" for i in range(len(out))]
        values = list(out)
    else:
        return None
    nested = [k for k, v in zip(keys, values) if isinstance(v, (dict, list, tuple))]
    if nested:
        raise ValueError(
            f"Argument `model`: the outputs of {model.name!r} are nested ({nested} hold more "
            "than one tensor); only a single output, a flat list or a flat dict of tensors can be "
            "exported. Rebuild it as keras.Model(inputs, {name: tensor, ...})."
        )
    return keys


def output_tensors(model: "keras.Model") -> dict:
    """``{name: symbolic output tensor}`` of a multi-output model (see :func:`output_keys`)."""
    keys = output_keys(model)
    if keys is None:
        raise ValueError(f"{model.name!r} has a single output tensor.")
    out = model.output
    values = list(out.values()) if isinstance(out, dict) else list(out)
    return dict(zip(keys, values))


def keras_output_dict(model, x, batch_size=8):
    """The inference outputs (training=False) of a multi-output model as ``{name: float32 array}``
    (names from :func:`output_keys`, in the model's order)."""
    import keras

    keys = output_keys(model)
    chunks = {k: [] for k in keys}
    for i in range(0, x.shape[0], batch_size):
        y = model(x[i : i + batch_size], training=False)
        values = [y[k] for k in keys] if isinstance(y, dict) else list(y)
        if len(values) != len(keys):
            raise RuntimeError(f"{model.name!r} returned {len(values)} outputs, not {len(keys)}.")
        for k, v in zip(keys, values):
            chunks[k].append(np.asarray(keras.ops.convert_to_numpy(v), dtype="float32"))
    return {k: np.concatenate(v, axis=0) for k, v in chunks.items()}


def _tensor_activation(tensor):
    """ "softmax" when the layer producing the symbolic ``tensor`` is a softmax, else None."""
    import keras

    history = getattr(tensor, "_keras_history", None)
    layer = history.operation if history is not None else None
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is not None and getattr(act, "__name__", "") == "softmax":
        return "softmax"
    return None


def output_activations(model: "keras.Model") -> dict:
    """``{name: "softmax" or None}`` for each output of a multi-output model: whether the layer
    that produces it ends in a softmax."""
    return {k: _tensor_activation(t) for k, t in output_tensors(model).items()}


def output_activation(model):
    """ "softmax" when the model ends in a softmax activation, else None (logits or features)."""
    import keras

    last = model.layers[-1]
    act = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax):
        return "softmax"
    if act is not None and getattr(act, "__name__", "") == "softmax":
        return "softmax"
    return None


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def as_probabilities(y, activation):
    """Probabilities of a classifier output (softmax applied to logits); features pass through."""
    if activation == "softmax" or y.ndim != 2:
        return y
    return softmax(y.astype("float64")).astype("float32")
