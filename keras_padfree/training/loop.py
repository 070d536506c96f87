"""The training run behind ``training/fit.py`` and the evaluation behind ``training/evaluate.py``.

:func:`train` builds a registered model, the recipe's optimizer (PyTorch SGD semantics with coupled
L2), schedule and input pipeline, and runs ``model.fit`` with exact resumption
(:class:`~keras_padfree.training.callbacks.TrainingBackup`), best/last checkpoints, a CSV log,
TensorBoard, a stop on non-finite losses and progress bars. It ends with a top-1/top-5 evaluation
written as JSON next to the model.

The models hold their input normalisation: the model is built with ``include_preprocessing=True``
and the recipe's mean/std (``Rescaling(1/255)`` and ``Normalization`` after its input; mean 0 /
std 1 for recipes without normalisation), the input pipeline hands it raw RGB pixels in [0, 255]
(augmented in pixel space), so ``best.keras`` / ``last.keras`` / ``final.keras`` take raw pixels
and ``training/evaluate.py`` and the export read the normalisation from the model. The run's
settings record this (``"input": "raw_pixels"``): a run started by an earlier version, whose
pipeline normalised the images for a model without those layers, is not resumed into this
convention. Output folder layout::

    OUTPUT_DIR/final.keras       model after the last epoch
    OUTPUT_DIR/final.json        its top-1 / top-5 / loss on the evaluation split, and the run
                                 (settings, normalisation, changes made on resumes)
    OUTPUT_DIR/best.keras        model of the epoch with the best val_top1
    OUTPUT_DIR/best.json         that epoch and its metrics
    OUTPUT_DIR/last.keras        model at the end of the latest epoch
    OUTPUT_DIR/train_log.csv     one row per epoch
    OUTPUT_DIR/tensorboard/      TensorBoard logs (when the tensorboard package is installed)
    OUTPUT_DIR/backup/           training state (weights, optimizer, position, settings); kept
                                 after the run, so ``--epochs N --allow-changes epochs`` can
                                 continue a finished run
    OUTPUT_DIR/run.json          the run record (settings, status); run.lock while it runs

One run per folder (:mod:`keras_padfree.training.run_folder`): a second run on a busy folder stops
at once; the same command again resumes an interrupted run or, for a finished one, reports its
result without training; other settings are refused (the differing ones named) unless they are
safe and allowed with ``--allow-changes``; ``--no-resume`` starts over, deleting the previous
run's files only after every argument has been checked and the model has been built. Every file is
written aside and renamed (:mod:`keras_padfree.training.files`). A run whose loss or weights turn
non-finite stops with :class:`~keras_padfree.training.errors.TrainingDiverged`, keeping the last
finite backup and models; a file that cannot be written stops it with
:class:`~keras_padfree.training.errors.OutputWriteError`, keeping the last good backup.
"""

import dataclasses
import importlib.util
import inspect
import math
import os
import time

import keras
import numpy as np

from keras_padfree.data import pipeline
from keras_padfree.data.augment import model_normalization
from keras_padfree.data.augment import normalization_record
from keras_padfree.data.specs import get_dataset_spec
from keras_padfree.training import distribute as dist
from keras_padfree.training import files
from keras_padfree.training import run_folder
from keras_padfree.training import speed
from keras_padfree.training.callbacks import EpochLog
from keras_padfree.training.callbacks import ModelCheckpoints
from keras_padfree.training.callbacks import StopOnNonFinite
from keras_padfree.training.callbacks import TrainingBackup
from keras_padfree.training.callbacks import truncate_csv_log
from keras_padfree.training.errors import OutputWriteError
from keras_padfree.training.errors import TrainingDiverged
from keras_padfree.training.recipes import default_recipe_for
from keras_padfree.training.recipes import get_recipe
from keras_padfree.training.startup import quiet_native_stderr

__all__ = ["INPUT", "TrainConfig", "build_model", "evaluate_model", "train"]

# What the models of this version take (the run settings' "input"): raw RGB pixels in [0, 255].
INPUT = run_folder.RAW_PIXELS


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs (the CLI flags of ``training/fit.py``).

    ``allow_changes`` lists the settings a resume may change (``"epochs"``, ``"learning_rate"``,
    ``"distribute"``; a sequence or a comma-separated string).
    """

    model: str = "bsconv_resnet20_pf_cifar"
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
    allow_changes: tuple[str, ...] | str = ()
    tensorboard: bool = True
    cache: str = "auto"
    verbose: int | str = "auto"


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _allowed_changes(value):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        names = tuple(value)
    except TypeError:
        names = (value,)
    bad = [n for n in names if n not in run_folder.SAFE_CHANGES]
    if bad:
        raise ValueError(
            "Argument `allow_changes` must name settings that a resume can change: "
            f"{', '.join(run_folder.SAFE_CHANGES)} (the others define the backup's position). "
            f"Received: allow_changes={','.join(map(str, names))!r}."
        )
    return names


def _validate(cfg):
    """Checks every argument that can be checked without reading data (no I/O)."""
    for name in ("epochs", "batch_size", "steps_per_epoch", "eval_steps", "image_size"):
        v = getattr(cfg, name)
        if v is not None and (not _is_int(v) or v <= 0):
            raise ValueError(f"Argument `{name}` must be a positive int. Received: {name}={v!r}.")
    lr = cfg.learning_rate
    if lr is not None and (
        isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0
    ):
        raise ValueError(
            f"Argument `learning_rate` must be a finite number > 0. Received: learning_rate={lr!r}."
        )
    vf = cfg.val_fraction
    if (
        isinstance(vf, bool)
        or not isinstance(vf, (int, float))
        or not math.isfinite(vf)
        or not 0.0 < vf < 1.0
    ):
        raise ValueError(
            f"Argument `val_fraction` must be in (0, 1). Received: val_fraction={vf!r}."
        )
    if not _is_int(cfg.backup_freq) or cfg.backup_freq < 0:
        raise ValueError(
            "Argument `backup_freq` must be an int >= 0 (0: at epoch ends only). "
            f"Received: backup_freq={cfg.backup_freq!r}."
        )
    if not _is_int(cfg.cpu_devices) or cfg.cpu_devices < 1:
        raise ValueError(
            "Argument `cpu_devices` must be an int >= 1. "
            f"Received: cpu_devices={cfg.cpu_devices!r}."
        )
    if not _is_int(cfg.seed) or not 0 <= cfg.seed < 2**32:
        raise ValueError(
            f"Argument `seed` must be an int in [0, 2**32). Received: seed={cfg.seed!r}."
        )
    if cfg.jit_compile not in ("auto", "on", "off"):
        raise ValueError(
            "Argument `jit_compile` must be 'auto', 'on' or 'off'. "
            f"Received: jit_compile={cfg.jit_compile!r}."
        )
    if cfg.cache not in ("auto", "on", "off"):
        raise ValueError(
            f"Argument `cache` must be 'auto', 'on' or 'off'. Received: cache={cfg.cache!r}."
        )
    if cfg.on_corrupt not in ("skip", "error"):
        raise ValueError(
            "Argument `on_corrupt` must be 'skip' or 'error'. "
            f"Received: on_corrupt={cfg.on_corrupt!r}."
        )
    if cfg.verbose not in ("auto", 0, 1, 2):
        raise ValueError(
            f"Argument `verbose` must be 'auto', 0, 1 or 2. Received: verbose={cfg.verbose!r}."
        )
    if not cfg.output_dir:
        raise ValueError(
            f"Argument `output_dir` must be a folder path. Received: output_dir={cfg.output_dir!r}."
        )
    dist.check_precision(cfg.mixed_precision)
    dist.check_strategy(cfg.distribute)
    if cfg.recipe is not None:
        get_recipe(cfg.recipe)
    get_dataset_spec(cfg.dataset)


def _metrics(classes):
    return [
        keras.metrics.CategoricalAccuracy(name="top1"),
        keras.metrics.TopKCategoricalAccuracy(k=min(5, classes), name="top5"),
    ]


def _takes_preprocessing(builder):
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    return "include_preprocessing" in params and "normalization" in params


def _float32_preprocessing(model):
    """``model`` with its leading Rescaling / Normalization layers in float32 (the other layers
    shared, not copied); ``model`` itself when they are float32 already or absent."""
    from keras_padfree.export.metadata import model_preprocessing

    held = model_preprocessing(model)
    names = set(held["layers"]) if held else set()
    if all(model.get_layer(name).compute_dtype == "float32" for name in names):
        return model

    def clone(layer):
        if layer.name not in names:
            return layer
        config = dict(layer.get_config(), dtype="float32")
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def build_model(
    name: str, *, input_shape: tuple[int, int, int], classes: int, normalization: dict
) -> "keras.Model":
    """The registered model ``name`` holding its input normalisation: it takes raw RGB pixels.

    The builder gets ``include_preprocessing=True`` and ``normalization`` (``{"mean": [...],
    "std": [...]}`` on pixels in [0, 1]); a registered builder without those arguments (e.g. a
    user's) is wrapped: ``Rescaling(1/255)`` and ``Normalization`` in front of it. Either way the
    model's preprocessing is read back as the export reads it
    (:func:`keras_padfree.export.model_preprocessing`) and must equal ``normalization``.

    Under a mixed precision policy the preprocessing layers compute in float32 (the rest of the
    model in 16 bits): the first 16-bit layer then gets exactly the float32-normalised images the
    input pipeline fed it before models held their normalisation. In 16 bits, the rounded 1/255,
    mean and variance and three rounded operations would put the normalised pixels up to 5 times
    further from the exact values than one rounding of them (measured: 0.0023 vs 0.0005 in
    float16, 0.020 vs 0.004 in bfloat16).

    Raises:
        ValueError: the model's preprocessing is not the one asked for (a builder that accepts
            the arguments but ignores them).
    """
    from keras_padfree.applications import create_model
    from keras_padfree.applications import get_model_info
    from keras_padfree.export.metadata import model_preprocessing

    info = get_model_info(name)
    mean = [float(v) for v in normalization["mean"]]
    std = [float(v) for v in normalization["std"]]
    if _takes_preprocessing(info.builder):
        model = create_model(
            name,
            input_shape=input_shape,
            classes=classes,
            include_preprocessing=True,
            normalization={"mean": mean, "std": std},
        )
    else:
        inner = create_model(name, input_shape=input_shape, classes=classes)
        inputs = keras.Input(shape=input_shape, name="pixels")
        x = keras.layers.Rescaling(1.0 / 255.0, name="preprocessing_rescale")(inputs)
        x = keras.layers.Normalization(
            mean=mean, variance=[s * s for s in std], name="preprocessing_normalize"
        )(x)
        model = keras.Model(inputs, inner(x), name=inner.name)
    model = _float32_preprocessing(model)
    held = model_preprocessing(model)
    if held is None or not (
        np.allclose(held["mean"], mean, rtol=1e-5, atol=1e-6)
        and np.allclose(held["std"], std, rtol=1e-5, atol=1e-6)
    ):
        raise ValueError(
            f"The builder of model {info.name!r} did not put the requested input normalisation "
            f"(mean {mean}, std {std}) after its input: it holds "
            f"{'none' if held is None else held['layers']}. Its `include_preprocessing` / "
            "`normalization` arguments must build Rescaling(1/255) and Normalization(mean, "
            "std**2)."
        )
    return model


def _float32_output(model):
    """Mixed precision: the softmax output is cast to float32 for a stable loss."""
    if model.outputs[0].dtype == "float32":
        return model
    out = keras.layers.Activation("linear", dtype="float32", name="output_float32")(model.output)
    return keras.Model(model.inputs, out, name=model.name)


def _verbose(v):
    if v != "auto":
        return int(v)
    import sys

    return 1 if sys.stdout.isatty() else 2


def train(cfg: TrainConfig) -> dict:
    """Runs, resumes or reports one training run; returns the final evaluation dict (final.json).

    Args:
        cfg: a :class:`TrainConfig`.

    Raises:
        ValueError: a bad argument; :class:`~keras_padfree.training.errors.RunFolderError` when
            the output folder is busy or holds another run; ``BackupError`` for a damaged backup.
        DatasetNotFoundError: the dataset is not prepared.
        TrainingError: the run stopped (``TrainingDiverged``, ``OutputWriteError``); what was
            kept is in the message.
    """
    t_start = time.time()
    cfg = dataclasses.replace(cfg, allow_changes=_allowed_changes(cfg.allow_changes))
    _validate(cfg)
    from keras_padfree.applications import get_model_info

    info = get_model_info(cfg.model)
    recipe = get_recipe(cfg.recipe or default_recipe_for(info, cfg.dataset))
    with run_folder.RunLock(cfg.output_dir) as lock:
        if lock.stale:
            print(
                f"The previous run in {cfg.output_dir} (process {lock.stale.get('pid')}) is no "
                "longer running; its lock was stale.",
                flush=True,
            )
        # The backend's faster kernels (same results to float32 rounding; see training.speed),
        # for this run only: the process gets Keras' own back afterwards.
        before = speed.fast_kernels_installed()
        try:
            return _train_locked(cfg, info, recipe, t_start)
        finally:
            if not before:
                speed.uninstall_fast_kernels()


def _speed_settings(cfg):
    """``speed.default_settings`` for this backend and device, its kernels installed."""
    settings = dict(speed.default_settings())
    if cfg.jit_compile != "auto":
        settings["jit_compile"] = cfg.jit_compile == "on"
        settings["why"] = [*settings["why"], f"jit_compile={cfg.jit_compile} (asked for)"]
    settings["kernels"] = speed.install_fast_kernels() if settings["fast_kernels"] else []
    return settings


def _settings(cfg, info, recipe, train_src, *, epochs, batch_size, spe, size, lr, replicas):
    model_name = getattr(info, "name", None) or cfg.model  # the registered name, not an alias
    return {
        "model": model_name,
        "dataset": cfg.dataset,
        "train_examples": train_src.num_examples,
        "data_fingerprint": train_src.fingerprint,
        "classes": train_src.classes,
        "image_size": size,
        "normalization": normalization_record(recipe.preprocessing),
        "input": INPUT,
        "recipe": recipe.name,
        "batch_size": batch_size,
        "steps_per_epoch": spe,
        "epochs": epochs,
        "seed": cfg.seed,
        "learning_rate": float(lr),
        "precision": cfg.mixed_precision,
        "distribute": cfg.distribute,
        "replicas": replicas,
        "backend": keras.backend.backend(),
    }


def _train_locked(cfg, info, recipe, t_start):
    out = cfg.output_dir
    dist.set_cpu_devices(cfg.cpu_devices)  # before TensorFlow initialises its devices
    with quiet_native_stderr():
        dist.initialize_devices()
        fast = _speed_settings(cfg)  # asks the backend for its devices
    # The data first: a dataset that is not prepared fails before the model is built.
    source_args = dict(
        data_dir=cfg.data_dir,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
        on_corrupt=cfg.on_corrupt,
    )
    train_src = pipeline.load_source(cfg.dataset, "train", **source_args)
    eval_src = pipeline.load_source(cfg.dataset, "eval", **source_args)
    epochs = cfg.epochs or recipe.epochs
    batch_size = cfg.batch_size or recipe.batch_size
    size = cfg.image_size or info.input_shape[0]
    prep = recipe.preprocessing
    lr = cfg.learning_rate if cfg.learning_rate is not None else recipe.learning_rate

    keras.utils.set_random_seed(cfg.seed)
    dist.set_precision(cfg.mixed_precision)
    scope, replicas, even = dist.setup_distribution(cfg.distribute, cfg.tpu)

    classes = train_src.classes
    if even and batch_size % replicas:
        raise ValueError(
            f"Argument `batch_size` must be a multiple of the {replicas} replicas. "
            f"Received: batch_size={batch_size}."
        )
    full_spe = pipeline.steps_per_epoch(train_src.num_examples, batch_size, drop_remainder=even)
    if full_spe == 0:
        raise ValueError(
            f"The training split has {train_src.num_examples} examples, fewer than "
            f"one batch of {batch_size}."
        )
    spe = min(cfg.steps_per_epoch, full_spe) if cfg.steps_per_epoch else full_spe
    cache = {"auto": "auto", "on": True, "off": False}[cfg.cache]
    settings = _settings(
        cfg,
        info,
        recipe,
        train_src,
        epochs=epochs,
        batch_size=batch_size,
        spe=spe,
        size=size,
        lr=lr,
        replicas=replicas,
    )

    plan = run_folder.plan_run(out, settings, resume=cfg.resume, allow_changes=cfg.allow_changes)
    if plan.kind == "finished":
        return _already_finished(out, plan)

    backup_dir = os.path.join(out, "backup")
    log_path = os.path.join(out, "train_log.csv")
    with scope:
        # The model normalises its input itself (the recipe's mean/std): it takes raw pixels.
        model = build_model(
            cfg.model,
            input_shape=(size, size, 3),
            classes=classes,
            normalization=model_normalization(prep),
        )
        if cfg.mixed_precision != "float32":
            model = _float32_output(model)
        optimizer = recipe.make_optimizer(spe, epochs=epochs, learning_rate=lr)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
            metrics=_metrics(classes),
            jit_compile=fast["jit_compile"],
        )
        state = TrainingBackup.restore(model, backup_dir) if plan.kind == "resume" else None
    # Every argument is checked and the model is built: only now may the old run's files go.
    if plan.clear:
        run_folder.clear_run_files(out)
    history = list(plan.history)
    if state is not None and plan.changes:
        history.append(
            {"at": {"epoch": state["epoch"], "step": state["step"]}, "changed": plan.changes}
        )
    record = run_folder.new_record(settings, history)
    if plan.kind == "resume" and plan.record:
        record["started"] = plan.record.get("started", record["started"])
    record = run_folder.write_record(out, record)

    start_epoch, skip = (state["epoch"], state["step"]) if state else (0, 0)
    rows = []
    if state:
        changed = f" with {run_folder.describe_changes(plan.changes)}" if plan.changes else ""
        print(
            f"Resuming from epoch {start_epoch}, step {skip} (optimizer step "
            f"{state['iterations']}) with the backup in {backup_dir}{changed}.",
            flush=True,
        )
        rows = truncate_csv_log(log_path, start_epoch)
    finite_top1 = [
        float(r["val_top1"])
        for r in rows
        if r.get("val_top1") and math.isfinite(float(r["val_top1"]))
    ]
    best_so_far = max(finite_top1, default=None)

    print(
        f"model={cfg.model} dataset={cfg.dataset} ({train_src.num_examples} train / "
        f"{eval_src.num_examples} eval, {classes} classes) recipe={recipe.name} "
        f"epochs={epochs} batch={batch_size} steps/epoch={spe} size={size} "
        f"backend={keras.backend.backend()} distribute={cfg.distribute} "
        f"precision={cfg.mixed_precision}",
        flush=True,
    )
    print(
        f"speed: jit_compile={bool(model.jit_compile)} "
        f"kernels={','.join(fast['kernels']) or 'keras'} ({'; '.join(fast['why'])})",
        flush=True,
    )

    eval_ds = pipeline.eval_dataset(
        eval_src,
        prep,
        size=size,
        classes=classes,
        batch_size=batch_size,
        cache=cache,
        drop_remainder=even,
        model_input=INPUT,
    )
    eval_steps = pipeline.steps_per_epoch(eval_src.num_examples, batch_size, drop_remainder=even)
    eval_steps = min(cfg.eval_steps, eval_steps) if cfg.eval_steps else eval_steps
    monitor = StopOnNonFinite()
    backup = TrainingBackup(backup_dir, cfg.backup_freq, spe, settings, history)
    if state:
        backup.saved = (start_epoch, skip)
    checkpoints = ModelCheckpoints(
        out,
        best_so_far,
        monitor=monitor,
        info={"model": cfg.model, "dataset": cfg.dataset, "split": eval_src.split, "input": INPUT},
    )
    callbacks = [monitor, EpochLog(log_path, rows, monitor), checkpoints]
    if cfg.tensorboard:
        if importlib.util.find_spec("tensorboard") is not None:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "tensorboard")))
        else:
            print(
                "TensorBoard logs are off: the `tensorboard` package is not installed "
                "(pip install tensorboard).",
                flush=True,
            )
    callbacks.append(backup)  # last: a backup is written after the epoch's logs and checkpoints

    phases = []
    first_epoch = start_epoch
    if first_epoch < epochs and skip:
        phases.append((first_epoch, first_epoch + 1, spe - skip, skip))
        first_epoch += 1
    if first_epoch < epochs:
        phases.append((first_epoch, epochs, spe, 0))
    verbose = _verbose(cfg.verbose)
    try:
        for first, last, steps, skip_steps in phases:
            stream = pipeline.train_stream(
                train_src,
                prep,
                size=size,
                classes=classes,
                batch_size=batch_size,
                seed=cfg.seed,
                start_epoch=first,
                epochs=last,
                skip_steps=skip_steps,
                steps_per_epoch_limit=spe if spe < full_spe else None,
                drop_remainder=even,
                cache=cache,
                run_epochs=epochs,
                model_input=INPUT,
            )
            backup.set_position(first, skip_steps)
            monitor.set_position(first, skip_steps)
            model.fit(
                stream,
                epochs=last,
                initial_epoch=first,
                steps_per_epoch=steps,
                validation_data=eval_ds,
                validation_steps=eval_steps,
                shuffle=False,
                callbacks=callbacks,
                verbose=verbose,
            )
            if model.stop_training:
                break
        if monitor.stopped_at is not None or backup.skipped_nonfinite is not None:
            raise TrainingDiverged(_diverged_message(out, monitor, backup, checkpoints))
        final_path = os.path.join(out, "final.keras")
        files.save_model(model, final_path, "the final model")
        result = evaluate_model(model, eval_ds, steps=eval_steps)
    except OutputWriteError as e:
        _set_status(out, record, "failed", str(e))
        raise e.with_kept(
            backup.kept() + " Free some space (or make the folder writable) and "
            "rerun the same command to resume from it."
        ) from e
    except TrainingDiverged as e:
        _set_status(out, record, "diverged", str(e))
        raise
    except KeyboardInterrupt:
        _set_status(out, record, "interrupted", None)
        raise
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    result.update(
        {
            "model": cfg.model,
            "dataset": cfg.dataset,
            "split": eval_src.split,
            "eval_examples": eval_src.num_examples,
            "recipe": recipe.name,
            "epochs": epochs,
            "batch_size": batch_size,
            "steps_per_epoch": spe,
            "optimizer_steps": iterations,
            "image_size": size,
            "classes": classes,
            "backend": keras.backend.backend(),
            "distribute": cfg.distribute,
            "replicas": replicas,
            "precision": cfg.mixed_precision,
            "jit_compile": bool(model.jit_compile),
            "kernels": fast["kernels"],
            "seed": cfg.seed,
            "terminated_early": False,
            "wall_time_s": round(time.time() - t_start, 1),
            "skipped_corrupt_files": sorted(set(train_src.skipped) | set(eval_src.skipped)),
            "normalization": settings["normalization"],
            "input": INPUT,
            "settings": settings,
            "settings_changes": history,
        }
    )
    files.write_json(os.path.join(out, "final.json"), result, "the final evaluation")
    _set_status(
        out, record, "finished", None, final={k: result[k] for k in ("top1", "top5", "loss")}
    )
    print(
        f"final: top1={result['top1']:.4f} top5={result['top5']:.4f} "
        f"loss={result['loss']:.4f} ({result['wall_time_s']} s) -> {final_path}",
        flush=True,
    )
    return result


def _set_status(out, record, status, error, **extra):
    """Updates the run record; a failure to write it never hides the error being reported."""
    try:
        run_folder.write_record(out, dict(record, status=status, error=error, **extra))
    except OutputWriteError:
        if status == "finished":
            raise


def _diverged_message(out, monitor, backup, checkpoints):
    if monitor.stopped_at is not None:
        epoch, step, loss = monitor.stopped_at
        where = f"the loss became non-finite ({loss}) at epoch {epoch}, step {step}"
    else:
        epoch, step = backup.skipped_nonfinite
        where = (
            f"a weight or optimizer variable became non-finite before the backup of epoch "
            f"{epoch}, step {step}"
        )
    best = os.path.join(out, "best.keras")
    models = (
        f"{best} and last.keras are from the last finite epoch"
        if os.path.exists(best)
        else "no model was saved (no finite epoch)"
    )
    if backup.saved is not None:
        how = (
            "Rerun with a smaller --learning-rate and --allow-changes learning_rate to continue "
            "from that backup, or start over with --no-resume."
        )
    else:
        how = "Start over with --no-resume and a smaller --learning-rate."
    return (
        f"Training stopped: {where}. Nothing non-finite was saved: {backup.kept()} "
        f"{models[0].upper() + models[1:]}. {how}"
    )


def _already_finished(out, plan):
    import json

    with open(os.path.join(out, "final.json")) as f:
        result = json.load(f)
    settings = plan.record["settings"]
    print(
        f"The run in {out} has already finished ({settings['epochs']} epochs of "
        f"{settings['model']} on {settings['dataset']}); nothing was trained or written. "
        "To train longer pass --epochs N --allow-changes epochs; to start over, --no-resume "
        "(deletes this run's files) or another --output-dir.",
        flush=True,
    )
    numbers = " ".join(
        f"{k}={result[k]:.4f}"
        for k in ("top1", "top5", "loss")
        if isinstance(result.get(k), (int, float))
    )
    print(f"final: {numbers} -> {os.path.join(out, 'final.keras')}", flush=True)
    return result


def evaluate_model(model: "keras.Model", dataset: object, steps: int | None = None) -> dict:
    """Top-1, top-5 and loss of a compiled ``model`` on ``(images, one-hot labels)`` batches."""
    values = model.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    return {
        "top1": float(values["top1"]),
        "top5": float(values["top5"]),
        "loss": float(values["loss"]),
    }
