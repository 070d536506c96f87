"""Writing a run's files so that a crash never leaves half a file and a failure names the file.

Every file is written under a temporary name in the same folder (``NAME.partial-PID``), flushed to
the disk (``fsync``) and renamed over the final name, which is atomic on POSIX file systems and on
Windows: a run killed at any moment leaves either the previous file or the new one, never a mix or
a 0-byte model. Writes go through Python's own file objects only (the models' HDF5 weights are
built in memory by Keras), so a full disk raises a clean ``OSError``, reported as an
:class:`~keras_padfree.training.errors.OutputWriteError` that names the file and its content.
"""

import json
import math
import os

import numpy as np

from keras_padfree.training.errors import OutputWriteError

__all__ = [
    "PARTIAL_MARK",
    "fsync_dir",
    "json_safe",
    "remove_quietly",
    "save_model",
    "write_bytes",
    "write_json",
]

PARTIAL_MARK = ".partial-"


def _partial_name(path, suffix=""):
    head, tail = os.path.split(os.fspath(path))
    stem, ext = os.path.splitext(tail) if suffix else (tail, "")
    return os.path.join(head, f"{stem}{PARTIAL_MARK}{os.getpid()}{ext}")


def fsync_dir(path):
    """Makes a rename inside folder ``path`` durable (a no-op where folders cannot be synced)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_quietly(path):
    """Removes a file if it is there; errors are ignored (clean-up of temporary files)."""
    try:
        os.remove(path)
    except OSError:
        pass


def write_bytes(path, data, what, *, atomic=True):
    """Writes ``data`` to ``path``: to a temporary name, synced, then renamed (``atomic``).

    Args:
        path: destination file.
        data: the bytes.
        what: what the file holds, for the error message ("the training log").
        atomic: False writes ``path`` directly (for files inside a folder that is itself renamed
            into place once complete).

    Raises:
        OutputWriteError: the file could not be written; an earlier ``path`` is intact.
    """
    path = os.fspath(path)
    target = _partial_name(path) if atomic else path
    try:
        with open(target, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if atomic:
            os.replace(target, path)
            fsync_dir(os.path.dirname(path) or ".")
    except OSError as e:
        remove_quietly(target)
        raise OutputWriteError(path, what, e) from e


def json_safe(obj):
    """``obj`` with NaN and infinities replaced by None and NumPy scalars by Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj, what, *, atomic=True):
    """Writes ``obj`` as strict JSON (non-finite numbers become ``null``); see
    :func:`write_bytes`."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n"
    write_bytes(path, text.encode("utf-8"), what, atomic=atomic)


def save_model(model, path, what):
    """``model.save(path)`` under a temporary ``.keras`` name, synced, then renamed to ``path``.

    Raises:
        OutputWriteError: the model could not be written; an earlier ``path`` is intact.
    """
    path = os.fspath(path)
    partial = _partial_name(path, suffix=".keras")
    try:
        model.save(partial)
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
        fsync_dir(os.path.dirname(path) or ".")
    except OSError as e:
        remove_quietly(partial)
        raise OutputWriteError(path, what, e) from e
    except Exception:
        remove_quietly(partial)
        raise
