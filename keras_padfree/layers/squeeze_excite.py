"""Squeeze-and-excitation with the gate the lightweight families use."""

from typing import Any

import keras
from keras import ops

from keras_padfree import profiling
from keras_padfree.layers import _utils
from keras_padfree.layers._utils import Initializer


@keras.saving.register_keras_serializable(package="keras_padfree")
class SqueezeExcite(keras.layers.Layer):
    """``x * gate(conv1x1(act(conv1x1(avgpool(x)))))``, both 1x1 convs with bias.

    Args:
        squeeze_channels: width of the bottleneck. The families round it differently (BSConv's
            MobileNetV3: ``C // 4``; torchvision's: ``make_divisible(C // 4, 8)``; GhostNet:
            ``make_divisible(C * 0.25, 4)``), so the caller passes the integer.
        activation: activation after the first conv ("relu").
        gate: gate activation ("hard_sigmoid" = relu6(x + 3) / 6, or "sigmoid").
        pool_is_module: whether the reference pooled with a module (BSConv, GhostNet) or with a
            functional call (the paper's torchvision-style MobileNetV3). It changes nothing but what
            module-based FLOP counters (``bsconv_profile``, ``thop_0.0.31``) see.

    Example:
    >>> SqueezeExcite(18)(keras.random.normal((1, 8, 8, 72))).shape
    (1, 8, 8, 72)
    """

    def __init__(
        self,
        squeeze_channels: int,
        activation: str | None = "relu",
        gate: str | None = "hard_sigmoid",
        pool_is_module: bool = True,
        kernel_initializer: Initializer = "he_uniform",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.squeeze_channels = _utils.check_positive_int(squeeze_channels, "squeeze_channels")
        self.activation = _utils.canonical_activation(activation)
        self.gate = _utils.canonical_activation(gate)
        self.pool_is_module = bool(pool_is_module)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.reduce = keras.layers.Conv2D(
            squeeze_channels,
            1,
            use_bias=True,
            kernel_initializer=_utils.fresh_initializer(self.kernel_initializer),
            name="reduce",
        )
        self.act = _utils.activation_layer(self.activation, layer_name="act")
        self.expand = None
        self.gate_act = _utils.activation_layer(self.gate, layer_name="gate")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.expand = keras.layers.Conv2D(
            channels,
            1,
            use_bias=True,
            kernel_initializer=_utils.fresh_initializer(self.kernel_initializer),
            name="expand",
        )
        pooled = (input_shape[0], 1, 1, channels)
        self.reduce.build(pooled)
        self.expand.build(pooled[:3] + (self.squeeze_channels,))
        self.built = True

    def call(self, inputs):
        s = ops.mean(inputs, axis=(1, 2), keepdims=True)
        s = self.reduce(s)
        if self.act is not None:
            s = self.act(s)
        s = self.expand(s)
        if self.gate_act is not None:
            s = self.gate_act(s)
        return inputs * s

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def profile_ops(self, input_shape):
        channels = int(input_shape[-1])
        pooled = (1, 1, 1, channels)
        ops_ = [
            profiling.Op(
                "global_pool",
                elems_in=profiling._elems(input_shape),
                elems_out=channels,
                detail="avg",
                module=self.pool_is_module,
            )
        ]
        ops_ += profiling._conv_ops(self.reduce, pooled, (1, 1, 1, self.squeeze_channels))
        if self.act is not None:
            ops_ += profiling.layer_ops(self.act, (1, 1, 1, self.squeeze_channels))
        ops_ += profiling._conv_ops(self.expand, (1, 1, 1, self.squeeze_channels), pooled)
        if self.gate_act is not None:
            ops_ += profiling.layer_ops(self.gate_act, pooled)
        ops_.append(
            profiling.Op(
                "elementwise", elems_out=profiling._elems(input_shape), detail="mul", module=False
            )
        )
        return ops_

    def get_config(self):
        config = super().get_config()
        config.update(
            squeeze_channels=self.squeeze_channels,
            activation=self.activation,
            gate=self.gate,
            pool_is_module=self.pool_is_module,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
