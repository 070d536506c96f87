"""End-to-end runs of training/fit.py: datasets, resumption after SIGKILL, distribution, and models
that hold their input normalisation (they take raw pixels)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests.training import tiny_model

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
TINY_SCRIPT = os.path.join(HERE, "tiny_model.py")
BACKEND = keras.backend.backend()


@pytest.fixture(scope="module")
def fit():
    tiny_model.register()
    yield tiny_model.load_fit()
    tiny_model.unregister()


def _log_epochs(out):
    with open(os.path.join(out, "train_log.csv"), newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _final(out):
    with open(os.path.join(out, "final.json")) as f:
        return json.load(f)


def _env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    if BACKEND == "tensorflow":
        # fit.py turns on TensorFlow's oneDNN kernels unless told otherwise; its subprocesses
        # here run the kernels this process runs, so that their weights can be compared with
        # runs in this process bit for bit.
        from keras_padfree.training import speed

        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if speed.tensorflow_onednn_enabled() else "0"
    env.update(extra)
    return env


def _tensorflow_sees_accelerator():
    import tensorflow as tf

    return any(d.device_type != "CPU" for d in tf.config.list_physical_devices())


@pytest.fixture(scope="module")
def digits_run(fit, tmp_path_factory):
    """Two epochs of 6 batches of the tiny model on the bundled digits: (folder, result)."""
    out = str(tmp_path_factory.mktemp("digits") / "run")
    result = fit.main(
        [
            "--model",
            tiny_model.TINY,
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--steps-per-epoch",
            "6",
            "--output-dir",
            out,
            "--verbose",
            "0",
            "--learning-rate",
            "0.05",
        ]
    )
    return out, result


@pytest.mark.all_backends
def test_fit_on_bundled_digits(digits_run):
    out, result = digits_run
    assert result["backend"] == BACKEND
    # --jit-compile auto (the default): XLA off where benchmarks/train_throughput.py found it
    # slower (TensorFlow on CPU, PyTorch), always on for JAX.
    expected_jit = _tensorflow_sees_accelerator() if BACKEND == "tensorflow" else BACKEND == "jax"
    assert result["jit_compile"] is expected_jit
    # training.speed's kernels for this backend, for the run only (the process gets Keras' back).
    from keras_padfree.training import speed

    expected = (
        speed.DEFAULT_KERNELS.get(BACKEND, ()) if speed.default_settings()["fast_kernels"] else ()
    )
    assert result["kernels"] == sorted(expected)
    assert speed.fast_kernels_installed() == []
    assert result["optimizer_steps"] == 12 and result["eval_examples"] == 359
    assert np.isfinite(result["loss"]) and 0.0 <= result["top1"] <= result["top5"] <= 1.0
    assert _log_epochs(out) == [0, 1]
    assert _final(out)["top1"] == result["top1"]
    for name in ("final.keras", "best.keras", "best.json", "last.keras", "run.json"):
        assert os.path.exists(os.path.join(out, name)), name
    # The backup is kept at the end position (a finished run can be continued with more epochs).
    from keras_padfree.training.callbacks import read_backup_state

    assert read_backup_state(os.path.join(out, "backup")) == {
        "epoch": 2,
        "step": 0,
        "iterations": 12,
    }
    assert not os.path.exists(os.path.join(out, "run.lock"))  # released
    model = keras.saving.load_model(os.path.join(out, "final.keras"))
    assert model.output_shape == (None, 10)
    # evaluate.py gives the same numbers from the saved model.
    spec = __import__("importlib.util").util.spec_from_file_location(
        "evaluate_cli", os.path.join(ROOT, "training", "evaluate.py")
    )
    evaluate = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    ev = evaluate.main(
        [os.path.join(out, "final.keras"), "--dataset", "digits", "--recipe", "digits"]
    )
    assert ev["top1"] == pytest.approx(result["top1"], abs=1e-6)
    assert ev["input"]["source"] == "model"  # raw pixels; the normalisation read from the model
    assert os.path.exists(os.path.join(out, "final.digits_test.json"))


@pytest.mark.parametrize(
    "dataset,recipe_flag,recipe,classes",
    [
        # The tiny test model states no recipes: the dataset's default recipe.
        ("cifar100", None, "bsconv_set1", 100),
        ("stanford_dogs", "bsconv_set1_dogs", "bsconv_set1_dogs", 120),
    ],
)
def test_fit_on_mocked_tfds(fit, tmp_path, dataset, recipe_flag, recipe, classes):
    import tensorflow_datasets as tfds

    out = str(tmp_path / dataset)
    extra = ["--recipe", recipe_flag] if recipe_flag else []
    with tfds.testing.mock_data(num_examples=20):
        result = fit.main(
            [
                "--model",
                tiny_model.TINY,
                "--dataset",
                dataset,
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--image-size",
                "32",
                "--output-dir",
                out,
                "--verbose",
                "0",
                "--data-dir",
                str(tmp_path / "tfds"),
            ]
            + extra
        )
    assert result["recipe"] == recipe and result["classes"] == classes
    assert result["eval_examples"] == 20 and result["optimizer_steps"] == 3  # ceil(20 / 8)
    assert np.isfinite(result["loss"])


def test_fit_on_an_image_folder_with_undecodable_files(fit, tmp_path, monkeypatch):
    from tests.data.test_data import _write_folder
    from tests.data.test_folder_scan import _write_bad_files

    monkeypatch.setenv("KERAS_PADFREE_CACHE_DIR", str(tmp_path / "cache"))
    corrupt = _write_folder(str(tmp_path / "images"), per_class=6)
    # Valid headers, undecodable bodies: they must not be counted as training examples.
    bad = _write_bad_files(str(tmp_path / "images"))
    out = str(tmp_path / "run")
    with pytest.warns(UserWarning, match="Skipped 4 undecodable"):
        result = fit.main(
            [
                "--model",
                tiny_model.TINY,
                "--dataset",
                "folder",
                "--data-dir",
                str(tmp_path / "images"),
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--image-size",
                "32",
                "--val-fraction",
                "0.34",
                "--output-dir",
                out,
                "--verbose",
                "0",
            ]
        )
    assert result["classes"] == 2 and result["recipe"] == "vegfru292"
    assert result["skipped_corrupt_files"] == sorted([corrupt] + bad)
    # 12 decodable images: 2 + 2 held out, 8 trained in 2 full batches of 4.
    assert result["eval_examples"] == 4 and result["optimizer_steps"] == 2
    assert np.isfinite(result["loss"])


@pytest.mark.heavy
def test_killed_run_resumes_without_repeating_or_losing_a_step(fit, tmp_path):
    out = str(tmp_path / "run")
    marker = str(tmp_path / "in_commit.json")
    args = [
        sys.executable,
        TINY_SCRIPT,
        "--model",
        tiny_model.TINY,
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--steps-per-epoch",
        "30",
        "--backup-freq",
        "4",
        "--output-dir",
        out,
        "--verbose",
        "2",
        "--seed",
        "1",
    ]
    # SIGKILL in the middle of epoch 1, while the backup of step 8 is being committed: its
    # checkpoint folder is renamed into place, latest.json still names the one of step 4.
    proc = subprocess.Popen(
        args,
        env=_env(TINY_HANG_IN_COMMIT="1,8", TINY_COMMIT_MARKER=marker, KERAS_BACKEND=BACKEND),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not os.path.exists(marker):
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _log_epochs(out) == [0]  # killed in the middle of epoch 1

    resumed = subprocess.run(
        args, env=_env(KERAS_BACKEND=BACKEND), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    with open(os.path.join(out, "final.json")) as f:
        final = json.load(f)
    # The committed backup (step 4), not the half-committed one (step 8).
    assert "Resuming from epoch 1, step 4 (optimizer step 34)" in resumed.stdout
    assert _log_epochs(out) == [0, 1, 2]  # every epoch exactly once
    assert final["optimizer_steps"] == 3 * 30  # every step exactly once

    # An uninterrupted run with the same seed ends with bit-identical weights.
    ref = str(tmp_path / "ref")
    fit.main(args[2:-6] + ["--output-dir", ref, "--verbose", "0", "--seed", "1"])
    a = keras.saving.load_model(os.path.join(out, "final.keras")).get_weights()
    b = keras.saving.load_model(os.path.join(ref, "final.keras")).get_weights()
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _assert_holds_its_normalisation(out):
    from keras_padfree.export import model_preprocessing
    from keras_padfree.training import get_recipe

    assert _final(out)["input"] == "raw_pixels"
    held = model_preprocessing(keras.saving.load_model(os.path.join(out, "final.keras")))
    np.testing.assert_allclose(held["mean"], get_recipe("digits").preprocessing.mean, rtol=1e-6)


@pytest.mark.heavy
def test_mirrored_on_two_logical_cpus(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [
            sys.executable,
            TINY_SCRIPT,
            "--model",
            tiny_model.TINY,
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--steps-per-epoch",
            "3",
            "--distribute",
            "mirrored",
            "--cpu-devices",
            "2",
            "--output-dir",
            out,
            "--verbose",
            "0",
        ],
        env=_env(KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = _final(out)
    assert final["replicas"] == 2 and final["distribute"] == "mirrored"
    assert np.isfinite(final["loss"]) and final["optimizer_steps"] == 3
    _assert_holds_its_normalisation(out)


@pytest.mark.heavy
def test_jax_data_parallel_on_two_host_devices(tmp_path):
    pytest.importorskip("jax")
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [
            sys.executable,
            TINY_SCRIPT,
            "--model",
            tiny_model.TINY,
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--steps-per-epoch",
            "3",
            "--distribute",
            "data_parallel",
            "--output-dir",
            out,
            "--verbose",
            "0",
        ],
        env=_env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = _final(out)
    assert final["replicas"] == 2 and final["backend"] == "jax"
    assert np.isfinite(final["loss"]) and final["optimizer_steps"] == 3
    _assert_holds_its_normalisation(out)


def test_bad_flags_are_refused(fit, tmp_path):
    with pytest.raises(ValueError, match="distribute"):
        fit.main(
            ["--model", tiny_model.TINY, "--distribute", "bogus", "--output-dir", str(tmp_path)]
        )
    with pytest.raises(ValueError, match="Unknown model name"):
        fit.main(["--model", "no_such_model", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        fit.main(["--epochs", "0"])


@pytest.mark.large
def test_default_run_learns_the_digits(tmp_path):
    """The README's main command: no arguments, bundled digits, must clearly learn."""
    out = str(tmp_path / "default")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "training", "fit.py"), "--output-dir", out],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = _final(out)
    assert final["model"] == "bsconv_resnet20_pf_cifar" and final["dataset"] == "digits"
    assert final["top1"] > 0.9


# -- Models that hold their input normalisation ---------------------------------------------------


def _raw_digits(size=32):
    """The bundled digits' evaluation split as stored (uint8 0..255), only made RGB and resized
    to the model's input: no scaling, no normalisation. And their labels."""
    import tensorflow as tf

    from keras_padfree import data

    images, labels = data.load_digits("test")
    rgb = tf.image.grayscale_to_rgb(tf.cast(images, tf.float32))
    return tf.image.resize(rgb, (size, size), method="bilinear").numpy(), labels


def _preprocessing_layers(model):
    return [
        layer
        for layer in model.layers
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization))
    ]


@pytest.fixture(scope="module")
def learned_digits_run(fit, tmp_path_factory):
    """Two full epochs of a tiny CNN that learns the digits (about 95 % top-1): its numbers
    depend on what the model is fed."""
    out = str(tmp_path_factory.mktemp("learned") / "run")
    fit.main(
        [
            "--model",
            tiny_model.TINY_DIGITS,
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--learning-rate",
            "0.005",
            "--output-dir",
            out,
            "--verbose",
            "0",
            "--no-tensorboard",
        ]
    )
    return out


@pytest.mark.all_backends
def test_final_model_takes_raw_pixels_and_reproduces_final_json(learned_digits_run):
    """final.keras (and best.keras) hold the recipe's normalisation: fed the digits' raw pixels,
    with nothing done to them outside the model, they give final.json's top-1."""
    from keras_padfree.export import model_preprocessing
    from keras_padfree.training import get_recipe

    out = learned_digits_run
    final = _final(out)
    assert final["top1"] > 0.8, final["top1"]  # learned: a wrong input would show
    assert final["input"] == "raw_pixels" and final["settings"]["input"] == "raw_pixels"
    prep = get_recipe("digits").preprocessing
    assert final["normalization"]["mean"] == list(prep.mean)
    x, labels = _raw_digits()
    assert x.max() == 255.0  # raw pixels, not [0, 1]
    model = keras.saving.load_model(os.path.join(out, "final.keras"))
    held = model_preprocessing(model)  # what the export reads
    assert held["layers"] == ["preprocessing_rescale", "preprocessing_normalize"]
    np.testing.assert_allclose(held["mean"], prep.mean, rtol=1e-6)
    np.testing.assert_allclose(held["std"], prep.std, rtol=1e-6)
    probs = keras.ops.convert_to_numpy(model.predict(x, batch_size=128, verbose=0))
    top1 = float(np.mean(probs.argmax(-1) == labels))
    # The same examples right (Keras' accuracy metric counts in float32: 1e-6, not 1/359).
    assert top1 == pytest.approx(final["top1"], abs=1e-6), (top1, final["top1"])
    # Not by chance: the same images normalised outside as well (the old convention fed to this
    # model) give other predictions.
    twice = (x / 255.0 - np.float32(prep.mean)) / np.float32(prep.std)
    other = keras.ops.convert_to_numpy(model.predict(twice, batch_size=128, verbose=0))
    assert np.abs(other - probs).max() > 0.05
    best = keras.saving.load_model(os.path.join(out, "best.keras"))
    assert model_preprocessing(best)["layers"] == held["layers"]


def test_models_are_built_with_the_recipes_normalisation(fit):
    """Every builder gets include_preprocessing=True and the recipe's mean/std explicitly (not
    its layout's default); a builder without those arguments is wrapped; one that ignores them is
    refused."""
    from keras_padfree import applications
    from keras_padfree.export import model_preprocessing
    from keras_padfree.training import build_model
    from keras_padfree.training import get_recipe

    # PydMobileNet's layout default is not its recipe's value on every dataset: ask for ImageNet's.
    norm = {
        "mean": list(get_recipe("pydmobilenet_imagenet32").preprocessing.mean),
        "std": list(get_recipe("pydmobilenet_imagenet32").preprocessing.std),
    }
    model = build_model(
        "pydmobilenet29_025_concat_pf_cifar",
        input_shape=(32, 32, 3),
        classes=10,
        normalization=norm,
    )
    assert len(_preprocessing_layers(model)) == 2  # once, not twice
    held = model_preprocessing(model)
    np.testing.assert_allclose(held["mean"], norm["mean"], rtol=1e-6)
    np.testing.assert_allclose(held["std"], norm["std"], rtol=1e-6)
    # The BSConv recipes do not normalise (the model starts with a learnable BN): mean 0, std 1.
    model = build_model(
        "bsconv_resnet20_pf_cifar",
        input_shape=(32, 32, 3),
        classes=10,
        normalization={"mean": [0.0] * 3, "std": [1.0] * 3},
    )
    held = model_preprocessing(model)
    assert held["mean"] == [0.0] * 3 and held["std"] == [1.0] * 3
    assert held["scale"] == pytest.approx([1 / 255.0] * 3)

    from keras_padfree.applications import _registry

    def plain(input_shape=None, classes=10, **kwargs):  # a user's builder: no such arguments
        return tiny_model.tiny_cnn(input_shape=input_shape, classes=classes)

    def ignoring(
        input_shape=None, classes=10, include_preprocessing=False, normalization=None, **kwargs
    ):
        return tiny_model.tiny_cnn(input_shape=input_shape, classes=classes)

    for name, builder in (("plain_test_cnn", plain), ("ignoring_test_cnn", ignoring)):
        _registry.register_model(
            name,
            builder,
            family="test",
            variant="pf",
            input_shape=(32, 32, 3),
            classes=10,
            dataset="digits",
            description="test",
        )
    try:
        model = build_model(
            "plain_test_cnn", input_shape=(32, 32, 3), classes=10, normalization=norm
        )
        np.testing.assert_allclose(model_preprocessing(model)["mean"], norm["mean"], rtol=1e-6)
        x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
        inner = model.layers[-1]
        expected = inner((x / 255.0 - np.float32(norm["mean"])) / np.float32(norm["std"]))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(model(x)),
            keras.ops.convert_to_numpy(expected),
            rtol=1e-4,
            atol=1e-6,
        )
        with pytest.raises(ValueError, match="did not put the requested input normalisation"):
            build_model(
                "ignoring_test_cnn", input_shape=(32, 32, 3), classes=10, normalization=norm
            )
    finally:
        _registry.unregister_model("plain_test_cnn")
        _registry.unregister_model("ignoring_test_cnn")
    assert applications.get_model_info(tiny_model.TINY).name == tiny_model.TINY


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_runs_normalise_in_float32(fit, tmp_path, policy):
    """Under a mixed policy the saved model's Rescaling / Normalization compute in float32 and
    hold the recipe's exact values: its first 16-bit layer gets the float32-normalised images the
    pipeline fed it before models held their normalisation (in 16 bits they would be up to 5
    times further off). The run trains and saves a model that takes raw pixels."""
    from keras_padfree.export import model_preprocessing
    from keras_padfree.training import get_recipe

    out = str(tmp_path / "run")
    try:
        result = fit.main(
            [
                "--model",
                tiny_model.TINY,
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--steps-per-epoch",
                "3",
                "--eval-steps",
                "2",
                "--output-dir",
                out,
                "--verbose",
                "0",
                "--no-tensorboard",
                "--mixed-precision",
                policy,
            ]
        )
        model = keras.saving.load_model(os.path.join(out, "final.keras"))
    finally:
        keras.config.set_dtype_policy("float32")
    assert result["precision"] == policy and np.isfinite(result["loss"])
    layers = _preprocessing_layers(model)
    assert [layer.name for layer in layers] == ["preprocessing_rescale", "preprocessing_normalize"]
    assert [layer.dtype_policy.name for layer in layers] == ["float32", "float32"]
    assert model.get_layer("stem_conv").dtype_policy.name == policy  # the rest: mixed
    prep = get_recipe("digits").preprocessing
    held = model_preprocessing(model)
    np.testing.assert_allclose(held["mean"], prep.mean, rtol=1e-6)
    np.testing.assert_allclose(held["std"], prep.std, rtol=1e-6)
    x, _ = _raw_digits()
    x = x[:64]
    normalised = keras.ops.convert_to_numpy(layers[1](layers[0](x)))
    assert normalised.dtype == np.float32
    expected = (x / np.float32(255.0) - np.float32(prep.mean)) / np.float32(prep.std)
    np.testing.assert_allclose(normalised, expected, rtol=1e-5, atol=1e-5)
    probs = keras.ops.convert_to_numpy(model.predict(_raw_digits()[0][:32], verbose=0))
    assert probs.dtype == np.float32 and np.all(np.isfinite(probs))


def test_the_default_model_is_named_as_registered(fit):
    from keras_padfree import applications
    from keras_padfree.training import TrainConfig

    name = TrainConfig().model
    assert name == fit.DEFAULT_MODEL == "bsconv_resnet20_pf_cifar"
    assert applications.get_model_info(name).name == name  # no alias: no rename warning
