"""PaddingFreeDWConv, MaxPoolShortcut and HybridStem against NumPy, shapes and serialization."""

import keras
import numpy as np
import pytest

from keras_padfree import layers
from keras_padfree.layers import _utils
from tests import numpy_reference as ref


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _input(shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype("float32")


# -- MaxPoolShortcut ----------------------------------------------------------------------------


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "size,expected", [(32, 15), (15, 7), (7, 3), (224, 111), (112, 55), (55, 27), (27, 13), (13, 6)]
)
def test_max_pool_shortcut_shape_follows_padding_free_rule(size, expected):
    x = _input((1, size, size, 4))
    layer = layers.MaxPoolShortcut()
    y = layer(x)
    assert tuple(y.shape) == (1, expected, expected, 4)
    assert layer.compute_output_shape((1, size, size, 4)) == (1, expected, expected, 4)
    assert expected == (size - 3) // 2 + 1


@pytest.mark.all_backends
def test_max_pool_shortcut_matches_numpy_with_projection():
    x = _input((2, 16, 16, 6))
    layer = layers.MaxPoolShortcut(filters=10)
    y = _np(layer(x))
    kernel = _np(layer.projection.kernel)
    expected = ref.conv2d(ref.max_pool(x.astype(np.float64), 3, 2, 0), kernel)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_max_pool_shortcut_padded_pool_ignores_padding():
    # GhostNet's 5x5/2/1 shortcut: padded cells must never win, even for negative inputs.
    x = -np.abs(_input((1, 9, 9, 3))) - 1.0
    y = _np(layers.MaxPoolShortcut(pool_size=5, padding=1)(x))
    np.testing.assert_allclose(y, ref.max_pool(x.astype(np.float64), 5, 2, 1), rtol=1e-6)
    assert (y < 0).all()


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "pool_size,strides,padding",
    [
        (3, 2, 1),
        (5, 2, 1),
        (3, 1, 1),
        (5, 1, 2),
        (4, 2, 1),
        (5, 3, 2),
        (7, 2, 3),
        (3, 3, 1),
    ],
)
def test_padded_max_pool_equals_pytorch_pool_on_every_size(pool_size, strides, padding):
    # Each size takes whichever form max_pool picks for it ("same" pool, cropped or not; a
    # smaller "same" pool then a 2x2 one; edge padding on the sides a window reaches): all of them
    # must be the PyTorch pool exactly, on square and non-square inputs, negative values included.
    rng = np.random.RandomState(0)
    for h in range(pool_size, pool_size + 12):
        for w in (h, h + 1):
            x = rng.normal(size=(2, h, w, 3)).astype("float32") - 2.0
            y = keras.ops.convert_to_numpy(_utils.max_pool(x, pool_size, strides, padding))
            expected = ref.max_pool(x.astype(np.float64), pool_size, strides, padding)
            assert y.shape == expected.shape, (h, w)
            np.testing.assert_array_equal(y, expected.astype("float32"), err_msg=f"{h}x{w}")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"filters": 0}, "filters"),
        ({"pool_size": 0}, "pool_size"),
        ({"padding": -1}, "padding"),
        ({"pool_size": 3, "padding": 2}, "padding"),
    ],
)
def test_max_pool_shortcut_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.MaxPoolShortcut(**kwargs)


# -- PaddingFreeDWConv --------------------------------------------------------------------------


def _dw_reference(layer, x, rng):
    x64 = x.astype(np.float64)
    kernel = _np(layer.depthwise.kernel)
    y = ref.depthwise_conv2d(x64, kernel, stride=2, padding=layer.padding)
    shortcut = ref.max_pool(x64, layer.shortcut_pool_size, 2, layer.shortcut_padding)
    bn = ref.randomize_bn(layer.bn, rng) if layer.bn is not None else None
    act = ref.ACTIVATIONS[layer.activation]
    if layer.shortcut_position == "before_bn":
        y = y + shortcut
    if bn is not None:
        y = ref.batch_norm(y, *bn, eps=layer.bn_epsilon)
    if layer.shortcut_position == "after_bn":
        y = y + shortcut
    y = act(y)
    if layer.shortcut_position == "after_activation":
        y = y + shortcut
    return y


@pytest.mark.all_backends
@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize(
    "position,activation",
    [
        ("after_activation", "hard_silu"),
        ("after_bn", None),
        ("before_bn", "relu"),
    ],
)
def test_padding_free_dw_conv_matches_numpy(kernel_size, position, activation):
    rng = np.random.RandomState(1)
    x = _input((2, 16, 16, 8))
    layer = layers.PaddingFreeDWConv(kernel_size, activation=activation, shortcut_position=position)
    layer.build(x.shape)
    expected = _dw_reference(layer, x, rng)
    y = _np(layer(x, training=False))
    assert y.shape == (2, 7, 7, 8)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_padding_free_dw_conv_ghostnet_pool():
    rng = np.random.RandomState(2)
    x = np.abs(_input((1, 15, 15, 4)))
    layer = layers.PaddingFreeDWConv(
        5, activation=None, shortcut_position="after_bn", shortcut_pool_size=5, shortcut_padding=1
    )
    layer.build(x.shape)
    expected = _dw_reference(layer, x, rng)
    np.testing.assert_allclose(_np(layer(x, training=False)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sizes", [[32, 15, 7, 3], [224, 111, 55, 27, 13, 6], [112, 55, 27, 13, 6]])
def test_padding_free_chain_sizes(sizes):
    x = keras.Input((sizes[0], sizes[0], 8))
    y = x
    seen = [sizes[0]]
    for k in [3, 5, 3, 5, 3][: len(sizes) - 1]:
        y = layers.PaddingFreeDWConv(k)(y)
        seen.append(y.shape[1])
    assert seen == sizes


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kernel_size": 4}, "kernel_size"),
        ({"kernel_size": 1}, "kernel_size"),
        ({"shortcut_position": "before_act"}, "shortcut_position"),
        ({"activation": "tanh"}, "activation"),
    ],
)
def test_padding_free_dw_conv_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.PaddingFreeDWConv(**kwargs)


def test_padding_free_dw_conv_rejects_mismatched_shortcut():
    layer = layers.PaddingFreeDWConv(3, shortcut_pool_size=5, shortcut_padding=0)
    with pytest.raises(ValueError, match="shortcut pool"):
        layer.build((1, 16, 16, 4))


# -- HybridStem ---------------------------------------------------------------------------------


def _stem_reference(layer, x, rng):
    x64 = x.astype(np.float64)
    act = ref.ACTIVATIONS[layer.activation]
    eps = layer.bn_epsilon
    a = ref.conv2d(x64, _np(layer.conv1.kernel), stride=layer.strides, padding=1)
    if layer.ordering == "post":
        a = act(ref.batch_norm(a, *ref.randomize_bn(layer.bn1, rng), eps=eps))
        b1 = ref.depthwise_conv2d(a, _np(layer.depthwise.kernel), layer.branch_strides, 1)
        b1 = act(ref.batch_norm(b1, *ref.randomize_bn(layer.dw_bn, rng), eps=eps))
    else:
        b1 = act(ref.batch_norm(a, *ref.randomize_bn(layer.dw_bn_pre, rng), eps=eps))
        b1 = ref.depthwise_conv2d(b1, _np(layer.depthwise.kernel), layer.branch_strides, 1)
    b2 = ref.max_pool(a, 3, layer.branch_strides, 1)
    cat = np.concatenate([b1, b2], axis=-1)
    if layer.ordering == "pre":
        cat = act(ref.batch_norm(cat, *ref.randomize_bn(layer.fuse_bn_pre, rng), eps=eps))
    out = ref.conv2d(cat, _np(layer.fuse.kernel))
    if layer.ordering == "post":
        out = act(ref.batch_norm(out, *ref.randomize_bn(layer.fuse_bn, rng), eps=eps))
    if layer.residual:
        out = out + a
    return out


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "kwargs,size,out_size",
    [
        ({"activation": "hard_silu"}, 32, 32),
        ({"activation": "hard_silu", "strides": 2}, 32, 16),
        ({"activation": "relu", "strides": 2, "branch_strides": 2}, 32, 8),
        ({"activation": "relu", "residual": True}, 16, 16),
        ({"activation": "relu", "residual": True, "ordering": "pre"}, 16, 16),
    ],
)
def test_hybrid_stem_matches_numpy(kwargs, size, out_size):
    rng = np.random.RandomState(3)
    x = _input((2, size, size, 3))
    layer = layers.HybridStem(16, **kwargs)
    layer.build(x.shape)
    expected = _stem_reference(layer, x, rng)
    y = _np(layer(x, training=False))
    assert y.shape == (2, out_size, out_size, 16)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    # The LiteRT form (the exporters trace inside litert_forms): the same function in inference,
    # by other ops where the ordering allows; training is never changed.
    with _utils.litert_forms():
        y_export = _np(layer(x, training=False))
        y_train = _np(layer(x, training=True))
    np.testing.assert_allclose(y_export, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(y_train, _np(layer(x, training=True)))


def test_hybrid_stem_parameter_counts_match_the_paper():
    # bsconv_family.md section 6: 1,184 params (MobileNetV3 / ResNet stems), 944 with BSConv-U.
    for kwargs, expected in [
        ({}, 1184),
        ({"residual": True, "ordering": "pre"}, 1184),
        ({"first_conv": "bsconv_u", "ordering": "pre", "residual": True}, 944),
    ]:
        layer = layers.HybridStem(16, **kwargs)
        layer.build((1, 32, 32, 3))
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        assert trainable == expected, kwargs


def test_hybrid_stem_224_shapes():
    x = keras.Input((224, 224, 3))
    assert layers.HybridStem(16, strides=2)(x).shape[1:3] == (112, 112)
    assert layers.HybridStem(24, strides=2, branch_strides=2, activation="relu")(x).shape[1:3] == (
        56,
        56,
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"filters": 0}, "filters"),
        ({"filters": 16, "strides": 3}, "strides"),
        ({"filters": 16, "ordering": "middle"}, "ordering"),
        ({"filters": 16, "residual": True, "branch_strides": 2}, "branch_strides"),
        ({"filters": 16, "first_conv": "bsconv_s"}, "first_conv"),
    ],
)
def test_hybrid_stem_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.HybridStem(**kwargs)


# -- serialization --------------------------------------------------------------------------------


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.MaxPoolShortcut(filters=12, name="sc"),
        lambda: layers.PaddingFreeDWConv(5, activation="relu6", shortcut_position="before_bn"),
        lambda: layers.HybridStem(8, strides=2, activation="relu", ordering="pre"),
        lambda: layers.SqueezeExcite(4, gate="hard_sigmoid", pool_is_module=False),
        lambda: layers.BSConvU(12, 3, strides=2, padding=0),
        lambda: layers.BSConvS(12, 5, padding=2, with_bn=True),
    ],
    ids=["shortcut", "pf_dw", "stem", "se", "bsconv_u", "bsconv_s"],
)
def test_layer_round_trips_through_keras_file(make, tmp_path):
    inputs = keras.Input((16, 16, 8))
    outputs = make()(inputs)
    model = keras.Model(inputs, outputs)
    x = _input((2, 16, 16, 8))
    before = _np(model(x, training=False))
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    after = _np(restored(x, training=False))
    np.testing.assert_allclose(before, after, rtol=1e-6, atol=1e-6)
    config = model.layers[1].get_config()
    clone = type(model.layers[1]).from_config(config)
    assert clone.get_config() == config


# -- PyTorch's symmetric conv padding in functional models -----------------------------------------


@pytest.mark.parametrize("size", [6, 7, 15, 16, 32])
@pytest.mark.parametrize(
    "kernel_size,strides,padding",
    [(3, 1, 1), (3, 2, 1), (5, 2, 2), (5, 2, 1), (1, 2, 0), (3, 2, 0)],
)
def test_pad_for_conv_is_pytorch_padding(size, kernel_size, strides, padding):
    x = _input((1, size, size, 3), seed=size)
    inp = keras.Input((size, size, 3))
    h, mode = _utils.pad_for_conv(inp, kernel_size, strides, padding, name="c")
    conv = keras.layers.Conv2D(
        2, kernel_size, strides=strides, padding=mode, use_bias=False, name="c_conv"
    )
    model = keras.Model(inp, conv(h))
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    expected = ref.conv2d(
        x.astype(np.float64), kernel.astype(np.float64), stride=strides, padding=padding
    )
    np.testing.assert_allclose(_np(model(x)), expected, rtol=1e-5, atol=1e-5)
    # "same" exactly where it is PyTorch's padding: stride 1, or stride 2 on an odd input.
    uses_same = padding > 0 and 2 * padding == kernel_size - 1 and (strides == 1 or size % 2)
    assert mode == ("same" if uses_same else "valid")
    assert any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in model.layers) == (
        padding > 0 and not uses_same
    )
