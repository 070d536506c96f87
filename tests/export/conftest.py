"""Shared helpers of the export tests: a small model of the project's layers, BN calibration."""

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


def realistic(model, seed=0, count=16):
    """A random-weight model with calibrated BN, as the export tests use it."""
    from keras_padfree.export import _prepare
    from keras_padfree.export import metadata as md

    shape = tuple(model.input_shape[1:])
    norm = md.resolve_normalization("auto", model, model_name=model.name)
    x = _prepare.synthetic_images(shape, count, norm, seed=seed + 100)
    return calibrate_batchnorm(model, x)


@pytest.fixture
def tmp_out(tmp_path):
    return tmp_path
