"""ChannelShuffle and ChannelSplit: ShuffleNet's parameter-free channel operations (NHWC)."""

from typing import Any

import keras
from keras import ops

from keras_padfree.layers import _utils


def _check_divisible(channels, groups, layer_name, what):
    if channels is not None and int(channels) % groups:
        raise ValueError(
            f"Layer {layer_name!r} ({what}) needs the channels to be divisible by "
            f"groups={groups}. Received: {channels} channels."
        )


@keras.saving.register_keras_serializable(package="keras_padfree")
class ChannelShuffle(keras.layers.Layer):
    """Channel shuffle of ShuffleNet: interleaves ``groups`` equal channel groups.

    The NHWC form of PyTorch's ``view(B, g, C/g, H, W).transpose(1, 2)``: reshape to
    ``(B, H, W, g, C/g)``, swap the last two axes and flatten back, so output channel
    ``k * g + i`` is input channel ``i * C/g + k``. With 2 groups and input ``[a..., b...]`` (a =
    the first half) the output is ``[a0, b0, a1, b1, ...]``. No parameters and no FLOPs (a
    functional reshape in the reference).

    Args:
        groups: number of channel groups (2 in ShuffleNetV2).

    Example:
    >>> x = keras.ops.reshape(keras.ops.arange(4.0), (1, 1, 1, 4))
    >>> keras.ops.convert_to_numpy(ChannelShuffle(2)(x)).ravel().tolist()
    [0.0, 2.0, 1.0, 3.0]
    """

    def __init__(self, groups: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        self.groups = _utils.check_positive_int(groups, "groups")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"Layer {self.name!r} (ChannelShuffle) takes NHWC inputs of rank 4. "
                f"Received: input_shape={tuple(input_shape)}."
            )
        _check_divisible(input_shape[-1], self.groups, self.name, "ChannelShuffle")
        self.built = True

    def call(self, inputs):
        if self.groups == 1:
            return inputs
        shape = ops.shape(inputs)
        h, w, c = shape[1], shape[2], inputs.shape[-1]
        x = ops.reshape(inputs, (-1, h, w, self.groups, c // self.groups))
        x = ops.transpose(x, (0, 1, 2, 4, 3))
        return ops.reshape(x, (-1, h, w, c))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def profile_ops(self, input_shape):
        return []

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups)
        return config


@keras.saving.register_keras_serializable(package="keras_padfree")
class ChannelSplit(keras.layers.Layer):
    """Splits the channels into ``groups`` equal consecutive parts (ShuffleNetV2's ``chunk``).

    Returns a list: with 2 groups, ``[x[..., :C/2], x[..., C/2:]]`` (in ShuffleNetV2 the first
    half passes through, the second goes through the branch; in ParC-MobileNetV2 the first half
    goes to the vertical ParC conv and the second to the horizontal one). No parameters and no
    FLOPs (a functional ``chunk`` in the reference).

    Args:
        groups: number of parts (2).

    Example:
    >>> a, b = ChannelSplit(2)(keras.random.normal((1, 4, 4, 6)))
    >>> a.shape, b.shape
    ((1, 4, 4, 3), (1, 4, 4, 3))
    """

    def __init__(self, groups: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        self.groups = _utils.check_positive_int(groups, "groups")

    def build(self, input_shape):
        _check_divisible(input_shape[-1], self.groups, self.name, "ChannelSplit")
        self.built = True

    def call(self, inputs):
        return ops.split(inputs, self.groups, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        part = None if channels is None else int(channels) // self.groups
        return [tuple(input_shape[:-1]) + (part,) for _ in range(self.groups)]

    def profile_ops(self, input_shape):
        return []

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups)
        return config
