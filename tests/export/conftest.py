"""Shared helpers of the export tests: a small model of the project's layers, BN calibration."""

import os

import numpy as np
import pytest

# The normalisation the small test models hold (and that user-normalised inputs are given with).
TEST_MEAN = (0.5, 0.45, 0.4)
TEST_STD = (0.25, 0.25, 0.3)


def tiny_model(
    classes=10, size=32, name="tiny_pf", preprocessing=True, mean=TEST_MEAN, std=TEST_STD
):
    """A small classifier from the padding-free layers (stem, both shortcut pools, all positions).

    With ``preprocessing`` it holds its normalisation like the builders' include_preprocessing
    (Rescaling(1/255) + Normalization(mean, std**2)) and takes raw pixels in [0, 255].
    """
    import keras

    from keras_padfree import layers as L

    inp = keras.Input((size, size, 3), name="image")
    x = inp
    if preprocessing:
        x = keras.layers.Rescaling(1.0 / 255.0, name="preprocessing_rescale")(x)
        x = keras.layers.Normalization(
            mean=list(mean), variance=[s * s for s in std], name="preprocessing_normalize"
        )(x)
    x = L.HybridStem(8, strides=1, activation="hard_silu", name="stem")(x)
    x = keras.layers.Conv2D(32, 1, use_bias=False, name="expand")(x)
    x = L.PaddingFreeDWConv(
        kernel_size=5,
        activation="relu",
        shortcut_position="after_bn",
        shortcut_pool_size=5,
        shortcut_padding=1,
        name="down1",
    )(x)
    x = L.PaddingFreeDWConv(kernel_size=3, activation="hard_silu", name="down2")(x)
    x = L.PaddingFreeDWConv(
        kernel_size=3, activation=None, shortcut_position="before_bn", name="down3"
    )(x)
    # > 1024 weights, so the weight-quantising converters (float16, dynamic) quantise it.
    x = keras.layers.Conv2D(64, 1, use_bias=False, name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dense(classes, name="predictions")(x)
    x = keras.layers.Activation("softmax", name="predictions_activation")(x)
    return keras.Model(inp, x, name=name)


def tiny_backbone(size=32, name="tiny_pf_features", as_list=False):
    """``tiny_model``'s layers as a feature pyramid: ``{"P0", "P1", "P2", "P3"}`` (a dict, keys
    in a non-sorted order so that order matters), or with ``as_list`` two same-shape maps and the
    class probabilities ``[P3, P3 doubled, probabilities]``."""
    import keras

    classifier = tiny_model(size=size, name=name)
    levels = {
        "P2": classifier.get_layer("down2").output,
        "P0": classifier.get_layer("expand").output,
        "P3": classifier.get_layer("mix").output,
        "P1": classifier.get_layer("down1").output,
    }
    if not as_list:
        return keras.Model(classifier.input, levels, name=name)
    doubled = keras.layers.Rescaling(2.0, name="doubled")(levels["P3"])
    return keras.Model(classifier.input, [levels["P3"], doubled, classifier.output], name=name)


def calibrate_batchnorm(model, x):
    """Sets every BatchNormalization's moving statistics to those of ``x`` (one forward pass).

    A freshly initialised model has moving mean 0 / variance 1, so in inference mode its
    activations grow layer after layer and its softmax saturates; a trained model's BN statistics
    keep them normalised. This gives random-weight test models that realistic behaviour.
    """
    import keras

    bns = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model(x, training=True)
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum
    return model


def sharpen_classifier(model, factor=8.0):
    """Scales the "predictions" kernel so the random model has decisive (trained-like) outputs."""
    layer = model.get_layer("predictions")
    kernel, *rest = layer.get_weights()
    layer.set_weights([kernel * factor, *rest])
    return model


def normalization_for(model):
    """The exporters' ``normalization`` argument for a test model: "auto" when it holds its
    preprocessing, else the test mean/std (the inputs the tests feed are normalised with it)."""
    from keras_padfree.export import metadata as md

    if md.model_preprocessing(model) is not None:
        return "auto"
    return {"mean": list(TEST_MEAN), "std": list(TEST_STD)}


def sample_images(model, count, seed):
    """``count`` deterministic synthetic images in the model's input space (raw pixels for a
    model that holds its preprocessing, else normalised with the test mean/std)."""
    from keras_padfree.export import _prepare
    from keras_padfree.export import metadata as md

    norm = md.resolve_normalization(normalization_for(model), model)
    return _prepare.synthetic_images(tuple(model.input_shape[1:]), count, norm, seed=seed)


def realistic(model, seed=0, count=16):
    """A random-weight model with calibrated BN, as the export tests use it."""
    return calibrate_batchnorm(model, sample_images(model, count, seed=seed + 100))


def digits_pixels(split, size=32, recipe="digits"):
    """The bundled digits of ``split`` as raw RGB pixels (float32 in [0, 255]) resized by the
    recipe's evaluation transform, and their labels."""
    import dataclasses

    from keras_padfree import data
    from keras_padfree import training

    prep = dataclasses.replace(training.get_recipe(recipe).preprocessing, mean=None, std=None)
    source = data.load_source("digits", split)
    ds = data.eval_dataset(source, prep, size=size, classes=source.classes, batch_size=512)
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy() * 255.0)
        labels.append(y.numpy().argmax(-1))
    return np.concatenate(images).astype("float32"), np.concatenate(labels)


def model_inputs(pixels, normalization):
    """Raw pixels -> the model's input space, as the sidecar of ``normalization`` says."""
    if normalization == "auto":
        return pixels
    mean = np.asarray(normalization["mean"], "float32")
    std = np.asarray(normalization["std"], "float32")
    return (pixels / np.float32(255.0) - mean) / std


def trained_on_digits(name, output_dir, size=32):
    """A registry model trained by ``keras_padfree.training.train`` on the bundled digits (its
    ``digits`` recipe, 3 epochs), plus training images (int8 calibration) and test images (parity)
    in the model's input space, and the exporters' ``normalization`` argument for it. Returns
    ``(path of final.keras, train images, test images, normalization)``.

    Quantisation error depends on the weights: a random-weight BN network amplifies small weight
    perturbations layer after layer. ShuffleNetV2-PF (about 50 BN layers, no residual additions):
    rounding its random weights to float16 in Keras itself moved its probabilities by up to 0.059;
    trained with this recipe, its float16 file differs from Keras by 0.002. So quantised parity is
    checked on trained weights and real images.
    """
    import keras

    from keras_padfree import training
    from keras_padfree.export import metadata as md

    training.train(
        training.TrainConfig(
            model=name,
            dataset="digits",
            image_size=size,
            output_dir=str(output_dir),
            tensorboard=False,
            verbose=0,
        )
    )
    path = os.path.join(output_dir, "final.keras")
    model = keras.saving.load_model(path)
    if md.model_preprocessing(model) is not None:
        normalization = "auto"
    else:  # saved by a training.train that normalised in the pipeline
        prep = training.get_recipe("digits").preprocessing
        normalization = {"mean": list(prep.mean), "std": list(prep.std)}
    train = model_inputs(digits_pixels("train", size)[0], normalization)
    test = model_inputs(digits_pixels("eval", size)[0], normalization)
    return path, train, test, normalization


@pytest.fixture
def tmp_out(tmp_path):
    return tmp_path
