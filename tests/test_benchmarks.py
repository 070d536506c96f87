"""The benchmark scripts' helpers (the benchmarks themselves run outside the test suite)."""

import importlib.util
import os

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark_module(filename):
    """A script of benchmarks/ as a module (its folder on sys.path, as when it runs)."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        os.path.splitext(filename)[0], os.path.join(ROOT, "benchmarks", filename)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _latency_module():
    return _benchmark_module("latency.py")


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


# --- benchmarks/train_profile.py --------------------------------------------------------------


def _train_profile_module():
    return _benchmark_module("train_profile.py")


def test_op_paths_are_tied_to_the_innermost_layer_they_name():
    tp = _train_profile_module()
    names = {"block3_bn": "batch norm", "block3_dw": "depthwise convolution", "se": "other"}
    # JAX name stacks: transformations wrap the layer names.
    assert tp._layer_kind("jit(train_step)/transpose(jvp(block3_bn))/mul", names) == "batch norm"
    assert tp._layer_kind("jit(train_step)/jvp(model)/jvp(block3_dw)/conv", names) == (
        "depthwise convolution"
    )
    # TensorFlow op names: reused names get "_1".
    assert tp._layer_kind("gradient_tape/model_1/block3_bn_1/moments/sub", names) == "batch norm"
    assert tp._layer_kind("block3_dw/se_1/mul", names) == "other"  # the innermost one
    assert tp._layer_kind("sgd/AssignSubVariableOp", names) is None


HLO = "\n".join(
    [
        "HloModule jit_train_step, entry_computation_layout={()->f32[]}",
        "",
        "%fused_computation.7 (param_0: f32[8,6,6,16], param_1: f32[3,3,1,16]) -> f32[8,4,4,16] {",
        "  %param_0 = f32[8,6,6,16]{3,2,1,0} parameter(0)",
        "  %param_1 = f32[3,3,1,16]{3,2,1,0} parameter(1)",
        "  ROOT %convolution.3 = f32[8,4,4,16]{3,2,1,0} convolution(%param_0, %param_1), "
        "window={size=3x3}, dim_labels=b01f_01io->b01f, feature_group_count=16, "
        'metadata={op_name="jit(train_step)/jvp(block1_dw)/conv_general_dilated"}',
        "}",
        "",
        "ENTRY %main.9 (a: f32[8,6,6,16], b: f32[3,3,1,16]) -> (f32[8,4,4,16], f32[16,3,3,16]) {",
        "  %a = f32[8,6,6,16]{3,2,1,0} parameter(0)",
        "  %b = f32[3,3,1,16]{3,2,1,0} parameter(1)",
        "  %ynn_fusion.2 = f32[8,4,4,16]{3,2,1,0} fusion(%a, %b), kind=kCustom, "
        "calls=%fused_computation.7",
        "  %convolution.5 = f32[16,3,3,16]{3,2,1,0} convolution(%a, %a), window={size=4x4}, "
        "dim_labels=f01b_i01o->01bf",
        "  ROOT %tuple.1 = (f32[8,4,4,16]{3,2,1,0}, f32[16,3,3,16]{3,2,1,0}) "
        "tuple(%ynn_fusion.2, %convolution.5)",
        "}",
        "",
    ]
)


def test_hlo_instructions_name_their_layer_and_grouping(tmp_path):
    tp = _train_profile_module()
    (tmp_path / "module_0042.jit_train_step.cpu_after_optimizations.txt").write_text(HLO)
    (tmp_path / "module_0001.jit_other.cpu_after_optimizations.txt").write_text("")
    hlo = tp._hlo_instructions(str(tmp_path), "jit_train_step")
    fusion = hlo["ynn_fusion.2"]
    # A fusion without metadata is named after its convolution, and knows its grouping.
    assert fusion["opcode"] == "fusion" and fusion["contains"] == "convolution"
    assert fusion["groups"] == 16
    assert fusion["op_name"] == "jit(train_step)/jvp(block1_dw)/conv_general_dilated"
    assert hlo["tuple.1"]["opcode"] == "tuple"
    # The dense C -> C convolution XLA computes a depthwise weight gradient with: depthwise.
    weight_gradient = hlo["convolution.5"]
    assert weight_gradient["op_name"] == "" and weight_gradient["shape"] == "f32[16,3,3,16]"
    assert tp._unnamed_kind(weight_gradient, "convolution") == "depthwise convolution"
    assert tp._unnamed_kind({"shape": "f32[3,3,96,96]"}, None) == "depthwise convolution"
    assert tp._unnamed_kind({"shape": "f32[8,4,4,16]", "groups": 1}, "convolution") == (
        "convolution"
    )
    assert tp._unnamed_kind({"shape": "f32[8,4,4,16]"}, None) == tp.UNNAMED
    assert tp._hlo_instructions(str(tmp_path), "jit_absent") == {}


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.profiler")
def test_tensorflow_profile_attributes_kernels_to_layers_forward_and_backward():
    import numpy as np

    tp = _train_profile_module()
    inp = keras.Input((12, 12, 4))
    x = keras.layers.Conv2D(8, 1, name="expand")(inp)
    x = keras.layers.BatchNormalization(name="expand_bn")(x)
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)
    x = keras.layers.ReLU(name="act")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inp, keras.layers.Dense(3, name="classifier")(x))
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).uniform(size=(4, 12, 12, 4)).astype("float32")
    y = np.zeros((4, 3), "float32")
    model.train_on_batch(x, y)
    result = tp._profile_tensorflow(lambda: model.train_on_batch(x, y), 2, model)
    kinds = result["kinds"]
    for kind in ("convolution", "depthwise convolution", "batch norm", "classifier (dense)"):
        forward, backward = kinds[kind]
        assert forward > 0 and backward > 0, (kind, kinds)
    assert result["kernel_ms"] == pytest.approx(sum(map(sum, kinds.values())), abs=0.05)
    ops = {op for op, _, _ in result["top_ops"]}
    assert "DepthwiseConv2dNativeBackpropFilter" in ops or "DepthwiseConv2dNative" in ops


def test_torch_profile_attributes_backward_kernels_through_autograd():
    torch = pytest.importorskip("torch")
    tp = _train_profile_module()
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 1),
        torch.nn.BatchNorm2d(8),
        torch.nn.Conv2d(8, 8, 3, groups=8),
        torch.nn.ReLU(),
    )
    x = torch.randn(4, 4, 12, 12)

    def step():
        net.zero_grad()
        net(x).square().mean().backward()

    result = tp._profile_torch(step, 2, native_model=net)
    kinds = result["kinds"]
    for kind in ("convolution", "depthwise convolution", "batch norm", "activation"):
        forward, backward = kinds[kind]
        assert forward > 0 and backward > 0, (kind, kinds)
    # The hooks are gone afterwards.
    assert not net[0]._forward_hooks and not net[0]._forward_pre_hooks


def test_map_sizes_are_paired_stage_by_stage_and_odd_small_sides_merged():
    latency = _latency_module()
    # ParC-MobileNetV2 at 32x32 (from a profile): orig writes a few tiny maps of odd sides.
    orig = [[32, 1559.0], [16, 521.5], [15, 11.0], [8, 1386.0], [7, 8.0], [4, 1213.0], [3, 1.0]]
    orig.append([0, 58.5])
    pf = [[32, 1754.0], [15, 476.0], [7, 1146.0], [5, 1.0], [3, 942.0], [0, 64.0]]
    rows = latency._paired_levels(orig, pf)
    assert [(so, sq) for so, sq, _, _ in rows] == [(32, 32), (16, 15), (8, 7), (4, 3), (0, 0)]
    assert rows[1][2] == 532.5 and rows[2][3] == 1147.0  # merged into the nearest main side
    assert sum(r[2] for r in rows) == sum(us for _, us in orig)
    assert sum(r[3] for r in rows) == sum(us for _, us in pf)
    # Different numbers of main sides: each PF side goes to the nearest orig side.
    rows = latency._paired_levels([[32, 10.0], [16, 10.0], [0, 1.0]], [[30, 5.0], [0, 1.0]])
    assert [(so, sq, uq) for so, sq, _, uq in rows] == [(32, 30, 5.0), (16, 16, 0), (0, 0, 1.0)]


@pytest.mark.parametrize(
    "script, argv, message",
    [
        ("train_profile.py", ["--rows", "jax,cuda"], "unknown row 'cuda'"),
        ("train_profile.py", ["--steps", "0"], "--steps must be >= 1, got 0"),
        ("train_profile.py", ["--family", "ResNet"], "invalid choice: 'ResNet'"),
        ("export_time.py", ["--models", "ghostnet_pf"], "Received: ['ghostnet_pf']"),
        ("export_time.py", ["--models", ","], "Received: []"),
        ("export_time.py", ["--rounds", "0"], "expected an int >= 1. Received: 0"),
    ],
)
def test_benchmark_bad_arguments_are_an_error_line_and_exit_2(script, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _benchmark_module(script).parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err, err


def test_export_time_interleaves_the_routes_and_reports_their_ratio():
    et = _benchmark_module("export_time.py")
    calls = []
    ticks = iter(range(100))

    def convert(model, name, route):
        calls.append((name, route))

    times = et.time_routes({"a": None, "b": None}, 2, convert, clock=lambda: next(ticks) ** 3)
    assert calls == [
        ("a", "keras"),
        ("a", "constants"),
        ("b", "keras"),
        ("b", "constants"),
        ("a", "constants"),
        ("a", "keras"),
        ("b", "constants"),
        ("b", "keras"),
    ]
    # clock() is called before and after each conversion: k**3 -> (k+1)**3 takes 3k^2 + 3k + 1 s.
    assert times["a"] == {"keras": [1, 331], "constants": [19, 217]}
    (row_a, _) = et.summarize(times)
    assert row_a["keras_s"] == 166 and row_a["constants_s"] == 118
    assert row_a["ratio_keras_over_constants"] == 166 / 118
