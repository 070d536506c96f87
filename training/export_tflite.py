"""Export a saved ``.keras`` model to LiteRT (.tflite) for Android, with a parity check.

    python training/export_tflite.py --model-path runs/default/best.keras --output model.tflite
    python training/export_tflite.py --model-path model.keras --output model_fp16.tflite \\
        --quantization float16
    python training/export_tflite.py --model-path model.keras --output model_int8.tflite \\
        --quantization int8 --dataset digits --num-calibration 100
    python training/export_tflite.py --model-path model.keras --output model_int8.tflite \\
        --quantization int8 --calibration-dir photos/
    python training/export_tflite.py --model-path old.keras --output old.tflite \\
        --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225

The normalisation is read from the model: a model that holds its preprocessing (Rescaling /
Normalization layers after its input, as ``training/fit.py`` saves them) takes raw RGB pixels in
[0, 255], and the sidecar says so. A model without them is exported only with ``--mean``/``--std``
(the values it was trained with, on pixels scaled to [0, 1]).

int8 calibration images come from a dataset's evaluation split (``--dataset``, resized by the
recipe's evaluation transform) or from a folder of images (``--calibration-dir``, resized to the
model input); either way they are prepared exactly as the sidecar tells an app to prepare pixels.
A multi-output model (a ``features_only`` backbone saved to ``.keras``, any dict or list of outputs)
exports every output, matched to Keras' by name; the report gives each output's parity figure.
Writes ``out.tflite``, ``out.json`` and ``out.labels.txt`` (with ``--onnx out.onnx`` also the ONNX
file and its sidecars) all together, only after every argument was checked and the LiteRT (and
onnxruntime) outputs matched Keras. Bad arguments or files: an ``error:`` line and exit status 2;
a parity failure: exit status 1; nothing is written in either case.
"""

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _floats(text):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 3) or not all(abs(v) < float("inf") for v in values):
        raise argparse.ArgumentTypeError(
            f"expected 1 or 3 comma-separated finite numbers, received {text!r}"
        )
    return values


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="export_tflite.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model-path", required=True, help="a .keras model")
    p.add_argument("--output", required=True, help="the .tflite path (sidecars go next to it)")
    p.add_argument("--quantization", default="none", choices=("none", "float16", "dynamic", "int8"))
    p.add_argument(
        "--dataset",
        default=None,
        help="calibration/parity images: this dataset's evaluation split (e.g. digits)",
    )
    p.add_argument("--data-dir", default=None, help="TFDS data dir, or image folder for 'folder'")
    p.add_argument(
        "--recipe",
        default=None,
        help="recipe whose evaluation transform resizes the --dataset images "
        "(default: the dataset's)",
    )
    p.add_argument(
        "--calibration-dir",
        default=None,
        help="calibration/parity images: a folder of images (searched recursively)",
    )
    p.add_argument("--num-calibration", type=_positive_int, default=100)
    p.add_argument("--num-samples", type=_positive_int, default=8, help="parity-check samples")
    p.add_argument(
        "--mean",
        type=_floats,
        default=None,
        help="for a model without preprocessing layers: the normalisation mean on "
        "pixels scaled to [0, 1] (with --std)",
    )
    p.add_argument("--std", type=_floats, default=None)
    p.add_argument(
        "--internal-normalization",
        action="store_true",
        help="for a model without preprocessing layers that takes pixel / 255 as it "
        "is (the same as --mean 0 --std 1)",
    )
    p.add_argument("--labels", default=None, help="a text file with one class name per line")
    p.add_argument("--int8-io", action="store_true", help="int8 input/output tensors (int8 only)")
    p.add_argument("--onnx", default=None, help="also export ONNX to this .onnx path")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show the converters' own output (hidden unless the export fails)",
    )
    return p


@contextlib.contextmanager
def native_output_hidden(enabled: bool = True) -> Iterator[None]:
    """Sends everything written to the process's stdout/stderr file descriptors (TensorFlow's C++
    start-up lines, the quantiser's "fully_quantize: ...", LiteRT's "Created TensorFlow Lite
    XNNPACK delegate", tf2onnx's warnings) to a temporary file; replays it on stderr when an
    exception leaves the block. (The same helper is in training/evaluate.py: each script must
    run it before it imports TensorFlow.)"""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = (os.dup(1), os.dup(2))
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:
                log.seek(0)
                text = log.read().decode("utf-8", errors="replace").strip()
                if text:
                    print(f"(output before the failure)\n{text}", file=sys.stderr)


def _normalization(args):
    if (args.mean is None) != (args.std is None):
        raise ValueError(
            "Arguments `--mean` and `--std` must be given together. Received: "
            f"--mean={args.mean}, --std={args.std}."
        )
    if args.mean is not None and args.internal_normalization:
        raise ValueError("Pass either --mean/--std or --internal-normalization, not both.")
    if args.std is not None and any(s <= 0 for s in args.std):
        raise ValueError(f"Argument `--std` must be positive. Received: --std={args.std}.")
    if args.mean is not None:
        return {"mean": args.mean, "std": args.std}
    if args.internal_normalization:
        return "none"
    return "auto"


def check_arguments(args: argparse.Namespace) -> None:
    """Every check that needs no model and no data; raises ValueError. Writes nothing."""
    from keras_padfree.export import _files
    from keras_padfree.export import metadata as md

    path = args.model_path
    if not path.endswith(".keras"):
        raise ValueError(f"Argument `--model-path` must be a .keras file. Received: {path!r}.")
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise ValueError(f"Argument `--model-path`: {path!r} {what}; expected a .keras file.")
    _files.check_output_path(args.output, ".tflite", "--output")
    if args.onnx is not None:
        _files.check_output_path(args.onnx, ".onnx", "--onnx")
        if md.sidecar_paths(args.onnx)[0] == md.sidecar_paths(args.output)[0]:
            raise ValueError(
                f"Arguments `--output` {args.output!r} and `--onnx` {args.onnx!r} would share the "
                f"sidecar {md.sidecar_paths(args.output)[0]!r}; give them different names."
            )
    _normalization(args)
    if args.dataset and args.calibration_dir:
        raise ValueError("Pass either --dataset or --calibration-dir, not both.")
    if args.quantization == "int8" and not (args.dataset or args.calibration_dir):
        raise ValueError(
            "--quantization int8 needs calibration images: pass --dataset (e.g. "
            "--dataset digits) or --calibration-dir."
        )
    if args.int8_io and args.quantization != "int8":
        raise ValueError(
            "Argument `--int8-io` needs --quantization int8. Received: "
            f"--quantization {args.quantization}."
        )
    if args.recipe and not args.dataset:
        raise ValueError(
            "Argument `--recipe` chooses the --dataset images' transform; pass --dataset too."
        )
    if args.labels is not None and not os.path.isfile(args.labels):
        raise ValueError(f"Argument `--labels`: {args.labels!r} is not a file.")
    if args.calibration_dir is not None:
        calibration_files(args.calibration_dir)
    if args.dataset:
        from keras_padfree.data import get_dataset_spec
        from keras_padfree.training import get_recipe

        get_dataset_spec(args.dataset)
        if args.recipe:
            get_recipe(args.recipe)


def calibration_files(directory: str) -> list[str]:
    """The image files under ``directory`` (sorted); ValueError when there are none."""
    if not os.path.isdir(directory):
        raise ValueError(
            f"Argument `--calibration-dir` must be a directory. Received: {directory!r}."
        )
    files = sorted(
        os.path.join(root, f)
        for root, _, names in os.walk(directory)
        for f in names
        if f.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise ValueError(
            f"Argument `--calibration-dir`: no images ({', '.join(IMAGE_EXTENSIONS)}) "
            f"under {directory!r}."
        )
    return files


def read_labels(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f if line.strip()]


def dataset_pixels(
    dataset: str, data_dir: str | None, recipe_name: str | None, size: int, limit: int
) -> tuple["np.ndarray", tuple | None]:
    """Up to ``limit`` raw RGB pixel images (float32 in [0, 255]) of the evaluation split of
    ``dataset``, resized by the recipe's evaluation transform; and the class names if known."""
    import dataclasses

    import numpy as np

    from keras_padfree.data import eval_dataset
    from keras_padfree.data import get_dataset_spec
    from keras_padfree.data import load_source
    from keras_padfree.training import get_recipe

    spec = get_dataset_spec(dataset)
    source = load_source(dataset, "eval", data_dir=data_dir)
    recipe = get_recipe(recipe_name or spec.default_recipe)
    prep = dataclasses.replace(recipe.preprocessing, mean=None, std=None)  # pixels / 255
    ds = eval_dataset(
        source, prep, size=size, classes=source.classes, batch_size=min(limit, 64), cache=False
    )
    images, count = [], 0
    for x, _ in ds:
        images.append(np.asarray(x) * 255.0)
        count += len(images[-1])
        if count >= limit:
            break
    return np.concatenate(images)[:limit].astype("float32"), source.class_names


def folder_pixels(directory: str, size: tuple, limit: int) -> "np.ndarray":
    """Up to ``limit`` images of a folder as raw RGB pixels (float32 in [0, 255]), resized."""
    import numpy as np
    import tensorflow as tf

    images = []
    for path in calibration_files(directory)[:limit]:
        try:
            img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError as e:
            raise ValueError(
                f"Argument `--calibration-dir`: {path!r} is not a readable image "
                f"({e.message.splitlines()[0]})."
            ) from None
        img = tf.image.resize(
            tf.cast(img, tf.float32), (size[0], size[1]), method="bilinear", antialias=True
        )
        images.append(np.clip(img.numpy(), 0.0, 255.0))
    return np.stack(images).astype("float32")


def main(argv: list[str] | None = None) -> list:
    """Parses ``argv``, exports, writes; returns the :class:`ExportResult` of the TFLite file (and
    of the ONNX file with ``--onnx``).

    Raises ValueError / DatasetNotFoundError for bad arguments and files, ParityError when a
    converted file does not match Keras (nothing is written then).
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    check_arguments(args)

    from keras_padfree import export
    from keras_padfree.export import _files
    from keras_padfree.export import _prepare
    from keras_padfree.export import metadata as md
    from keras_padfree.export import onnx as onnx_export
    from keras_padfree.export import tflite as tflite_export

    if args.onnx is not None:
        onnx_export._require_onnx()  # noqa: SLF001 - fail before the conversion
    if args.dataset:  # a dataset that is not prepared fails at once, before the model loads
        from keras_padfree.data import load_source

        load_source(args.dataset, "eval", data_dir=args.data_dir)
    labels = read_labels(args.labels) if args.labels else None
    pixels, class_names = None, None
    model, _ = _prepare.load_if_path(args.model_path, "--model-path")
    shape = _prepare.static_input_shape(model)
    normalization = _normalization(args)
    norm = md.resolve_normalization(normalization, model)
    classes = tflite_export.model_classes(model)
    limit = max(args.num_calibration, args.num_samples)
    if args.dataset:
        if shape[0] != shape[1]:
            raise ValueError(
                f"Argument `--dataset` prepares square images; the model's input is "
                f"{shape[0]}x{shape[1]}. Use --calibration-dir."
            )
        pixels, class_names = dataset_pixels(
            args.dataset, args.data_dir, args.recipe, shape[0], limit
        )
    elif args.calibration_dir:
        pixels = folder_pixels(args.calibration_dir, shape, limit)
    if labels is None and class_names and len(class_names) == classes:
        labels = list(class_names)
    md.resolve_labels(labels, classes)  # a wrong --labels file fails before the conversion
    calib = None
    if pixels is not None:
        calib = export.preprocess_pixels(pixels, {"input": {"normalization": norm}})

    files, result = tflite_export.build_tflite_export(
        model,
        args.output,
        quantization=args.quantization,
        representative_data=calib,
        num_calibration=args.num_calibration,
        num_samples=args.num_samples,
        labels=labels,
        normalization=normalization,
        dataset=args.dataset,
        int8_io=args.int8_io,
    )
    results = [result]
    if args.onnx:
        onnx_files, onnx_result = onnx_export.build_onnx_export(
            model,
            args.onnx,
            labels=labels,
            normalization=normalization,
            dataset=args.dataset,
            sample_inputs=None if calib is None else calib[: args.num_samples],
        )
        files.update(onnx_files)
        results.append(onnx_result)
    _files.write_files(files)
    return results


def _check_text(parity: dict) -> str:
    """The measured figure of one parity record, as its criterion reads it."""
    if parity["criterion"] == "max_abs_diff":
        what = "p" if parity["compared"] == "probabilities" else "y"
        return f"max |{what}_keras - {what}_file| = {parity['max_abs_diff']:.2g}"
    if parity["criterion"] == "cosine_similarity":
        return f"min cosine similarity {parity['cosine_similarity']:.4f}"
    return f"top-1 agreement {parity['top1_agreement']:.1%}"


def report(result: object) -> str:
    """Two lines about one written export (its files, its parity and its input), and one per
    output of a multi-output model."""
    parity = result.parity
    norm = result.metadata["input"]["normalization"]
    files = ", ".join(p for p in (result.path, result.metadata_path, result.labels_path) if p)
    if parity["criterion"] == "per_output":
        check = f"{len(parity['outputs'])} outputs, matched by name"
        meanings = {o["key"]: o["meaning"] for o in result.metadata["outputs"]}
        lines = [
            f"\n    {o['key']} ({meanings[o['key']]}): {_check_text(o)}" for o in parity["outputs"]
        ]
    else:
        check, lines = _check_text(parity), []
    return (
        f"wrote {files}\n  parity on {parity['samples']} {parity['sample_source']} images: "
        f"{check}{''.join(lines)}\n  input: {norm['description']} (from the {norm['source']})"
    )


def cli(argv: list[str] | None = None) -> int:
    """Runs :func:`main`: its report on stdout, or an ``error:`` line on stderr (exit status 2
    for bad arguments and files, 1 when a converted file does not match Keras or cannot be
    written). The libraries' own output is hidden unless ``--verbose`` or an unexpected error.
    Returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)  # usage errors and --help: argparse's own output
    lines, error, status = [], None, 0
    with native_output_hidden(not args.verbose):
        from keras_padfree.data.specs import DatasetNotFoundError
        from keras_padfree.export import ParityError

        try:
            lines = [report(r) for r in main(argv)]
        except (DatasetNotFoundError, ValueError, ImportError) as e:
            error, status = str(e), 2
        except ParityError as e:
            error, status = str(e), 1
        except OSError as e:  # e.g. a full disk while writing: nothing was replaced
            error, status = f"could not write the export: {e}", 1
    for line in lines:
        print(line)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
    return status


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(cli())
