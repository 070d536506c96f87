"""Small helpers shared by the layers: argument checks, activations, padding.

Everything here is backend-agnostic (``keras.ops`` only).
"""

import contextlib
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
            f"Argument `activation` must be one of {allowed} or None. "
            f"Received: activation={name!r}."
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


_LITERT_FORMS = [0]


@contextlib.contextmanager
def litert_forms():
    """Inside this context, layers trace their inference in the form LiteRT runs fastest.

    The exporters convert inside it: a layer may then express the same function with other ops
    (:class:`HybridStem` fuses its two branches as two 1x1 convolutions and an add instead of a
    concatenation and one 1x1 convolution). Training, and inference outside the context, keep the
    reference's form; the export's parity check compares the file with the model as it is.
    """
    _LITERT_FORMS[0] += 1
    try:
        yield
    finally:
        _LITERT_FORMS[0] -= 1


def in_litert_forms():
    return _LITERT_FORMS[0] > 0


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
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    return ops.pad(x, pads, constant_values=value)


def _pool_output_size(size, pool_size, strides, padding):
    return (size + 2 * padding - pool_size) // strides + 1


def _same_pool_start(size, pool_size, strides):
    """(cells before the axis, output size) of Keras' "same" pooling along an axis of ``size``.

    "same" pads ``max((ceil(size / s) - 1) * s + k - size, 0)`` cells in total, the smaller half
    before the axis, and its padded cells never win the max (on every backend).
    """
    out = -(-size // strides)
    return max((out - 1) * strides + pool_size - size, 0) // 2, out


def max_pool(x, pool_size, strides, padding):
    """Max-pool with PyTorch's symmetric padding semantics (padded cells never win).

    ``padding`` is an int. The pool is expressed with as few passes over ``x`` as give the exact
    result (LiteRT's XNNPACK runs each op as one pass; every form below is exact on every backend
    and keeps int8 quantisation exact):

    * ``padding == 0``: a valid pool;
    * where Keras' "same" pool puts ``padding`` cells before both spatial axes (stride 1 with
      ``2 * padding == pool_size - 1``; 3x3/stride 2/padding 1 on odd sizes; 5x5/stride 2/padding
      1 on even sizes): that pool, cropped to PyTorch's output size where "same" gives one more
      row/column;
    * a k-window pool whose (k - stride)-windows are such a "same" pool (5x5/stride 2/padding 1 on
      odd sizes): that pool, then a 2x2/stride-1 valid pool (a k-window starting at ``i*s - p`` is
      the union of the (k - s)-windows starting at ``i*s - p`` and ``(i + 1)*s - p``);
    * otherwise the input is padded only where a window reaches out of it, by repeating the edge
      rows/columns (slices + concatenations: a PADV2 with -inf would split the delegated graph and
      wreck the int8 scale; a zero PAD, exact after a ReLU, costs XNNPACK more than the
      concatenations), then pooled valid.
    """
    if padding == 0:
        return ops.max_pool(x, pool_size, strides, padding="valid")
    if strides == 1 and 2 * padding == pool_size - 1:
        return ops.max_pool(x, pool_size, strides, padding="same")
    sizes = tuple(x.shape[1:3])
    if 2 * padding >= pool_size:
        lowest = -3.0e38 if keras.backend.standardize_dtype(x.dtype) == "float32" else -65504.0
        x = symmetric_pad(x, padding, value=lowest)
        return ops.max_pool(x, pool_size, strides, padding="valid")
    if None not in sizes:
        out = tuple(_pool_output_size(n, pool_size, strides, padding) for n in sizes)
        for window, extra in ((pool_size, 0), (pool_size - strides, 1)):
            if window <= 2 * padding or window < strides:
                continue
            same = [_same_pool_start(n, window, strides) for n in sizes]
            if all(
                before == padding and n_out - extra >= o for (before, n_out), o in zip(same, out)
            ):
                y = ops.max_pool(x, window, strides, padding="same")
                if extra:
                    y = ops.max_pool(y, 2, 1, padding="valid")
                if tuple(y.shape[1:3]) != out:
                    y = y[:, : out[0], : out[1]]
                return y
        after = [max((o - 1) * strides + pool_size - padding - n, 0) for n, o in zip(sizes, out)]
    else:
        after = [padding, padding]
    x = _edge_pad(x, ((padding, after[0]), (padding, after[1])))
    return ops.max_pool(x, pool_size, strides, padding="valid")


def _edge_pad(x, pads):
    """Pads H and W of an NHWC tensor by repeating the border rows/columns.

    ``pads`` is ``((before_h, after_h), (before_w, after_w))``.
    """
    for axis, (before, after) in ((1, pads[0]), (2, pads[1])):
        if before or after:
            first = x[:, :1] if axis == 1 else x[:, :, :1]
            last = x[:, -1:] if axis == 1 else x[:, :, -1:]
            x = ops.concatenate([first] * before + [x] + [last] * after, axis=axis)
    return x


def fresh_initializer(initializer):
    """A new instance of ``initializer`` for one more sublayer.

    An unseeded Keras initializer draws its seed once, when it is created, so two same-shaped
    kernels made with one instance start identical. Layers that build several kernels from one
    ``*_initializer`` argument give each its own copy (an explicitly seeded initializer keeps its
    seed, as Keras documents).
    """
    return keras.initializers.get(keras.initializers.serialize(initializer))


def uniform_limit_initializer(fan_in, gain=math.sqrt(6.0)):  # noqa: B008 - a constant
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
