"""Datasets and tf.data input pipelines for training keras_padfree models.

>>> from keras_padfree import data
>>> data.list_datasets()  # doctest: +NORMALIZE_WHITESPACE
['cifar10', 'cifar100', 'digits', 'folder', 'imagenet2012', 'imagenet_resized/32x32',
 'stanford_dogs']
>>> source = data.load_source("digits", "train")      # bundled: no download
"""

from keras_padfree.data.augment import CIFAR100_MEAN
from keras_padfree.data.augment import CIFAR100_STD
from keras_padfree.data.augment import IMAGENET_MEAN
from keras_padfree.data.augment import IMAGENET_STD
from keras_padfree.data.augment import Preprocessing
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

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "DataSource", "DatasetNotFoundError", "DatasetSpec",
           "IMAGENET_MEAN", "IMAGENET_STD", "Preprocessing", "eval_dataset", "get_dataset_spec",
           "list_datasets", "load_digits", "load_source", "normalization_record",
           "scan_image_folder", "steps_per_epoch", "train_stream"]
