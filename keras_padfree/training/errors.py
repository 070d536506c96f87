"""The errors a training run reports, and the exit status ``training/fit.py`` gives each.

Usage errors (exit status 2, like argparse's): every ``ValueError``, among them
:class:`RunFolderError` (the output folder is busy, holds another run, or its settings differ) and
:class:`BackupError` (the backup cannot be resumed). Failures of a run that had started (exit
status 1): :class:`TrainingError` and its subclasses :class:`TrainingDiverged` and
:class:`OutputWriteError`. Every message names the files involved and what was kept.
"""

__all__ = [
    "BackupError",
    "OutputWriteError",
    "RunFolderError",
    "TrainingDiverged",
    "TrainingError",
    "exit_status",
]


class RunFolderError(ValueError):
    """The output folder cannot take this run: busy, foreign, or its settings differ."""


class BackupError(ValueError):
    """A backup exists but cannot be resumed (damaged, incomplete, or of another model)."""


class TrainingError(RuntimeError):
    """A started run stopped; the message says why and what was kept."""


class TrainingDiverged(TrainingError):
    """The loss or the weights became non-finite (NaN or infinity)."""


class OutputWriteError(TrainingError):
    """A file of the run could not be written (full disk, no permission, ...).

    Attributes:
        path: the file or folder that was being written.
        what: what it holds, in words ("the training backup (epoch 1, step 8)").
        error: the ``OSError`` raised by the operating system.
    """

    def __init__(self, path, what, error, kept=""):
        self.path = str(path)
        self.what = what
        self.error = error
        self.kept = kept
        reason = getattr(error, "strerror", None) or str(error)
        message = f"Cannot write {what} to {self.path}: {reason}."
        if kept:
            message += " " + kept
        super().__init__(message)

    def with_kept(self, kept):
        """The same error, with a sentence on what is intact and how to go on."""
        return OutputWriteError(self.path, self.what, self.error, kept)


def exit_status(error):
    """The exit status of ``training/fit.py`` for ``error`` (2: usage, 1: failed run), or None.

    None means an unexpected error (a bug): the command shows its traceback.
    """
    from keras_padfree.data.specs import DatasetNotFoundError

    if isinstance(error, TrainingError):
        return 1
    if isinstance(error, (ValueError, DatasetNotFoundError)):
        return 2
    return None
