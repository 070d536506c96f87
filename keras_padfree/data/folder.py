"""Image-folder datasets: one sub-folder per class (torchvision ``ImageFolder`` layout).

Two layouts are accepted:

* ``ROOT/train/<class>/*`` and ``ROOT/val/<class>/*`` (``validation/`` or ``test/`` also work);
* ``ROOT/<class>/*``, split into train/val by a fraction, per class, with a fixed seed.

Classes are the sorted sub-folder names of the training folder (label i = i-th name), as in
torchvision. Every file is checked before training: its header must be a JPEG, PNG, GIF or BMP
signature and JPEG/PNG files must end with their end marker. A file that fails the check is skipped
and counted in a warning (``on_corrupt="skip"``, the default: one bad file should not stop a long
run), or raises a ``ValueError`` naming it (``on_corrupt="error"``). Files that pass the check but
still fail to decode are dropped by the pipeline with a logged warning.
"""

import dataclasses
import os
import warnings

import numpy as np

__all__ = ["FolderSplit", "check_image_file", "scan_image_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_VAL_NAMES = ("val", "validation", "test")


@dataclasses.dataclass(frozen=True)
class FolderSplit:
    """Files and labels of one split; ``skipped`` lists the corrupt files left out."""

    files: tuple
    labels: tuple
    class_names: tuple
    skipped: tuple = ()


def check_image_file(path):
    """Returns None if ``path`` looks like a complete image file, else the reason it does not."""
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


def _class_dirs(root):
    names = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
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


def _filter(files, labels, on_corrupt, root):
    good_f, good_l, bad = [], [], []
    for f, lab in zip(files, labels):
        reason = check_image_file(f)
        if reason is None:
            good_f.append(f)
            good_l.append(lab)
            continue
        if on_corrupt == "error":
            raise ValueError(f"Corrupt image file {f}: {reason}. Remove or replace it, or pass "
                             "--on-corrupt skip (on_corrupt='skip') to leave such files out.")
        bad.append((f, reason))
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} corrupt image file(s) of {len(files)} under {root}; first: "
            f"{bad[0][0]} ({bad[0][1]}).", stacklevel=3)
    return good_f, good_l, tuple(f for f, _ in bad)


def scan_image_folder(root, split, *, val_fraction=0.2, seed=0, on_corrupt="skip"):
    """Lists the images of one split of an image folder.

    Args:
        root: the folder (see the module docstring for the layouts).
        split: ``"train"`` or ``"val"``.
        val_fraction: share of each class held out as ``"val"`` when ``root`` has no val folder.
        seed: seed of that per-class split.
        on_corrupt: ``"skip"`` (warn with a count) or ``"error"``.

    Returns:
        A :class:`FolderSplit`.
    """
    if split not in ("train", "val"):
        raise ValueError(f"Argument `split` must be 'train' or 'val'. Received: split={split!r}.")
    if on_corrupt not in ("skip", "error"):
        raise ValueError(
            f"Argument `on_corrupt` must be 'skip' or 'error'. Received: on_corrupt={on_corrupt!r}.")
    if not root or not os.path.isdir(root):
        from keras_padfree.data.specs import DatasetNotFoundError

        raise DatasetNotFoundError(
            f"Image folder not found: {root!r}. Pass --data-dir PATH with one sub-folder per class, "
            "or PATH/train/<class>/ and PATH/val/<class>/.")
    train_root = os.path.join(root, "train")
    val_root = next((os.path.join(root, v) for v in _VAL_NAMES
                     if os.path.isdir(os.path.join(root, v))), None)
    if os.path.isdir(train_root) and val_root is not None:
        class_names = _class_dirs(train_root)
        files, labels = _list_files(train_root if split == "train" else val_root, class_names)
        where = train_root if split == "train" else val_root
    else:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError("Argument `val_fraction` must be in (0, 1). "
                             f"Received: val_fraction={val_fraction!r}.")
        class_names = _class_dirs(root)
        all_files, all_labels = _list_files(root, class_names)
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
        where = root
    if not class_names:
        raise ValueError(f"No class sub-folders found under {root!r}.")
    files, labels, skipped = _filter(files, labels, on_corrupt, where)
    if not files:
        raise ValueError(f"No readable images ({', '.join(IMAGE_EXTENSIONS)}) for split {split!r} "
                         f"under {where!r}.")
    return FolderSplit(tuple(files), tuple(labels), tuple(class_names), skipped)
