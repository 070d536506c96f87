"""Datasets and tf.data input pipelines for training keras_padfree models.

>>> from keras_padfree import data
>>> data.list_datasets()  # doctest: +NORMALIZE_WHITESPACE
['cifar10', 'cifar100', 'digits', 'folder', 'imagenet2012', 'imagenet_resized/32x32',
 'stanford_dogs']
>>> source = data.load_source("digits", "train")      # bundled: no download
>>> prep = data.Preprocessing(train="pad_crop", flip=False)
>>> stream = data.train_stream(source, prep, size=32, classes=10, batch_size=64,
...                            model_input="raw_pixels")  # pixels in [0, 255], not normalised
"""

from keras_padfree.data.augment import CIFAR100_MEAN
from keras_padfree.data.augment import CIFAR100_STD
from keras_padfree.data.augment import IMAGENET_MEAN
from keras_padfree.data.augment import IMAGENET_STD
from keras_padfree.data.augment import MODEL_INPUTS
from keras_padfree.data.augment import Preprocessing
from keras_padfree.data.augment import model_normalization
from keras_padfree.data.augment import normalization_record
from keras_padfree.data.bundled import load_digits
from keras_padfree.data.folder import scan_image_folder
from keras_padfree.data.pipeline import DataSource
from keras_padfree.data.pipeline import eval_dataset
from keras_padfree.data.pipeline import load_source
from keras_padfree.data.pipeline import steps_per_epoch
from keras_padfree.data.pipeline import train_stream
from keras_padfree.data.specs import DatasetNotFoundError
from keras_padfree.data.specs import DatasetSpec
from keras_padfree.data.specs import get_dataset_spec
from keras_padfree.data.specs import list_datasets

__all__ = [
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DataSource",
    "DatasetNotFoundError",
    "DatasetSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODEL_INPUTS",
    "Preprocessing",
    "eval_dataset",
    "get_dataset_spec",
    "list_datasets",
    "load_digits",
    "load_source",
    "model_normalization",
    "normalization_record",
    "scan_image_folder",
    "steps_per_epoch",
    "train_stream",
]
