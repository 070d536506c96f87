"""Blueprint separable convolutions (BSConv-U and BSConv-S), Haase & Amthor, CVPR 2020."""

import math
from typing import Any

import keras

from keras_padfree import profiling
from keras_padfree.layers import _utils
from keras_padfree.layers._utils import Initializer
from keras_padfree.layers.orthonormal_regularizer import OrthonormalRegularizer


def _check_padding(padding):
    if padding in ("same", "valid"):
        return padding
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(
            'Argument `padding` must be "same", "valid" or an int >= 0 (symmetric, PyTorch-style). '
            f"Received: padding={padding!r}."
        )
    return padding


class _BSConvBase(keras.layers.Layer):
    """Shared depthwise tail: ``[pad] -> depthwise k x k (stride, dilation)``."""

    def _init_common(
        self,
        filters,
        kernel_size,
        strides,
        padding,
        dilation_rate,
        use_bias,
        with_bn,
        bn_epsilon,
        bn_momentum,
        depthwise_initializer,
    ):
        self.filters = _utils.check_positive_int(filters, "filters")
        self.kernel_size = _utils.check_positive_int(kernel_size, "kernel_size")
        self.strides = _utils.check_positive_int(strides, "strides")
        self.padding = _check_padding(padding)
        self.dilation_rate = _utils.check_positive_int(dilation_rate, "dilation_rate")
        if self.padding == "same" and self.strides != 1:
            raise ValueError(
                'Argument `padding="same"` is ambiguous for strides > 1 (Keras and PyTorch pad '
                "differently); pass the symmetric padding as an int. "
                f"Received: padding='same', strides={strides}."
            )
        self.use_bias = bool(use_bias)
        self.with_bn = bool(with_bn)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        if depthwise_initializer is None:
            # PyTorch's default Conv2d init (kaiming-uniform, a=sqrt(5)): U(+-1/sqrt(fan_in)).
            depthwise_initializer = _utils.uniform_limit_initializer(kernel_size * kernel_size, 1.0)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)
        pad = self.padding if isinstance(self.padding, int) else 0
        self.pad = keras.layers.ZeroPadding2D(pad, name="pad") if pad else None
        self.depthwise = keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            padding="same" if self.padding == "same" else "valid",
            use_bias=use_bias,
            depthwise_initializer=self.depthwise_initializer,
            name="depthwise",
        )

    def _pointwise(self, filters, name, initializer, regularizer=None):
        return keras.layers.Conv2D(
            filters,
            1,
            use_bias=False,
            kernel_initializer=initializer,
            kernel_regularizer=regularizer,
            name=name,
        )

    def _bn(self, name):
        return (
            _utils.batch_norm(self.bn_epsilon, self.bn_momentum, name=name)
            if self.with_bn
            else None
        )

    def _pointwise_stack(self):
        raise NotImplementedError  # pragma: no cover - abstract

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._pointwise_stack():
            if layer is None:
                continue
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        if self.pad is not None:
            self.pad.build(shape)
            shape = self.pad.compute_output_shape(shape)
        self.depthwise.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layer in self._pointwise_stack():
            if layer is None:
                continue
            if isinstance(layer, keras.layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        if self.pad is not None:
            x = self.pad(x)
        return self.depthwise(x)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._pointwise_stack():
            if layer is not None:
                shape = layer.compute_output_shape(shape)
        if self.pad is not None:
            shape = self.pad.compute_output_shape(shape)
        return self.depthwise.compute_output_shape(shape)

    def profile_ops(self, input_shape):
        shape = tuple(input_shape)
        ops = []
        for layer in self._pointwise_stack():
            if layer is None:
                continue
            ops += profiling.layer_ops(layer, shape)
            shape = layer.compute_output_shape(shape)
        if self.pad is not None:
            shape = self.pad.compute_output_shape(shape)
        return ops + profiling.layer_ops(self.depthwise, shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            use_bias=self.use_bias,
            with_bn=self.with_bn,
            bn_epsilon=self.bn_epsilon,
            bn_momentum=self.bn_momentum,
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_padfree")
class BSConvU(_BSConvBase):
    """Unconstrained blueprint separable conv: pointwise 1x1 (C_in -> filters), then depthwise k x k
    (BSConv-U).

    The drop-in replacement of a full k x k convolution used by the paper's ResNet-110 and WRN-40-8
    BSConv-U models. The stride (and padding) is applied by the depthwise part, so a stride-2
    BSConv-U runs its pointwise conv at input resolution, as in the BSConv library.

    Args:
        filters: output channels.
        kernel_size: depthwise kernel size.
        strides: depthwise stride.
        padding: "same" (stride 1 only), "valid", or an int of symmetric zero padding.
        dilation_rate: depthwise dilation.
        use_bias: bias on the depthwise conv (the pointwise conv never has one).
        with_bn: BatchNormalization between the pointwise and the depthwise conv (off in the paper).
        bn_epsilon, bn_momentum: BN settings when ``with_bn``.
        pointwise_initializer, depthwise_initializer: default PyTorch's default Conv2d init,
            U(+-1/sqrt(fan_in)), which the paper's models keep (the replacement runs after init).

    Example:
    >>> BSConvU(32, 3, strides=2, padding=0)(keras.random.normal((1, 32, 32, 16))).shape
    (1, 15, 15, 32)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        padding: str | int = "same",
        dilation_rate: int = 1,
        use_bias: bool = False,
        with_bn: bool = False,
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        pointwise_initializer: Initializer | None = None,
        depthwise_initializer: Initializer | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._init_common(
            filters,
            kernel_size,
            strides,
            padding,
            dilation_rate,
            use_bias,
            with_bn,
            bn_epsilon,
            bn_momentum,
            depthwise_initializer,
        )
        self.pointwise_initializer = keras.initializers.get(pointwise_initializer or "he_uniform")
        self._pw_init_default = pointwise_initializer is None
        self.pointwise = self._pointwise(filters, "pointwise", self._pw_initializer())
        self.bn = self._bn("bn")

    def _pw_initializer(self):
        if not self._pw_init_default:
            return self.pointwise_initializer
        return _FanInUniform()

    def _pointwise_stack(self):
        return (self.pointwise, self.bn)

    def get_config(self):
        config = super().get_config()
        config["pointwise_initializer"] = (
            None
            if self._pw_init_default
            else keras.initializers.serialize(self.pointwise_initializer)
        )
        return config


@keras.saving.register_keras_serializable(package="keras_padfree")
class BSConvS(_BSConvBase):
    """Subspace blueprint separable conv: pw C_in -> M, pw M -> filters, then depthwise k x k.

    ``M = min(C_in, max(min_mid_channels, ceil(p * C_in)))``. The first pointwise weight
    ``W [M x C_in]`` carries :class:`OrthonormalRegularizer` (``alpha * ||W W^T - I||_F``), which
    Keras adds to the model's losses.

    Args:
        filters: output channels.
        kernel_size, strides, padding, dilation_rate, use_bias: of the depthwise conv (as BSConvU).
        p: fraction of input channels kept in the subspace (1/6 in the paper: MobileNetV2's
            expansion factor 6).
        min_mid_channels: lower bound of ``M``.
        alpha: weight of the orthonormal regulariser (0.1; 0 disables it).
        with_bn: BN after each pointwise conv.

    Example:
    >>> layer = BSConvS(64, 3, p=1 / 6)
    >>> layer(keras.random.normal((1, 8, 8, 48))).shape
    (1, 8, 8, 64)
    >>> layer.mid_channels
    8
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        padding: str | int = "same",
        dilation_rate: int = 1,
        use_bias: bool = False,
        p: float = 1 / 6,
        min_mid_channels: int = 4,
        alpha: float = 0.1,
        with_bn: bool = False,
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        depthwise_initializer: Initializer | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._init_common(
            filters,
            kernel_size,
            strides,
            padding,
            dilation_rate,
            use_bias,
            with_bn,
            bn_epsilon,
            bn_momentum,
            depthwise_initializer,
        )
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
            raise ValueError(f"Argument `p` must be a number in (0, 1]. Received: p={p!r}.")
        self.p = float(p)
        self.min_mid_channels = _utils.check_positive_int(min_mid_channels, "min_mid_channels")
        self.alpha = float(alpha)
        self.mid_channels = None
        self.pw1 = self.bn1 = self.pw2 = self.bn2 = None

    def _pointwise_stack(self):
        return (self.pw1, self.bn1, self.pw2, self.bn2)

    def _make_pointwise(self, in_channels):
        if self.pw1 is not None:
            return
        self.mid_channels = min(
            in_channels, max(self.min_mid_channels, math.ceil(self.p * in_channels))
        )
        regularizer = OrthonormalRegularizer(self.alpha) if self.alpha > 0 else None
        self.pw1 = self._pointwise(self.mid_channels, "pw1", _FanInUniform(), regularizer)
        self.bn1 = self._bn("bn1")
        self.pw2 = self._pointwise(self.filters, "pw2", _FanInUniform())
        self.bn2 = self._bn("bn2")

    def build(self, input_shape):
        self._make_pointwise(int(input_shape[-1]))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        self._make_pointwise(int(input_shape[-1]))
        return super().compute_output_shape(input_shape)

    def profile_ops(self, input_shape):
        self._make_pointwise(int(input_shape[-1]))
        return super().profile_ops(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(p=self.p, min_mid_channels=self.min_mid_channels, alpha=self.alpha)
        return config


@keras.saving.register_keras_serializable(package="keras_padfree")
class _FanInUniform(keras.initializers.Initializer):
    """U(+-1/sqrt(fan_in)) with PyTorch's fan-in: PyTorch's default Conv2d init."""

    def __call__(self, shape, dtype=None):
        fan_in = math.prod(shape[:-1])
        limit = 1.0 / math.sqrt(fan_in)
        return keras.random.uniform(shape, -limit, limit, dtype=dtype)

    def get_config(self):
        return {}
