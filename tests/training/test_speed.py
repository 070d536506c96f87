"""keras_padfree.training.speed: the settings per backend and the faster kernels (same values)."""

import keras
import numpy as np
import pytest

from keras_padfree.training import speed

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _restore_kernels():
    yield
    speed.uninstall_fast_kernels()


@pytest.mark.all_backends
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_default_settings_name_every_choice_and_its_reason(backend, device):
    s = speed.default_settings(backend, device)
    assert set(s) >= {
        "jit_compile",
        "steps_per_execution",
        "fast_kernels",
        "dtype_policy",
        "intra_op_threads",
        "inter_op_threads",
        "why",
    }
    assert s["why"] and all(isinstance(line, str) and line for line in s["why"])
    assert "jit_compile=" in speed.describe(s)
    if device == "cpu":
        # Measured (benchmarks/results/train_throughput.md): XLA:CPU trains slower than
        # TensorFlow's kernels; JAX is always compiled; PyTorch eager.
        assert s["jit_compile"] is {"tensorflow": False, "jax": True, "torch": False}[backend]
        # TensorFlow's fused BatchNormalization where its oneDNN kernels run (fit.py turns them
        # on; this test process leaves TensorFlow's default, off on CPUs without AVX512-VNNI).
        onednn = backend == "tensorflow" and speed.tensorflow_onednn_enabled()
        assert s["fast_kernels"] is (backend == "torch" or onednn)
        assert s.get("onednn", False) is onednn
        assert s["dtype_policy"] == "float32"


@pytest.mark.all_backends
def test_default_settings_refuse_unknown_names():
    with pytest.raises(ValueError, match="backend 'mxnet'"):
        speed.default_settings("mxnet", "cpu")
    with pytest.raises(ValueError, match="device 'tpu'"):
        speed.default_settings("jax", "tpu")


@pytest.mark.all_backends
def test_fast_kernels_can_be_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("KERAS_PADFREE_FAST_KERNELS", "0")
    assert speed.install_fast_kernels(BACKEND) == []
    assert speed.fast_kernels_installed() == []


def _grouped(x, w, strides, padding):
    from jax import lax

    c, m = w.shape[2], w.shape[3]
    return lax.conv_general_dilated(
        x,
        w.reshape(w.shape[0], w.shape[1], 1, c * m),
        strides,
        padding.upper(),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=c,
    )


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "size,k,stride,padding,mult",
    [
        (9, 3, 1, "same", 1),
        (9, 3, 2, "same", 1),
        (8, 3, 2, "same", 1),
        (8, 5, 2, "same", 1),
        (9, 3, 2, "valid", 1),
        (10, 5, 2, "valid", 1),
        (7, 3, 1, "same", 2),
        (6, 3, 2, "valid", 3),
    ],
)
def test_jax_depthwise_taps_equal_the_grouped_convolution_and_its_gradients(
    size, k, stride, padding, mult
):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(size * 10 + k)
    x = jnp.asarray(rng.normal(size=(2, size, size + 1, 4)).astype("float32"))
    w = jnp.asarray(rng.normal(size=(k, k, 4, mult)).astype("float32"))
    g = jnp.asarray(
        rng.normal(size=_grouped(x, w, (stride, stride), padding).shape).astype("float32")
    )

    def loss(f):
        return lambda x, w: jnp.sum(f(x, w, (stride, stride), padding) * g)

    ref = _grouped(x, w, (stride, stride), padding)
    out = speed.depthwise_taps(x, w, (stride, stride), padding)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(
        jax.grad(loss(speed.depthwise_taps), (0, 1))(x, w), jax.grad(loss(_grouped), (0, 1))(x, w)
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.all_backends
def test_keras_jax_depthwise_conv_is_replaced_and_restored():
    pytest.importorskip("jax")
    from keras.src.backend.jax import nn as jax_nn

    original = jax_nn.depthwise_conv
    assert speed.install_fast_kernels("jax") == []  # opt-in: not a default kernel
    assert jax_nn.depthwise_conv is original
    assert "jax.depthwise_conv" in speed.install_fast_kernels("jax", speed.KERNELS["jax"])
    assert jax_nn.depthwise_conv is not original
    assert speed.install_fast_kernels("jax", speed.KERNELS["jax"]) == ["jax.depthwise_conv"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 8, 6)).astype("float32")
    w = rng.normal(size=(3, 3, 6, 1)).astype("float32")
    fast = jax_nn.depthwise_conv(x, w, 2, "same")
    dilated = jax_nn.depthwise_conv(x, w, 1, "same", dilation_rate=2)  # falls back
    speed.uninstall_fast_kernels()
    assert jax_nn.depthwise_conv is original
    np.testing.assert_allclose(fast, original(x, w, 2, "same"), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dilated, original(x, w, 1, "same", dilation_rate=2), rtol=1e-6)


def _torch_conv_cases():
    return [
        ((2, 9, 9, 6), (3, 3, 6, 8), 2, "same"),
        ((2, 8, 8, 6), (3, 3, 6, 8), 2, "same"),
        ((2, 8, 8, 6), (1, 1, 6, 4), 1, "valid"),
        ((2, 8, 7, 6), (5, 5, 1, 6), 2, "same"),
        ((2, 8, 8, 6), (3, 3, 3, 8), 1, "same"),
    ]  # the last one: 2 groups


@pytest.mark.all_backends
@pytest.mark.parametrize("xs,ws,stride,padding", _torch_conv_cases())
def test_torch_conv_reads_channels_last_memory_and_equals_keras(xs, ws, stride, padding):
    torch = pytest.importorskip("torch")
    from keras.src.backend.torch import nn as torch_nn

    original = torch_nn.conv
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=xs).astype("float32")
    w0 = rng.normal(size=ws).astype("float32")
    results = []
    for fast in (False, True):
        if fast:
            speed.install_fast_kernels("torch")
            assert torch_nn.conv is not original
        x = torch.tensor(x0, requires_grad=True)
        w = torch.tensor(w0, requires_grad=True)
        y = torch_nn.conv(x, w, stride, padding)
        (y * torch.cos(torch.arange(y.numel()).reshape(y.shape))).sum().backward()
        results.append([y.detach().numpy(), x.grad.numpy(), w.grad.numpy()])
        speed.uninstall_fast_kernels()
    assert torch_nn.conv is original
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-4)


@pytest.mark.all_backends
@pytest.mark.parametrize(
    "xs,pool,stride,padding",
    [
        ((2, 9, 9, 6), 3, 2, "same"),  # symmetric padding: torch pads in the kernel
        ((2, 8, 8, 6), 3, 2, "same"),  # one row/column after: an edge padding first
        ((2, 8, 7, 6), 3, 1, "same"),
        ((2, 8, 8, 6), 2, 2, "valid"),
        ((2, 9, 9, 6), 3, 2, "valid"),
    ],
)
def test_torch_max_pool_reads_channels_last_memory_and_equals_keras(xs, pool, stride, padding):
    """Max pooling is exact: the same bits and the same gradient as Keras' own, including ties
    (a ReLU's zeros: the gradient goes to the same cell of the window)."""
    torch = pytest.importorskip("torch")
    from keras.src.backend.torch import nn as torch_nn

    original = torch_nn.max_pool
    rng = np.random.default_rng(4)
    x0 = np.maximum(rng.normal(size=xs), 0).astype("float32")
    results = []
    for fast in (False, True):
        if fast:
            assert speed.install_fast_kernels("torch", ["torch.max_pool"]) == ["torch.max_pool"]
            assert torch_nn.max_pool is not original
        x = torch.tensor(x0, requires_grad=True)
        y = torch_nn.max_pool(x, pool, stride, padding)
        (y * torch.cos(torch.arange(y.numel()).reshape(y.shape))).sum().backward()
        results.append([y.detach().numpy(), x.grad.numpy(), y.is_contiguous()])
        speed.uninstall_fast_kernels()
    assert torch_nn.max_pool is original
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert results[1][2], "the output should be NHWC-contiguous memory"


def _bn_train_call(bn, x0, g):
    """``bn(x, training=True)``: the output and the x/gamma/beta gradients of ``sum(y * g)``."""
    if BACKEND == "torch":
        import torch

        x = torch.tensor(x0, requires_grad=True)
        y = bn(x, training=True)
        (y * torch.tensor(g)).sum().backward()
        return [y.detach(), x.grad, bn.gamma.value.grad, bn.beta.value.grad]
    import tensorflow as tf

    x = tf.convert_to_tensor(x0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bn(x, training=True)
        loss = tf.reduce_sum(y * g)
    return [y, *tape.gradient(loss, [x, bn.gamma.value, bn.beta.value])]


@pytest.mark.all_backends
@pytest.mark.skipif(BACKEND == "jax", reason="no BatchNormalization kernel for JAX")
@pytest.mark.parametrize("shape", [(16, 7, 7, 24), (8, 5, 12), (3, 1, 1, 10), (1, 1, 1, 6)])
@pytest.mark.parametrize("graph", [False, True])
def test_fused_batch_normalization_in_training_equals_keras(shape, graph):
    """The fused BatchNormalization kernels (PyTorch's, TensorFlow's) against Keras' own: output,
    gradients, moving statistics, inference after the update; eagerly and (TensorFlow) inside a
    ``tf.function`` that does not know the batch size."""
    if graph and BACKEND != "tensorflow":
        pytest.skip("graphs with an unknown batch size are TensorFlow's")
    rng = np.random.default_rng(2)
    x0 = (
        rng.normal(size=shape) * rng.uniform(0.1, 3, shape[-1]) + rng.uniform(-1, 1, shape[-1])
    ).astype("float32")
    g = np.cos(np.arange(np.prod(shape))).reshape(shape).astype("float32")
    gamma = rng.uniform(0.5, 2, shape[-1]).astype("float32")
    kernel = f"{BACKEND}.batch_normalization"
    outs = []
    for fast in (False, True):
        bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
        bn.build(shape)
        bn.gamma.assign(gamma)
        bn.moving_mean.assign(np.full(shape[-1], 0.5, "float32"))
        if fast:
            assert speed.install_fast_kernels(BACKEND, [kernel]) == [kernel]
        if graph:
            import tensorflow as tf

            call = tf.function(
                lambda x, bn=bn: _bn_train_call(bn, x, g),
                input_signature=[tf.TensorSpec((None, *shape[1:]), "float32")],
            )
            results = call(x0)
        else:
            results = _bn_train_call(bn, x0, g)
        outs.append(
            [
                *[keras.ops.convert_to_numpy(t) for t in results],
                keras.ops.convert_to_numpy(bn.moving_mean),
                keras.ops.convert_to_numpy(bn.moving_variance),
                keras.ops.convert_to_numpy(bn(x0, training=False)),
            ]
        )
        speed.uninstall_fast_kernels()
    for name, a, b in zip(
        ["y", "dx", "dgamma", "dbeta", "moving_mean", "moving_var", "inference"], *outs
    ):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-5, err_msg=name)


@pytest.mark.all_backends
def test_torch_batch_normalization_keeps_its_digits_where_the_mean_dwarfs_the_spread():
    """Centred statistics and normalisation: a channel at 100 +- 0.01 (Keras' ``E[x^2] - E[x]^2``
    in float32 loses its variance there) against a float64 computation."""
    torch = pytest.importorskip("torch")
    if BACKEND != "torch":
        pytest.skip("the PyTorch kernel runs on the torch backend")
    rng = np.random.default_rng(5)
    x0 = (100.0 + 0.01 * rng.normal(size=(32, 4, 4, 3))).astype("float32")
    g = np.cos(np.arange(x0.size)).reshape(x0.shape)
    x64 = x0.astype("float64")
    mean, var = x64.mean((0, 1, 2)), x64.var((0, 1, 2))
    xhat = (x64 - mean) / np.sqrt(var + 1e-3)
    dx64 = (g - g.mean((0, 1, 2)) - xhat * (g * xhat).mean((0, 1, 2))) / np.sqrt(var + 1e-3)
    bn = keras.layers.BatchNormalization(momentum=0.0, epsilon=1e-3)  # moving = batch statistics
    bn.build(x0.shape)
    speed.install_fast_kernels("torch", ["torch.batch_normalization"])
    try:
        x = torch.tensor(x0, requires_grad=True)
        y = bn(x, training=True)
        (y * torch.tensor(g, dtype=torch.float32)).sum().backward()
    finally:
        speed.uninstall_fast_kernels()
    # The mean of float32 values at 100 rounds by ~4e-6, 1.2e-4 after the scaling by
    # 1/sqrt(var + eps) ~ 30: measured 1.7e-4; normalising as x * scale + (beta - mean * scale),
    # PyTorch's own kernel's form: 3.7e-4.
    np.testing.assert_allclose(y.detach().numpy(), xhat, atol=2.5e-4)
    np.testing.assert_allclose(x.grad.numpy(), dx64, atol=1e-5 * np.abs(dx64).max())
    np.testing.assert_allclose(bn.moving_variance.numpy(), var, rtol=1e-3)


@pytest.mark.all_backends
def test_torch_kernels_train_under_torch_compile():
    """``jit_compile=True`` on the torch backend (torch.compile) with every kernel installed: the
    kernels hand compiled graphs Keras' own forms (inductor failed on the channels-last views and
    on native_batch_norm over a symbolic batch)."""
    if BACKEND != "torch":
        pytest.skip("torch.compile is the torch backend's")
    from keras import layers

    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(3, 2, padding="same")(layers.ReLU()(x))
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(6)
    x0 = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    y0 = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    speed.install_fast_kernels("torch", speed.KERNELS["torch"])
    try:
        losses = []
        for jit_compile in (False, True):  # eager first: the kernels exist before tracing
            model.compile(optimizer="sgd", loss="categorical_crossentropy", jit_compile=jit_compile)
            losses += [float(model.train_on_batch(x0, y0)) for _ in range(1 + jit_compile)]
    finally:
        speed.uninstall_fast_kernels()
    assert np.all(np.isfinite(losses)), losses


@pytest.mark.all_backends
def test_unknown_kernel_names_are_refused():
    with pytest.raises(ValueError, match="Unknown kernels for torch: \\['torch.pool'\\]"):
        speed.install_fast_kernels("torch", ["torch.pool"])
    assert speed.fast_kernels_installed() == []


@pytest.mark.all_backends
def test_a_zoo_train_step_with_the_fast_kernels_stays_within_float32_rounding(monkeypatch):
    """One SGD step of a zoo model: Keras' kernels and the fast ones against a float64 step.

    On PyTorch the float64 step computes in float64 throughout: there (and on JAX) Keras' type
    promotion maps float64 to float32 (``BIT64_TO_BIT32_DTYPE``, JAX's default without x64), so
    its BatchNormalization computed float64 inputs in float32 and the "float64" step shared
    Keras' own float32 rounding there (4.4e-6 from a true float64 step, the median of 44 seeds
    on PyTorch), which made Keras' own kernels look closer to float64 than they are.

    The default kernels must be as close to float64 as Keras' own (PyTorch's convolution kernel
    gives the same bits: the same oneDNN call, no copies). The opt-in kernels add up in another
    order: the same loss, weights within 1e-3 (measured: JAX's depthwise sums 1.3e-4, Keras' own
    9e-7), which is why they are not default kernels.
    """
    from keras_padfree.applications import create_model

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 4)]

    def step(policy, kernels, start):
        if kernels is not None:
            assert speed.install_fast_kernels(kernels=kernels) == sorted(kernels)
        keras.config.set_dtype_policy(policy)
        try:
            # BSConv-U ResNet-20 PF: depthwise convolutions everywhere, padding-free downsampling;
            # no dropout; half the layers of a MobileNetV3 (JAX compiles the step three times).
            # On TensorFlow its original: TensorFlow's float32 and float64 steps of the PF model
            # differ by 4.8e-4 whatever the kernels (Eigen or oneDNN, Keras' BN or the fused
            # one), all of it through the hybrid stem's input gradient (2e-2 relative there,
            # 4e-6 everywhere else: its max-pool branch); JAX and PyTorch: 7e-7.
            name = (
                "bsconv_resnet20_cifar" if BACKEND == "tensorflow" else "bsconv_resnet20_pf_cifar"
            )
            m = create_model(name, classes=10)
            m.compile(
                optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy"
            )
            start = start or m.get_weights()
            m.set_weights([w.astype(policy) for w in start])
            loss = float(m.train_on_batch(x.astype(policy), y.astype(policy)))
            return start, loss, m.get_weights()
        finally:
            keras.config.set_dtype_policy("float32")
            speed.uninstall_fast_kernels()

    keras.utils.set_random_seed(0)
    start, l32, w32 = step("float32", None, None)
    if BACKEND == "jax":  # JAX computes in float64 only with x64 on (else: float32, silently)
        import jax

        jax.config.update("jax_enable_x64", True)
    if BACKEND == "torch":  # the backend whose BatchNormalization kernel is judged here
        # (Not on JAX: under the suite's XLA_FLAGS, --xla_backend_optimization_level=0, its
        # float64 step with BatchNormalization in float64 lands 1.3e-4 from the same step at the
        # default level, which agrees with float32 to 9e-7; JAX has no default kernel to judge.)
        from keras.src.backend.common import dtypes as keras_dtypes

        monkeypatch.setitem(keras_dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")
    try:
        _, l64, w64 = step("float64", None, start)
    finally:
        monkeypatch.undo()
        if BACKEND == "jax":
            jax.config.update("jax_enable_x64", False)
    assert all(w.dtype == np.float64 for w in w64)
    keras_err = max(float(np.max(np.abs(a - b))) for a, b in zip(w32, w64))
    assert keras_err < 1e-5, keras_err
    if speed.DEFAULT_KERNELS[BACKEND]:
        _, lfast, wfast = step("float32", speed.DEFAULT_KERNELS[BACKEND], start)
        assert lfast == pytest.approx(l64, rel=1e-5)
        fast_err = max(float(np.max(np.abs(a - b))) for a, b in zip(wfast, w64))
        assert fast_err < 3 * keras_err + 1e-6, (keras_err, fast_err)
    opt_in = tuple(k for k in speed.KERNELS[BACKEND] if k not in speed.DEFAULT_KERNELS[BACKEND])
    if opt_in:
        _, lopt, wopt = step("float32", speed.KERNELS[BACKEND], start)
        assert lopt == pytest.approx(l64, rel=1e-5)
        opt_err = max(float(np.max(np.abs(a - b))) for a, b in zip(wopt, w64))
        assert opt_err < 1e-3, (keras_err, opt_err)
