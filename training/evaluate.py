"""Evaluate a saved ``.keras`` model on a dataset split: top-1 / top-5 as JSON.

    python training/evaluate.py --model-path runs/default/best.keras          # bundled digits
    python training/evaluate.py --model-path model.keras --dataset cifar100 --data-dir ~/tfds
    python training/evaluate.py --model-path model.keras --dataset folder --data-dir PATH
    python training/evaluate.py runs/default/best.keras        # the path may also come first

Images go through the recipe's evaluation transform (default: the reference recipe of the
dataset), which resizes them. The model is fed what it expects: a model that holds its
preprocessing (Rescaling / Normalization layers after its input, as ``training/fit.py`` saves them)
gets raw RGB pixels in [0, 255]; a model without them gets ``(pixel / 255 - mean) / std`` with
``--mean``/``--std`` when given, else the recipe's own mean/std (how ``training/fit.py`` fed models
that did not hold their preprocessing). The JSON (which says which of these it was) goes next to the
model as ``<model>.<dataset>_<split>.json`` unless ``--output`` is given. Bad arguments or files: an
``error:`` line on stderr and exit status 2.
"""

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


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


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, received {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "model", nargs="?", default=None, help="the .keras model (the same as --model-path)"
    )
    p.add_argument("--model-path", default=None, help="the .keras model")
    p.add_argument("--dataset", default="digits")
    p.add_argument(
        "--split",
        default="eval",
        help="'eval' (the dataset's evaluation split), 'train', or a split name",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="recipe whose evaluation transform is used (default: the dataset's)",
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--steps", type=_positive_int, default=None, help="evaluate only N batches")
    p.add_argument("--val-fraction", type=_fraction, default=0.2)
    p.add_argument(
        "--mean",
        type=_floats,
        default=None,
        help="for a model without preprocessing layers: the normalisation mean on "
        "pixels scaled to [0, 1] (with --std); default: the recipe's",
    )
    p.add_argument("--std", type=_floats, default=None)
    p.add_argument("--output", default=None, help="JSON path")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show the libraries' own output (hidden unless an unexpected error)",
    )
    return p


@contextlib.contextmanager
def native_output_hidden(enabled: bool = True) -> Iterator[None]:
    """Sends everything written to the process's stdout/stderr file descriptors (TensorFlow's C++
    start-up lines, the quantiser's "fully_quantize: ...", LiteRT's "Created TensorFlow Lite
    XNNPACK delegate", tf2onnx's warnings) to a temporary file; replays it on stderr when an
    exception leaves the block. (The same helper is in training/export_tflite.py: each script
    must run it before it imports TensorFlow.)"""
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


def _model_path(args):
    if args.model is not None and args.model_path is not None and args.model != args.model_path:
        raise ValueError(
            f"Give the model once: --model-path {args.model_path!r} and the "
            f"positional {args.model!r} differ."
        )
    path = args.model_path or args.model
    if path is None:
        raise ValueError("Argument `--model-path` is required (the .keras model to evaluate).")
    if not path.endswith(".keras"):
        raise ValueError(f"Argument `--model-path` must be a .keras file. Received: {path!r}.")
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise ValueError(f"Argument `--model-path`: {path!r} {what}; expected a .keras file.")
    return path


def _output_path(args, model_path, split):
    out = args.output or (
        os.path.splitext(model_path)[0] + f".{args.dataset.replace('/', '_')}_{split}.json"
    )
    if os.path.isdir(out):
        raise ValueError(f"Argument `--output`: {out!r} is a directory; expected a JSON file path.")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ValueError(f"Argument `--output`: the directory {parent!r} does not exist.")
    return out


def input_preparation(
    model: "keras.Model",
    recipe_prep: object,
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> tuple[object, float, dict]:
    """``(preprocessing for the pipeline, scale of its output, record for the JSON)``.

    A model that holds its preprocessing gets raw pixels: the pipeline without normalisation
    (pixels / 255) times 255. Otherwise the pipeline normalises with ``mean``/``std`` or the
    recipe's.
    """
    import dataclasses

    from keras_padfree.export.metadata import model_preprocessing

    pre = model_preprocessing(model)
    if pre is not None:
        if mean is not None:
            raise ValueError(
                f"Arguments `--mean`/`--std`: the model holds its preprocessing ({pre['layers']}) "
                "and takes raw pixels in [0, 255]; a mean/std would be applied twice. Leave them "
                "out."
            )
        prep = dataclasses.replace(recipe_prep, mean=None, std=None)
        record = {
            "source": "model",
            "description": "raw RGB pixels in [0, 255]; the model "
            f"normalises them itself ({', '.join(pre['layers'])})",
            "mean": pre["mean"],
            "std": pre["std"],
        }
        return prep, 255.0, record
    if mean is not None:
        channels = 3
        mean = [float(v) for v in (mean * channels if len(mean) == 1 else mean)]
        std = [float(v) for v in (std * channels if len(std) == 1 else std)]
        prep = dataclasses.replace(recipe_prep, mean=tuple(mean), std=tuple(std))
        source = "user"
    else:
        prep = recipe_prep
        source = "recipe"
    if prep.mean is None:
        record = {"source": source, "description": "pixel / 255", "mean": None, "std": None}
    else:
        record = {
            "source": source,
            "description": "(pixel / 255 - mean) / std",
            "mean": list(prep.mean),
            "std": list(prep.std),
        }
    return prep, 1.0, record


def main(argv: list[str] | None = None) -> dict:
    """Evaluates and writes the JSON; returns the result dict (with ``output``, the JSON's path).

    Raises ValueError / DatasetNotFoundError for bad arguments and files."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model_path = _model_path(args)
    if (args.mean is None) != (args.std is None):
        raise ValueError(
            "Arguments `--mean` and `--std` must be given together. Received: "
            f"--mean={args.mean}, --std={args.std}."
        )
    if args.std is not None and any(s <= 0 for s in args.std):
        raise ValueError(f"Argument `--std` must be positive. Received: --std={args.std}.")
    import json

    import keras

    from keras_padfree.data import eval_dataset
    from keras_padfree.data import get_dataset_spec
    from keras_padfree.data import load_source
    from keras_padfree.export._prepare import load_if_path
    from keras_padfree.training import evaluate_model
    from keras_padfree.training import get_recipe

    spec = get_dataset_spec(args.dataset)
    recipe = get_recipe(args.recipe or spec.default_recipe)
    source = load_source(
        args.dataset, args.split, data_dir=args.data_dir, val_fraction=args.val_fraction
    )
    out = _output_path(args, model_path, source.split)
    model, _ = load_if_path(model_path, "--model-path")
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(
            f"The model {model.name!r} must take one image input (batch, H, W, C); "
            f"it takes {[tuple(t.shape) for t in model.inputs]}."
        )
    size = model.inputs[0].shape[1]
    if size is None or model.inputs[0].shape[2] != size:
        raise ValueError(
            f"The model's input {tuple(model.inputs[0].shape)} must be square with a fixed size."
        )
    classes = model.outputs[0].shape[-1]
    if classes != source.classes:
        raise ValueError(
            f"The model has {classes} outputs but {args.dataset!r} has {source.classes} classes."
        )
    prep, scale, input_record = input_preparation(model, recipe.preprocessing, args.mean, args.std)
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="top1"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, classes), name="top5"),
        ],
    )
    ds = eval_dataset(source, prep, size=size, classes=classes, batch_size=args.batch_size)
    if scale != 1.0:
        ds = ds.map(lambda x, y: (x * scale, y))
    result = evaluate_model(model, ds, steps=args.steps)
    result.update(
        {
            "model_path": os.path.abspath(model_path),
            "dataset": args.dataset,
            "split": source.split,
            "examples": source.num_examples,
            "recipe": recipe.name,
            "image_size": size,
            "input": input_record,
            "backend": keras.backend.backend(),
        }
    )
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    result["output"] = out
    return result


def report(result: dict) -> str:
    """Two lines about an evaluation: its numbers and where they went, and the model's input."""
    inp = result["input"]
    return (
        f"{result['dataset']}/{result['split']}: top1={result['top1']:.4f} "
        f"top5={result['top5']:.4f} loss={result['loss']:.4f} -> {result['output']}\n"
        f"  input: {inp['description']} (from the {inp['source']})"
    )


def cli(argv: list[str] | None = None) -> int:
    """Runs :func:`main`: its report on stdout, or an ``error:`` line on stderr and exit status 2
    for bad arguments and files. The libraries' own output is hidden unless ``--verbose`` or an
    unexpected error. Returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)  # usage errors and --help: argparse's own output
    line, error = None, None
    with native_output_hidden(not args.verbose):
        from keras_padfree.data.specs import DatasetNotFoundError

        try:
            line = report(main(argv))
        except (DatasetNotFoundError, ValueError) as e:
            error = str(e)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(line)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(cli())
