"""End-to-end runs of training/fit.py: datasets, resumption after SIGKILL, distribution."""

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
    env.update(extra)
    return env


def _tensorflow_sees_accelerator():
    import tensorflow as tf

    return any(d.device_type != "CPU" for d in tf.config.list_physical_devices())


@pytest.mark.all_backends
def test_fit_on_bundled_digits(fit, tmp_path):
    out = str(tmp_path / "run")
    result = fit.main(["--model", tiny_model.TINY, "--epochs", "2", "--batch-size", "32",
                       "--steps-per-epoch", "6", "--output-dir", out, "--verbose", "0",
                       "--learning-rate", "0.05"])
    assert result["backend"] == BACKEND
    # --jit-compile auto (the default): XLA off where benchmarks/train_throughput.py found it
    # slower (TensorFlow on CPU, PyTorch), always on for JAX.
    expected_jit = (_tensorflow_sees_accelerator() if BACKEND == "tensorflow"
                    else BACKEND == "jax")
    assert result["jit_compile"] is expected_jit
    assert result["optimizer_steps"] == 12 and result["eval_examples"] == 359
    assert np.isfinite(result["loss"]) and 0.0 <= result["top1"] <= result["top5"] <= 1.0
    assert _log_epochs(out) == [0, 1]
    assert _final(out)["top1"] == result["top1"]
    for name in ("final.keras", "best.keras", "best.json", "last.keras", "run.json"):
        assert os.path.exists(os.path.join(out, name)), name
    # The backup is kept at the end position (a finished run can be continued with more epochs).
    from keras_padfree.training.callbacks import read_backup_state

    assert read_backup_state(os.path.join(out, "backup")) == {
        "epoch": 2, "step": 0, "iterations": 12}
    assert not os.path.exists(os.path.join(out, "run.lock"))  # released
    model = keras.saving.load_model(os.path.join(out, "final.keras"))
    assert model.output_shape == (None, 10)
    # evaluate.py gives the same numbers from the saved model.
    spec = __import__("importlib.util").util.spec_from_file_location(
        "evaluate_cli", os.path.join(ROOT, "training", "evaluate.py"))
    evaluate = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    ev = evaluate.main([os.path.join(out, "final.keras"), "--dataset", "digits", "--recipe",
                        "digits"])
    assert ev["top1"] == pytest.approx(result["top1"], abs=1e-6)
    assert os.path.exists(os.path.join(out, "final.digits_test.json"))


@pytest.mark.parametrize("dataset,recipe_flag,recipe,classes", [
    # The tiny test model is no BSConv/PydMobileNet model: the second set's recipe by default.
    ("cifar100", None, "second_set_cifar", 100),
    ("stanford_dogs", "bsconv_set1_dogs", "bsconv_set1_dogs", 120)])
def test_fit_on_mocked_tfds(fit, tmp_path, dataset, recipe_flag, recipe, classes):
    import tensorflow_datasets as tfds

    out = str(tmp_path / dataset)
    extra = ["--recipe", recipe_flag] if recipe_flag else []
    with tfds.testing.mock_data(num_examples=20):
        result = fit.main(["--model", tiny_model.TINY, "--dataset", dataset, "--epochs", "1",
                           "--batch-size", "8", "--image-size", "32", "--output-dir", out,
                           "--verbose", "0", "--data-dir", str(tmp_path / "tfds")] + extra)
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
        result = fit.main(["--model", tiny_model.TINY, "--dataset", "folder", "--data-dir",
                           str(tmp_path / "images"), "--epochs", "1", "--batch-size", "4",
                           "--image-size", "32", "--val-fraction", "0.34", "--output-dir", out,
                           "--verbose", "0"])
    assert result["classes"] == 2 and result["recipe"] == "vegfru292"
    assert result["skipped_corrupt_files"] == sorted([corrupt] + bad)
    # 12 decodable images: 2 + 2 held out, 8 trained in 2 full batches of 4.
    assert result["eval_examples"] == 4 and result["optimizer_steps"] == 2
    assert np.isfinite(result["loss"])


@pytest.mark.heavy
def test_killed_run_resumes_without_repeating_or_losing_a_step(fit, tmp_path):
    out = str(tmp_path / "run")
    marker = str(tmp_path / "in_commit.json")
    args = [sys.executable, TINY_SCRIPT, "--model", tiny_model.TINY, "--epochs", "3",
            "--batch-size", "16", "--steps-per-epoch", "30", "--backup-freq", "4",
            "--output-dir", out, "--verbose", "2", "--seed", "1"]
    # SIGKILL in the middle of epoch 1, while the backup of step 8 is being committed: its
    # checkpoint folder is renamed into place, latest.json still names the one of step 4.
    proc = subprocess.Popen(args, env=_env(TINY_HANG_IN_COMMIT="1,8", TINY_COMMIT_MARKER=marker,
                                           KERAS_BACKEND=BACKEND),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not os.path.exists(marker):
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _log_epochs(out) == [0]  # killed in the middle of epoch 1

    resumed = subprocess.run(args, env=_env(KERAS_BACKEND=BACKEND), capture_output=True,
                             text=True, timeout=300)
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


@pytest.mark.heavy
def test_mirrored_on_two_logical_cpus(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, TINY_SCRIPT, "--model", tiny_model.TINY, "--epochs", "1",
         "--batch-size", "16", "--steps-per-epoch", "3", "--distribute", "mirrored",
         "--cpu-devices", "2", "--output-dir", out, "--verbose", "0"],
        env=_env(KERAS_BACKEND="tensorflow"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = _final(out)
    assert final["replicas"] == 2 and final["distribute"] == "mirrored"
    assert np.isfinite(final["loss"]) and final["optimizer_steps"] == 3


@pytest.mark.heavy
def test_jax_data_parallel_on_two_host_devices(tmp_path):
    pytest.importorskip("jax")
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, TINY_SCRIPT, "--model", tiny_model.TINY, "--epochs", "1",
         "--batch-size", "16", "--steps-per-epoch", "3", "--distribute", "data_parallel",
         "--output-dir", out, "--verbose", "0"],
        env=_env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = _final(out)
    assert final["replicas"] == 2 and final["backend"] == "jax"
    assert np.isfinite(final["loss"]) and final["optimizer_steps"] == 3


def test_bad_flags_are_refused(fit, tmp_path):
    with pytest.raises(ValueError, match="distribute"):
        fit.main(["--model", tiny_model.TINY, "--distribute", "bogus", "--output-dir",
                  str(tmp_path)])
    with pytest.raises(ValueError, match="Unknown model name"):
        fit.main(["--model", "no_such_model", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        fit.main(["--epochs", "0"])


@pytest.mark.large
def test_default_run_learns_the_digits(tmp_path):
    """The README's main command: no arguments, bundled digits, must clearly learn."""
    out = str(tmp_path / "default")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "training", "fit.py"),
                           "--output-dir", out], env=_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = _final(out)
    assert final["model"] == "bsconv_resnet20_cifar_pf" and final["dataset"] == "digits"
    assert final["top1"] > 0.9


def test_pipeline_models_do_not_normalise_twice(fit):
    # The pipeline normalises with the recipe's mean/std; PydMobileNet's in-model normalisation
    # (Rescaling 1/255 + Normalization, for raw [0, 255] pixels) must then be left out.
    from keras_padfree import applications
    from keras_padfree.training.loop import pipeline_model_kwargs

    info = applications.get_model_info("pydmobilenet29_025_concat_pf_cifar")
    kwargs = pipeline_model_kwargs(info)
    assert kwargs == {"include_preprocessing": False}
    model = applications.create_model(info.name, **kwargs)
    assert not any(isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization))
                   for layer in model.layers)
    # A builder without the option gets no such argument.
    tiny_model.register()
    assert pipeline_model_kwargs(applications.get_model_info(tiny_model.TINY)) == {}
