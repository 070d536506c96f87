"""PyramidDWConv: PydMobileNet's pyramid depthwise convolution (parallel k x k depthwise
branches)."""

from typing import Any

import keras
from keras import ops

from keras_padfree import profiling
from keras_padfree.layers import _utils
from keras_padfree.layers._utils import Initializer
from keras_padfree.layers.max_pool_shortcut import MaxPoolShortcut

COMBINES = ("add", "concat")


@keras.saving.register_keras_serializable(package="keras_padfree")
class PyramidDWConv(keras.layers.Layer):
    """Parallel depthwise convolutions of several kernel sizes on one input, added or concatenated.

    The depthwise stage of PydMobileNet's ``ResPydBlock`` (thanhhvnqb/pydmobilenet_mxnet): every
    branch is a bias-free depthwise ``k x k`` conv (depth multiplier 1, stride ``strides``) on the
    *whole* input (channels are shared, not split), with MXNet's symmetric padding ``k // 2``; there
    is no BN or activation on a branch. ``combine="concat"`` concatenates the branches along
    channels
    in ``kernel_sizes`` order (``[k3, k5, k7]``: the order matters to the following 1x1 conv);
    ``combine="add"`` sums them left to right (``(k3 + k5) + k7``).

    ``padding_free=True`` is the padding-free downsampling of the keras_padfree paper applied to the
    pyramid (only valid with ``strides=2``): each branch is padded ``(k - 3) // 2`` instead of
    ``k // 2`` (3x3: 0, 5x5: 1, 7x7: 2), so every branch has the size ``floor((H - 3) / 2) + 1`` of
    a
    3x3/stride-2/unpadded max-pool of the input, and that max-pool (parameter-free) is added to
    every
    branch before they are combined. With ``"add"`` the shortcut is therefore counted once per
    branch (``dw3 + dw5 + dw7 + 3 * pool``); with ``"concat"`` each concatenated slice gets it.

    Args:
        kernel_sizes: odd kernel sizes, one branch each (default ``(3, 5, 7)``).
        strides: 1 or 2.
        combine: "add" or "concat".
        padding_free: padding-free downsampling (needs ``strides=2``), see above.
        depthwise_initializer: initializer of every depthwise kernel (default Glorot-uniform, the
            Xavier initialisation of the reference training script).

    Example:
    >>> x = keras.random.normal((1, 32, 32, 8))
    >>> PyramidDWConv(combine="concat")(x).shape
    (1, 32, 32, 24)
    >>> PyramidDWConv(strides=2, combine="add")(x).shape
    (1, 16, 16, 8)
    >>> PyramidDWConv(strides=2, combine="add", padding_free=True)(x).shape
    (1, 15, 15, 8)
    """

    def __init__(
        self,
        kernel_sizes: tuple = (3, 5, 7),
        strides: int = 1,
        combine: str = "add",
        padding_free: bool = False,
        depthwise_initializer: Initializer = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if (
            not isinstance(kernel_sizes, (list, tuple))
            or not kernel_sizes
            or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0
                for k in kernel_sizes
            )
        ):
            raise ValueError(
                "Argument `kernel_sizes` must be a non-empty list of odd positive integers. "
                f"Received: kernel_sizes={kernel_sizes!r}."
            )
        if len(set(kernel_sizes)) != len(kernel_sizes):
            raise ValueError(
                "Argument `kernel_sizes` must not repeat a size. Received: "
                f"kernel_sizes={kernel_sizes!r}."
            )
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.strides = _utils.check_choice(strides, "strides", (1, 2))
        self.combine = _utils.check_choice(combine, "combine", COMBINES)
        self.padding_free = bool(padding_free)
        if self.padding_free:
            if strides != 2:
                raise ValueError(
                    "Padding-free downsampling needs `strides=2`. "
                    f"Received: padding_free=True, strides={strides!r}."
                )
            if min(self.kernel_sizes) < 3:
                raise ValueError(
                    "Padding-free downsampling needs every kernel size >= 3. "
                    f"Received: kernel_sizes={kernel_sizes!r}."
                )
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)
        self.branches = [
            keras.layers.DepthwiseConv2D(
                k,
                strides=self.strides,
                padding="valid",
                use_bias=False,
                depthwise_initializer=_utils.fresh_initializer(self.depthwise_initializer),
                name=f"conv{k}",
            )
            for k in self.kernel_sizes
        ]
        # The padding-free max-pool shortcut (3x3/2/0, no projection: no weights).
        self.shortcut = MaxPoolShortcut(name="shortcut") if self.padding_free else None

    def _padding(self, k):
        return (k - 3) // 2 if self.padding_free else k // 2

    def _padded(self, shape, k):
        b, h, w, c = shape
        p = 2 * self._padding(k)
        return (b, None if h is None else h + p, None if w is None else w + p, c)

    def _branch_shape(self, input_shape):
        b, h, w, c = input_shape
        k = self.kernel_sizes[0]
        size = lambda s: _utils.conv_output_size(s, k, self.strides, self._padding(k))  # noqa: E731
        return (b, size(h), size(w), c)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for k, conv in zip(self.kernel_sizes, self.branches):
            conv.build(self._padded(input_shape, k))
        self.built = True

    def call(self, inputs):
        outs = [
            conv(_utils.symmetric_pad(inputs, self._padding(k)))
            for k, conv in zip(self.kernel_sizes, self.branches)
        ]
        if self.shortcut is not None:
            pooled = self.shortcut(inputs)
            outs = [o + pooled for o in outs]
        if self.combine == "concat":
            return ops.concatenate(outs, axis=-1)
        x = outs[0]
        for o in outs[1:]:
            x = x + o
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, c = self._branch_shape(tuple(input_shape))
        if self.combine == "concat":
            c = c * len(self.kernel_sizes)
        return (b, h, w, c)

    def profile_ops(self, input_shape):
        input_shape = tuple(input_shape)
        ops_ = []
        for k, conv in zip(self.kernel_sizes, self.branches):
            ops_ += profiling.layer_ops(conv, self._padded(input_shape, k))
        branch = profiling._elems(self._branch_shape(input_shape))
        if self.padding_free:
            ops_.append(
                profiling.Op(
                    "pool",
                    elems_in=profiling._elems(input_shape),
                    elems_out=branch,
                    detail="max",
                    module=False,
                )
            )
            ops_ += [
                profiling.Op("elementwise", elems_out=branch, detail="add", module=False)
                for _ in self.kernel_sizes
            ]
        out = profiling._elems(self.compute_output_shape(input_shape))
        ops_.append(profiling.Op("elementwise", elems_out=out, detail=self.combine, module=False))
        return ops_

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_sizes=list(self.kernel_sizes),
            strides=self.strides,
            combine=self.combine,
            padding_free=self.padding_free,
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
        )
        return config
