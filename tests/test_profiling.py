"""The profiler's conventions on a model whose counts are computed by hand."""

import keras
import numpy as np
import pytest

from keras_padfree import profiling


def _toy():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, padding="same")(x)  # 64*27*4 = 6912 MACs, 256 biased
    y = keras.layers.BatchNormalization()(y)  # 256 elements
    y = keras.layers.ReLU()(y)  # 256 elements
    y = keras.layers.MaxPooling2D(2)(y)  # 256 in, 64 out
    y = keras.layers.GlobalAveragePooling2D()(y)  # 64 in, 4 out
    y = keras.layers.Dense(5)(y)  # 20 MACs, 5 biased
    return keras.Model(x, y)


def test_plain_macs():
    assert profiling.count_flops(_toy()) == 6912 + 20


def test_bsconv_profile_convention():
    # conv + bias, 2/elem BN, 1/elem ReLU, 1/input elem for every pool, dense + bias.
    expected = (6912 + 256) + 2 * 256 + 256 + 256 + 64 + (20 + 5)
    assert profiling.count_flops(_toy(), "bsconv_profile") == expected


def test_thop_0_0_31_convention():
    # conv + bias, 2/elem BN, nothing for ReLU and max-pool, (area+1)/output for the adaptive
    # average pool, dense without bias.
    expected = (6912 + 256) + 2 * 256 + (16 + 1) * 4 + 20
    assert profiling.count_flops(_toy(), "thop_0.0.31") == expected


def test_params_and_per_layer_table():
    model = _toy()
    assert profiling.count_params(model) == (27 * 4 + 4) + 8 + (4 * 5 + 5)
    report = profiling.profile_model(model, "bsconv_profile")
    assert [row.class_name for row in report.layers] == [
        "Conv2D",
        "BatchNormalization",
        "ReLU",
        "MaxPooling2D",
        "GlobalAveragePooling2D",
        "Dense",
    ]
    assert sum(r.flops for r in report.layers) == report.flops
    assert "total" in report.table()


def test_aliases_and_bad_convention():
    assert (
        profiling.normalize_convention("conv_fc_macs (paper column not exactly reproducible)")
        == "macs"
    )
    assert profiling.normalize_convention("conv_linear_macs") == "macs"
    with pytest.raises(ValueError, match="convention"):
        profiling.count_flops(_toy(), "fvcore")


class _Opaque(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def test_unknown_layer_is_an_error_not_zero():
    x = keras.Input((4, 4, 3))
    model = keras.Model(x, _Opaque(name="opaque")(x))
    with pytest.raises(ValueError, match="opaque"):
        profiling.count_flops(model)


class _WithFunctionalWeight(keras.layers.Layer):
    """A layer holding a weight the reference kept as a bare nn.Parameter (like ParC's PE)."""

    def build(self, input_shape):
        self.table = self.add_weight(shape=(7,), initializer="zeros", name="table")

    @property
    def functional_weights(self):
        return [self.table]

    def call(self, x):
        return x + keras.ops.sum(self.table)

    def profile_ops(self, input_shape):
        return [
            profiling.Op(
                "elementwise", elems_out=int(np.prod(input_shape[1:])), detail="add", module=False
            )
        ]


def test_thop_params_exclude_functional_weights():
    x = keras.Input((4, 4, 3))
    y = _WithFunctionalWeight()(keras.layers.Conv2D(2, 1, use_bias=False)(x))
    model = keras.Model(x, y)
    assert profiling.count_params(model, "macs") == 6 + 7
    assert profiling.count_params(model, "thop_0.0.31") == 6
    assert profiling.profile_model(model, "thop_0.0.31").params == 6


def test_dynamic_input_shape_is_rejected():
    x = keras.Input((None, None, 3))
    model = keras.Model(x, keras.layers.Conv2D(2, 1)(x))
    with pytest.raises(ValueError, match="static input shape"):
        profiling.count_flops(model)
