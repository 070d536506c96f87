"""ChannelShuffle and ChannelSplit against NumPy, counting, serialization."""

import os

import keras
import numpy as np
import pytest

from keras_padfree import profiling
from keras_padfree.layers import ChannelShuffle
from keras_padfree.layers import ChannelSplit


def np_shuffle_nchw(x_nhwc, groups):
    """PyTorch's channel_shuffle, done in NCHW: view(B, g, C/g, H, W).transpose(1, 2)."""
    x = np.transpose(x_nhwc, (0, 3, 1, 2))
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(b, c, h, w)
    return np.transpose(x, (0, 2, 3, 1))


@pytest.mark.all_backends
@pytest.mark.parametrize("groups", [1, 2, 3, 4])
def test_shuffle_matches_pytorch_order(groups):
    rng = np.random.RandomState(0)
    x = rng.randn(2, 3, 5, 12).astype("float32")
    y = keras.ops.convert_to_numpy(ChannelShuffle(groups)(x))
    np.testing.assert_array_equal(y, np_shuffle_nchw(x, groups))


def test_two_groups_interleave_halves():
    x = np.arange(8, dtype="float32").reshape(1, 1, 1, 8)  # a = 0..3, b = 4..7
    y = keras.ops.convert_to_numpy(ChannelShuffle(2)(x)).ravel()
    np.testing.assert_array_equal(y, [0, 4, 1, 5, 2, 6, 3, 7])


@pytest.mark.all_backends
def test_split_halves():
    rng = np.random.RandomState(1)
    x = rng.randn(2, 4, 4, 10).astype("float32")
    a, b = ChannelSplit(2)(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), x[..., :5])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(b), x[..., 5:])
    parts = ChannelSplit(5)(x)
    assert len(parts) == 5
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(parts[3]), x[..., 6:8])
    assert ChannelSplit(2).compute_output_shape((None, 4, 4, 10)) == [(None, 4, 4, 5)] * 2


def test_zero_cost_and_no_weights():
    inputs = keras.Input((4, 4, 8))
    a, b = ChannelSplit(2)(inputs)
    y = ChannelShuffle(2)(keras.layers.Concatenate()([b, a]))
    model = keras.Model(inputs, y)
    assert model.weights == []
    for convention in profiling.CONVENTIONS:
        assert profiling.count_flops(model, convention) == 0


@pytest.mark.all_backends
def test_serialization_round_trip(tmp_path):
    inputs = keras.Input((3, 3, 6))
    a, b = ChannelSplit(2, name="split")(inputs)
    y = ChannelShuffle(3, name="shuffle")(keras.layers.Concatenate()([b, a]))
    model = keras.Model(inputs, y)
    x = np.random.RandomState(2).randn(2, 3, 3, 6).astype("float32")
    before = keras.ops.convert_to_numpy(model(x))
    path = os.path.join(tmp_path, "shuffle.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), before)
    assert restored.get_layer("shuffle").groups == 3
    assert ChannelShuffle.from_config(ChannelShuffle(4).get_config()).groups == 4
    assert ChannelSplit.from_config(ChannelSplit(3).get_config()).groups == 3


def test_bad_arguments():
    for cls in (ChannelShuffle, ChannelSplit):
        with pytest.raises(ValueError, match="groups"):
            cls(0)
        with pytest.raises(ValueError, match="groups"):
            cls(2.0)
        with pytest.raises(ValueError, match="divisible by groups=4"):
            cls(4).build((None, 4, 4, 6))
    with pytest.raises(ValueError, match="rank 4"):
        ChannelShuffle(2).build((None, 6))
