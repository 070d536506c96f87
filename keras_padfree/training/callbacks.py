"""Training callbacks: exact resumption, checkpoints and logs that a crash cannot corrupt.

:class:`TrainingBackup` replaces ``keras.callbacks.BackupAndRestore``, which restores the model
weights and the epoch only: it drops the optimizer state (momentum buffers, step counter, hence the
learning-rate schedule position) and restarts an interrupted epoch from its first batch. Here the
backup holds every model variable, every optimizer variable, ``(epoch, step)`` and the settings of
the run; together with the deterministic per-epoch data stream of
:func:`keras_padfree.data.train_stream` a resumed run continues with the next batch it had not
trained on, so nothing is repeated and nothing is lost.

A backup is one unit::

    backup/latest.json          {"format": 2, "checkpoint": "ckpt-..."}: the commit point
    backup/ckpt-<step>-<id>/    weights.npz, optimizer.npz, manifest.json (position, settings,
                                byte counts and SHA-256 of both arrays files)

It is written as ``backup/.partial-ckpt-...``, synced, renamed into place, and only then does
``latest.json`` (written aside and renamed) point at it; the previous checkpoint is deleted last.
A run killed at any moment therefore resumes from one complete checkpoint, never from weights of
one step with the optimizer of another. :meth:`TrainingBackup.restore` checks the manifest and the
checksums and names the backup and ``--no-resume`` when anything is damaged. Nothing non-finite
is ever backed up or saved as a model: a NaN or infinity in the weights stops the run instead.
"""

import csv
import hashlib
import io
import json
import math
import os
import shutil
import uuid
import zipfile

import keras
import numpy as np

from keras_padfree.training import files
from keras_padfree.training.errors import BackupError
from keras_padfree.training.errors import OutputWriteError

__all__ = [
    "EpochLog",
    "ModelCheckpoints",
    "StopOnNonFinite",
    "TrainingBackup",
    "read_backup_manifest",
    "read_backup_state",
    "truncate_csv_log",
]

FORMAT = 2
_LATEST = "latest.json"
_MANIFEST = "manifest.json"
_WEIGHTS = "weights.npz"
_OPTIMIZER = "optimizer.npz"
_CKPT = "ckpt-"


def _damaged(backup_dir, detail):
    folder = os.path.dirname(os.path.abspath(backup_dir)) or "."
    return BackupError(
        f"The backup in {backup_dir} is damaged: {detail}. It cannot be resumed: start over with "
        f"--no-resume (deletes the run's backup, log and models in {folder}), or pass another "
        "--output-dir."
    )


def _read_json(path, backup_dir, what):
    try:
        with open(path, "rb") as f:
            value = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise _damaged(backup_dir, f"{what} {path} is missing") from None
    except (OSError, ValueError) as e:
        raise _damaged(backup_dir, f"{what} {path} cannot be read ({e})") from e
    if not isinstance(value, dict):
        raise _damaged(backup_dir, f"{what} {path} is not a JSON object")
    return value


def _checkpoints(backup_dir):
    try:
        names = os.listdir(backup_dir)
    except OSError:
        return []
    return sorted(
        n for n in names if n.startswith(_CKPT) and os.path.isdir(os.path.join(backup_dir, n))
    )


def _latest_checkpoint(backup_dir):
    """The committed checkpoint folder of ``backup_dir`` (or None when there is no backup)."""
    pointer = os.path.join(backup_dir, _LATEST)
    if os.path.exists(pointer):
        latest = _read_json(pointer, backup_dir, "the pointer")
        name = latest.get("checkpoint")
        if latest.get("format") != FORMAT or not isinstance(name, str) or "/" in name:
            raise _damaged(backup_dir, f"the pointer {pointer} names no checkpoint")
        path = os.path.join(backup_dir, name)
        if not os.path.isdir(path):
            raise _damaged(backup_dir, f"the checkpoint {path} named by {pointer} is missing")
        return path
    # No pointer: killed between renaming the very first checkpoint into place and publishing
    # it. A checkpoint folder is complete once it has its final name; take the newest.
    candidates = _checkpoints(backup_dir)
    return os.path.join(backup_dir, candidates[-1]) if candidates else None


def read_backup_manifest(backup_dir):
    """The manifest of the backup in ``backup_dir`` (position, settings, files), or None.

    Raises:
        BackupError: the backup exists but its pointer or manifest is damaged.
    """
    if not os.path.isdir(backup_dir):
        return None
    path = _latest_checkpoint(backup_dir)
    if path is None:
        return None
    manifest = _read_json(os.path.join(path, _MANIFEST), backup_dir, "the manifest")
    for key in ("epoch", "step", "iterations", "files"):
        if key not in manifest:
            raise _damaged(
                backup_dir, f"the manifest {os.path.join(path, _MANIFEST)} has no {key!r}"
            )
    manifest["path"] = path
    return manifest


def read_backup_state(backup_dir):
    """``{"epoch": e, "step": s, "iterations": n}`` of the last backup, or None."""
    manifest = read_backup_manifest(backup_dir)
    if manifest is None:
        return None
    return {k: int(manifest[k]) for k in ("epoch", "step", "iterations")}


def truncate_csv_log(path, first_epoch):
    """Drops the rows of epochs >= ``first_epoch`` from a training log (before resuming)."""
    rows = read_csv_log(path)
    keep = [r for r in rows if int(float(r["epoch"])) < first_epoch]
    if len(keep) != len(rows):
        write_csv_log(path, keep)
    return keep


def read_csv_log(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("epoch") not in (None, "")]


def write_csv_log(path, rows):
    keys = ["epoch"] + sorted({k for r in rows for k in r if k != "epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files.write_bytes(path, out.getvalue().encode(), "the training log")


def _to_numpy(variables):
    return [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in variables]


def _finite(arrays):
    for a in arrays:
        if a.dtype.kind in "biu" or a.dtype == bool:
            continue
        if not np.all(np.isfinite(a.astype(np.float32, copy=False))):
            return False
    return True


def _npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **{f"v{i}": a for i, a in enumerate(arrays)})
    return buffer.getvalue()


def _describe(variables, arrays):
    return [
        [getattr(v, "path", getattr(v, "name", "")), list(a.shape), str(a.dtype)]
        for v, a in zip(variables, arrays)
    ]


def _position(epoch, step):
    return f"epoch {epoch}, step {step}"


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite (``TerminateOnNaN``).

    Attributes:
        stopped_at: ``(epoch, step, loss)`` where it stopped, or None.
    """

    def __init__(self):
        super().__init__()
        self.stopped_at = None
        self._epoch = 0
        self._offset = 0

    def set_position(self, epoch, step):
        self._epoch, self._offset = epoch, step

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self._epoch:
            self._offset = 0
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or self.stopped_at is not None:
            return
        loss = float(keras.ops.convert_to_numpy(loss))
        if not math.isfinite(loss):
            self.stopped_at = (self._epoch, self._offset + batch + 1, loss)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self._offset = 0

    def stopped_in(self, epoch):
        return self.stopped_at is not None and self.stopped_at[0] == epoch


class EpochLog(keras.callbacks.Callback):
    """The CSV log (one row per epoch, like ``CSVLogger``), rewritten whole and atomically.

    Args:
        path: the CSV file.
        rows: rows of earlier epochs (a resumed run's log, already truncated).
        monitor: the run's :class:`StopOnNonFinite`; an epoch it stopped is not logged.
    """

    def __init__(self, path, rows=(), monitor=None):
        super().__init__()
        self.path = path
        self.rows = list(rows)
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is not None and self.monitor.stopped_in(epoch):
            return
        row = {"epoch": epoch}
        for key, value in (logs or {}).items():
            row[key] = float(keras.ops.convert_to_numpy(value))
        self.rows.append(row)
        write_csv_log(self.path, self.rows)


class ModelCheckpoints(keras.callbacks.Callback):
    """``best.keras`` (highest ``val_top1``) and ``last.keras`` after every finite epoch.

    Both are written aside and renamed (:func:`keras_padfree.training.files.save_model`);
    ``best.json`` is written with ``best.keras``. An epoch whose loss, validation metrics or
    weights are not finite saves nothing.

    Args:
        output_dir: the run's folder.
        best_so_far: ``val_top1`` of the current ``best.keras`` (a resumed run), or None.
        info: extra entries of ``best.json`` (model, dataset, split).
        monitor: the run's :class:`StopOnNonFinite`.
    """

    def __init__(self, output_dir, best_so_far=None, info=None, monitor=None):
        super().__init__()
        self.output_dir = output_dir
        self.best = best_so_far
        self.info = dict(info or {})
        self.monitor = monitor
        self.skipped_nonfinite = None

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is not None and self.monitor.stopped_in(epoch):
            return
        logs = {k: float(keras.ops.convert_to_numpy(v)) for k, v in (logs or {}).items()}
        checked = [logs.get(k, 0.0) for k in ("loss", "val_loss", "val_top1", "val_top5")]
        if not all(math.isfinite(v) for v in checked) or not _finite(
            _to_numpy(self.model.variables)
        ):
            self.skipped_nonfinite = epoch
            return
        top1 = logs.get("val_top1")
        if top1 is not None and (self.best is None or top1 > self.best):
            files.save_model(
                self.model,
                os.path.join(self.output_dir, "best.keras"),
                f"the best model (epoch {epoch})",
            )
            files.write_json(
                os.path.join(self.output_dir, "best.json"),
                {
                    "epoch": epoch,
                    "top1": top1,
                    "top5": logs.get("val_top5"),
                    "loss": logs.get("val_loss"),
                    **self.info,
                },
                "the best model's record",
            )
            self.best = top1
        files.save_model(
            self.model,
            os.path.join(self.output_dir, "last.keras"),
            f"the last model (epoch {epoch})",
        )


class TrainingBackup(keras.callbacks.Callback):
    """Backs up weights, optimizer state and position every ``save_freq`` steps and every epoch.

    The backup is restored by :meth:`restore` (called by the training loop before ``fit`` so that
    the data stream can start at the right batch), not by ``on_train_begin``.

    Args:
        backup_dir: folder of the backup (used by this run only).
        save_freq: also back up every this many training steps (0: at epoch ends only).
        steps_per_epoch: steps of a full epoch (to turn the step counter into a position).
        settings: the run's settings, recorded in every backup (checked on resume).
        settings_changes: the changes made by earlier resumes, recorded likewise.

    Attributes:
        saved: ``(epoch, step)`` of the last complete backup (written or restored), or None.
        skipped_nonfinite: ``(epoch, step)`` of a backup left out because a variable was not
            finite (the run is stopped then), or None.
    """

    def __init__(self, backup_dir, save_freq, steps_per_epoch, settings=None, settings_changes=()):
        super().__init__()
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 0:
            raise ValueError(f"Argument `save_freq` must be an int >= 0. Received: {save_freq!r}.")
        self.backup_dir = backup_dir
        self.save_freq = save_freq
        self.steps_per_epoch = steps_per_epoch
        self.settings = settings
        self.settings_changes = list(settings_changes)
        self.saved = None
        self.skipped_nonfinite = None
        self._epoch = 0
        self._offset = 0
        self._step = 0

    def set_position(self, epoch, step):
        """Where the coming ``fit`` starts (epoch, steps of it already trained)."""
        self._epoch = epoch
        self._offset = step
        self._step = step

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self._epoch:
            self._offset = 0
        self._epoch = epoch
        self._step = self._offset

    def on_train_batch_end(self, batch, logs=None):
        self._step = self._offset + batch + 1
        step = self._step
        if self.save_freq and step % self.save_freq == 0 and step < self.steps_per_epoch:
            self._save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        complete = self._step >= self.steps_per_epoch
        self._offset = 0
        if complete:  # an epoch cut short (a stopped run) is no position to resume from
            self._save(epoch + 1, 0)

    def kept(self):
        """A sentence on the backup that is kept (for error messages)."""
        if self.saved is None:
            return "No backup had been written yet."
        return f"The last good backup ({_position(*self.saved)}) in {self.backup_dir} is intact."

    def _save(self, epoch, step):
        model = self.model
        weights = _to_numpy(model.variables)
        opt_vars = _to_numpy(model.optimizer.variables)
        if not _finite(weights) or not _finite(opt_vars):
            self.skipped_nonfinite = (epoch, step)
            model.stop_training = True
            return
        iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        what = f"the training backup ({_position(epoch, step)})"
        name = f"{_CKPT}{iterations:010d}-{uuid.uuid4().hex[:8]}"
        partial = os.path.join(self.backup_dir, f"{files.PARTIAL_MARK}{name}")
        try:
            os.makedirs(partial, exist_ok=True)
            blobs = {_WEIGHTS: _npz_bytes(weights), _OPTIMIZER: _npz_bytes(opt_vars)}
            for file_name, blob in blobs.items():
                files.write_bytes(os.path.join(partial, file_name), blob, what, atomic=False)
            manifest = {
                "format": FORMAT,
                "epoch": int(epoch),
                "step": int(step),
                "iterations": iterations,
                "settings": self.settings,
                "settings_changes": self.settings_changes,
                "files": {
                    n: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                    for n, b in blobs.items()
                },
                "model_variables": _describe(model.variables, weights),
                "optimizer_variables": _describe(model.optimizer.variables, opt_vars),
                "keras_version": keras.version(),
            }
            files.write_json(os.path.join(partial, _MANIFEST), manifest, what, atomic=False)
            files.fsync_dir(partial)
            final = os.path.join(self.backup_dir, name)
            os.replace(partial, final)
            files.fsync_dir(self.backup_dir)
            _publish(self.backup_dir, name, what)
        except OSError as e:
            shutil.rmtree(partial, ignore_errors=True)
            raise OutputWriteError(e.filename or partial, what, e) from e
        except OutputWriteError:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        self.saved = (int(epoch), int(step))
        # The previous checkpoint, and what a killed run left half-written, go last.
        for old in os.listdir(self.backup_dir):
            path = os.path.join(self.backup_dir, old)
            if old == name or not (old.startswith(_CKPT) or files.PARTIAL_MARK in old):
                continue
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                files.remove_quietly(path)

    @staticmethod
    def restore(model, backup_dir):
        """Loads a backup into a compiled, built ``model``.

        Returns:
            ``{"epoch", "step", "iterations", "settings", "settings_changes"}``, or None when
            there is no backup.

        Raises:
            BackupError: the backup is damaged or belongs to another model or optimizer.
        """
        manifest = read_backup_manifest(backup_dir)
        if manifest is None:
            return None
        path = manifest["path"]
        arrays = {}
        for name in (_WEIGHTS, _OPTIMIZER):
            file_path = os.path.join(path, name)
            expected = manifest["files"].get(name) if isinstance(manifest["files"], dict) else None
            try:
                with open(file_path, "rb") as f:
                    blob = f.read()
            except OSError as e:
                raise _damaged(backup_dir, f"{file_path} cannot be read ({e.strerror or e})") from e
            if (
                not isinstance(expected, dict)
                or len(blob) != expected.get("bytes")
                or hashlib.sha256(blob).hexdigest() != expected.get("sha256")
            ):
                raise _damaged(
                    backup_dir, f"{file_path} does not match its manifest (size or checksum)"
                )
            try:
                with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
                    arrays[name] = [saved[f"v{i}"] for i in range(len(saved.files))]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
                raise _damaged(backup_dir, f"{file_path} cannot be read ({e})") from e
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        for label, variables, values in (
            ("model", model.variables, arrays[_WEIGHTS]),
            ("optimizer", optimizer.variables, arrays[_OPTIMIZER]),
        ):
            shapes = [tuple(v.shape) for v in variables]
            saved_shapes = [tuple(a.shape) for a in values]
            if shapes != saved_shapes:
                folder = os.path.dirname(os.path.abspath(backup_dir))
                raise BackupError(
                    f"The backup in {backup_dir} holds {len(values)} {label} variables that do "
                    f"not match this run's {len(variables)} (shapes differ): it was written for "
                    f"another model or optimizer. Start over with --no-resume (deletes the "
                    f"run's backup, log and models in {folder}), or pass another --output-dir."
                )
        for variables, values in (
            (model.variables, arrays[_WEIGHTS]),
            (optimizer.variables, arrays[_OPTIMIZER]),
        ):
            for var, value in zip(variables, values):
                var.assign(value)
        return {
            "epoch": int(manifest["epoch"]),
            "step": int(manifest["step"]),
            "iterations": int(manifest["iterations"]),
            "settings": manifest.get("settings"),
            "settings_changes": list(manifest.get("settings_changes") or []),
        }

    @staticmethod
    def clear(backup_dir):
        """Deletes the backup in ``backup_dir``."""
        if os.path.isdir(backup_dir):
            shutil.rmtree(backup_dir)


def _publish(backup_dir, name, what):
    """Points ``latest.json`` at checkpoint ``name``: the moment the new backup takes effect."""
    files.write_json(
        os.path.join(backup_dir, _LATEST), {"format": FORMAT, "checkpoint": name}, what
    )
