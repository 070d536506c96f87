"""PydMobileNet builders: structure the counts do not see, arguments, PF variant, preprocessing.

Exact params/MACs of every reference row are checked by ``test_registry_models.py``.
"""

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from keras_padfree.applications import pydmobilenet
from keras_padfree.layers import HybridStem
from keras_padfree.layers import MaxPoolShortcut
from keras_padfree.layers import PyramidDWConv


def _shape(model, name):
    return tuple(model.get_layer(name).output.shape)


def test_reference_rows_are_all_attached_once():
    tables = ("PydMobileNet (cifar10)", "PydMobileNet (cifar100)", "PydMobileNet (imagenet32)")
    rows = [r for t in tables for r in applications.reference_rows(table=t)]
    attached = [
        r
        for name in applications.list_models()
        for r in applications.get_model_info(name).references
        if r.table in tables
    ]
    assert len(rows) == 47
    assert sorted(map(repr, attached)) == sorted(map(repr, rows))


def test_block_structure_of_the_downsampling_block():
    model = pydmobilenet.PydMobileNet(56, 0.75, "concat", classes=10)
    # Expansion 1x1 at the input resolution, pyramid strided, concat of 3 x 48 channels.
    assert _shape(model, "stage2_block1_expand") == (None, 32, 32, 48)
    assert _shape(model, "stage2_block1_pyramid") == (None, 16, 16, 144)
    assert _shape(model, "stage2_block1_project") == (None, 16, 16, 64)
    shortcut = model.get_layer("stage2_block1_shortcut")
    assert shortcut.strides == (2, 2) and shortcut.kernel_size == (1, 1)
    # The first block of stage 1 has an identity shortcut; no ReLU after any addition; GAP on the
    # last block output.
    names = [layer.name for layer in model.layers]
    assert "stage1_block1_shortcut" not in names
    assert model.get_layer("avg_pool").input is model.get_layer("stage3_block6_add").output
    stem_bn = model.get_layer("stem_bn")
    assert not stem_bn.center and not stem_bn.scale and stem_bn.epsilon == 1e-5


def test_add_variant_and_baselines_have_their_spatial_layers():
    add = pydmobilenet.PydMobileNet(29, 1, "add", classes=10)
    assert _shape(add, "stage3_block1_pyramid") == (None, 8, 8, 128)
    mobilenet = pydmobilenet.PydBaselineMobileNet(56, 1.5, classes=10)
    assert isinstance(mobilenet.get_layer("stage3_block1_dw"), keras.layers.DepthwiseConv2D)
    assert _shape(mobilenet, "stage3_block1_dw") == (None, 8, 8, 192)
    resnet = pydmobilenet.PydBaselineResNet(29, classes=10)
    assert resnet.get_layer("stage2_block2_conv").kernel.shape == (3, 3, 32, 32)


def test_imagenet32_head():
    model = pydmobilenet.PydMobileNet(56, 0.25, "concat", config="imagenet32")
    assert model.output.shape == (None, 1000)
    head = model.get_layer("head_conv")
    assert head.use_bias and head.kernel.shape == (1, 1, 256, 1280)
    assert _shape(model, "stage1_block1_pyramid") == (None, 32, 32, 48)


def test_pf_variant_changes_only_stem_and_downsampling():
    orig = pydmobilenet.PydMobileNet(29, 0.25, "add", classes=10)
    pf = pydmobilenet.PydMobileNetPF(29, 0.25, "add", classes=10)
    assert isinstance(pf.get_layer("stem"), HybridStem)
    assert pf.get_layer("stage2_block1_pyramid").padding_free
    assert isinstance(pf.get_layer("stage3_block1_shortcut"), MaxPoolShortcut)
    assert _shape(pf, "stage2_block1_add") == (None, 15, 15, 64)
    assert _shape(pf, "stage3_block1_add") == (None, 7, 7, 128)
    assert not pf.get_layer("stage1_block2_pyramid").padding_free
    stem = pf.get_layer("stem")
    stem_extra = 9 * 32 + 2 * 32 + 64 * 32 + 2 * 64  # depthwise + its pre-BN + fuse + fuse pre-BN
    assert (profiling.count_params(pf) - profiling.count_params(orig)) == stem_extra
    assert profiling.count_params(keras.Sequential([keras.Input((32, 32, 3)), stem])) == (
        27 * 32 + stem_extra
    )

    # The stages run at 15x15 / 7x7 instead of 16x16 / 8x8; the hybrid stem's 1x1 fuse at 32x32
    # costs more than that saves at this width (the totals are in the report).
    def body_macs(model):
        return sum(
            row.flops
            for row in profiling.profile_model(model).layers
            if not row.name.startswith("stem")
        )

    assert body_macs(pf) < body_macs(orig)


@pytest.mark.all_backends
def test_preprocessing_is_the_authors_normalisation():
    images = np.random.RandomState(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    with_pre = pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10)
    without = pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10, include_preprocessing=False)
    without.set_weights(with_pre.get_weights())
    a = keras.ops.convert_to_numpy(with_pre(images))
    b = keras.ops.convert_to_numpy(without(pydmobilenet.preprocess_input(images)))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_include_top_false_and_pooling():
    model = pydmobilenet.PydMobileNet(29, 0.5, "add", include_top=False)
    assert model.output.shape == (None, 8, 8, 128)
    pooled = pydmobilenet.PydMobileNet(29, 0.5, "add", include_top=False, pooling="max")
    assert pooled.output.shape == (None, 128)
    assert pydmobilenet.PydMobileNet(
        56, 0.25, config="imagenet32", include_top=False, pooling="avg"
    ).output.shape == (None, 1280)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"depth": 30}, "depth"),
        ({"depth": 2}, "depth"),
        ({"combine": "mul"}, "combine"),
        ({"width_multiplier": 0}, "width_multiplier"),
        ({"width_multiplier": 0.01}, "width_multiplier"),
        ({"config": "imagenet"}, "config"),
        ({"classes": 0}, "classes"),
        ({"pooling": "mean"}, "pooling"),
        ({"weights": "imagenet"}, "weights"),
        ({"weights": "missing.params"}, "weights"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pydmobilenet.PydMobileNet(**kwargs)


def test_pf_rejects_mxnet_weights_and_small_inputs(tmp_path):
    path = tmp_path / "w.params"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="No MXNet weights"):
        pydmobilenet.PydMobileNetPF(weights=str(path))
    with pytest.raises(ValueError, match="at least 7x7"):
        pydmobilenet.PydMobileNetPF(input_shape=(6, 6, 3))
    assert pydmobilenet.PydMobileNetPF(input_shape=(7, 7, 3)).output.shape == (None, 100)


def test_pyramid_layers_are_used():
    model = pydmobilenet.PydMobileNet(29, 0.25, "concat")
    pyramids = [layer for layer in model.layers if isinstance(layer, PyramidDWConv)]
    assert len(pyramids) == 9 and all(p.kernel_sizes == (3, 5, 7) for p in pyramids)
