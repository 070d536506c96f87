"""Train a keras_padfree model with the papers' recipes.

With no arguments it trains the padding-free ResNet-20 (BSConv library,
``bsconv_resnet20_pf_cifar``) on the bundled UCI digits (upsampled to 32x32) for a few epochs, on
the CPU, and prints the top-1/top-5 accuracy on the held-out digits::

    python training/fit.py
    python training/fit.py --model ghostnet_pf_cifar --dataset cifar100 --data-dir ~/tfds
    python training/fit.py --model bsconv_mobilenetv3_large_pf_dogs --dataset stanford_dogs \\
        --distribute mirrored --mixed-precision --jit-compile on         # GPUs
    KERAS_BACKEND=jax python training/fit.py --distribute data_parallel     # several devices
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python training/fit.py --distribute data_parallel                 # 2 CPU devices

The saved models (``best.keras``, ``last.keras``, ``final.keras``) hold the recipe's input
normalisation and take raw RGB pixels in [0, 255]: ``training/evaluate.py`` and
``training/export_tflite.py`` read it from the model.

Re-running the same command with the same ``--output-dir`` resumes an interrupted run exactly where
its last backup left it, and only reports the result of a finished one. Other settings are refused
(the differing ones named) unless they are safe and listed in ``--allow-changes`` (e.g. more
epochs); ``--no-resume`` starts over. One run per folder at a time. See
``keras_padfree/training/loop.py`` for the files written.

Exit status: 0 done, 2 bad arguments or a folder that cannot take the run (an ``error:`` line),
1 a run that stopped (non-finite loss, a file that cannot be written; the last good backup is kept).
"""

import argparse
import importlib.util
import math
import os
import shlex
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEFAULT_MODEL = "bsconv_resnet20_pf_cifar"  # the padding-free BSConv ResNet-20


def _load_startup():
    """keras_padfree/training/startup.py, loaded without importing the package (TensorFlow)."""
    path = os.path.join(ROOT, "keras_padfree", "training", "startup.py")
    spec = importlib.util.spec_from_file_location("_keras_padfree_startup", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a finite number > 0, received {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, received {text!r}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number in (0, 1), received {text!r}"
        ) from None
    if not 0.0 < value < 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fit.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"registered model name (--list-models); default: {DEFAULT_MODEL}",
    )
    p.add_argument(
        "--dataset",
        default="digits",
        help="cifar10, cifar100, stanford_dogs, imagenet2012, imagenet_resized/32x32, "
        "folder, digits (bundled)",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="training recipe (--list-recipes); default: the reference recipe of the "
        "model family on the dataset",
    )
    p.add_argument("--epochs", type=_positive_int, default=None, help="default: the recipe's")
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="global batch size; default: the recipe's",
    )
    p.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help="initial learning rate; default: the recipe's",
    )
    p.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help="square input size; default: the model's registered input",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="TensorFlow Datasets data dir, or the image folder for --dataset folder",
    )
    p.add_argument(
        "--output-dir",
        default=os.path.join("runs", "default"),
        help="checkpoints, logs and final.json go here",
    )
    p.add_argument(
        "--distribute",
        default="none",
        help="none | mirrored | multi_worker (TF_CONFIG) | tpu (TF); none | data_parallel (JAX)",
    )
    p.add_argument("--tpu", default=None, help="TPU address for --distribute tpu")
    p.add_argument(
        "--cpu-devices",
        type=_positive_int,
        default=1,
        help="split the CPU into N logical devices (TF; for testing --distribute)",
    )
    p.add_argument(
        "--mixed-precision",
        nargs="?",
        const="auto",
        default="float32",
        help="float32 | mixed_float16 | mixed_bfloat16; the bare flag picks "
        "mixed_float16 on GPU, mixed_bfloat16 otherwise",
    )
    p.add_argument(
        "--jit-compile",
        default="auto",
        choices=("auto", "on", "off"),
        help="XLA; auto = Keras' choice (off for TensorFlow on CPU, where the "
        "benchmark found it slower)",
    )
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, help="seed of init, shuffling and augmentation"
    )
    p.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        default=None,
        help="train only the first N batches of each epoch (quick runs)",
    )
    p.add_argument(
        "--eval-steps",
        type=_positive_int,
        default=None,
        help="evaluate only N batches (quick runs)",
    )
    p.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.2,
        help="--dataset folder without a val/ folder: share held out per class",
    )
    p.add_argument(
        "--on-corrupt",
        default="skip",
        choices=("skip", "error"),
        help="--dataset folder: leave undecodable images out with a warning (listed "
        "in final.json), or stop",
    )
    p.add_argument(
        "--backup-freq",
        type=_non_negative_int,
        default=100,
        help="back up the training state every N steps (0: only every epoch)",
    )
    p.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="start over: delete the previous run's backup, log and models in "
        "--output-dir (only once every argument has been checked)",
    )
    p.add_argument(
        "--allow-changes",
        default="",
        metavar="KEY[,KEY]",
        help="resume a run with new values of these settings: epochs, "
        "learning_rate, distribute (others are always refused)",
    )
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    p.add_argument(
        "--cache",
        default="auto",
        choices=("auto", "on", "off"),
        help="cache decoded images in memory (auto: when they fit in 2 GiB)",
    )
    p.add_argument(
        "--verbose",
        default="auto",
        choices=("auto", "0", "1", "2"),
        help="Keras fit verbosity (auto: progress bar on a terminal)",
    )
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


def _import_quietly():
    """Imports TensorFlow, Keras and keras_padfree without TensorFlow's C++ start-up lines."""
    startup = _load_startup()
    startup.configure_environment()
    if ROOT not in sys.path and os.path.abspath(ROOT) not in map(os.path.abspath, sys.path):
        sys.path.insert(0, ROOT)
    with startup.quiet_native_stderr():
        import keras_padfree.training  # noqa: F401 -- imports keras and tensorflow


def next_commands(result: dict, output_dir: str) -> list[str]:
    """The commands that evaluate and export the run's best model, with the real paths."""
    best = os.path.join(output_dir, "best.keras")
    if not os.path.exists(best):
        best = os.path.join(output_dir, "final.keras")
    data = ["--dataset", result["dataset"]]
    if result.get("data_dir"):
        data += ["--data-dir", result["data_dir"]]
    tflite = os.path.join(output_dir, f"{result['model']}.tflite")
    quote = " ".join
    return [
        quote(
            ["python", "training/evaluate.py", "--model-path", shlex.quote(best)]
            + [shlex.quote(a) for a in data]
        ),
        quote(
            [
                "python",
                "training/export_tflite.py",
                "--model-path",
                shlex.quote(best),
                "--output",
                shlex.quote(tflite),
            ]
        ),
    ]


def main(argv: list[str] | None = None) -> dict | None:
    """Parses ``argv`` and trains; returns the final evaluation dict (None for the --list flags)."""
    args = build_parser().parse_args(argv)
    _import_quietly()
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

    if args.model is None:
        args.model = DEFAULT_MODEL
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    cfg = TrainConfig(
        model=args.model,
        dataset=args.dataset,
        recipe=args.recipe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        image_size=args.image_size,
        data_dir=args.data_dir,
        output_dir=args.output_dir,
        distribute=args.distribute,
        cpu_devices=args.cpu_devices,
        tpu=args.tpu,
        mixed_precision=_precision(args.mixed_precision),
        jit_compile=args.jit_compile,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
        eval_steps=args.eval_steps,
        val_fraction=args.val_fraction,
        on_corrupt=args.on_corrupt,
        backup_freq=args.backup_freq,
        resume=args.resume,
        allow_changes=args.allow_changes,
        tensorboard=args.tensorboard,
        cache=args.cache,
        verbose=verbose,
    )
    result = train(cfg)
    print("Next: evaluate the best model, or export it for Android (LiteRT):")
    for command in next_commands(dict(result, data_dir=args.data_dir), args.output_dir):
        print(f"  {command}")
    return result


def run(argv: list[str] | None = None) -> int:
    """``main(argv)`` as the command line runs it; returns the exit status.

    0: done. 2: bad arguments, a missing dataset, or an output folder that cannot take this run
    (busy, another run's, a damaged backup). 1: the run stopped (non-finite loss, a file that
    cannot be written). Errors are one ``error: ...`` line on stderr; the message says what was
    kept and how to go on.
    """
    try:
        main(argv)
    except SystemExit as e:  # argparse: its message is printed already
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        print(
            "error: interrupted; rerun the same command to resume from the last backup.",
            file=sys.stderr,
        )
        return 130
    except Exception as e:  # noqa: BLE001 -- classified below; anything else is re-raised
        from keras_padfree.training.errors import exit_status

        status = exit_status(e)
        if status is None:
            raise
        print(f"error: {e}", file=sys.stderr)
        return status
    return 0


if __name__ == "__main__":
    sys.exit(run())
