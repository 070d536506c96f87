"""PaddingFreeDWConv: a stride-2 depthwise conv without border padding, plus a max-pool shortcut."""

import keras

from keras_padfree import profiling
from keras_padfree.layers import _utils
from keras_padfree.layers.max_pool_shortcut import MaxPoolShortcut

SHORTCUT_POSITIONS = ("after_activation", "after_bn", "before_bn")


@keras.saving.register_keras_serializable(package="keras_padfree")
class PaddingFreeDWConv(keras.layers.Layer):
    """Padding-free downsampling: depthwise k x k / stride 2 conv + BN + act + max-pool shortcut.

    A "same"-padded stride-2 conv spends work on zero borders. This layer drops that padding
    (k=3: padding 0; k=5: padding 1, applied symmetrically as in PyTorch) and adds the block input's
    3x3/stride-2/unpadded max-pool (:class:`MaxPoolShortcut`), so both paths have the spatial size
    ``floor((H - 3) / 2) + 1``: 32 -> 15 -> 7 -> 3, 112 -> 55 -> 27 -> 13 -> 6.

    Where the shortcut joins differs between the paper's families, and changes the numbers:
    ``"after_activation"`` (MobileNetV3, ParC-MobileNetV2, BSConv models:
    ``act(BN(dw(x))) + S(x)``),
    ``"after_bn"`` (GhostNet, whose depthwise path has no activation: ``BN(dw(x)) + S(x)``), and
    ``"before_bn"`` (ShuffleNetV2: ``BN(dw(x) + S(x))``).

    Args:
        kernel_size: odd depthwise kernel size >= 3; the padding is ``(kernel_size - 3) // 2``.
        activation: activation after BN (e.g. "relu", "relu6", "hard_silu"), or None.
        use_bn: whether a BatchNormalization follows the depthwise conv.
        shortcut_position: one of "after_activation", "after_bn", "before_bn".
        shortcut_pool_size: max-pool window of the shortcut (3; GhostNet's reference uses 5 for 5x5
            convs, with ``shortcut_padding=1``).
        shortcut_padding: symmetric padding of the shortcut pool.
        bn_epsilon: BN epsilon (PyTorch default 1e-5).
        bn_momentum: BN momentum in Keras' convention (0.9 = PyTorch's 0.1).
        depthwise_initializer: initializer of the depthwise kernel; default is PyTorch's
            kaiming-uniform with the true depthwise fan-in ``k * k``.

    Example:
    >>> x = keras.random.normal((1, 32, 32, 24))
    >>> PaddingFreeDWConv(kernel_size=5, activation="relu")(x).shape
    (1, 15, 15, 24)
    """

    def __init__(
        self,
        kernel_size=3,
        activation="relu",
        use_bn=True,
        shortcut_position="after_activation",
        shortcut_pool_size=3,
        shortcut_padding=0,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        depthwise_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 3
            or kernel_size % 2 == 0
        ):
            raise ValueError(
                "Argument `kernel_size` must be an odd integer >= 3. "
                f"Received: kernel_size={kernel_size!r}."
            )
        self.kernel_size = kernel_size
        self.activation = _utils.canonical_activation(activation)
        self.use_bn = bool(use_bn)
        self.shortcut_position = _utils.check_choice(
            shortcut_position, "shortcut_position", SHORTCUT_POSITIONS
        )
        self.shortcut_pool_size = shortcut_pool_size
        self.shortcut_padding = shortcut_padding
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        if depthwise_initializer is None:
            depthwise_initializer = _utils.uniform_limit_initializer(kernel_size * kernel_size)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)

        self.padding = (kernel_size - 3) // 2
        self.pad = keras.layers.ZeroPadding2D(self.padding, name="pad") if self.padding else None
        self.depthwise = keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=2,
            padding="valid",
            use_bias=False,
            depthwise_initializer=self.depthwise_initializer,
            name="depthwise",
        )
        self.bn = _utils.batch_norm(bn_epsilon, bn_momentum, name="bn") if self.use_bn else None
        self.act = _utils.activation_layer(self.activation, layer_name="act")
        self.shortcut = MaxPoolShortcut(
            pool_size=shortcut_pool_size, strides=2, padding=shortcut_padding, name="shortcut"
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.pad is not None:
            self.pad.build(shape)
            shape = self.pad.compute_output_shape(shape)
        self.depthwise.build(shape)
        out = self.depthwise.compute_output_shape(shape)
        if self.bn is not None:
            self.bn.build(out)
        if self.act is not None:
            self.act.build(out)
        self.shortcut.build(input_shape)
        sc = self.shortcut.compute_output_shape(input_shape)
        if tuple(sc[1:3]) != tuple(out[1:3]):
            raise ValueError(
                f"Layer {self.name!r}: the shortcut pool ({self.shortcut_pool_size}x"
                f"{self.shortcut_pool_size}, padding {self.shortcut_padding}) gives spatial size "
                f"{sc[1:3]} but the {self.kernel_size}x{self.kernel_size} conv gives {out[1:3]} "
                f"for input {tuple(input_shape)}."
            )
        self.built = True

    def call(self, inputs, training=None):
        x = self.pad(inputs) if self.pad is not None else inputs
        x = self.depthwise(x)
        shortcut = self.shortcut(inputs)
        if self.shortcut_position == "before_bn" or self.bn is None:
            x = x + shortcut
        if self.bn is not None:
            x = self.bn(x, training=training)
            if self.shortcut_position == "after_bn":
                x = x + shortcut
        if self.act is not None:
            x = self.act(x)
        if self.shortcut_position == "after_activation" and self.bn is not None:
            x = x + shortcut
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        size = lambda s: _utils.conv_output_size(s, 3, 2, 0)  # noqa: E731
        return (b, size(h), size(w), c)

    def profile_ops(self, input_shape):
        shape = tuple(input_shape)
        if self.pad is not None:
            shape = self.pad.compute_output_shape(shape)
        ops = profiling.layer_ops(self.depthwise, shape)
        out = self.compute_output_shape(input_shape)
        if self.bn is not None:
            ops += profiling.layer_ops(self.bn, out)
        if self.act is not None:
            ops += profiling.layer_ops(self.act, out)
        ops += profiling.layer_ops(self.shortcut, input_shape)
        ops.append(
            profiling.Op("elementwise", elems_out=profiling._elems(out), detail="add", module=False)
        )
        return ops

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size,
            activation=self.activation,
            use_bn=self.use_bn,
            shortcut_position=self.shortcut_position,
            shortcut_pool_size=self.shortcut_pool_size,
            shortcut_padding=self.shortcut_padding,
            bn_epsilon=self.bn_epsilon,
            bn_momentum=self.bn_momentum,
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
        )
        return config
