"""Small helpers shared by the layers: argument checks, activations, padding.

Everything here is backend-agnostic (``keras.ops`` only).
"""

import math

import keras
from keras import ops

# What an ``*_initializer`` argument takes: a Keras initializer, its name or its config.
Initializer = str | dict | keras.initializers.Initializer

# Activations by the names the reference code uses. Keras 3 defines
# ``hard_sigmoid(x) = relu6(x + 3) / 6`` and ``hard_silu(x) = x * hard_sigmoid(x)``, which are
# exactly PyTorch's ``Hardsigmoid`` and ``Hardswish``.
_ACTIVATION_ALIASES = {
    "hswish": "hard_silu",
    "hard_swish": "hard_silu",
    "hardswish": "hard_silu",
    "hsigmoid": "hard_sigmoid",
    "hardsigmoid": "hard_sigmoid",
    "swish": "silu",
}

# Every name `activation_layer` accepts (after aliasing), with how the profiler calls it.
_KNOWN_ACTIVATIONS = (
    "relu",
    "relu6",
    "hard_silu",
    "hard_sigmoid",
    "sigmoid",
    "silu",
    "gelu",
    "gelu_exact",
    "linear",
)


def canonical_activation(name):
    """Returns the canonical activation name (e.g. ``"hswish"`` -> ``"hard_silu"``), or None."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValueError(
            "Argument `activation` must be a string or None. "
            f"Received: activation={name!r} (of type {type(name).__name__})."
        )
    key = name.lower()
    key = _ACTIVATION_ALIASES.get(key, key)
    if key not in _KNOWN_ACTIVATIONS:
        allowed = sorted(set(_KNOWN_ACTIVATIONS) | set(_ACTIVATION_ALIASES))
        raise ValueError(
            f"Argument `activation` must be one of {allowed} or None. Received: activation={name!r}."
        )
    return key


def activation_layer(name, layer_name=None):
    """A Keras layer for a canonical activation name (None or "linear" -> None).

    ReLU and ReLU6 are `keras.layers.ReLU` (so the profiler sees a ReLU module, as the reference
    code had); GELU is the exact erf form, as PyTorch's default.
    """
    name = canonical_activation(name)
    if name is None or name == "linear":
        return None
    if name == "relu":
        return keras.layers.ReLU(name=layer_name)
    if name == "relu6":
        return keras.layers.ReLU(max_value=6.0, name=layer_name)
    if name in ("gelu", "gelu_exact"):
        return keras.layers.Activation(_gelu_exact, name=layer_name)
    return keras.layers.Activation(name, name=layer_name)


@keras.saving.register_keras_serializable(package="keras_padfree")
def _gelu_exact(x):
    return keras.activations.gelu(x, approximate=False)


def batch_norm(epsilon=1e-5, momentum=0.9, name=None, axis=-1):
    """BatchNormalization with PyTorch's defaults (eps 1e-5, PyTorch momentum 0.1 = Keras 0.9)."""
    return keras.layers.BatchNormalization(axis=axis, epsilon=epsilon, momentum=momentum, name=name)


def check_positive_int(value, argname):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Argument `{argname}` must be a positive integer. Received: {argname}={value!r}."
        )
    return value


def check_bool(value, argname):
    if not isinstance(value, bool):
        raise ValueError(
            f"Argument `{argname}` must be True or False. Received: {argname}={value!r}."
        )
    return value


def check_choice(value, argname, allowed):
    if value not in allowed:
        raise ValueError(
            f"Argument `{argname}` must be one of {list(allowed)}. Received: {argname}={value!r}."
        )
    return value


def conv_output_size(size, kernel_size, stride, padding):
    """PyTorch's output size rule: floor((H + 2p - k) / s) + 1 (None passes through)."""
    if size is None:
        return None
    return (size + 2 * padding - kernel_size) // stride + 1


def same_is_symmetric(size, kernel_size, stride, padding):
    """Whether Keras' "same" padding of a ``size``-long axis equals PyTorch's symmetric ``padding``.

    "same" pads ``max((ceil(size / s) - 1) * s + k - size, 0)`` in total, the smaller half first.
    That is ``padding`` on both sides for stride 1 with ``2p == k - 1``, and for stride 2 with
    ``2p == k - 1`` on an odd ``size`` (on an even one it pads the far side only).
    """
    if size is None or 2 * padding != kernel_size - 1:
        return False
    out = -(-size // stride)
    return max((out - 1) * stride + kernel_size - size, 0) == 2 * padding


def pad_for_conv(x, kernel_size, strides, padding, name):
    """PyTorch's symmetric zero ``padding`` for a following convolution of a functional model.

    Returns ``(x, keras_padding)``: ``(x, "same")`` where Keras' "same" pads identically on both
    spatial axes (no separate PAD op in exported graphs), else ``(ZeroPadding2D(padding)(x),
    "valid")``. Keras' "same" is never used where it would pad asymmetrically (stride 2 on an even
    input), the classic Keras-vs-PyTorch mismatch.
    """
    if padding == 0:
        return x, "valid"
    if all(same_is_symmetric(size, kernel_size, strides, padding) for size in x.shape[1:3]):
        return x, "same"
    return keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x), "valid"


def symmetric_pad(x, padding, value=0.0):
    """Pads the two spatial axes of an NHWC tensor by ``padding`` on every side."""
    if padding == 0:
        return x
    return ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]], constant_values=value)


def max_pool(x, pool_size, strides, padding):
    """Max-pool with PyTorch's symmetric padding semantics (padded cells never win).

    ``padding`` is an int: 0 is a plain valid pool; for stride 1 with ``padding == (k - 1) // 2``
    Keras' "same" pool is exact; otherwise the input is padded with the dtype's lowest value.
    """
    if padding == 0:
        return ops.max_pool(x, pool_size, strides, padding="valid")
    if strides == 1 and 2 * padding == pool_size - 1:
        return ops.max_pool(x, pool_size, strides, padding="same")
    if 2 * padding < pool_size:
        # Every window then holds at least one real cell next to its padded ones, so padding by
        # repeating the edge rows/columns gives the same maximum as PyTorch's -inf padding. It is
        # expressed as slices + concatenations, which LiteRT's XNNPACK delegate runs and int8
        # quantisation keeps exact (a PADV2 with -inf splits the delegated graph; a -inf constant
        # would wreck the int8 scale).
        x = _edge_pad(x, padding)
    else:
        lowest = float(-3.0e38) if keras.backend.standardize_dtype(x.dtype) == "float32" \
            else -65504.0
        x = symmetric_pad(x, padding, value=lowest)
    return ops.max_pool(x, pool_size, strides, padding="valid")


def _edge_pad(x, padding):
    """Pads H and W of an NHWC tensor by repeating the border rows/columns ``padding`` times."""
    x = ops.concatenate([x[:, :1]] * padding + [x] + [x[:, -1:]] * padding, axis=1)
    return ops.concatenate([x[:, :, :1]] * padding + [x] + [x[:, :, -1:]] * padding, axis=2)


def fresh_initializer(initializer):
    """A new instance of ``initializer`` for one more sublayer.

    An unseeded Keras initializer draws its seed once, when it is created, so two same-shaped
    kernels made with one instance start identical. Layers that build several kernels from one
    ``*_initializer`` argument give each its own copy (an explicitly seeded initializer keeps its
    seed, as Keras documents).
    """
    return keras.initializers.get(keras.initializers.serialize(initializer))


def uniform_limit_initializer(fan_in, gain=math.sqrt(6.0)):
    """RandomUniform(+-gain/sqrt(fan_in)); gain sqrt(6) is PyTorch's kaiming_uniform_ default."""
    limit = gain / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-limit, limit)


def make_divisible(value, divisor=8, min_value=None):
    """Rounds ``value`` to the nearest multiple of ``divisor`` without losing more than 10%."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value
