"""BSConv-U/S, the orthonormal regulariser and squeeze-excitation against NumPy."""

import math

import keras
import numpy as np
import pytest

from keras_padfree import layers
from tests import numpy_reference as ref


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _input(shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype("float32")


@pytest.mark.all_backends
def test_bsconv_u_is_pointwise_then_strided_depthwise():
    x = _input((2, 16, 16, 6))
    layer = layers.BSConvU(10, 3, strides=2, padding=0)
    y = _np(layer(x))
    pw = ref.conv2d(x.astype(np.float64), _np(layer.pointwise.kernel))
    expected = ref.depthwise_conv2d(pw, _np(layer.depthwise.kernel), stride=2, padding=0)
    assert y.shape == (2, 7, 7, 10)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    # 6*10 pointwise + 9*10 depthwise, no bias.
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == 60 + 90


def test_bsconv_u_symmetric_padding_differs_from_keras_same():
    x = _input((1, 8, 8, 4))
    layer = layers.BSConvU(4, 3, strides=2, padding=1)
    y = _np(layer(x))
    pw = ref.conv2d(x.astype(np.float64), _np(layer.pointwise.kernel))
    expected = ref.depthwise_conv2d(pw, _np(layer.depthwise.kernel), stride=2, padding=1)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.all_backends
def test_bsconv_s_mid_channels_and_regulariser():
    x = _input((2, 8, 8, 48))
    layer = layers.BSConvS(32, 3, p=1 / 6, alpha=0.1)
    y = _np(layer(x))
    assert layer.mid_channels == math.ceil(48 / 6) == 8
    h = ref.conv2d(ref.conv2d(x.astype(np.float64), _np(layer.pw1.kernel)), _np(layer.pw2.kernel))
    expected = ref.depthwise_conv2d(h, _np(layer.depthwise.kernel), stride=1, padding=1)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    w = _np(layer.pw1.kernel).reshape(48, 8).T  # [mid x C_in], PyTorch's layout
    reg = 0.1 * np.linalg.norm(w @ w.T - np.eye(8), "fro")
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(_np(layer.losses[0])), reg, rtol=1e-5)


def test_bsconv_s_min_mid_channels():
    layer = layers.BSConvS(8, 3, p=1 / 6, min_mid_channels=4)
    layer.build((1, 8, 8, 12))
    assert layer.mid_channels == 4  # max(4, ceil(2)) = 4, min(12, 4)


def test_orthonormal_regulariser_is_zero_for_orthonormal_rows():
    q, _ = np.linalg.qr(np.random.RandomState(0).normal(size=(16, 16)))
    kernel = q[:, :6].reshape(1, 1, 16, 6).astype("float32")  # W = kernel^T has orthonormal rows
    reg = layers.OrthonormalRegularizer(0.1)(keras.ops.convert_to_tensor(kernel))
    assert abs(float(_np(reg))) < 1e-5
    with pytest.raises(ValueError, match="alpha"):
        layers.OrthonormalRegularizer(-1.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"filters": 8, "padding": "same", "strides": 2}, "padding"),
        ({"filters": 8, "padding": "full"}, "padding"),
        ({"filters": 0}, "filters"),
    ],
)
def test_bsconv_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.BSConvU(**kwargs)
    with pytest.raises(ValueError, match=match):
        layers.BSConvS(**kwargs)


def test_bsconv_s_rejects_bad_p():
    with pytest.raises(ValueError, match="`p`"):
        layers.BSConvS(8, p=0.0)


@pytest.mark.all_backends
def test_squeeze_excite_matches_numpy():
    x = _input((2, 5, 5, 12))
    layer = layers.SqueezeExcite(3)
    y = _np(layer(x))
    s = x.astype(np.float64).mean(axis=(1, 2), keepdims=True)
    s = ref.relu(ref.conv2d(s, _np(layer.reduce.kernel), bias=_np(layer.reduce.bias)))
    s = ref.hard_sigmoid(ref.conv2d(s, _np(layer.expand.kernel), bias=_np(layer.expand.bias)))
    np.testing.assert_allclose(y, x * s, rtol=1e-5, atol=1e-6)
