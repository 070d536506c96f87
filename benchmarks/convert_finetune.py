"""Is `keras_padfree.convert` useful? Convert a trained model, fine-tune briefly, compare.

On the bundled UCI digits (1,438 training / 359 test images, upsampled 8x8 -> 32x32 RGB), with the
TensorFlow backend by default:

1. train the zoo's original model (``--model``, default ``shufflenetv2_cifar``) from scratch
   for ``--epochs`` epochs;
2. convert it with its family's options (:func:`keras_padfree.convert.family_options`): padding-free
   downsampling only (every weight carried) and with the hybrid stem (its weights new);
3. measure each converted model's test accuracy before fine-tuning, after re-estimating its
   BatchNorm statistics on the training images (no weight update), and after each of
   ``--finetune-epochs`` epochs of fine-tuning;
4. train the same padding-free architectures (the zoo's "downsampling_only" and "pf" models) from
   scratch for as many epochs as the fine-tuning took: the same time;
5. control: train the original on for as many epochs, exactly like the fine-tuning.

Training is seeded (``--seed``: weights and data order); one batch size and optimizer (Adam;
fine-tuning and the control at ``--finetune-lr``). Writes
``benchmarks/results/convert_finetune.{md,json}`` with the command, the date, the machine and its
load.

    python benchmarks/convert_finetune.py      # 22 min on a 2-core CPU shared by 4 jobs (load 4-5)
    python benchmarks/convert_finetune.py --epochs 1 --finetune-epochs 1 --out /tmp/smoke
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_padfree import applications  # noqa: E402
from keras_padfree import profiling  # noqa: E402
from keras_padfree.convert import convert  # noqa: E402
from keras_padfree.convert import family_options  # noqa: E402
from keras_padfree.data import load_digits  # noqa: E402

SIZE = 32
CLASSES = 10


def load_data():
    """Digits as float32 32x32x3 images standardised with the training set's mean and std."""
    out = {}
    for split in ("train", "test"):
        images, labels = load_digits(split)
        x = images.astype("float32") / 255.0
        x = keras.ops.convert_to_numpy(
            keras.ops.image.resize(x, (SIZE, SIZE), interpolation="bilinear")
        )
        out[split] = (np.repeat(x, 3, axis=-1), labels.astype("int32"))
    mean, std = out["train"][0].mean(), out["train"][0].std()
    return {k: ((x - mean) / std, y) for k, (x, y) in out.items()}


def variant_name(orig, variant):
    """The registry name of ``orig``'s family model of ``variant`` in the same configuration."""
    info = applications.get_model_info(orig)
    for name in applications.list_models(family=info.family):
        other = applications.get_model_info(name)
        if (
            other.variant == variant
            and other.input_shape == info.input_shape
            and other.dataset == info.dataset
        ):
            return name
    raise ValueError(f"No {variant!r} model of family {info.family!r} next to {orig!r}.")


def compile_model(model, lr):
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )  # XLA: slower on CPU, slow to compile


def accuracy(model, data):
    x, y = data["test"]
    logits = model.predict(x, batch_size=128, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def fit_epochs(model, data, epochs, lr, batch_size, seed, label, log):
    """Trains ``epochs`` epochs (one `fit` call each, same shuffling per seed); yields per epoch."""
    compile_model(model, lr)
    x, y = data["train"]
    for epoch in range(epochs):
        order = np.random.default_rng(seed + epoch).permutation(len(y))
        start = time.perf_counter()
        model.fit(x[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        seconds = time.perf_counter() - start
        acc = accuracy(model, data)
        log(f"  {label}: epoch {epoch + 1}/{epochs}: {seconds:.1f} s, test accuracy {acc:.4f}")
        yield epoch + 1, seconds, acc


def recalibrate_batch_norm(model, data, batch_size):
    """Re-estimates every BN's moving statistics as the mean over the training batches."""
    bns = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    saved = [bn.momentum for bn in bns]
    x, _ = data["train"]
    try:
        for t, start in enumerate(range(0, len(x), batch_size)):
            for bn in bns:
                bn.momentum = t / (t + 1.0)  # moving = running mean of the batch statistics
            model(x[start : start + batch_size], training=True)
    finally:
        for bn, momentum in zip(bns, saved):
            bn.momentum = momentum
    return model


def build(name, seed):
    keras.utils.set_random_seed(seed)
    return applications.create_model(
        name, input_shape=(SIZE, SIZE, 3), classes=CLASSES, classifier_activation=None
    )


def run(args, log):
    data = load_data()
    rows = []

    def row(model_label, how, epochs, seconds, acc, flops):
        rows.append(
            {
                "model": model_label,
                "how": how,
                "epochs": epochs,
                "train_seconds": None if seconds is None else round(seconds, 1),
                "test_accuracy": round(acc, 4),
                "macs": flops,
            }
        )

    orig = build(args.model, args.seed)
    orig_macs = profiling.count_flops(orig)
    log(f"{args.model}: training from scratch, {args.epochs} epochs")
    history = list(
        fit_epochs(orig, data, args.epochs, args.lr, args.batch_size, args.seed, "original", log)
    )
    row(
        f"{args.model} (original)",
        "trained from scratch",
        args.epochs,
        sum(h[1] for h in history),
        history[-1][2],
        orig_macs,
    )

    targets = {
        False: variant_name(args.model, "downsampling_only"),
        True: variant_name(args.model, "pf"),
    }
    for stem in (False, True):
        label = (
            "converted, padding-free downsampling + hybrid stem"
            if stem
            else "converted, padding-free downsampling"
        )
        converted, report = convert(
            orig, hybrid_stem=stem, return_report=True, **family_options(args.model)
        )
        log(f"{label}: {report.summary()}")
        macs = profiling.count_flops(converted)
        row(label, "converted, no training", 0, None, accuracy(converted, data), macs)
        calibrated = convert(orig, hybrid_stem=stem, **family_options(args.model))
        recalibrate_batch_norm(calibrated, data, args.batch_size)
        row(
            label,
            "converted, BN statistics re-estimated (no weight update)",
            0,
            None,
            accuracy(calibrated, data),
            macs,
        )
        total = 0.0
        for epoch, seconds, acc in fit_epochs(
            converted,
            data,
            args.finetune_epochs,
            args.finetune_lr,
            args.batch_size,
            args.seed + 1000,
            "fine-tune",
            log,
        ):
            total += seconds
            row(label, "converted, fine-tuned", epoch, total, acc, macs)

        scratch = build(targets[stem], args.seed)
        scratch_macs = profiling.count_flops(scratch)
        total = 0.0
        for epoch, seconds, acc in fit_epochs(
            scratch, data, args.finetune_epochs, args.lr, args.batch_size, args.seed, "scratch", log
        ):
            total += seconds
            row(
                f"{targets[stem]} (zoo)",
                "trained from scratch (same epochs as the fine-tuning)",
                epoch,
                total,
                acc,
                scratch_macs,
            )

    # Control: the original itself, trained as long as the fine-tuning at the fine-tuning lr.
    total = 0.0
    for epoch, seconds, acc in fit_epochs(
        orig,
        data,
        args.finetune_epochs,
        args.finetune_lr,
        args.batch_size,
        args.seed + 1000,
        "original, more",
        log,
    ):
        total += seconds
        row(
            f"{args.model} (original)",
            "control: trained on like the fine-tuning",
            args.epochs + epoch,
            total,
            acc,
            orig_macs,
        )
    return rows


def write(results, out):
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    lines = [
        "# Converting a trained model: accuracy before and after a short fine-tuning",
        "",
        f"Generated by `{results['command']}` on {results['date']} ({results['machine']}). "
        f"Keras {results['keras']}, backend {results['backend']}. Whole run: "
        f"{results['seconds']:.0f} s. 1-minute load average: {results['load_start']:.2f} at the "
        f"start, {results['load_end']:.2f} at the end, on {results['cpus']} cores (the machine "
        "is shared: training seconds depend on the load; epochs are the comparable unit).",
        "",
        f"Data: the bundled UCI digits (1,438 training / 359 test images), upsampled to "
        f"{SIZE}x{SIZE}x3 and standardised; no augmentation. Adam, batch {results['batch_size']},"
        f" lr {results['lr']} from scratch and {results['finetune_lr']} for fine-tuning; seed "
        f"{results['seed']}. MACs: multiply-accumulates per image at {SIZE}x{SIZE} "
        "(`profiling.count_flops`, default convention).",
        "",
        "| model | how | epochs | train s | test accuracy | MACs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        seconds = "" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}"
        lines.append(
            f"| {r['model']} | {r['how']} | {r['epochs']} | {seconds} | "
            f"{100 * r['test_accuracy']:.1f} % | {r['macs'] / 1e6:.1f} M |"
        )
    lines.append("")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="shufflenetv2_cifar",
        help="a zoo original (variant 'orig') of a family with a padding-free form",
    )
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the original")
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--finetune-lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        default=os.path.join(RESULTS, "convert_finetune"),
        help="output path without extension (.md and .json are written)",
    )
    args = parser.parse_args(argv)
    info = applications.get_model_info(args.model)
    if info.variant != "orig":
        parser.error(
            f"--model must be an original model (variant 'orig'); {args.model!r} is "
            f"{info.variant!r}."
        )

    def log(message):
        print(message, flush=True)

    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    rows = run(args, log)
    results = {
        "command": "python benchmarks/convert_finetune.py"
        + (
            " " + " ".join(argv if argv is not None else sys.argv[1:])
            if (argv if argv is not None else sys.argv[1:])
            else ""
        ),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, no GPU"
        if not _has_gpu()
        else f"{platform.machine()} with GPU",
        "cpus": len(os.sched_getaffinity(0)),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "seconds": time.perf_counter() - start,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "model": args.model,
        "epochs": args.epochs,
        "finetune_epochs": args.finetune_epochs,
        "lr": args.lr,
        "finetune_lr": args.finetune_lr,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "rows": rows,
    }
    write(results, args.out)
    log(f"wrote {args.out}.md and .json ({results['seconds']:.0f} s)")


def _has_gpu():
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except ImportError:
        return False


if __name__ == "__main__":
    main()
