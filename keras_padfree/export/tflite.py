"""TFLite / LiteRT export of zoo models, checked against Keras before the file is written."""

import dataclasses
import os
import tempfile

import numpy as np

from keras_padfree.export import _prepare
from keras_padfree.export import metadata as md
from keras_padfree.export._convert import QUANTIZATIONS

# Parity criteria (the export raises ParityError when they fail).
FLOAT32_TOLERANCE = 1e-4  # max |p_litert - p_keras| over samples and classes
FLOAT16_TOLERANCE = 1e-2  # float16 weights: each weight is rounded to 11 significant bits
MIN_TOP1_AGREEMENT = {"dynamic": 0.9, "int8": 0.75}  # fraction of samples with the same argmax


class ParityError(RuntimeError):
    """The exported file does not compute what the Keras model computes (nothing was written)."""


@dataclasses.dataclass
class ExportResult:
    """Where an export wrote its files and what its parity check measured."""

    path: str
    metadata_path: str
    labels_path: str | None
    parity: dict


def litert_interpreter(model_path=None, model_content=None, num_threads=1):
    """A LiteRT (``ai_edge_litert``) interpreter with tensors allocated (XNNPACK on CPU)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:  # pragma: no cover - ai-edge-litert is a declared extra
        raise ImportError(
            "The TFLite parity check needs LiteRT: pip install ai-edge-litert "
            "(or `pip install keras_padfree[litert]`)."
        ) from e
    it = Interpreter(model_path=model_path, model_content=model_content, num_threads=num_threads)
    it.allocate_tensors()
    return it


def run_litert(interpreter, x):
    """Runs a batch-1 interpreter over every image of ``x``; returns float outputs (dequantised).

    int8 input/output tensors are quantised/dequantised with the tensors' own scale and zero point.
    """
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            xi = np.clip(np.round(xi / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], xi)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype("float32") - zero) * scale
        results.append(np.array(y, dtype="float32"))
    return np.concatenate(results, axis=0)


def _check_parity(quantization, ref, got, activation, tolerance, min_top1_agreement, name):
    bad = np.flatnonzero(~np.isfinite(ref.reshape(len(ref), -1)).all(axis=1))
    if bad.size:
        raise ParityError(
            f"The Keras model {name!r} itself gives non-finite outputs (NaN or inf) for "
            f"{bad.size} of {len(ref)} parity samples (indices {bad.tolist()}), so no conversion "
            "can be checked against it: its weights or BatchNormalization statistics are "
            "degenerate (an untrained model whose activations overflow?). No file was written.")
    p_ref = _prepare.as_probabilities(ref, activation)
    p_got = _prepare.as_probabilities(got, activation)
    max_abs = float(np.max(np.abs(p_ref - p_got)))
    report = {"samples": int(ref.shape[0]), "max_abs_diff": max_abs,
              "compared": "probabilities" if ref.ndim == 2 else "outputs"}
    if ref.ndim == 2 and ref.shape[-1] > 1:
        agree = float(np.mean(np.argmax(p_ref, -1) == np.argmax(p_got, -1)))
        report["top1_agreement"] = agree
    if quantization in (None, "float16"):
        tol = tolerance if tolerance is not None else (
            FLOAT32_TOLERANCE if quantization is None else FLOAT16_TOLERANCE)
        if ref.ndim != 2:  # features: relative to their scale
            tol = tol * max(1.0, float(np.max(np.abs(ref))))
        report.update(criterion="max_abs_diff", tolerance=tol)
        if not max_abs <= tol:
            raise ParityError(
                f"LiteRT output of {name!r} ({quantization or 'float32'}) differs from Keras: max "
                f"abs difference {max_abs:.3g} > tolerance {tol:.3g} over {ref.shape[0]} samples. "
                "No file was written."
            )
    else:
        need = min_top1_agreement if min_top1_agreement is not None else (
            MIN_TOP1_AGREEMENT[quantization])
        if "top1_agreement" not in report:
            raise ParityError(
                f"{quantization} parity is checked by top-1 agreement, which needs a classifier "
                f"output (batch, classes); {name!r} outputs shape {ref.shape[1:]}."
            )
        report.update(criterion="top1_agreement", min_top1_agreement=need)
        if not report["top1_agreement"] >= need:
            raise ParityError(
                f"LiteRT output of {name!r} ({quantization}) agrees with Keras on the top-1 class "
                f"for {report['top1_agreement']:.1%} of {ref.shape[0]} samples (< {need:.0%}). "
                "Calibrate with more representative data (int8) or export float16. "
                "No file was written."
            )
    return report


def _tensor_record(detail, normalization=None):
    rec = {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
           "dtype": np.dtype(detail["dtype"]).name}
    scale, zero = detail["quantization"]
    if detail["dtype"] != np.float32:
        rec["quantization"] = {"scale": float(scale), "zero_point": int(zero),
                               "description": "real = scale * (q - zero_point)"}
    return rec


def export_tflite(model, path, quantization=None, representative_data=None, *,
                  num_calibration=100, sample_inputs=None, num_samples=8, labels=None,
                  normalization="auto", dataset=None, input_shape=None, tolerance=None,
                  min_top1_agreement=None, int8_io=False, model_name=None):
    """Exports a Keras model to a LiteRT (.tflite) file for Android, after a parity check.

    Works for a model built or trained under any Keras backend: under TensorFlow it is converted
    in-process; under JAX or PyTorch it is saved to ``.keras`` and converted by a TensorFlow
    subprocess (the ``.keras`` format is backend-independent). A mixed-precision model is converted
    from a float32 copy (rebuilt from its config under the float32 policy, with its weights).

    The file has a static batch-1 input ``(1, H, W, C)``, float32 NHWC (int8 with
    ``int8_io=True``), and only TFLite builtin ops. Before anything is written, the LiteRT
    interpreter runs the file on sample inputs and compares with Keras (in the model's own backend):

    - float32: max abs difference of the probabilities <= 1e-4 (``FLOAT32_TOLERANCE``);
    - float16: <= 1e-2 (``FLOAT16_TOLERANCE``);
    - dynamic / int8: top-1 agreement over the samples >= 0.9 / 0.75 (``MIN_TOP1_AGREEMENT``).

    A model without a softmax has its logits turned into probabilities for the comparison. On
    failure a :class:`ParityError` is raised and no file is written. On success, next to
    ``path.tflite`` come ``path.json`` (input size, layout, dtype, normalisation, value range,
    quantisation parameters, output meaning, parity result) and ``path.labels.txt``.

    Args:
        model: a ``keras.Model`` (single image input), or the path of a ``.keras`` file.
        path: output path, ending in ``.tflite``.
        quantization: None (float32), "float16", "dynamic" (int8 weights) or "int8" (full
            integer, calibrated on ``representative_data``).
        representative_data: calibration images, already preprocessed like the model's input: an
            array (N, H, W, C), a list, a ``tf.data.Dataset`` or any iterable of batches (elements
            ``images`` or ``(images, labels)``). Required for "int8"; also the default parity
            samples when given.
        num_calibration: the most calibration images used.
        sample_inputs: parity-check inputs (preprocessed); default: the first ``num_samples``
            representative images, else ``num_samples`` deterministic synthetic images normalised
            as the sidecar says.
        num_samples: number of parity samples.
        labels: class names (default: the dataset's names for CIFAR-10/100, else ``class_i``).
        normalization: "auto" (from the training pipeline / registry dataset / an input
            BatchNormalization), "internal", "none", or ``{"mean": [...], "std": [...]}``.
        dataset: the training dataset name, used by "auto" and for the default labels.
        input_shape: (H, W, C) for a model whose input has unknown spatial size.
        tolerance: overrides the float32/float16 tolerance.
        min_top1_agreement: overrides the dynamic/int8 agreement threshold.
        int8_io: with "int8", int8 input and output tensors (scale/zero point in the JSON).
        model_name: registry name (default: the model's name), for "auto" normalisation/labels.

    Returns:
        An :class:`ExportResult`.

    Raises:
        ValueError: bad arguments. ParityError: the file does not match Keras.
    """
    import keras

    if quantization == "none" or quantization == "float32":
        quantization = None
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Argument `quantization` must be one of {list(QUANTIZATIONS)}. "
            f"Received: quantization={quantization!r}."
        )
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ValueError(f"Argument `path` must end in '.tflite'. Received: path={path!r}.")
    if int8_io and quantization != "int8":
        raise ValueError(
            f"Argument `int8_io=True` needs quantization='int8'. Received: quantization="
            f"{quantization!r}."
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "Argument `representative_data` is required for quantization='int8' (calibration "
            "images preprocessed like the model's input). Received: representative_data=None."
        )
    for value, argname in ((num_calibration, "num_calibration"), (num_samples, "num_samples")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Argument `{argname}` must be a positive int. Received: {value!r}.")

    model, _ = _prepare.load_if_path(model)
    model_name = model_name or model.name
    shape = _prepare.static_input_shape(model, input_shape)
    f32 = _prepare.float32_copy(model)
    norm = md.resolve_normalization(normalization, f32, model_name=model_name, dataset=dataset)
    calib = _prepare.as_array(representative_data, shape, num_calibration, "representative_data")
    if sample_inputs is not None:
        samples = _prepare.as_array(sample_inputs, shape, 10**9, "sample_inputs")
    elif calib is not None:
        samples = calib[:num_samples]
    else:
        samples = _prepare.synthetic_images(shape, num_samples, norm)
    reference = _prepare.keras_outputs(f32, samples)
    activation = _prepare.output_activation(f32)

    with tempfile.TemporaryDirectory(prefix="keras_padfree_export_") as tmp:
        if keras.backend.backend() == "tensorflow":
            from keras_padfree.export._convert import convert_tflite

            content = convert_tflite(f32, input_shape=shape, quantization=quantization,
                                     representative=calib, int8_io=int8_io)
        else:
            from keras_padfree.export._convert import run_in_tensorflow_subprocess

            keras_path = os.path.join(tmp, "model.keras")
            f32.save(keras_path)
            out = os.path.join(tmp, "model.tflite")
            argv = ["--model-path", keras_path, "--output", out,
                    "--input-shape", ",".join(str(d) for d in shape),
                    "--quantization", quantization or "none"]
            if calib is not None:
                np.save(os.path.join(tmp, "calib.npy"), calib)
                argv += ["--representative", os.path.join(tmp, "calib.npy")]
            if int8_io:
                argv.append("--int8-io")
            run_in_tensorflow_subprocess(argv)
            with open(out, "rb") as fh:
                content = fh.read()

    interpreter = litert_interpreter(model_content=content)
    got = run_litert(interpreter, samples)
    if got.shape != reference.shape:
        raise ParityError(
            f"LiteRT output shape {got.shape} differs from Keras' {reference.shape}. "
            "No file was written."
        )
    parity = _check_parity(quantization, reference, got, activation, tolerance,
                           min_top1_agreement, model_name)
    parity["reference_backend"] = keras.backend.backend()
    parity["sample_source"] = ("sample_inputs" if sample_inputs is not None else
                               "representative_data" if calib is not None else "synthetic")

    in_detail = interpreter.get_input_details()[0]
    out_detail = interpreter.get_output_details()[0]
    classes = int(out_detail["shape"][-1]) if len(out_detail["shape"]) == 2 else None
    label_list = md.resolve_labels(labels, classes, model_name=model_name, dataset=dataset) \
        if classes is not None else None
    in_rec = _tensor_record(in_detail)
    in_rec.update(layout="NHWC", color_order="RGB", height=int(shape[0]), width=int(shape[1]),
                  channels=int(shape[2]), normalization=norm)
    out_rec = _tensor_record(out_detail)
    out_rec["meaning"] = ("class probabilities (softmax)" if activation == "softmax" and classes
                          else "class logits (apply softmax for probabilities)" if classes
                          else "features")
    meta = {
        "schema_version": md.SCHEMA_VERSION,
        "format": "tflite",
        "model_file": os.path.basename(path),
        "model_name": model_name,
        "runtime": "LiteRT (TFLite builtin ops only; XNNPACK on CPU)",
        "input": in_rec,
        "output": out_rec,
        "num_classes": classes,
        "quantization": _quantization_record(quantization, int8_io, calib),
        "parity": parity,
    }
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp_path = path + ".partial"
    with open(tmp_path, "wb") as fh:
        fh.write(content)
    os.replace(tmp_path, path)
    json_path, labels_path = md.write_sidecars(path, meta, label_list)
    return ExportResult(path=path, metadata_path=json_path, labels_path=labels_path,
                        parity=parity)


def _quantization_record(quantization, int8_io, calib):
    if quantization is None:
        return {"type": "none", "weights": "float32", "activations": "float32"}
    if quantization == "float16":
        return {"type": "float16", "weights": "float16 (dequantised to float32 on CPU)",
                "activations": "float32"}
    if quantization == "dynamic":
        return {"type": "dynamic", "weights": "int8 (per-channel)",
                "activations": "float32, quantised on the fly for matmuls/convs"}
    return {"type": "int8", "weights": "int8 (per-channel)", "activations": "int8",
            "input_output": "int8" if int8_io else "float32 (quantised inside the model)",
            "calibration_samples": int(calib.shape[0])}
