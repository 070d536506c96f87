"""GhostModule: GhostNet's primary conv + cheap depthwise features."""

import math
from typing import Any

import keras
from keras import ops

from keras_padfree import profiling
from keras_padfree.layers import _utils
from keras_padfree.layers._utils import Initializer


@keras.saving.register_keras_serializable(package="keras_padfree")
class GhostModule(keras.layers.Layer):
    """``concat([P, C])[..., :filters]`` with ``P = act(BN(conv(x)))`` and ``C = act(BN(dw(P)))``.

    GhostNet's replacement for a 1x1 convolution: a *primary* convolution makes
    ``init = ceil(filters / ratio)`` channels, a *cheap* depthwise convolution (``dw_size`` x
    ``dw_size``, stride 1, "same" padding, ``ratio - 1`` outputs per channel, no bias) makes
    ``init * (ratio - 1)`` more from them, and the concatenation is cut to ``filters`` channels.
    Both convs are bias-free and followed by BatchNorm and, if ``activation`` is set, the activation
    (GhostNet: ReLU in a bottleneck's first module, none in the second).

    Args:
        filters: output channels.
        ratio: total / primary channels (GhostNet: 2).
        kernel_size: primary conv kernel (GhostNet: 1), symmetric padding ``kernel_size // 2``.
        dw_size: cheap depthwise kernel (GhostNet: 3), padding ``dw_size // 2``.
        strides: primary conv stride (GhostNet: 1).
        activation: activation after each BN ("relu"), or None.
        bn_epsilon: BN epsilon (PyTorch default 1e-5).
        bn_momentum: BN momentum in Keras' convention (0.9 = PyTorch's 0.1).
        kernel_initializer: initializer of the primary conv.
        depthwise_initializer: initializer of the cheap depthwise conv (default PyTorch's
            kaiming-uniform, fan-in ``dw_size**2``).

    Example:
    >>> GhostModule(48)(keras.random.normal((1, 8, 8, 16))).shape
    (1, 8, 8, 48)
    """

    def __init__(
        self,
        filters: int,
        ratio: int = 2,
        kernel_size: int = 1,
        dw_size: int = 3,
        strides: int = 1,
        activation: str | None = "relu",
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        kernel_initializer: Initializer = "he_uniform",
        depthwise_initializer: Initializer | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = _utils.check_positive_int(filters, "filters")
        self.ratio = _utils.check_positive_int(ratio, "ratio")
        if self.ratio < 2:
            raise ValueError(
                f"Argument `ratio` must be an integer >= 2. Received: ratio={ratio!r}."
            )
        self.kernel_size = _utils.check_positive_int(kernel_size, "kernel_size")
        self.dw_size = _utils.check_positive_int(dw_size, "dw_size")
        for value, argname in ((kernel_size, "kernel_size"), (dw_size, "dw_size")):
            if value % 2 == 0:
                raise ValueError(
                    f"Argument `{argname}` must be odd (symmetric padding). "
                    f"Received: {argname}={value!r}."
                )
        self.strides = _utils.check_positive_int(strides, "strides")
        self.activation = _utils.canonical_activation(activation)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if depthwise_initializer is None:
            depthwise_initializer = _utils.uniform_limit_initializer(dw_size * dw_size)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)

        self.init_channels = math.ceil(self.filters / self.ratio)
        self.cheap_channels = self.init_channels * (self.ratio - 1)
        self.primary = keras.layers.Conv2D(
            self.init_channels,
            kernel_size,
            strides=strides,
            padding="valid",
            use_bias=False,
            kernel_initializer=_utils.fresh_initializer(self.kernel_initializer),
            name="primary",
        )
        self.primary_bn = _utils.batch_norm(bn_epsilon, bn_momentum, name="primary_bn")
        self.primary_act = _utils.activation_layer(self.activation, "primary_act")
        self.cheap = keras.layers.DepthwiseConv2D(
            dw_size,
            strides=1,
            padding="valid",
            depth_multiplier=self.ratio - 1,
            use_bias=False,
            depthwise_initializer=_utils.fresh_initializer(self.depthwise_initializer),
            name="cheap",
        )
        self.cheap_bn = _utils.batch_norm(bn_epsilon, bn_momentum, name="cheap_bn")
        self.cheap_act = _utils.activation_layer(self.activation, "cheap_act")

    def _shapes(self, input_shape):
        b, h, w, c = tuple(input_shape)
        p = self.kernel_size // 2
        size = lambda s: _utils.conv_output_size(s, self.kernel_size, self.strides, p)  # noqa
        primary = (b, size(h), size(w), self.init_channels)
        cheap = primary[:3] + (self.cheap_channels,)
        return primary, cheap

    @staticmethod
    def _padded(shape, p):
        b, h, w, c = shape
        grow = lambda s: None if s is None else s + 2 * p  # noqa: E731
        return (b, grow(h), grow(w), c)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        primary, cheap = self._shapes(input_shape)
        self.primary.build(self._padded(input_shape, self.kernel_size // 2))
        self.primary_bn.build(primary)
        self.cheap.build(self._padded(primary, self.dw_size // 2))
        self.cheap_bn.build(cheap)
        for act, shape in ((self.primary_act, primary), (self.cheap_act, cheap)):
            if act is not None:
                act.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        x1 = self.primary(_utils.symmetric_pad(inputs, self.kernel_size // 2))
        x1 = self.primary_bn(x1, training=training)
        if self.primary_act is not None:
            x1 = self.primary_act(x1)
        x2 = self.cheap(_utils.symmetric_pad(x1, self.dw_size // 2))
        x2 = self.cheap_bn(x2, training=training)
        if self.cheap_act is not None:
            x2 = self.cheap_act(x2)
        out = ops.concatenate([x1, x2], axis=-1)
        if self.init_channels + self.cheap_channels != self.filters:
            out = out[..., : self.filters]
        return out

    def compute_output_shape(self, input_shape):
        primary, _ = self._shapes(input_shape)
        return primary[:3] + (self.filters,)

    def profile_ops(self, input_shape):
        input_shape = tuple(input_shape)
        primary, cheap = self._shapes(input_shape)
        ops_ = profiling.layer_ops(self.primary, self._padded(input_shape, self.kernel_size // 2))
        ops_ += profiling.layer_ops(self.primary_bn, primary)
        if self.primary_act is not None:
            ops_ += profiling.layer_ops(self.primary_act, primary)
        ops_ += profiling.layer_ops(self.cheap, self._padded(primary, self.dw_size // 2))
        ops_ += profiling.layer_ops(self.cheap_bn, cheap)
        if self.cheap_act is not None:
            ops_ += profiling.layer_ops(self.cheap_act, cheap)
        out = self.compute_output_shape(input_shape)
        ops_.append(
            profiling.Op(
                "elementwise", elems_out=profiling._elems(out), detail="concat", module=False
            )
        )
        return ops_

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            ratio=self.ratio,
            kernel_size=self.kernel_size,
            dw_size=self.dw_size,
            strides=self.strides,
            activation=self.activation,
            bn_epsilon=self.bn_epsilon,
            bn_momentum=self.bn_momentum,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
        )
        return config
