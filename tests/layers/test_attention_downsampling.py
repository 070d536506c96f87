"""AttentionDownsampling: shapes at several resolutions, NumPy reference, counts, serialization."""

import math
import os

import keras
import numpy as np
import pytest

from keras_padfree import profiling
from keras_padfree.layers import AttentionDownsampling
from keras_padfree.layers.attention_downsampling import attention_bias_index


def _np_conv(x, kernel, bias, stride, pad, depthwise=False):
    """NHWC conv with PyTorch's symmetric zero padding; kernel in Keras layout."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw = kernel.shape[:2]
    b, h, w, c = x.shape
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    cout = c if depthwise else kernel.shape[-1]
    out = np.zeros((b, ho, wo, cout))
    for i in range(ho):
        for j in range(wo):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            if depthwise:
                out[:, i, j, :] = np.einsum("bhwc,hwc->bc", patch, kernel[..., 0])
            else:
                out[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, kernel)
    return out + (bias if bias is not None else 0.0)


def _np_bn(x, layer):
    gamma, beta, mean, var = (np.asarray(w) for w in layer.get_weights())
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def _w(layer):
    return [np.asarray(w, dtype="float64") for w in layer.get_weights()]


def _np_reference(layer, x):
    out = _np_bn(_np_conv(x, *_w(layer.conv), 2, 1), layer.bn)
    if not layer.use_attention:
        return out
    b, h, w, _ = x.shape
    heads, kd, vd = layer.num_heads, layer.key_dim, layer.value_dim
    q = _np_conv(x, *_w(layer.q_local), 2, 1, depthwise=True) + x[:, ::2, ::2, :]
    q = _np_bn(_np_conv(q, *_w(layer.q_proj), 1, 0), layer.q_bn)
    h2, w2 = q.shape[1:3]
    k = _np_bn(_np_conv(x, *_w(layer.k_proj), 1, 0), layer.k_bn)
    v = _np_bn(_np_conv(x, *_w(layer.v_proj), 1, 0), layer.v_bn)
    v_local = _np_bn(_np_conv(v, *_w(layer.v_local), 2, 1, depthwise=True), layer.v_local_bn)
    table = np.asarray(layer.attention_biases)
    y = np.zeros((b, h2, w2, heads * vd))
    for n in range(b):
        for head in range(heads):
            qh = q[n, :, :, head * kd : (head + 1) * kd].reshape(-1, kd)
            kh = k[n, :, :, head * kd : (head + 1) * kd].reshape(-1, kd)
            vh = v[n, :, :, head * vd : (head + 1) * vd].reshape(-1, vd)
            logits = qh @ kh.T / math.sqrt(kd)
            for qi in range(h2):
                for qj in range(w2):
                    for a in range(h):
                        for c in range(w):
                            logits[qi * w2 + qj, a * w + c] += table[
                                head, abs(2 * qi - a) * w + abs(2 * qj - c)
                            ]
            logits -= logits.max(axis=-1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=-1, keepdims=True)
            y[n, :, :, head * vd : (head + 1) * vd] = (p @ vh).reshape(h2, w2, vd)
    y = y + v_local
    erf = np.vectorize(math.erf)
    y = 0.5 * y * (1.0 + erf(y / math.sqrt(2.0)))
    y = _np_bn(_np_conv(y, *_w(layer.proj), 1, 0), layer.proj_bn)
    return out + y


def _randomize(layer, rng):
    for w in layer.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            w.assign((rng.standard_normal(shape) * 0.3).astype("float32"))


def test_bias_index_closed_form_matches_enumeration():
    h, w = 5, 4
    idx = attention_bias_index(h, w)
    h2, w2 = 3, 2
    assert idx.shape == (h2 * w2, h * w)
    for qi in range(h2):
        for qj in range(w2):
            for a in range(h):
                for b in range(w):
                    assert idx[qi * w2 + qj, a * w + b] == abs(2 * qi - a) * w + abs(2 * qj - b)
    assert idx.min() == 0 and idx.max() == h * w - 1


@pytest.mark.all_backends
@pytest.mark.parametrize("use_attention", [True, False])
@pytest.mark.parametrize("size", [(4, 4), (5, 6)])
def test_matches_numpy(use_attention, size):
    rng = np.random.RandomState(0)
    layer = AttentionDownsampling(
        12, use_attention=use_attention, key_dim=4, num_heads=2, attn_ratio=2
    )
    x = rng.standard_normal((2, *size, 6)).astype("float32")
    layer.build(x.shape)
    _randomize(layer, rng)
    got = np.asarray(keras.ops.convert_to_numpy(layer(x, training=False)))
    want = _np_reference(layer, x.astype("float64"))
    assert got.shape == want.shape == (2, -(-size[0] // 2), -(-size[1] // 2), 12)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.all_backends
@pytest.mark.parametrize("size", [32, 64, 96])
def test_builds_at_several_resolutions(size):
    inputs = keras.Input((size, size, 24))
    x = AttentionDownsampling(40, name="ds1")(inputs)
    x = AttentionDownsampling(80, name="ds2")(x)
    model = keras.Model(inputs, x)
    assert model.output_shape == (None, size // 4, size // 4, 80)
    table = model.get_layer("ds1").attention_biases
    assert tuple(table.shape) == (8, size * size)
    out = model(np.zeros((1, size, size, 24), "float32"))
    assert tuple(out.shape) == (1, size // 4, size // 4, 80)


def test_too_small_or_unknown_size_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2x2"):
        AttentionDownsampling(8)(keras.Input((1, 1, 4)))
    with pytest.raises(ValueError, match="must be known"):
        AttentionDownsampling(8)(keras.Input((None, None, 4)))
    # The conv-only embedding has no resolution-dependent weights.
    out = AttentionDownsampling(8, use_attention=False)(keras.Input((None, None, 4)))
    assert tuple(out.shape) == (None, None, None, 8)
    with pytest.raises(ValueError, match="filters"):
        AttentionDownsampling(0)
    with pytest.raises(ValueError, match="use_attention"):
        AttentionDownsampling(8, use_attention="yes")


@pytest.mark.parametrize(
    "cin,cout,size,attention,bn_eps,thop_params,all_params",
    [
        # Block sizes of the reference's E variants (second_set_family.md section 4).
        (24, 40, 32, False, 1e-3, 8760, 8760),  # MobileNetV3 / GhostNet first block
        (40, 80, 16, True, 1e-3, 111856 - 2048, 111856),  # MobileNetV3 block 7, GhostNet 5.0
        (112, 160, 8, True, 1e-3, 340256 - 512, 340256),  # MobileNetV3 block 13, GhostNet 7.0
        (32, 64, 16, True, 1e-5, 86976 - 2048, 86976),  # ParC block 7
        (232, 464, 8, True, 1e-5, 1398640 - 512, 1398640),  # ShuffleNetV2 stage4 unit 0
    ],
)
def test_parameter_counts_match_reference_blocks(
    cin, cout, size, attention, bn_eps, thop_params, all_params
):
    inputs = keras.Input((size, size, cin))
    outputs = AttentionDownsampling(cout, use_attention=attention, bn_epsilon=bn_eps)(inputs)
    model = keras.Model(inputs, outputs)
    assert profiling.count_params(model, "thop_0.0.31") == thop_params
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == all_params


def test_flops_conventions():
    cin, cout, r = 40, 80, 16
    inputs = keras.Input((r, r, cin))
    model = keras.Model(inputs, AttentionDownsampling(cout)(inputs))
    r2, n, n2 = r // 2, r * r, (r // 2) ** 2
    conv = n2 * (9 * cin * cout + cout) + 2 * n2 * cout
    q = n2 * (9 * cin + cin) + n2 * cin + n2 * (cin * 128 + 128) + 2 * n2 * 128
    k = n * (cin * 128 + 128) + 2 * n * 128
    v = n * (cin * 512 + 512) + 2 * n * 512
    v_local = n2 * (9 * 512 + 512) + 2 * n2 * 512
    proj = n2 * (512 * cout + cout) + 2 * n2 * cout
    assert r2 * r2 == n2
    assert profiling.count_flops(model, "thop_0.0.31") == conv + q + k + v + v_local + proj
    macs = (
        n2 * 9 * cin * cout
        + n2 * 9 * cin
        + n2 * cin * 128
        + n * cin * 128
        + n * cin * 512
        + n2 * 9 * 512
        + n2 * 512 * cout
        + 8 * n2 * n * 16
        + 8 * n2 * n * 64
    )
    assert profiling.count_flops(model, "macs") == macs


@pytest.mark.all_backends
def test_serialization_round_trip(tmp_path):
    rng = np.random.RandomState(1)
    inputs = keras.Input((8, 8, 6))
    layer = AttentionDownsampling(
        10, key_dim=4, num_heads=2, attn_ratio=2, bn_epsilon=1e-3, bn_momentum=0.99, name="ads"
    )
    model = keras.Model(inputs, layer(inputs))
    _randomize(layer, rng)
    config = layer.get_config()
    clone = AttentionDownsampling.from_config(config)
    assert clone.get_config() == config
    x = rng.standard_normal((2, 8, 8, 6)).astype("float32")
    before = np.asarray(model.predict(x, verbose=0))
    path = os.path.join(tmp_path, "ads.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    after = np.asarray(restored.predict(x, verbose=0))
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
    assert restored.get_layer("ads").functional_weights[0].shape == (2, 64)


@pytest.mark.all_backends
def test_trains_one_step():
    inputs = keras.Input((8, 8, 6))
    x = AttentionDownsampling(10, key_dim=4, num_heads=2)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.train_on_batch(np.random.rand(2, 8, 8, 6).astype("float32"), np.array([0, 2]))
    assert np.isfinite(loss)
