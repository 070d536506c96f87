"""The command lines of export and evaluation: every bad argument or file is an ``error:`` line and
exit status 2 with nothing written; the outputs are written together or not at all; evaluation feeds
the model what it expects."""

import json
import os
import sys
import zipfile

import numpy as np
import pytest

from tests.export.conftest import TEST_MEAN
from tests.export.conftest import TEST_STD
from tests.export.conftest import realistic
from tests.export.conftest import sharpen_classifier
from tests.export.conftest import tiny_model

keras = pytest.importorskip("keras")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "training"))

import evaluate as evaluate_cli  # noqa: E402
import export_tflite as export_cli  # noqa: E402

MEAN = ",".join(str(v) for v in TEST_MEAN)
STD = ",".join(str(v) for v in TEST_STD)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Input files of the CLI tests: models with and without preprocessing, broken files."""
    import tensorflow as tf

    d = tmp_path_factory.mktemp("cli_inputs")
    keras.utils.set_random_seed(0)
    held = sharpen_classifier(realistic(tiny_model()))
    held.save(d / "held.keras")
    bare = tiny_model(preprocessing=False)
    bare.set_weights(held.get_weights())  # the same network without its preprocessing layers
    bare.save(d / "bare.keras")
    (d / "garbage.keras").write_bytes(b"this is not a zip archive")
    with zipfile.ZipFile(d / "notkeras.keras", "w") as z:
        z.writestr("readme.txt", "a zip, but not a Keras model")
    (d / "model.h5").write_bytes(b"")
    (d / "dir.keras").mkdir()
    (d / "afile").write_text("a file, not a folder")
    (d / "three_labels.txt").write_text("a\nb\nc\n")
    (d / "empty").mkdir()
    images = d / "images" / "sub"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        img = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
        tf.io.write_file(str(images / f"{i}.png"), tf.io.encode_png(img))
    return d


def _listing(directory):
    return sorted(
        os.path.relpath(os.path.join(root, f), directory)
        for root, dirs, names in os.walk(directory)
        for f in names + dirs
    )


# (arguments after the model and output, with {d} the input folder and {o} the output folder;
#  the expected message)
BAD_EXPORTS = {
    "missing model": (
        ["--model-path", "{d}/missing.keras", "--output", "{o}/m.tflite"],
        "'{d}/missing.keras' does not exist",
    ),
    "model suffix": (
        ["--model-path", "{d}/model.h5", "--output", "{o}/m.tflite"],
        "must be a .keras file",
    ),
    "model is a folder": (
        ["--model-path", "{d}/dir.keras", "--output", "{o}/m.tflite"],
        "is a directory",
    ),
    "corrupt model": (
        ["--model-path", "{d}/garbage.keras", "--output", "{o}/m.tflite"],
        "garbage.keras' is not a .keras file",
    ),
    "zip but no model": (
        ["--model-path", "{d}/notkeras.keras", "--output", "{o}/m.tflite"],
        "could not be loaded as a Keras model",
    ),
    "output without suffix": (
        ["--model-path", "{d}/held.keras", "--output", "{o}"],
        "`--output` must be a file path ending in '.tflite'",
    ),
    "output is a folder": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/taken.tflite"],
        "taken.tflite' is a directory",
    ),
    "output under a file": (
        ["--model-path", "{d}/held.keras", "--output", "{d}/afile/m.tflite"],
        "is not a directory",
    ),
    "onnx suffix": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/m.tflite", "--onnx", "{o}/o.txt"],
        "`--onnx` must be a file path ending in '.onnx'",
    ),
    "shared sidecar": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/m.tflite", "--onnx", "{o}/m.onnx"],
        "would share the sidecar",
    ),
    "mean without std": (
        ["--model-path", "{d}/bare.keras", "--output", "{o}/m.tflite", "--mean", "0.5"],
        "must be given together",
    ),
    "zero std": (
        [
            "--model-path",
            "{d}/bare.keras",
            "--output",
            "{o}/m.tflite",
            "--mean",
            "0.5",
            "--std",
            "0",
        ],
        "`--std` must be positive",
    ),
    "mean for a model with preprocessing": (
        [
            "--model-path",
            "{d}/held.keras",
            "--output",
            "{o}/m.tflite",
            "--mean",
            MEAN,
            "--std",
            STD,
        ],
        "holds its preprocessing",
    ),
    "no mean for a model without preprocessing": (
        ["--model-path", "{d}/bare.keras", "--output", "{o}/m.tflite"],
        "does not hold its preprocessing",
    ),
    "int8 without calibration": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/m.tflite", "--quantization", "int8"],
        "needs calibration images",
    ),
    "int8-io without int8": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/m.tflite", "--int8-io"],
        "`--int8-io` needs --quantization int8",
    ),
    "labels file missing": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/m.tflite", "--labels", "{d}/nope.txt"],
        "is not a file",
    ),
    "labels count": (
        [
            "--model-path",
            "{d}/held.keras",
            "--output",
            "{o}/m.tflite",
            "--labels",
            "{d}/three_labels.txt",
        ],
        "one name per class (10). Received 3",
    ),
    "calibration folder without images": (
        [
            "--model-path",
            "{d}/held.keras",
            "--output",
            "{o}/m.tflite",
            "--quantization",
            "int8",
            "--calibration-dir",
            "{d}/empty",
        ],
        "no images",
    ),
    "dataset and calibration folder": (
        [
            "--model-path",
            "{d}/held.keras",
            "--output",
            "{o}/m.tflite",
            "--dataset",
            "digits",
            "--calibration-dir",
            "{d}/images",
        ],
        "either --dataset or --calibration-dir",
    ),
    "unknown dataset": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/m.tflite", "--dataset", "mnist"],
        "Unknown dataset",
    ),
    "dataset not prepared": (
        [
            "--model-path",
            "{d}/held.keras",
            "--output",
            "{o}/m.tflite",
            "--quantization",
            "int8",
            "--dataset",
            "cifar100",
            "--data-dir",
            "{d}/empty",
        ],
        "'cifar100' is not prepared",
    ),
    "recipe without dataset": (
        ["--model-path", "{d}/held.keras", "--output", "{o}/m.tflite", "--recipe", "digits"],
        "pass --dataset too",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_EXPORTS))
def test_export_cli_bad_argument_is_an_error_line_exit_2_and_writes_nothing(
    case, files, tmp_path, capsys
):
    argv, message = BAD_EXPORTS[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "taken.tflite").mkdir()
    before = _listing(out)
    argv = [a.format(d=files, o=out) for a in argv]
    status = export_cli.cli(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert message.format(d=files) in err
    assert _listing(out) == before  # no model, sidecar, .partial or temporary file
    assert not (files / "afile").is_dir()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quantization", "int4"], "invalid choice: 'int4'"),
        (["--num-samples", "0"], "expected a positive integer, received '0'"),
        (["--mean", "0.5,x", "--std", "0.2"], "expected 1 or 3 comma-separated finite numbers"),
    ],
)
def test_export_cli_usage_errors_are_argparse_errors(argv, message, files, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        export_cli.cli(
            [
                "--model-path",
                str(files / "bare.keras"),
                "--output",
                str(tmp_path / "m.tflite"),
                *argv,
            ]
        )
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_export_cli_writes_tflite_and_onnx_together_or_nothing(
    files, tmp_path, monkeypatch, capsys
):
    """A failure of the second export (ONNX) must not leave the first one's files behind."""
    from keras_padfree.export import ParityError
    from keras_padfree.export import onnx as onnx_export

    def failing(*args, **kwargs):
        raise ParityError("onnxruntime output differs (injected)")

    monkeypatch.setattr(onnx_export, "build_onnx_export", failing)
    argv = [
        "--model-path",
        str(files / "held.keras"),
        "--output",
        str(tmp_path / "m.tflite"),
        "--onnx",
        str(tmp_path / "m_onnx.onnx"),
    ]
    assert export_cli.cli(argv) == 1
    assert "error: onnxruntime output differs (injected)" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_write_files_all_or_nothing(tmp_path, monkeypatch):
    from keras_padfree.export import _files

    (tmp_path / "a.txt").write_text("old a")
    target = {
        str(tmp_path / "a.txt"): "new a",
        str(tmp_path / "sub" / "b.bin"): b"\x00\x01",
        str(tmp_path / "c.txt"): "new c",
    }
    real_replace = os.replace
    calls = []

    def replace_then_fail(src, dst):
        calls.append(dst)
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(os, "replace", replace_then_fail)
    with pytest.raises(OSError, match="injected"):
        _files.write_files(target)
    assert calls == [str(tmp_path / "a.txt")]
    assert _listing(tmp_path) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old a"
    monkeypatch.setattr(os, "replace", real_replace)
    _files.write_files(target)
    assert _listing(tmp_path) == ["a.txt", "c.txt", "sub", os.path.join("sub", "b.bin")]
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert oct(os.stat(tmp_path / "c.txt").st_mode & 0o777) != oct(0o600)  # not mkstemp's mode


def test_export_cli_from_calibration_folder(files, tmp_path, capsys, monkeypatch):
    """int8 calibrated on a folder of images, prepared as the sidecar says: raw pixels for a model
    that holds its preprocessing, ``(pixel / 255 - mean) / std`` with --mean/--std otherwise."""
    from keras_padfree.export import tflite

    seen = []
    build = tflite.build_tflite_export

    def recording(*args, **kwargs):
        seen.append(np.array(kwargs["representative_data"]))
        return build(*args, **kwargs)

    monkeypatch.setattr(tflite, "build_tflite_export", recording)
    status = export_cli.cli(
        [
            "--model-path",
            str(files / "held.keras"),
            "--output",
            str(tmp_path / "held8.tflite"),
            "--quantization",
            "int8",
            "--calibration-dir",
            str(files / "images"),
            "--num-calibration",
            "12",
        ]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    assert out.err == ""  # the converters' own lines are hidden
    assert out.out.splitlines()[0] == (
        f"wrote {tmp_path}/held8.tflite, {tmp_path}/held8.json, {tmp_path}/held8.labels.txt"
    )
    meta = json.loads((tmp_path / "held8.json").read_text())
    assert meta["quantization"]["calibration_samples"] == 12
    assert meta["input"]["normalization"]["source"] == "model"
    assert meta["parity"]["sample_source"] == "representative_data"

    status = export_cli.cli(
        [
            "--model-path",
            str(files / "bare.keras"),
            "--output",
            str(tmp_path / "bare8.tflite"),
            "--quantization",
            "int8",
            "--calibration-dir",
            str(files / "images"),
            "--num-calibration",
            "12",
            "--mean",
            MEAN,
            "--std",
            STD,
        ]
    )
    assert status == 0, capsys.readouterr().err
    meta = json.loads((tmp_path / "bare8.json").read_text())
    rec = meta["input"]["normalization"]
    assert rec["source"] == "user" and rec["mean"] == list(TEST_MEAN)
    assert rec["std"] == list(TEST_STD)
    raw, normalised = seen
    assert raw.shape == (12, 32, 32, 3) and raw.min() >= 0 and raw.max() > 200  # pixels
    np.testing.assert_allclose(
        normalised, (raw / 255.0 - np.float32(TEST_MEAN)) / TEST_STD, rtol=1e-5, atol=1e-5
    )


# --- evaluate.py ---------------------------------------------------------------------------------


def test_evaluate_model_path_flag_and_positional_alias(files, tmp_path, capsys):
    flag = evaluate_cli.main(
        ["--model-path", str(files / "held.keras"), "--output", str(tmp_path / "flag.json")]
    )
    positional = evaluate_cli.main(
        [str(files / "held.keras"), "--output", str(tmp_path / "pos.json")]
    )
    for key in ("top1", "top5", "loss", "examples"):
        assert flag[key] == positional[key]
    assert flag["examples"] == 359  # the bundled digits' evaluation split
    saved = json.loads((tmp_path / "flag.json").read_text())
    assert saved["input"]["source"] == "model" and saved["top1"] == flag["top1"]


def test_evaluate_feeds_raw_pixels_to_a_model_holding_its_preprocessing(files, tmp_path):
    """The model with preprocessing layers, fed raw pixels, computes what the same network without
    them computes on ``(pixel / 255 - mean) / std``: equal loss and accuracy."""
    held = evaluate_cli.main(
        ["--model-path", str(files / "held.keras"), "--output", str(tmp_path / "held.json")]
    )
    bare = evaluate_cli.main(
        [
            "--model-path",
            str(files / "bare.keras"),
            "--mean",
            MEAN,
            "--std",
            STD,
            "--output",
            str(tmp_path / "bare.json"),
        ]
    )
    assert held["input"]["source"] == "model" and bare["input"]["source"] == "user"
    assert held["top1"] == bare["top1"] and held["top5"] == bare["top5"]
    assert held["loss"] == pytest.approx(bare["loss"], rel=1e-4)
    recipe = evaluate_cli.main(
        ["--model-path", str(files / "bare.keras"), "--output", str(tmp_path / "recipe.json")]
    )
    assert recipe["input"]["source"] == "recipe"  # the digits recipe's own mean/std
    assert recipe["input"]["mean"] == [0.305, 0.305, 0.305]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model-path", "{d}/missing.keras"], "does not exist"),
        (["--model-path", "{d}/garbage.keras"], "is not a .keras file"),
        (["{d}/held.keras", "--model-path", "{d}/bare.keras"], "Give the model once"),
        ([], "`--model-path` is required"),
        (["--model-path", "{d}/held.keras", "--mean", MEAN, "--std", STD], "applied twice"),
        (
            ["--model-path", "{d}/held.keras", "--dataset", "cifar100", "--data-dir", "{d}/empty"],
            "'cifar100' is not prepared",
        ),
        (["--model-path", "{d}/held.keras", "--output", "{d}/empty"], "is a directory"),
    ],
)
def test_evaluate_cli_errors(argv, message, files, capsys):
    status = evaluate_cli.cli([a.format(d=files) for a in argv])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and "Traceback" not in err, err
    assert message in err
    assert os.listdir(files / "empty") == []
