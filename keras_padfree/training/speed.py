"""The fastest correct training settings per Keras backend and device, and faster kernels.

``default_settings(backend, device)`` returns what ``model.compile``/``fit`` should use (XLA,
``steps_per_execution``, thread counts, which of the kernels below to install), measured by
``benchmarks/train_throughput.py`` (results in ``benchmarks/results/train_throughput.md``).

``install_fast_kernels(backend)`` replaces computations that a backend runs slowly on the CPU by
the same function written differently (tests check that values and gradients stay equal to float32
rounding):

* **JAX, depthwise convolutions.** XLA:CPU lowers a grouped convolution (``feature_group_count`` =
  channels), and above all its two backward convolutions, to a generic loop nest: on a 2-core AVX2
  CPU one 3x3 depthwise layer of a CIFAR MobileNetV3 (128x16x16x240) takes about 10x longer to
  train than the same layer written as a sum of ``k*k`` shifted, per-channel-scaled slices of the
  padded input, which XLA fuses into one elementwise loop (its gradients: a padded sum and ``k*k``
  reductions). ``keras.ops.depthwise_conv`` on JAX is replaced by that sum for CPU arrays (other
  devices, dilations and channels-first inputs keep the grouped convolution). Opt-in
  (``kernels=KERNELS["jax"]``): its gradient sums round further from a float64 step than XLA's
  convolution (see ``DEFAULT_KERNELS``).
* **PyTorch, convolutions.** Keras' ``conv`` turns every NHWC input into a contiguous NCHW copy
  and then back into channels-last memory for oneDNN: two copies of each convolution's input,
  forward and again backward. An NHWC tensor viewed as NCHW already is channels-last memory, so the
  replacement hands that view to ``conv2d`` directly (same kernel, same padding).
* **PyTorch, max pooling.** The same round trip, and worse: Keras pools an NCHW-contiguous copy,
  for which PyTorch's CPU kernel is not vectorised over channels (a 3x3/stride-2 pool of a
  128x32x32x64 batch: about 18 ms, against about 1 ms in channels-last memory), and hands on a
  strided NHWC view that every following elementwise op reads slowly. The replacement pools the
  channels-last view in place (the same windows, the same "same" padding; max pooling is exact,
  so values and gradients are the same bits).
* **PyTorch, BatchNormalization in training.** Keras computes the batch statistics and the
  normalisation with separate elementwise operations (``E[x^2] - E[x]^2``, then subtract,
  multiply, add), each a pass over the activations forward and again backward, with autograd
  saving every intermediate. In training (no mask, no renorm, not synchronized) the layer
  subtracts the batch mean (one pass) and hands the centred values to PyTorch's fused kernel
  (``native_batch_norm`` on channels-last rows: one fused forward and one fused backward).
  Centring first keeps the digits that kernel's ``x * scale + (beta - mean * scale)``
  loses where a channel's mean dwarfs its spread. A layer's forward and backward take 0.2-0.5x
  the time of Keras' own (four MobileNetV3 shapes, batch 128, 2-core CPU); the normalisation
  itself takes 1.4-1.9x the time of the fused kernel alone (the mean's pass and the centred
  copy). The moving statistics follow Keras' rule exactly (momentum, biased variance). Under
  ``torch.compile`` (``jit_compile=True``) all three PyTorch kernels leave the graph to Keras'
  own forms.
* **TensorFlow, BatchNormalization in training** (a default kernel; ``default_settings`` installs
  it where TensorFlow runs its oneDNN kernels). The same for 4-D channels-last float inputs with
  ``FusedBatchNormV3`` (``tf.compat.v1.nn.fused_batch_norm``): Keras 3 composes the layer from
  about ten elementwise ops, forward and backward. With oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``, which
  ``training/fit.py`` sets) a MobileNetV3 train step on a 2-core AVX2 CPU takes 0.78x the time of
  Eigen's kernels with Keras' BatchNormalization (oneDNN alone: 0.91x; the fused kernel alone:
  no gain, TensorFlow's executor already runs Keras' elementwise ops beside the convolutions).

``describe(default_settings())`` sums them up in one line for this machine.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "DEFAULT_KERNELS",
    "KERNELS",
    "current_device",
    "default_settings",
    "describe",
    "fast_kernels_installed",
    "install_fast_kernels",
    "uninstall_fast_kernels",
]

_ORIGINALS: dict[str, tuple[Any, str, Any]] = {}


def current_device(backend: str | None = None) -> str:
    """``"gpu"`` when the backend sees an accelerator, else ``"cpu"``."""
    backend = backend or _keras_backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
        if backend == "jax":
            import jax

            return "cpu" if jax.default_backend() == "cpu" else "gpu"
        if backend == "torch":
            import torch

            return "gpu" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 -- a broken accelerator stack means: train on the CPU
        return "cpu"
    return "cpu"


def default_settings(backend: str | None = None, device: str | None = None) -> dict[str, Any]:
    """The fastest correct training settings for ``backend`` on ``device`` (``"cpu"``/``"gpu"``).

    Keys: ``jit_compile`` (for ``model.compile``), ``steps_per_execution`` (for
    ``model.compile``), ``fast_kernels`` (whether to call :func:`install_fast_kernels`),
    ``intra_op_threads`` / ``inter_op_threads`` (``None``: the backend's default),
    ``dtype_policy`` (the mixed-precision policy worth using, ``"float32"`` where none is faster)
    and ``why`` (one line per choice, for printing).
    """
    backend = backend or _keras_backend()
    if backend not in ("tensorflow", "jax", "torch"):
        raise ValueError(f"Unknown backend {backend!r}; expected tensorflow, jax or torch.")
    device = device or current_device(backend)
    if device not in ("cpu", "gpu"):
        raise ValueError(f"Unknown device {device!r}; expected 'cpu' or 'gpu'.")
    why = []
    if device == "gpu":
        settings = {
            "jit_compile": backend != "torch",
            "steps_per_execution": 1,
            "fast_kernels": False,
            "intra_op_threads": None,
            "inter_op_threads": None,
            "dtype_policy": "mixed_float16" if backend != "jax" else "mixed_bfloat16",
        }
        why.append(
            "GPU: XLA on (TensorFlow, JAX), eager PyTorch; mixed precision uses the tensor cores"
        )
    elif backend == "tensorflow":
        onednn = tensorflow_onednn_enabled()
        settings = {
            "jit_compile": False,
            "steps_per_execution": 1,
            "fast_kernels": onednn,
            "onednn": onednn,
            "intra_op_threads": None,
            "inter_op_threads": None,
            "dtype_policy": "float32",
        }
        why.append(
            "TensorFlow on CPU: XLA off (XLA:CPU trains these networks several times "
            "slower than TensorFlow's own kernels)"
        )
        if onednn:
            why.append(
                "oneDNN kernels with the fused BatchNormalization (0.78x the step time of "
                "TensorFlow's Eigen kernels and Keras' BatchNormalization)"
            )
        else:
            why.append(
                "Eigen kernels, Keras' BatchNormalization (oneDNN is off in this process: "
                "TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow loads, as training/fit.py sets it, "
                "trains 1.3x faster with the fused BatchNormalization)"
            )
    elif backend == "jax":
        settings = {
            "jit_compile": True,
            "steps_per_execution": 1,
            "fast_kernels": False,
            "intra_op_threads": None,
            "inter_op_threads": None,
            "dtype_policy": "float32",
        }
        why.append(
            "JAX on CPU: compiled, Keras' own depthwise convolutions (the opt-in shifted-sum "
            "kernel, speed.KERNELS['jax'], trains depthwise-heavy models about 3.8x faster but "
            "rounds its gradient sums further from a float64 step)"
        )
    else:
        settings = {
            "jit_compile": False,
            "steps_per_execution": 1,
            "fast_kernels": True,
            "intra_op_threads": None,
            "inter_op_threads": None,
            "dtype_policy": "float32",
        }
        why.append(
            "PyTorch on CPU: eager, convolutions and max pooling read channels-last memory "
            "in place (no NCHW round trip), BatchNormalization in training by PyTorch's fused "
            "kernel on mean-centred values (Keras' arithmetic, under half its time)"
        )
    if device == "cpu":
        why.append(_cpu_precision_note())
    settings["why"] = why
    return settings


def tensorflow_onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs its oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS``, read
    when TensorFlow loads; on by default only on CPUs with AVX512-VNNI/BF16 or AMX)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def _cpu_precision_note() -> str:
    flags = _cpu_flags()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return (
            "float32: this CPU has bfloat16 instructions (AVX512-BF16/AMX); "
            "mixed_bfloat16 may pay off on matrix-heavy networks, not measured here"
        )
    return (
        "float32: this CPU has no bfloat16/float16 arithmetic (no AVX512-BF16, AMX or "
        "AVX512-FP16), so mixed policies only add conversions"
    )


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _keras_backend() -> str:
    import keras

    return keras.backend.backend()


def describe(settings: dict[str, Any]) -> str:
    """One line for a log: ``jit_compile=False steps_per_execution=1 ...``."""
    keys = (
        "jit_compile",
        "steps_per_execution",
        "fast_kernels",
        "onednn",
        "dtype_policy",
        "intra_op_threads",
        "inter_op_threads",
    )
    return " ".join(f"{k}={settings[k]}" for k in keys if k in settings)


# --------------------------------------------------------------------------- kernels


def fast_kernels_installed() -> list[str]:
    """Names of the kernels :func:`install_fast_kernels` has replaced in this process."""
    return sorted(_ORIGINALS)


KERNELS = {
    "jax": ("jax.depthwise_conv",),
    "tensorflow": ("tensorflow.batch_normalization",),
    "torch": ("torch.conv", "torch.max_pool", "torch.batch_normalization"),
}
# What install_fast_kernels() installs without ``kernels``: only kernels whose results are as close
# to a float64 computation as Keras' own (tests/training/test_speed.py: one SGD step, within 3x of
# Keras' own distance). TensorFlow's fused BatchNormalization is: after one step of a BSConv-U
# ResNet-20, batch 4, lr 0.1, its weights were 4.6e-7 (oneDNN) / 1.4e-6 (Eigen) from a float64
# step, Keras' own 1.1e-6 / 1.0e-6. So is PyTorch's (the centred fused kernel): over 44 seeds
# of that step on the PF ResNet-20, a median distance of 1.2e-6 where Keras' own is 5.1e-6, and as
# often a far larger one (6 and 5 of 44 seeds above 3e-5, not the same seeds: a ReLU or max-pool
# tie that float32 rounding resolves unlike float64, whatever the kernel). (The float64 step keeps
# BatchNormalization in float64: on JAX and PyTorch Keras computes float64 inputs to it in float32
# unless told otherwise; see the test.) PyTorch's max pooling and convolutions give the same bits
# as Keras'. Opt-in (``kernels=KERNELS[backend]``): JAX's shifted-sum depthwise convolution (after
# one SGD step of a BSConv-U ResNet-20 PF its weights were 1.3e-4 from a float64 step where Keras'
# own were 9e-7: its gradient sums over the batch and the map round in float32 one by one).
DEFAULT_KERNELS = {
    "jax": (),
    "tensorflow": ("tensorflow.batch_normalization",),
    "torch": ("torch.conv", "torch.max_pool", "torch.batch_normalization"),
}


def install_fast_kernels(
    backend: str | None = None, kernels: tuple[str, ...] | list[str] | None = None
) -> list[str]:
    """Installs this backend's faster kernels (see the module docstring); returns their names.

    ``kernels`` picks some of ``KERNELS[backend]`` (default: ``DEFAULT_KERNELS[backend]``,
    those whose results equal Keras' own to float32 rounding). Idempotent;
    :func:`uninstall_fast_kernels` restores Keras' own. The environment variable
    ``KERAS_PADFREE_FAST_KERNELS=0`` turns it into a no-op.
    """
    backend = backend or _keras_backend()
    if os.environ.get("KERAS_PADFREE_FAST_KERNELS", "1") == "0":
        return []
    wanted = DEFAULT_KERNELS.get(backend, ()) if kernels is None else tuple(kernels)
    unknown = [k for k in wanted if k not in KERNELS.get(backend, ())]
    if unknown:
        raise ValueError(
            f"Unknown kernels for {backend}: {unknown}; expected some of "
            f"{list(KERNELS.get(backend, ()))}."
        )
    if "jax.depthwise_conv" in wanted:
        from keras.src.backend.jax import nn as jax_nn

        _replace(
            "jax.depthwise_conv",
            jax_nn,
            "depthwise_conv",
            _make_jax_depthwise(jax_nn.depthwise_conv),
        )
    fused_bn = {
        "torch.batch_normalization": (_torch_bn_train, _is_torch_tensor),
        "tensorflow.batch_normalization": (_tf_bn_train, _is_tf_nhwc_tensor),
    }
    for name in wanted:
        if name in fused_bn:
            import keras

            cls = keras.layers.BatchNormalization
            _replace(name, cls, "call", _make_bn_call(cls.call, *fused_bn[name]))
    if "torch.conv" in wanted:
        from keras.src.backend.torch import nn as torch_nn

        _replace("torch.conv", torch_nn, "conv", _make_torch_conv(torch_nn.conv))
    if "torch.max_pool" in wanted:
        from keras.src.backend.torch import nn as torch_nn

        _replace("torch.max_pool", torch_nn, "max_pool", _make_torch_max_pool(torch_nn.max_pool))
    return fast_kernels_installed()


def uninstall_fast_kernels() -> None:
    """Restores every kernel :func:`install_fast_kernels` replaced."""
    for name in list(_ORIGINALS):
        owner, attr, original = _ORIGINALS.pop(name)
        setattr(owner, attr, original)


def _replace(name: str, owner: Any, attr: str, new: Any) -> None:
    if name in _ORIGINALS:
        return
    _ORIGINALS[name] = (owner, attr, getattr(owner, attr))
    setattr(owner, attr, new)


def _make_jax_depthwise(original):
    def depthwise_conv(
        inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1
    ):
        import jax
        from keras.src import backend

        fmt = backend.standardize_data_format(data_format)
        inputs = jax.numpy.asarray(inputs)
        kernel = jax.numpy.asarray(kernel)
        if (
            fmt != "channels_last"
            or inputs.ndim != 4
            or _devices_of(inputs) != {"cpu"}
            or any(d != 1 for d in _pair(dilation_rate))
            or inputs.shape[-1] != kernel.shape[2]
        ):
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return depthwise_taps(inputs, kernel, _pair(strides), padding)

    depthwise_conv.__wrapped__ = original
    return depthwise_conv


def _devices_of(x) -> set[str]:
    try:
        return {d.platform for d in x.devices()}
    except Exception:  # noqa: BLE001 -- a tracer: decide by the default backend
        import jax

        return {jax.default_backend()}


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)


def depthwise_taps(inputs, kernel, strides: tuple[int, int], padding: str):
    """NHWC depthwise convolution (kernel ``(kh, kw, C, M)``) as a sum of shifted slices (JAX)."""
    import jax.numpy as jnp
    from jax import lax

    n, h, w, c = inputs.shape
    kh, kw, _, m = kernel.shape
    sh, sw = strides
    (pt, pb), (pl, pr) = lax.padtype_to_pads((h, w), (kh, kw), (sh, sw), padding.upper())
    x = jnp.pad(inputs, ((0, 0), (pt, pb), (pl, pr), (0, 0))) if pt or pb or pl or pr else inputs
    ho = (h + pt + pb - kh) // sh + 1
    wo = (w + pl + pr - kw) // sw + 1
    if m > 1:  # output channel c * m + j = input channel c times kernel[..., c, j]
        x = jnp.repeat(x, m, axis=-1)
    k = kernel.reshape(kh, kw, c * m).astype(inputs.dtype)
    out = None
    for i in range(kh):
        for j in range(kw):
            tap = lax.slice(
                x,
                (0, i, j, 0),
                (n, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, c * m),
                (1, sh, sw, 1),
            )
            term = tap * k[i, j]
            out = term if out is None else out + term
    return out


def _torch_nhwc_in_place(inputs, data_format) -> bool:
    """Whether a PyTorch kernel below may read ``inputs`` (4-D NHWC) as channels-last NCHW."""
    from keras.src import backend

    return (
        backend.standardize_data_format(data_format) == "channels_last"
        and inputs.ndim == 4
        and _is_torch_tensor(inputs)
    )


def _make_torch_conv(original):
    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        import torch
        from keras.src.backend.torch.core import convert_to_tensor
        from keras.src.backend.torch.nn import _apply_same_padding

        inputs = convert_to_tensor(inputs)
        kernel = convert_to_tensor(kernel)
        if not _torch_nhwc_in_place(inputs, data_format) or kernel.ndim != 4:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        strides = _pair(strides)
        dilation = _pair(dilation_rate)
        # An NHWC tensor seen as NCHW is already in torch's channels_last memory format: the
        # convolution reads it in place (Keras makes it NCHW-contiguous, then channels_last
        # again: two copies of every input, forward and backward).
        x = inputs.permute(0, 3, 1, 2)
        w = kernel.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        groups = x.shape[1] // w.shape[1]
        pad = 0
        if padding == "same":
            x, pad = _apply_same_padding(
                x, w.shape[2:], strides, "channels_first", "conv", dilation
            )
        out = torch.nn.functional.conv2d(
            x, w, stride=strides, padding=pad, dilation=dilation, groups=groups
        )
        return out.permute(0, 2, 3, 1)

    conv.__wrapped__ = original
    return conv


def _make_torch_max_pool(original):
    def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
        import torch
        from keras.src.backend.torch.core import convert_to_tensor
        from keras.src.backend.torch.nn import _apply_same_padding

        inputs = convert_to_tensor(inputs)
        if not _torch_nhwc_in_place(inputs, data_format):
            return original(inputs, pool_size, strides, padding, data_format)
        pool_size = _pair(pool_size)
        strides = pool_size if strides is None else _pair(strides)
        # The NHWC tensor seen as NCHW: channels_last memory, pooled in place (see conv).
        x = inputs.permute(0, 3, 1, 2)
        pad = 0
        if padding == "same":
            # (an edge padding, where "same" pads more after than before, keeps the memory
            # format)
            x, pad = _apply_same_padding(x, pool_size, strides, "channels_first", "pooling")
        out = torch.nn.functional.max_pool2d(x, kernel_size=pool_size, stride=strides, padding=pad)
        return out.permute(0, 2, 3, 1)

    max_pool.__wrapped__ = original
    return max_pool


def _make_bn_call(original, fused_train, is_backend_tensor):
    """``BatchNormalization.call`` that hands training calls to ``fused_train(layer, x)``.

    ``fused_train`` returns the normalised output, the batch mean and the *biased* batch
    variance; the moving statistics then follow Keras' rule (momentum, biased variance). Every
    call it cannot take (inference, masks, renorm, synchronized, no scale/offset, one value per
    channel, inputs it was not written for) goes to Keras' own ``call``.
    """

    def call(self, inputs, training=None, mask=None):
        if not (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and not self.synchronized
            and self.scale
            and self.center
            and is_backend_tensor(inputs, self.axis)
        ):
            return original(self, inputs, training=training, mask=mask)
        from keras import ops

        out, batch_mean, variance = fused_train(self, inputs)
        m = self.momentum
        dtype = batch_mean.dtype
        self.moving_mean.assign(ops.cast(self.moving_mean, dtype) * m + batch_mean * (1.0 - m))
        self.moving_variance.assign(
            ops.cast(self.moving_variance, dtype) * m + variance * (1.0 - m)
        )
        return ops.cast(out, self.compute_dtype)

    call.__wrapped__ = original
    return call


def _is_torch_tensor(inputs, axis: int | None = None) -> bool:
    """Whether this module's PyTorch kernels may take ``inputs``: a torch tensor with data (not
    on the meta device), outside torch.compile (``jit_compile=True``), which gets Keras' own
    forms: inductor fuses their elementwise ops itself, and it failed on these kernels (a
    symbolic batch size against the channels-last views and native_batch_norm's rows: "cannot
    determine truth value of Relational"; the backward of an edge padding: "expected ...
    stride")."""
    import torch

    return (
        isinstance(inputs, torch.Tensor)
        and inputs.device.type != "meta"
        and not torch.compiler.is_compiling()
    )


def _torch_bn_train(layer, inputs):
    """Training-mode batch normalisation of a channels-last torch tensor, Keras' arithmetic.

    The batch mean is subtracted first (outside autograd), then PyTorch's fused kernel
    (``native_batch_norm`` on ``(rows, channels)``, its channels-last path) normalises the
    centred values: its ``x * scale + (beta - mean * scale)`` form, which loses digits where a
    channel's mean dwarfs its spread, loses none once the mean is about zero. The gradient needs
    no term for the subtracted mean: a normalisation's input gradient sums to zero over the
    batch in every channel. Returns the output, the batch mean (the subtracted mean plus the
    kernel's mean of the centred values) and the biased variance (from the kernel's
    ``1 / sqrt(var + eps)``, in float64).
    """
    import torch
    from keras import ops

    x = ops.cast(
        inputs, "float32" if inputs.dtype in (torch.float16, torch.bfloat16) else inputs.dtype
    )
    axis = layer.axis % x.ndim
    channels_last = x.movedim(axis, -1) if axis != x.ndim - 1 else x
    shape = channels_last.shape
    rows = channels_last.reshape(-1, shape[-1])
    with torch.no_grad():
        shift = rows.mean(0)
    out, mean, invstd = torch.native_batch_norm(
        rows - shift,
        ops.cast(layer.gamma, x.dtype),
        ops.cast(layer.beta, x.dtype),
        None,
        None,
        True,
        0.0,
        layer.epsilon,
    )
    with torch.no_grad():
        batch_mean = shift + mean
        variance = (invstd.double().reciprocal().square() - layer.epsilon).to(x.dtype)
    out = out.reshape(shape)
    return (out.movedim(-1, axis) if axis != x.ndim - 1 else out), batch_mean, variance


def _is_tf_nhwc_tensor(inputs, axis: int) -> bool:
    import tensorflow as tf

    # TensorFlow's fused kernel takes 4-D NHWC (and NCHW only on GPUs) float inputs with a
    # known channel count.
    return (
        tf.is_tensor(inputs)
        and inputs.shape.rank == 4
        and axis % 4 == 3
        and inputs.shape[3] is not None
        and inputs.dtype in (tf.float16, tf.bfloat16, tf.float32)
    )


def _tf_bn_train(layer, inputs):
    import tensorflow as tf
    from keras import ops

    x = tf.cast(inputs, tf.float32)
    out, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(
        x,
        ops.cast(layer.gamma, "float32"),
        ops.cast(layer.beta, "float32"),
        epsilon=layer.epsilon,
        data_format="NHWC",
        is_training=True,
    )
    # The kernel returns the unbiased batch variance (it normalises with the biased one; with
    # one value per channel it returns 0). The batch size may be known only when it runs.
    count = tf.cast(tf.size(x, out_type=tf.int64) // tf.shape(x, out_type=tf.int64)[3], tf.float32)
    variance = batch_var * (tf.maximum(count - 1.0, 0.0) / count)
    return out, batch_mean, variance


def main() -> None:
    """Prints the settings ``default_settings`` picks for this machine's backend."""
    backend = _keras_backend()
    s = default_settings(backend)
    print(f"backend={backend} device={current_device(backend)} {describe(s)}")
    for line in s["why"]:
        print(f"  - {line}")


if __name__ == "__main__":
    main()
