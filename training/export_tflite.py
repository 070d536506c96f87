"""Export a saved ``.keras`` model to LiteRT (.tflite) for Android, with a parity check.

    python training/export_tflite.py --model-path model.keras --output out.tflite
    python training/export_tflite.py --model-path model.keras --output out_fp16.tflite \\
        --quantization float16
    python training/export_tflite.py --model-path model.keras --output out_int8.tflite \\
        --quantization int8 --dataset cifar100 --data-dir ~/tfds --num-calibration 100
    python training/export_tflite.py --model-path model.keras --output out_int8.tflite \\
        --quantization int8 --calibration-dir photos/ --mean 0.485,0.456,0.406 \\
        --std 0.229,0.224,0.225

int8 calibration images come from the training pipeline's evaluation transform
(``keras_padfree.data`` + the dataset's reference recipe), or from a folder of images
(``--calibration-dir``: resized to the model input, scaled to [0, 1], normalised with the sidecar's
mean/std). Writes ``out.tflite``, ``out.json`` and ``out.labels.txt``; exits non-zero when the
LiteRT output does not match Keras (nothing is written then). ``--onnx out.onnx`` also writes an
ONNX file (onnxruntime parity).
"""

import argparse
import os
import sys


def _floats(text):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"expected 1 or 3 numbers, got {text!r}")
    return values


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser():
    p = argparse.ArgumentParser(prog="export_tflite.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model-path", required=True, help="a .keras model")
    p.add_argument("--output", required=True, help="the .tflite path")
    p.add_argument("--quantization", default="none",
                   choices=("none", "float16", "dynamic", "int8"))
    p.add_argument("--dataset", default=None,
                   help="calibration/parity data through the training pipeline (e.g. cifar100)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir, or image folder for 'folder'")
    p.add_argument("--recipe", default=None,
                   help="recipe whose evaluation transform is used (default: the dataset's)")
    p.add_argument("--calibration-dir", default=None,
                   help="a folder of images (searched recursively) for calibration")
    p.add_argument("--num-calibration", type=_positive_int, default=100)
    p.add_argument("--num-samples", type=_positive_int, default=8,
                   help="parity-check samples")
    p.add_argument("--mean", type=_floats, default=None,
                   help="normalisation mean on [0, 1] pixels (with --std); default: auto")
    p.add_argument("--std", type=_floats, default=None)
    p.add_argument("--internal-normalization", action="store_true",
                   help="the model takes pixel/255 and normalises internally")
    p.add_argument("--labels", default=None, help="a text file with one class name per line")
    p.add_argument("--int8-io", action="store_true", help="int8 input/output tensors (int8 only)")
    p.add_argument("--onnx", default=None, help="also export ONNX to this .onnx path")
    return p


def _normalization(args):
    if (args.mean is None) != (args.std is None):
        raise ValueError("Arguments `--mean` and `--std` must be given together. Received: "
                         f"--mean={args.mean}, --std={args.std}.")
    if args.mean is not None and args.internal_normalization:
        raise ValueError("Pass either --mean/--std or --internal-normalization, not both.")
    if args.mean is not None:
        return {"mean": args.mean, "std": args.std}
    if args.internal_normalization:
        return "internal"
    return "auto"


def dataset_images(dataset, data_dir, recipe_name, size, classes, limit):
    """Up to ``limit`` preprocessed evaluation images of ``dataset`` (the training pipeline)."""
    import numpy as np

    from keras_padfree.data import eval_dataset
    from keras_padfree.data import get_dataset_spec
    from keras_padfree.data import load_source
    from keras_padfree.training import get_recipe

    spec = get_dataset_spec(dataset)
    source = load_source(dataset, "eval", data_dir=data_dir)
    recipe = get_recipe(recipe_name or spec.default_recipe)
    ds = eval_dataset(source, recipe.preprocessing, size=size, classes=classes or source.classes,
                      batch_size=min(limit, 64), cache=False)
    images = []
    for x, _ in ds:
        images.append(np.asarray(x))
        if sum(len(a) for a in images) >= limit:
            break
    prep = recipe.preprocessing
    norm = ({"mean": list(prep.mean), "std": list(prep.std)} if prep.mean is not None
            else "internal")
    return np.concatenate(images)[:limit], norm, source.class_names


def folder_images(directory, size, normalization, limit):
    """Up to ``limit`` images of a folder, resized to ``size`` and normalised like the sidecar."""
    import numpy as np
    import tensorflow as tf

    if not os.path.isdir(directory):
        raise ValueError(f"Argument `--calibration-dir` must be a directory. Received: "
                         f"{directory!r}.")
    exts = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(directory)
                   for f in names if f.lower().endswith(exts))
    if not files:
        raise ValueError(f"No images ({', '.join(exts)}) found under --calibration-dir "
                         f"{directory!r}.")
    images = []
    for path in files[:limit]:
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32) / 255.0, (size[0], size[1]),
                              method="bilinear", antialias=True)
        images.append(img.numpy())
    x = np.stack(images).astype("float32")
    mean = np.asarray(normalization["mean"], "float32")
    std = np.asarray(normalization["std"], "float32")
    return (x - mean) / std


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not args.model_path.endswith(".keras") or not os.path.isfile(args.model_path):
        raise ValueError(f"Argument `--model-path` must be an existing .keras file. "
                         f"Received: {args.model_path!r}.")
    if args.dataset and args.calibration_dir:
        raise ValueError("Pass either --dataset or --calibration-dir, not both.")
    if args.quantization == "int8" and not (args.dataset or args.calibration_dir):
        raise ValueError("--quantization int8 needs calibration data: pass --dataset (with "
                         "--data-dir) or --calibration-dir.")

    from keras_padfree import export
    from keras_padfree.export import _convert
    from keras_padfree.export import metadata as md

    model = _convert.load_model(args.model_path)
    shape = tuple(model.input_shape[1:])
    classes = model.output_shape[-1] if len(model.output_shape) == 2 else None
    normalization = _normalization(args)
    labels = None
    if args.labels:
        with open(args.labels) as f:
            labels = [line.rstrip("\n") for line in f if line.strip()]
    calib = None
    if args.dataset:
        calib, pipeline_norm, class_names = dataset_images(
            args.dataset, args.data_dir, args.recipe, shape[0], classes,
            max(args.num_calibration, args.num_samples))
        if normalization == "auto":
            normalization = pipeline_norm
        if labels is None and class_names and len(class_names) == classes:
            labels = list(class_names)
    elif args.calibration_dir:
        norm = md.resolve_normalization(normalization, model, model_name=model.name,
                                        dataset=None)
        calib = folder_images(args.calibration_dir, shape, norm,
                              max(args.num_calibration, args.num_samples))
    result = export.export_tflite(
        model, args.output, quantization=None if args.quantization == "none" else
        args.quantization, representative_data=calib, num_calibration=args.num_calibration,
        num_samples=args.num_samples, labels=labels, normalization=normalization,
        dataset=args.dataset, int8_io=args.int8_io)
    print(f"wrote {result.path} (+ {result.metadata_path}, {result.labels_path}); parity: "
          f"{result.parity}")
    if args.onnx:
        onnx_result = export.export_onnx(model, args.onnx, labels=labels,
                                         normalization=normalization, dataset=args.dataset,
                                         sample_inputs=None if calib is None
                                         else calib[:args.num_samples])
        print(f"wrote {onnx_result.path}; parity: {onnx_result.parity}")
    return result


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    main()
