"""Training callbacks: exact resumption, checkpoints and logs.

:class:`TrainingBackup` replaces ``keras.callbacks.BackupAndRestore``, which restores the model
weights and the epoch only: it drops the optimizer state (momentum buffers, step counter, hence the
learning-rate schedule position) and restarts an interrupted epoch from its first batch. Here the
backup holds the model weights, every optimizer variable and ``(epoch, step)``; together with the
deterministic per-epoch data stream of :func:`keras_padfree.data.train_stream` a resumed run
continues with the next batch it had not trained on, so nothing is repeated and nothing is lost.
Files are written to a temporary name and renamed, so a run killed while saving keeps the previous
backup.
"""

import csv
import json
import os

import keras
import numpy as np

__all__ = ["TrainingBackup", "read_backup_state", "truncate_csv_log"]

_STATE = "state.json"
_WEIGHTS = "model.weights.h5"
_OPTIMIZER = "optimizer.npz"


def read_backup_state(backup_dir):
    """``{"epoch": e, "step": s, "iterations": n}`` of the last backup, or None."""
    path = os.path.join(backup_dir, _STATE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def truncate_csv_log(path, first_epoch):
    """Drops the rows of epochs >= ``first_epoch`` from a CSVLogger file (before resuming)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    keep = [r for r in body if r and int(float(r[0])) < first_epoch]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(keep)
    os.replace(tmp, path)


class TrainingBackup(keras.callbacks.Callback):
    """Backs up weights, optimizer state and position every ``save_freq`` steps and every epoch.

    The backup is restored by :meth:`restore` (called by the training loop before ``fit`` so that
    the data stream can start at the right batch), not by ``on_train_begin``.

    Args:
        backup_dir: folder of the backup (used by this run only).
        save_freq: also back up every this many training steps (0: at epoch ends only).
        steps_per_epoch: steps of a full epoch (to turn the step counter into a position).
    """

    def __init__(self, backup_dir, save_freq, steps_per_epoch):
        super().__init__()
        if not isinstance(save_freq, int) or save_freq < 0:
            raise ValueError(f"Argument `save_freq` must be an int >= 0. Received: {save_freq!r}.")
        self.backup_dir = backup_dir
        self.save_freq = save_freq
        self.steps_per_epoch = steps_per_epoch
        self._epoch = 0
        self._offset = 0

    def set_position(self, epoch, step):
        """Where the coming ``fit`` starts (epoch, steps of it already trained)."""
        self._epoch = epoch
        self._offset = step

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self._epoch:
            self._offset = 0
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._offset + batch + 1
        if self.save_freq and step % self.save_freq == 0 and step < self.steps_per_epoch:
            self._save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self._offset = 0
        self._save(epoch + 1, 0)

    def _save(self, epoch, step):
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = os.path.join(self.backup_dir, _WEIGHTS)
        self.model.save_weights(weights + ".tmp.weights.h5", overwrite=True)
        opt_vars = {f"v{i}": keras.ops.convert_to_numpy(v.value)
                    for i, v in enumerate(self.model.optimizer.variables)}
        opt_tmp = os.path.join(self.backup_dir, "optimizer.tmp.npz")
        np.savez(opt_tmp, **opt_vars)
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        state = {"epoch": int(epoch), "step": int(step), "iterations": iterations}
        state_tmp = os.path.join(self.backup_dir, _STATE + ".tmp")
        with open(state_tmp, "w") as f:
            json.dump(state, f)
        # The state file is renamed last: it only ever points at complete files.
        os.replace(weights + ".tmp.weights.h5", weights)
        os.replace(opt_tmp, os.path.join(self.backup_dir, _OPTIMIZER))
        os.replace(state_tmp, os.path.join(self.backup_dir, _STATE))

    @staticmethod
    def restore(model, backup_dir):
        """Loads a backup into a compiled, built ``model``; returns its state dict or None."""
        state = read_backup_state(backup_dir)
        if state is None:
            return None
        model.load_weights(os.path.join(backup_dir, _WEIGHTS))
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        with np.load(os.path.join(backup_dir, _OPTIMIZER)) as saved:
            values = [saved[f"v{i}"] for i in range(len(saved.files))]
        if len(values) != len(optimizer.variables):
            raise ValueError(
                f"The backup in {backup_dir} holds {len(values)} optimizer variables but this "
                f"run's optimizer has {len(optimizer.variables)}: it was written by a different "
                "model or optimizer. Use another --output-dir or delete the backup.")
        for var, value in zip(optimizer.variables, values):
            var.assign(value)
        return state

    @staticmethod
    def clear(backup_dir):
        for name in (_STATE, _WEIGHTS, _OPTIMIZER):
            path = os.path.join(backup_dir, name)
            if os.path.exists(path):
                os.remove(path)
