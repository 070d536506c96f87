"""ParCConv: ParC-Net's position-aware circular convolution (ParC-MobileNetV2's global conv)."""

import math
from typing import Any

import keras
from keras import ops

from keras_padfree import profiling
from keras_padfree.layers._utils import Initializer

DIRECTIONS = ("vertical", "horizontal")
_DIRECTION_ALIASES = {
    "h": "vertical",
    "vertical": "vertical",
    "w": "horizontal",
    "horizontal": "horizontal",
}


def _canonical_direction(direction):
    key = direction.lower() if isinstance(direction, str) else direction
    if key not in _DIRECTION_ALIASES:
        raise ValueError(
            'Argument `direction` must be "vertical" (alias "H": a K x 1 kernel sliding along '
            'the height) or "horizontal" (alias "W": a 1 x K kernel sliding along the width). '
            f"Received: direction={direction!r}."
        )
    return _DIRECTION_ALIASES[key]


@keras.saving.register_keras_serializable(package="keras_padfree")
class ParCConv(keras.layers.Layer):
    """Position-aware circular convolution: a global depthwise conv with circular padding.

    For ``direction="vertical"`` (ParC-Net's "H" type) on an NHWC input of height ``H``::

        y[b, i, j, c] = bias[c] + sum_{t=0..K-1} w[t, c] * z[b, (i + t) mod H, j, c]
        z = x + pe      (pe: (K, 1, C), broadcast along the width; only when ``use_pe``)

    i.e. a depthwise ``K x 1`` convolution, stride 1, without zero padding, applied to the input
    concatenated with its own first ``K - 1`` rows (a circular cross-correlation that starts at
    offset 0, as in the reference, not a centred one). ``direction="horizontal"`` ("W" type) is the
    same along the width with a ``1 x K`` kernel and a ``(1, K, C)`` embedding broadcast along the
    height.

    **Global kernel size.** The reference fixes ``K`` in the constructor to the feature-map size the
    stage was designed for (CIFAR: 8/8/4 for the original network, 7/7/3 padding-free; 224x224:
    14/14/7 and 13/13/6), and fails at any other input resolution. Here ``K`` is the size of the
    input along the conv axis *at build time* (height for "vertical", width for "horizontal"), which
    gives exactly the reference's K at the paper's input sizes and keeps the kernel global at any
    other input size (e.g. a 64x64 input to the CIFAR network gives K = 16/16/8). The layer must
    therefore see a static spatial size; a model built for one input size keeps its K (and its
    positional embedding) and rejects inputs of another size with a ValueError.

    The positional embedding is a bare ``nn.Parameter`` in the reference, which the paper's
    parameter counter (thop 0.0.31, leaf modules only) does not see: it is listed in
    :attr:`functional_weights`, and its addition is a functional operation (zero FLOPs). The conv
    itself costs ``H * W * C * (K + 1)`` under that counter (MACs plus the bias).

    Args:
        direction: "vertical" ("H") or "horizontal" ("W").
        use_pe: whether a learned positional embedding is added before the conv (the reference
            puts it on the first ParC block of each stage).
        kernel_initializer: initializer of the ``(K, 1, C, 1)`` / ``(1, K, C, 1)`` depthwise kernel.
            Default: PyTorch's kaiming-normal with ``mode="fan_out"`` as ParC-MobileNetV2
            initialises every conv (std ``sqrt(2 / (C * K))``; PyTorch's fan-out of a depthwise
            weight counts all C output channels).
        bias_initializer: initializer of the bias (zeros, as the reference).
        pe_initializer: initializer of the positional embedding. Default: a normal distribution
            with std 0.02 truncated at two standard deviations (the reference uses timm's
            ``trunc_normal_(std=.02)``, whose absolute +-2 bounds never truncate at that std; the
            difference is immaterial).

    Example:
    >>> x = keras.random.normal((2, 8, 8, 192))
    >>> ParCConv("vertical", use_pe=True)(x).shape
    (2, 8, 8, 192)
    """

    def __init__(
        self,
        direction: str = "vertical",
        use_pe: bool = False,
        kernel_initializer: Initializer | None = None,
        bias_initializer: Initializer = "zeros",
        pe_initializer: Initializer | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.direction = _canonical_direction(direction)
        self.use_pe = bool(use_pe)
        self.kernel_initializer = (
            None if kernel_initializer is None else keras.initializers.get(kernel_initializer)
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        if pe_initializer is None:
            pe_initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.pe_initializer = keras.initializers.get(pe_initializer)
        self.kernel_size = None
        self.pe = None

    @property
    def _axis(self):
        return 1 if self.direction == "vertical" else 2

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"Layer {self.name!r} (ParCConv) takes NHWC inputs of rank 4. "
                f"Received: input_shape={tuple(input_shape)}."
            )
        size = input_shape[self._axis]
        channels = input_shape[-1]
        if size is None or channels is None:
            axis_name = "height" if self.direction == "vertical" else "width"
            raise ValueError(
                f"Layer {self.name!r} (ParCConv) sizes its global kernel from the input's "
                f"{axis_name}, so that {axis_name} and the channels must be static. Build the "
                f"model with a full input shape, e.g. input_shape=(224, 224, 3). "
                f"Received: input_shape={tuple(input_shape)}."
            )
        k = int(size)
        c = int(channels)
        self.kernel_size = k
        kshape = (k, 1, c, 1) if self.direction == "vertical" else (1, k, c, 1)
        init = self.kernel_initializer
        if init is None:
            init = keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / (c * k)))
        self.kernel = self.add_weight(shape=kshape, initializer=init, name="kernel")
        self.bias = self.add_weight(shape=(c,), initializer=self.bias_initializer, name="bias")
        if self.use_pe:
            pshape = (k, 1, c) if self.direction == "vertical" else (1, k, c)
            self.pe = self.add_weight(shape=pshape, initializer=self.pe_initializer, name="pe")
        self.built = True

    @property
    def functional_weights(self):
        """The positional embedding (a bare parameter in the reference; thop does not count it)."""
        return [self.pe] if self.pe is not None else []

    def _check_size(self, size):
        if size is not None and self.kernel_size is not None and int(size) != self.kernel_size:
            axis_name = "height" if self.direction == "vertical" else "width"
            raise ValueError(
                f"Layer {self.name!r} (ParCConv) was built for a {axis_name} of "
                f"{self.kernel_size} (its global kernel size), but received an input of "
                f"{axis_name} {size}. Rebuild the model for the new input size."
            )

    def call(self, inputs):
        self._check_size(inputs.shape[self._axis])
        x = inputs
        if self.pe is not None:
            x = x + ops.cast(self.pe, x.dtype)
        k = self.kernel_size
        if k > 1:
            if self.direction == "vertical":
                head = x[:, : k - 1]
            else:
                head = x[:, :, : k - 1]
            x = ops.concatenate([x, head], axis=self._axis)
        y = ops.depthwise_conv(x, ops.cast(self.kernel, x.dtype), strides=1, padding="valid")
        return y + ops.cast(self.bias, y.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def profile_ops(self, input_shape):
        shape = tuple(input_shape)
        k = int(shape[self._axis])
        elems = profiling._elems(shape)
        ops_ = []
        if self.use_pe:
            ops_.append(profiling.Op("elementwise", elems_out=elems, detail="add", module=False))
        if k > 1:
            padded = list(shape)
            padded[self._axis] = 2 * k - 1
            ops_.append(
                profiling.Op(
                    "elementwise", elems_out=profiling._elems(padded), detail="concat", module=False
                )
            )
        ops_.append(profiling.Op("conv", macs=elems * k, bias=elems))
        return ops_

    def get_config(self):
        config = super().get_config()
        config.update(
            direction=self.direction,
            use_pe=self.use_pe,
            kernel_initializer=(
                None
                if self.kernel_initializer is None
                else keras.initializers.serialize(self.kernel_initializer)
            ),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            pe_initializer=keras.initializers.serialize(self.pe_initializer),
        )
        return config
