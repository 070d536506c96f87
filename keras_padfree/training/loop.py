"""The training run behind ``training/fit.py`` and the evaluation behind ``training/evaluate.py``.

:func:`train` builds a registered model, the recipe's optimizer (PyTorch SGD semantics with coupled
L2), schedule and input pipeline, and runs ``model.fit`` with exact resumption
(:class:`~keras_padfree.training.callbacks.TrainingBackup`), best/last checkpoints, a CSV log,
TensorBoard, ``TerminateOnNaN`` and progress bars. It ends with a top-1/top-5 evaluation written as
JSON next to the model. Output folder layout::

    OUTPUT_DIR/final.keras       model after the last epoch
    OUTPUT_DIR/final.json        its top-1 / top-5 / loss on the evaluation split, and the run
    OUTPUT_DIR/best.keras        model of the epoch with the best val_top1
    OUTPUT_DIR/best.json         that epoch and its metrics
    OUTPUT_DIR/last.keras        model at the end of the latest epoch (while training)
    OUTPUT_DIR/train_log.csv     one row per epoch
    OUTPUT_DIR/tensorboard/      TensorBoard logs (when the tensorboard package is installed)
    OUTPUT_DIR/backup/           resumption state (removed when the run completes)
"""

import csv
import dataclasses
import importlib.util
import inspect
import json
import math
import os
import shutil
import time

import keras

from keras_padfree.data import pipeline
from keras_padfree.data.specs import get_dataset_spec
from keras_padfree.training import distribute as dist
from keras_padfree.training.callbacks import TrainingBackup
from keras_padfree.training.callbacks import truncate_csv_log
from keras_padfree.training.recipes import default_recipe_for
from keras_padfree.training.recipes import get_recipe

__all__ = ["TrainConfig", "evaluate_model", "train"]


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs (the CLI flags of ``training/fit.py``)."""

    model: str = "bsconv_resnet20_cifar_pf"
    dataset: str = "digits"
    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    image_size: int | None = None
    data_dir: str | None = None
    output_dir: str = "runs/default"
    distribute: str = "none"
    cpu_devices: int = 1
    tpu: str | None = None
    mixed_precision: str = "float32"
    jit_compile: str = "auto"
    seed: int = 0
    steps_per_epoch: int | None = None
    eval_steps: int | None = None
    val_fraction: float = 0.2
    on_corrupt: str = "skip"
    backup_freq: int = 100
    resume: bool = True
    tensorboard: bool = True
    cache: str = "auto"
    verbose: int | str = "auto"


def _validate(cfg):
    for name in ("epochs", "batch_size", "steps_per_epoch", "eval_steps", "image_size"):
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise ValueError(f"Argument `{name}` must be a positive int. Received: {name}={v!r}.")
    if cfg.learning_rate is not None and not cfg.learning_rate > 0:
        raise ValueError("Argument `learning_rate` must be > 0. "
                         f"Received: learning_rate={cfg.learning_rate!r}.")
    if cfg.jit_compile not in ("auto", "on", "off"):
        raise ValueError("Argument `jit_compile` must be 'auto', 'on' or 'off'. "
                         f"Received: jit_compile={cfg.jit_compile!r}.")
    if cfg.cache not in ("auto", "on", "off"):
        raise ValueError(f"Argument `cache` must be 'auto', 'on' or 'off'. Received: {cfg.cache!r}.")


def _metrics(classes):
    return [keras.metrics.CategoricalAccuracy(name="top1"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, classes), name="top5")]


def pipeline_model_kwargs(info):
    """Builder arguments for a model fed by the training pipeline.

    The pipeline normalises images with the recipe's mean/std, so a model that can normalise its own
    input (PydMobileNet's ``include_preprocessing``) is built without that, or it would normalise
    twice.
    """
    if "include_preprocessing" in inspect.signature(info.builder).parameters:
        return {"include_preprocessing": False}
    return {}


def _jit(flag):
    return {"auto": "auto", "on": True, "off": False}[flag]


def _float32_output(model):
    """Mixed precision: the softmax output is cast to float32 for a stable loss."""
    if model.outputs[0].dtype == "float32":
        return model
    out = keras.layers.Activation("linear", dtype="float32", name="output_float32")(model.output)
    return keras.Model(model.inputs, out, name=model.name)


def _read_log(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _verbose(v):
    if v != "auto":
        return int(v)
    import sys

    return 1 if sys.stdout.isatty() else 2


def train(cfg):
    """Runs (or resumes) one training run; returns the final evaluation dict (also in final.json).

    Args:
        cfg: a :class:`TrainConfig`.
    """
    t_start = time.time()
    _validate(cfg)
    get_dataset_spec(cfg.dataset)
    dist.set_cpu_devices(cfg.cpu_devices)  # before TensorFlow initialises its devices
    # The data first: a dataset that is not prepared fails before the model zoo is imported.
    train_src = pipeline.load_source(cfg.dataset, "train", data_dir=cfg.data_dir,
                                     val_fraction=cfg.val_fraction, seed=cfg.seed,
                                     on_corrupt=cfg.on_corrupt)
    eval_src = pipeline.load_source(cfg.dataset, "eval", data_dir=cfg.data_dir,
                                    val_fraction=cfg.val_fraction, seed=cfg.seed,
                                    on_corrupt=cfg.on_corrupt)
    from keras_padfree.applications import create_model
    from keras_padfree.applications import get_model_info

    info = get_model_info(cfg.model)
    recipe = get_recipe(cfg.recipe or default_recipe_for(info, cfg.dataset))
    epochs = cfg.epochs or recipe.epochs
    batch_size = cfg.batch_size or recipe.batch_size
    size = cfg.image_size or info.input_shape[0]
    prep = recipe.preprocessing

    keras.utils.set_random_seed(cfg.seed)
    dist.set_precision(cfg.mixed_precision)
    scope, replicas, even = dist.setup_distribution(cfg.distribute, cfg.tpu)

    classes = train_src.classes
    if even and batch_size % replicas:
        raise ValueError(f"Argument `batch_size` must be a multiple of the {replicas} replicas. "
                         f"Received: batch_size={batch_size}.")
    full_spe = pipeline.steps_per_epoch(train_src.num_examples, batch_size, drop_remainder=even)
    if full_spe == 0:
        raise ValueError(f"The training split has {train_src.num_examples} examples, fewer than "
                         f"one batch of {batch_size}.")
    spe = min(cfg.steps_per_epoch, full_spe) if cfg.steps_per_epoch else full_spe
    cache = {"auto": "auto", "on": True, "off": False}[cfg.cache]

    os.makedirs(cfg.output_dir, exist_ok=True)
    backup_dir = os.path.join(cfg.output_dir, "backup")
    log_path = os.path.join(cfg.output_dir, "train_log.csv")
    best_path = os.path.join(cfg.output_dir, "best.keras")

    with scope:
        model = create_model(cfg.model, input_shape=(size, size, 3), classes=classes,
                             **pipeline_model_kwargs(info))
        if cfg.mixed_precision != "float32":
            model = _float32_output(model)
        optimizer = recipe.make_optimizer(spe, epochs=epochs, learning_rate=cfg.learning_rate)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
            metrics=_metrics(classes), jit_compile=_jit(cfg.jit_compile))
        state = None
        if cfg.resume:
            state = TrainingBackup.restore(model, backup_dir)
        else:
            TrainingBackup.clear(backup_dir)
    start_epoch, skip = (state["epoch"], state["step"]) if state else (0, 0)
    if state:
        print(f"Resuming from epoch {start_epoch}, step {skip} (optimizer step "
              f"{state['iterations']}) with the backup in {backup_dir}.", flush=True)
        truncate_csv_log(log_path, start_epoch)
    elif os.path.exists(log_path):
        os.remove(log_path)
    previous = _read_log(log_path)
    best_so_far = max((float(r["val_top1"]) for r in previous if "val_top1" in r), default=None)

    print(f"model={cfg.model} dataset={cfg.dataset} ({train_src.num_examples} train / "
          f"{eval_src.num_examples} eval, {classes} classes) recipe={recipe.name} "
          f"epochs={epochs} batch={batch_size} steps/epoch={spe} size={size} "
          f"backend={keras.backend.backend()} distribute={cfg.distribute} "
          f"precision={cfg.mixed_precision} jit={cfg.jit_compile}", flush=True)

    eval_ds = pipeline.eval_dataset(eval_src, prep, size=size, classes=classes,
                                    batch_size=batch_size, cache=cache, drop_remainder=even)
    eval_steps = cfg.eval_steps or pipeline.steps_per_epoch(eval_src.num_examples, batch_size,
                                                            drop_remainder=even)
    backup = TrainingBackup(backup_dir, cfg.backup_freq, spe)
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(log_path, append=True),
        keras.callbacks.ModelCheckpoint(best_path, monitor="val_top1", mode="max",
                                        save_best_only=True, initial_value_threshold=best_so_far),
        keras.callbacks.ModelCheckpoint(os.path.join(cfg.output_dir, "last.keras")),
    ]
    if cfg.tensorboard:
        if importlib.util.find_spec("tensorboard") is not None:
            callbacks.append(
                keras.callbacks.TensorBoard(os.path.join(cfg.output_dir, "tensorboard")))
        else:
            print("TensorBoard logs are off: the `tensorboard` package is not installed "
                  "(pip install tensorboard).", flush=True)
    callbacks.append(backup)  # last: a backup is written after the epoch's logs and checkpoints

    phases = []
    if start_epoch < epochs and skip:
        phases.append((start_epoch, start_epoch + 1, spe - skip, skip))
        start_epoch += 1
    if start_epoch < epochs:
        phases.append((start_epoch, epochs, spe, 0))
    verbose = _verbose(cfg.verbose)
    stopped = False
    for first, last, steps, skip_steps in phases:
        stream = pipeline.train_stream(
            train_src, prep, size=size, classes=classes, batch_size=batch_size, seed=cfg.seed,
            start_epoch=first, epochs=last, skip_steps=skip_steps,
            steps_per_epoch_limit=spe if spe < full_spe else None, drop_remainder=even,
            cache=cache, run_epochs=epochs)
        backup.set_position(first, skip_steps)
        history = model.fit(stream, epochs=last, initial_epoch=first, steps_per_epoch=steps,
                            validation_data=eval_ds, validation_steps=eval_steps,
                            shuffle=False, callbacks=callbacks, verbose=verbose)
        if model.stop_training or any(
                not math.isfinite(v) for v in history.history.get("loss", [0.0])):
            stopped = True
            break

    final_path = os.path.join(cfg.output_dir, "final.keras")
    model.save(final_path)
    result = evaluate_model(model, eval_ds, steps=eval_steps)
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    result.update({
        "model": cfg.model, "dataset": cfg.dataset, "split": eval_src.split,
        "eval_examples": eval_src.num_examples, "recipe": recipe.name, "epochs": epochs,
        "batch_size": batch_size, "steps_per_epoch": spe, "optimizer_steps": iterations,
        "image_size": size, "classes": classes, "backend": keras.backend.backend(),
        "distribute": cfg.distribute, "replicas": replicas, "precision": cfg.mixed_precision,
        "jit_compile": bool(model.jit_compile), "seed": cfg.seed, "terminated_early": stopped,
        "wall_time_s": round(time.time() - t_start, 1),
        "skipped_corrupt_files": list(train_src.skipped) + list(eval_src.skipped),
    })
    _write_json(os.path.join(cfg.output_dir, "final.json"), result)
    rows = _read_log(log_path)
    if rows and "val_top1" in rows[0]:
        best = max(rows, key=lambda r: float(r["val_top1"]))
        _write_json(os.path.join(cfg.output_dir, "best.json"), {
            "epoch": int(best["epoch"]), "top1": float(best["val_top1"]),
            "top5": float(best["val_top5"]), "loss": float(best["val_loss"]),
            "model": cfg.model, "dataset": cfg.dataset, "split": eval_src.split})
    if not stopped and os.path.isdir(backup_dir):
        shutil.rmtree(backup_dir)
    print(f"final: top1={result['top1']:.4f} top5={result['top5']:.4f} "
          f"loss={result['loss']:.4f} ({result['wall_time_s']} s) -> {final_path}", flush=True)
    return result


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def evaluate_model(model, dataset, steps=None):
    """Top-1, top-5 and loss of a compiled ``model`` on ``(images, one-hot labels)`` batches."""
    values = model.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    return {"top1": float(values["top1"]), "top5": float(values["top5"]),
            "loss": float(values["loss"])}
