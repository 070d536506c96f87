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

Multi-output models (a ``features_only`` backbone's ``{"P1": ..., "P2": ...}``, any dict or list of
outputs) and dense outputs (feature maps, per-pixel class probabilities) export the same way: each
output is matched to Keras' by its name in the file and checked on its own; the sidecar lists them
all (``outputs``).
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
from keras_padfree.export.tflite import MIN_COSINE_SIMILARITY
from keras_padfree.export.tflite import MIN_TOP1_AGREEMENT
from keras_padfree.export.tflite import ExportResult
from keras_padfree.export.tflite import ParityError
from keras_padfree.export.tflite import export_tflite
from keras_padfree.export.tflite import litert_interpreter
from keras_padfree.export.tflite import litert_signature
from keras_padfree.export.tflite import run_litert
from keras_padfree.export.tflite import run_litert_outputs

__all__ = [
    "ExportResult",
    "FLOAT16_TOLERANCE",
    "FLOAT32_TOLERANCE",
    "MIN_COSINE_SIMILARITY",
    "MIN_TOP1_AGREEMENT",
    "ParityError",
    "SIDECAR_SCHEMA",
    "export_onnx",
    "export_tflite",
    "litert_interpreter",
    "litert_signature",
    "load_metadata",
    "model_preprocessing",
    "preprocess_pixels",
    "run_litert",
    "run_litert_outputs",
    "sidecar_paths",
    "validate_sidecar",
]
