"""Datasets, image folders, augmentations and the deterministic training stream."""

import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_padfree import data
from keras_padfree.data import augment

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_bundled_digits_are_real_and_split_deterministically():
    x_all, y_all = data.load_digits("all")
    assert x_all.shape == (1797, 8, 8, 1) and x_all.dtype == np.uint8
    assert np.bincount(y_all).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    xtr, ytr = data.load_digits("train")
    xte, yte = data.load_digits("test")
    assert (len(ytr), len(yte)) == (1438, 359)
    assert set(np.unique(ytr)) == set(range(10)) and set(np.unique(yte)) == set(range(10))
    # Disjoint and together all of them.
    rows = {r.tobytes() + bytes([lab]) for r, lab in zip(x_all, y_all)}
    assert {
        r.tobytes() + bytes([lab])
        for r, lab in zip(np.concatenate([xtr, xte]), np.concatenate([ytr, yte]))
    } == rows
    with pytest.raises(ValueError, match="split"):
        data.load_digits("validation")


def test_bundled_files_ship_with_attribution():
    folder = os.path.join(os.path.dirname(data.__file__), "bundled")
    assert os.path.getsize(os.path.join(folder, "digits.csv.gz")) < 1_000_000
    text = open(os.path.join(folder, "DIGITS_LICENSE.txt")).read()
    assert "CC BY 4.0" in text and "BSD 3-Clause" in text


def _write_folder(root, classes=("cat", "dog"), per_class=5, size=(20, 24)):
    rng = np.random.default_rng(0)
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)
            enc = tf.io.encode_png(img) if i % 2 else tf.io.encode_jpeg(img)
            ext = "png" if i % 2 else "jpg"
            tf.io.write_file(os.path.join(root, c, f"{i}.{ext}"), enc)
    corrupt = os.path.join(root, classes[0], "broken.jpg")
    with open(corrupt, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # JPEG header, no data, no end marker
    return corrupt


def test_image_folder_skips_an_undecodable_file_with_a_counted_warning(tmp_path):
    corrupt = _write_folder(str(tmp_path))
    with pytest.warns(UserWarning, match=r"Skipped 1 undecodable image file\(s\)"):
        train = data.scan_image_folder(str(tmp_path), "train", val_fraction=0.4)
    val = data.scan_image_folder(str(tmp_path), "val", val_fraction=0.4, on_corrupt="skip")
    assert train.class_names == ("cat", "dog")
    assert len(train.files) + len(val.files) == 10
    assert not set(train.files) & set(val.files)
    assert corrupt in train.skipped + val.skipped
    source = data.load_source("folder", "train", data_dir=str(tmp_path), val_fraction=0.4)
    images = list(source.dataset)
    assert len(images) == len(train.files) and images[0][0].shape[-1] == 3


def test_image_folder_error_mode_names_the_file(tmp_path):
    corrupt = _write_folder(str(tmp_path))
    with pytest.raises(ValueError, match="broken.jpg"):
        for split in ("train", "val"):
            data.scan_image_folder(str(tmp_path), split, val_fraction=0.4, on_corrupt="error")
    assert os.path.exists(corrupt)


def test_image_folder_with_train_and_val_folders(tmp_path):
    _write_folder(str(tmp_path / "train"))
    _write_folder(str(tmp_path / "val"), per_class=2)
    with pytest.warns(UserWarning):
        val = data.scan_image_folder(str(tmp_path), "val")
    assert len(val.files) == 4 and val.labels == (0, 0, 1, 1)


def test_missing_folder_and_unknown_dataset():
    with pytest.raises(data.DatasetNotFoundError, match="--data-dir"):
        data.load_source("folder", "train", data_dir="/nonexistent/folder")
    with pytest.raises(ValueError, match="Unknown dataset: 'mnist'"):
        data.get_dataset_spec("mnist")


@pytest.mark.parametrize("name", ["cifar100", "stanford_dogs", "imagenet2012"])
def test_unprepared_tfds_dataset_fails_within_seconds(tmp_path, name):
    start = time.time()
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load_source(name, "train", data_dir=str(tmp_path))
    assert time.time() - start < 10
    message = str(err.value)
    assert "download_and_prepare" in message and "--data-dir" in message
    if name == "imagenet2012":
        assert "manual" in message and "image-net.org" in message


def test_fit_cli_on_a_missing_dataset_exits_with_the_how_to(tmp_path):
    start = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "training", "fit.py"),
            "--dataset",
            "cifar100",
            "--data-dir",
            str(tmp_path),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    elapsed = time.time() - start
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "not prepared" in proc.stderr and "download_and_prepare" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert elapsed < 120, elapsed  # imports included; the data check itself is < 10 s


def test_pad_crop_matches_a_manual_crop():
    img = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    prep = data.Preprocessing(train="pad_crop", pad=4, flip=False)
    seed = tf.constant([3, 4], tf.int64)
    out = augment.train_transform(img, seed, prep, 32).numpy()
    padded = np.pad(img.astype(np.float32) / 255.0, ((4, 4), (4, 4), (0, 0)))
    matches = [
        (i, j)
        for i in range(9)
        for j in range(9)
        if np.allclose(padded[i : i + 32, j : j + 32], out)
    ]
    assert len(matches) == 1
    again = augment.train_transform(img, seed, prep, 32).numpy()
    np.testing.assert_array_equal(out, again)


def test_dogs_and_vegfru_transforms_give_224_crops():
    img = np.random.default_rng(0).integers(0, 255, (300, 180, 3), dtype=np.uint8)
    seed = tf.constant([1, 2], tf.int64)
    dogs = data.Preprocessing(train="resize_crop", eval="resize_center_crop", brightness=0.4)
    veg = data.Preprocessing(
        train="random_resized_crop",
        eval="resize_center_crop",
        resize_mode="shorter",
        mean=data.IMAGENET_MEAN,
        std=data.IMAGENET_STD,
    )
    for prep in (dogs, veg):
        assert augment.train_transform(img, seed, prep, 224).shape == (224, 224, 3)
        assert augment.eval_transform(img, prep, 224).shape == (224, 224, 3)
    # Dogs eval: Resize((256, 256)) then the centre 224 crop.
    ref = tf.image.resize(img.astype(np.float32) / 255.0, (256, 256))[16:240, 16:240]
    np.testing.assert_allclose(augment.eval_transform(img, dogs, 224), ref, atol=1e-6)
    # Brightness stays within [0, 1] and the un-normalised output too.
    out = augment.train_transform(img, seed, dogs, 224).numpy()
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_normalisation_and_mixup():
    img = np.full((32, 32, 3), 255, np.uint8)
    prep = data.Preprocessing(train="none", flip=False, mean=(0.5, 0.5, 0.5), std=(0.25,) * 3)
    out = augment.eval_transform(img, prep, 32).numpy()
    np.testing.assert_allclose(out, 2.0)
    x = tf.random.uniform((4, 8, 8, 3))
    y = tf.one_hot([0, 1, 2, 3], 4)
    mx, my = augment.mixup_batch(x, y, 1.0, tf.constant([5, 6], tf.int64))
    np.testing.assert_allclose(tf.reduce_sum(my, -1), 1.0, rtol=1e-6)
    lam = float(my[0, 0])
    np.testing.assert_allclose(mx[0], lam * x[0] + (1 - lam) * x[3], rtol=1e-5, atol=1e-6)


def test_train_stream_resumes_exactly_and_eval_is_deterministic():
    source = data.load_source("digits", "train")
    prep = data.Preprocessing(train="pad_crop", flip=True)
    kw = dict(size=32, classes=10, batch_size=64, seed=3, epochs=3)
    full = [x.numpy() for x, _ in data.train_stream(source, prep, **kw)]
    spe = data.steps_per_epoch(source.num_examples, 64)
    assert spe == 23 and len(full) == 3 * spe
    resumed = [
        x.numpy() for x, _ in data.train_stream(source, prep, start_epoch=1, skip_steps=5, **kw)
    ]
    assert len(resumed) == len(full) - spe - 5
    for a, b in zip(full[spe + 5 :], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], full[spe])  # a new order each epoch
    ev = data.load_source("digits", "eval")
    labels = [
        np.argmax(y, -1)
        for _, y in data.eval_dataset(ev, prep, size=32, classes=10, batch_size=100)
    ]
    assert np.array_equal(np.concatenate(labels), data.load_digits("test")[1])


# -- Raw pixels for models that hold their normalisation ----------------------------------------


def test_raw_pixel_transforms_do_not_normalise():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    prep = data.Preprocessing(train="none", flip=False, mean=(0.5, 0.4, 0.3), std=(0.2,) * 3)
    seed = tf.constant([1, 2], tf.int64)
    pixels = img.astype(np.float32)
    for out in (
        augment.eval_transform(img, prep, 32, "raw_pixels"),
        augment.train_transform(img, seed, prep, 32, "raw_pixels"),
    ):
        assert out.dtype == tf.float32
        np.testing.assert_array_equal(out.numpy(), pixels)  # not even divided by 255
    # The default is what earlier versions fed every model: (pixel / 255 - mean) / std.
    expected = (pixels / 255.0 - np.float32([0.5, 0.4, 0.3])) / np.float32(0.2)
    np.testing.assert_allclose(
        augment.eval_transform(img, prep, 32).numpy(), expected, rtol=1e-5, atol=1e-5
    )
    for bad in ("raw", None, "normalised"):
        with pytest.raises(ValueError, match="model_input"):
            augment.eval_transform(img, prep, 32, bad)
    source = data.load_source("digits", "eval")
    with pytest.raises(ValueError, match="model_input"):
        data.eval_dataset(source, prep, size=32, classes=10, batch_size=8, model_input="raw")
    with pytest.raises(ValueError, match="model_input"):
        data.train_stream(source, prep, size=32, classes=10, batch_size=8, model_input="raw")


def _recipes():
    from keras_padfree.training import list_recipes

    return list_recipes()


@pytest.mark.parametrize("recipe", _recipes())
def test_raw_pixel_augmentation_is_the_recipes_augmentation(recipe):
    """Every transform of the recipe in pixel space: 255 times its [0, 1] images (pad, crops,
    resizes, flips, rotation, brightness clipped at 255), not normalised."""
    from keras_padfree.training import get_recipe

    prep = get_recipe(recipe).preprocessing
    unit = dataclasses.replace(prep, mean=None, std=None)  # the same transforms, in [0, 1]
    img = np.random.default_rng(1).integers(0, 256, (40, 28, 3), dtype=np.uint8)
    img[:4] = 255  # saturated rows: a brightness factor > 1 must clip them at 255
    for i in range(4):
        seed = tf.constant([i, 7], tf.int64)
        raw = augment.train_transform(img, seed, prep, 32, "raw_pixels").numpy()
        np.testing.assert_allclose(
            raw, 255.0 * augment.train_transform(img, seed, unit, 32).numpy(), atol=2e-3
        )
        assert raw.min() >= -1e-3 and raw.max() <= 255.0 + 1e-3 and raw.max() > 2.0
    raw = augment.eval_transform(img, prep, 32, "raw_pixels").numpy()
    np.testing.assert_allclose(
        raw, 255.0 * augment.eval_transform(img, unit, 32).numpy(), atol=2e-3
    )


def test_raw_pixel_streams_mix_up_the_same_and_eval_is_the_resized_pixels():
    from keras_padfree.training import get_recipe

    source = data.load_source("digits", "train")
    prep = get_recipe("pydmobilenet_cifar").preprocessing  # crop, flip, mixup alpha 1
    assert prep.mixup_alpha and prep.mean is not None
    unit = dataclasses.replace(prep, mean=None, std=None)
    kw = dict(size=32, classes=10, batch_size=16, seed=2, epochs=1, steps_per_epoch_limit=3)
    raw = list(data.train_stream(source, prep, model_input="raw_pixels", **kw))
    ref = list(data.train_stream(source, unit, **kw))
    assert len(raw) == 3
    for (x, y), (x_ref, y_ref) in zip(raw, ref):
        np.testing.assert_allclose(x.numpy(), 255.0 * x_ref.numpy(), atol=2e-3)
        np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
    assert max(float(tf.reduce_max(x)) for x, _ in raw) > 100.0
    # Evaluation: the stored uint8 digits, RGB, resized; nothing else.
    ev = data.load_source("digits", "eval")
    images = np.concatenate(
        [
            x.numpy()
            for x, _ in data.eval_dataset(
                ev, prep, size=32, classes=10, batch_size=100, model_input="raw_pixels"
            )
        ]
    )
    digits, _ = data.load_digits("test")
    expected = tf.image.resize(tf.image.grayscale_to_rgb(tf.cast(digits, tf.float32)), (32, 32))
    np.testing.assert_array_equal(images, expected.numpy())
