"""ONNX export of zoo models, checked with onnxruntime before the file is written.

Under the TensorFlow backend the model goes through Keras' ``model.export(format="onnx")``
(tf2onnx); under JAX or PyTorch it is saved to ``.keras`` and converted by a TensorFlow subprocess
(the same route as the TFLite export), so every backend gives the same ONNX graph.
Needs the optional packages ``onnx``, ``onnxruntime`` and ``tf2onnx``.
"""

import os
import shutil
import tempfile

import numpy as np

from keras_padfree.export import _prepare
from keras_padfree.export import metadata as md
from keras_padfree.export.tflite import ExportResult
from keras_padfree.export.tflite import FLOAT32_TOLERANCE
from keras_padfree.export.tflite import ParityError

_INSTALL_HINT = "pip install onnx onnxruntime tf2onnx  (or `pip install keras_padfree[onnx]`)"


def _require_onnx():
    missing = []
    for mod in ("onnx", "onnxruntime", "tf2onnx"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise ImportError(
            f"ONNX export needs the packages {missing}, which are not installed: {_INSTALL_HINT}."
        )


def export_onnx(model, path, *, sample_inputs=None, num_samples=8, labels=None,
                normalization="auto", dataset=None, input_shape=None, tolerance=None,
                opset=None, model_name=None):
    """Exports a Keras model to ONNX (float32, NHWC input with a dynamic batch axis).

    onnxruntime runs the file on sample inputs before it is kept; the max abs difference of the
    probabilities against Keras must be <= 1e-4 (``tolerance``), else :class:`ParityError` and
    no file. Writes ``path.json`` / ``path.labels.txt`` sidecars like :func:`export_tflite`.

    Args:
        model: a ``keras.Model`` or a ``.keras`` path.
        path: output path ending in ``.onnx``.
        sample_inputs, num_samples, labels, normalization, dataset, input_shape, model_name:
            as in :func:`keras_padfree.export.export_tflite`.
        tolerance: max abs difference of the probabilities (default 1e-4).
        opset: ONNX opset version (default: the converter's).

    Raises:
        ImportError: onnx / onnxruntime / tf2onnx missing (with the pip command).
    """
    import keras

    _require_onnx()
    import onnxruntime

    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ValueError(f"Argument `path` must end in '.onnx'. Received: path={path!r}.")
    model, _ = _prepare.load_if_path(model)
    model_name = model_name or model.name
    shape = _prepare.static_input_shape(model, input_shape)
    f32 = _prepare.float32_copy(model)
    norm = md.resolve_normalization(normalization, f32, model_name=model_name, dataset=dataset)
    if sample_inputs is not None:
        samples = _prepare.as_array(sample_inputs, shape, 10**9, "sample_inputs")
    else:
        samples = _prepare.synthetic_images(shape, num_samples, norm)
    reference = _prepare.keras_outputs(f32, samples)
    activation = _prepare.output_activation(f32)

    with tempfile.TemporaryDirectory(prefix="keras_padfree_onnx_") as tmp:
        out = os.path.join(tmp, "model.onnx")
        if keras.backend.backend() == "tensorflow":
            from keras_padfree.export._convert import convert_onnx

            convert_onnx(f32, out, input_shape=shape, opset=opset)
        else:
            from keras_padfree.export._convert import run_in_tensorflow_subprocess

            keras_path = os.path.join(tmp, "model.keras")
            f32.save(keras_path)
            argv = ["--model-path", keras_path, "--output", out, "--format", "onnx",
                    "--input-shape", ",".join(str(d) for d in shape)]
            if opset is not None:
                argv += ["--opset", str(opset)]
            run_in_tensorflow_subprocess(argv)
        session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
        in_meta = session.get_inputs()[0]
        out_meta = session.get_outputs()[0]
        got = np.asarray(session.run(None, {in_meta.name: samples})[0], dtype="float32")
        p_ref = _prepare.as_probabilities(reference, activation)
        p_got = _prepare.as_probabilities(got, activation)
        tol = FLOAT32_TOLERANCE if tolerance is None else tolerance
        if got.shape != reference.shape:
            raise ParityError(f"onnxruntime output shape {got.shape} differs from Keras' "
                              f"{reference.shape}. No file was written.")
        max_abs = float(np.max(np.abs(p_ref - p_got)))
        if not max_abs <= tol:
            raise ParityError(
                f"onnxruntime output of {model_name!r} differs from Keras: max abs difference "
                f"{max_abs:.3g} > tolerance {tol:.3g} over {samples.shape[0]} samples. "
                "No file was written."
            )
        parity = {"samples": int(samples.shape[0]), "max_abs_diff": max_abs,
                  "criterion": "max_abs_diff", "tolerance": tol,
                  "reference_backend": keras.backend.backend(),
                  "sample_source": "sample_inputs" if sample_inputs is not None else "synthetic"}
        if reference.ndim == 2:
            parity["top1_agreement"] = float(np.mean(p_ref.argmax(-1) == p_got.argmax(-1)))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        shutil.move(out, path)

    classes = int(reference.shape[-1]) if reference.ndim == 2 else None
    label_list = (md.resolve_labels(labels, classes, model_name=model_name, dataset=dataset)
                  if classes is not None else None)
    in_rec = {"name": in_meta.name, "shape": [d if isinstance(d, int) else None
                                              for d in in_meta.shape],
              "dtype": "float32", "layout": "NHWC", "color_order": "RGB",
              "height": int(shape[0]), "width": int(shape[1]), "channels": int(shape[2]),
              "normalization": norm}
    out_rec = {"name": out_meta.name, "shape": [d if isinstance(d, int) else None
                                                for d in out_meta.shape], "dtype": "float32",
               "meaning": ("class probabilities (softmax)" if activation == "softmax" and classes
                           else "class logits (apply softmax for probabilities)" if classes
                           else "features")}
    meta = {"schema_version": md.SCHEMA_VERSION, "format": "onnx",
            "model_file": os.path.basename(path), "model_name": model_name,
            "runtime": f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
            "input": in_rec, "output": out_rec, "num_classes": classes,
            "quantization": {"type": "none", "weights": "float32", "activations": "float32"},
            "parity": parity}
    json_path, labels_path = md.write_sidecars(path, meta, label_list)
    return ExportResult(path=path, metadata_path=json_path, labels_path=labels_path,
                        parity=parity)
