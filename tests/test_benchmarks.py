"""The benchmark scripts' helpers (the benchmarks themselves run outside the test suite)."""

import importlib.util
import os

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _latency_module():
    spec = importlib.util.spec_from_file_location(
        "latency_benchmark", os.path.join(ROOT, "benchmarks", "latency.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stem_model_cuts_a_zoo_model_after_its_stem_and_rejects_a_model_without_one():
    from keras_padfree import applications

    latency = _latency_module()
    stem = latency.stem_model(applications.create_model("ghostnet_pf_cifar"))
    assert [layer.name for layer in stem.layers[1:]] == ["stem"]
    inp = keras.Input((8, 8, 3))
    plain = keras.Model(inp, keras.layers.Conv2D(4, 3, name="features")(inp), name="plain")
    with pytest.raises(
        ValueError, match="Argument `model` must start with stem layers.*'features'"
    ):
        latency.stem_model(plain)
