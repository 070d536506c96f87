"""A tiny CNN registered under "tiny_test_cnn" for fast training tests (tests only), and
"tiny_digits_cnn", its variant that learns the bundled digits in two epochs (about 95 % top-1 with
the digits recipe at learning rate 0.005), for tests whose numbers must mean something.

``python tests/training/tiny_model.py ARGS`` runs ``training/fit.py`` (its ``run(ARGS)``: the exit
status and ``error:`` lines of the command line) with the tiny model registered, so subprocess tests
(kill/resume, locks, full disks, distribution) stay fast.
"""

import os
import sys

TINY = "tiny_test_cnn"
TINY_DIGITS = "tiny_digits_cnn"


def tiny_cnn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    normalization=None,
    flatten=False,
):
    """With ``include_preprocessing`` it takes raw pixels, as the zoo's builders do; ``flatten``
    keeps the positions (Flatten instead of the global average pool)."""
    import keras

    from keras_padfree.layers import PaddingFreeDWConv

    inputs = keras.Input(shape=input_shape or (32, 32, 3))
    x = inputs
    if include_preprocessing:
        x = keras.layers.Rescaling(1.0 / 255.0, name="preprocessing_rescale")(x)
        if normalization is not None:
            x = keras.layers.Normalization(
                mean=list(normalization["mean"]),
                variance=[float(s) ** 2 for s in normalization["std"]],
                name="preprocessing_normalize",
            )(x)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = PaddingFreeDWConv(name="pf_dw")(x)
    if flatten:
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(classes, name="predictions")(x)
    x = keras.layers.Activation(classifier_activation, name="predictions_act")(x)
    return keras.Model(inputs, x, name=name or TINY)


def tiny_digits_cnn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    normalization=None,
):
    return tiny_cnn(
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
        name or TINY_DIGITS,
        include_preprocessing,
        normalization,
        flatten=True,
    )


def register():
    from keras_padfree.applications import _registry

    _registry._ensure_loaded()  # noqa: SLF001
    for name, builder in ((TINY, tiny_cnn), (TINY_DIGITS, tiny_digits_cnn)):
        if name not in _registry._REGISTRY:  # noqa: SLF001 -- test-only models
            _registry.register_model(
                name,
                builder,
                family="test",
                variant="pf",
                input_shape=(32, 32, 3),
                classes=10,
                dataset="digits",
                description="tiny test CNN",
            )
    return TINY


def unregister():
    """Removes the tiny models again, so registry-wide tests in the same process never see them."""
    from keras_padfree.applications import _registry

    for name in (TINY, TINY_DIGITS):
        _registry._REGISTRY.pop(name, None)  # noqa: SLF001


def load_fit():
    import importlib.util

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    spec = importlib.util.spec_from_file_location(
        "fit_cli", os.path.join(root, "training", "fit.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slow_batches(seconds):
    """Makes every training batch last at least ``seconds`` (for the kill/resume test)."""
    import time

    from keras_padfree.training import callbacks

    original = callbacks.TrainingBackup.on_train_batch_end

    def slow(self, batch, logs=None):
        time.sleep(seconds)
        return original(self, batch, logs)

    callbacks.TrainingBackup.on_train_batch_end = slow


def _hang_in_commit(position, marker):
    """Stops the backup of ``position`` (epoch, step) between its two renames (kill/resume test).

    The checkpoint folder has its final name, ``latest.json`` still points at the previous one:
    the process writes ``marker`` and sleeps there, for the test to kill it.
    """
    import json
    import time

    from keras_padfree.training import callbacks

    original = callbacks._publish  # noqa: SLF001

    def publish(backup_dir, name, what):
        with open(os.path.join(backup_dir, name, "manifest.json")) as f:
            manifest = json.load(f)
        if (manifest["epoch"], manifest["step"]) == position:
            with open(marker, "w") as f:
                json.dump({"epoch": manifest["epoch"], "step": manifest["step"]}, f)
            time.sleep(600)
        return original(backup_dir, name, what)

    callbacks._publish = publish  # noqa: SLF001


if __name__ == "__main__":
    if os.environ.get("TINY_SLOW_BATCH"):
        _slow_batches(float(os.environ["TINY_SLOW_BATCH"]))
    if os.environ.get("TINY_HANG_IN_COMMIT"):
        epoch, step = (int(v) for v in os.environ["TINY_HANG_IN_COMMIT"].split(","))
        _hang_in_commit((epoch, step), os.environ["TINY_COMMIT_MARKER"])
    register()
    sys.exit(load_fit().run(sys.argv[1:]))
