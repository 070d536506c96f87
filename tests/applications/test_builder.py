"""The one builder: the config rule, the derived minimum sizes, a new family in one file, a new
downsampling mode in one place."""

import keras
import numpy as np
import pytest

from keras_padfree import applications
from keras_padfree.applications import _builder
from keras_padfree.applications import _registry
from keras_padfree.blocks import downsampling as ds
from keras_padfree.layers import PaddingFreeDWConv
from tests import helpers
from tests.applications import tiny_family

BUILDERS = [
    getattr(applications, name)
    for name in applications.__all__
    if hasattr(getattr(applications, name), "family")
]
FAMILIES = list({id(b.family): b.family for b in BUILDERS}.values())


def test_every_public_builder_comes_from_the_one_builder():
    assert len(BUILDERS) == 26
    assert {f.name for f in FAMILIES} == {
        "bsconv_mobilenetv3",
        "bsconv_resnet",
        "bsconv_wrn",
        "cheap_mobilenetv2",
        "cheap_mobilenetv3",
        "ghostnet",
        "mobilenetv3_large",
        "parc_mobilenetv2",
        "pydmobilenet",
        "shufflenetv2",
    }
    for builder in BUILDERS:
        assert "Args:" in builder.__doc__ and "Returns:" in builder.__doc__
        assert "Minimum input side" in builder.__doc__


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f"{f.name}-{f.title}")
def test_one_config_rule_for_every_family(family):
    layouts = [n for n in family.config_names if n in ("cifar", "imagenet")]
    rule = _builder.resolve_config
    if len(layouts) == 2:
        assert rule(family, None, (32, 32, 3)).name == "cifar"
        assert rule(family, None, (127, 300, 3)).name == "cifar"
        assert rule(family, None, (128, 128, 3)).name == "imagenet"
        assert rule(family, None, (None, None, 3)).name == family.configs[0].name
        assert rule(family, "auto", (32, 32, 3)).name == "cifar"  # 0.1.0's spelling
        assert rule(family, "imagenet", (32, 32, 3)).name == "imagenet"
    else:
        for shape in ((32, 32, 3), (224, 224, 3), None):
            assert rule(family, None, shape).name == layouts[0]
    with pytest.raises(ValueError, match="Argument `config` must be one of"):
        rule(family, "cifar10", (32, 32, 3))


def _forward_min_size(family, table, config, mode):
    """The first input side the steps map to >= 1 pixel (>= 2 into an attention block)."""
    for size in range(1, 1000):
        h = size
        for k, s, p in config.stem_steps:
            h = (h + 2 * p - k) // s + 1
        index, ok = 0, h >= 1
        for row in table:
            if not ok or row.stride(config.stride_column) != 2:
                continue
            if mode.replaces_blocks and index >= family.quirks.attention_conv_only and h < 2:
                ok = False
            h = (
                ds.MODES["standard"].output_size(h, 3)
                if mode.replaces_blocks
                else mode.output_size(h, row.values.get("k") or 3)
            )
            ok = ok and h >= 1
            index += 1
        if ok:
            return size
    raise AssertionError("no size")


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f"{f.name}-{f.title}")
def test_minimum_sizes_are_derived_backwards_exactly(family):
    args = {a.name: a.default for a in family.args}
    for config in family.configs:
        table = family.table_for(args, config)
        for name in family.modes:
            mode = ds.get_mode(name)
            assert _builder.min_input_size(family, table, config, mode) == _forward_min_size(
                family, table, config, mode
            ), (config.name, name)


@pytest.mark.parametrize(
    "name,minimum",
    [
        ("mobilenetv3_large_pf_cifar", 15),
        ("ghostnet_pf_vegfru", 61),
        ("shufflenetv2_pf_vegfru", 57),
        ("parc_mobilenetv2_effv2_ds_cifar", 5),
        ("bsconv_resnet20_pf_cifar", 7),
        ("pydmobilenet29_025_concat_pf_cifar", 7),
    ],
)
def test_models_build_at_their_minimum_size_and_refuse_below(name, minimum):
    with pytest.raises(ValueError, match=f"at least {minimum}x{minimum}"):
        applications.create_model(name, input_shape=(minimum - 1, minimum - 1, 3))
    model = applications.create_model(name, input_shape=(minimum, minimum, 3), classes=3)
    maps = [layer.output for layer in model.layers]
    smallest = min(t.shape[1] for t in maps if not isinstance(t, list) and len(t.shape) == 4)
    assert smallest == 1


@pytest.fixture
def tiny():
    names = tiny_family.register()
    yield names
    for name in names:
        _registry.unregister_model(name)
    tiny_family.TinyNet.registered.clear()


def test_a_new_family_is_one_file(tiny):
    assert tiny == ["tiny_cifar", "tiny_pf_cifar"]
    assert applications.list_models("tiny*") == tiny
    info = applications.get_model_info("tiny_pf_cifar")
    assert (info.family, info.variant, info.recipe) == ("tiny", "pf", "second_set_cifar")
    assert "``tiny_pf_cifar``" in tiny_family.TinyNet.__doc__
    model = applications.create_model("tiny_pf_cifar", classes=4)
    assert model.get_layer("stem").__class__.__name__ == "HybridStem"
    pf = [layer for layer in model.layers if isinstance(layer, PaddingFreeDWConv)]
    assert [layer.name for layer in pf] == ["block3_depthwise_pf"]  # block 2 has s32 = 1
    assert pf[0].shortcut_position == "after_bn"
    assert model.get_layer("last_conv").output.shape[1:3] == (15, 15)
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype("float32")
    assert helpers.forward(model, x).shape == (2, 4)
    with pytest.raises(ValueError, match="at least 3x3"):  # one padding-free step: 3 -> 1
        tiny_family.TinyNet(padding_free=True, input_shape=(2, 2, 3))
    imagenet = tiny_family.TinyNet(downsampling="attention", classes=3)
    assert imagenet.get_layer("block2_embedding").use_attention is False
    assert imagenet.get_layer("block3_embedding").use_attention is True


class ValidOnly(ds.Standard):
    """A test mode: stride-2 depthwise convs without border padding and without a shortcut."""

    name = "valid_only"

    def padding(self, kernel_size):
        return (kernel_size - 3) // 2

    def depthwise_bn_act(self, ctx, x, kernel_size, activation, *, name, names):
        return ctx.plain_depthwise_bn_act(
            x, kernel_size, 2, activation, name=name, names=names, padding=self.padding(kernel_size)
        )


def test_a_new_downsampling_mode_is_one_class(monkeypatch):
    monkeypatch.setitem(ds.MODES, "valid_only", ValidOnly())
    model = applications.MobileNetV3Large(
        input_shape=(32, 32, 3), classes=3, downsampling="valid_only"
    )
    assert model.get_layer("block4_depthwise_conv").padding == "valid"
    assert model.get_layer("last_conv").output.shape[1:3] == (3, 3)
    assert not any(isinstance(layer, PaddingFreeDWConv) for layer in model.layers)
    with pytest.raises(ValueError, match="at least 15x15"):
        applications.MobileNetV3Large(input_shape=(14, 14, 3), downsampling="valid_only")
    keras.backend.clear_session()
