"""Image-folder datasets: one sub-folder per class (torchvision ``ImageFolder`` layout).

Two layouts are accepted:

* ``ROOT/train/<class>/*`` and ``ROOT/val/<class>/*`` (``validation/`` or ``test/`` also work);
* ``ROOT/<class>/*``, split into train/val by a fraction, per class, with a fixed seed.

Classes are the sorted sub-folder names of the training folder (label i = i-th name), as in
torchvision. A classifier needs at least 2 classes, every training class needs at least one image,
and a validation folder may not hold classes that the training folder lacks: each is a
``ValueError`` that names the folders.

Every image is decoded once when the folder is scanned, with the decoder the input pipeline uses,
so what the pipeline reads is exactly what was counted: a file whose header looks right but whose
body does not decode (a garbage JPEG body, a PNG with a broken IDAT chunk, a 1-bit BMP) is found
here, not in the middle of an epoch. Such files are left out with a warning that counts them
(``on_corrupt="skip"``, the default: one bad file should not stop a long run; they are listed in
``final.json``), or raise a ``ValueError`` naming them (``on_corrupt="error"``). The per-split
counts, hence the steps per epoch, are those of the decodable images.

The outcome per file is cached, keyed by the file's size and modification time, in
``$KERAS_PADFREE_CACHE_DIR/image_folders/`` (default ``~/.cache/keras_padfree``, or
``$XDG_CACHE_HOME/keras_padfree``): a second run decodes only new or changed files.
"""

import dataclasses
import hashlib
import json
import os
import warnings

import numpy as np

__all__ = ["FolderSplit", "check_image_file", "default_cache_dir", "scan_image_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_VAL_NAMES = ("val", "validation", "test")
_CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class FolderSplit:
    """Files and labels of one split.

    Attributes:
        files: the decodable image files of the split.
        labels: their labels (index into ``class_names``).
        class_names: the training folder's class names.
        skipped: undecodable files left out (of the folder(s) the split was drawn from).
        fingerprint: SHA-256 of the split's relative paths, sizes and labels (identifies the
            data of a run independently of where the folder is mounted).
    """

    files: tuple
    labels: tuple
    class_names: tuple
    skipped: tuple = ()
    fingerprint: str = ""


def check_image_file(path):
    """Returns None if ``path`` looks like a complete image file, else the reason it does not.

    A quick check of the header and (JPEG, PNG) end marker; :func:`scan_image_folder` also decodes
    every image.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, size - 16))
            tail = f.read(16)
    except OSError as e:
        return f"cannot be read ({e})"
    if size < 16:
        return f"too small to be an image ({size} bytes)"
    if head[:3] == b"\xff\xd8\xff":
        # A JPEG ends with the EOI marker; allow trailing padding some cameras write.
        if b"\xff\xd9" not in tail:
            return "truncated JPEG (no end-of-image marker)"
        return None
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if b"IEND" not in tail:
            return "truncated PNG (no IEND chunk)"
        return None
    if head[:6] in (b"GIF87a", b"GIF89a") or head[:2] == b"BM":
        return None
    return "not a JPEG, PNG, GIF or BMP file (unknown header)"


def default_cache_dir():
    """Where folder scans are cached (``$KERAS_PADFREE_CACHE_DIR`` or the user's cache folder)."""
    if os.environ.get("KERAS_PADFREE_CACHE_DIR"):
        return os.environ["KERAS_PADFREE_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "keras_padfree")


def _decode_error(message):
    # TensorFlow's message: "{{function_node ...}} jpeg::Uncompress failed. ... [Op:DecodeImage]".
    text = str(message).strip().splitlines()[0] if str(message).strip() else "decoding failed"
    if "}}" in text:
        text = text.split("}}", 1)[1]
    return text.split(" [Op:")[0].strip() or "decoding failed"


def _decode_files(paths):
    """Decodes each file as the pipeline does; returns None (decodes) or the reason, per file."""
    import tensorflow as tf

    if not paths:
        return []
    reasons = [None] * len(paths)
    for i, path in enumerate(paths):
        reasons[i] = check_image_file(path)
    todo = [i for i, r in enumerate(reasons) if r is None]
    if not todo:
        return reasons

    def decode(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return index, tf.shape(image)

    ds = tf.data.Dataset.from_tensor_slices((np.asarray(todo, np.int64), [paths[i] for i in todo]))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors()
    decoded = {int(i) for i, _ in ds.as_numpy_iterator()}
    for i in todo:
        if i in decoded:
            continue
        # Decode the failures one by one for the reason (few, unless the folder is broken).
        try:
            tf.io.decode_image(tf.io.read_file(paths[i]), channels=3, expand_animations=False)
            reasons[i] = "decoding failed"
        except Exception as e:  # noqa: BLE001 -- TensorFlow raises several error types
            reasons[i] = _decode_error(getattr(e, "message", e))
    return reasons


class _ScanCache:
    """Decoding outcomes of one folder, keyed by relative path, size and modification time."""

    def __init__(self, root, cache_dir):
        self.root = os.path.realpath(root)
        key = hashlib.sha256(self.root.encode()).hexdigest()[:20]
        self.path = os.path.join(cache_dir, "image_folders", f"{key}.json")
        self.entries = {}
        self.changed = False
        try:
            with open(self.path) as f:
                saved = json.load(f)
            if saved.get("format") == _CACHE_FORMAT and saved.get("root") == self.root:
                self.entries = saved["entries"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    def check(self, files):
        """The reason each file does not decode (None: it decodes), decoding only what changed."""
        stats, reasons, todo = {}, {}, []
        for path in files:
            rel = os.path.relpath(os.path.realpath(path), self.root)
            try:
                st = os.stat(path)
            except OSError as e:
                reasons[path] = f"cannot be read ({e.strerror or e})"
                continue
            stats[path] = (rel, st.st_size, st.st_mtime_ns)
            entry = self.entries.get(rel)
            if (
                isinstance(entry, list)
                and len(entry) == 3
                and entry[0] == st.st_size
                and entry[1] == st.st_mtime_ns
            ):
                reasons[path] = entry[2]
            else:
                todo.append(path)
        for path, reason in zip(todo, _decode_files(todo)):
            reasons[path] = reason
            rel, size, mtime = stats[path]
            self.entries[rel] = [size, mtime, reason]
            self.changed = True
        return [reasons[p] for p in files], {p: stats[p][1] for p in stats}

    def save(self):
        if not self.changed:
            return
        data = json.dumps({"format": _CACHE_FORMAT, "root": self.root, "entries": self.entries})
        tmp = f"{self.path}.partial-{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except OSError as e:
            try:
                os.remove(tmp)
            except OSError:
                pass
            warnings.warn(
                f"Cannot write the image-folder scan cache {self.path} ({e}); the next "
                "run decodes every image again. Set KERAS_PADFREE_CACHE_DIR to a "
                "writable folder.",
                stacklevel=4,
            )


def _class_dirs(root):
    names = sorted(
        d
        for d in os.listdir(root)
        if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    return names


def _list_files(root, class_names):
    files, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        for dirpath, _, filenames in sorted(os.walk(folder, followlinks=True)):
            for fn in sorted(filenames):
                if fn.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(os.path.join(dirpath, fn))
                    labels.append(label)
    return files, labels


def _decodable(files, labels, cache, on_corrupt, where):
    """Keeps the files that decode; the others are reported as ``on_corrupt`` says."""
    reasons, sizes = cache.check(files)
    cache.save()
    bad = [(f, r) for f, r in zip(files, reasons) if r is not None]
    if bad and on_corrupt == "error":
        shown = "\n".join(f"  {f}: {r}" for f, r in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise ValueError(
            f"{len(bad)} image file{'s' if len(bad) != 1 else ''} cannot be decoded under "
            f"{where}:\n{shown}{more}\nRemove or replace them, or pass --on-corrupt skip "
            "(on_corrupt='skip') to leave such files out."
        )
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} undecodable image file(s) of {len(files)} under {where}; first: "
            f"{bad[0][0]} ({bad[0][1]}).",
            stacklevel=4,
        )
    keep = [i for i, r in enumerate(reasons) if r is None]
    return ([files[i] for i in keep], [labels[i] for i in keep], tuple(f for f, _ in bad), sizes)


def _fingerprint(files, labels, sizes, base, class_names):
    digest = hashlib.sha256("\n".join(class_names).encode())
    for f, lab in zip(files, labels):
        digest.update(f"\n{os.path.relpath(f, base)}\t{sizes.get(f, -1)}\t{lab}".encode())
    return digest.hexdigest()


def _check_classes(class_names, labels, where):
    if not class_names:
        raise ValueError(
            f"No class sub-folders found under {where!r}: a classifier needs at "
            "least 2 classes, one sub-folder of images each."
        )
    if len(class_names) < 2:
        raise ValueError(
            f"The image folder {where} has 1 class ({class_names[0]!r}): a classifier needs at "
            "least 2 classes, one sub-folder of images each."
        )
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    empty = [c for c, n in zip(class_names, counts) if n == 0]
    if empty:
        raise ValueError(
            f"The class folder(s) {', '.join(repr(c) for c in empty)} under {where} have no "
            "decodable training images; add images or remove the folder(s)."
        )


def scan_image_folder(root, split, *, val_fraction=0.2, seed=0, on_corrupt="skip", cache_dir=None):
    """Lists the decodable images of one split of an image folder.

    Args:
        root: the folder (see the module docstring for the layouts).
        split: ``"train"`` or ``"val"``.
        val_fraction: share of each class held out as ``"val"`` when ``root`` has no val folder.
        seed: seed of that per-class split.
        on_corrupt: ``"skip"`` (warn with a count) or ``"error"``.
        cache_dir: folder of the scan cache (default :func:`default_cache_dir`).

    Returns:
        A :class:`FolderSplit`.

    Raises:
        DatasetNotFoundError: ``root`` is not a folder.
        ValueError: bad arguments, fewer than 2 classes, a training class without images,
            validation classes the training folder lacks, or undecodable images with
            ``on_corrupt="error"``.
    """
    if split not in ("train", "val"):
        raise ValueError(f"Argument `split` must be 'train' or 'val'. Received: split={split!r}.")
    if on_corrupt not in ("skip", "error"):
        raise ValueError(
            f"Argument `on_corrupt` must be 'skip' or 'error'. Received: on_corrupt={on_corrupt!r}."
        )
    if not root or not os.path.isdir(root):
        from keras_padfree.data.specs import DatasetNotFoundError

        raise DatasetNotFoundError(
            f"Image folder not found: {root!r}. Pass --data-dir PATH with one sub-folder per "
            "class, or PATH/train/<class>/ and PATH/val/<class>/."
        )
    cache = _ScanCache(root, cache_dir or default_cache_dir())
    train_root = os.path.join(root, "train")
    val_root = next(
        (os.path.join(root, v) for v in _VAL_NAMES if os.path.isdir(os.path.join(root, v))), None
    )
    if os.path.isdir(train_root) and val_root is not None:
        class_names = _class_dirs(train_root)
        extra = sorted(set(_class_dirs(val_root)) - set(class_names))
        if extra:
            raise ValueError(
                f"The validation folder {val_root} has classes that the training folder "
                f"{train_root} lacks: {', '.join(repr(c) for c in extra)}. A model cannot "
                "predict a class it was not trained on: add them to the training folder or "
                "remove them from the validation folder."
            )
        if len(class_names) < 2:
            _check_classes(class_names, [], train_root)
        files, labels = _list_files(train_root, class_names)
        files, labels, skipped, sizes = _decodable(files, labels, cache, on_corrupt, train_root)
        _check_classes(class_names, labels, train_root)
        base = train_root
        if split == "val":
            files, labels = _list_files(val_root, class_names)
            files, labels, skipped, sizes = _decodable(files, labels, cache, on_corrupt, val_root)
            base = val_root
            if not files:
                raise ValueError(
                    f"No decodable images ({', '.join(IMAGE_EXTENSIONS)}) in the "
                    f"validation folder {val_root!r}."
                )
    else:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(
                "Argument `val_fraction` must be in (0, 1). "
                f"Received: val_fraction={val_fraction!r}."
            )
        class_names = _class_dirs(root)
        if len(class_names) < 2:
            _check_classes(class_names, [], root)
        all_files, all_labels = _list_files(root, class_names)
        all_files, all_labels, skipped, sizes = _decodable(
            all_files, all_labels, cache, on_corrupt, root
        )
        _check_classes(class_names, all_labels, root)
        rng = np.random.default_rng(seed)
        files, labels = [], []
        all_labels = np.asarray(all_labels, dtype=np.int64)
        for c in range(len(class_names)):
            idx = np.flatnonzero(all_labels == c)
            idx = idx[rng.permutation(len(idx))]
            n_val = int(round(len(idx) * val_fraction)) if len(idx) > 1 else 0
            chosen = idx[:n_val] if split == "val" else idx[n_val:]
            for i in sorted(chosen):
                files.append(all_files[i])
                labels.append(int(all_labels[i]))
        base = root
        if not files:
            raise ValueError(
                f"No decodable images for split {split!r} under {root!r} "
                f"(val_fraction={val_fraction})."
            )
    class_names = tuple(class_names)
    return FolderSplit(
        tuple(files),
        tuple(labels),
        class_names,
        tuple(sorted(skipped)),
        _fingerprint(files, labels, sizes, base, class_names),
    )
