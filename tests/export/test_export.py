"""LiteRT / ONNX export: parity with Keras, quantisation, the app sidecars, the converter core."""

import json
import os

import numpy as np
import pytest

from tests.export.conftest import TEST_MEAN
from tests.export.conftest import TEST_STD
from tests.export.conftest import calibrate_batchnorm
from tests.export.conftest import normalization_for
from tests.export.conftest import realistic
from tests.export.conftest import sample_images
from tests.export.conftest import sharpen_classifier
from tests.export.conftest import tiny_model
from tests.export.conftest import trained_on_digits

keras = pytest.importorskip("keras")
BACKEND = keras.backend.backend()
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _registry():
    from keras_padfree import applications

    return applications


def _representative_names():
    """One model per registered family: its padding-free variant (when it has one) with the fewest
    reference FLOPs at the smallest test input (depth, not parameters, drives conversion time)."""
    apps = _registry()
    best = {}
    for name in apps.list_models():
        info = apps.get_model_info(name)
        size = info.test_input_shape[0] * info.test_input_shape[1]
        rows = [r.flops for r in info.references] or [10**12]
        key = (info.variant != "pf", size, min(rows), name)
        if info.family not in best or key < best[info.family][0]:
            best[info.family] = (key, name)
    return sorted(name for _, name in best.values())


def _build(name, classes=5):
    info = _registry().get_model_info(name)
    model = _registry().create_model(name, input_shape=info.test_input_shape, classes=classes)
    return realistic(model)


# --- float32 parity ---------------------------------------------------------------------------


@pytest.mark.heavy
@pytest.mark.parametrize("name", _representative_names())
def test_representative_float32_parity(name, tmp_out):
    from keras_padfree import export

    model = _build(name)
    res = export.export_tflite(
        model, tmp_out / f"{name}.tflite", model_name=name, normalization=normalization_for(model)
    )
    assert res.parity["max_abs_diff"] <= 1e-4
    assert res.parity["criterion"] == "max_abs_diff" and res.parity["tolerance"] == 1e-4
    assert os.path.getsize(res.path) > 0
    interp = export.litert_interpreter(model_path=res.path)
    assert list(interp.get_input_details()[0]["shape"]) == [1, *model.input_shape[1:]]


@pytest.mark.large
@pytest.mark.parametrize("name", _registry().list_models())
def test_every_model_float32_parity(name, tmp_out):
    from keras_padfree import export

    info = _registry().get_model_info(name)
    keras.utils.set_random_seed(0)  # a failure must reproduce: the same weights on every run
    model = _registry().create_model(name)
    # BN statistics of the very images the parity check feeds: with random weights and statistics
    # from other images, the quadratic SE of cheap_mobilenetv3_imagenet overflowed to NaN in Keras
    # itself on one of them (a trained model's statistics keep its activations bounded).
    x = sample_images(model, 8, seed=0)
    calibrate_batchnorm(model, x)
    res = export.export_tflite(
        model,
        tmp_out / f"{name}.tflite",
        sample_inputs=x,
        model_name=name,
        normalization=normalization_for(model),
    )
    assert res.parity["sample_source"] == "sample_inputs"
    assert res.parity["max_abs_diff"] <= 1e-4
    meta = json.loads(open(res.metadata_path).read())
    assert meta["input"]["shape"] == [1, *info.input_shape]
    assert meta["num_classes"] == info.classes


# --- quantisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("quantization", ["float16", "dynamic", "int8"])
def test_quantized_tiny(quantization, tmp_out):
    import keras

    from keras_padfree import export
    from keras_padfree.export import _prepare
    from keras_padfree.export import metadata as md

    keras.utils.set_random_seed(0)  # a fixed random model: agreement must not depend on the draw
    model = sharpen_classifier(realistic(tiny_model()))
    norm = md.resolve_normalization("auto", model)
    calib = _prepare.synthetic_images((32, 32, 3), 64, norm, seed=7)
    res = export.export_tflite(
        model,
        tmp_out / f"q_{quantization}.tflite",
        quantization=quantization,
        representative_data=calib if quantization == "int8" else None,
        num_samples=16,
        dataset="cifar100",
    )
    meta = json.loads(open(res.metadata_path).read())
    assert meta["quantization"]["type"] == quantization
    if quantization == "float16":
        assert res.parity["max_abs_diff"] <= export.FLOAT16_TOLERANCE
    else:
        assert res.parity["top1_agreement"] >= export.MIN_TOP1_AGREEMENT[quantization]
    # The file really holds quantised tensors (the 32x64 "mix" kernel at least).
    dtypes = {
        np.dtype(t["dtype"]).name
        for t in export.litert_interpreter(model_path=res.path).get_tensor_details()
    }
    assert ("float16" if quantization == "float16" else "int8") in dtypes


def test_int8_io_has_quantization_params(tmp_out):
    from keras_padfree import export
    from keras_padfree.export import _prepare
    from keras_padfree.export import metadata as md

    model = sharpen_classifier(realistic(tiny_model()))
    calib = _prepare.synthetic_images((32, 32, 3), 64, md.resolve_normalization("auto", model))
    res = export.export_tflite(
        model,
        tmp_out / "io.tflite",
        quantization="int8",
        representative_data=calib,
        int8_io=True,
        num_samples=16,
    )
    meta = json.loads(open(res.metadata_path).read())
    assert meta["input"]["dtype"] == "int8" and meta["output"]["dtype"] == "int8"
    q = meta["input"]["quantization"]
    assert q["scale"] > 0 and -128 <= q["zero_point"] <= 127


@pytest.mark.large
@pytest.mark.parametrize("name", ["ghostnet_pf_cifar", "shufflenetv2_pf_cifar"])
def test_quantized_zoo(name, tmp_out):
    """float16, dynamic and int8 on two families, trained (3 epochs on the bundled digits): the
    export's own parity criteria on 128 held-out images, int8 calibrated on training images."""
    from keras_padfree import export

    path, train_images, test_images, normalization = trained_on_digits(name, tmp_out / "run")
    model = keras.saving.load_model(path)
    results = {}
    for quantization in ("float16", "dynamic", "int8"):
        try:
            res = export.export_tflite(
                model,
                tmp_out / f"{name}_{quantization}.tflite",
                quantization=quantization,
                representative_data=train_images[:200],
                num_calibration=200,
                sample_inputs=test_images[:128],
                model_name=name,
                normalization=normalization,
            )
            results[quantization] = res.parity
        except export.ParityError as e:
            results[quantization] = f"FAILED: {e}"
    print(name, json.dumps(results, indent=1))  # the measured parity, shown by `pytest -rP`
    assert all(isinstance(r, dict) for r in results.values()), results
    assert results["float16"]["max_abs_diff"] <= export.FLOAT16_TOLERANCE
    assert results["dynamic"]["top1_agreement"] >= export.MIN_TOP1_AGREEMENT["dynamic"]
    assert results["int8"]["top1_agreement"] >= export.MIN_TOP1_AGREEMENT["int8"]


# --- reload path (any backend), mixed precision ------------------------------------------------


@pytest.mark.all_backends
def test_export_from_current_backend(tmp_out):
    """Under JAX/PyTorch the model is saved to .keras and converted by a TensorFlow subprocess;
    the parity reference is computed in the model's own backend."""
    from keras_padfree import export

    model = realistic(tiny_model(classes=7))
    res = export.export_tflite(model, tmp_out / "tiny.tflite")
    assert res.parity["reference_backend"] == BACKEND
    assert res.parity["max_abs_diff"] <= 1e-4
    assert json.loads(open(res.metadata_path).read())["num_classes"] == 7


def test_mixed_precision_model_is_converted_from_float32_copy(tmp_out):
    from keras_padfree import export
    from keras_padfree.export import _prepare

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_model()
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("down1").compute_dtype == "float16"
    copy = _prepare.float32_copy(model)
    assert copy is not model
    assert all(layer.compute_dtype == "float32" for layer in copy._flatten_layers())
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(np.asarray(a, "float32"), b)
    res = export.export_tflite(model, tmp_out / "mixed.tflite")
    assert res.parity["max_abs_diff"] <= 1e-4


# --- failures ----------------------------------------------------------------------------------


def test_parity_failure_raises_and_writes_nothing(tmp_out):
    from keras_padfree import export

    model = realistic(tiny_model())
    path = tmp_out / "fail.tflite"
    # float16 weights cannot reproduce float32 outputs to 1e-9.
    with pytest.raises(export.ParityError, match="differs from Keras"):
        export.export_tflite(model, path, quantization="float16", tolerance=1e-9)
    assert not os.listdir(tmp_out)


def test_non_finite_keras_output_is_reported_as_such():
    from keras_padfree import export
    from keras_padfree.export import tflite

    ref = np.full((3, 4), 0.25, "float32")
    ref[1, 2] = np.nan
    with pytest.raises(export.ParityError, match=r"itself gives non-finite .*indices \[1\]"):
        tflite._check_parity(None, ref, ref.copy(), "softmax", None, None, "m")


def test_bad_arguments(tmp_out):
    from keras_padfree import export

    model = tiny_model()
    with pytest.raises(ValueError, match="quantization"):
        export.export_tflite(model, tmp_out / "a.tflite", quantization="int4")
    with pytest.raises(ValueError, match="path"):
        export.export_tflite(model, tmp_out / "a.lite")
    with pytest.raises(ValueError, match="representative_data"):
        export.export_tflite(model, tmp_out / "a.tflite", quantization="int8")
    with pytest.raises(ValueError, match="int8_io"):
        export.export_tflite(model, tmp_out / "a.tflite", int8_io=True)
    with pytest.raises(ValueError, match="model"):
        export.export_tflite(str(tmp_out / "missing.keras"), tmp_out / "a.tflite")
    with pytest.raises(ValueError, match="normalization"):
        export.export_tflite(model, tmp_out / "a.tflite", normalization="imagenet")
    with pytest.raises(ValueError, match="labels"):
        export.export_tflite(model, tmp_out / "a.tflite", labels=["a", "b"])
    (tmp_out / "dir.tflite").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        export.export_tflite(model, tmp_out / "dir.tflite")
    (tmp_out / "side.json").mkdir()  # the sidecar's place is taken by a folder
    with pytest.raises(ValueError, match="side.json' is a directory"):
        export.export_tflite(model, tmp_out / "side.tflite")
    (tmp_out / "corrupt.keras").write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="corrupt.keras' is not a .keras file"):
        export.export_tflite(str(tmp_out / "corrupt.keras"), tmp_out / "a.tflite")
    (tmp_out / "x.json").write_text(json.dumps({"model_file": "x.onnx"}))
    with pytest.raises(ValueError, match="x.json' is the sidecar of 'x.onnx'"):
        export.export_tflite(model, tmp_out / "x.tflite")
    (tmp_out / "notes.json").write_text("my notes")
    with pytest.raises(ValueError, match="notes.json' is a file that is not this model's sidecar"):
        export.export_tflite(model, tmp_out / "notes.tflite")
    assert sorted(os.listdir(tmp_out)) == [
        "corrupt.keras",
        "dir.tflite",
        "notes.json",
        "side.json",
        "x.json",
    ]
    assert os.listdir(tmp_out / "dir.tflite") == [] and os.listdir(tmp_out / "side.json") == []


# --- the normalisation, from the model ----------------------------------------------------------


def _chain_model(layers, channels=3):
    inp = keras.Input((4, 4, channels), name="image")
    x = inp
    for layer in layers:
        x = layer(x)
    x = keras.layers.Conv2D(2, 1, name="conv")(x)
    return keras.Model(inp, x)


def test_model_preprocessing_composes_the_chain_whatever_the_names():
    """The per-channel map read from the layers equals what the layers compute."""
    from keras_padfree.export import metadata as md

    layers = [
        keras.layers.Rescaling([0.5, 1.0, 2.0], offset=-3.0, name="a"),
        keras.layers.Normalization(mean=[1.0, -2.0, 0.5], variance=[4.0, 0.25, 1.0], name="b"),
        keras.layers.Rescaling(1 / 127.5, name="c"),
        keras.layers.Normalization(mean=0.25, variance=9.0, invert=True, name="d"),
    ]
    model = _chain_model(layers)
    pre = md.model_preprocessing(model)
    assert pre["layers"] == ["a", "b", "c", "d"]
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
    inner = keras.Model(model.input, model.get_layer("d").output)
    expected = np.asarray(keras.ops.convert_to_numpy(inner(x)))
    got = x * np.asarray(pre["scale"]) + np.asarray(pre["offset"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # ... and the mean/std form says the same: (x / 255 - mean) / std.
    alt = (x / 255.0 - np.asarray(pre["mean"])) / np.asarray(pre["std"])
    np.testing.assert_allclose(alt, expected, rtol=1e-5, atol=1e-5)


def test_model_preprocessing_only_a_chain_right_after_the_input():
    from keras_padfree.export import metadata as md

    assert md.model_preprocessing(tiny_model(preprocessing=False)) is None
    # A Rescaling after another layer is not preprocessing.
    later = _chain_model([keras.layers.Conv2D(3, 1), keras.layers.Rescaling(1 / 255.0)])
    assert md.model_preprocessing(later) is None
    # The input also feeding another branch: the model does not take only normalised pixels.
    inp = keras.Input((4, 4, 3))
    y = keras.layers.Add()([keras.layers.Rescaling(1 / 255.0)(inp), inp])
    assert md.model_preprocessing(keras.Model(inp, y)) is None
    # A Normalization over the pixels (not per channel) cannot be described per channel.
    per_pixel = _chain_model(
        [
            keras.layers.Normalization(
                axis=(1, 2, 3), mean=np.ones((4, 4, 3)), variance=np.ones((4, 4, 3))
            )
        ]
    )
    with pytest.raises(ValueError, match="per-channel"):
        md.model_preprocessing(per_pixel)


def test_normalization_comes_from_the_model_or_explicitly_from_the_user():
    from keras_padfree.export import metadata as md

    held = tiny_model()
    rec = md.resolve_normalization("auto", held)
    assert rec["source"] == "model" and rec["type"] == "in_model"
    assert rec["pixel_scale"] == 1.0 and rec["mean"] == [0.0] * 3 and rec["std"] == [1.0] * 3
    assert rec["value_range"] == [0.0, 255.0]
    inside = rec["model_preprocessing"]
    assert inside["layers"] == ["preprocessing_rescale", "preprocessing_normalize"]
    np.testing.assert_allclose(inside["mean"], TEST_MEAN, rtol=1e-6)
    np.testing.assert_allclose(inside["std"], TEST_STD, rtol=1e-6)
    with pytest.raises(ValueError, match="holds its preprocessing.*applied twice"):
        md.resolve_normalization({"mean": [0.5], "std": [0.2]}, held)
    with pytest.raises(ValueError, match="holds its preprocessing"):
        md.resolve_normalization("none", held)

    bare = tiny_model(preprocessing=False)
    with pytest.raises(ValueError, match="does not hold its preprocessing.*--mean and --std"):
        md.resolve_normalization("auto", bare)
    rec = md.resolve_normalization({"mean": [0.5], "std": [0.25, 0.5, 1.0]}, bare)
    assert rec["source"] == "user" and rec["type"] == "mean_std"
    assert rec["mean"] == [0.5, 0.5, 0.5] and rec["std"] == [0.25, 0.5, 1.0]
    assert rec["pixel_scale"] == 1 / 255 and rec["model_preprocessing"] is None
    assert rec["value_range"] == [-2.0, 2.0]
    assert rec["value_range_per_channel"] == [[-2.0, 2.0], [-1.0, 1.0], [-0.5, 0.5]]
    none = md.resolve_normalization("none", bare)
    assert none["source"] == "user" and none["mean"] == [0.0] * 3 and none["std"] == [1.0] * 3
    for bad in (
        {"mean": [0.5, 0.5], "std": [1.0]},
        {"mean": [0.5], "std": [0.0]},
        {"mean": [float("nan")], "std": [1.0]},
        {"mean": [0.5]},
    ):
        with pytest.raises(ValueError, match="normalization"):
            md.resolve_normalization(bad, bare)


def test_in_model_rescaling_means_raw_pixels():
    """PydMobileNet with include_preprocessing=True normalises [0, 255] pixels itself: the sidecar
    must not tell an app to divide by 255 first (nor the parity check feed [0, 1] images)."""
    from keras_padfree.export import metadata as md

    name = "pydmobilenet29_025_concat_pf_cifar"
    with_prep = _registry().create_model(name, include_preprocessing=True)
    norm = md.resolve_normalization("auto", with_prep)
    assert norm["pixel_scale"] == 1.0 and norm["value_range"] == [0.0, 255.0]
    pixels = np.arange(12, dtype="float32").reshape(2, 2, 3) * 20.0
    meta = {"input": {"normalization": norm}}
    np.testing.assert_array_equal(md.preprocess_pixels(pixels, meta), pixels)
    without = _registry().create_model(name, include_preprocessing=False)
    with pytest.raises(ValueError, match="does not hold its preprocessing"):
        md.resolve_normalization("auto", without)


# --- sidecars ----------------------------------------------------------------------------------


def test_sidecar_json_and_labels(tmp_out):
    from keras_padfree import export
    from keras_padfree.export import metadata as md

    model = realistic(tiny_model(classes=100))
    export.export_tflite(model, tmp_out / "m.tflite", dataset="cifar100")
    # Exporting again to the same path replaces the files (the sidecar is this file's own).
    res = export.export_tflite(model, tmp_out / "m.tflite", dataset="cifar100")
    assert sorted(os.listdir(tmp_out)) == ["m.json", "m.labels.txt", "m.tflite"]
    assert res.metadata_path == str(tmp_out / "m.json")
    assert res.labels_path == str(tmp_out / "m.labels.txt")
    meta = json.loads(open(res.metadata_path).read())
    assert meta == res.metadata
    assert meta["model_file"] == "m.tflite" and meta["labels_file"] == "m.labels.txt"
    inp = meta["input"]
    assert inp["shape"] == [1, 32, 32, 3] and inp["layout"] == "NHWC"
    assert inp["dtype"] == "float32" and inp["color_order"] == "RGB"
    assert inp["value_range"] == [0.0, 255.0]
    assert inp["normalization"]["source"] == "model"
    assert meta["output"]["shape"] == [1, 100]
    assert meta["output"]["meaning"].startswith("class probabilities")
    assert meta["quantization"]["type"] == "none"
    labels = open(res.labels_path).read().splitlines()
    assert labels == list(md.CIFAR100_LABELS) and labels[0] == "apple" and len(labels) == 100
    # What an app does with the JSON gives the model's input: here the pixels themselves.
    pixels = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3)).astype("uint8")
    np.testing.assert_array_equal(export.preprocess_pixels(pixels, meta), pixels)


def test_sidecar_of_a_user_normalised_model_custom_labels_logits(tmp_out):
    from keras_padfree import export

    model = realistic(tiny_model(classes=3, preprocessing=False))
    logits = keras.Model(model.input, model.get_layer("predictions").output, name="logits")
    norm = {"mean": list(TEST_MEAN), "std": list(TEST_STD)}
    res = export.export_tflite(
        logits, tmp_out / "l.tflite", labels=["cat", "dog", "bird"], normalization=norm
    )
    meta = json.loads(open(res.metadata_path).read())
    rec = meta["input"]["normalization"]
    assert rec["source"] == "user" and rec["type"] == "mean_std"
    assert rec["mean"] == list(TEST_MEAN) and rec["std"] == list(TEST_STD)
    assert meta["input"]["value_range"] == rec["value_range"] == [-2.0, 2.2]
    assert meta["output"]["meaning"].startswith("class logits")
    assert res.parity["compared"] == "probabilities"
    assert open(res.labels_path).read() == "cat\ndog\nbird\n"
    pixels = np.full((32, 32, 3), 255.0)
    np.testing.assert_allclose(
        export.preprocess_pixels(pixels, meta)[0, 0],
        [(1 - m) / s for m, s in zip(TEST_MEAN, TEST_STD)],
        rtol=1e-6,
    )


# --- ONNX --------------------------------------------------------------------------------------


def test_onnx_export_parity(tmp_out):
    """The tiny model holds Normalization layers: tf2onnx used to turn their mean/variance into
    extra graph inputs that onnxruntime refused to run without."""
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as e:
        pytest.skip(f"ONNX dependencies not installed ({e}): pip install onnx onnxruntime tf2onnx")
    from keras_padfree import export

    model = realistic(tiny_model())
    res = export.export_onnx(model, tmp_out / "m.onnx")
    assert res.parity["max_abs_diff"] <= 1e-4
    import onnxruntime

    sess = onnxruntime.InferenceSession(res.path, providers=["CPUExecutionProvider"])
    assert len(sess.get_inputs()) == 1
    x = np.random.default_rng(0).uniform(0, 255, size=(3, 32, 32, 3)).astype("float32")
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]  # dynamic batch axis
    np.testing.assert_allclose(out, np.asarray(model(x, training=False)), atol=1e-5)
    meta = json.loads(open(res.metadata_path).read())
    assert meta["format"] == "onnx" and meta["input"]["layout"] == "NHWC"
    assert meta["input"]["normalization"]["source"] == "model"
    # The model itself is unchanged by the conversion (its Normalization holds tensors again).
    norm = model.get_layer("preprocessing_normalize")
    assert not isinstance(norm.mean, np.ndarray) and not isinstance(norm.variance, np.ndarray)


# --- the converter core ---------------------------------------------------------------------------


def _ops_and_outputs(content, x):
    """A file's graph with tensors told by what they are, not their indices (which the routes
    number differently): each operator with its inputs and outputs as (shape, dtype,
    quantisation, the bytes of a constant); then the signature and the outputs on ``x``."""
    import hashlib

    from keras_padfree import export

    interp = export.litert_interpreter(model_content=content)
    ops = interp._get_ops_details()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    computed = {int(i) for op in ops for i in op["outputs"]} | {
        d["index"] for d in interp.get_input_details()
    }

    def tensor(index):
        d = details[int(index)]
        data = None
        if int(index) not in computed:
            data = hashlib.sha256(np.ascontiguousarray(interp.get_tensor(int(index)))).hexdigest()
        quant = (d["quantization_parameters"]["scales"].tolist(), d["quantization"])
        return (d["shape"].tolist(), str(d["dtype"]), quant, data)

    graph = []
    for op in ops:
        inputs = [tensor(i) for i in op["inputs"] if i >= 0]
        if op["op_name"] == "DELEGATE":  # the delegate lists its tensors in index order
            inputs = sorted(inputs, key=repr)
        graph.append((op["op_name"], inputs, [tensor(i) for i in op["outputs"]]))
    key, input_name, outputs = export.litert_signature(interp)
    return graph, (key, input_name, sorted(outputs)), export.run_litert(interp, x)


@pytest.mark.parametrize("quantization", [None, "int8"])
def test_conversion_routes_give_the_same_model(quantization):
    """Keras' model.export(format="litert") (>= 3.15) and the ExportArchive -> from_saved_model
    steps this project takes on older Keras produce byte-identical files; the default route (the
    weights as graph constants) the same operators, tensors, signature and outputs."""
    from keras_padfree.export import _convert

    if BACKEND != "tensorflow":
        pytest.skip("conversion runs under TensorFlow")
    keras.utils.set_random_seed(0)
    model = realistic(tiny_model())
    calib = sample_images(model, 8, seed=3)
    files = {
        route: _convert.convert_tflite(
            model,
            input_shape=(32, 32, 3),
            quantization=quantization,
            representative=calib,
            route=route,
        )
        for route in ("keras", "archive", "constants", "auto")
    }
    assert files["keras"] == files["archive"]
    assert files["auto"] == files["constants"]
    x = sample_images(model, 4, seed=4)
    graph, signature, outputs = _ops_and_outputs(files["keras"], x)
    graph_c, signature_c, outputs_c = _ops_and_outputs(files["constants"], x)
    assert len(graph) > 10 and any(t[3] for op in graph for t in op[1])  # constants compared
    assert signature_c == signature
    assert graph_c == graph
    np.testing.assert_array_equal(outputs_c, outputs)
    assert _convert.keras_litert_export_available() == (
        tuple(int(v) for v in keras.__version__.split(".")[:2]) >= (3, 15)
    )


def test_a_model_too_large_for_one_graph_takes_a_variables_route(monkeypatch):
    from keras_padfree.export import _convert

    if BACKEND != "tensorflow":
        pytest.skip("conversion runs under TensorFlow")
    taken = []
    for route in list(_convert.ROUTES):
        monkeypatch.setitem(_convert.ROUTES, route, lambda *a, route=route: taken.append(route))
    model = tiny_model()
    size = _convert._weight_bytes(model)
    assert size >= 4 * model.count_params() > 0
    monkeypatch.setattr(_convert, "CONSTANTS_ROUTE_MAX_BYTES", size)
    _convert.convert_tflite(model, input_shape=(32, 32, 3))
    monkeypatch.setattr(_convert, "CONSTANTS_ROUTE_MAX_BYTES", size - 1)
    _convert.convert_tflite(model, input_shape=(32, 32, 3))
    variables_route = "keras" if _convert.keras_litert_export_available() else "archive"
    assert taken == ["constants", variables_route]
    with pytest.raises(ValueError, match="route='frozen'"):
        _convert.convert_tflite(model, input_shape=(32, 32, 3), route="frozen")


def test_hybrid_stem_is_exported_without_its_concatenation():
    """In the file, the stem's fusion reads its two branches through two 1x1 convolutions and an
    add (no CONCATENATION), the same function as the Keras layer."""
    from keras_padfree import export
    from keras_padfree import layers
    from keras_padfree.export import _convert

    if BACKEND != "tensorflow":
        pytest.skip("conversion runs under TensorFlow")
    keras.utils.set_random_seed(0)
    x = keras.Input((32, 32, 3))
    model = realistic(keras.Model(x, layers.HybridStem(16, strides=2, name="stem")(x)))
    content = _convert.convert_tflite(model, input_shape=(32, 32, 3))
    interp = export.litert_interpreter(model_content=content)
    ops = [op["op_name"] for op in interp._get_ops_details() if op["op_name"] != "DELEGATE"]
    assert "CONCATENATION" not in ops and ops.count("ADD") == 1, ops
    assert ops.count("CONV_2D") == 3 and ops.count("MAX_POOL_2D") == 1, ops
    images = sample_images(model, 2, seed=5)
    np.testing.assert_allclose(
        export.run_litert(interp, images), np.asarray(model(images)), rtol=1e-4, atol=1e-5
    )
