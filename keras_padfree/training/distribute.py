"""Distribution and precision settings for training on one or many devices.

* TensorFlow backend: ``"mirrored"`` (``tf.distribute.MirroredStrategy`` over the GPUs, else over
  all logical CPUs), ``"multi_worker"`` (``MultiWorkerMirroredStrategy``; needs ``TF_CONFIG``),
  ``"tpu"`` (``TPUStrategy``).
* JAX backend: ``"data_parallel"`` (``keras.distribution.DataParallel`` over all devices; for CPU
  testing start Python with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).
* ``"none"``: the default device.
"""

import contextlib
import json
import os

import keras

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "check_precision",
    "check_strategy",
    "initialize_devices",
    "set_cpu_devices",
    "set_precision",
    "setup_distribution",
]

STRATEGIES = {
    "tensorflow": ("none", "mirrored", "multi_worker", "tpu"),
    "jax": ("none", "data_parallel"),
    "torch": ("none",),
}
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def check_strategy(name):
    """Raises a ValueError unless ``name`` is a strategy of the current backend (no side effect)."""
    backend = keras.backend.backend()
    allowed = STRATEGIES.get(backend, ("none",))
    if name not in allowed:
        raise ValueError(
            f"Argument `distribute` must be one of {allowed} on the {backend} "
            f"backend. Received: distribute={name!r}."
        )


def check_precision(policy):
    """Raises a ValueError unless ``policy`` is one of :data:`PRECISIONS`."""
    if policy not in PRECISIONS:
        raise ValueError(
            f"Argument `mixed_precision` must be one of {PRECISIONS}. "
            f"Received: mixed_precision={policy!r}."
        )


def initialize_devices():
    """Lists the devices once, which initialises the runtimes (and prints their start-up log).

    TensorFlow's is initialised on every backend: the input pipeline is ``tf.data``.
    """
    import tensorflow as tf

    devices = tf.config.list_logical_devices()
    if keras.backend.backend() == "jax":
        import jax

        devices = jax.devices()
    return devices


def set_cpu_devices(n):
    """Splits the CPU into ``n`` logical devices (TensorFlow; call before any TF op runs)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"Argument `cpu_devices` must be an int >= 1. Received: {n!r}.")
    if n == 1 or keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
    )


def set_precision(policy):
    """Sets the global dtype policy: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``."""
    check_precision(policy)
    keras.mixed_precision.set_dtype_policy(policy)


def setup_distribution(name, tpu_address=None):
    """Returns ``(scope, num_replicas, needs_even_batches)`` for the strategy ``name``.

    Raises:
        ValueError: the strategy does not exist for the current backend, or its environment
            (``TF_CONFIG``, devices) is missing.
    """
    check_strategy(name)
    backend = keras.backend.backend()
    if name == "none":
        return contextlib.nullcontext(), 1, False
    if backend == "jax":
        devices = keras.distribution.list_devices()
        if len(devices) < 2:
            raise ValueError(
                "distribute='data_parallel' needs at least 2 devices; JAX sees "
                f"{len(devices)}. On CPU set XLA_FLAGS=--xla_force_host_platform_device_count=2."
            )
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), len(devices), True
    import tensorflow as tf

    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    elif name == "multi_worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "distribute='multi_worker' needs the TF_CONFIG environment variable "
                "(cluster spec and this worker's task), see "
                "https://www.tensorflow.org/guide/distributed_training."
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}. Received: {config!r}.") from e
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    return strategy.scope(), strategy.num_replicas_in_sync, name == "tpu"
