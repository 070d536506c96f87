"""Output paths checked before any work, and sets of files written all or nothing."""

import json
import os
import tempfile

from keras_padfree.export.metadata import sidecar_paths


def _first_existing(directory):
    while not os.path.exists(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


def check_output_path(path: str | os.PathLike, suffix: str, argname: str) -> str:
    """Returns ``path`` as a string once it can take an export (nothing is created).

    The path must end in ``suffix`` and have a name before it; neither it nor its sidecars
    (``.json``, ``.labels.txt``) may be directories; an existing ``.json`` there must be the
    sidecar of this same model file (``model.tflite`` and ``model.onnx`` would share
    ``model.json``); its folder must exist or be creatable, and be writable.

    Raises:
        ValueError: naming ``argname``, what was received and what is allowed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(
            f"Argument `{argname}` must be a file path ending in '{suffix}'. "
            f"Received: {argname}={path!r}."
        )
    path = os.fspath(path)
    name = os.path.basename(path)
    if not name.endswith(suffix) or name == suffix:
        raise ValueError(
            f"Argument `{argname}` must be a file path ending in '{suffix}'. "
            f"Received: {argname}={path!r}."
        )
    for target in (path, *sidecar_paths(path)):
        if os.path.isdir(target):
            raise ValueError(
                f"Argument `{argname}`: {target!r} is a directory; the export writes a file there. "
                f"Received: {argname}={path!r}."
            )
    json_path = sidecar_paths(path)[0]
    if os.path.isfile(json_path):
        owner = _sidecar_owner(json_path)
        if owner != name:
            what = (
                f"the sidecar of {owner!r}" if owner else "a file that is not this model's sidecar"
            )
            raise ValueError(
                f"Argument `{argname}`: {json_path!r} is {what}; this export would overwrite it. "
                f"Choose another name or folder. Received: {argname}={path!r}."
            )
    directory = os.path.dirname(os.path.abspath(path))
    existing = _first_existing(directory)
    if not os.path.isdir(existing):
        raise ValueError(
            f"Argument `{argname}`: {existing!r} is not a directory, so {directory!r} cannot hold "
            f"the export. Received: {argname}={path!r}."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"Argument `{argname}`: the directory {existing!r} is not writable. "
            f"Received: {argname}={path!r}."
        )
    return path


def _sidecar_owner(json_path):
    """The ``model_file`` an existing sidecar describes, or None when it is no sidecar."""
    try:
        with open(json_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    owner = meta.get("model_file") if isinstance(meta, dict) else None
    return owner if isinstance(owner, str) else None


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_files(files: dict[str, bytes | str]) -> None:
    """Writes ``{path: bytes or str}`` as one unit: every file goes to a temporary name in its
    folder first and is renamed into place only when all of them were written; on a failure the
    temporary files (and folders this call created) are removed and nothing is replaced."""
    created = []
    temps = {}
    mode = 0o666 & ~_umask()
    try:
        for path in files:
            directory = os.path.dirname(os.path.abspath(path))
            missing = []
            d = directory
            while not os.path.exists(d):
                missing.append(d)
                d = os.path.dirname(d)
            os.makedirs(directory, exist_ok=True)
            created.extend(reversed(missing))
        for path, content in files.items():
            directory = os.path.dirname(os.path.abspath(path))
            fd, tmp = tempfile.mkstemp(
                dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
            )
            temps[path] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            os.chmod(tmp, mode)
        for path, tmp in temps.items():
            os.replace(tmp, path)
        created = []
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.remove(tmp)
        for d in reversed(created):
            try:
                os.rmdir(d)
            except OSError:
                pass
