"""Multi-output and dense-output models to LiteRT / ONNX: a ``features_only`` zoo backbone, a
segmentation model, list and dict outputs; outputs matched to Keras' by name, parity per output,
every output in the sidecar."""

import json
import os
import sys

import numpy as np
import pytest

from tests.export.conftest import normalization_for
from tests.export.conftest import realistic
from tests.export.conftest import sample_images
from tests.export.conftest import tiny_backbone

keras = pytest.importorskip("keras")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BACKBONE = "bsconv_resnet20_pf_cifar"


def _keras_dict(model, x):
    y = model(x, training=False)
    if isinstance(y, dict):
        return {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in y.items()}
    return {f"output_{i}": np.asarray(keras.ops.convert_to_numpy(v)) for i, v in enumerate(y)}


def _file_outputs_by_position(path, x):
    """Runs the file with the plain interpreter API (no signature): the outputs in the file's
    own order, ``interpreter.get_output_details()`` (what Java's ``getOutputTensor(i)`` reads)."""
    from keras_padfree import export

    interp = export.litert_interpreter(model_path=path)
    inp = interp.get_input_details()[0]
    outs = [[] for _ in interp.get_output_details()]
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i : i + 1])
        interp.invoke()
        for j, d in enumerate(interp.get_output_details()):
            outs[j].append(interp.get_tensor(d["index"]).copy())
    return [np.concatenate(o) for o in outs]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A features_only zoo backbone (random weights, calibrated BN) and a segmentation model on
    it, each exported to float32 LiteRT."""
    from keras_padfree import applications
    from keras_padfree import dense
    from keras_padfree import export

    d = tmp_path_factory.mktemp("multi_zoo")
    keras.utils.set_random_seed(0)
    backbone = realistic(applications.create_model(BACKBONE, features_only=True))
    seg = realistic(dense.segmentation_model(backbone, classes=3, filters=16))
    x = sample_images(backbone, 8, seed=1)
    return {
        "backbone": backbone,
        "seg": seg,
        "x": x,
        "dir": d,
        "backbone_f32": export.export_tflite(
            backbone,
            d / "backbone.tflite",
            sample_inputs=x,
            model_name=BACKBONE,
            normalization=normalization_for(backbone),
        ),
        "seg_f32": export.export_tflite(
            seg, d / "seg.tflite", sample_inputs=x, normalization=normalization_for(seg)
        ),
    }


def test_features_only_backbone_float32_parity_per_output(zoo):
    from keras_padfree.export import metadata as md

    backbone, x, res = zoo["backbone"], zoo["x"], zoo["backbone_f32"]
    ref = _keras_dict(backbone, x)
    levels = {level.level: level for level in backbone.feature_info}
    assert list(ref) == ["P0", "P1", "P2"] == list(levels)
    parity = res.parity
    assert parity["criterion"] == "per_output" and parity["samples"] == 8
    assert [r["key"] for r in parity["outputs"]] == list(ref)
    for rec in parity["outputs"]:
        scale = max(1.0, float(np.abs(ref[rec["key"]]).max()))
        assert rec["criterion"] == "max_abs_diff" and rec["compared"] == "outputs"
        assert rec["tolerance"] == pytest.approx(1e-4 * scale)
        assert rec["max_abs_diff"] <= rec["tolerance"]
    assert parity["max_abs_diff"] == max(r["max_abs_diff"] for r in parity["outputs"])
    print(
        BACKBONE, "features_only float32:", {r["key"]: r["max_abs_diff"] for r in parity["outputs"]}
    )

    meta = json.loads(open(res.metadata_path).read())
    md.validate_sidecar(meta)
    assert meta == res.metadata and "output" not in meta
    assert meta["signature"] == {"key": "serving_default", "input": "image"}
    assert meta["num_classes"] is None and res.labels_path is None
    assert not os.path.exists(zoo["dir"] / "backbone.labels.txt")
    for rec in meta["outputs"]:
        level = levels[rec["key"]]
        assert rec["shape"] == [1, *level.size, level.channels]
        assert rec["reduction"] == level.reduction
        assert rec["meaning"] == f"features {level.level} (reduction {level.reduction})"
        assert rec["dtype"] == "float32" and "quantization" not in rec
    # Each record's `index` is the output's position in the file: read that way (no signature),
    # the file gives the Keras output of the record's key.
    by_position = _file_outputs_by_position(res.path, x)
    for rec in meta["outputs"]:
        np.testing.assert_allclose(by_position[rec["index"]], ref[rec["key"]], atol=1e-4, rtol=0)


def test_segmentation_model_float32_parity(zoo):
    seg, x, res = zoo["seg"], zoo["x"], zoo["seg_f32"]
    meta = res.metadata
    assert "outputs" not in meta and "signature" not in meta  # one output: the `output` record
    assert meta["output"]["shape"] == [1, 32, 32, 3]
    assert meta["output"]["meaning"] == "per-pixel class probabilities (softmax over the last axis)"
    assert meta["num_classes"] == 3 and meta["counts"]["classes"] == 3
    assert open(res.labels_path).read() == "class_0\nclass_1\nclass_2\n"
    parity = res.parity
    assert parity["compared"] == "probabilities" and parity["criterion"] == "max_abs_diff"
    assert parity["tolerance"] == 1e-4 and parity["max_abs_diff"] <= 1e-4
    assert parity["top1_agreement"] == 1.0  # the share of pixels with the same top class
    print(seg.name, "float32: max abs diff", parity["max_abs_diff"])
    (got,) = _file_outputs_by_position(res.path, x)
    np.testing.assert_allclose(got, np.asarray(seg(x, training=False)), atol=1e-4, rtol=0)


@pytest.mark.large
def test_quantized_backbone_and_segmentation(zoo):
    """int8 feature maps by cosine similarity, per-pixel probabilities by per-pixel top-1
    agreement, float16 by max abs difference relative to each output's scale."""
    from keras_padfree import export

    backbone, seg, d = zoo["backbone"], zoo["seg"], zoo["dir"]
    calib = sample_images(backbone, 64, seed=7)
    x = sample_images(backbone, 16, seed=1)
    results = {}
    for label, model in (("backbone", backbone), ("seg", seg)):
        for quantization in ("float16", "dynamic", "int8"):
            res = export.export_tflite(
                model,
                d / f"{label}_{quantization}.tflite",
                quantization=quantization,
                representative_data=calib,
                sample_inputs=x,
                normalization=normalization_for(model),
            )
            results[label, quantization] = res.parity
    print(json.dumps({f"{k[0]} {k[1]}": v for k, v in results.items()}, indent=1))
    for rec in results["backbone", "int8"]["outputs"]:
        assert rec["criterion"] == "cosine_similarity"
        assert rec["cosine_similarity"] >= export.MIN_COSINE_SIMILARITY["int8"]
    for rec in results["backbone", "dynamic"]["outputs"]:
        assert rec["criterion"] == "cosine_similarity"
        assert rec["cosine_similarity"] >= export.MIN_COSINE_SIMILARITY["dynamic"]
    for rec in results["backbone", "float16"]["outputs"]:
        assert rec["criterion"] == "max_abs_diff" and rec["max_abs_diff"] <= rec["tolerance"]
    assert results["seg", "dynamic"]["top1_agreement"] >= export.MIN_TOP1_AGREEMENT["dynamic"]
    assert results["seg", "int8"]["criterion"] == "top1_agreement"
    assert results["seg", "int8"]["top1_agreement"] >= export.MIN_TOP1_AGREEMENT["int8"]
    assert results["seg", "float16"]["max_abs_diff"] <= export.FLOAT16_TOLERANCE


# --- tiny models: matching by name, int8 I/O, ONNX, the command line, bad arguments -------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("multi_tiny")
    as_dict = realistic(tiny_backbone())
    as_list = realistic(tiny_backbone(as_list=True, name="tiny_pf_list"))
    as_dict.save(d / "backbone.keras")
    return {"dict": as_dict, "list": as_list, "dir": d, "x": sample_images(as_dict, 8, seed=2)}


@pytest.mark.all_backends
def test_list_outputs_are_matched_by_name(tiny, tmp_path):
    """A list's outputs are output_0, output_1, ... in the file's signature; the two same-shape
    maps (P3 and 2 * P3) are told apart only by their names. (In the file they come in another
    order than in the model: TensorFlow 2.21 puts output_1 first.) Under JAX / PyTorch the file
    comes from the TensorFlow subprocess and the reference from the model's own backend."""
    from keras_padfree import export

    model, x = tiny["list"], tiny["x"]
    res = export.export_tflite(model, tmp_path / "list.tflite", sample_inputs=x)
    assert res.parity["reference_backend"] == keras.backend.backend()
    ref = _keras_dict(model, x)
    assert [r["key"] for r in res.parity["outputs"]] == ["output_0", "output_1", "output_2"]
    meta = res.metadata
    assert [o["meaning"] for o in meta["outputs"]] == [
        "features",
        "features",
        "class probabilities (softmax)",
    ]
    assert meta["num_classes"] == 10 and res.labels_path is not None  # its only class output
    by_position = _file_outputs_by_position(res.path, x)
    for rec in meta["outputs"]:
        np.testing.assert_allclose(by_position[rec["index"]], ref[rec["key"]], atol=1e-4, rtol=0)
    for rec, out in zip(res.parity["outputs"], (ref["output_0"], ref["output_1"])):
        assert rec["tolerance"] == pytest.approx(1e-4 * max(1.0, float(np.abs(out).max())))


def test_swapped_outputs_fail_parity_and_write_nothing(tiny, tmp_path, monkeypatch):
    from keras_padfree import export
    from keras_padfree.export import tflite

    real = tflite.run_litert_outputs

    def swapped(interpreter, x):
        out = real(interpreter, x)
        out["output_0"], out["output_1"] = out["output_1"], out["output_0"]
        return out

    monkeypatch.setattr(tflite, "run_litert_outputs", swapped)
    with pytest.raises(
        export.ParityError,
        match="LiteRT output 'output_0' of 'tiny_pf_list' "
        r"\(float32\) differs from Keras",
    ):
        export.export_tflite(tiny["list"], tmp_path / "swapped.tflite", sample_inputs=tiny["x"])
    assert os.listdir(tmp_path) == []


def test_dict_backbone_int8_io_per_output_quantization(tiny, tmp_path):
    from keras_padfree import export

    model = tiny["dict"]
    calib = sample_images(model, 64, seed=7)
    res = export.export_tflite(
        model,
        tmp_path / "q.tflite",
        quantization="int8",
        representative_data=calib,
        int8_io=True,
        num_samples=16,
    )
    meta = res.metadata
    assert [o["key"] for o in meta["outputs"]] == ["P2", "P0", "P3", "P1"]  # the model's order
    assert sorted(o["index"] for o in meta["outputs"]) == [0, 1, 2, 3]
    for rec in meta["outputs"]:
        assert rec["dtype"] == "int8"
        assert rec["quantization"]["scale"] > 0 and -128 <= rec["quantization"]["zero_point"] <= 127
    for rec in res.parity["outputs"]:
        assert rec["criterion"] == "cosine_similarity"
        assert rec["cosine_similarity"] >= rec["min_cosine_similarity"] == 0.95
    # Dequantised with each record's own scale and zero point, the file's int8 outputs read by
    # position reproduce Keras' features.
    x = calib[:4]
    interp = export.litert_interpreter(model_path=res.path)
    inp = interp.get_input_details()[0]
    q = meta["input"]["quantization"]
    ref = _keras_dict(model, x)
    for i in range(len(x)):
        xi = np.clip(np.round(x[i : i + 1] / q["scale"] + q["zero_point"]), -128, 127)
        interp.set_tensor(inp["index"], xi.astype("int8"))
        interp.invoke()
        details = interp.get_output_details()
        for rec in meta["outputs"]:
            raw = interp.get_tensor(details[rec["index"]]["index"]).astype("float32")
            got = rec["quantization"]["scale"] * (raw - rec["quantization"]["zero_point"])
            want = ref[rec["key"]][i : i + 1]
            cos = float(np.sum(got * want) / (np.linalg.norm(got) * np.linalg.norm(want)))
            assert cos >= 0.95, (rec["key"], cos)


def test_segmentation_model_holding_its_preprocessing_takes_raw_pixels(tmp_path):
    """The segmentation head resizes its logits to the input's size (ResizeToMatch reads the
    image only for its size), so the model still starts with its preprocessing chain: exported
    with normalization="auto", it takes raw pixels. int8: per-pixel top-1 agreement."""
    from keras_padfree import dense
    from keras_padfree import export
    from keras_padfree.export import metadata as md

    keras.utils.set_random_seed(0)
    seg = realistic(
        dense.segmentation_model(
            tiny_backbone(name="tiny_seg_backbone"), classes=3, filters=8, name="tiny_seg"
        )
    )
    assert md.model_preprocessing(seg)["layers"] == [
        "preprocessing_rescale",
        "preprocessing_normalize",
    ]
    calib = sample_images(seg, 32, seed=7)
    res = export.export_tflite(
        seg, tmp_path / "seg.tflite", quantization="int8", representative_data=calib, num_samples=16
    )
    meta = res.metadata
    assert meta["input"]["normalization"]["source"] == "model"
    assert meta["input"]["value_range"] == [0.0, 255.0]
    assert meta["output"]["meaning"].startswith("per-pixel class probabilities")
    assert res.parity["criterion"] == "top1_agreement" and res.parity["compared"] == "probabilities"
    assert res.parity["top1_agreement"] >= export.MIN_TOP1_AGREEMENT["int8"]
    print("tiny_seg int8: per-pixel top-1 agreement", res.parity["top1_agreement"])


def test_onnx_multi_output(tiny, tmp_path):
    try:
        import onnxruntime
        import tf2onnx  # noqa: F401
    except ImportError as e:
        pytest.skip(f"ONNX dependencies not installed ({e})")
    from keras_padfree import export
    from keras_padfree.export import metadata as md

    x = tiny["x"]
    for kind in ("dict", "list"):
        model = tiny[kind]
        res = export.export_onnx(model, tmp_path / f"{kind}.onnx", sample_inputs=x)
        md.validate_sidecar(json.loads(open(res.metadata_path).read()))
        ref = _keras_dict(model, x)
        assert [r["key"] for r in res.parity["outputs"]] == list(ref)
        sess = onnxruntime.InferenceSession(res.path, providers=["CPUExecutionProvider"])
        got = dict(
            zip(
                [o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})
            )
        )
        for rec in res.metadata["outputs"]:
            assert rec["name"] == rec["key"] == sess.get_outputs()[rec["index"]].name
            np.testing.assert_allclose(got[rec["key"]], ref[rec["key"]], atol=1e-4, rtol=0)
        for rec in res.parity["outputs"]:
            assert rec["max_abs_diff"] <= rec["tolerance"]


def test_cli_exports_a_backbone(tiny, tmp_path, capsys):
    sys.path.insert(0, os.path.join(ROOT, "training"))
    import export_tflite as export_cli

    argv = [
        "--model-path",
        str(tiny["dir"] / "backbone.keras"),
        "--output",
        str(tmp_path / "b.tflite"),
    ]
    assert export_cli.cli(argv) == 0
    out = capsys.readouterr().out
    assert "4 outputs, matched by name" in out
    assert "P3 (features P3 (reduction 8)): max |y_keras - y_file| = " in out
    assert sorted(os.listdir(tmp_path)) == ["b.json", "b.tflite"]


def test_bad_arguments_multi_output(tiny, tmp_path):
    from keras_padfree import export

    model = tiny["dict"]
    for value in (0, 1.5, True, float("nan"), "0.9"):
        with pytest.raises(
            ValueError,
            match="Argument `min_cosine_similarity` must be a number "
            r"in \(0, 1\]",
        ):
            export.export_tflite(
                model,
                tmp_path / "a.tflite",
                quantization="int8",
                representative_data=tiny["x"],
                min_cosine_similarity=value,
            )
    with pytest.raises(ValueError, match="Argument `tolerance` must be a positive number"):
        export.export_tflite(model, tmp_path / "a.tflite", tolerance=-1.0)
    with pytest.raises(ValueError, match="Argument `min_top1_agreement` must be"):
        export.export_tflite(model, tmp_path / "a.tflite", min_top1_agreement=2)
    inp = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(2, 1)(inp)
    nested = keras.Model(inp, {"a": a, "pair": [a, keras.layers.Conv2D(2, 1)(a)]})
    with pytest.raises(
        ValueError,
        match=r"Argument `model`: the outputs of .* are nested "
        r"\(\['pair'\]",
    ):
        export.export_tflite(nested, tmp_path / "a.tflite", normalization="none")
    assert os.listdir(tmp_path) == []
