"""The TensorFlow side of the exporters: Keras model -> .tflite / .onnx bytes.

TFLite conversion needs the TensorFlow backend. Under JAX or PyTorch, :mod:`keras_padfree.export`
saves the model to ``.keras`` and runs this module in a subprocess with ``KERAS_BACKEND=tensorflow``
(``python -m keras_padfree.export._convert --model-path m.keras --output m.tflite ...``); the
``.keras`` format stores backend-independent weights, so the reloaded model computes the same
function.

The conversion route is Keras' ``ExportArchive`` (a SavedModel with one ``serve`` endpoint that calls
the model with ``training=False`` on a static batch-1 signature) followed by
``tf.lite.TFLiteConverter.from_saved_model``, the route TensorFlow documents for Keras 3 models.
``from_concrete_functions`` is never used (it silently produces wrong models in this TF version).
Only TFLite builtin ops are allowed, so the file runs on the plain LiteRT runtime (no Flex
delegate) on Android.
"""

import argparse
import os
import sys
import tempfile

QUANTIZATIONS = (None, "float16", "dynamic", "int8")


def _require_tensorflow_backend(what):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} runs under the TensorFlow backend only (KERAS_BACKEND=tensorflow); the current "
            f"backend is {keras.backend.backend()!r}. keras_padfree.export handles this by running "
            "the conversion in a TensorFlow subprocess."
        )


def _write_saved_model(model, directory, input_shape, batch_size):
    import keras
    import tensorflow as tf

    spec = tf.TensorSpec((batch_size,) + tuple(input_shape), tf.float32, name="image")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
    archive.write_out(directory, verbose=False)


def convert_tflite(model, *, input_shape, quantization=None, representative=None, int8_io=False):
    """Converts a Keras model (TensorFlow backend) to TFLite flatbuffer bytes.

    Args:
        model: a single-input Keras model under the TensorFlow backend, float32.
        input_shape: (H, W, C); the file has the static input shape (1, H, W, C).
        quantization: None (float32), "float16" (float16 weights), "dynamic" (int8 weights,
            dynamic-range activations) or "int8" (full integer: int8 weights and activations).
        representative: float32 array (N, H, W, C) of calibration inputs, required for "int8".
        int8_io: with "int8", make the model's input and output int8 tensors too (otherwise they
            stay float32 and the file quantises/dequantises at its borders).
    """
    _require_tensorflow_backend("TFLite conversion")
    import numpy as np
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Argument `quantization` must be one of {list(QUANTIZATIONS)}. "
            f"Received: quantization={quantization!r}."
        )
    with tempfile.TemporaryDirectory(prefix="keras_padfree_sm_") as tmp:
        _write_saved_model(model, tmp, input_shape, 1)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif quantization == "int8":
            if representative is None or len(representative) == 0:
                raise ValueError("int8 quantisation needs representative (calibration) data.")
            data = np.asarray(representative, dtype="float32")

            def gen():
                for i in range(data.shape[0]):
                    yield [data[i:i + 1]]

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = gen
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if int8_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        return converter.convert()


def convert_onnx(model, path, *, input_shape, opset=None):
    """Writes an ONNX file with a dynamic batch axis via Keras' ``model.export(format="onnx")``."""
    _require_tensorflow_backend("ONNX conversion of a TensorFlow model")
    import keras

    kwargs = {}
    if opset is not None:
        kwargs["opset_version"] = opset
    spec = keras.InputSpec(shape=(None,) + tuple(input_shape), dtype="float32")
    model.export(path, format="onnx", input_signature=[spec], verbose=False, **kwargs)


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
    data = convert_tflite(model, input_shape=input_shape, quantization=quantization,
                          representative=representative, int8_io=args.int8_io)
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
    proc = subprocess.run([sys.executable, "-m", "keras_padfree.export._convert", *argv],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise RuntimeError(
            "The TensorFlow conversion subprocess failed (exit status "
            f"{proc.returncode}). Its last output lines:\n{tail}"
        )


if __name__ == "__main__":
    sys.exit(main())
