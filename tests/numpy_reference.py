"""NumPy re-implementations of the primitives, PyTorch semantics (NHWC), for the layer tests."""

import numpy as np


def pad(x, p, value=0.0):
    if p == 0:
        return x
    return np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)], constant_values=value)


def conv2d(x, kernel, stride=1, padding=0, bias=None):
    """Full conv; kernel (kh, kw, cin, cout)."""
    x = pad(x, padding)
    kh, kw, _, cout = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, cout), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
            out += np.einsum("nhwc,co->nhwo", patch, kernel[i, j])
    if bias is not None:
        out += bias
    return out


def depthwise_conv2d(x, kernel, stride=1, padding=0):
    """Depthwise conv; kernel (kh, kw, c, 1)."""
    x = pad(x, padding)
    kh, kw, c, _ = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, c), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            out += (
                x[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
                * kernel[i, j, :, 0]
            )
    return out


def max_pool(x, k, stride, padding):
    x = pad(x, padding, value=-np.inf)
    n, h, w, c = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.full((n, oh, ow, c), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(
                out, x[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
            )
    return out


def batch_norm(x, gamma, beta, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def relu(x):
    return np.maximum(x, 0)


def relu6(x):
    return np.clip(x, 0, 6)


def hard_sigmoid(x):
    return relu6(x + 3) / 6


def hard_swish(x):
    return x * hard_sigmoid(x)


ACTIVATIONS = {
    "relu": relu,
    "relu6": relu6,
    "hard_silu": hard_swish,
    "hard_sigmoid": hard_sigmoid,
    None: lambda x: x,
}


def randomize_bn(layer, rng):
    """Gives a built BatchNormalization random statistics and affine parameters; returns them."""
    c = layer.gamma.shape[0]
    values = [
        rng.uniform(0.5, 1.5, c),
        rng.normal(0, 0.2, c),
        rng.normal(0, 0.2, c),
        rng.uniform(0.5, 1.5, c),
    ]
    layer.set_weights([v.astype("float32") for v in values])
    gamma, beta, mean, var = values
    return gamma, beta, mean, var
