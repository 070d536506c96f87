"""ONNX export of zoo models, checked with onnxruntime before the file is written.

Under the TensorFlow backend the model goes through Keras' ``model.export(format="onnx")``
(tf2onnx); under JAX or PyTorch it is saved to ``.keras`` and converted by a TensorFlow subprocess
(the same route as the TFLite export), so every backend gives the same ONNX graph.
Needs the optional packages ``onnx``, ``onnxruntime`` and ``tf2onnx``.
"""

import json
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from keras_padfree.export import _files
from keras_padfree.export import _prepare
from keras_padfree.export import metadata as md
from keras_padfree.export.tflite import FLOAT32_TOLERANCE
from keras_padfree.export.tflite import ExportResult
from keras_padfree.export.tflite import ParityError
from keras_padfree.export.tflite import check_bound
from keras_padfree.export.tflite import check_outputs_parity
from keras_padfree.export.tflite import model_classes
from keras_padfree.export.tflite import output_meaning
from keras_padfree.export.tflite import pyramid_reduction
from keras_padfree.export.tflite import tensor_meaning

if TYPE_CHECKING:
    import keras

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


def build_onnx_export(
    model: "keras.Model | str",
    path: str | os.PathLike,
    *,
    sample_inputs: object = None,
    num_samples: int = 8,
    labels: Sequence[str] | None = None,
    normalization: str | dict = "auto",
    dataset: str | None = None,
    input_shape: tuple | None = None,
    tolerance: float | None = None,
    opset: int | None = None,
    model_name: str | None = None,
) -> tuple[dict, ExportResult]:
    """Everything :func:`export_onnx` does except writing: returns ``(files, result)``."""
    import keras

    path = _files.check_output_path(path, ".onnx", "path")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(
            f"Argument `num_samples` must be a positive int. Received: num_samples={num_samples!r}."
        )
    check_bound(tolerance, "tolerance", upper=None)
    _require_onnx()
    import onnxruntime

    model, _ = _prepare.load_if_path(model)
    model_name = model_name or model.name
    keys = _prepare.output_keys(model)  # None: one output tensor
    shape = _prepare.static_input_shape(model, input_shape)
    norm = md.resolve_normalization(normalization, model)
    classes = model_classes(model)
    label_list = (
        md.resolve_labels(labels, classes, model_name=model_name, dataset=dataset)
        if classes is not None
        else None
    )
    f32 = _prepare.float32_copy(model)
    if sample_inputs is not None:
        samples = _prepare.as_array(sample_inputs, shape, 10**9, "sample_inputs")
    else:
        samples = _prepare.synthetic_images(shape, num_samples, norm)
    if keys is None:
        reference = _prepare.keras_outputs(f32, samples)
        activation = _prepare.output_activation(f32)
    else:
        reference = _prepare.keras_output_dict(f32, samples)
        activations = _prepare.output_activations(f32)
        if not isinstance(f32.output, dict):
            # tf2onnx names a dict's outputs by their keys but a list's only by position
            # (Identity:0, Identity_1:0, ...): convert the same network with named outputs.
            f32 = keras.Model(f32.inputs, _prepare.output_tensors(f32), name=f32.name)

    with tempfile.TemporaryDirectory(prefix="keras_padfree_onnx_") as tmp:
        out = os.path.join(tmp, "model.onnx")
        if keras.backend.backend() == "tensorflow":
            from keras_padfree.export._convert import convert_onnx

            convert_onnx(f32, out, input_shape=shape, opset=opset)
        else:
            from keras_padfree.export._convert import run_in_tensorflow_subprocess

            keras_path = os.path.join(tmp, "model.keras")
            f32.save(keras_path)
            argv = [
                "--model-path",
                keras_path,
                "--output",
                out,
                "--format",
                "onnx",
                "--input-shape",
                ",".join(str(d) for d in shape),
            ]
            if opset is not None:
                argv += ["--opset", str(opset)]
            run_in_tensorflow_subprocess(argv)
        with open(out, "rb") as f:
            content = f.read()
    try:
        session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
        in_meta = session.get_inputs()[0]
        out_meta = session.get_outputs()[0]
        results = session.run(None, {in_meta.name: samples})
        got = np.asarray(results[0], dtype="float32")
    except Exception as e:  # noqa: BLE001 - any onnxruntime failure means a bad conversion
        raise ParityError(
            f"onnxruntime cannot run the ONNX file converted from {model_name!r} "
            f"({type(e).__name__}: {e}). No file was written."
        ) from e
    if keys is not None:
        return _multi_output_export(
            path,
            model_name,
            keras.backend.backend(),
            session,
            results,
            reference,
            activations,
            keys,
            tolerance,
            sample_inputs,
            shape,
            norm,
            classes,
            label_list,
            f32,
            content,
        )
    if got.shape != reference.shape:
        raise ParityError(
            f"onnxruntime output shape {got.shape} differs from Keras' "
            f"{reference.shape}. No file was written."
        )
    p_ref = _prepare.as_probabilities(reference, activation)
    p_got = _prepare.as_probabilities(got, activation)
    tol = FLOAT32_TOLERANCE if tolerance is None else tolerance
    max_abs = float(np.max(np.abs(p_ref - p_got)))
    if not max_abs <= tol:
        raise ParityError(
            f"onnxruntime output of {model_name!r} differs from Keras: max abs difference "
            f"{max_abs:.3g} > tolerance {tol:.3g} over {samples.shape[0]} samples. "
            "No file was written."
        )
    parity = {
        "samples": int(samples.shape[0]),
        "max_abs_diff": max_abs,
        "compared": "probabilities" if reference.ndim == 2 else "outputs",
        "criterion": "max_abs_diff",
        "tolerance": tol,
        "reference_backend": keras.backend.backend(),
        "sample_source": "sample_inputs" if sample_inputs is not None else "synthetic",
    }
    if reference.ndim == 2:
        parity["top1_agreement"] = float(np.mean(p_ref.argmax(-1) == p_got.argmax(-1)))

    def dims(shape_):
        return [d if isinstance(d, int) else None for d in shape_]

    in_rec = {
        "name": in_meta.name,
        "shape": dims(in_meta.shape),
        "dtype": "float32",
        "layout": "NHWC",
        "color_order": "RGB",
        "height": int(shape[0]),
        "width": int(shape[1]),
        "channels": int(shape[2]),
        "value_range": list(norm["value_range"]),
        "normalization": norm,
    }
    out_rec = {
        "name": out_meta.name,
        "shape": dims(out_meta.shape),
        "dtype": "float32",
        "meaning": (
            output_meaning(activation, classes)
            if reference.ndim == 2
            else tensor_meaning(None, reference.shape, activation)
        ),
    }
    meta = {
        "schema_version": md.SCHEMA_VERSION,
        "format": "onnx",
        "model_file": os.path.basename(path),
        "model_name": model_name,
        "exporter": md.exporter_record(),
        "runtime": f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
        "input": in_rec,
        "output": out_rec,
        "num_classes": classes,
        "counts": md.model_counts(f32, shape, classes),
        "quantization": {"type": "none", "weights": "float32", "activations": "float32"},
        "parity": parity,
    }
    files = {path: content}
    texts = md.sidecar_texts(path, meta, label_list)
    files.update(texts)
    json_path, labels_path = md.sidecar_paths(path)
    result = ExportResult(
        path=path,
        metadata_path=json_path,
        labels_path=labels_path if label_list is not None else None,
        parity=parity,
        metadata=json.loads(texts[json_path]),
    )
    return files, result


def _input_record(in_meta, shape, norm):
    return {
        "name": in_meta.name,
        "shape": _dims(in_meta.shape),
        "dtype": "float32",
        "layout": "NHWC",
        "color_order": "RGB",
        "height": int(shape[0]),
        "width": int(shape[1]),
        "channels": int(shape[2]),
        "value_range": list(norm["value_range"]),
        "normalization": norm,
    }


def _dims(shape_):
    return [d if isinstance(d, int) else None for d in shape_]


def _multi_output_export(
    path,
    model_name,
    backend,
    session,
    results,
    reference,
    activations,
    keys,
    tolerance,
    sample_inputs,
    shape,
    norm,
    classes,
    label_list,
    f32,
    content,
):
    """The files and result of a multi-output model's ONNX export: outputs matched by name."""
    import onnxruntime

    out_metas = session.get_outputs()
    got = {m.name: np.asarray(r, dtype="float32") for m, r in zip(out_metas, results)}
    tol = FLOAT32_TOLERANCE if tolerance is None else tolerance
    parity = check_outputs_parity(
        None, reference, got, activations, model_name, tolerance=tol, runtime="onnxruntime"
    )
    parity["reference_backend"] = backend
    parity["sample_source"] = "sample_inputs" if sample_inputs is not None else "synthetic"
    parity["outputs"] = parity.pop("outputs")
    names = [m.name for m in out_metas]
    records = []
    for key in keys:
        rec = {
            "key": key,
            "index": names.index(key),
            "name": key,
            "shape": _dims(out_metas[names.index(key)].shape),
            "dtype": "float32",
            "meaning": tensor_meaning(key, reference[key].shape, activations[key]),
        }
        if pyramid_reduction(key) is not None:
            rec["reduction"] = pyramid_reduction(key)
        records.append(rec)
    meta = {
        "schema_version": md.SCHEMA_VERSION,
        "format": "onnx",
        "model_file": os.path.basename(path),
        "model_name": model_name,
        "exporter": md.exporter_record(),
        "runtime": f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
        "input": _input_record(session.get_inputs()[0], shape, norm),
        "outputs": records,
        "num_classes": classes,
        "counts": md.model_counts(f32, shape, classes),
        "quantization": {"type": "none", "weights": "float32", "activations": "float32"},
        "parity": parity,
    }
    files = {path: content}
    texts = md.sidecar_texts(path, meta, label_list)
    files.update(texts)
    json_path, labels_path = md.sidecar_paths(path)
    result = ExportResult(
        path=path,
        metadata_path=json_path,
        labels_path=labels_path if label_list is not None else None,
        parity=parity,
        metadata=json.loads(texts[json_path]),
    )
    return files, result


def export_onnx(
    model: "keras.Model | str",
    path: str | os.PathLike,
    *,
    sample_inputs: object = None,
    num_samples: int = 8,
    labels: Sequence[str] | None = None,
    normalization: str | dict = "auto",
    dataset: str | None = None,
    input_shape: tuple | None = None,
    tolerance: float | None = None,
    opset: int | None = None,
    model_name: str | None = None,
) -> ExportResult:
    """Exports a Keras model to ONNX (float32, NHWC input with a dynamic batch axis).

    onnxruntime runs the file on sample inputs before it is kept; the max abs difference of the
    probabilities against Keras must be <= 1e-4 (``tolerance``), else :class:`ParityError` and
    no file. Writes ``path.json`` / ``path.labels.txt`` sidecars like :func:`export_tflite`, with
    the model file, all or none.

    A multi-output model (a dict or list of outputs, e.g. a ``features_only`` backbone) gives an
    ONNX file whose outputs are named by the dict keys (``output_<i>`` for a list); they are
    matched to Keras' by these names, each within ``tolerance`` (times ``max(1, max |output|)``
    for a feature map), and the sidecar lists them (``outputs``, ``parity.outputs``).

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
    files, result = build_onnx_export(
        model,
        path,
        sample_inputs=sample_inputs,
        num_samples=num_samples,
        labels=labels,
        normalization=normalization,
        dataset=dataset,
        input_shape=input_shape,
        tolerance=tolerance,
        opset=opset,
        model_name=model_name,
    )
    _files.write_files(files)
    return result
