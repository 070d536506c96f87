"""MaxPoolShortcut: the parameter-free shortcut of padding-free downsampling."""

import keras

from keras_padfree import profiling
from keras_padfree.layers import _utils


@keras.saving.register_keras_serializable(package="keras_padfree")
class MaxPoolShortcut(keras.layers.Layer):
    """Max-pool of a block's input, the shortcut that padding-free downsampling adds.

    ``S(x) = maxpool_{3x3, stride 2, no padding}(x)``, optionally followed by a 1x1 convolution (no
    bias, no BN) when the block changes the channel count (the ResNet/WRN case of the paper). Its
    output has the spatial size ``floor((H - 3) / 2) + 1``: the size of a 3x3/stride-2 conv with
    padding 0 and of a 5x5/stride-2 conv with padding 1, so it can be added to either.

    Args:
        filters: output channels of the optional 1x1 projection; None keeps the input channels and
            adds no projection.
        pool_size: pooling window (3; GhostNet's reference uses 5 with padding 1 for 5x5 convs).
        strides: pooling stride (2).
        padding: symmetric padding of the pool, PyTorch-style (padded cells never win the max).
        kernel_initializer: initializer of the projection kernel.

    Example:
    >>> x = keras.random.normal((1, 32, 32, 16))
    >>> MaxPoolShortcut()(x).shape
    (1, 15, 15, 16)
    >>> MaxPoolShortcut(filters=32)(x).shape
    (1, 15, 15, 32)
    """

    def __init__(
        self,
        filters=None,
        pool_size=3,
        strides=2,
        padding=0,
        kernel_initializer="he_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if filters is not None:
            _utils.check_positive_int(filters, "filters")
        self.filters = filters
        self.pool_size = _utils.check_positive_int(pool_size, "pool_size")
        self.strides = _utils.check_positive_int(strides, "strides")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(
                f"Argument `padding` must be an int >= 0. Received: padding={padding!r}."
            )
        if 2 * padding >= pool_size:
            raise ValueError(
                "Argument `padding` must be smaller than half the pool size. "
                f"Received: padding={padding}, pool_size={pool_size}."
            )
        self.padding = padding
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.projection = None
        if filters is not None:
            self.projection = keras.layers.Conv2D(
                filters,
                1,
                use_bias=False,
                kernel_initializer=self.kernel_initializer,
                name="projection",
            )

    def build(self, input_shape):
        if self.projection is not None:
            self.projection.build(self._pooled_shape(input_shape))
        self.built = True

    def _pooled_shape(self, input_shape):
        b, h, w, c = input_shape
        size = lambda s: _utils.conv_output_size(s, self.pool_size, self.strides, self.padding)  # noqa: E731
        return (b, size(h), size(w), c)

    def call(self, inputs):
        x = _utils.max_pool(inputs, self.pool_size, self.strides, self.padding)
        if self.projection is not None:
            x = self.projection(x)
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, c = self._pooled_shape(input_shape)
        return (b, h, w, self.filters or c)

    def profile_ops(self, input_shape):
        pooled = self._pooled_shape(input_shape)
        ops = [
            profiling.Op(
                "pool",
                elems_in=profiling._elems(input_shape),
                elems_out=profiling._elems(pooled),
                detail="max",
            )
        ]
        if self.projection is not None:
            ops += profiling.layer_ops(self.projection, pooled)
        return ops

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
