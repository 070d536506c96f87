"""Semantic segmentation on a padding-free backbone: FPN neck, generated shapes, measured IoU.

    python examples/segmentation.py                       # ResNet-20 orig and PF, 6 epochs each
    python examples/segmentation.py --models mobilenetv3_large_pf_cifar --epochs 3

Each model is the zoo backbone's feature pyramid (``features_only``) merged by
:func:`keras_padfree.dense.fpn` (which resizes levels to each other's exact sizes: the padding-free
ResNet-20's levels are 32/15/7 pixels) and a per-pixel softmax head, trained from scratch on
generated images of squares, discs and triangles (:func:`keras_padfree.dense.synthetic_shapes`),
and evaluated on held-out generated images: per-class and mean IoU. Results go to stdout and, with
``--out``, to a JSON file.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models",
        nargs="+",
        default=["bsconv_resnet20_cifar", "bsconv_resnet20_pf_cifar"],
        help="registry names of the backbones",
    )
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--val-images", type=int, default=500)
    p.add_argument("--size", type=int, default=32, help="image side in pixels")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    for flag in ("epochs", "train_images", "val_images", "size", "batch_size"):
        if getattr(args, flag) < 1:
            p.error(
                f"--{flag.replace('_', '-')} must be a positive integer, received "
                f"{getattr(args, flag)}"
            )

    import keras
    import numpy as np

    from keras_padfree import applications
    from keras_padfree import dense

    known = set(applications.list_models())
    for name in args.models:
        if name not in known:
            p.error(
                f"--models: unknown model {name!r} (see `python training/fit.py --list-models`)"
            )
    x_train, y_train = dense.synthetic_shapes(args.train_images, args.size, seed=args.seed)
    x_val, y_val = dense.synthetic_shapes(args.val_images, args.size, seed=args.seed + 1)
    results = []
    for name in args.models:
        keras.utils.set_random_seed(args.seed)
        model = dense.segmentation_model(
            name,
            classes=len(dense.SHAPES) + 1,
            input_shape=(args.size, args.size, 3),
            include_preprocessing=True,
        )
        model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
        start = time.perf_counter()
        model.fit(
            x_train.astype("float32"),
            y_train,
            batch_size=args.batch_size,
            epochs=args.epochs,
            verbose=0,
        )
        seconds = time.perf_counter() - start
        predictions = model.predict(x_val.astype("float32"), batch_size=64, verbose=0)
        miou, per_class = dense.mean_iou(y_val, np.argmax(predictions, -1), len(dense.SHAPES) + 1)
        backbone = applications.create_model(
            name, input_shape=(args.size, args.size, 3), features_only=True
        )
        sizes = [info.size[0] for info in backbone.feature_info]
        results.append(
            {
                "model": name,
                "levels_px": sizes,
                "epochs": args.epochs,
                "train_seconds": round(seconds, 1),
                "mean_iou": round(miou, 4),
                "iou": dict(zip(("background",) + dense.SHAPES, (round(v, 4) for v in per_class))),
            }
        )
        print(
            f"{name}: pyramid {sizes} px, {args.epochs} epochs in {seconds:.0f} s, "
            f"mean IoU {miou:.3f} ("
            + ", ".join(f"{k} {v:.3f}" for k, v in zip(("background",) + dense.SHAPES, per_class))
            + ")",
            flush=True,
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "command": " ".join(
                        ["python", "examples/segmentation.py"]
                        + (argv if argv is not None else sys.argv[1:])
                    ),
                    "results": results,
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
