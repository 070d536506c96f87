"""The bundled UCI handwritten digits (1,797 8x8 images, 10 classes), read with NumPy only.

The file is the copy scikit-learn ships (``digits.csv.gz``: 64 pixels in 0..16, then the label); see
``bundled/DIGITS_LICENSE.txt`` for the attribution (UCI, CC BY 4.0; scikit-learn, BSD-3).
"""

import functools
import gzip
import os

import numpy as np

__all__ = ["DIGITS_FILE", "load_digits"]

DIGITS_FILE = os.path.join(os.path.dirname(__file__), "bundled", "digits.csv.gz")
# 80 % / 20 % split with a fixed permutation: 1,438 training and 359 test images.
_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _read():
    if not os.path.exists(DIGITS_FILE):
        from keras_padfree.data.specs import DatasetNotFoundError

        raise DatasetNotFoundError(
            f"The bundled digits file is missing: {DIGITS_FILE}. Reinstall keras_padfree."
        )
    with gzip.open(DIGITS_FILE, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise ValueError(f"{DIGITS_FILE}: expected 1797 rows of 65 values, got {table.shape}.")
    pixels, labels = table[:, :64], table[:, 64]
    # 0..16 counts of "on" pixels in 4x4 blocks -> 0..255 grey levels.
    images = np.round(pixels * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 8, 8, 1)
    return images, labels.astype(np.int64)


def load_digits(split="train"):
    """Returns ``(images, labels)``: uint8 ``(N, 8, 8, 1)`` and int64 ``(N,)``.

    Args:
        split: ``"train"`` (1,438 images), ``"test"`` (359) or ``"all"`` (1,797). The split is a
            fixed permutation (seed 0), so it is the same on every machine.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(
            f"Argument `split` must be 'train', 'test' or 'all'. Received: split={split!r}."
        )
    images, labels = _read()
    if split == "all":
        return images, labels
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(labels))
    n_test = int(round(len(labels) * _TEST_FRACTION))
    idx = np.sort(order[:n_test] if split == "test" else order[n_test:])
    return images[idx], labels[idx]
