"""keras_padfree.convert: a trained CNN rewritten into its padding-free version.

Proof that it is right: converting each zoo family's original model with the family's options
gives exactly the zoo's padding-free model (with the hybrid stem) or its downsampling-only ablation
(without): same layer classes, same weight shapes in order, the exact params and FLOPs of the
reference row, identical outputs once the zoo model receives the converted weights, and every
carried weight equal to its source bit for bit. Then keras.applications MobileNetV2/V3, the
unfused rewrite against a NumPy computation, nested models, ParC kernels, and the errors.
"""

import functools

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from keras_padfree.convert import FAMILY_OPTIONS
from keras_padfree.convert import convert
from keras_padfree.convert import family_options
from keras_padfree.layers import HybridStem
from keras_padfree.layers import PaddingFreeDWConv
from keras_padfree.layers import ParCConv
from tests import helpers

# (original model, zoo model the conversion must equal, hybrid_stem)
ZOO_PAIRS = [
    ("mobilenetv3_large_cifar", "mobilenetv3_large_pf_cifar", True),
    ("mobilenetv3_large_cifar", "mobilenetv3_large_downsampling_only_cifar", False),
    ("ghostnet_cifar", "ghostnet_pf_cifar", True),
    ("ghostnet_cifar", "ghostnet_downsampling_only_cifar", False),
    ("parc_mobilenetv2_cifar", "parc_mobilenetv2_pf_cifar", True),
    ("parc_mobilenetv2_cifar", "parc_mobilenetv2_downsampling_only_cifar", False),
    ("shufflenetv2_cifar", "shufflenetv2_pf_cifar", True),
    ("shufflenetv2_cifar", "shufflenetv2_downsampling_only_cifar", False),
    ("bsconv_mobilenetv3_large_cifar", "bsconv_mobilenetv3_large_pf_cifar", True),
    ("pydmobilenet29_025_concat_cifar", "pydmobilenet29_025_concat_pf_cifar", True),
]
# The rest of the grid: the 224x224 (and ImageNet32) configurations and the other variants.
ZOO_PAIRS_LARGE = [
    ("mobilenetv3_large_vegfru", "mobilenetv3_large_pf_vegfru", True),
    ("ghostnet_vegfru", "ghostnet_pf_vegfru", True),
    ("parc_mobilenetv2_vegfru", "parc_mobilenetv2_pf_vegfru", True),
    ("shufflenetv2_vegfru", "shufflenetv2_pf_vegfru", True),
    ("bsconv_mobilenetv3_large_bsconvs_cifar", "bsconv_mobilenetv3_large_bsconvs_pf_cifar", True),
    ("bsconv_mobilenetv3_large_dogs", "bsconv_mobilenetv3_large_pf_dogs", True),
    ("bsconv_mobilenetv3_large_imagenet", "bsconv_mobilenetv3_large_pf_imagenet", True),
    ("pydmobilenet29_025_add_cifar", "pydmobilenet29_025_add_pf_cifar", True),
    ("pydmobilenet56_025_concat_imagenet32", "pydmobilenet56_025_concat_pf_imagenet32", True),
]
# One of each join point and stem kind on every backend.
EVERY_BACKEND = {
    ("mobilenetv3_large_cifar", "mobilenetv3_large_pf_cifar"),
    ("shufflenetv2_cifar", "shufflenetv2_pf_cifar"),
}


def _zoo_param(orig, target, stem, large=False):
    marks = [pytest.mark.large] if large else []
    if (orig, target) in EVERY_BACKEND:
        marks.append(pytest.mark.all_backends)
    return pytest.param(orig, target, stem, marks=marks, id=target)


def _randomize(model, seed):
    """Distinct values in every weight (BN statistics and biases start as constants)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        if v.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif v.path.endswith("gamma"):
            value = rng.uniform(0.8, 1.2, shape)
        else:
            value = keras.ops.convert_to_numpy(v) + rng.uniform(-0.05, 0.05, shape)
        v.assign(value.astype("float32"))


@functools.cache
def _zoo_source(name):
    model = applications.create_model(name, classifier_activation=None)
    _randomize(model, seed=len(name))
    return model


def _key(array):
    array = np.asarray(array)
    return (array.shape, array.tobytes())


def _carried_check(source, converted, *, new_layers=(), resampled=()):
    """Every converted weight outside ``new_layers``/``resampled`` is a source weight, bit for bit.

    Returns the source weights (as keys) that were not found in the converted model.
    """
    left = {}
    for v in source.weights:
        k = _key(keras.ops.convert_to_numpy(v))
        left[k] = left.get(k, 0) + 1
    skip = {id(v) for layer in new_layers for v in layer.weights} | {id(v) for v in resampled}
    carried = 0
    for v in converted.weights:
        if id(v) in skip:
            continue
        k = _key(keras.ops.convert_to_numpy(v))
        assert left.get(k, 0) > 0, f"converted weight {v.path} is not a source weight"
        left[k] -= 1
        carried += 1
    return carried, [k for k, n in left.items() for _ in range(n)]


def _layers_of(model, cls):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, cls)
    ]


def _expected_count(info, row, field):
    return getattr(row, field) + info.deviations.get(field, (0, ""))[0]


def _check_zoo_pair(orig, target, stem):
    source = _zoo_source(orig)
    converted, report = convert(
        source, hybrid_stem=stem, return_report=True, **family_options(orig)
    )
    zoo = applications.create_model(target, classifier_activation=None)
    info = applications.get_model_info(target)

    # Structure: layer classes, then weight shapes, in order.
    classes = [type(la).__name__ for la in converted.layers]
    assert classes == [type(la).__name__ for la in zoo.layers]
    assert [tuple(w.shape) for w in converted.weights] == [tuple(w.shape) for w in zoo.weights]

    # The reference rows' exact counts, in their conventions.
    size = info.input_shape[0]
    rows = [r for r in info.references if r.input_size == size and r.classes == info.classes]
    if info.family != "pydmobilenet":  # the padding-free PydMobileNet has no paper row
        assert rows, f"{target}: no reference row at {size}px"
    for row in rows:
        convention = profiling.normalize_convention(row.flops_convention)
        assert profiling.count_params(converted, convention) == _expected_count(info, row, "params")
        assert profiling.count_flops(converted, convention) == _expected_count(info, row, "flops")

    # Carried weights bit for bit; only the stem and the resized ParC kernels are not carried.
    stems = _layers_of(converted, HybridStem)
    assert len(stems) == (1 if stem else 0)
    resized = [
        v
        for new in _layers_of(converted, ParCConv)
        for v in (new.kernel, new.pe)
        if v is not None and v.path in report.resampled_weights
    ]
    carried, left = _carried_check(source, converted, new_layers=stems, resampled=resized)
    assert carried == report.carried_weights
    stem_entry = [e for e in report.layers if e.kind == "hybrid_stem"]
    replaced = [source.get_layer(n) for e in stem_entry for n in e.source]
    parc_sources = [
        source.get_layer(n) for e in report.layers if e.kind == "parc" for n in e.source
    ]
    expected_left = sorted(
        [_key(keras.ops.convert_to_numpy(v)) for la in replaced for v in la.weights]
        + [
            _key(keras.ops.convert_to_numpy(v))
            for la in parc_sources
            for v in (la.kernel, la.pe)
            if v is not None
        ]
    )
    assert sorted(left) == expected_left
    assert len(report.new_weights) == sum(len(s.weights) for s in stems)

    # Identical outputs once the zoo model holds the converted weights.
    zoo.set_weights(converted.get_weights())
    x = np.random.default_rng(0).uniform(0, 1, (2,) + info.input_shape).astype("float32")
    np.testing.assert_array_equal(helpers.forward(converted, x), helpers.forward(zoo, x))
    return converted, report


@pytest.mark.parametrize("orig,target,stem", [_zoo_param(*p) for p in ZOO_PAIRS])
def test_converting_a_zoo_original_gives_exactly_its_padding_free_model(orig, target, stem):
    _check_zoo_pair(orig, target, stem)


@pytest.mark.parametrize("orig,target,stem", [_zoo_param(*p, large=True) for p in ZOO_PAIRS_LARGE])
def test_converting_the_rest_of_the_zoo_grid(orig, target, stem):
    _check_zoo_pair(orig, target, stem)


def test_family_table_covers_every_family_with_a_padding_free_model():
    families = {
        applications.get_model_info(n).family
        for n in applications.list_models()
        if applications.get_model_info(n).variant == "pf"
    }
    # The BSConv ResNets/WRNs have padding-free models, but stride-2 full convs: not convertible.
    assert set(FAMILY_OPTIONS) == families - {"bsconv_resnet", "bsconv_wrn"}
    assert family_options("ghostnet_cifar") == family_options("ghostnet")
    options = family_options("shufflenetv2")
    options["stem_options"]["replace_pool"] = False  # a copy: the table is unchanged
    assert FAMILY_OPTIONS["shufflenetv2"]["stem_options"]["replace_pool"] is True


# --------------------------------------------------------------------------------------------------
# keras.applications


KERAS_CASES = [
    pytest.param("MobileNetV2", {"alpha": 0.35}, True, id="MobileNetV2-stem"),
    pytest.param(
        "MobileNetV3Small",
        {"include_preprocessing": True},
        False,
        id="MobileNetV3Small-preprocessing",
    ),
    pytest.param(
        "MobileNetV3Small",
        {"include_preprocessing": False},
        True,
        marks=pytest.mark.large,
        id="MobileNetV3Small-stem",
    ),
    pytest.param(
        "MobileNetV3Large",
        {"include_preprocessing": True},
        True,
        marks=pytest.mark.large,
        id="MobileNetV3Large-preprocessing-stem",
    ),
    pytest.param(
        "MobileNetV3Large", {"include_preprocessing": False}, False, id="MobileNetV3Large"
    ),
]


@pytest.mark.parametrize("builder,kwargs,stem", KERAS_CASES)
def test_keras_applications_mobilenets_convert(builder, kwargs, stem):
    source = getattr(keras.applications, builder)(
        weights=None, input_shape=(64, 64, 3), classes=10, **kwargs
    )
    _randomize(source, seed=1)
    strided = [
        la
        for la in source.layers
        if isinstance(la, keras.layers.DepthwiseConv2D) and la.strides == (2, 2)
    ]
    assert len(strided) == 4
    converted, report = convert(source, hybrid_stem=stem, return_report=True)

    pf = [la for la in converted.layers if isinstance(la, PaddingFreeDWConv)]
    assert len(pf) == 4
    assert [la.shortcut_position for la in pf] == ["after_activation"] * 4
    # 64 -> stem 32 -> 15 -> 7 -> 3 -> 1 (the source: 16, 8, 4, 2).
    assert [converted.get_layer(la.name).output.shape[1] for la in pf] == [15, 7, 3, 1]
    assert [la.output.shape[1] for la in strided] == [16, 8, 4, 2]
    assert not any(isinstance(la, keras.layers.ZeroPadding2D) for la in converted.layers)
    assert not any(
        isinstance(la, keras.layers.DepthwiseConv2D) and la.strides != (1, 1)
        for la in converted.layers
    )
    has_rescaling = any(isinstance(la, keras.layers.Rescaling) for la in converted.layers)
    assert has_rescaling == kwargs.get("include_preprocessing", False)
    assert [e.kind for e in report.layers].count("padding_free") == 4

    stems = _layers_of(converted, HybridStem)
    assert len(stems) == (1 if stem else 0)
    carried, left = _carried_check(source, converted, new_layers=stems)
    assert carried == report.carried_weights == len(converted.weights) - len(report.new_weights)
    # Not carried: the stem conv + BN (1 + 4 tensors) when the stem is replaced, else nothing.
    assert len(left) == (5 if stem else 0)

    x = np.random.default_rng(2).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    y = helpers.forward(converted, x)
    assert y.shape == (2, 10) and np.all(np.isfinite(y))


# --------------------------------------------------------------------------------------------------
# The rewrite's arithmetic, against NumPy


def _np_depthwise_valid(x, kernel, stride):
    k = kernel.shape[0]
    n, h, w, c = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            patch = x[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j, :] = np.einsum("nhwc,hwc->nc", patch, kernel[:, :, :, 0])
    return out


def _np_max_pool(x, size, stride, pad):
    if pad:
        x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], constant_values=-np.inf)
    n, h, w, c = x.shape
    ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j, :] = x[
                :, i * stride : i * stride + size, j * stride : j * stride + size, :
            ].max(axis=(1, 2))
    return out


def _tiny_model(kernel_size, *, use_bias, activation_layer, padding="same"):
    inputs = keras.Input((11, 11, 4))
    x = inputs
    if padding == "explicit":
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name="dw_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        kernel_size,
        strides=2,
        padding="valid" if padding == "explicit" else "same",
        use_bias=use_bias,
        name="dw",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="bn")(x)
    x = activation_layer(x)
    outputs = keras.layers.Conv2D(3, 1, name="pw")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    _randomize(model, seed=kernel_size)
    return model


ACTIVATIONS = {
    "relu6": (lambda: keras.layers.ReLU(6.0, name="act"), lambda v: np.clip(v, 0, 6)),
    "leaky": (
        lambda: keras.layers.LeakyReLU(0.2, name="act"),
        lambda v: np.where(v > 0, v, 0.2 * v),
    ),
}


@pytest.mark.all_backends
@pytest.mark.parametrize("position", ["after_activation", "after_bn", "before_bn"])
@pytest.mark.parametrize(
    "kernel_size,pool,use_bias,act,padding",
    [
        (3, "3x3", False, "relu6", "same"),  # fused into PaddingFreeDWConv
        (5, "kernel", False, "relu6", "explicit"),
        (5, "3x3", True, "leaky", "same"),  # a bias and LeakyReLU: layers kept, pool + Add added
        (7, "kernel", True, "relu6", "explicit"),
    ],
)
def test_rewrite_computes_the_padding_free_block(
    position, kernel_size, pool, use_bias, act, padding
):
    make_act, np_act = ACTIVATIONS[act]
    source = _tiny_model(
        kernel_size, use_bias=use_bias, activation_layer=make_act(), padding=padding
    )
    converted, report = convert(
        source, shortcut_position=position, shortcut_pool=pool, return_report=True
    )
    fused = not use_bias and act == "relu6"
    assert [e.kind for e in report.layers] == ["padding_free" if fused else "padding_free_unfused"]
    assert len(_layers_of(converted, PaddingFreeDWConv)) == (1 if fused else 0)

    w = {v.path: keras.ops.convert_to_numpy(v).astype(np.float64) for v in source.weights}
    x = np.random.default_rng(3).normal(size=(2, 11, 11, 4))
    p = (kernel_size - 3) // 2
    xp = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    y = _np_depthwise_valid(xp, w["dw/kernel"], 2) + (w["dw/bias"] if use_bias else 0.0)
    pool_size, pool_pad = (kernel_size, p) if pool == "kernel" else (3, 0)
    s = _np_max_pool(x, pool_size, 2, pool_pad)
    assert s.shape == y.shape == (2, 5, 5, 4)

    def bn(v):
        return (v - w["bn/moving_mean"]) / np.sqrt(w["bn/moving_variance"] + 1e-3) * w[
            "bn/gamma"
        ] + w["bn/beta"]

    if position == "before_bn":
        y = np_act(bn(y + s))
    elif position == "after_bn":
        y = np_act(bn(y) + s)
    else:
        y = np_act(bn(y)) + s
    expected = np.einsum("nhwc,cd->nhwd", y, w["pw/kernel"][0, 0]) + w["pw/bias"]
    got = helpers.forward(converted, x.astype("float32"))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# Models as users build them


def _small_backbone():
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for i in range(2):
        x = keras.layers.DepthwiseConv2D(
            3, strides=2, padding="same", use_bias=False, name=f"dw{i}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"dw{i}_bn")(x)
        x = keras.layers.ReLU(name=f"dw{i}_relu")(x)
        x = keras.layers.Conv2D(8, 1, use_bias=False, name=f"pw{i}")(x)
    return keras.Model(inputs, x, name="backbone")


@pytest.mark.all_backends
def test_nested_functional_backbone_is_converted_inside():
    backbone = _small_backbone()
    features = keras.Input((4, 4, 8), name="features")  # the backbone's output map: 32 / 8
    neck = keras.Model(features, keras.layers.Conv2D(8, 1, name="neck_conv")(features), name="neck")
    inputs = keras.Input((32, 32, 3))
    x = neck(backbone(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, name="head")(x)
    source = keras.Model(inputs, outputs, name="classifier")
    _randomize(source, seed=4)

    converted, report = convert(source, hybrid_stem=True, return_report=True)
    nested, new_neck = converted.layers[1], converted.layers[2]
    assert isinstance(nested, keras.Model) and nested.name == "backbone"
    pf = [la for la in nested.layers if isinstance(la, PaddingFreeDWConv)]
    assert [la.name for la in pf] == ["dw0_pf", "dw1_pf"]
    assert nested.output.shape[1:] == (3, 3, 8)  # 32 -> stem 16 -> 7 -> 3
    # The nested model after it is rebuilt on the new map size (its Input was 4x4).
    assert new_neck.name == "neck" and new_neck.input.shape[1:] == (3, 3, 8)
    assert [e.kind for e in report.layers] == ["hybrid_stem", "padding_free", "padding_free"]
    stems = _layers_of(converted, HybridStem)
    carried, left = _carried_check(source, converted, new_layers=stems)
    # 21 weights (stem conv + BN: 5, two dw + BN + pw: 12, neck: 2, head: 2); all but the stem's
    # 5 are carried.
    assert carried == report.carried_weights == 16
    assert len(left) == 5
    assert converted.name == "classifier_pf"
    x = np.random.default_rng(4).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    assert helpers.forward(converted, x).shape == (2, 5)


def test_nested_sequential_is_copied_whole_or_rejected_when_it_needs_a_rewrite():
    def model(block):
        inputs = keras.Input((16, 16, 4))
        x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(inputs)
        return keras.Model(inputs, block(x), name="outer")

    plain = keras.Sequential(
        [keras.layers.Conv2D(4, 3, padding="same", name="c1"), keras.layers.ReLU(name="r1")],
        name="plain_block",
    )
    source = model(plain)
    _randomize(source, seed=6)
    converted, report = convert(source, return_report=True)
    assert converted.layers[-1].name == "plain_block"
    assert converted.output.shape[1:] == (7, 7, 4)
    carried, left = _carried_check(source, converted)
    # The dw (with a bias: kept, plus a pool and an Add) kernel and bias, c1's kernel and bias.
    assert carried == report.carried_weights == 4 and left == []

    strided = keras.Sequential(
        [keras.layers.DepthwiseConv2D(3, strides=2, name="inner_dw")], name="strided_block"
    )
    with pytest.raises(
        ValueError,
        match=r"nested Sequential model 'strided_block' holds layer "
        r"'inner_dw' \(DepthwiseConv2D, kernel 3x3, strides "
        r"\(2, 2\)\)",
    ):
        convert(model(strided))


def test_built_sequential_is_converted_and_an_unbuilt_one_is_rejected():
    source = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, padding="same", name="c"),
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
        ],
        name="seq",
    )
    converted = convert(source, name="seq_padding_free")
    assert converted.name == "seq_padding_free"
    assert [type(la).__name__ for la in converted.layers[1:]] == ["Conv2D", "PaddingFreeDWConv"]
    assert converted.output.shape[1:] == (7, 7, 4)

    unbuilt = keras.Sequential([keras.layers.DepthwiseConv2D(3, strides=2)])
    with pytest.raises(ValueError, match="Sequential model .* has no input shape yet"):
        convert(unbuilt)


def test_converted_model_saves_fine_tunes_and_loads(tmp_path):
    source = _small_backbone()
    converted = convert(source, hybrid_stem=True)
    converted.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(5).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    before = helpers.forward(converted, x)
    converted.fit(x, np.zeros((4, 3, 3, 8), "float32"), epochs=1, batch_size=4, verbose=0)
    after = helpers.forward(converted, x)
    assert not np.array_equal(before, after)
    path = str(tmp_path / "converted.keras")
    converted.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(helpers.forward(restored, x), after)


# --------------------------------------------------------------------------------------------------
# ParC kernels


@pytest.fixture(scope="module")
def parc_conversions():
    source = _zoo_source("parc_mobilenetv2_cifar")
    resampled = convert(source, return_report=True, **family_options("parc_mobilenetv2"))
    fresh = convert(
        source,
        return_report=True,
        parc_kernels="reinitialize",
        **family_options("parc_mobilenetv2"),
    )
    return source, resampled, fresh


def test_parc_kernels_are_resampled_to_the_new_map_size(parc_conversions):
    source, (converted, report), _ = parc_conversions
    pairs = [(converted.get_layer(la.name), la) for la in source.layers if isinstance(la, ParCConv)]
    assert len(pairs) == 8
    assert sorted({(s.kernel_size, n.kernel_size) for n, s in pairs}) == [(4, 3), (8, 7)]
    assert len(report.resampled_weights) == 8 + 6  # 8 kernels, 6 positional embeddings
    for new, src in pairs:
        axis = 0 if src.direction == "vertical" else 1
        k_src = keras.ops.convert_to_numpy(src.kernel).astype(np.float64)
        k_new = keras.ops.convert_to_numpy(new.kernel).astype(np.float64)
        assert k_new.shape[axis] == new.kernel_size
        # The kernel's sum (its response to a constant map) is kept, per channel.
        np.testing.assert_allclose(k_new.sum(axis=axis), k_src.sum(axis=axis), rtol=1e-5, atol=1e-6)
        # Area resampling: the first new tap covers all of old tap 0 and (K - K') / K' of tap 1.
        k, kn = src.kernel_size, new.kernel_size
        first = np.take(k_src, 0, axis) + (k / kn - 1.0) * np.take(k_src, 1, axis)
        np.testing.assert_allclose(np.take(k_new, 0, axis), first, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(new.bias), keras.ops.convert_to_numpy(src.bias)
        )
        if src.pe is not None:
            pe_src = keras.ops.convert_to_numpy(src.pe).astype(np.float64)
            pe_new = keras.ops.convert_to_numpy(new.pe).astype(np.float64)
            np.testing.assert_allclose(
                pe_new.mean(axis=axis), pe_src.mean(axis=axis), rtol=1e-5, atol=1e-6
            )
    assert any(src.pe is not None for _, src in pairs)


def test_parc_kernels_can_start_fresh(parc_conversions):
    source, (_, resampled_report), (converted, report) = parc_conversions
    assert report.resampled_weights == ()
    assert sorted(report.new_weights) == sorted(resampled_report.resampled_weights)
    assert report.carried_weights == resampled_report.carried_weights
    for la in source.layers:
        if isinstance(la, ParCConv):
            new = converted.get_layer(la.name)
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(new.bias), keras.ops.convert_to_numpy(la.bias)
            )


# --------------------------------------------------------------------------------------------------
# Errors


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dw = keras.layers.DepthwiseConv2D(3, strides=2)

    def call(self, x):
        return self.dw(x)


class _StridedInside(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.DepthwiseConv2D(3, strides=2, name="inner_dw")

    def call(self, x):
        return self.conv(x)


def _graph(*layers, shape=(16, 16, 4)):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x, name="g")


def test_errors_name_what_was_found_and_the_options():
    with pytest.raises(ValueError, match="subclassed model of class _Subclassed"):
        convert(_Subclassed())
    with pytest.raises(
        ValueError, match="must be a functional keras.Model.*Received: model of type str"
    ):
        convert("mobilenetv2")

    resnet = applications.create_model("bsconv_resnet20_cifar")
    with pytest.raises(
        ValueError,
        match=r"'stage2_unit1_conv1_conv' \(Conv2D, kernel 3x3, "
        r"strides \(2, 2\)\).*no depthwise form.*"
        r"standard_convs='keep'",
    ):
        convert(resnet)
    with pytest.raises(
        ValueError,
        match=r"'stage2_unit1_projection_conv' \(Conv2D, kernel 1x1, "
        r"strides \(2, 2\)\).*pointwise_shortcuts='max_pool'",
    ):
        convert(resnet, standard_convs="keep")
    with pytest.raises(ValueError, match="no stride-2 DepthwiseConv2D.*nothing to convert"):
        convert(resnet, standard_convs="keep", pointwise_shortcuts="keep")

    pf = applications.create_model("shufflenetv2_pf_cifar")
    with pytest.raises(ValueError, match="already has 6 PaddingFreeDWConv layers"):
        convert(pf)
    with pytest.raises(ValueError, match="already starts with a HybridStem"):
        convert(pf, hybrid_stem=True)

    # Padding-free maps 9 -> 4 -> 1: the third stride-2 conv would get a 1x1 map.
    small = _graph(
        *[
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name=f"dw{i}")
            for i in range(3)
        ],
        shape=(9, 9, 4),
    )
    with pytest.raises(
        ValueError,
        match=r"'dw2' \(DepthwiseConv2D, kernel 3x3, strides \(2, 2\)"
        r"\) receives a 1x1 map.*at least 3x3",
    ):
        convert(small)

    with pytest.raises(
        ValueError,
        match=r"'dw' \(DepthwiseConv2D, kernel 3x3, strides \(2, 2\)\) "
        r"with depth_multiplier=2",
    ):
        convert(_graph(keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, name="dw")))
    with pytest.raises(ValueError, match=r"'dw' \(DepthwiseConv2D, kernel 2x2.*square, odd"):
        convert(_graph(keras.layers.DepthwiseConv2D(2, strides=2, name="dw")))
    with pytest.raises(
        ValueError,
        match=r"'custom' \(_StridedInside\) has stride-2 convolutions "
        r"inside \('inner_dw'\)",
    ):
        convert(_graph(_StridedInside(name="custom")))
    backbone = _small_backbone()
    a, b = keras.Input((32, 32, 3)), keras.Input((32, 32, 3))
    twice = keras.Model([a, b], keras.layers.Add()([backbone(a), backbone(b)]))
    with pytest.raises(ValueError, match="nested model 'backbone' is called 2 times"):
        convert(twice)
    with pytest.raises(ValueError, match="followed by no activation layer.*stem_options="):
        convert(
            _graph(
                keras.layers.Conv2D(4, 3, name="c"),
                keras.layers.DepthwiseConv2D(3, strides=2, name="dw"),
            ),
            hybrid_stem=True,
        )
    with pytest.raises(ValueError, match=r"'replace_pool': True.*found 'dw0' \(DepthwiseConv2D"):
        convert(_small_backbone(), hybrid_stem=True, stem_options={"replace_pool": True})


def test_bad_arguments_name_the_argument():
    model = _small_backbone()
    cases = [
        (
            {"shortcut_position": "middle"},
            "Argument `shortcut_position` must be one of"
            r" \['after_activation'.*Received: "
            "shortcut_position='middle'",
        ),
        ({"shortcut_pool": "5x5"}, "Argument `shortcut_pool` must be one of.*'5x5'"),
        ({"pointwise_shortcuts": "pool"}, "Argument `pointwise_shortcuts` must be one of"),
        ({"standard_convs": "drop"}, "Argument `standard_convs` must be one of"),
        ({"parc_kernels": "zeros"}, "Argument `parc_kernels` must be one of"),
        (
            {"hybrid_stem": "yes"},
            "Argument `hybrid_stem` must be True or False. Received: hybrid_stem='yes'",
        ),
        (
            {"stem_options": {"filters": 8}},
            "Argument `stem_options` must be a dict with keys "
            "among.*Received: stem_options=\\{'filters': 8\\}",
        ),
        ({"padding_only": [3]}, "Argument `padding_only` must be a list of layer names"),
        ({"name": 3}, "Argument `name` must be a string or None. Received: name=3"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            convert(model, **kwargs)
    with pytest.raises(
        ValueError,
        match="Argument `name` must be one of the families "
        r"\['bsconv_mobilenetv3'.*Received: name='nonet'",
    ):
        family_options("nonet")
    with pytest.raises(ValueError, match="family 'bsconv_resnet', which has no padding-free form"):
        family_options("bsconv_resnet20_cifar")
