"""The recipes' augmentations and normalisations as deterministic tf.data functions.

Each random transform is a *stateless* TensorFlow op driven by a per-image seed derived from
``(run seed, epoch, position in the epoch)``. The same run therefore sees the same crops and flips
when it is resumed after an interruption, which is what makes a resumed run equal to an
uninterrupted one. (Keras' random preprocessing layers draw from a global seed generator whose
state is not part of a checkpoint, so they cannot give that guarantee; that is why they are not used
here.)

The transforms reproduce the torchvision ones of the reference training scripts:

* ``pad_crop``: ``RandomCrop(size, padding=pad)`` with zero fill, then ``RandomHorizontalFlip``.
* ``resize_crop``: ``Resize((R, R))`` (aspect ratio not kept, bilinear), ``RandomCrop(size)``,
  flip, ``ColorJitter(brightness=b)`` (factor uniform in [1-b, 1+b], clipped to [0, 1]).
* ``random_resized_crop``: ``RandomResizedCrop(size, scale, ratio)`` then flip. TensorFlow's
  ``sample_distorted_bounding_box`` samples the box (10 attempts, whole image as fallback;
  torchvision falls back to a centre crop of clamped aspect ratio).
* eval ``resize_center_crop``: ``Resize(R)`` of the shorter side (or ``Resize((R, R))``) then
  ``CenterCrop(size)``.
* ``rotation``: ``RandomRotation(deg)`` (bilinear, zero fill), used by the cheap-ops CIFAR code.
* mixup (PydMobileNet): ``lam ~ Beta(a, a)`` per batch, each batch mixed with its reversed copy.

Images enter as uint8 and leave as float32 in one of two conventions (``model_input``):

* ``"raw_pixels"``: RGB pixels in [0, 255], not normalised, for a model that holds its
  normalisation (``include_preprocessing=True``: ``Rescaling(1/255)`` and ``Normalization(mean,
  std**2)`` after its input), which is how ``training/fit.py`` builds and saves models. Every
  transform runs in pixel space: the uint8 values are only cast, the zero fill is pixel 0, the
  brightness jitter clips at 255. The transforms are linear in the pixel values (crop, pad, flip,
  bilinear resize and rotation, mixup), so the images are 255 times the ``"normalized"`` ones before
  normalisation, up to float rounding: the augmentation is the same.
* ``"normalized"`` (the default, what earlier versions fed every model): pixels / 255 in [0, 1],
  then ``(x - mean) / std`` when the :class:`Preprocessing` has a ``mean`` / ``std``; for models
  that do not hold their normalisation (files saved by earlier versions).

The normalisation constants live in :mod:`keras_padfree.normalization`; the names exported here
(``CIFAR100_MEAN``, ...) are aliases of those.
"""

import dataclasses
import math

import tensorflow as tf

from keras_padfree.normalization import CIFAR10_GLUON_MEAN
from keras_padfree.normalization import CIFAR10_GLUON_STD
from keras_padfree.normalization import CIFAR100_MEAN
from keras_padfree.normalization import CIFAR100_ROUNDED_MEAN
from keras_padfree.normalization import CIFAR100_ROUNDED_STD
from keras_padfree.normalization import CIFAR100_STD
from keras_padfree.normalization import IMAGENET_MEAN
from keras_padfree.normalization import IMAGENET_STD

__all__ = [
    "CIFAR100_MEAN",
    "CIFAR100_ROUNDED_MEAN",
    "CIFAR100_ROUNDED_STD",
    "CIFAR100_STD",
    "CIFAR10_GLUON_MEAN",
    "CIFAR10_GLUON_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODEL_INPUTS",
    "Preprocessing",
    "check_model_input",
    "eval_transform",
    "mixup_batch",
    "model_normalization",
    "normalization_record",
    "train_transform",
]

# What the transforms hand to the model (see the module docstring).
MODEL_INPUTS = ("raw_pixels", "normalized")

_TRAIN_MODES = ("pad_crop", "resize_crop", "random_resized_crop", "none")
_EVAL_MODES = ("none", "resize_center_crop")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """A recipe's input pipeline.

    Attributes:
        train: ``"pad_crop"``, ``"resize_crop"``, ``"random_resized_crop"`` or ``"none"``.
        eval: ``"none"`` (resize to the model input if needed) or ``"resize_center_crop"``.
        pad: zero padding of ``pad_crop``.
        flip: random horizontal flip at training time.
        resize: resize target for a 224 crop; scaled by ``size / 224`` for other input sizes.
        resize_mode: ``"square"`` (``Resize((R, R))``) or ``"shorter"`` (``Resize(R)``).
        brightness: ``ColorJitter(brightness=...)``; 0 disables it.
        rotation: maximum rotation in degrees; 0 disables it.
        scale: area range of ``random_resized_crop``.
        ratio: aspect-ratio range of ``random_resized_crop``.
        mean: the recipe's per-channel mean of ``Normalize`` on pixels in [0, 1] (None: no
            normalisation, as mean 0 / std 1). Applied by the model that holds it
            (:func:`model_normalization`), or by the transforms with
            ``model_input="normalized"``.
        std: per-channel std of ``Normalize``.
        mixup_alpha: Beta(a, a) parameter of mixup; 0 disables it.
        mixup_off_epochs: mixup is switched off for this many final epochs.
    """

    train: str = "pad_crop"
    eval: str = "none"
    pad: int = 4
    flip: bool = True
    resize: int = 256
    resize_mode: str = "square"
    brightness: float = 0.0
    rotation: float = 0.0
    scale: tuple = (0.08, 1.0)
    ratio: tuple = (3.0 / 4.0, 4.0 / 3.0)
    mean: tuple | None = None
    std: tuple | None = None
    mixup_alpha: float = 0.0
    mixup_off_epochs: int = 0

    def __post_init__(self):
        if self.train not in _TRAIN_MODES:
            raise ValueError(
                f"Argument `train` must be one of {_TRAIN_MODES}. Received: train={self.train!r}."
            )
        if self.eval not in _EVAL_MODES:
            raise ValueError(
                f"Argument `eval` must be one of {_EVAL_MODES}. Received: eval={self.eval!r}."
            )
        if self.resize_mode not in ("square", "shorter"):
            raise ValueError(
                "Argument `resize_mode` must be 'square' or 'shorter'. "
                f"Received: resize_mode={self.resize_mode!r}."
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError(
                f"`mean` and `std` must both be given or both be None. Received: "
                f"mean={self.mean!r}, std={self.std!r}."
            )

    def resize_for(self, size):
        return max(size, int(round(self.resize * size / 224.0)))


def model_normalization(prep: Preprocessing) -> dict:
    """The recipe's normalisation as the model builders take it (``normalization=``).

    ``{"mean": [r, g, b], "std": [r, g, b]}`` on pixels in [0, 1]; a recipe without ``mean`` /
    ``std`` gives mean 0 and std 1 (the model then only rescales to pixels / 255).
    """
    mean = [float(v) for v in (prep.mean if prep.mean is not None else (0.0, 0.0, 0.0))]
    std = [float(v) for v in (prep.std if prep.std is not None else (1.0, 1.0, 1.0))]
    return {"mean": mean, "std": std}


def normalization_record(prep: Preprocessing) -> dict:
    """How pixels become the network's input: ``x = (pixel / 255 - mean) / std``.

    The record has the keys of the export sidecar's ``mean_std`` normalisation (``type``,
    ``description``, ``pixel_scale``, ``mean``, ``std``, RGB order); a recipe without ``mean`` /
    ``std`` gives mean 0 and std 1 (the network sees pixels / 255 in [0, 1]).
    """
    return {
        "type": "mean_std",
        "description": "x = (pixel / 255 - mean) / std, per RGB channel",
        "pixel_scale": 1.0 / 255.0,
        **model_normalization(prep),
    }


def check_model_input(model_input: str) -> str:
    """``model_input`` if it is one of :data:`MODEL_INPUTS`, else a ValueError naming it."""
    if model_input not in MODEL_INPUTS:
        raise ValueError(
            f"Argument `model_input` must be one of {MODEL_INPUTS}. "
            f"Received: model_input={model_input!r}."
        )
    return model_input


def _top(model_input):
    """The largest pixel value of ``model_input`` before normalisation."""
    return 255.0 if check_model_input(model_input) == "raw_pixels" else 1.0


def _to_rgb_float(image, top):
    """RGB float32 with pixel values in [0, top]: uint8 pixels, or floats in [0, 1]."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    elif image.shape.rank == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32)
        return image if top == 255.0 else image / 255.0
    image = tf.cast(image, tf.float32)
    return image if top == 1.0 else image * top


def _resize_to(image, size):
    hw = tf.shape(image)[:2]
    static = image.shape[:2]
    if static[0] == size and static[1] == size:
        return image
    resized = tf.image.resize(image, (size, size), method="bilinear", antialias=False)
    return tf.cond(tf.reduce_all(tf.equal(hw, size)), lambda: image, lambda: resized)


def _resize_shorter(image, target):
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(target, tf.float32) / tf.reduce_min(hw)
    # torchvision: the shorter side becomes `target`, the longer int(target * long / short).
    new_hw = tf.cast(tf.floor(hw * scale), tf.int32)
    new_hw = tf.maximum(new_hw, target)
    return tf.image.resize(image, new_hw, method="bilinear")


def _center_crop(image, size):
    hw = tf.shape(image)[:2]
    top = tf.cast(tf.round(tf.cast(hw[0] - size, tf.float32) / 2.0), tf.int32)
    left = tf.cast(tf.round(tf.cast(hw[1] - size, tf.float32) / 2.0), tf.int32)
    return tf.image.crop_to_bounding_box(image, top, left, size, size)


def _random_crop(image, size, seed):
    return tf.image.stateless_random_crop(image, (size, size, 3), seed=seed)


def _rotate(image, degrees, seed):
    angle = tf.random.stateless_uniform([], seed, -degrees, degrees) * (math.pi / 180.0)
    h = tf.cast(tf.shape(image)[0], tf.float32)
    w = tf.cast(tf.shape(image)[1], tf.float32)
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    c, s = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) samples the input at R^-1 (x - c) + c.
    transform = tf.stack([c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[0]


def _normalise(image, prep, model_input):
    if model_input == "raw_pixels" or prep.mean is None:
        return image
    mean = tf.constant(prep.mean, tf.float32)
    std = tf.constant(prep.std, tf.float32)
    return (image - mean) / std


def train_transform(
    image: tf.Tensor,
    seed: tf.Tensor,
    prep: Preprocessing,
    size: int,
    model_input: str = "normalized",
) -> tf.Tensor:
    """One training image: uint8 (H, W, C) -> float32 (size, size, 3).

    Args:
        image: the decoded image.
        seed: int64 tensor of shape (2,), the image's stateless seed.
        prep: the :class:`Preprocessing`.
        size: the model's input size.
        model_input: ``"raw_pixels"`` (pixels in [0, 255]) or ``"normalized"`` (see the module
            docstring).
    """
    top = _top(model_input)
    image = _to_rgb_float(image, top)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    if prep.train == "pad_crop":
        image = _resize_to(image, size)
        if prep.pad:
            image = tf.pad(image, [[prep.pad, prep.pad], [prep.pad, prep.pad], [0, 0]])
        image = _random_crop(image, size, seeds[0])
    elif prep.train == "resize_crop":
        r = prep.resize_for(size)
        if prep.resize_mode == "square":
            image = tf.image.resize(image, (r, r), method="bilinear")
        else:
            image = _resize_shorter(image, r)
        image = _random_crop(image, size, seeds[0])
    elif prep.train == "random_resized_crop":
        begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=seeds[0],
            min_object_covered=0.0,
            aspect_ratio_range=prep.ratio,
            area_range=prep.scale,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        image = tf.slice(image, begin, crop)
        image = tf.image.resize(image, (size, size), method="bilinear")
    else:
        image = _resize_to(image, size)
    if prep.flip:
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    if prep.rotation:
        image = _rotate(image, float(prep.rotation), seeds[2])
    if prep.brightness:
        factor = tf.random.stateless_uniform(
            [], seeds[3], 1.0 - prep.brightness, 1.0 + prep.brightness
        )
        image = tf.clip_by_value(image * factor, 0.0, top)
    image = tf.ensure_shape(image, (size, size, 3))
    return _normalise(image, prep, model_input)


def eval_transform(
    image: tf.Tensor, prep: Preprocessing, size: int, model_input: str = "normalized"
) -> tf.Tensor:
    """One evaluation image: uint8 (H, W, C) -> float32 (size, size, 3), deterministic.

    ``model_input`` as in :func:`train_transform`."""
    top = _top(model_input)
    image = _to_rgb_float(image, top)
    if prep.eval == "resize_center_crop":
        r = prep.resize_for(size)
        if prep.resize_mode == "square":
            image = tf.image.resize(image, (r, r), method="bilinear")
        else:
            image = _resize_shorter(image, r)
        image = _center_crop(image, size)
    else:
        image = _resize_to(image, size)
    image = tf.ensure_shape(image, (size, size, 3))
    return _normalise(image, prep, model_input)


def mixup_batch(images, labels, alpha, seed):
    """Mixes a batch with its reversed copy: ``lam*x + (1-lam)*x[::-1]`` (labels one-hot)."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    a = tf.random.stateless_gamma([], seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma([], seeds[1], alpha=alpha)
    lam = a / (a + b)
    images = lam * images + (1.0 - lam) * tf.reverse(images, axis=[0])
    labels = lam * labels + (1.0 - lam) * tf.reverse(labels, axis=[0])
    return images, labels
