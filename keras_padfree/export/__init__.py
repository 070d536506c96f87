"""Deployment: LiteRT (TFLite) export for Android and ONNX export, each with a parity check.

>>> import keras
>>> from keras_padfree import export
>>> model = keras.saving.load_model("runs/default/best.keras")    # trained by training/fit.py
>>> result = export.export_tflite(model, "model.tflite")            # float32
>>> result = export.export_tflite(model, "model_int8.tflite", quantization="int8",
...                               representative_data=calibration_images)  # raw pixels
>>> result = export.export_onnx(model, "onnx/model.onnx")

Each export writes ``<name>.json`` (the sidecar: input size/layout/dtype/range, normalisation and
where it came from, quantisation, counts, exporter version) and ``<name>.labels.txt`` next to the
model file, all or nothing, and raises :class:`ParityError` (writing nothing) when the converted
file does not reproduce the Keras model. The normalisation is read from the model (its Rescaling /
Normalization layers, e.g. ``include_preprocessing=True``: the file takes raw pixels in [0, 255]); a
model without them needs ``normalization={"mean": [...], "std": [...]}``. See ``docs/android.md``.
"""

from keras_padfree.export.metadata import SIDECAR_SCHEMA
from keras_padfree.export.metadata import load_metadata
from keras_padfree.export.metadata import model_preprocessing
from keras_padfree.export.metadata import preprocess_pixels
from keras_padfree.export.metadata import sidecar_paths
from keras_padfree.export.metadata import validate_sidecar
from keras_padfree.export.onnx import export_onnx
from keras_padfree.export.tflite import FLOAT16_TOLERANCE
from keras_padfree.export.tflite import FLOAT32_TOLERANCE
from keras_padfree.export.tflite import MIN_TOP1_AGREEMENT
from keras_padfree.export.tflite import ExportResult
from keras_padfree.export.tflite import ParityError
from keras_padfree.export.tflite import export_tflite
from keras_padfree.export.tflite import litert_interpreter
from keras_padfree.export.tflite import run_litert

__all__ = [
    "ExportResult",
    "FLOAT16_TOLERANCE",
    "FLOAT32_TOLERANCE",
    "MIN_TOP1_AGREEMENT",
    "ParityError",
    "SIDECAR_SCHEMA",
    "export_onnx",
    "export_tflite",
    "litert_interpreter",
    "load_metadata",
    "model_preprocessing",
    "preprocess_pixels",
    "run_litert",
    "sidecar_paths",
    "validate_sidecar",
]
