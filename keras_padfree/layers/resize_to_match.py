"""ResizeToMatch: resizes a feature map to the spatial size of another."""

from typing import Any

import keras
from keras import ops

from keras_padfree import profiling
from keras_padfree.layers import _utils

INTERPOLATIONS = ("nearest", "bilinear")


@keras.saving.register_keras_serializable(package="keras_padfree")
class ResizeToMatch(keras.layers.Layer):
    """Resizes ``x`` to the height and width of ``reference``: ``ResizeToMatch()([x, reference])``.

    The merge step of a feature pyramid network for any pair of levels. Padding-free networks
    downsample 224 -> 112 -> 55 -> 27 -> 13 -> 6, so upsampling a level by a fixed factor of 2
    (``UpSampling2D(2)``: 6 -> 12) misses the next level's 13; this layer resizes to the size it
    merges into instead. The reference's spatial size must be static.

    Args:
        interpolation: "nearest" (an FPN's usual top-down path) or "bilinear".

    Example:
    >>> coarse, fine = keras.ops.ones((1, 6, 6, 8)), keras.ops.ones((1, 13, 13, 4))
    >>> ResizeToMatch()([coarse, fine]).shape
    (1, 13, 13, 8)
    """

    def __init__(self, interpolation: str = "nearest", **kwargs: Any):
        super().__init__(**kwargs)
        self.interpolation = _utils.check_choice(interpolation, "interpolation", INTERPOLATIONS)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                f"Layer {self.name!r} (ResizeToMatch) takes [x, reference]. "
                f"Received: input_shape={input_shape!r}."
            )
        x_shape, ref_shape = (tuple(s) for s in input_shape)
        if len(x_shape) != 4 or len(ref_shape) != 4 or None in ref_shape[1:3]:
            raise ValueError(
                f"Layer {self.name!r} (ResizeToMatch) needs NHWC inputs and a reference of "
                f"static height and width. Received: x {x_shape}, reference {ref_shape}."
            )
        self.built = True

    def call(self, inputs):
        x, reference = inputs
        size = tuple(int(d) for d in reference.shape[1:3])
        if tuple(x.shape[1:3]) == size:
            return x
        return ops.image.resize(x, size, interpolation=self.interpolation)

    def compute_output_shape(self, input_shape):
        x_shape, ref_shape = input_shape
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def profile_ops(self, input_shape):
        out = self.compute_output_shape(input_shape)
        return [
            profiling.Op(
                "elementwise", elems_out=profiling._elems(out), detail="resize", module=False
            )
        ]

    def get_config(self):
        config = super().get_config()
        config.update(interpolation=self.interpolation)
        return config
