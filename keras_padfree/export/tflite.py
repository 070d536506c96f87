"""TFLite / LiteRT export of zoo models, checked against Keras before the file is written."""

import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from keras_padfree.export import _files
from keras_padfree.export import _prepare
from keras_padfree.export import metadata as md
from keras_padfree.export._convert import QUANTIZATIONS

if TYPE_CHECKING:
    import keras

# Parity criteria (the export raises ParityError when they fail).
FLOAT32_TOLERANCE = 1e-4  # max |p_litert - p_keras| over samples and classes
FLOAT16_TOLERANCE = 1e-2  # float16 weights: each weight is rounded to 11 significant bits
MIN_TOP1_AGREEMENT = {"dynamic": 0.9, "int8": 0.75}  # fraction of samples with the same argmax
# Feature maps (and other outputs without classes) of dynamic / int8 files: the cosine similarity
# of each sample's flattened output with Keras', its minimum over the samples. Measured on a
# random-weight bsconv_resnet20_pf_cifar backbone with calibrated BN (16 images): dynamic >= 0.997,
# int8 >= 0.984 on its coarsest level (see docs/android.md).
MIN_COSINE_SIMILARITY = {"dynamic": 0.99, "int8": 0.95}


class ParityError(RuntimeError):
    """The exported file does not compute what the Keras model computes (nothing was written)."""


@dataclasses.dataclass
class ExportResult:
    """Where an export wrote its files and what its parity check measured."""

    path: str
    metadata_path: str
    labels_path: str | None
    parity: dict
    metadata: dict | None = None


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
        xi = x[i : i + 1]
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


def litert_signature(interpreter) -> tuple[str, str, dict]:
    """``(signature key, input name, {output name: tensor details})`` of a file with one signature
    and one input (what :func:`export_tflite` writes: ``"serving_default"``, ``"image"``; the
    outputs are named by the Keras model's output dict keys, or ``output_<i>`` for a list).

    The signature is how outputs are matched to the Keras model's: by name. The order of
    ``interpreter.get_output_details()`` is not the model's (a dict's outputs come sorted by key,
    and even a list's may come in another order).
    """
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        raise ValueError(f"Expected a LiteRT file with one signature; it has {sorted(signatures)}.")
    key = next(iter(signatures))
    runner = interpreter.get_signature_runner(key)
    inputs = runner.get_input_details()
    if len(inputs) != 1:
        raise ValueError(f"Expected a LiteRT file with one input; it has {sorted(inputs)}.")
    return key, next(iter(inputs)), dict(runner.get_output_details())


def run_litert_outputs(interpreter, x: np.ndarray) -> dict:
    """Runs a batch-1 interpreter over every image of ``x`` through its signature; returns
    ``{output name: float outputs (dequantised)}`` (names as in :func:`litert_signature`).

    int8 input/output tensors are quantised/dequantised with each tensor's own scale and zero
    point.
    """
    key, in_name, out_details = litert_signature(interpreter)
    runner = interpreter.get_signature_runner(key)
    inp = runner.get_input_details()[in_name]
    results = {name: [] for name in out_details}
    for i in range(x.shape[0]):
        xi = x[i : i + 1]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            xi = np.clip(np.round(xi / scale + zero), info.min, info.max).astype(inp["dtype"])
        outs = runner(**{in_name: xi})
        for name, detail in out_details.items():
            y = outs[name]
            if detail["dtype"] != np.float32:
                scale, zero = detail["quantization"]
                y = (y.astype("float32") - zero) * scale
            results[name].append(np.array(y, dtype="float32"))
    return {name: np.concatenate(v, axis=0) for name, v in results.items()}


def _cosine_similarities(ref, got):
    """Per sample: the cosine similarity of the flattened outputs (1 where both are zero)."""
    a = ref.reshape(len(ref), -1).astype("float64")
    b = got.reshape(len(got), -1).astype("float64")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(a * b, axis=1) / (na * nb)
    cos = np.where(both_zero, 1.0, np.nan_to_num(cos, nan=0.0))
    return np.clip(cos, -1.0, 1.0)


def _check_parity(
    quantization,
    ref,
    got,
    activation,
    tolerance,
    min_top1_agreement,
    name,
    min_cosine_similarity=None,
    output=None,
    runtime="LiteRT",
):
    """The parity record of one output (``output``: its name in a multi-output model, else None);
    raises ParityError when it fails the quantisation's criterion."""
    of = f" (output {output!r})" if output is not None else ""
    what = (
        f"{runtime} output {output!r} of {name!r}"
        if output is not None
        else (f"{runtime} output of {name!r}")
    )
    bad = np.flatnonzero(~np.isfinite(ref.reshape(len(ref), -1)).all(axis=1))
    if bad.size:
        raise ParityError(
            f"The Keras model {name!r} itself gives non-finite outputs{of} (NaN or inf) for "
            f"{bad.size} of {len(ref)} parity samples (indices {bad.tolist()}), so no conversion "
            "can be checked against it: its weights or BatchNormalization statistics are "
            "degenerate (an untrained model whose activations overflow?). No file was written."
        )
    p_ref = _prepare.as_probabilities(ref, activation)
    p_got = _prepare.as_probabilities(got, activation)
    max_abs = float(np.max(np.abs(p_ref - p_got)))
    probabilities = ref.ndim == 2 or activation == "softmax"
    report = {
        "samples": int(ref.shape[0]),
        "max_abs_diff": max_abs,
        "compared": "probabilities" if probabilities else "outputs",
    }
    if probabilities and ref.shape[-1] > 1:  # a classifier, or per-pixel class probabilities
        agree = float(np.mean(np.argmax(p_ref, -1) == np.argmax(p_got, -1)))
        report["top1_agreement"] = agree
    if quantization in (None, "float16"):
        tol = (
            tolerance
            if tolerance is not None
            else (FLOAT32_TOLERANCE if quantization is None else FLOAT16_TOLERANCE)
        )
        if ref.ndim != 2:  # features: relative to their scale
            tol = tol * max(1.0, float(np.max(np.abs(ref))))
        report.update(criterion="max_abs_diff", tolerance=tol)
        if not max_abs <= tol:
            raise ParityError(
                f"{what} ({quantization or 'float32'}) differs from Keras: max "
                f"abs difference {max_abs:.3g} > tolerance {tol:.3g} over {ref.shape[0]} samples. "
                "No file was written."
            )
    elif "top1_agreement" in report:
        need = (
            min_top1_agreement
            if min_top1_agreement is not None
            else (MIN_TOP1_AGREEMENT[quantization])
        )
        report.update(criterion="top1_agreement", min_top1_agreement=need)
        units = (
            f"{ref.shape[0]} samples"
            if ref.ndim == 2
            else (f"the pixels of {ref.shape[0]} samples")
        )
        if not report["top1_agreement"] >= need:
            raise ParityError(
                f"{what} ({quantization}) agrees with Keras on the top-1 class "
                f"for {report['top1_agreement']:.1%} of {units} (< {need:.0%}). "
                "Calibrate with more representative data (int8) or export float16. "
                "No file was written."
            )
    else:  # feature maps: the direction of each sample's output
        need = (
            min_cosine_similarity
            if min_cosine_similarity is not None
            else (MIN_COSINE_SIMILARITY[quantization])
        )
        cosine = float(np.min(_cosine_similarities(ref, got)))
        report.update(
            cosine_similarity=cosine, criterion="cosine_similarity", min_cosine_similarity=need
        )
        if not cosine >= need:
            raise ParityError(
                f"{what} ({quantization}) differs from Keras: the cosine similarity of a "
                f"sample's output with Keras' is {cosine:.4f} (< {need}) over {ref.shape[0]} "
                "samples. Calibrate with more representative data (int8) or export float16. "
                "No file was written."
            )
    return report


def check_outputs_parity(
    quantization: str | None,
    reference: dict,
    got: dict,
    activations: dict,
    name: str,
    *,
    tolerance: float | None = None,
    min_top1_agreement: float | None = None,
    min_cosine_similarity: float | None = None,
    runtime: str = "LiteRT",
) -> dict:
    """The parity record of a multi-output model: each output of ``reference`` (Keras, by name)
    checked against the output of the same name in ``got`` (the converted file) with the
    quantisation's criterion for its kind; raises ParityError naming the first one that fails.

    Returns ``{"samples", "max_abs_diff" (the largest over the outputs), "compared": "per_output",
    "criterion": "per_output", "outputs": [{"key": name, ...its own record}, ...]}``.
    """
    missing = [k for k in reference if k not in got]
    extra = [k for k in got if k not in reference]
    if missing or extra:
        raise ParityError(
            f"The {runtime} file of {name!r} has the outputs {sorted(got)}; the Keras model has "
            f"{list(reference)}, so they cannot be matched by name. No file was written."
        )
    records = []
    for key, ref in reference.items():
        if got[key].shape != ref.shape:
            raise ParityError(
                f"{runtime} output {key!r} of {name!r} has shape {got[key].shape}; Keras' has "
                f"{ref.shape}. No file was written."
            )
        rec = _check_parity(
            quantization,
            ref,
            got[key],
            activations.get(key),
            tolerance,
            min_top1_agreement,
            name,
            min_cosine_similarity,
            output=key,
            runtime=runtime,
        )
        rec.pop("samples")
        records.append({"key": key, **rec})
    samples = int(next(iter(reference.values())).shape[0])
    return {
        "samples": samples,
        "max_abs_diff": max(r["max_abs_diff"] for r in records),
        "compared": "per_output",
        "criterion": "per_output",
        "outputs": records,
    }


def _tensor_record(detail):
    rec = {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
    }
    scale, zero = detail["quantization"]
    if detail["dtype"] != np.float32:
        rec["quantization"] = {
            "scale": float(scale),
            "zero_point": int(zero),
            "description": "real = scale * (q - zero_point)",
        }
    return rec


def output_meaning(activation: str | None, classes: int | None) -> str:
    if not classes:
        return "features"
    if activation == "softmax":
        return "class probabilities (softmax)"
    return "class logits (apply softmax for probabilities)"


def pyramid_reduction(key: str | None) -> int | None:
    """``2**n`` for a feature pyramid level named ``"P<n>"`` (keras-hub's naming, the zoo's
    ``features_only`` outputs), else None."""
    m = re.fullmatch(r"P(\d+)", key or "")
    return 2 ** int(m.group(1)) if m else None


def tensor_meaning(key: str | None, shape: Sequence, activation: str | None) -> str:
    """What one output holds, in words: class probabilities / logits of a (batch, classes)
    output, per-pixel class probabilities of a (batch, H, W, classes) softmax, ``"features P3
    (reduction 8)"`` for a pyramid level, else ``"features"``."""
    if len(shape) == 2:
        return output_meaning(activation, shape[-1])
    if activation == "softmax":
        if len(shape) == 4:
            return "per-pixel class probabilities (softmax over the last axis)"
        return "probabilities (softmax over the last axis)"
    reduction = pyramid_reduction(key)
    if reduction is not None:
        return f"features {key} (reduction {reduction})"
    return "features"


def classifier_classes(model: "keras.Model") -> int | None:
    """The number of classes of a (batch, classes) output, else None (features)."""
    shape = model.outputs[0].shape
    return int(shape[-1]) if len(shape) == 2 and shape[-1] is not None else None


def _class_count(shape, activation):
    """Classes of a (batch, classes) output or of per-pixel probabilities (a softmax over the
    last axis of a map), else None."""
    if shape[-1] is None:
        return None
    if len(shape) == 2 or (len(shape) > 2 and activation == "softmax"):
        return int(shape[-1])
    return None


def model_classes(model: "keras.Model") -> int | None:
    """The classes the labels file names: those of a classifier output (batch, classes) or of
    per-pixel class probabilities (batch, H, W, classes) ending in a softmax (a segmentation
    model); for a multi-output model, of its only such output. None otherwise (features)."""
    keys = _prepare.output_keys(model)
    if keys is None:
        return _class_count(tuple(model.outputs[0].shape), _prepare.output_activation(model))
    counts = [
        _class_count(tuple(t.shape), _prepare._tensor_activation(t))
        for t in _prepare.output_tensors(model).values()
    ]
    counts = [c for c in counts if c is not None]
    return counts[0] if len(counts) == 1 else None


def normalize_quantization(quantization: str | None) -> str | None:
    """None for float32 ("none" / "float32" accepted), else one of ``QUANTIZATIONS``."""
    if quantization in ("none", "float32"):
        quantization = None
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            "Argument `quantization` must be one of ['none', 'float16', 'dynamic', 'int8'] (or "
            f"None). Received: quantization={quantization!r}."
        )
    return quantization


def _check_count(value, argname):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Argument `{argname}` must be a positive int. Received: {argname}={value!r}."
        )


def check_bound(value: object, argname: str, upper: float | None = 1.0) -> None:
    """None, or a finite number > 0 (and <= ``upper``); else a ValueError naming ``argname``."""
    if value is None:
        return
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value > 0
        and (upper is None or value <= upper)
    )
    if not ok:
        what = f"a number in (0, {upper:g}]" if upper is not None else "a positive number"
        raise ValueError(
            f"Argument `{argname}` must be {what} (or None for the default). "
            f"Received: {argname}={value!r}."
        )


def build_tflite_export(
    model: "keras.Model | str",
    path: str | os.PathLike,
    quantization: str | None = None,
    representative_data: object = None,
    *,
    num_calibration: int = 100,
    sample_inputs: object = None,
    num_samples: int = 8,
    labels: Sequence[str] | None = None,
    normalization: str | dict = "auto",
    dataset: str | None = None,
    input_shape: tuple | None = None,
    tolerance: float | None = None,
    min_top1_agreement: float | None = None,
    int8_io: bool = False,
    model_name: str | None = None,
    min_cosine_similarity: float | None = None,
) -> tuple[dict, ExportResult]:
    """Everything :func:`export_tflite` does except writing: returns ``(files, result)``, where
    ``files`` maps each output path to its bytes/text (write them with
    ``keras_padfree.export._files.write_files``)."""
    import keras

    quantization = normalize_quantization(quantization)
    path = _files.check_output_path(path, ".tflite", "path")
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
    _check_count(num_calibration, "num_calibration")
    _check_count(num_samples, "num_samples")
    check_bound(tolerance, "tolerance", upper=None)
    check_bound(min_top1_agreement, "min_top1_agreement")
    check_bound(min_cosine_similarity, "min_cosine_similarity")

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
    calib = _prepare.as_array(representative_data, shape, num_calibration, "representative_data")
    if sample_inputs is not None:
        samples = _prepare.as_array(sample_inputs, shape, 10**9, "sample_inputs")
    elif calib is not None:
        samples = calib[:num_samples]
    else:
        samples = _prepare.synthetic_images(shape, num_samples, norm)
    if keys is None:
        reference = _prepare.keras_outputs(f32, samples)
        activation = _prepare.output_activation(f32)
    else:
        reference = _prepare.keras_output_dict(f32, samples)
        activations = _prepare.output_activations(f32)

    if keras.backend.backend() == "tensorflow":
        from keras_padfree.export._convert import convert_tflite

        content = convert_tflite(
            f32, input_shape=shape, quantization=quantization, representative=calib, int8_io=int8_io
        )
    else:
        content = _convert_in_subprocess(f32, shape, quantization, calib, int8_io)

    interpreter = litert_interpreter(model_content=content)
    if keys is None:
        got = run_litert(interpreter, samples)
        if got.shape != reference.shape:
            raise ParityError(
                f"LiteRT output shape {got.shape} differs from Keras' {reference.shape}. "
                "No file was written."
            )
        parity = _check_parity(
            quantization,
            reference,
            got,
            activation,
            tolerance,
            min_top1_agreement,
            model_name,
            min_cosine_similarity,
        )
    else:
        # Matched by name through the file's signature, never by position.
        parity = check_outputs_parity(
            quantization,
            reference,
            run_litert_outputs(interpreter, samples),
            activations,
            model_name,
            tolerance=tolerance,
            min_top1_agreement=min_top1_agreement,
            min_cosine_similarity=min_cosine_similarity,
        )
    parity["reference_backend"] = keras.backend.backend()
    parity["sample_source"] = (
        "sample_inputs"
        if sample_inputs is not None
        else "representative_data"
        if calib is not None
        else "synthetic"
    )
    if keys is not None:  # the per-output records last, after the facts of the whole check
        parity["outputs"] = parity.pop("outputs")

    in_detail = interpreter.get_input_details()[0]
    in_rec = _tensor_record(in_detail)
    in_rec.update(
        layout="NHWC",
        color_order="RGB",
        height=int(shape[0]),
        width=int(shape[1]),
        channels=int(shape[2]),
        value_range=list(norm["value_range"]),
        normalization=norm,
    )
    if keys is None:
        out_rec = _tensor_record(interpreter.get_output_details()[0])
        out_rec["meaning"] = (
            output_meaning(activation, classes)
            if len(reference.shape) == 2
            else tensor_meaning(None, reference.shape, activation)
        )
        outputs = {"output": out_rec}
    else:
        signature, in_name, details = litert_signature(interpreter)
        positions = [int(d["index"]) for d in interpreter.get_output_details()]
        records = []
        for key in keys:
            detail = details[key]
            rec = {"key": key, "index": positions.index(int(detail["index"]))}
            rec.update(_tensor_record(detail))
            rec["meaning"] = tensor_meaning(key, reference[key].shape, activations[key])
            if pyramid_reduction(key) is not None:
                rec["reduction"] = pyramid_reduction(key)
            if "quantization" in rec:  # the tensor facts first, as in `output`
                rec["quantization"] = rec.pop("quantization")
            records.append(rec)
        outputs = {"signature": {"key": signature, "input": in_name}, "outputs": records}
    meta = {
        "schema_version": md.SCHEMA_VERSION,
        "format": "tflite",
        "model_file": os.path.basename(path),
        "model_name": model_name,
        "exporter": md.exporter_record(),
        "runtime": "LiteRT (TFLite builtin ops only; XNNPACK on CPU)",
        "input": in_rec,
        **outputs,
        "num_classes": classes,
        "counts": md.model_counts(f32, shape, classes),
        "quantization": _quantization_record(quantization, int8_io, calib),
        "parity": parity,
    }
    files = {path: content}
    texts = md.sidecar_texts(path, meta, label_list)
    files.update(texts)
    json_path, labels_path = md.sidecar_paths(path)
    meta = json.loads(texts[json_path])
    result = ExportResult(
        path=path,
        metadata_path=json_path,
        labels_path=labels_path if label_list is not None else None,
        parity=parity,
        metadata=meta,
    )
    return files, result


def _convert_in_subprocess(f32, shape, quantization, calib, int8_io):
    """JAX / PyTorch: save to .keras, convert in a TensorFlow subprocess, return the bytes."""
    from keras_padfree.export._convert import run_in_tensorflow_subprocess

    with tempfile.TemporaryDirectory(prefix="keras_padfree_export_") as tmp:
        keras_path = os.path.join(tmp, "model.keras")
        f32.save(keras_path)
        out = os.path.join(tmp, "model.tflite")
        argv = [
            "--model-path",
            keras_path,
            "--output",
            out,
            "--input-shape",
            ",".join(str(d) for d in shape),
            "--quantization",
            quantization or "none",
        ]
        if calib is not None:
            np.save(os.path.join(tmp, "calib.npy"), calib)
            argv += ["--representative", os.path.join(tmp, "calib.npy")]
        if int8_io:
            argv.append("--int8-io")
        run_in_tensorflow_subprocess(argv)
        with open(out, "rb") as fh:
            return fh.read()


def export_tflite(
    model: "keras.Model | str",
    path: str | os.PathLike,
    quantization: str | None = None,
    representative_data: object = None,
    *,
    num_calibration: int = 100,
    sample_inputs: object = None,
    num_samples: int = 8,
    labels: Sequence[str] | None = None,
    normalization: str | dict = "auto",
    dataset: str | None = None,
    input_shape: tuple | None = None,
    tolerance: float | None = None,
    min_top1_agreement: float | None = None,
    int8_io: bool = False,
    model_name: str | None = None,
    min_cosine_similarity: float | None = None,
) -> ExportResult:
    """Exports a Keras model to a LiteRT (.tflite) file for Android, after a parity check.

    Works for a model built or trained under any Keras backend: under TensorFlow it is converted
    in-process (Keras' ``model.export(format="litert")``, TFLite builtin ops only); under JAX or
    PyTorch it is saved to ``.keras`` and converted by a TensorFlow subprocess (the ``.keras``
    format is backend-independent). A mixed-precision model is converted from a float32 copy
    (rebuilt from its config under the float32 policy, with its weights).

    The file has a static batch-1 input ``(1, H, W, C)``, float32 NHWC (int8 with
    ``int8_io=True``). Before anything is written, the LiteRT interpreter runs the file on sample
    inputs and compares with Keras (in the model's own backend):

    - float32: max abs difference of the probabilities <= 1e-4 (``FLOAT32_TOLERANCE``);
    - float16: <= 1e-2 (``FLOAT16_TOLERANCE``);
    - dynamic / int8: top-1 agreement over the samples >= 0.9 / 0.75 (``MIN_TOP1_AGREEMENT``).

    A model without a softmax has its logits turned into probabilities for the comparison.
    Outputs other than (batch, classes) are compared as they are: feature maps to a tolerance
    times their scale ``max(1, max |output|)``; per-pixel probabilities (a softmax over the last
    axis) to the tolerance itself, and under dynamic / int8 by the share of pixels with the same
    top class; feature maps under dynamic / int8 by the cosine similarity of each sample's output
    with Keras' (its minimum over the samples >= 0.99 / 0.95, ``MIN_COSINE_SIMILARITY``).

    Multi-output models (a dict of outputs, e.g. a ``features_only`` backbone's ``{"P1": ...,
    "P2": ...}``, or a list) are exported with every output: the file's signature
    (``serving_default``) names each output by its dict key (``output_<i>`` for a list), the
    outputs are matched to Keras' by these names (never by their order in the file, which is not
    the model's), and each is checked with its own criterion above. The sidecar then lists every
    output (``outputs``: key, position in the file, tensor name, shape, dtype, meaning such as
    "features P3 (reduction 8)", quantisation) and the parity of each (``parity.outputs``).

    On failure a :class:`ParityError` is raised and no file is written. On success
    ``path.tflite``, ``path.json`` (the sidecar: input size, layout, dtype, value range,
    normalisation and where it came from, quantisation parameters, output meaning, counts,
    exporter version, parity result; schema in ``docs/android.md``) and ``path.labels.txt`` (for
    a classifier or per-pixel class probabilities) are written together (all or none).

    The normalisation is read from the model: a model that holds its preprocessing (Rescaling /
    Normalization layers right after its input, e.g. ``include_preprocessing=True``) takes raw
    pixels in [0, 255], and the sidecar says so. A model without them needs
    ``normalization={"mean": [...], "std": [...]}``.

    Args:
        model: a ``keras.Model`` (single image input; one output, or a flat dict or list of
            outputs), or the path of a ``.keras`` file.
        path: output path, ending in ``.tflite``.
        quantization: None (float32), "float16", "dynamic" (int8 weights) or "int8" (full
            integer, calibrated on ``representative_data``).
        representative_data: calibration images, in the model's input space (raw pixels for a
            model that holds its preprocessing, else normalised as ``normalization`` says): an
            array (N, H, W, C), a list, a ``tf.data.Dataset`` or any iterable of batches (elements
            ``images`` or ``(images, labels)``). Required for "int8"; also the default parity
            samples when given.
        num_calibration: the most calibration images used.
        sample_inputs: parity-check inputs (in the model's input space); default: the first
            ``num_samples`` representative images, else ``num_samples`` deterministic synthetic
            images prepared as the sidecar says.
        num_samples: number of parity samples.
        labels: class names (default: the dataset's names for CIFAR-10/100 and the digits, else
            ``class_i``).
        normalization: "auto" (read from the model's preprocessing layers), or
            ``{"mean": [...], "std": [...]}`` on pixels scaled to [0, 1] for a model without them
            (``"none"``: the model takes ``pixel / 255`` as it is).
        dataset: the training dataset name, for the default labels.
        input_shape: (H, W, C) for a model whose input has unknown spatial size.
        tolerance: overrides the float32/float16 tolerance (a positive number).
        min_top1_agreement: overrides the dynamic/int8 agreement threshold (in (0, 1]).
        int8_io: with "int8", int8 input and output tensors (scale/zero point in the JSON).
        model_name: the name recorded in the sidecar (default: the model's name); a registry name
            also selects the default labels.
        min_cosine_similarity: overrides the dynamic/int8 threshold of feature map outputs (in
            (0, 1]).

    Returns:
        An :class:`ExportResult`.

    Raises:
        ValueError: bad arguments (checked before any conversion). ParityError: the file does not
        match Keras.
    """
    files, result = build_tflite_export(
        model,
        path,
        quantization,
        representative_data,
        num_calibration=num_calibration,
        sample_inputs=sample_inputs,
        num_samples=num_samples,
        labels=labels,
        normalization=normalization,
        dataset=dataset,
        input_shape=input_shape,
        tolerance=tolerance,
        min_top1_agreement=min_top1_agreement,
        int8_io=int8_io,
        model_name=model_name,
        min_cosine_similarity=min_cosine_similarity,
    )
    _files.write_files(files)
    return result


def _quantization_record(quantization, int8_io, calib):
    if quantization is None:
        return {"type": "none", "weights": "float32", "activations": "float32"}
    if quantization == "float16":
        return {
            "type": "float16",
            "weights": "float16 (dequantised to float32 on CPU)",
            "activations": "float32",
        }
    if quantization == "dynamic":
        return {
            "type": "dynamic",
            "weights": "int8 (per-channel)",
            "activations": "float32, quantised on the fly for matmuls/convs",
        }
    return {
        "type": "int8",
        "weights": "int8 (per-channel)",
        "activations": "int8",
        "input_output": "int8" if int8_io else "float32 (quantised inside the model)",
        "calibration_samples": int(calib.shape[0]),
    }
