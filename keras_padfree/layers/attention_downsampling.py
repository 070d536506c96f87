"""AttentionDownsampling: EfficientFormerV2's attention-based stride-2 "Embedding" block."""

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_padfree import profiling
from keras_padfree.layers import _utils
from keras_padfree.layers._utils import Initializer


def attention_bias_index(height, width):
    """Index of the relative-position bias of every (query, key) pair, shape ``(N2, N)``.

    Queries sit on the stride-2 grid (``ceil(H/2) x ceil(W/2)``, query ``(i, j)`` at input position
    ``(2i, 2j)``), keys on the full ``H x W`` grid. The pair (query ``(i, j)``, key ``(a, b)``)
    reads
    entry ``|2i - a| * W + |2j - b|`` of a per-head table of ``H * W`` entries, the closed form of
    EfficientFormerV2's enumerated offsets (``|2i - a|`` ranges over ``0..H-1``, ``|2j - b|`` over
    ``0..W-1``).
    """
    h2, w2 = -(-height // 2), -(-width // 2)
    qi, qj = np.meshgrid(np.arange(h2), np.arange(w2), indexing="ij")
    ka, kb = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    qi, qj = qi.reshape(-1, 1), qj.reshape(-1, 1)
    ka, kb = ka.reshape(1, -1), kb.reshape(1, -1)
    return (np.abs(2 * qi - ka) * width + np.abs(2 * qj - kb)).astype("int32")


@keras.saving.register_keras_serializable(package="keras_padfree")
class AttentionDownsampling(keras.layers.Layer):
    """EfficientFormerV2-style downsampling: ``BN(conv3x3/s2(x))`` plus optional 4-D attention.

    This is the ``Embedding`` block the paper's "EfficientFormerV2 downsampling" comparison puts in
    place of a network's stride-2 blocks (the whole block: expand conv, depthwise conv, SE, Ghost
    modules or ShuffleNet branches are all replaced). It always has a dense 3x3 / stride-2 /
    padding-1 convolution with bias followed by BatchNorm, and **no activation** after the block.

    With ``use_attention=True`` (the reference's ``asub=True``) it adds
    ``Attention4DDownsample(x)``:

    * query: ``BN(conv1x1(dwconv3x3/s2(x) + x[:, ::2, ::2]))`` (the subsample is an ``AvgPool2d``
      module with kernel 1 and stride 2; the depthwise conv has bias and no BN), keys
      ``BN(conv1x1(x))`` and values ``BN(conv1x1(x))`` at full resolution; every 1x1 conv has bias;
    * ``num_heads`` heads of ``key_dim`` channels for queries/keys and ``attn_ratio * key_dim`` for
      values, split head-major (channel ``h * key_dim + j``);
    * ``softmax(q k^T * key_dim**-0.5 + B)`` over the keys, where ``B`` is a learned
      relative-position bias: one table of ``H * W`` entries per head (zeros at start), indexed by
      :func:`attention_bias_index`;
    * ``attn @ v`` back to ``ceil(H/2) x ceil(W/2) x (num_heads * attn_ratio * key_dim)``, plus the
      local values ``BN(dwconv3x3/s2(v))`` (with bias), then GELU (exact), ``conv1x1`` (bias) to
      ``filters`` and BN.

    The reference fixed the attention resolution when the module was constructed (32x32 CIFAR
    input only; any other size crashed). Here the bias table's size and its index are derived from
    the input shape when the layer is built, so the same layer definition works at any static
    spatial size of at least ``min_size``; the spatial size must be known (not None).

    Counting: the bias table was a bare ``nn.Parameter`` that thop 0.0.31 does not count, so it is
    listed in ``functional_weights`` (excluded from ``"thop_0.0.31"`` params, present in
    ``trainable_weights``). The two attention matrix products were functional ``@`` calls: they are
    reported as ``"matmul"`` ops with ``module=False`` (counted by ``"macs"``, not by thop). The
    query subsample is reported as an average-pool module (thop 0.0.31 charges one per output).

    Per-family settings of the paper's E variants: MobileNetV3 gives the conv branch its own BN
    (``bn_epsilon=1e-3, bn_momentum=0.99``); ParC-MobileNetV2, GhostNet and ShuffleNetV2 use the
    default BN (1e-5, 0.9). The first replaced block of MobileNetV3/ParC/GhostNet (and the first two
    of ShuffleNetV2) are conv-only (``use_attention=False``); the later ones use attention. BNs
    inside the attention are always the default
    (``attention_bn_epsilon``/``attention_bn_momentum``).

    Args:
        filters: output channels.
        use_attention: add the attention branch (reference ``asub=True``); False gives the conv-only
            embedding (reference ``asub=False``).
        key_dim: channels per head of queries and keys (16).
        num_heads: attention heads (8).
        attn_ratio: value channels per head as a multiple of ``key_dim`` (4, i.e. 64 per head).
        attention_activation: activation before the output projection ("gelu", exact erf form).
        bn_epsilon: epsilon of the conv branch's BatchNorm (1e-5; MobileNetV3 passes 1e-3).
        bn_momentum: Keras momentum of the conv branch's BN (0.9; MobileNetV3 passes 0.99).
        attention_bn_epsilon: epsilon of the BNs inside the attention (1e-5).
        attention_bn_momentum: Keras momentum of the BNs inside the attention (0.9).
        min_size: smallest accepted input height/width (default 2: a stride-2 downsampling of a
            single pixel is meaningless); a smaller or unknown size raises ValueError at build.
        kernel_initializer: initializer of the dense (3x3 and 1x1) convolutions.
        depthwise_initializer: initializer of the two depthwise convs (default PyTorch's
            kaiming-uniform with fan-in 9).

    Example:
    >>> x = keras.random.normal((2, 16, 16, 40))
    >>> AttentionDownsampling(80)(x).shape
    (2, 8, 8, 80)
    >>> AttentionDownsampling(40, use_attention=False)(keras.random.normal((2, 32, 32, 24))).shape
    (2, 16, 16, 40)
    """

    def __init__(
        self,
        filters: int,
        use_attention: bool = True,
        key_dim: int = 16,
        num_heads: int = 8,
        attn_ratio: int = 4,
        attention_activation: str = "gelu",
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        attention_bn_epsilon: float = 1e-5,
        attention_bn_momentum: float = 0.9,
        min_size: int = 2,
        kernel_initializer: Initializer = "he_uniform",
        depthwise_initializer: Initializer | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = _utils.check_positive_int(filters, "filters")
        if not isinstance(use_attention, bool):
            raise ValueError(
                "Argument `use_attention` must be True or False. "
                f"Received: use_attention={use_attention!r}."
            )
        self.use_attention = use_attention
        self.key_dim = _utils.check_positive_int(key_dim, "key_dim")
        self.num_heads = _utils.check_positive_int(num_heads, "num_heads")
        self.attn_ratio = _utils.check_positive_int(attn_ratio, "attn_ratio")
        self.attention_activation = _utils.canonical_activation(attention_activation)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.attention_bn_epsilon = attention_bn_epsilon
        self.attention_bn_momentum = attention_bn_momentum
        self.min_size = _utils.check_positive_int(min_size, "min_size")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if depthwise_initializer is None:
            depthwise_initializer = _utils.uniform_limit_initializer(9)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)

        self.qk_channels = self.key_dim * self.num_heads
        self.value_dim = self.attn_ratio * self.key_dim
        self.value_channels = self.value_dim * self.num_heads
        self.scale = self.key_dim**-0.5

        conv = lambda f, k, name: keras.layers.Conv2D(  # noqa: E731
            f,
            k,
            strides=1 if k == 1 else 2,
            padding="valid",
            use_bias=True,
            kernel_initializer=_utils.fresh_initializer(self.kernel_initializer),
            name=name,
        )
        dwconv = lambda name: keras.layers.DepthwiseConv2D(  # noqa: E731
            3,
            strides=2,
            padding="valid",
            use_bias=True,
            depthwise_initializer=_utils.fresh_initializer(self.depthwise_initializer),
            name=name,
        )
        abn = lambda name: _utils.batch_norm(  # noqa: E731
            attention_bn_epsilon, attention_bn_momentum, name=name
        )

        self.conv = conv(self.filters, 3, "conv")
        self.bn = _utils.batch_norm(bn_epsilon, bn_momentum, name="bn")
        if self.use_attention:
            self.q_local = dwconv("q_local")
            self.q_proj = conv(self.qk_channels, 1, "q_proj")
            self.q_bn = abn("q_bn")
            self.k_proj = conv(self.qk_channels, 1, "k_proj")
            self.k_bn = abn("k_bn")
            self.v_proj = conv(self.value_channels, 1, "v_proj")
            self.v_bn = abn("v_bn")
            self.v_local = dwconv("v_local")
            self.v_local_bn = abn("v_local_bn")
            self.proj_act = _utils.activation_layer(self.attention_activation, "proj_act")
            self.proj = conv(self.filters, 1, "proj")
            self.proj_bn = abn("proj_bn")
        self.attention_biases = None
        self._bias_index = None

    # -- shapes ----------------------------------------------------------------------------------
    @staticmethod
    def _half(size):
        return _utils.conv_output_size(size, 3, 2, 1)

    def _shapes(self, input_shape):
        b, h, w, c = tuple(input_shape)
        full = (b, h, w)
        half = (b, self._half(h), self._half(w))
        return full, half, c

    def _check_input(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 4:
            raise ValueError(
                f"Layer {self.name!r} expects NHWC inputs of rank 4. Received input shape {shape}."
            )
        if shape[-1] is None:
            raise ValueError(
                f"Layer {self.name!r} needs a known number of input channels. "
                f"Received input shape {shape}."
            )
        if not self.use_attention:
            return
        h, w = shape[1], shape[2]
        if h is None or w is None:
            raise ValueError(
                f"Layer {self.name!r} (AttentionDownsampling with use_attention=True) derives its "
                "attention bias table from the spatial size, which must be known when it is built. "
                f"Received input shape {shape}; build the model with a full `input_shape`."
            )
        if h < self.min_size or w < self.min_size:
            raise ValueError(
                f"Layer {self.name!r} (AttentionDownsampling) needs inputs of at least "
                f"{self.min_size}x{self.min_size} pixels. Received input shape {shape}."
            )

    def build(self, input_shape):
        self._check_input(input_shape)
        full, half, c = self._shapes(input_shape)

        def padded(s, ch):
            return (
                s[0],
                None if s[1] is None else s[1] + 2,
                None if s[2] is None else s[2] + 2,
                ch,
            )

        self.conv.build(padded(full, c))
        self.bn.build(half + (self.filters,))
        if self.use_attention:
            h, w = int(full[1]), int(full[2])
            self.q_local.build(padded(full, c))
            self.q_proj.build(half + (c,))
            self.q_bn.build(half + (self.qk_channels,))
            self.k_proj.build(full + (c,))
            self.k_bn.build(full + (self.qk_channels,))
            self.v_proj.build(full + (c,))
            self.v_bn.build(full + (self.value_channels,))
            self.v_local.build(padded(full, self.value_channels))
            self.v_local_bn.build(half + (self.value_channels,))
            if self.proj_act is not None:
                self.proj_act.build(half + (self.value_channels,))
            self.proj.build(half + (self.value_channels,))
            self.proj_bn.build(half + (self.filters,))
            self.attention_biases = self.add_weight(
                shape=(self.num_heads, h * w),
                initializer="zeros",
                trainable=True,
                name="attention_biases",
            )
            self._bias_index = attention_bias_index(h, w)
        self.built = True

    @property
    def functional_weights(self):
        """The bias table: a bare ``nn.Parameter`` in the reference, not counted by thop 0.0.31."""
        return [self.attention_biases] if self.attention_biases is not None else []

    # -- forward ---------------------------------------------------------------------------------
    def call(self, inputs, training=None):
        x_pad = _utils.symmetric_pad(inputs, 1)
        out = self.bn(self.conv(x_pad), training=training)
        if not self.use_attention:
            return out
        h, w = int(inputs.shape[1]), int(inputs.shape[2])
        h2, w2 = self._half(h), self._half(w)
        n, n2 = h * w, h2 * w2
        heads, kd, vd = self.num_heads, self.key_dim, self.value_dim

        q = self.q_local(x_pad) + ops.average_pool(inputs, 1, 2, padding="valid")
        q = self.q_bn(self.q_proj(q), training=training)
        q = ops.transpose(ops.reshape(q, (-1, n2, heads, kd)), (0, 2, 1, 3))  # (B, h, N2, kd)
        k = self.k_bn(self.k_proj(inputs), training=training)
        k = ops.transpose(ops.reshape(k, (-1, n, heads, kd)), (0, 2, 3, 1))  # (B, h, kd, N)
        v_map = self.v_bn(self.v_proj(inputs), training=training)
        v_local = self.v_local_bn(self.v_local(_utils.symmetric_pad(v_map, 1)), training=training)
        v = ops.transpose(ops.reshape(v_map, (-1, n, heads, vd)), (0, 2, 1, 3))  # (B, h, N, vd)

        bias = ops.take(self.attention_biases, ops.convert_to_tensor(self._bias_index), axis=1)
        attn = ops.matmul(q, k) * self.scale + ops.cast(bias, q.dtype)[None]
        attn = ops.softmax(attn, axis=-1)
        y = ops.matmul(attn, v)  # (B, h, N2, vd)
        y = ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (-1, h2, w2, heads * vd))
        y = y + v_local
        if self.proj_act is not None:
            y = self.proj_act(y)
        y = self.proj_bn(self.proj(y), training=training)
        return out + y

    def compute_output_shape(self, input_shape):
        _, half, _ = self._shapes(input_shape)
        return half + (self.filters,)

    def profile_ops(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input(input_shape)
        full, half, c = self._shapes(input_shape)
        padded = (full[0], full[1] + 2, full[2] + 2)
        e = profiling._elems
        ops_ = profiling.layer_ops(self.conv, padded + (c,))
        ops_ += profiling.layer_ops(self.bn, half + (self.filters,))
        if not self.use_attention:
            return ops_
        n = full[1] * full[2]
        n2 = half[1] * half[2]
        ops_ += profiling.layer_ops(self.q_local, padded + (c,))
        ops_.append(
            profiling.Op("pool", elems_in=e(full + (c,)), elems_out=e(half + (c,)), detail="avg")
        )
        ops_.append(
            profiling.Op("elementwise", elems_out=e(half + (c,)), detail="add", module=False)
        )
        ops_ += profiling.layer_ops(self.q_proj, half + (c,))
        ops_ += profiling.layer_ops(self.q_bn, half + (self.qk_channels,))
        ops_ += profiling.layer_ops(self.k_proj, full + (c,))
        ops_ += profiling.layer_ops(self.k_bn, full + (self.qk_channels,))
        ops_ += profiling.layer_ops(self.v_proj, full + (c,))
        ops_ += profiling.layer_ops(self.v_bn, full + (self.value_channels,))
        ops_ += profiling.layer_ops(self.v_local, padded + (self.value_channels,))
        ops_ += profiling.layer_ops(self.v_local_bn, half + (self.value_channels,))
        heads = self.num_heads
        ops_.append(
            profiling.Op("matmul", macs=heads * n2 * n * self.key_dim, detail="q @ k", module=False)
        )
        ops_.append(
            profiling.Op("elementwise", elems_out=heads * n2 * n, detail="softmax", module=False)
        )
        ops_.append(
            profiling.Op(
                "matmul", macs=heads * n2 * n * self.value_dim, detail="attn @ v", module=False
            )
        )
        ops_.append(
            profiling.Op(
                "elementwise",
                elems_out=e(half + (self.value_channels,)),
                detail="add",
                module=False,
            )
        )
        if self.proj_act is not None:
            ops_ += profiling.layer_ops(self.proj_act, half + (self.value_channels,))
        ops_ += profiling.layer_ops(self.proj, half + (self.value_channels,))
        ops_ += profiling.layer_ops(self.proj_bn, half + (self.filters,))
        ops_.append(
            profiling.Op(
                "elementwise", elems_out=e(half + (self.filters,)), detail="add", module=False
            )
        )
        return ops_

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            use_attention=self.use_attention,
            key_dim=self.key_dim,
            num_heads=self.num_heads,
            attn_ratio=self.attn_ratio,
            attention_activation=self.attention_activation,
            bn_epsilon=self.bn_epsilon,
            bn_momentum=self.bn_momentum,
            attention_bn_epsilon=self.attention_bn_epsilon,
            attention_bn_momentum=self.attention_bn_momentum,
            min_size=self.min_size,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
        )
        return config
