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


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="LiteRT conversion")
def test_operator_profile_ties_every_xnnpack_operator_to_its_layer():
    from keras_padfree import layers

    latency = _latency_module()
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 1, name="expand")(inp)
    x = layers.PaddingFreeDWConv(name="down")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(3, name="classifier")(x)
    model = keras.Model(inp, out, name="tiny")
    content = latency.convert(model, 16)
    ((rows, run_us),) = latency.op_profiles([content], 1, rounds=2, runs_per_round=3, warmup=1)
    assert run_us > 0 and all(r["us"] >= 0 for r in rows)
    # Every operator is tied to a graph op of a layer of the model.
    # (the op that writes the model's output is named after the signature: "(output)")
    assert {r["layer"] for r in rows} <= {"expand", "down", "pool", "classifier", "(output)"}
    assert {"expand", "down", "(output)"} <= {r["layer"] for r in rows}
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    summary = latency.summarize_profile(rows, run_us, kinds)
    assert summary["operators"] == len(rows)
    assert summary["parts_us"]["PF shortcut"] >= 0 and summary["parts_us"]["downsampling"] >= 0
    assert {r["part"] for r in rows if r["layer"] == "down"} <= {"downsampling", "PF shortcut"}
    assert "PF shortcut" in {r["part"] for r in rows if r["layer"] == "down"}
