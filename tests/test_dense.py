"""Feature pyramids of every family, the FPN neck that merges levels of any size, the
segmentation model and its generated data."""

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import dense
from keras_padfree.applications._builder import feature_info
from keras_padfree.layers import ResizeToMatch
from tests import helpers
from tests.applications.test_registry_models import EVERY_BACKEND


def _pyramid_sizes(model):
    return [info.size[0] for info in model.feature_info]


@pytest.mark.parametrize("name", sorted(EVERY_BACKEND))
def test_every_family_reports_its_pyramid(name):
    info = applications.get_model_info(name)
    model = applications.create_model(name, features_only=True)
    assert list(model.output) == [f.level for f in model.feature_info]
    for level in model.feature_info:
        tensor = model.output[level.level]
        assert tuple(tensor.shape[1:3]) == level.size
        assert tensor.shape[-1] == level.channels
        assert level.reduction == 2 ** int(level.level[1:])
        assert model.get_layer(level.layer).output is tensor or level.layer in (
            layer.name for layer in model.layers
        )
    sizes = _pyramid_sizes(model)
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    side = info.input_shape[0]
    if info.variant == "pf":  # every padding-free step: H -> floor((H - 3) / 2) + 1
        for finer, coarser in zip(sizes, sizes[1:]):
            if finer < side:
                assert coarser == (finer - 3) // 2 + 1
    # The last level is what include_top=False returns.
    headless = applications.create_model(name, include_top=False)
    assert tuple(headless.output.shape[1:]) == tuple(
        model.output[model.feature_info[-1].level].shape[1:]
    )


def test_padding_free_levels_at_224_are_not_powers_of_two():
    orig = applications.create_model("mobilenetv3_large_vegfru", features_only=True)
    pf = applications.create_model(
        "mobilenetv3_large_pf_vegfru", features_only=True, feature_levels=("P3", "P4", "P5")
    )
    assert _pyramid_sizes(orig) == [112, 56, 28, 14, 7]
    assert _pyramid_sizes(pf) == [112, 55, 27, 13, 6]
    assert list(pf.output) == ["P3", "P4", "P5"]
    assert [f.channels for f in pf.feature_info] == [16, 24, 40, 112, 960]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"features_only": "yes"}, "features_only"),
        ({"features_only": True, "pooling": "avg"}, "pooling"),
        ({"feature_levels": ("P1",)}, "features_only=True"),
        ({"features_only": True, "feature_levels": ("P9",)}, "feature_levels"),
    ],
)
def test_feature_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        applications.create_model("bsconv_resnet20_pf_cifar", **kwargs)


def test_a_saved_features_only_model_keeps_its_levels(tmp_path):
    model = applications.create_model("bsconv_resnet20_pf_cifar", features_only=True)
    path = str(tmp_path / "f.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert feature_info(restored.output) == model.feature_info
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype("float32")
    before, after = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    for level in before:
        np.testing.assert_allclose(before[level], after[level], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name,size",
    [
        pytest.param("bsconv_resnet20_pf_cifar", 32, marks=pytest.mark.all_backends),
        ("bsconv_resnet20_cifar", 32),
        ("ghostnet_pf_cifar", 40),
        ("ghostnet_cifar", 40),
        ("shufflenetv2_pf_vegfru", 96),
        ("shufflenetv2_vegfru", 100),
        pytest.param("mobilenetv3_large_pf_vegfru", 224, marks=pytest.mark.large),
        pytest.param("parc_mobilenetv2_pf_vegfru", 160, marks=pytest.mark.large),
    ],
)
def test_fpn_merges_levels_of_any_size(name, size):
    backbone = applications.create_model(name, input_shape=(size, size, 3), features_only=True)
    merged = dense.fpn(backbone.output, filters=16)
    assert {k: tuple(v.shape[1:]) for k, v in merged.items()} == {
        f.level: f.size + (16,) for f in backbone.feature_info
    }
    neck = keras.Model(backbone.input, merged)
    x = np.random.RandomState(0).rand(1, size, size, 3).astype("float32")
    outputs = (
        neck.predict(x, verbose=0)
        if not helpers.EAGER
        else {k: keras.ops.convert_to_numpy(v) for k, v in neck(x).items()}
    )
    assert all(np.isfinite(v).all() for v in outputs.values())


def test_fpn_and_resize_check_their_inputs():
    with pytest.raises(ValueError, match="pyramid"):
        dense.fpn({"C3": keras.Input((8, 8, 4))})
    with pytest.raises(ValueError, match="filters"):
        dense.fpn({"P3": keras.Input((8, 8, 4))}, filters=0)
    with pytest.raises(ValueError, match="static height and width"):
        ResizeToMatch()([keras.Input((4, 4, 2)), keras.Input((None, None, 2))])
    with pytest.raises(ValueError, match="interpolation"):
        ResizeToMatch("cubic")


def test_resize_to_match_resizes_to_the_reference_size():
    x = np.arange(36, dtype="float32").reshape(1, 6, 6, 1)
    out = keras.ops.convert_to_numpy(ResizeToMatch()([x, np.zeros((1, 13, 13, 3), "float32")]))
    assert out.shape == (1, 13, 13, 1)
    np.testing.assert_array_equal(np.unique(out), np.unique(x))  # nearest keeps the values
    layer = ResizeToMatch.from_config(ResizeToMatch("bilinear").get_config())
    assert layer.interpolation == "bilinear"


def test_synthetic_shapes_and_mean_iou():
    images, masks = dense.synthetic_shapes(30, size=24, seed=3)
    assert images.shape == (30, 24, 24, 3) and images.dtype == np.uint8
    assert masks.shape == (30, 24, 24) and set(np.unique(masks)) == {0, 1, 2, 3}
    assert all(len(np.unique(m)) == 2 for m in masks)  # one shape per image
    again, _ = dense.synthetic_shapes(30, size=24, seed=3)
    np.testing.assert_array_equal(images, again)
    assert dense.mean_iou(masks, masks, 4)[0] == 1.0
    miou, per_class = dense.mean_iou(masks, np.zeros_like(masks), 4)
    assert per_class[0] == pytest.approx((masks == 0).mean()) and per_class[1] == 0.0
    assert miou == pytest.approx(np.mean(per_class))
    with pytest.raises(ValueError, match="count"):
        dense.synthetic_shapes(0)
    with pytest.raises(ValueError, match="same shape"):
        dense.mean_iou(masks, masks[:2], 4)


# notebooks/dense_prediction.ipynb trains the same model on the same data with the same assertion
# on every test run; this copy runs with --run-large.
@pytest.mark.large
def test_segmentation_model_learns_the_shapes():
    keras.utils.set_random_seed(0)
    x, y = dense.synthetic_shapes(600, size=32, seed=0)
    xv, yv = dense.synthetic_shapes(150, size=32, seed=1)
    model = dense.segmentation_model(
        "bsconv_resnet20_pf_cifar", classes=4, include_preprocessing=True
    )
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    before = dense.mean_iou(yv, model.predict(xv.astype("float32"), verbose=0).argmax(-1), 4)[0]
    model.fit(x.astype("float32"), y, batch_size=32, epochs=3, verbose=0)
    after = dense.mean_iou(yv, model.predict(xv.astype("float32"), verbose=0).argmax(-1), 4)[0]
    assert after > before + 0.2 and after > 0.45, (before, after)
