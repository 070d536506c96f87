"""The sidecar JSON's schema: what the exporters write, what docs/android.md documents and what
``validate_sidecar`` accepts are the same thing."""

import copy
import json
import os
import re

import numpy as np
import pytest

from tests.export.conftest import realistic
from tests.export.conftest import sharpen_classifier
from tests.export.conftest import tiny_backbone
from tests.export.conftest import tiny_model

keras = pytest.importorskip("keras")
ANDROID_MD = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "android.md")


def _doc():
    with open(ANDROID_MD) as f:
        return f.read()


def _doc_table():
    """``{key: type}`` of the schema table in docs/android.md."""
    rows = {}
    text = _doc()
    table = text[text.index("| key | type | meaning |") :]
    table = table[: table.index("\n\n")]
    for line in table.splitlines()[2:]:
        m = re.match(r"^\| `([a-z0-9_.\[\]]+)` \| ([^|]+) \|", line)
        assert m, f"not a schema row: {line!r}"
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} documented twice"
            rows[m.group(1)] = m.group(2).strip()
    return rows


def _type_name(spec, optional):
    from keras_padfree.export import metadata as md

    if isinstance(spec, dict):
        name = "object"
    elif isinstance(spec, list):
        name = "array"
    else:
        kinds = []
        for option in spec:
            if isinstance(option, dict):
                kinds.append("object")
            elif option is md._NULL:
                continue
            elif option is int:
                kinds.append("integer")
            elif option is float:
                kinds = [k for k in kinds if k != "integer"] + ["number"]
            elif option is str:
                kinds.append("string")
        name = " or ".join(kinds)
        if md._NULL in spec:
            name += " or null"
    return name + (", optional" if optional else "")


def _schema_types(schema=None, prefix=""):
    from keras_padfree.export import metadata as md

    schema = md.SIDECAR_SCHEMA if schema is None else schema
    out = {}
    for key, spec in schema.items():
        path = prefix + key.rstrip("?")
        out[path] = _type_name(spec, key.endswith("?"))
        nested = md._nested_object(spec)
        if nested is not None:
            out.update(_schema_types(nested, path + "."))
        elif isinstance(spec, list) and isinstance(spec[0], dict):  # an array of objects
            out.update(_schema_types(spec[0], path + "[]."))
    return out


def test_docs_table_is_the_schema():
    from keras_padfree.export import metadata as md

    table = _doc_table()
    assert list(table) == md.schema_keys()  # the same keys, in the same order
    assert table == _schema_types()


def _doc_examples():
    """The example sidecars of docs/android.md: a single-output one, then a multi-output one."""
    blocks = re.findall(r"```json\n(.*?)```", _doc(), flags=re.S)
    examples = [json.loads(b) for b in blocks if '"schema_version"' in b]
    assert len(examples) == 2
    assert "output" in examples[0] and "outputs" in examples[1]
    return examples


def _key_paths(obj, prefix=""):
    out = set()
    for k, v in obj.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _key_paths(v, prefix + k + ".")
        elif isinstance(v, list) and v and all(isinstance(item, dict) for item in v):
            for item in v:
                out |= _key_paths(item, prefix + k + "[].")
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A float32 TFLite export, an int8 one with int8 input/output, and an ONNX export; the same
    three of a multi-output model (a feature pyramid)."""
    from keras_padfree import export

    d = tmp_path_factory.mktemp("schema")
    keras.utils.set_random_seed(0)
    model = sharpen_classifier(realistic(tiny_model()))
    backbone = realistic(tiny_backbone())
    calib = np.random.default_rng(0).uniform(0, 255, size=(32, 32, 32, 3)).astype("float32")
    out = {
        "model": model,
        "float32": export.export_tflite(model, d / "f32.tflite"),
        "int8_io": export.export_tflite(
            model, d / "io.tflite", quantization="int8", representative_data=calib, int8_io=True
        ),
        "multi_float32": export.export_tflite(backbone, d / "multi.tflite"),
        "multi_int8_io": export.export_tflite(
            backbone,
            d / "multi_io.tflite",
            quantization="int8",
            representative_data=calib,
            int8_io=True,
        ),
    }
    try:
        out["onnx"] = export.export_onnx(model, d / "m.onnx")
        out["multi_onnx"] = export.export_onnx(backbone, d / "multi_onnx.onnx")
    except ImportError:
        out["onnx"] = out["multi_onnx"] = None
    return out


def test_docs_example_is_a_valid_sidecar_like_a_real_export(exports):
    from keras_padfree.export import metadata as md

    single, multi = _doc_examples()
    for example, kind in ((single, "float32"), (multi, "multi_float32")):
        md.validate_sidecar(example)
        assert _key_paths(example) == _key_paths(exports[kind].metadata)


def test_written_sidecars_follow_the_schema(exports):
    import keras_padfree
    from keras_padfree import profiling
    from keras_padfree.export import metadata as md

    model = exports["model"]
    for kind in ("float32", "int8_io", "onnx"):
        result = exports[kind]
        if result is None:
            continue
        with open(result.metadata_path) as f:
            meta = json.load(f)
        md.validate_sidecar(meta)
        assert meta == result.metadata
        assert meta["exporter"]["name"] == "keras_padfree"
        assert meta["exporter"]["version"] == keras_padfree.__version__
        assert meta["exporter"]["keras"] == keras.__version__
        assert meta["counts"] == {
            "params": model.count_params(),
            "trainable_params": 4986,
            "macs": profiling.count_flops(model, "macs"),
            "classes": 10,
        }
        assert meta["num_classes"] == 10 and meta["model_name"] == "tiny_pf"
        assert meta["input"]["value_range"] == [0.0, 255.0]
    io = exports["int8_io"].metadata
    assert set(io["input"]["quantization"]) == {"scale", "zero_point", "description"}
    assert io["quantization"]["input_output"] == "int8"
    assert io["quantization"]["calibration_samples"] == 32


def test_written_multi_output_sidecars_follow_the_schema(exports):
    from keras_padfree.export import metadata as md

    for kind in ("multi_float32", "multi_int8_io", "multi_onnx"):
        result = exports[kind]
        if result is None:
            continue
        with open(result.metadata_path) as f:
            meta = json.load(f)
        md.validate_sidecar(meta)
        assert meta == result.metadata and "output" not in meta
        assert [o["key"] for o in meta["outputs"]] == ["P2", "P0", "P3", "P1"]
        assert [o["key"] for o in meta["parity"]["outputs"]] == ["P2", "P0", "P3", "P1"]
        assert [o["reduction"] for o in meta["outputs"]] == [4, 1, 8, 2]
        assert meta["parity"]["criterion"] == meta["parity"]["compared"] == "per_output"
        assert ("signature" in meta) == (meta["format"] == "tflite")
        assert meta["num_classes"] is None and meta["labels_file"] is None
    io = exports["multi_int8_io"].metadata
    assert all(
        set(o["quantization"]) == {"scale", "zero_point", "description"} for o in io["outputs"]
    )
    assert {o["criterion"] for o in io["parity"]["outputs"]} == {"cosine_similarity"}


def test_validator_rejects_what_the_schema_does_not_allow(exports):
    from keras_padfree.export import metadata as md

    good = exports["float32"].metadata

    def broken(change):
        meta = copy.deepcopy(good)
        change(meta)
        return meta

    cases = {
        "lacks the keys \\['counts'\\]": lambda m: m.pop("counts"),
        "does not know: \\['colour'\\]": lambda m: m["input"].update(colour="RGB"),
        "'input.height' has the wrong type": lambda m: m["input"].update(height="32"),
        "'input.channels' has the wrong type": lambda m: m["input"].update(channels=True),
        "'input.normalization.source' must be one of": (
            lambda m: m["input"]["normalization"].update(source="guess")
        ),
        "'parity.max_abs_diff' must be finite": (
            lambda m: m["parity"].update(max_abs_diff=float("nan"))
        ),
        "'input.shape\\[1\\]' has the wrong type": lambda m: m["input"].update(shape=[1, 3.5]),
        "schema_version must be 2": lambda m: m.update(schema_version=1),
        "'input.normalization.model_preprocessing' has the wrong type": (
            lambda m: m["input"]["normalization"]["model_preprocessing"].pop("layers")
        ),
    }
    for message, change in cases.items():
        with pytest.raises(ValueError, match=message):
            md.validate_sidecar(broken(change))
    md.validate_sidecar(copy.deepcopy(good))

    multi = exports["multi_float32"].metadata

    def broken_multi(change):
        meta = copy.deepcopy(multi)
        change(meta)
        return meta

    first = multi["outputs"][0]
    cases = {
        "either 'output' \\(one output\\) or 'outputs' \\(several\\), not both": (
            lambda m: m.update(output=copy.deepcopy(good["output"]))
        ),
        "not neither": lambda m: m.pop("outputs"),
        "'outputs\\[0\\].index' has the wrong type": lambda m: m["outputs"][0].update(index="0"),
        "'outputs\\[1\\]' lacks the keys \\['meaning'\\]": lambda m: m["outputs"][1].pop("meaning"),
        "'outputs\\[\\].dtype' must be one of": lambda m: m["outputs"][2].update(dtype="uint8"),
        "must list each output once": lambda m: m["outputs"].append(copy.deepcopy(first)),
        "'parity.outputs' must check the outputs": lambda m: m["parity"]["outputs"].pop(),
        "'parity.outputs\\[\\].criterion' must be one of": (
            lambda m: m["parity"]["outputs"][0].update(criterion="per_output")
        ),
        "multi-output LiteRT file lacks the keys \\['signature'\\]": lambda m: m.pop("signature"),
    }
    for message, change in cases.items():
        with pytest.raises(ValueError, match=message):
            md.validate_sidecar(broken_multi(change))
    for key in ("signature", "parity"):  # multi-output records in a single-output sidecar
        meta = copy.deepcopy(good)
        if key == "signature":
            meta["signature"] = copy.deepcopy(multi["signature"])
        else:
            meta["parity"]["outputs"] = copy.deepcopy(multi["parity"]["outputs"])
        with pytest.raises(ValueError, match="belongs to a multi-output model"):
            md.validate_sidecar(meta)
    md.validate_sidecar(copy.deepcopy(multi))
