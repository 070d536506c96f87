"""Train a keras_padfree model with the papers' recipes.

With no arguments it trains the padding-free ResNet-20 (BSConv library, ``bsconv_resnet20_cifar_pf``)
on the bundled UCI digits (upsampled to 32x32) for a few epochs, on the CPU, and prints the top-1/
top-5 accuracy on the held-out digits::

    python training/fit.py
    python training/fit.py --model ghostnet_pf_cifar --dataset cifar100 --data-dir ~/tfds
    python training/fit.py --model bsconv_mobilenetv3_large_dogs_pf --dataset stanford_dogs \\
        --distribute mirrored --mixed-precision --jit-compile on         # GPUs
    KERAS_BACKEND=jax python training/fit.py --distribute data_parallel

Re-running the same command with the same ``--output-dir`` resumes an interrupted run exactly where
its last backup left it (``--no-resume`` starts over). See ``keras_padfree/training/loop.py`` for the
files written.
"""

import argparse
import os
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="fit.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="bsconv_resnet20_cifar_pf",
                   help="registered model name (--list-models)")
    p.add_argument("--dataset", default="digits",
                   help="cifar10, cifar100, stanford_dogs, imagenet2012, imagenet_resized/32x32, "
                        "folder, digits (bundled)")
    p.add_argument("--recipe", default=None,
                   help="training recipe (--list-recipes); default: the reference recipe of the "
                        "model family on the dataset")
    p.add_argument("--epochs", type=_positive_int, default=None, help="default: the recipe's")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="global batch size; default: the recipe's")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="initial learning rate; default: the recipe's")
    p.add_argument("--image-size", type=_positive_int, default=None,
                   help="square input size; default: the model's registered input")
    p.add_argument("--data-dir", default=None,
                   help="TensorFlow Datasets data dir, or the image folder for --dataset folder")
    p.add_argument("--output-dir", default=os.path.join("runs", "default"),
                   help="checkpoints, logs and final.json go here")
    p.add_argument("--distribute", default="none",
                   help="none | mirrored | multi_worker (TF_CONFIG) | tpu (TF); "
                        "none | data_parallel (JAX)")
    p.add_argument("--tpu", default=None, help="TPU address for --distribute tpu")
    p.add_argument("--cpu-devices", type=_positive_int, default=1,
                   help="split the CPU into N logical devices (TF; for testing --distribute)")
    p.add_argument("--mixed-precision", nargs="?", const="auto", default="float32",
                   help="float32 | mixed_float16 | mixed_bfloat16; the bare flag picks "
                        "mixed_float16 on GPU, mixed_bfloat16 otherwise")
    p.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"),
                   help="XLA; auto = Keras' choice (off for TensorFlow on CPU, where the "
                        "benchmark found it slower)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, shuffling and augmentation")
    p.add_argument("--steps-per-epoch", type=_positive_int, default=None,
                   help="train only the first N batches of each epoch (quick runs)")
    p.add_argument("--eval-steps", type=_positive_int, default=None,
                   help="evaluate only N batches (quick runs)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="--dataset folder without a val/ folder: share held out per class")
    p.add_argument("--on-corrupt", default="skip", choices=("skip", "error"),
                   help="--dataset folder: skip corrupt images with a warning, or stop")
    p.add_argument("--backup-freq", type=int, default=100,
                   help="back up the training state every N steps (and every epoch)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="ignore an existing backup in --output-dir and start over")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    p.add_argument("--cache", default="auto", choices=("auto", "on", "off"),
                   help="cache decoded images in memory (auto: when they fit in 2 GiB)")
    p.add_argument("--verbose", default="auto", choices=("auto", "0", "1", "2"),
                   help="Keras fit verbosity (auto: progress bar on a terminal)")
    p.add_argument("--list-models", action="store_true", help="print the model names and exit")
    p.add_argument("--list-recipes", action="store_true", help="print the recipes and exit")
    p.add_argument("--list-datasets", action="store_true", help="print the datasets and exit")
    return p


def _precision(flag):
    if flag != "auto":
        return flag
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    if keras.backend.backend() == "jax":
        import jax

        return "mixed_float16" if jax.default_backend() == "gpu" else "mixed_bfloat16"
    import torch

    return "mixed_float16" if torch.cuda.is_available() else "mixed_bfloat16"


def main(argv=None):
    """Parses ``argv`` and trains; returns the final evaluation dict (None for the --list flags)."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.list_models:
        from keras_padfree.applications import list_models

        print("\n".join(list_models()))
        return None
    if args.list_recipes:
        from keras_padfree.training import get_recipe
        from keras_padfree.training import list_recipes

        for name in list_recipes():
            print(f"{name}: {get_recipe(name).description}")
        return None
    if args.list_datasets:
        from keras_padfree.data import list_datasets

        print("\n".join(list_datasets()))
        return None
    from keras_padfree.training import TrainConfig
    from keras_padfree.training import train

    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    cfg = TrainConfig(
        model=args.model, dataset=args.dataset, recipe=args.recipe, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, image_size=args.image_size,
        data_dir=args.data_dir, output_dir=args.output_dir, distribute=args.distribute,
        cpu_devices=args.cpu_devices, tpu=args.tpu,
        mixed_precision=_precision(args.mixed_precision), jit_compile=args.jit_compile,
        seed=args.seed, steps_per_epoch=args.steps_per_epoch, eval_steps=args.eval_steps,
        val_fraction=args.val_fraction, on_corrupt=args.on_corrupt, backup_freq=args.backup_freq,
        resume=args.resume, tensorboard=args.tensorboard, cache=args.cache, verbose=verbose)
    return train(cfg)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from keras_padfree.data.specs import DatasetNotFoundError

    try:
        main()
    except (DatasetNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
