"""tf.data input pipelines for the supported datasets.

:func:`load_source` opens one split (TensorFlow Datasets, image folder or the bundled digits) as a
stream of ``(uint8 image, int64 label)``. TensorFlow Datasets are never downloaded: the builder is
created with ``try_gcs=False`` and only ``as_dataset`` is called, so a dataset that is not prepared
fails at once with :class:`DatasetNotFoundError` and the instructions of its spec.

:func:`train_stream` builds the whole run's training stream, epoch after epoch: each epoch is a
shuffle with a seed derived from ``(seed, epoch)`` and per-image stateless augmentation seeds, so
the stream from any ``(epoch, step)`` is exactly what an uninterrupted run would have seen from
there.
:func:`eval_dataset` is deterministic (no shuffle, no randomness, every image once).

Both hand the model ``model_input="raw_pixels"`` (float32 RGB pixels in [0, 255], for a model that
holds its normalisation, as ``training/fit.py`` trains them) or ``"normalized"`` (the default and
what earlier versions fed every model: ``(pixel / 255 - mean) / std`` with the recipe's mean/std);
see :mod:`keras_padfree.data.augment`.

Decoded images are cached in memory when the split has a fixed image size and fits in
``cache_bytes``; maps run in parallel (order preserved) and batches are prefetched.
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf
from tensorflow.python.data.ops import dataset_ops
from tensorflow.python.ops import gen_dataset_ops

from keras_padfree.data import augment
from keras_padfree.data import bundled
from keras_padfree.data import folder as folder_lib
from keras_padfree.data.specs import DatasetNotFoundError
from keras_padfree.data.specs import get_dataset_spec

__all__ = ["DataSource", "eval_dataset", "load_source", "steps_per_epoch", "train_stream"]

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_CACHE_BYTES = 2 * 1024**3


@dataclasses.dataclass
class DataSource:
    """One opened split.

    Attributes:
        dataset: ``tf.data.Dataset`` of ``(image uint8 (H, W, C), label int64)``, in a fixed order.
        num_examples: number of examples.
        classes: number of classes.
        image_size: fixed native (H, W) or None.
        spec: the :class:`~keras_padfree.data.specs.DatasetSpec`.
        split: the split name.
        class_names: class names where known (folders), else None.
        skipped: undecodable files left out (folders).
        fingerprint: what identifies the examples of the split (a hash of a folder's files;
            name, split and count otherwise). A resumed run checks it.
    """

    dataset: tf.data.Dataset
    num_examples: int
    classes: int
    image_size: tuple | None
    spec: object
    split: str
    class_names: tuple | None = None
    skipped: tuple = ()
    fingerprint: str = ""


def _count(ds):
    card = int(ds.cardinality())
    if card >= 0:
        return card
    return int(ds.reduce(np.int64(0), lambda n, _: n + 1))


def _tfds_source(spec, split, data_dir):
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(spec.tfds_name, data_dir=data_dir, try_gcs=False)
    except Exception as e:  # noqa: BLE001 -- re-raised with the instructions
        raise DatasetNotFoundError(
            f"Dataset {spec.name!r} (tfds {spec.tfds_name!r}) cannot be opened: {e}\n"
            f"{spec.how_to_get}"
        ) from e
    read_config = tfds.ReadConfig(shuffle_seed=0, interleave_cycle_length=1, try_autocache=False)
    try:
        ds = builder.as_dataset(
            split=split, as_supervised=True, shuffle_files=False, read_config=read_config
        )
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as e:
        where = data_dir or "~/tensorflow_datasets"
        raise DatasetNotFoundError(
            f"Dataset {spec.name!r} is not prepared in {where} (it is never downloaded during "
            f"training).\n{spec.how_to_get}"
        ) from e
    except ValueError as e:
        raise ValueError(f"Dataset {spec.name!r} has no split {split!r}: {e}") from e
    n = int(ds.cardinality())
    if n < 0:
        try:
            n = int(builder.info.splits[split].num_examples)
        except Exception:  # noqa: BLE001 -- fall back to counting
            n = -1
    if n <= 0:
        n = _count(ds)
    ds = ds.map(lambda x, y: (x, tf.cast(y, tf.int64)))
    return ds, n, spec.classes, spec.image_size, None, ()


def _decode_file(path, label):
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return image, label


def load_source(
    dataset,
    split=None,
    *,
    data_dir=None,
    val_fraction=0.2,
    seed=0,
    on_corrupt="skip",
    cache_dir=None,
):
    """Opens one split of a supported dataset.

    Args:
        dataset: a name from :func:`keras_padfree.data.list_datasets`.
        split: the split (default: the spec's training split); ``"train"``/``"eval"`` are mapped
            to the spec's train and evaluation splits.
        data_dir: TensorFlow Datasets data dir, or the image folder for ``"folder"``.
        val_fraction, seed, on_corrupt, cache_dir: image-folder options (see
            :func:`keras_padfree.data.folder.scan_image_folder`; every image is decoded when
            the folder is scanned, so the dataset holds exactly the decodable files).

    Returns:
        A :class:`DataSource`.
    """
    spec = get_dataset_spec(dataset)
    if split is None or split == "train":
        split = spec.train_split
    elif split == "eval":
        split = spec.eval_split
    class_names, skipped, fingerprint = None, (), None
    if spec.source == "tfds":
        ds, n, classes, size, class_names, skipped = _tfds_source(spec, split, data_dir)
    elif spec.source == "bundled":
        images, labels = bundled.load_digits(split)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        n, classes, size = len(labels), spec.classes, spec.image_size
    else:
        fs = folder_lib.scan_image_folder(
            data_dir,
            "train" if split == "train" else "val",
            val_fraction=val_fraction,
            seed=seed,
            on_corrupt=on_corrupt,
            cache_dir=cache_dir,
        )
        ds = tf.data.Dataset.from_tensor_slices(
            (list(fs.files), np.asarray(fs.labels, dtype=np.int64))
        )
        # Every file decoded when the folder was scanned: no error is swallowed here, so the
        # stream always holds num_examples images (a file changed since then fails loudly).
        ds = ds.map(_decode_file, num_parallel_calls=AUTOTUNE, deterministic=True)
        n, classes, size = len(fs.files), len(fs.class_names), None
        class_names, skipped, fingerprint = fs.class_names, fs.skipped, fs.fingerprint
    if fingerprint is None:
        fingerprint = f"{spec.name}:{split}:{n}"
    return DataSource(ds, n, classes, size, spec, split, class_names, skipped, fingerprint)


def _maybe_cache(source, cache, cache_bytes):
    if cache is False:
        return source.dataset
    if cache == "auto":
        if source.image_size is None:
            return source.dataset
        h, w = source.image_size
        if source.num_examples * h * w * 3 > cache_bytes:
            return source.dataset
    return source.dataset.cache()


def steps_per_epoch(num_examples, batch_size, drop_remainder=False):
    """Batches per epoch (the last partial batch is kept unless ``drop_remainder``)."""
    if drop_remainder:
        return num_examples // batch_size
    return math.ceil(num_examples / batch_size)


class _SeededShuffle(dataset_ops.UnaryUnchangedStructureDataset):
    """``Dataset.shuffle`` with explicit ``(seed, seed2)`` tensors and no reshuffling.

    ``Dataset.shuffle(seed=tensor)`` fails inside ``flat_map`` once a global TensorFlow seed of 0 is
    set (``tf.random.get_seed`` compares the seed pair with ``(0, 0)`` in Python), so the op is
    created directly. Both seeds are non-zero, which keeps the order deterministic.
    """

    def __init__(self, input_dataset, buffer_size, seed, seed2):
        self._input_dataset = input_dataset
        self._name = None
        variant = gen_dataset_ops.shuffle_dataset_v3(
            input_dataset._variant_tensor,  # noqa: SLF001
            buffer_size=tf.cast(buffer_size, tf.int64),
            seed=tf.cast(seed, tf.int64),
            seed2=tf.cast(seed2, tf.int64),
            seed_generator=gen_dataset_ops.dummy_seed_generator(),
            reshuffle_each_iteration=False,
            **self._common_args,
        )
        super().__init__(input_dataset, variant)


def _seed_pair(seed, epoch):
    # Distinct, well-mixed stateless seeds per (run seed, epoch).
    return tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + 17, tf.cast(epoch, tf.int64) + 7919])


def train_stream(
    source: DataSource,
    prep: augment.Preprocessing,
    *,
    size: int,
    classes: int,
    batch_size: int,
    seed: int = 0,
    start_epoch: int = 0,
    epochs: int = 1,
    skip_steps: int = 0,
    steps_per_epoch_limit: int | None = None,
    drop_remainder: bool = False,
    cache: bool | str = "auto",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    shuffle_buffer: int | None = None,
    run_epochs: int | None = None,
    model_input: str = "normalized",
) -> tf.data.Dataset:
    """The training stream of epochs ``start_epoch .. epochs-1``, batched and one-hot.

    Args:
        source: a :class:`DataSource`.
        prep: the recipe's :class:`~keras_padfree.data.augment.Preprocessing`.
        size: model input size (square).
        classes: number of classes (labels are one-hot, float32).
        batch_size: global batch size.
        seed: run seed (shuffle order and augmentation).
        start_epoch: first epoch of the stream (0-based).
        epochs: one past the last epoch.
        skip_steps: batches of ``start_epoch`` already trained (resumption).
        steps_per_epoch_limit: keep only the first batches of each epoch (quick runs).
        drop_remainder: drop the last partial batch (needed by data-parallel runs).
        cache: ``"auto"`` (in memory when the decoded split fits in ``cache_bytes``), True, False.
        shuffle_buffer: shuffle buffer (default: the whole split when cached, else 10,000).
        run_epochs: epochs of the whole run (default ``epochs``): mixup is off for the last
            ``prep.mixup_off_epochs`` of them.
        model_input: ``"raw_pixels"`` (pixels in [0, 255], not normalised) or ``"normalized"``
            (``(pixel / 255 - mean) / std``); mixup mixes either the same way.

    Returns:
        ``tf.data.Dataset`` of ``(images float32 (B, size, size, 3), labels float32 (B, classes))``.
    """
    augment.check_model_input(model_input)
    base = _maybe_cache(source, cache, cache_bytes)
    cached = base is not source.dataset
    buffer = shuffle_buffer or (source.num_examples if cached else min(source.num_examples, 10000))
    mixup_until = (run_epochs or epochs) - prep.mixup_off_epochs

    def one_epoch(epoch):
        pair = _seed_pair(seed, epoch)
        ds = _SeededShuffle(base, buffer, pair[0], pair[1])
        ds = ds.enumerate()

        def _map(i, example):
            image, label = example
            img_seed = tf.stack([pair[0] + pair[1], tf.cast(i, tf.int64)])
            image = augment.train_transform(image, img_seed, prep, size, model_input)
            return image, tf.one_hot(label, classes, dtype=tf.float32)

        ds = ds.map(_map, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.batch(
            batch_size,
            drop_remainder=drop_remainder,
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        if prep.mixup_alpha:

            def _mix(step, batch):
                images, labels = batch
                mseed = tf.stack([pair[0] - pair[1], tf.cast(step, tf.int64)])
                mixed = augment.mixup_batch(images, labels, prep.mixup_alpha, mseed)
                return tf.cond(epoch < mixup_until, lambda: mixed, lambda: (images, labels))

            ds = ds.enumerate().map(_mix, num_parallel_calls=AUTOTUNE, deterministic=True)
        if steps_per_epoch_limit:
            ds = ds.take(steps_per_epoch_limit)
        return ds

    epochs_ds = tf.data.Dataset.range(start_epoch, epochs)
    stream = epochs_ds.flat_map(one_epoch)
    if skip_steps:
        stream = stream.skip(skip_steps)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return stream.with_options(options).prefetch(AUTOTUNE)


def eval_dataset(
    source: DataSource,
    prep: augment.Preprocessing,
    *,
    size: int,
    classes: int,
    batch_size: int,
    cache: bool | str = "auto",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    drop_remainder: bool = False,
    model_input: str = "normalized",
) -> tf.data.Dataset:
    """Deterministic evaluation batches ``(images, one-hot labels)`` of every example once.

    ``model_input``: ``"raw_pixels"`` or ``"normalized"``, as in :func:`train_stream`."""
    augment.check_model_input(model_input)
    base = _maybe_cache(source, cache, cache_bytes)

    def _map(image, label):
        return (
            augment.eval_transform(image, prep, size, model_input),
            tf.one_hot(label, classes, dtype=tf.float32),
        )

    ds = base.map(_map, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)
