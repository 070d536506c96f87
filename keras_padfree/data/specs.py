"""Dataset specifications: what each supported dataset is and how to obtain it.

A :class:`DatasetSpec` names the source (a TensorFlow Datasets builder, an image folder or the
bundled digits), its splits, classes, native image size and, for datasets that cannot be downloaded
automatically, the instructions printed when the data is missing.
"""

import dataclasses

__all__ = ["DatasetSpec", "DatasetNotFoundError", "get_dataset_spec", "list_datasets"]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not prepared on this machine; the message says how to get it."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One supported dataset.

    Attributes:
        name: the ``--dataset`` value.
        source: ``"tfds"``, ``"folder"`` or ``"bundled"``.
        tfds_name: TensorFlow Datasets builder name (``source == "tfds"``).
        train_split: split used for training.
        eval_split: split evaluated every epoch and at the end (the references used the official
            test split as "val").
        classes: number of classes (None for folders: counted from the sub-folders).
        image_size: native (H, W) when all images have one size, else None.
        style: the preprocessing family the recipes choose from: ``"small"`` (32x32-style, random
            crop with zero padding) or ``"large"`` (224-style crops of variable-size images).
        how_to_get: instructions printed when the data is not prepared.
        default_recipe: the recipe ``training/fit.py`` uses when none is given and the model
            states none for this dataset (see :func:`keras_padfree.training.default_recipe_for`).
        registry_dataset: the dataset token of the model registry's names (``"cifar"``,
            ``"imagenet32"``, ``"dogs"``, ``"imagenet"``: ``..._pf_cifar``) when this is the
            dataset the papers trained those models on, else None. A model family can state a
            recipe for that token (``ModelInfo.recipes``), which then wins over its recipe for
            the dataset's style.
    """

    name: str
    source: str
    tfds_name: str | None
    train_split: str
    eval_split: str
    classes: int | None
    image_size: tuple | None
    style: str
    how_to_get: str
    default_recipe: str
    registry_dataset: str | None = None


_TFDS_HOWTO = (
    "Prepare it once on a machine with network access:\n"
    '    python -c "import tensorflow_datasets as tfds; '
    "tfds.builder('{tfds}', data_dir='DATA_DIR').download_and_prepare()\"\n"
    "then pass --data-dir DATA_DIR (or copy DATA_DIR/{folder} into ~/tensorflow_datasets/)."
)

_IMAGENET_HOWTO = (
    "ImageNet (ILSVRC 2012) cannot be downloaded automatically. Register at "
    "https://image-net.org/download-images, download ILSVRC2012_img_train.tar and "
    "ILSVRC2012_img_val.tar into DATA_DIR/downloads/manual/, then run once:\n"
    '    python -c "import tensorflow_datasets as tfds; '
    "tfds.builder('imagenet2012', data_dir='DATA_DIR').download_and_prepare()\"\n"
    "and pass --data-dir DATA_DIR. Alternatively lay the images out as "
    "DATA_DIR/train/<class>/*.JPEG and DATA_DIR/val/<class>/*.JPEG and use --dataset folder "
    "--data-dir DATA_DIR."
)

_SPECS = {
    "cifar10": DatasetSpec(
        "cifar10",
        "tfds",
        "cifar10",
        "train",
        "test",
        10,
        (32, 32),
        "small",
        _TFDS_HOWTO.format(tfds="cifar10", folder="cifar10"),
        "bsconv_set1",
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        "tfds",
        "cifar100",
        "train",
        "test",
        100,
        (32, 32),
        "small",
        _TFDS_HOWTO.format(tfds="cifar100", folder="cifar100"),
        "bsconv_set1",
        registry_dataset="cifar",
    ),
    "stanford_dogs": DatasetSpec(
        "stanford_dogs",
        "tfds",
        "stanford_dogs",
        "train",
        "test",
        120,
        None,
        "large",
        _TFDS_HOWTO.format(tfds="stanford_dogs", folder="stanford_dogs"),
        "bsconv_set1_dogs",
        registry_dataset="dogs",
    ),
    "imagenet2012": DatasetSpec(
        "imagenet2012",
        "tfds",
        "imagenet2012",
        "train",
        "validation",
        1000,
        None,
        "large",
        _IMAGENET_HOWTO,
        "cheap_ops_imagenet",
        registry_dataset="imagenet",
    ),
    "imagenet_resized/32x32": DatasetSpec(
        "imagenet_resized/32x32",
        "tfds",
        "imagenet_resized/32x32",
        "train",
        "validation",
        1000,
        (32, 32),
        "small",
        "imagenet_resized is built from the manually downloaded ImageNet archives. "
        + _IMAGENET_HOWTO.replace("imagenet2012", "imagenet_resized/32x32"),
        "pydmobilenet_imagenet32",
        registry_dataset="imagenet32",
    ),
    "folder": DatasetSpec(
        "folder",
        "folder",
        None,
        "train",
        "val",
        None,
        None,
        "large",
        "Pass --data-dir PATH where PATH holds one sub-folder per class (split by --val-fraction), "
        "or PATH/train/<class>/ and PATH/val/<class>/ (also accepted: validation/, test/).",
        "vegfru292",
    ),
    "digits": DatasetSpec(
        "digits",
        "bundled",
        None,
        "train",
        "test",
        10,
        (8, 8),
        "small",
        "The digits are bundled with keras_padfree (keras_padfree/data/bundled/digits.csv.gz); "
        "reinstall the package if the file is missing.",
        "digits",
    ),
}


def list_datasets() -> list[str]:
    """Names accepted by ``--dataset``."""
    return sorted(_SPECS)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; an unknown name raises a ValueError listing all."""
    if not isinstance(name, str) or name not in _SPECS:
        raise ValueError(
            f"Unknown dataset: {name!r}. Allowed values: {', '.join(list_datasets())}."
        )
    return _SPECS[name]
