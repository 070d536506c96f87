"""Image folders are decoded once when scanned: undecodable files, one class, missing classes."""

import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from keras_padfree import data
from keras_padfree.data import folder as folder_lib
from tests.data.test_data import _write_folder


def garbage_body_jpeg(path, seed=0):
    """A JPEG whose headers (SOI ... SOS) are valid and whose entropy-coded body is zeros."""
    img = np.random.default_rng(seed).integers(0, 255, (20, 24, 3), dtype=np.uint8)
    jpg = tf.io.encode_jpeg(img).numpy()
    sos = jpg.find(b"\xff\xda")
    with open(path, "wb") as f:
        f.write(jpg[:sos] + b"\x00" * (len(jpg) - sos - 2) + b"\xff\xd9")


def garbage_body_png(path, seed=0):
    """A PNG with a valid signature, IHDR and IEND but a random IDAT body."""
    rng = np.random.default_rng(seed)
    png = tf.io.encode_png(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).numpy()
    idat = png.find(b"IDAT")
    body = bytes(rng.integers(0, 255, len(png) - idat - 16, dtype=np.uint8))
    with open(path, "wb") as f:
        f.write(png[: idat + 4] + body + png[-12:])


def one_bit_bmp(path):
    """An 8x8 1-bit BMP: a valid file that TensorFlow's decoder does not support."""
    pixels = b"\xaa\x00\x00\x00" * 8
    offset = 14 + 40 + 8
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, 8, 8, 1, 1, 0, len(pixels), 2835, 2835, 2, 0)
    with open(path, "wb") as f:
        f.write(header + info + b"\x00\x00\x00\x00\xff\xff\xff\x00" + pixels)


def _write_bad_files(root, klass="cat"):
    paths = [os.path.join(root, klass, name) for name in ("zeros.jpg", "noise.png", "mono.bmp")]
    garbage_body_jpeg(paths[0])
    garbage_body_png(paths[1])
    one_bit_bmp(paths[2])
    return paths


def test_undecodable_bodies_are_found_when_the_folder_is_scanned(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_PADFREE_CACHE_DIR", str(tmp_path / "cache"))
    root = str(tmp_path / "images")
    broken = _write_folder(root, per_class=6)
    bad = _write_bad_files(root)
    with pytest.raises(ValueError) as err:
        data.scan_image_folder(root, "train", val_fraction=0.25, on_corrupt="error")
    message = str(err.value)
    assert "4 image files cannot be decoded" in message and "--on-corrupt skip" in message
    for path in [broken] + bad:
        assert path in message
    with pytest.warns(UserWarning, match=r"Skipped 4 undecodable image file\(s\)"):
        train = data.scan_image_folder(root, "train", val_fraction=0.25)
    val = data.scan_image_folder(root, "val", val_fraction=0.25)
    assert sorted(train.skipped) == sorted([broken] + bad) and val.skipped == train.skipped
    assert len(train.files) + len(val.files) == 12  # the 12 good images, every one once
    source = data.load_source("folder", "train", data_dir=root, val_fraction=0.25)
    assert source.num_examples == len(train.files) == len(list(source.dataset))


def test_a_second_scan_decodes_nothing_and_a_changed_file_once(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_PADFREE_CACHE_DIR", str(tmp_path / "cache"))
    root = str(tmp_path / "images")
    _write_folder(root, per_class=4)
    real = folder_lib._decode_files
    decoded = []

    def counting(paths):
        decoded.extend(paths)
        return real(paths)

    monkeypatch.setattr(folder_lib, "_decode_files", counting)
    with pytest.warns(UserWarning):
        first = data.scan_image_folder(root, "train", val_fraction=0.25)
    assert len(decoded) == 9  # 8 images + the broken one
    decoded.clear()
    with pytest.warns(UserWarning):
        again = data.scan_image_folder(root, "train", val_fraction=0.25)
    assert decoded == [] and again == first
    changed = os.path.join(root, "dog", "1.png")
    garbage_body_png(changed)  # same name, new content and mtime
    os.utime(changed, ns=(1, 10**18))
    with pytest.warns(UserWarning, match="Skipped 2"):
        third = data.scan_image_folder(root, "train", val_fraction=0.25)
    assert decoded == [changed] and changed in third.skipped


def test_a_one_class_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_PADFREE_CACHE_DIR", str(tmp_path / "cache"))
    root = str(tmp_path / "images")
    _write_folder(root, classes=("cat",), per_class=4)
    with pytest.raises(ValueError, match=r"1 class \('cat'\).*at least 2 classes"):
        data.scan_image_folder(root, "train", val_fraction=0.25, on_corrupt="skip")


def test_validation_classes_missing_from_training_are_an_error(tmp_path):
    # The cache folder can also be given as an argument.
    root = str(tmp_path / "images")
    _write_folder(os.path.join(root, "train"), per_class=3)
    _write_folder(os.path.join(root, "val"), classes=("cat", "dog", "bird"), per_class=2)
    with pytest.raises(ValueError) as err:
        data.scan_image_folder(root, "val", cache_dir=str(tmp_path / "cache"))
    message = str(err.value)
    assert "'bird'" in message and os.path.join(root, "val") in message
    assert os.path.join(root, "train") in message


def test_a_training_class_without_decodable_images_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_PADFREE_CACHE_DIR", str(tmp_path / "cache"))
    root = str(tmp_path / "images")
    _write_folder(root, per_class=3)
    os.makedirs(os.path.join(root, "emu"))
    garbage_body_jpeg(os.path.join(root, "emu", "only.jpg"))
    with pytest.raises(ValueError, match=r"'emu'.*no decodable training images"):
        data.scan_image_folder(root, "train", val_fraction=0.34)
