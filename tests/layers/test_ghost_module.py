"""GhostModule: NumPy reference, shapes, counts, serialization."""

import os

import keras
import numpy as np
import pytest

from keras_padfree import profiling
from keras_padfree.layers import GhostModule


def _np_bn(x, layer):
    gamma, beta, mean, var = (np.asarray(w, dtype="float64") for w in layer.get_weights())
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def _np_reference(layer, x):
    kernel = np.asarray(layer.primary.kernel, dtype="float64")  # (k, k, cin, init)
    k = kernel.shape[0]
    p = k // 2
    s = layer.strides
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    ho = (xp.shape[1] - k) // s + 1
    wo = (xp.shape[2] - k) // s + 1
    x1 = np.zeros((x.shape[0], ho, wo, kernel.shape[-1]))
    for i in range(ho):
        for j in range(wo):
            x1[:, i, j] = np.einsum(
                "bhwc,hwco->bo", xp[:, i * s : i * s + k, j * s : j * s + k], kernel
            )
    x1 = _np_bn(x1, layer.primary_bn)
    if layer.activation == "relu":
        x1 = np.maximum(x1, 0)
    dw = np.asarray(layer.cheap.kernel, dtype="float64")  # (d, d, init, ratio - 1)
    d = dw.shape[0]
    q = d // 2
    x1p = np.pad(x1, ((0, 0), (q, q), (q, q), (0, 0)))
    m = dw.shape[-1]
    x2 = np.zeros(x1.shape[:3] + (x1.shape[-1] * m,))
    for i in range(ho):
        for j in range(wo):
            patch = x1p[:, i : i + d, j : j + d, :]
            # PyTorch groups=init: output channel c * m + t comes from input channel c.
            x2[:, i, j] = np.einsum("bhwc,hwcm->bcm", patch, dw).reshape(x.shape[0], -1)
    x2 = _np_bn(x2, layer.cheap_bn)
    if layer.activation == "relu":
        x2 = np.maximum(x2, 0)
    return np.concatenate([x1, x2], axis=-1)[..., : layer.filters]


def _randomize(layer, rng):
    for w in layer.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            w.assign((rng.standard_normal(shape) * 0.5).astype("float32"))


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "filters,ratio,kernel_size,dw_size,strides,activation",
    [(16, 2, 1, 3, 1, "relu"), (12, 2, 1, 3, 1, None), (11, 3, 3, 5, 2, "relu")],
)
def test_matches_numpy(filters, ratio, kernel_size, dw_size, strides, activation):
    rng = np.random.RandomState(0)
    layer = GhostModule(
        filters,
        ratio=ratio,
        kernel_size=kernel_size,
        dw_size=dw_size,
        strides=strides,
        activation=activation,
    )
    x = rng.standard_normal((2, 7, 6, 5)).astype("float32")
    layer.build(x.shape)
    _randomize(layer, rng)
    got = keras.ops.convert_to_numpy(layer(x, training=False))
    want = _np_reference(layer, x.astype("float64"))
    assert got.shape == want.shape == layer.compute_output_shape(x.shape)
    assert got.shape[-1] == filters
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_counts_match_ghostnet_reference_rows():
    # GhostNet block 1.0 ghost1 at 32x32 (second_set_family LAYERS listing): 16 -> 48.
    inputs = keras.Input((32, 32, 16))
    model = keras.Model(inputs, GhostModule(48)(inputs))
    assert profiling.count_params(model, "thop_0.0.31") == 384 + 48 + 216 + 48
    n = 32 * 32
    assert (
        profiling.count_flops(model, "thop_0.0.31")
        == n * (16 * 24) + 2 * n * 24 + n * 9 * 24 + 2 * n * 24
    )
    assert profiling.count_flops(model, "macs") == n * 16 * 24 + n * 9 * 24


def test_bad_arguments():
    with pytest.raises(ValueError, match="filters"):
        GhostModule(0)
    with pytest.raises(ValueError, match="ratio"):
        GhostModule(8, ratio=1)
    with pytest.raises(ValueError, match="dw_size"):
        GhostModule(8, dw_size=4)
    with pytest.raises(ValueError, match="activation"):
        GhostModule(8, activation="nope")


@pytest.mark.all_backends
def test_serialization_round_trip(tmp_path):
    rng = np.random.RandomState(1)
    inputs = keras.Input((6, 6, 4))
    layer = GhostModule(10, ratio=2, activation=None, name="ghost")
    model = keras.Model(inputs, layer(inputs))
    _randomize(layer, rng)
    config = layer.get_config()
    assert GhostModule.from_config(config).get_config() == config
    x = rng.standard_normal((2, 6, 6, 4)).astype("float32")
    before = model.predict(x, verbose=0)
    path = os.path.join(tmp_path, "ghost.keras")
    model.save(path)
    after = keras.saving.load_model(path).predict(x, verbose=0)
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
