"""ShuffleNetV2 1.0x: builders, configurations, stem/shortcut placement, input sizes, errors.

The exact counts of every registered variant are checked by ``test_registry_models.py``; here the
public builders are checked directly (defaults, automatic configuration) plus the behaviour the
counts cannot see.
"""

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree import profiling
from keras_padfree.applications import ShuffleNetV2
from keras_padfree.applications import ShuffleNetV2PF
from keras_padfree.layers import AttentionDownsampling
from keras_padfree.layers import ChannelShuffle
from keras_padfree.layers import PaddingFreeDWConv


def _row(model, variant):
    (row,) = applications.reference_rows(model, variant)
    return row


def _assert_counts(model, row):
    assert profiling.count_params(model, "thop_0.0.31") == row.params
    assert profiling.count_flops(model, "thop_0.0.31") == row.flops
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == row.params_all_weights


def test_pf_builder_at_32_is_the_paper_cifar_row():
    model = ShuffleNetV2PF(input_shape=(32, 32, 3), classes=100)  # config="auto" -> cifar
    _assert_counts(model, _row("cifar_shufflenetv2", "pf"))
    assert model.get_layer("stem").strides == 1 and model.get_layer("stem").branch_strides == 1


def test_default_input_is_224_vegfru_configuration():
    model = ShuffleNetV2PF(classes=292)
    assert tuple(model.input.shape) == (None, 224, 224, 3)
    _assert_counts(model, _row("shufflenetv2", "pf"))
    stem = model.get_layer("stem")
    # The hybrid stem replaces conv1 and the max-pool: both branches have stride 2 at 224.
    assert (stem.strides, stem.branch_strides) == (2, 2)
    assert tuple(stem.output.shape) == (None, 56, 56, 24)
    assert tuple(model.get_layer("conv5").output.shape) == (None, 6, 6, 1024)


def test_original_stem_and_pool_per_configuration():
    cifar = ShuffleNetV2(input_shape=(32, 32, 3), classes=10)
    pool = cifar.get_layer("maxpool")
    assert pool.strides == (1, 1) and tuple(pool.output.shape) == (None, 32, 32, 24)
    imagenet = ShuffleNetV2(input_shape=(224, 224, 3), classes=10)
    assert tuple(imagenet.get_layer("maxpool").output.shape) == (None, 56, 56, 24)
    assert tuple(imagenet.get_layer("conv5").output.shape) == (None, 7, 7, 1024)
    # The ablation with the hybrid stem drops the max-pool, as the reference's "ours" does.
    stem_only = ShuffleNetV2(input_shape=(32, 32, 3), classes=10, stem="hybrid")
    assert "maxpool" not in [layer.name for layer in stem_only.layers]


def test_padding_free_shortcut_before_bn_on_both_branches():
    model = ShuffleNetV2PF(input_shape=(32, 32, 3), classes=10)
    pf = [layer for layer in model.layers if isinstance(layer, PaddingFreeDWConv)]
    assert [layer.name for layer in pf] == [
        f"stage{s}_unit1_branch{b}_dw_pf" for s in (2, 3, 4) for b in (1, 2)
    ]
    assert all(layer.shortcut_position == "before_bn" and layer.activation is None for layer in pf)
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in model.layers)
    assert [
        tuple(model.get_layer(f"stage{s}_unit1_shuffle").output.shape)[1] for s in (2, 3, 4)
    ] == [15, 7, 3]


def test_effv2_replaces_first_units_wholesale():
    model = ShuffleNetV2(input_shape=(32, 32, 3), classes=10, downsampling="attention")
    emb = [layer for layer in model.layers if isinstance(layer, AttentionDownsampling)]
    assert [(layer.name, layer.use_attention, layer.filters) for layer in emb] == [
        ("stage2_unit1_embedding", False, 116),
        ("stage3_unit1_embedding", False, 232),
        ("stage4_unit1_embedding", True, 464),
    ]
    shuffles = [layer.name for layer in model.layers if isinstance(layer, ChannelShuffle)]
    assert "stage2_unit1_shuffle" not in shuffles and len(shuffles) == 13


@pytest.mark.parametrize(
    "builder,kwargs,size,out",
    [
        pytest.param(ShuffleNetV2, {}, 64, 8, marks=pytest.mark.large),
        (ShuffleNetV2PF, {}, 64, 7),
        pytest.param(ShuffleNetV2PF, {"config": "imagenet"}, 64, 1, marks=pytest.mark.large),
        pytest.param(
            ShuffleNetV2,
            {"downsampling": "attention", "config": "cifar"},
            48,
            6,
            marks=pytest.mark.large,
        ),
    ],
)
def test_builds_and_runs_at_other_input_sizes(builder, kwargs, size, out):
    model = builder(input_shape=(size, size, 3), classes=7, **kwargs)
    assert tuple(model.get_layer("conv5").output.shape) == (None, out, out, 1024)
    x = np.random.RandomState(0).rand(1, size, size, 3).astype("float32")
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == (1, 7) and np.all(np.isfinite(y))


@pytest.mark.parametrize(
    "builder,kwargs,minimum",
    [
        (ShuffleNetV2PF, {"config": "cifar"}, 15),
        (ShuffleNetV2PF, {"config": "imagenet"}, 57),
        (ShuffleNetV2, {"config": "cifar", "downsampling": "attention"}, 5),
    ],
)
def test_too_small_input_is_a_clear_error(builder, kwargs, minimum):
    builder(input_shape=(minimum, minimum, 3), classes=5, **kwargs)
    with pytest.raises(ValueError, match=f"at least {minimum}x{minimum}"):
        builder(input_shape=(minimum - 1, minimum - 1, 3), classes=5, **kwargs)


def test_dynamic_input_size_builds_without_attention():
    model = ShuffleNetV2PF(input_shape=(None, None, 3), config="cifar", classes=5)
    y = model(np.zeros((1, 40, 40, 3), "float32"))
    assert tuple(y.shape) == (1, 5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`stem`"):
        ShuffleNetV2(input_shape=(32, 32, 3), stem="fancy")
    with pytest.raises(ValueError, match="`downsampling`"):
        ShuffleNetV2(input_shape=(32, 32, 3), downsampling="strided")
    with pytest.raises(ValueError, match="`config`"):
        ShuffleNetV2(input_shape=(32, 32, 3), config="cifar10")
    with pytest.raises(ValueError, match="`classes`"):
        ShuffleNetV2PF(input_shape=(32, 32, 3), classes=0)


def test_headless_and_pooling():
    model = ShuffleNetV2PF(input_shape=(32, 32, 3), include_top=False)
    assert tuple(model.output.shape) == (None, 3, 3, 1024)
    model = ShuffleNetV2(input_shape=(32, 32, 3), include_top=False, pooling="max")
    assert tuple(model.output.shape) == (None, 1024)
