"""Shared helpers of the export tests: a small model of the project's layers, BN calibration."""

import os

import numpy as np
import pytest


def tiny_model(classes=10, size=32, name="tiny_pf"):
    """A small classifier from the padding-free layers (stem, both shortcut pools, all positions)."""
    import keras

    from keras_padfree import layers as L

    inp = keras.Input((size, size, 3), name="image")
    x = L.HybridStem(8, strides=1, activation="hard_silu", name="stem")(inp)
    x = keras.layers.Conv2D(32, 1, use_bias=False, name="expand")(x)
    x = L.PaddingFreeDWConv(kernel_size=5, activation="relu", shortcut_position="after_bn",
                            shortcut_pool_size=5, shortcut_padding=1, name="down1")(x)
    x = L.PaddingFreeDWConv(kernel_size=3, activation="hard_silu", name="down2")(x)
    x = L.PaddingFreeDWConv(kernel_size=3, activation=None, shortcut_position="before_bn",
                            name="down3")(x)
    # > 1024 weights, so the weight-quantising converters (float16, dynamic) quantise it.
    x = keras.layers.Conv2D(64, 1, use_bias=False, name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dense(classes, name="predictions")(x)
    x = keras.layers.Activation("softmax", name="predictions_activation")(x)
    return keras.Model(inp, x, name=name)


def calibrate_batchnorm(model, x):
    """Sets every BatchNormalization's moving statistics to those of ``x`` (one forward pass).

    A freshly initialised model has moving mean 0 / variance 1, so in inference mode its
    activations grow layer after layer and its softmax saturates; a trained model's BN statistics
    keep them normalised. This gives random-weight test models that realistic behaviour.
    """
    import keras

    bns = [layer for layer in model._flatten_layers()
           if isinstance(layer, keras.layers.BatchNormalization)]
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


def sample_images(model, count, seed):
    """``count`` deterministic synthetic images normalised as the model's input expects."""
    from keras_padfree.export import _prepare
    from keras_padfree.export import metadata as md

    norm = md.resolve_normalization("auto", model, model_name=model.name)
    return _prepare.synthetic_images(tuple(model.input_shape[1:]), count, norm, seed=seed)


def realistic(model, seed=0, count=16):
    """A random-weight model with calibrated BN, as the export tests use it."""
    return calibrate_batchnorm(model, sample_images(model, count, seed=seed + 100))


def trained_on_digits(name, output_dir, size=32):
    """A registry model trained by ``keras_padfree.training.train`` on the bundled digits (its
    ``digits`` recipe, 3 epochs), plus preprocessed training images (int8 calibration) and test
    images (parity). Returns ``(path of final.keras, train images, test images)``.

    Quantisation error depends on the weights: a random-weight BN network amplifies small weight
    perturbations layer after layer. ShuffleNetV2-PF (about 50 BN layers, no residual additions):
    rounding its random weights to float16 in Keras itself moved its probabilities by up to 0.059;
    trained with this recipe, its float16 file differs from Keras by 0.002. So quantised parity is
    checked on trained weights and real images.
    """
    from keras_padfree import data, training

    training.train(training.TrainConfig(model=name, dataset="digits", image_size=size,
                                        output_dir=str(output_dir), tensorboard=False,
                                        verbose=0))
    prep = training.get_recipe("digits").preprocessing

    def images(split):
        source = data.load_source("digits", split)
        ds = data.eval_dataset(source, prep, size=size, classes=source.classes, batch_size=256)
        return np.concatenate([x.numpy() for x, _ in ds])

    return os.path.join(output_dir, "final.keras"), images("train"), images("eval")


@pytest.fixture
def tmp_out(tmp_path):
    return tmp_path
