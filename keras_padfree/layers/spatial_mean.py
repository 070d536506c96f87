"""SpatialMean: global average pooling that the reference computed with a functional call."""

import keras

from keras_padfree import profiling


@keras.saving.register_keras_serializable(package="keras_padfree")
class SpatialMean(keras.layers.GlobalAveragePooling2D):
    """Global average pooling that the reference computed with a functional call.

    Numerically :class:`keras.layers.GlobalAveragePooling2D`. ShuffleNetV2 pools with
    ``x.mean([2, 3])``, and ParC-MobileNetV2's reference pools functionally too (its module tree
    has no pooling module, and the paper's totals contain no pooling term): the paper's counter
    (thop 0.0.31, which charges ``(area + 1)`` per output of an ``nn.AdaptiveAvgPool2d`` module)
    charges nothing. This layer reports itself as a functional op so that
    :mod:`keras_padfree.profiling` reproduces that.

    Example:
    >>> SpatialMean()(keras.ops.ones((1, 7, 7, 8))).shape
    (1, 8)
    """

    def profile_ops(self, input_shape):
        input_shape = tuple(input_shape)
        return [
            profiling.Op(
                "global_pool",
                elems_in=profiling._elems(input_shape),
                elems_out=int(input_shape[-1]),
                detail="avg",
                module=False,
            )
        ]
