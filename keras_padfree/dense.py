"""Dense prediction on the zoo's backbones: a feature pyramid neck that merges levels of any size,
a segmentation model, and a generated shapes dataset to train it on.

Every zoo model exposes its feature pyramid (``model.pyramid_outputs``, ``model.feature_info``;
``features_only=True`` for a multi-output backbone). Padding-free levels are not powers of two
apart (224 -> 112 -> 55 -> 27 -> 13 -> 6), so :func:`fpn` resizes each coarser level to the exact
size of the level it merges into (:class:`~keras_padfree.layers.ResizeToMatch`) instead of
upsampling by 2.

>>> from keras_padfree import dense
>>> model = dense.segmentation_model("bsconv_resnet20_pf_cifar", classes=4)
>>> images, masks = dense.synthetic_shapes(64, size=32, seed=0)
"""

from __future__ import annotations

import keras
import numpy as np

from keras_padfree.applications import create_model
from keras_padfree.layers.resize_to_match import ResizeToMatch

__all__ = ["fpn", "mean_iou", "segmentation_model", "synthetic_shapes"]

SHAPES = ("square", "disc", "triangle")


def fpn(
    pyramid: dict, filters: int = 64, *, interpolation: str = "nearest", name: str = "fpn"
) -> dict:
    """A feature pyramid network (Lin et al. 2017) over ``{"P<n>": feature map}`` of any sizes.

    Each level gets a 1x1 lateral conv to ``filters`` channels; from the coarsest level down, the
    merged coarser level is resized to the next finer level's size and added; a 3x3 conv smooths
    every merged level.

    Args:
        pyramid: the levels, e.g. ``model.pyramid_outputs`` or a ``features_only`` model's output
            dict (at least one level, static spatial sizes).
        filters: channels of every output level.
        interpolation: of the top-down resize ("nearest" or "bilinear").
        name: layer-name prefix.

    Returns:
        ``{"P<n>": merged feature map}`` with the input levels' sizes and ``filters`` channels.
    """
    if (
        not isinstance(pyramid, dict)
        or not pyramid
        or any(not (isinstance(k, str) and k.startswith("P") and k[1:].isdigit()) for k in pyramid)
    ):
        raise ValueError(
            'Argument `pyramid` must be a non-empty dict {"P<n>": feature map}, e.g. '
            f"model.pyramid_outputs. Received: pyramid={pyramid!r}."
        )
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(
            f"Argument `filters` must be a positive integer. Received: filters={filters!r}."
        )
    levels = sorted(pyramid, key=lambda level: int(level[1:]), reverse=True)  # coarsest first
    merged, top = {}, None
    for level in levels:
        x = keras.layers.Conv2D(filters, 1, name=f"{name}_{level}_lateral")(pyramid[level])
        if top is not None:
            up = ResizeToMatch(interpolation, name=f"{name}_{level}_resize")([top, x])
            x = keras.layers.Add(name=f"{name}_{level}_add")([x, up])
        top = x
        merged[level] = keras.layers.Conv2D(
            filters, 3, padding="same", name=f"{name}_{level}_smooth"
        )(x)
    return {level: merged[level] for level in reversed(levels)}


def segmentation_model(
    backbone: str | keras.Model,
    classes: int,
    *,
    levels=None,
    filters: int = 64,
    input_shape=None,
    name: str | None = None,
    **backbone_kwargs,
) -> keras.Model:
    """A semantic segmentation model: a zoo backbone's pyramid, :func:`fpn`, a per-pixel head.

    The finest merged level goes through a 3x3 conv + BN + ReLU and a 1x1 conv to ``classes``,
    is resized to the input size and ends in a per-pixel softmax.

    Args:
        backbone: a registry name (built with ``features_only=True``) or a model whose
            ``pyramid_outputs`` to use.
        classes: number of classes, background included (>= 2).
        levels: the pyramid levels to merge (default: all).
        filters: FPN width.
        input_shape: the backbone's input shape (default: its registered one).
        name: model name.
        **backbone_kwargs: more arguments of ``create_model`` (e.g. ``include_preprocessing``).
    """
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ValueError(
            f"Argument `classes` must be an integer >= 2. Received: classes={classes!r}."
        )
    if isinstance(backbone, str):
        kwargs = dict(backbone_kwargs, features_only=True)
        if input_shape is not None:
            kwargs["input_shape"] = input_shape
        backbone = create_model(backbone, **kwargs)
    pyramid = getattr(backbone, "pyramid_outputs", None)
    if pyramid is None and isinstance(backbone.output, dict):
        pyramid = backbone.output
    if pyramid is None:
        raise ValueError(
            "Argument `backbone` must be a registry name or a model with `pyramid_outputs` (every "
            f"keras_padfree model has them). Received: {backbone!r}."
        )
    if levels is not None:
        missing = [level for level in levels if level not in pyramid]
        if missing:
            raise ValueError(
                f"Argument `levels` names levels the backbone lacks: {missing}; it "
                f"has {sorted(pyramid)}. Received: levels={levels!r}."
            )
        pyramid = {level: pyramid[level] for level in levels}
    merged = fpn(pyramid, filters)
    finest = merged[min(merged, key=lambda level: int(level[1:]))]
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="seg_conv")(finest)
    x = keras.layers.BatchNormalization(name="seg_bn")(x)
    x = keras.layers.ReLU(name="seg_relu")(x)
    x = keras.layers.Conv2D(classes, 1, name="seg_logits")(x)
    x = ResizeToMatch("bilinear", name="seg_resize")([x, backbone.inputs[0]])
    x = keras.layers.Softmax(name="seg_softmax")(x)
    inputs = backbone.inputs[0] if len(backbone.inputs) == 1 else backbone.inputs
    return keras.Model(inputs, x, name=name or f"{backbone.name}_segmentation")


def synthetic_shapes(count: int, size: int = 32, *, seed: int = 0) -> tuple:
    """Generated images with their segmentation masks: one filled shape per image.

    Each image is a noisy random-colour background with a square, a disc or a triangle of
    another random colour at a random place and scale; the mask labels its pixels 1 (square),
    2 (disc) or 3 (triangle) and the background 0.

    Returns:
        ``(images, masks)``: uint8 ``(count, size, size, 3)`` and int32 ``(count, size, size)``.
    """
    for arg, value, low in (("count", count, 1), ("size", size, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(
                f"Argument `{arg}` must be an integer >= {low}. Received: {arg}={value!r}."
            )
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    images = np.empty((count, size, size, 3), "uint8")
    masks = np.zeros((count, size, size), "int32")
    for i in range(count):
        kind = int(rng.integers(len(SHAPES)))
        r = rng.uniform(0.15, 0.35) * size
        cy, cx = rng.uniform(r, size - r, 2)
        if kind == 0:
            inside = (np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)
        elif kind == 1:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:  # an upward triangle: apex above the centre, base below
            inside = (yy <= cy + r * 0.8) & (np.abs(xx - cx) <= (yy - (cy - r)) * 0.6)
        background, colour = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        while np.abs(background - colour).sum() < 150:
            colour = rng.uniform(0, 255, 3)
        image = np.where(inside[..., None], colour, background)
        image = image + rng.normal(0, 12, image.shape)
        images[i] = np.clip(image, 0, 255).astype("uint8")
        masks[i][inside] = kind + 1
    return images, masks


def mean_iou(masks, predictions, classes: int) -> tuple:
    """Per-class and mean intersection over union of integer masks (classes absent from both are
    left out of the mean).

    Returns:
        ``(mean, per_class)``: a float and a list of floats (NaN where a class is absent).
    """
    masks, predictions = np.asarray(masks), np.asarray(predictions)
    if masks.shape != predictions.shape:
        raise ValueError(
            f"Masks of shape {masks.shape} and predictions of shape "
            f"{predictions.shape} must have the same shape."
        )
    per_class = []
    for c in range(classes):
        union = np.logical_or(masks == c, predictions == c).sum()
        inter = np.logical_and(masks == c, predictions == c).sum()
        per_class.append(float(inter / union) if union else float("nan"))
    present = [v for v in per_class if not np.isnan(v)]
    return float(np.mean(present)) if present else float("nan"), per_class
