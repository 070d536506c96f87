"""PyramidDWConv (PydMobileNet's pyramid depthwise conv) against NumPy, shapes, serialization."""

import keras
import numpy as np
import pytest

from keras_padfree import layers
from keras_padfree import profiling
from tests import numpy_reference as ref


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _input(shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype("float32")


def _expected(layer, x):
    x = x.astype(np.float64)
    outs = []
    for k, branch in zip(layer.kernel_sizes, layer.branches):
        kernel = _np(branch.kernel)
        pad = (k - 3) // 2 if layer.padding_free else k // 2
        y = ref.depthwise_conv2d(x, kernel, stride=layer.strides, padding=pad)
        if layer.padding_free:
            y = y + ref.max_pool(x, 3, 2, 0)
        outs.append(y)
    if layer.combine == "concat":
        return np.concatenate(outs, axis=-1)
    return (outs[0] + outs[1]) + outs[2] if len(outs) == 3 else sum(outs)


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "combine,strides,padding_free,size,out_size",
    [
        ("add", 1, False, 8, 8),
        ("concat", 1, False, 8, 8),
        ("add", 2, False, 8, 4),
        ("concat", 2, False, 9, 5),
        ("add", 2, True, 8, 3),
        ("concat", 2, True, 15, 7),
    ],
)
def test_matches_numpy(combine, strides, padding_free, size, out_size):
    x = _input((2, size, size, 4))
    layer = layers.PyramidDWConv(strides=strides, combine=combine, padding_free=padding_free)
    y = _np(layer(x))
    channels = 12 if combine == "concat" else 4
    assert y.shape == (2, out_size, out_size, channels)
    assert layer.compute_output_shape((2, size, size, 4)) == (2, out_size, out_size, channels)
    np.testing.assert_allclose(y, _expected(layer, x), rtol=1e-5, atol=1e-5)


def test_concat_keeps_branch_order_3_5_7():
    x = _input((1, 6, 6, 2))
    layer = layers.PyramidDWConv(combine="concat")
    layer.build(x.shape)
    # Zero every branch but the 5x5 one: only the middle slice of the output may be non-zero.
    for k, branch in zip(layer.kernel_sizes, layer.branches):
        if k != 5:
            branch.kernel.assign(np.zeros(branch.kernel.shape, "float32"))
    y = _np(layer(x))
    assert np.abs(y[..., 2:4]).sum() > 0
    assert np.abs(y[..., :2]).sum() == 0 and np.abs(y[..., 4:]).sum() == 0


@pytest.mark.all_backends
def test_serialization_round_trip():
    x = _input((2, 8, 8, 3))
    layer = layers.PyramidDWConv(
        kernel_sizes=(3, 5), strides=2, combine="concat", padding_free=True, name="pyd"
    )
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layer(inputs))
    restored = keras.Model.from_config(model.get_config())
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(_np(model(x)), _np(restored(x)), rtol=1e-6)
    config = layer.get_config()
    assert config["kernel_sizes"] == [3, 5] and config["padding_free"] is True
    assert layers.PyramidDWConv.from_config(config).combine == "concat"


def test_profile_counts_every_branch():
    model_in = keras.Input((16, 16, 8))
    out = layers.PyramidDWConv(strides=2, combine="concat")(model_in)
    model = keras.Model(model_in, out)
    # 8x8 outputs x 8 channels x (9 + 25 + 49) taps.
    assert profiling.count_flops(model, "macs") == 64 * 8 * 83
    assert profiling.count_params(model, "macs") == 8 * 83


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"combine": "mul"}, "combine"),
        ({"strides": 3}, "strides"),
        ({"kernel_sizes": (3, 4)}, "kernel_sizes"),
        ({"kernel_sizes": ()}, "kernel_sizes"),
        ({"kernel_sizes": (3, 3)}, "kernel_sizes"),
        ({"padding_free": True, "strides": 1}, "strides"),
        ({"padding_free": True, "strides": 2, "kernel_sizes": (1, 3)}, "kernel_sizes"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.PyramidDWConv(**kwargs)
