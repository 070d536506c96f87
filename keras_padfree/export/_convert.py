"""The TensorFlow side of the exporters: Keras model -> .tflite / .onnx bytes.

TFLite conversion needs the TensorFlow backend. Under JAX or PyTorch, :mod:`keras_padfree.export`
saves the model to ``.keras`` and runs this module in a subprocess with ``KERAS_BACKEND=tensorflow``
(``python -m keras_padfree.export._convert --model-path m.keras --output m.tflite ...``); the
``.keras`` format stores backend-independent weights, so the reloaded model computes the same
function.

The conversion goes through ``tf.lite.TFLiteConverter.from_saved_model`` (the route TensorFlow
documents for Keras 3 models) from a SavedModel whose one function calls the model with
``training=False``. By default that SavedModel holds the weights as constants of the graph
(``route="constants"``): what the converter freezes the variables into anyway, without writing and
reloading the variables, their checkpoint and their save/restore functions, which took most of an
export's time (GhostNet-PF at 32x32: 21.7 s -> 5.1 s, benchmarks/results/export_time.md). The
files have the same signature, input and output names, operators and outputs as the variables
routes' (tested). The variables routes stay for models too large for one GraphDef: Keras' own
``model.export(format="litert")`` where the installed Keras (3.15 and later) implements it as an
``ExportArchive`` SavedModel, and on Keras 3.10-3.14 (which convert with ``from_keras_model``)
the same ExportArchive steps taken here (``route="archive"``); those two give byte-identical files
(tested). This module chooses the converter settings: a static batch-1 input signature, the
quantisation options, and TFLite builtin ops only (Keras' default also allows ``SELECT_TF_OPS``,
which would need the Flex delegate on Android), so the file runs on the plain LiteRT runtime.
``from_concrete_functions`` is never used (it silently produces wrong models in this TensorFlow
version).
"""

import argparse
import contextlib
import os
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import numpy as np

QUANTIZATIONS = (None, "float16", "dynamic", "int8")


def _require_tensorflow_backend(what):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} runs under the TensorFlow backend only (KERAS_BACKEND=tensorflow); the "
            f"current backend is {keras.backend.backend()!r}. keras_padfree.export handles this "
            "by running the conversion in a TensorFlow subprocess."
        )


def keras_litert_export_available() -> bool:
    """Whether the installed Keras' ``model.export(format="litert")`` takes the ExportArchive ->
    ``from_saved_model`` route (Keras >= 3.15), the one this project trusts."""
    import keras

    try:
        major, minor = (int(v) for v in keras.__version__.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (3, 15)


def _converter_settings(quantization, representative, int8_io):
    """``(target_spec, attributes)`` of the TFLiteConverter for a quantisation."""
    import numpy as np
    import tensorflow as tf

    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is None:
        return {"supported_ops": builtins}, {}
    if quantization == "float16":
        return (
            {"supported_ops": builtins, "supported_types": [tf.float16]},
            {"optimizations": [tf.lite.Optimize.DEFAULT]},
        )
    if quantization == "dynamic":
        return {"supported_ops": builtins}, {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if representative is None or len(representative) == 0:
        raise ValueError("int8 quantisation needs representative (calibration) data.")
    data = np.asarray(representative, dtype="float32")

    def gen():
        for i in range(data.shape[0]):
            yield [data[i : i + 1]]

    attributes = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": gen}
    if int8_io:
        attributes.update(inference_input_type=tf.int8, inference_output_type=tf.int8)
    return {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}, attributes


def _keras_route(model, spec, target_spec, attributes, tmp):
    path = os.path.join(tmp, "model.tflite")
    model.export(
        path,
        format="litert",
        input_signature=[spec],
        verbose=False,
        target_spec=target_spec,
        **attributes,
    )
    with open(path, "rb") as f:
        return f.read()


def _archive_route(model, spec, target_spec, attributes, tmp):
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
    archive.write_out(tmp, verbose=False)
    # experimental_enable_resource_variables: as Keras' own route sets it.
    return _from_saved_model(tmp, target_spec, attributes, resource_variables=True)


def _from_saved_model(path, target_spec, attributes, resource_variables=False):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    if resource_variables:
        converter.experimental_enable_resource_variables = True
    for key, value in target_spec.items():
        setattr(converter.target_spec, key, value)
    for key, value in attributes.items():
        setattr(converter, key, value)
    return converter.convert()


# A GraphDef (which holds the weights in the "constants" route) must stay under protobuf's 2 GiB;
# models with more weight bytes than this take the variables routes.
CONSTANTS_ROUTE_MAX_BYTES = 1 << 30


def _weight_bytes(model):
    import numpy as np

    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.variables)


def _constants_route(model, spec, target_spec, attributes, tmp):
    """A SavedModel whose graph holds the weights as constants, through ``from_saved_model``.

    The ``serving_default`` function calls the model with ``training=False`` inside a
    ``keras.StatelessScope`` that maps every variable to a constant of its current value: the
    graph the converter reads is the one the variables routes freeze, without the variables, their
    checkpoint and the save/restore functions TensorFlow builds for them (3.9-4.6x faster,
    benchmarks/results/export_time.md). Signature, input and output names are the ones the
    variables routes give.
    """
    import keras
    import tensorflow as tf

    mapping = [(v, tf.constant(keras.ops.convert_to_numpy(v))) for v in model.variables]

    @tf.function(input_signature=[spec])
    def serve(x):
        with keras.StatelessScope(state_mapping=mapping):
            return model(x, training=False)

    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, tmp, signatures={"serving_default": serve})
    return _from_saved_model(tmp, target_spec, attributes)


ROUTES = {"constants": _constants_route, "keras": _keras_route, "archive": _archive_route}


def convert_tflite(
    model: "keras.Model",
    *,
    input_shape: tuple,
    quantization: str | None = None,
    representative: "np.ndarray | None" = None,
    int8_io: bool = False,
    route: str = "auto",
    litert_forms: bool = True,
) -> bytes:
    """Converts a Keras model (TensorFlow backend) to TFLite flatbuffer bytes.

    Args:
        model: a single-input Keras model under the TensorFlow backend, float32.
        input_shape: (H, W, C); the file has the static input shape (1, H, W, C).
        quantization: None (float32), "float16" (float16 weights), "dynamic" (int8 weights,
            dynamic-range activations) or "int8" (full integer: int8 weights and activations).
        representative: float32 array (N, H, W, C) of calibration inputs, required for "int8".
        int8_io: with "int8", make the model's input and output int8 tensors too (otherwise they
            stay float32 and the file quantises/dequantises at its borders).
        route: "constants" (the weights as graph constants, see :func:`_constants_route`),
            "keras" (``model.export(format="litert")``), "archive" (the same steps taken here,
            for Keras < 3.15) or "auto": "constants", or for a model with over
            ``CONSTANTS_ROUTE_MAX_BYTES`` of weights Keras' route where it takes the ExportArchive
            steps, else "archive".
        litert_forms: trace the layers' LiteRT forms (:func:`keras_padfree.layers._utils.
            litert_forms`); False converts the reference's form (benchmarks compare the two).
    """
    _require_tensorflow_backend("TFLite conversion")
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Argument `quantization` must be one of {list(QUANTIZATIONS)}. "
            f"Received: quantization={quantization!r}."
        )
    if route != "auto" and route not in ROUTES:
        raise ValueError(
            f"Argument `route` must be 'auto' or one of {list(ROUTES)}. Received: route={route!r}."
        )
    if route == "auto":
        if _weight_bytes(model) <= CONSTANTS_ROUTE_MAX_BYTES:
            route = "constants"
        else:
            route = "keras" if keras_litert_export_available() else "archive"
    target_spec, attributes = _converter_settings(quantization, representative, int8_io)
    spec = tf.TensorSpec((1,) + tuple(input_shape), tf.float32, name="image")
    convert = ROUTES[route]
    from keras_padfree.layers import _utils

    forms = _utils.litert_forms() if litert_forms else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="keras_padfree_litert_") as tmp, forms:
        return convert(model, spec, target_spec, attributes, tmp)


def convert_onnx(model, path, *, input_shape, opset=None):
    """Writes an ONNX file with a dynamic batch axis via Keras' ``model.export(format="onnx")``."""
    _require_tensorflow_backend("ONNX conversion of a TensorFlow model")
    import keras

    kwargs = {}
    if opset is not None:
        kwargs["opset_version"] = opset
    spec = keras.InputSpec(shape=(None,) + tuple(input_shape), dtype="float32")
    with _normalization_constants_as_arrays(model):
        model.export(path, format="onnx", input_signature=[spec], verbose=False, **kwargs)


@contextlib.contextmanager
def _normalization_constants_as_arrays(model):
    """Temporarily holds the mean/variance of every ``Normalization`` built from given values as
    NumPy arrays instead of eager tensors.

    The traced function captures eager tensors as extra inputs, which tf2onnx turns into extra ONNX
    graph inputs (``.../Sub/y:0``, ``.../Sqrt/x:0``) that onnxruntime then demands; arrays become
    constants of the graph. The values, and so the function, are unchanged.
    """
    import keras
    import numpy as np

    saved = []
    for layer in model._flatten_layers(include_self=False):
        if (
            isinstance(layer, keras.layers.Normalization)
            and layer.input_mean is not None
            and layer.built
        ):
            saved.append((layer, layer.mean, layer.variance))
            layer.mean = np.asarray(keras.ops.convert_to_numpy(layer.mean))
            layer.variance = np.asarray(keras.ops.convert_to_numpy(layer.variance))
    try:
        yield
    finally:
        for layer, mean, variance in saved:
            layer.mean, layer.variance = mean, variance


def load_model(path):
    """Loads a ``.keras`` file with every keras_padfree layer registered."""
    import keras

    import keras_padfree.applications  # noqa: F401 - registers the zoo's layers and blocks
    import keras_padfree.layers  # noqa: F401

    return keras.saving.load_model(path, compile=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--format", choices=("tflite", "onnx"), default="tflite")
    parser.add_argument("--input-shape", required=True, help="H,W,C")
    parser.add_argument("--quantization", default="none")
    parser.add_argument("--representative", default=None, help=".npy of calibration inputs")
    parser.add_argument("--int8-io", action="store_true")
    parser.add_argument("--opset", type=int, default=None)
    args = parser.parse_args(argv)

    import numpy as np

    input_shape = tuple(int(v) for v in args.input_shape.split(","))
    model = load_model(args.model_path)
    if args.format == "onnx":
        convert_onnx(model, args.output, input_shape=input_shape, opset=args.opset)
        return 0
    quantization = None if args.quantization == "none" else args.quantization
    representative = np.load(args.representative) if args.representative else None
    data = convert_tflite(
        model,
        input_shape=input_shape,
        quantization=quantization,
        representative=representative,
        int8_io=args.int8_io,
    )
    with open(args.output, "wb") as f:
        f.write(data)
    return 0


def run_in_tensorflow_subprocess(argv):
    """Runs :func:`main` in a fresh Python with ``KERAS_BACKEND=tensorflow``; raises on failure."""
    import subprocess

    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "keras_padfree.export._convert", *argv],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise RuntimeError(
            "The TensorFlow conversion subprocess failed (exit status "
            f"{proc.returncode}). Its last output lines:\n{tail}"
        )


if __name__ == "__main__":
    sys.exit(main())
