"""HybridStem: the paper's replacement of a network's first convolution."""

import keras
from keras import ops

from keras_padfree import profiling
from keras_padfree.layers import _utils

ORDERINGS = ("post", "pre")
FIRST_CONVS = ("standard", "bsconv_u")


@keras.saving.register_keras_serializable(package="keras_padfree")
class HybridStem(keras.layers.Layer):
    """Hybrid stem: 3x3 conv, a depthwise branch and a max-pool branch, concatenated, fused 1x1.

    ``A = act(BN(conv3x3(x)))``; ``B1 = act(BN(dwconv3x3(A)))``; ``B2 = maxpool3x3(A)``;
    ``out = act(BN(conv1x1(concat([B1, B2]))))`` (depthwise branch first), plus ``A`` when
    ``residual=True`` (the paper's ResNet/WRN stem). All paddings are PyTorch's symmetric ones.

    ``ordering="pre"`` is the pre-activation (WRN) form: ``A`` is a bare conv, the depthwise branch
    is ``dw(ReLU(BN(A)))`` and the fusion is ``conv1x1(ReLU(BN(concat)))``. Parameter and FLOP
    counts are the same in both orderings.

    Args:
        filters: stem width (16 for MobileNetV3, GhostNet, ResNets; 32 ParC; 24 ShuffleNetV2).
        strides: stride of the first 3x3 conv (1 for 32x32 CIFAR inputs, 2 at 224).
        branch_strides: stride of the depthwise conv and of the max-pool (2 in the 224x224
            ShuffleNetV2 stem, which replaces both its first conv and its max-pool).
        activation: activation name ("hard_silu", "relu", "relu6", ...).
        residual: add ``A`` to the output (ResNet/WRN stems; needs ``branch_strides == 1``).
        ordering: "post" (conv -> BN -> act) or "pre" (WRN pre-activation).
        first_conv: "standard", or "bsconv_u" (BSConv-U: pointwise 3->filters then depthwise 3x3,
            as the paper's BSConv-U models replace every full 3x3 conv).
        bn_epsilon, bn_momentum: BatchNormalization settings (Keras momentum; default PyTorch's).
        kernel_initializer: initializer of the full convolutions.
        depthwise_initializer: initializer of the depthwise kernel (default kaiming-uniform with
            fan-in 9, PyTorch's).

    Example:
    >>> x = keras.random.normal((1, 32, 32, 3))
    >>> HybridStem(16)(x).shape
    (1, 32, 32, 16)
    >>> HybridStem(16, strides=2, activation="relu")(keras.random.normal((1, 224, 224, 3))).shape
    (1, 112, 112, 16)
    """

    def __init__(
        self,
        filters,
        strides=1,
        branch_strides=1,
        activation="hard_silu",
        residual=False,
        ordering="post",
        first_conv="standard",
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        kernel_initializer="he_uniform",
        depthwise_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _utils.check_positive_int(filters, "filters")
        self.strides = _utils.check_choice(strides, "strides", (1, 2))
        self.branch_strides = _utils.check_choice(branch_strides, "branch_strides", (1, 2))
        self.activation = _utils.canonical_activation(activation)
        self.residual = bool(residual)
        if self.residual and branch_strides != 1:
            raise ValueError(
                "A residual HybridStem needs `branch_strides=1` (the residual adds the first "
                f"conv's output). Received: residual=True, branch_strides={branch_strides}."
            )
        self.ordering = _utils.check_choice(ordering, "ordering", ORDERINGS)
        self.first_conv = _utils.check_choice(first_conv, "first_conv", FIRST_CONVS)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if depthwise_initializer is None:
            depthwise_initializer = _utils.uniform_limit_initializer(9)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)

        bn = lambda name: _utils.batch_norm(bn_epsilon, bn_momentum, name=name)  # noqa: E731
        act = lambda name: _utils.activation_layer(self.activation, layer_name=name)  # noqa: E731
        pre = self.ordering == "pre"

        # stem_1: the first 3x3 conv (padding 1, symmetric). At stride 1 Keras' "same" padding is
        # that same symmetric padding and leaves no separate PAD op in exported graphs; at stride 2
        # the input is padded explicitly (Keras' "same" would pad bottom/right only).
        self._conv1_pad = 1 if strides == 2 else 0
        self._dw_pad = 1 if branch_strides == 2 else 0
        if self.first_conv == "standard":
            self.conv1 = keras.layers.Conv2D(
                filters,
                3,
                strides=strides,
                padding="valid" if strides == 2 else "same",
                use_bias=False,
                kernel_initializer=_utils.fresh_initializer(self.kernel_initializer),
                name="conv1",
            )
        else:
            from keras_padfree.layers.bsconv import BSConvU

            self.conv1 = BSConvU(
                filters, 3, strides=strides, padding=1 if strides == 2 else "same", name="conv1"
            )
        self.bn1 = None if pre else bn("bn1")
        self.act1 = None if pre else act("act1")
        # stem_1_1: depthwise 3x3 branch.
        self.dw_bn_pre = bn("dw_bn") if pre else None
        self.dw_act_pre = act("dw_act") if pre else None
        self.depthwise = keras.layers.DepthwiseConv2D(
            3,
            strides=branch_strides,
            padding="valid" if branch_strides == 2 else "same",
            use_bias=False,
            depthwise_initializer=self.depthwise_initializer,
            name="depthwise",
        )
        self.dw_bn = None if pre else bn("dw_bn")
        self.dw_act = None if pre else act("dw_act")
        # stem_3: fuse.
        self.fuse_bn_pre = bn("fuse_bn") if pre else None
        self.fuse_act_pre = act("fuse_act") if pre else None
        self.fuse = keras.layers.Conv2D(
            filters,
            1,
            use_bias=False,
            kernel_initializer=_utils.fresh_initializer(self.kernel_initializer),
            name="fuse",
        )
        self.fuse_bn = None if pre else bn("fuse_bn")
        self.fuse_act = None if pre else act("fuse_act")

    # -- shapes ----------------------------------------------------------------------------------
    def _shapes(self, input_shape):
        b, h, w, _ = input_shape
        f = self.filters
        s1 = lambda s: _utils.conv_output_size(s, 3, self.strides, 1)  # noqa: E731
        s2 = lambda s: _utils.conv_output_size(s, 3, self.branch_strides, 1)  # noqa: E731
        a = (b, s1(h), s1(w), f)
        branch = (b, s2(a[1]), s2(a[2]), f)
        cat = branch[:3] + (2 * f,)
        return a, branch, cat

    def _padded(self, shape, pad):
        b, h, w, c = shape
        grow = lambda s: None if s is None else s + 2 * pad  # noqa: E731
        return (b, grow(h), grow(w), c)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        a, branch, cat = self._shapes(input_shape)
        first_in = (
            self._padded(input_shape, self._conv1_pad)
            if self.first_conv == "standard"
            else input_shape
        )
        self.conv1.build(first_in)
        for layer in (self.bn1, self.act1, self.dw_bn_pre, self.dw_act_pre):
            if layer is not None:
                layer.build(a)
        self.depthwise.build(self._padded(a, self._dw_pad))
        for layer in (self.dw_bn, self.dw_act, self.fuse_bn_pre, self.fuse_act_pre):
            if layer is not None:
                layer.build(branch if layer in (self.dw_bn, self.dw_act) else cat)
        self.fuse.build(cat)
        for layer in (self.fuse_bn, self.fuse_act):
            if layer is not None:
                layer.build(branch)
        self.built = True

    def call(self, inputs, training=None):
        if self.first_conv == "standard":
            a = self.conv1(_utils.symmetric_pad(inputs, self._conv1_pad))
        else:
            a = self.conv1(inputs)
        if self.bn1 is not None:
            a = self.act1(self.bn1(a, training=training))
        b1 = a
        if self.dw_bn_pre is not None:
            b1 = self.dw_act_pre(self.dw_bn_pre(b1, training=training))
        b1 = self.depthwise(_utils.symmetric_pad(b1, self._dw_pad))
        if self.dw_bn is not None:
            b1 = self.dw_act(self.dw_bn(b1, training=training))
        b2 = _utils.max_pool(a, 3, self.branch_strides, 1)
        if self.ordering == "post" and not training and _utils.in_litert_forms():
            x = self._fuse_without_concat(b1, b2)
        else:
            x = ops.concatenate([b1, b2], axis=-1)
            if self.fuse_bn_pre is not None:
                x = self.fuse_act_pre(self.fuse_bn_pre(x, training=training))
            x = self.fuse(x)
            if self.fuse_bn is not None:
                x = self.fuse_act(self.fuse_bn(x, training=training))
        if self.residual:
            x = x + a
        return x

    def _fuse_without_concat(self, b1, b2):
        """``act(BN(conv1x1(concat([b1, b2]))))`` in inference as ``act(b1 * W1 + b2 * W2 + c)``.

        The export form (:func:`keras_padfree.layers._utils.litert_forms`): BN folded into the
        1x1 kernel ``W = [W1; W2]`` (rows of the depthwise branch, then of the pool branch), two
        1x1 convolutions and an add. LiteRT's XNNPACK then never writes the concatenated
        full-resolution tensor: whole PF models at 224x224 run in 0.989-0.997 of the time of the
        concatenating form (benchmarks/results/latency.md; within the noise at 32x32, where the
        stem is 2-5 % of the time), the same function up to float rounding.
        """
        bn = self.fuse_bn
        scale = ops.rsqrt(bn.moving_variance + bn.epsilon) * bn.gamma
        kernel = self.fuse.kernel * scale
        bias = bn.beta - bn.moving_mean * scale
        f = self.filters
        x = ops.conv(b1, kernel[:, :, :f, :], padding="valid") + bias
        x = x + ops.conv(b2, kernel[:, :, f:, :], padding="valid")
        return self.fuse_act(x)

    def compute_output_shape(self, input_shape):
        return self._shapes(tuple(input_shape))[1]

    def profile_ops(self, input_shape):
        input_shape = tuple(input_shape)
        a, branch, cat = self._shapes(input_shape)
        first_in = (
            self._padded(input_shape, self._conv1_pad)
            if self.first_conv == "standard"
            else input_shape
        )
        ops_ = profiling.layer_ops(self.conv1, first_in)
        for layer in (self.bn1, self.act1, self.dw_bn_pre, self.dw_act_pre):
            if layer is not None:
                ops_ += profiling.layer_ops(layer, a)
        ops_ += profiling.layer_ops(self.depthwise, self._padded(a, self._dw_pad))
        for layer in (self.dw_bn, self.dw_act):
            if layer is not None:
                ops_ += profiling.layer_ops(layer, branch)
        ops_.append(
            profiling.Op(
                "pool",
                elems_in=profiling._elems(a),
                elems_out=profiling._elems(branch),
                detail="max",
            )
        )
        ops_.append(
            profiling.Op(
                "elementwise", elems_out=profiling._elems(cat), detail="concat", module=False
            )
        )
        for layer in (self.fuse_bn_pre, self.fuse_act_pre):
            if layer is not None:
                ops_ += profiling.layer_ops(layer, cat)
        ops_ += profiling.layer_ops(self.fuse, cat)
        for layer in (self.fuse_bn, self.fuse_act):
            if layer is not None:
                ops_ += profiling.layer_ops(layer, branch)
        if self.residual:
            ops_.append(
                profiling.Op(
                    "elementwise", elems_out=profiling._elems(branch), detail="add", module=False
                )
            )
        return ops_

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            branch_strides=self.branch_strides,
            activation=self.activation,
            residual=self.residual,
            ordering=self.ordering,
            first_conv=self.first_conv,
            bn_epsilon=self.bn_epsilon,
            bn_momentum=self.bn_momentum,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
        )
        return config
