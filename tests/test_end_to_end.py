"""From training to a phone, on real files: the README's main command (shortened), the README's
export commands exactly as written (float32, float16, int8), then the LiteRT interpreter on the raw
uint8 digits prepared only as the exported sidecar says. Its top-1 accuracy must be within 0.5
points of the Keras evaluation of the same model (``training/evaluate.py``, as the README runs it).

These four commands (``END_TO_END_COMMANDS``) run here only; tests/test_readme_commands.py runs
the docs' other evaluate and export commands.
"""

import glob
import json

import numpy as np
import pytest

from tests.test_readme_commands import END_TO_END_COMMANDS
from tests.test_readme_commands import _option
from tests.test_readme_commands import run_as_written
from tests.test_readme_commands import run_script

keras = pytest.importorskip("keras")
MAX_GAP = 0.005  # top-1, LiteRT vs Keras: 0.5 points
# The README's main command, shortened to two epochs (the digits recipe has three).
MAIN_COMMAND = ["--epochs", "2", "--no-tensorboard"]


def raw_digits():
    """The evaluation split of the bundled digits as stored: uint8 (N, 8, 8, 1), and labels."""
    from keras_padfree import data

    source = data.load_source("digits", "eval")
    images, labels = [], []
    for image, label in source.dataset.as_numpy_iterator():
        images.append(image)
        labels.append(label)
    return np.stack(images), np.asarray(labels)


def prepare_as_the_sidecar_says(images_uint8, meta):
    """What an app does: RGB, resized to the sidecar's size, normalised by the sidecar's
    formula (``x = (pixel * pixel_scale - mean) / std``)."""
    import tensorflow as tf

    from keras_padfree.export import preprocess_pixels

    inp = meta["input"]
    assert inp["layout"] == "NHWC" and inp["color_order"] == "RGB" and inp["channels"] == 3
    rgb = tf.image.grayscale_to_rgb(tf.convert_to_tensor(images_uint8))
    pixels = tf.image.resize(
        tf.cast(rgb, tf.float32), (inp["height"], inp["width"]), method="bilinear"
    ).numpy()
    return preprocess_pixels(pixels, meta)


def litert_top1(model_path, images_uint8, labels):
    from keras_padfree import export

    meta = export.load_metadata(model_path)
    x = prepare_as_the_sidecar_says(images_uint8, meta)
    interpreter = export.litert_interpreter(model_path=model_path)
    assert np.dtype(interpreter.get_input_details()[0]["dtype"]).name == meta["input"]["dtype"]
    y = export.run_litert(interpreter, x)  # quantises an int8 input with the file's parameters
    return float(np.mean(y.argmax(-1) == labels)), meta


def export_and_compare(workdir, monkeypatch):
    """The README's evaluate and export commands in ``workdir`` (which holds
    ``runs/default/best.keras``), then LiteRT on the raw digits. Returns the figures."""
    evaluate, *exports = END_TO_END_COMMANDS
    run_as_written(evaluate, workdir, monkeypatch)
    (result,) = glob.glob(str(workdir / "runs" / "default" / "best.digits_*.json"))
    with open(result) as f:
        result = json.load(f)
    assert result["input"]["source"] == "model"  # the model was fed raw pixels
    keras_top1 = result["top1"]
    images, labels = raw_digits()
    figures = {"keras": keras_top1}
    for quantization, cmd in zip((None, "float16", "int8"), exports):
        run_as_written(cmd, workdir, monkeypatch)
        output = _option(cmd.argv, "--output")
        top1, meta = litert_top1(str(workdir / output), images, labels)
        assert meta["input"]["normalization"]["source"] == "model"
        assert meta["quantization"]["type"] == (quantization or "none")
        figures[quantization or "float32"] = top1
    print("top-1 on the digits' evaluation split:", json.dumps(figures))
    for quantization in ("float32", "float16", "int8"):
        assert abs(figures[quantization] - keras_top1) <= MAX_GAP, figures
    return figures


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return tmp_path


@pytest.mark.heavy
def test_readme_flow(workdir, monkeypatch):
    """``python training/fit.py`` (two epochs), the README's export commands, LiteRT."""
    status, out, err = run_script("training/fit.py", MAIN_COMMAND, workdir, monkeypatch=monkeypatch)
    assert status == 0, out + err
    figures = export_and_compare(workdir, monkeypatch)
    assert figures["keras"] >= 0.8, figures  # trained: 10 classes, chance is 0.1
