"""ParCConv: NumPy reference of the circular conv, kernel sizing, counting, serialization."""

import os

import keras
import numpy as np
import pytest

from keras_padfree import profiling
from keras_padfree.layers import ParCConv


def np_parc(x, kernel, bias, pe, direction):
    """Circular cross-correlation starting at offset 0 (the reference's circular-concat conv).

    x (N, H, W, C); kernel (K, 1, C, 1) or (1, K, C, 1); y[i] = b + sum_t w[t] x[(i + t) mod H].
    """
    x = x.astype(np.float64)
    if pe is not None:
        x = x + pe
    if direction == "vertical":
        w = kernel[:, 0, :, 0]  # (K, C)
        size, axis = x.shape[1], 1
    else:
        w = kernel[0, :, :, 0]
        size, axis = x.shape[2], 2
    out = np.zeros_like(x)
    for i in range(size):
        acc = np.zeros_like(np.take(x, 0, axis=axis))
        for t in range(w.shape[0]):
            acc = acc + np.take(x, (i + t) % size, axis=axis) * w[t]
        if axis == 1:
            out[:, i] = acc
        else:
            out[:, :, i] = acc
    return out + bias


@pytest.mark.all_backends
@pytest.mark.parametrize("direction", ["vertical", "horizontal"])
@pytest.mark.parametrize("use_pe", [False, True])
def test_matches_numpy_circular_conv(direction, use_pe):
    rng = np.random.RandomState(0)
    x = rng.randn(2, 5, 7, 6).astype("float32")  # non-square: K follows the conv axis
    layer = ParCConv(direction, use_pe=use_pe)
    layer.build(x.shape)
    k = 5 if direction == "vertical" else 7
    assert layer.kernel_size == k
    kshape = (k, 1, 6, 1) if direction == "vertical" else (1, k, 6, 1)
    assert tuple(layer.kernel.shape) == kshape
    kernel = rng.randn(*kshape).astype("float32")
    bias = rng.randn(6).astype("float32")
    weights = [kernel, bias]
    pe = None
    if use_pe:
        pshape = (k, 1, 6) if direction == "vertical" else (1, k, 6)
        assert tuple(layer.pe.shape) == pshape
        pe = rng.randn(*pshape).astype("float32")
        weights.append(pe)
    layer.set_weights(weights)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, np_parc(x, kernel, bias, pe, direction), rtol=1e-5, atol=1e-5)


def test_is_not_centred_and_not_zero_padded():
    # A one-hot kernel at tap t reads row (i + t) mod H: a circular shift, not a zero-padded or
    # centred conv.
    x = np.arange(4, dtype="float32").reshape(1, 4, 1, 1)
    layer = ParCConv("vertical")
    layer.build(x.shape)
    kernel = np.zeros((4, 1, 1, 1), "float32")
    kernel[1] = 1.0
    layer.set_weights([kernel, np.zeros(1, "float32")])
    y = keras.ops.convert_to_numpy(layer(x)).ravel()
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0, 0.0])


def test_paper_kernel_sizes_follow_the_feature_map():
    for size in (8, 7, 4, 3, 14, 13, 6):
        layer = ParCConv("horizontal", use_pe=True)
        layer.build((None, size, size, 10))
        assert layer.kernel_size == size
        assert tuple(layer.kernel.shape) == (1, size, 10, 1)
        assert tuple(layer.pe.shape) == (1, size, 10)


def test_weights_and_thop_counting():
    inputs = keras.Input((8, 8, 192))
    layer = ParCConv("vertical", use_pe=True, name="parc")
    model = keras.Model(inputs, layer(inputs))
    # Reference (ParC-MobileNetV2 CIFAR, features.9.gcc_H): 8x1 dw conv + bias = 1,728 leaf
    # params; the PE (1, 192, 8, 1) is a bare parameter thop does not see.
    assert layer.functional_weights == [layer.pe]
    assert profiling.count_params(model, "thop_0.0.31") == 192 * 8 + 192
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 192 * 8 + 192 + 192 * 8
    # thop: output elements x (K + 1 for the bias); the PE add and circular concat are free.
    assert profiling.count_flops(model, "thop_0.0.31") == 8 * 8 * 192 * (8 + 1)
    assert profiling.count_flops(model, "macs") == 8 * 8 * 192 * 8
    no_pe = ParCConv("horizontal")
    no_pe.build((None, 8, 8, 4))
    assert no_pe.functional_weights == []


@pytest.mark.all_backends
def test_serialization_round_trip(tmp_path):
    rng = np.random.RandomState(1)
    inputs = keras.Input((6, 5, 4))
    y = ParCConv("vertical", use_pe=True, name="parc_h")(inputs)
    y = ParCConv("W", use_pe=False, name="parc_w")(y)
    model = keras.Model(inputs, y)
    for w in model.weights:
        w.assign(rng.randn(*w.shape).astype("float32"))
    x = rng.randn(2, 6, 5, 4).astype("float32")
    before = keras.ops.convert_to_numpy(model(x))
    path = os.path.join(tmp_path, "parc.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), before, rtol=1e-6, atol=1e-6
    )
    layer = restored.get_layer("parc_w")
    assert layer.direction == "horizontal" and layer.kernel_size == 5 and not layer.use_pe


def test_config_round_trip():
    layer = ParCConv("H", use_pe=True, kernel_initializer="zeros", name="p")
    config = layer.get_config()
    assert config["direction"] == "vertical" and config["use_pe"] is True
    clone = ParCConv.from_config(config)
    assert clone.direction == "vertical" and clone.use_pe
    assert clone.compute_output_shape((None, 8, 9, 4)) == (None, 8, 9, 4)
    default = ParCConv.from_config(ParCConv().get_config())
    assert default.kernel_initializer is None


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="direction"):
        ParCConv("diagonal")
    with pytest.raises(ValueError, match="static"):
        ParCConv("vertical").build((None, None, 8, 4))
    with pytest.raises(ValueError, match="rank 4"):
        ParCConv("vertical").build((None, 8, 4))
    layer = ParCConv("vertical")
    layer.build((None, 8, 8, 4))
    with pytest.raises(ValueError, match="built for a height of 8"):
        layer(np.zeros((1, 7, 8, 4), "float32"))
