"""Evaluate a saved ``.keras`` model on a dataset split: top-1 / top-5 as JSON.

    python training/evaluate.py runs/default/final.keras                      # bundled digits
    python training/evaluate.py model.keras --dataset cifar100 --data-dir ~/tfds
    python training/evaluate.py model.keras --dataset folder --data-dir PATH --split val

The evaluation transform is the recipe's (default: the reference recipe of the model's dataset);
the JSON goes next to the model as ``<model>.<dataset>_<split>.json`` unless ``--output`` is given.
"""

import argparse
import json
import os
import sys


def build_parser():
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="path of a .keras model")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--split", default="eval",
                   help="'eval' (the dataset's evaluation split), 'train', or a split name")
    p.add_argument("--recipe", default=None,
                   help="recipe whose evaluation transform is used (default: the dataset's)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--steps", type=int, default=None, help="evaluate only N batches")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--output", default=None, help="JSON path")
    return p


def main(argv=None):
    """Evaluates and writes the JSON; returns the result dict."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import keras_padfree  # noqa: F401 -- registers the custom layers
    from keras_padfree.data import eval_dataset
    from keras_padfree.data import get_dataset_spec
    from keras_padfree.data import load_source
    from keras_padfree.training import get_recipe
    from keras_padfree.training.loop import _metrics
    from keras_padfree.training.loop import evaluate_model

    if not os.path.exists(args.model):
        raise ValueError(f"Argument `model` must be an existing .keras file. "
                         f"Received: {args.model!r}.")
    if args.batch_size <= 0:
        raise ValueError(f"Argument `batch_size` must be > 0. Received: {args.batch_size}.")
    spec = get_dataset_spec(args.dataset)
    source = load_source(args.dataset, args.split, data_dir=args.data_dir,
                         val_fraction=args.val_fraction)
    recipe = get_recipe(args.recipe or spec.default_recipe)
    model = keras.saving.load_model(args.model, compile=False)
    size = model.input_shape[1]
    classes = model.output_shape[-1]
    if classes != source.classes:
        raise ValueError(f"The model has {classes} outputs but {args.dataset!r} has "
                         f"{source.classes} classes.")
    model.compile(loss=keras.losses.CategoricalCrossentropy(), metrics=_metrics(classes))
    ds = eval_dataset(source, recipe.preprocessing, size=size, classes=classes,
                      batch_size=args.batch_size)
    result = evaluate_model(model, ds, steps=args.steps)
    result.update({"model_path": os.path.abspath(args.model), "dataset": args.dataset,
                   "split": source.split, "examples": source.num_examples,
                   "recipe": recipe.name, "image_size": size,
                   "backend": keras.backend.backend()})
    out = args.output or (os.path.splitext(args.model)[0]
                          + f".{args.dataset.replace('/', '_')}_{source.split}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{args.dataset}/{source.split}: top1={result['top1']:.4f} top5={result['top5']:.4f} "
          f"loss={result['loss']:.4f} -> {out}")
    return result


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from keras_padfree.data.specs import DatasetNotFoundError

    try:
        main()
    except (DatasetNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
