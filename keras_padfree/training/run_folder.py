"""One run per output folder: the lock, the run record and the decision to start, resume or stop.

Files of the folder (besides those listed in :mod:`keras_padfree.training.loop`)::

    OUTPUT_DIR/run.lock   held by the live run (an OS lock: a killed run's lock is free again)
    OUTPUT_DIR/run.json   the run record: settings, status, changes made on resumes

:func:`plan_run` compares the settings of the command with those recorded by the backup (or, for
a run that never backed up, by ``run.json``) and decides:

* ``"fresh"``: nothing to resume (an empty folder, or ``--no-resume``, which deletes the previous
  run's files only once every argument has been checked and the model has been built);
* ``"resume"``: continue from the backup; only the settings in :data:`SAFE_CHANGES` may differ,
  and only those the user listed in ``--allow-changes``;
* ``"finished"``: the same run has already ended; nothing is trained or written.

A run whose models took another input convention (``"input"`` of the settings: ``"raw_pixels"``
today; a run started before models held their normalisation recorded none, which means
``"normalized"``) is refused with its own message: its backup would load into today's model without
any error and train it on the other convention.

Anything else (other settings, files of a run without a record, a backup of an earlier version) is
refused with a :class:`~keras_padfree.training.errors.RunFolderError` that names the differences
and the ways out (``--no-resume``, another ``--output-dir``).
"""

import dataclasses
import datetime
import json
import os
import shutil
import socket
import sys

from keras_padfree.training import files
from keras_padfree.training.errors import BackupError
from keras_padfree.training.errors import RunFolderError

__all__ = [
    "NORMALIZED",
    "RAW_PIXELS",
    "RUN_FILES",
    "SAFE_CHANGES",
    "SETTING_KEYS",
    "RunLock",
    "RunPlan",
    "clear_run_files",
    "describe_changes",
    "input_convention",
    "plan_run",
    "read_record",
    "write_record",
]

LOCK_NAME = "run.lock"
RECORD_NAME = "run.json"
# The files a run writes (and --no-resume deletes); anything else in the folder is left alone.
RUN_FILES = (
    "run.json",
    "final.keras",
    "final.json",
    "best.keras",
    "best.json",
    "last.keras",
    "train_log.csv",
    "backup",
    "tensorboard",
)
# The settings that define a run's position and result, in the order messages list them.
SETTING_KEYS = (
    "model",
    "dataset",
    "train_examples",
    "data_fingerprint",
    "classes",
    "image_size",
    "normalization",
    "input",
    "recipe",
    "batch_size",
    "steps_per_epoch",
    "epochs",
    "seed",
    "learning_rate",
    "precision",
    "distribute",
    "replicas",
    "backend",
)
# Settings that a resume may change when the user says so (--allow-changes): the saved position
# keeps its meaning. "distribute" covers the number of replicas (the global batch is unchanged).
SAFE_CHANGES = ("epochs", "learning_rate", "distribute")
_CHANGE_FLAG = {"replicas": "distribute"}
# The settings' "input": what the run's model takes. Runs of earlier versions recorded no "input":
# their pipeline normalised the images and their models held no normalisation.
RAW_PIXELS = "raw_pixels"
NORMALIZED = "normalized"
_INPUTS = {
    RAW_PIXELS: "raw RGB pixels in [0, 255] (the model normalises them with its Rescaling and "
    "Normalization layers)",
    NORMALIZED: "images normalised by the input pipeline ((pixel / 255 - mean) / std; the model "
    "holds no normalisation layers)",
}


def _now():
    return datetime.datetime.now(datetime.UTC).astimezone().isoformat(timespec="seconds")


# -- the lock ------------------------------------------------------------------------------------

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt


class RunLock:
    """An exclusive, non-blocking lock on an output folder, held for the duration of a run.

    It is an operating-system lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on
    ``OUTPUT_DIR/run.lock``: the system releases it when the holder exits or is killed, so a lock
    left by a dead process is stale by construction and the next run takes it. The file holds the
    holder's process id, host, start time and command line for the message a second run shows.

    The folder is created if needed; a folder this lock created is removed again on release when
    the run left nothing in it (e.g. a run that stopped on a bad argument).
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self._fd = None
        self._created = []  # the folders this lock created, innermost first
        self.stale = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def _fail(self, e):
        return RunFolderError(
            f"Cannot use the output folder {self.folder}: {getattr(e, 'strerror', None) or e}. "
            "Pass a writable --output-dir."
        )

    def acquire(self):
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise RunFolderError(
                f"Argument `output_dir` must be a folder. Received: output_dir="
                f"{self.folder!r}, which is a file."
            )
        missing, path = [], os.path.abspath(self.folder)
        while not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        try:
            for path in reversed(missing):
                os.mkdir(path)
                self._created.insert(0, path)
        except OSError as e:
            self._remove_created()
            raise self._fail(e) from e
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                self._remove_created()
                raise self._fail(e) from e
            try:
                self._lock(fd)
            except OSError:
                holder = self._holder(fd)
                os.close(fd)
                self._remove_created()
                raise RunFolderError(
                    f"The output folder {self.folder} is in use by another training run "
                    f"({holder}). One run per folder: wait for it to end, stop it, or pass "
                    "another --output-dir."
                ) from None
            # The previous holder may have removed the file between our open and lock: retry
            # with the file that is there now.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        previous = self._read(fd)
        if previous.get("pid"):
            self.stale = previous
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _now(),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + "\n").encode())
        return self

    @staticmethod
    def _lock(fd):
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    @staticmethod
    def _read(fd):
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            return json.loads(os.read(fd, 65536).decode() or "{}")
        except (OSError, ValueError):
            return {}

    def _holder(self, fd):
        info = self._read(fd)
        if not info.get("pid"):
            return "process unknown"
        return (
            f"process {info['pid']} on {info.get('host', '?')}, started "
            f"{info.get('started', '?')}: {info.get('command', '')}".rstrip(": ")
        )

    def _remove_created(self):
        """Removes the folders this lock created, as long as they are empty."""
        for path in self._created:
            try:
                os.rmdir(path)
            except OSError:
                break
        self._created = []

    def release(self):
        if self._fd is None:
            return
        try:
            os.remove(self.path)  # while still holding it: a waiting run then retries
        except OSError:
            pass
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        self._remove_created()  # only succeeds when the run left nothing behind


# -- the run record ------------------------------------------------------------------------------


def read_record(folder):
    """The run record (``run.json``) of ``folder``, or None."""
    path = os.path.join(folder, RECORD_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        raise RunFolderError(
            f"The run record {path} cannot be read ({e}). Start over with --no-resume (deletes "
            f"the run's files in {folder}) or pass another --output-dir."
        ) from e
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        raise RunFolderError(
            f"The run record {path} is not one written by keras_padfree. Start over with "
            f"--no-resume (deletes the run's files in {folder}) or pass another --output-dir."
        )
    return record


def write_record(folder, record):
    record = dict(record, updated=_now())
    files.write_json(os.path.join(folder, RECORD_NAME), record, "the run record")
    return record


def new_record(settings, changes=()):
    from keras_padfree import __version__

    return {
        "format": 1,
        "status": "running",
        "settings": settings,
        "settings_changes": list(changes),
        "started": _now(),
        "keras_padfree_version": __version__,
    }


def clear_run_files(folder):
    """Deletes the files a previous run wrote in ``folder`` (see :data:`RUN_FILES`)."""
    for name in RUN_FILES:
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.remove(path)
        except OSError as e:
            raise RunFolderError(f"Cannot delete {path} to start over: {e.strerror or e}.") from e
    for name in os.listdir(folder):
        if files.PARTIAL_MARK in name:
            path = os.path.join(folder, name)
            try:
                os.remove(path)
            except OSError:
                pass


# -- the decision --------------------------------------------------------------------------------


@dataclasses.dataclass
class RunPlan:
    """What :func:`plan_run` decided.

    Attributes:
        kind: ``"fresh"``, ``"resume"`` or ``"finished"``.
        clear: delete the previous run's files before training (fresh runs only).
        position: ``(epoch, step)`` of the backup to resume, or None.
        changes: ``{key: [old, new]}`` of the settings changed by this resume.
        history: the changes recorded by earlier resumes.
        record: the run record found in the folder (or None).
    """

    kind: str
    clear: bool = False
    position: tuple | None = None
    changes: dict = dataclasses.field(default_factory=dict)
    history: list = dataclasses.field(default_factory=list)
    record: dict | None = None


def describe_changes(changes):
    return ", ".join(f"{k} {_show(old)} -> {_show(new)}" for k, (old, new) in changes.items())


def _show(value):
    if isinstance(value, dict) and value.get("type") == "mean_std":
        return f"mean {value.get('mean')} std {value.get('std')}"
    return json.dumps(value) if isinstance(value, (dict, list)) else repr(value)


def _differences(old, new):
    keys = [k for k in SETTING_KEYS if k in old or k in new]
    keys += sorted(k for k in set(old) | set(new) if k not in SETTING_KEYS)
    return {k: [old.get(k), new.get(k)] for k in keys if old.get(k) != new.get(k)}


def input_convention(settings):
    """The ``"input"`` of recorded settings (:data:`RAW_PIXELS` or :data:`NORMALIZED`; a run of an
    earlier version, which recorded none, is :data:`NORMALIZED`)."""
    return settings.get("input", NORMALIZED)


def _check_input_convention(folder, recorded, settings, what):
    old, new = input_convention(recorded), input_convention(settings)
    if old == new:
        return
    era = "an earlier version of keras_padfree" if "input" not in recorded else "another version"
    raise RunFolderError(
        f"The run in {folder} ({what}) was started by {era}: its model takes "
        f"{_INPUTS.get(old, repr(old))}, while this version trains models that take "
        f"{_INPUTS.get(new, repr(new))}. Continuing it would train one model on both "
        f"conventions, so it is not resumed: {_ways_out(folder)}. Its saved models "
        "(best.keras, last.keras, final.keras) still load and evaluate as they are: "
        "training/evaluate.py feeds a model without normalisation layers the recipe's "
        "normalised images."
    )


def _ways_out(folder):
    return (
        f"start over with --no-resume (deletes the run's backup, log and models in {folder}), "
        "or pass another --output-dir"
    )


def _legacy_backup(backup_dir):
    return any(
        os.path.exists(os.path.join(backup_dir, n))
        for n in ("state.json", "model.weights.h5", "optimizer.npz")
    )


def plan_run(folder, settings, *, resume=True, allow_changes=(), read_backup=None):
    """Decides whether this command starts, resumes or has nothing to do (see the module doc).

    Args:
        folder: the output folder (locked by the caller).
        settings: the command's settings (keys of :data:`SETTING_KEYS`).
        resume: False for ``--no-resume``.
        allow_changes: the :data:`SAFE_CHANGES` the user allows on this resume.
        read_backup: ``read_backup(backup_dir)`` -> the backup's manifest or None.

    Raises:
        RunFolderError: the folder holds another run, or the settings differ.
        BackupError: the backup is damaged.
    """
    present = [n for n in RUN_FILES if os.path.lexists(os.path.join(folder, n))]
    if not resume:
        return RunPlan("fresh", clear=bool(present))
    if read_backup is None:
        from keras_padfree.training.callbacks import read_backup_manifest as read_backup
    backup_dir = os.path.join(folder, "backup")
    record = read_record(folder)
    manifest = read_backup(backup_dir) if os.path.isdir(backup_dir) else None
    if manifest is None and os.path.isdir(backup_dir) and _legacy_backup(backup_dir):
        raise RunFolderError(
            f"The backup in {backup_dir} was written by an earlier version of keras_padfree that "
            "did not record the run's settings, so resuming it cannot be checked against this "
            f"command. {_ways_out(folder).capitalize()}. Its models (best.keras, last.keras) "
            "still load with keras.saving.load_model."
        )
    if manifest is not None:
        recorded = manifest.get("settings")
        if not isinstance(recorded, dict):
            raise BackupError(
                f"The backup in {backup_dir} does not record the run's settings: it cannot be "
                f"checked against this command. It cannot be resumed; {_ways_out(folder)}."
            )
        position = (int(manifest["epoch"]), int(manifest["step"]))
        where = f"its backup in {backup_dir} is at epoch {position[0]}, step {position[1]}"
        _check_input_convention(folder, recorded, settings, where)
        changes = _differences(recorded, settings)
        refused = [
            k for k in changes if k not in SAFE_CHANGES and _CHANGE_FLAG.get(k) not in SAFE_CHANGES
        ]
        not_allowed = [
            k for k in changes if k not in refused and _CHANGE_FLAG.get(k, k) not in allow_changes
        ]
        if refused or not_allowed:
            message = (
                f"The run in {folder} was started with other settings: "
                f"{describe_changes(changes)} ({where}). "
            )
            if refused:
                message += f"Resume it with the same values, or {_ways_out(folder)}."
            else:
                flags = ",".join(sorted({_CHANGE_FLAG.get(k, k) for k in not_allowed}))
                message += (
                    f"To continue it with the new values pass --allow-changes {flags}; "
                    f"or {_ways_out(folder)}."
                )
            raise RunFolderError(message)
        epochs = settings["epochs"]
        if position[0] > epochs or (position[0] == epochs and position[1] > 0):
            raise RunFolderError(
                f"The run in {folder} has already trained past --epochs {epochs} ({where}). "
                f"Pass --epochs {position[0] + (1 if position[1] else 0)} or more, or "
                f"{_ways_out(folder)}."
            )
        history = list(manifest.get("settings_changes") or [])
        done = (
            position == (epochs, 0)
            and not changes
            and record is not None
            and record.get("status") == "finished"
            and os.path.exists(os.path.join(folder, "final.json"))
        )
        kind = "finished" if done else "resume"
        return RunPlan(kind, position=position, changes=changes, history=history, record=record)
    if record is not None:
        _check_input_convention(
            folder,
            record["settings"],
            settings,
            f"its run record {os.path.join(folder, RECORD_NAME)}",
        )
        changes = _differences(record["settings"], settings)
        if changes:
            raise RunFolderError(
                f"The output folder {folder} holds a run with other settings: "
                f"{describe_changes(changes)} (it has no backup to resume). Use the same values, "
                f"or {_ways_out(folder)}."
            )
        if record.get("status") == "finished" and os.path.exists(
            os.path.join(folder, "final.json")
        ):
            return RunPlan(
                "finished", record=record, history=list(record.get("settings_changes") or [])
            )
        # Started with these settings but stopped before its first backup: nothing to resume.
        return RunPlan("fresh", clear=True, record=record)
    if present:
        raise RunFolderError(
            f"The output folder {folder} holds files of a training run ({', '.join(present)}) "
            "without a run record (run.json), e.g. of an earlier keras_padfree or another "
            f"program, so this run would mix with them. {_ways_out(folder).capitalize()}."
        )
    return RunPlan("fresh")
