"""The papers' training recipes, as data.

Each :class:`Recipe` states the optimizer (always ``torch.optim.SGD`` semantics, see
:class:`~keras_padfree.training.optimizers.CoupledSGD`), the learning-rate schedule, epochs, batch
size, what the weight decay applies to, the input pipeline and the loss extras. Sources:

* ``bsconv_set1`` / ``bsconv_set1_dogs``: ``bin/bsconv_pytorch_train.py`` of the BSConv copy used
  for the paper's BSConv tables (spec ``bsconv_family.md`` section 4).
* ``second_set_cifar`` / ``vegfru292``: the three ``train.py`` files of the second code set (spec
  ``second_set_family.md`` section 7).
* ``pydmobilenet_cifar`` / ``pydmobilenet_imagenet32``: the PydMobileNet notebook and
  ``train_imagenet32.py`` (spec ``pydmobilenet_and_cheap_ops.md`` A.7).
* ``cheap_ops_cifar`` / ``cheap_ops_imagenet``: the cheap-ops repository's *code* (B.5; its README
  states a different policy that no script implements).
* ``digits``: this package's own quick recipe for the bundled digits (not from a paper).

The normalisation a recipe states (``preprocessing.mean`` / ``std``, from
:mod:`keras_padfree.normalization`) goes into the model that ``training/fit.py`` trains
(``include_preprocessing=True``); the input pipeline feeds it raw pixels.

The BSConv-S orthonormal regulariser (alpha 0.1) is part of those models (a kernel regulariser), so
Keras adds it to the training and evaluation losses, as the reference does.
"""

import dataclasses
from typing import TYPE_CHECKING

from keras_padfree.data.augment import Preprocessing
from keras_padfree.normalization import CIFAR10_GLUON_MEAN
from keras_padfree.normalization import CIFAR10_GLUON_STD
from keras_padfree.normalization import CIFAR100_MEAN
from keras_padfree.normalization import CIFAR100_ROUNDED_MEAN
from keras_padfree.normalization import CIFAR100_ROUNDED_STD
from keras_padfree.normalization import CIFAR100_STD
from keras_padfree.normalization import IMAGENET_MEAN
from keras_padfree.normalization import IMAGENET_STD
from keras_padfree.training.optimizers import CoupledSGD
from keras_padfree.training.schedules import EpochSchedule

if TYPE_CHECKING:
    from keras_padfree.applications._registry import ModelInfo

__all__ = ["Recipe", "default_recipe_for", "get_recipe", "list_recipes"]

# Excluded from decay by GluonCV's --no-wd (BN gamma/beta and all biases).
NO_WD_ON_BN_AND_BIAS = (r"gamma", r"beta", r"bias")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training recipe.

    Attributes:
        name: the ``--recipe`` value.
        description: one line, with the reference it comes from.
        learning_rate: initial learning rate (for batch ``batch_size``).
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        l2: coupled L2 weight decay (``grad += l2 * w`` before momentum).
        l2_exclude: regular expressions of variable paths without decay (empty: decay on all
            trainable variables, BN and biases included).
        schedule: ``"multistep"``, ``"cosine_epoch"``, ``"cosine_step"`` or ``"constant"``.
        milestones: MultiStep epochs (0-based epoch at which the drop applies).
        gamma: MultiStep factor.
        final_lr_fraction: final learning rate / initial one (cosine).
        warmup_epochs: linear warm-up from 0, per iteration.
        epochs: training epochs.
        batch_size: batch size.
        preprocessing: the :class:`~keras_padfree.data.augment.Preprocessing`.
        label_smoothing: cross-entropy label smoothing.
        source: file and spec section the values come from.
    """

    name: str
    description: str
    learning_rate: float
    momentum: float
    nesterov: bool
    l2: float
    l2_exclude: tuple
    schedule: str
    milestones: tuple
    gamma: float
    final_lr_fraction: float
    warmup_epochs: float
    epochs: int
    batch_size: int
    preprocessing: Preprocessing
    label_smoothing: float = 0.0
    source: str = ""

    def make_schedule(
        self, steps_per_epoch: int, *, epochs: int | None = None, learning_rate: float | None = None
    ) -> EpochSchedule:
        """The :class:`EpochSchedule` for a run of ``epochs`` (default: the recipe's)."""
        return EpochSchedule(
            base_lr=self.learning_rate if learning_rate is None else learning_rate,
            steps_per_epoch=steps_per_epoch,
            kind=self.schedule,
            epochs=epochs or self.epochs,
            milestones=self.milestones,
            gamma=self.gamma,
            final=self.final_lr_fraction,
            warmup_epochs=self.warmup_epochs,
        )

    def make_optimizer(
        self,
        steps_per_epoch: int,
        *,
        epochs: int | None = None,
        learning_rate: float | None = None,
        **kwargs,
    ) -> CoupledSGD:
        """A :class:`CoupledSGD` with the recipe's schedule and weight-decay semantics."""
        return CoupledSGD(
            learning_rate=self.make_schedule(
                steps_per_epoch, epochs=epochs, learning_rate=learning_rate
            ),
            momentum=self.momentum,
            nesterov=self.nesterov,
            l2=self.l2,
            l2_exclude=self.l2_exclude,
            **kwargs,
        )


_CIFAR_AUG = dict(train="pad_crop", eval="none", pad=4, flip=True)

_RECIPES = {
    r.name: r
    for r in [
        Recipe(
            name="bsconv_set1",
            description="BSConv 'first set' (CIFAR): SGD 0.1 m0.9, coupled L2 1e-4 on all params, "
            "MultiStep [100,150,180] x0.1, 200 epochs, batch 128, no normalisation "
            "(the models start with a learnable data BN)",
            learning_rate=0.1,
            momentum=0.9,
            nesterov=False,
            l2=1e-4,
            l2_exclude=(),
            schedule="multistep",
            milestones=(100, 150, 180),
            gamma=0.1,
            final_lr_fraction=0.0,
            warmup_epochs=0.0,
            epochs=200,
            batch_size=128,
            preprocessing=Preprocessing(**_CIFAR_AUG),
            source="bsconv bin/bsconv_pytorch_train.py; bsconv_family.md s.4",
        ),
        Recipe(
            name="bsconv_set1_dogs",
            description="BSConv 'first set' on Stanford Dogs: as bsconv_set1, Resize((256,256)) -> "
            "RandomCrop(224) + flip + brightness 0.4; eval Resize((256,256)) -> "
            "CenterCrop(224); no normalisation",
            learning_rate=0.1,
            momentum=0.9,
            nesterov=False,
            l2=1e-4,
            l2_exclude=(),
            schedule="multistep",
            milestones=(100, 150, 180),
            gamma=0.1,
            final_lr_fraction=0.0,
            warmup_epochs=0.0,
            epochs=200,
            batch_size=128,
            preprocessing=Preprocessing(
                train="resize_crop",
                eval="resize_center_crop",
                resize=256,
                resize_mode="square",
                flip=True,
                brightness=0.4,
            ),
            source="bsconv bin/bsconv_pytorch_train.py; bsconv_family.md s.4",
        ),
        Recipe(
            name="second_set_cifar",
            description="Second set (CIFAR-100): SGD Nesterov 0.03 m0.9, coupled L2 1e-4 on all "
            "params, per-epoch cosine 0.03 -> 0.003 over 300 epochs, batch 64, "
            "CIFAR-100 mean/std",
            learning_rate=0.03,
            momentum=0.9,
            nesterov=True,
            l2=1e-4,
            l2_exclude=(),
            schedule="cosine_epoch",
            milestones=(),
            gamma=0.1,
            final_lr_fraction=0.1,
            warmup_epochs=0.0,
            epochs=300,
            batch_size=64,
            preprocessing=Preprocessing(**_CIFAR_AUG, mean=CIFAR100_MEAN, std=CIFAR100_STD),
            source="C/train.py, E/train.py; second_set_family.md s.7",
        ),
        Recipe(
            name="vegfru292",
            description="Second set (VegFru-292): SGD Nesterov 0.1 m0.9, coupled L2 1e-4, "
            "MultiStep [30,60,90] x0.1, 100 epochs, batch 64, RandomResizedCrop(224) + flip; eval "
            "Resize(256) -> CenterCrop(224); ImageNet mean/std",
            learning_rate=0.1,
            momentum=0.9,
            nesterov=True,
            l2=1e-4,
            l2_exclude=(),
            schedule="multistep",
            milestones=(30, 60, 90),
            gamma=0.1,
            final_lr_fraction=0.0,
            warmup_epochs=0.0,
            epochs=100,
            batch_size=64,
            preprocessing=Preprocessing(
                train="random_resized_crop",
                eval="resize_center_crop",
                resize=256,
                resize_mode="shorter",
                flip=True,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
            ),
            source="V/train.py; second_set_family.md s.7",
        ),
        Recipe(
            name="pydmobilenet_cifar",
            description="PydMobileNet CIFAR notebook: NAG 0.1 m0.9, coupled L2 1e-4 on all params, "
            "x0.1 at epochs 150 and 225, 320 epochs, batch 128, mixup alpha 1 (off for "
            "the last 20 epochs), CIFAR mean/std of run_validation.py",
            learning_rate=0.1,
            momentum=0.9,
            nesterov=True,
            l2=1e-4,
            l2_exclude=(),
            schedule="multistep",
            milestones=(150, 225),
            gamma=0.1,
            final_lr_fraction=0.0,
            warmup_epochs=0.0,
            epochs=320,
            batch_size=128,
            preprocessing=Preprocessing(
                **_CIFAR_AUG,
                mean=CIFAR10_GLUON_MEAN,
                std=CIFAR10_GLUON_STD,
                mixup_alpha=1.0,
                mixup_off_epochs=20,
            ),
            source="Train_cifar100_pydmobilenet.ipynb; pydmobilenet_and_cheap_ops.md A.7",
        ),
        Recipe(
            name="pydmobilenet_imagenet32",
            description="PydMobileNet ImageNet32: NAG 0.4 m0.9, per-iteration cosine, 5 warm-up "
            "epochs, 120 epochs, batch 256, L2 1e-4 without decay on BN gamma/beta and "
            "biases, label smoothing 0.1, mixup alpha 0.2, ImageNet mean/std",
            learning_rate=0.4,
            momentum=0.9,
            nesterov=True,
            l2=1e-4,
            l2_exclude=NO_WD_ON_BN_AND_BIAS,
            schedule="cosine_step",
            milestones=(),
            gamma=0.1,
            final_lr_fraction=0.0,
            warmup_epochs=5.0,
            epochs=120,
            batch_size=256,
            preprocessing=Preprocessing(
                **_CIFAR_AUG, mean=IMAGENET_MEAN, std=IMAGENET_STD, mixup_alpha=0.2
            ),
            label_smoothing=0.1,
            source="run_train.sh + train_imagenet32.py; pydmobilenet_and_cheap_ops.md A.7",
        ),
        Recipe(
            name="cheap_ops_cifar",
            description="Cheap-ops CIFAR-100 code (Cifar100/main.py): SGD 0.1 m0.9, coupled "
            "L2 5e-4, 1-epoch linear warm-up, MultiStep [60,120,160] x0.2, 299 epochs, batch 128, "
            "crop+flip+rotation 15, CIFAR-100 mean/std",
            learning_rate=0.1,
            momentum=0.9,
            nesterov=False,
            l2=5e-4,
            l2_exclude=(),
            schedule="multistep",
            milestones=(60, 120, 160),
            gamma=0.2,
            final_lr_fraction=0.0,
            warmup_epochs=1.0,
            epochs=299,
            batch_size=128,
            preprocessing=Preprocessing(
                **_CIFAR_AUG, rotation=15.0, mean=CIFAR100_ROUNDED_MEAN, std=CIFAR100_ROUNDED_STD
            ),
            source="Cifar100/main.py; pydmobilenet_and_cheap_ops.md B.5",
        ),
        Recipe(
            name="cheap_ops_imagenet",
            description="Cheap-ops ImageNet code (CV3K.py): SGD 0.05 m0.9, coupled L2 4e-5 on all "
            "params, per-iteration cosine to 0, 150 epochs, batch 256, "
            "RandomResizedCrop(224) + flip; eval Resize(256) -> CenterCrop(224)",
            learning_rate=0.05,
            momentum=0.9,
            nesterov=False,
            l2=4e-5,
            l2_exclude=(),
            schedule="cosine_step",
            milestones=(),
            gamma=0.1,
            final_lr_fraction=0.0,
            warmup_epochs=0.0,
            epochs=150,
            batch_size=256,
            preprocessing=Preprocessing(
                train="random_resized_crop",
                eval="resize_center_crop",
                resize=256,
                resize_mode="shorter",
                flip=True,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
            ),
            source="CV3K.py / V3_Reuse6_Shuffle6_OL.py; pydmobilenet_and_cheap_ops.md B.5",
        ),
        Recipe(
            name="digits",
            description="keras_padfree quick recipe for the bundled digits (not from a paper): SGD "
            "Nesterov 0.05 m0.9, coupled L2 1e-4, per-iteration cosine to 0, 3 epochs, "
            "batch 64, random crop (pad 4) without flips, digits mean/std",
            learning_rate=0.05,
            momentum=0.9,
            nesterov=True,
            l2=1e-4,
            l2_exclude=(),
            schedule="cosine_step",
            milestones=(),
            gamma=0.1,
            final_lr_fraction=0.0,
            warmup_epochs=0.0,
            epochs=3,
            batch_size=64,
            preprocessing=Preprocessing(
                train="pad_crop",
                eval="none",
                pad=4,
                flip=False,
                mean=(0.305, 0.305, 0.305),
                std=(0.376, 0.376, 0.376),
            ),
            source="keras_padfree",
        ),
    ]
}


def list_recipes() -> list[str]:
    """Names accepted by ``--recipe``."""
    return sorted(_RECIPES)


def get_recipe(name: str) -> Recipe:
    """The :class:`Recipe` called ``name``; an unknown name raises a ValueError listing all."""
    if not isinstance(name, str) or name not in _RECIPES:
        raise ValueError(f"Unknown recipe: {name!r}. Allowed values: {', '.join(list_recipes())}.")
    return _RECIPES[name]


def default_recipe_for(model_info: "ModelInfo | None", dataset: str) -> str:
    """The recipe the reference used for this model on this dataset (``--recipe``'s default).

    The model states it (:class:`~keras_padfree.applications.ModelInfo` ``.recipes``): its
    recipe for the dataset itself (keyed by the registry's dataset token, e.g. ``"imagenet32"``,
    see :class:`~keras_padfree.data.DatasetSpec` ``.registry_dataset``) or else for the dataset's
    style (``"small"`` / ``"large"``). The bundled digits keep their own quick recipe; a model
    that states none (or None for ``model_info``) gets the dataset's default recipe.

    Args:
        model_info: the model's ``ModelInfo`` (or None).
        dataset: the ``--dataset`` name.

    Returns:
        A name accepted by :func:`get_recipe`.
    """
    from keras_padfree.data.specs import get_dataset_spec

    spec = get_dataset_spec(dataset)
    if spec.source == "bundled":
        return spec.default_recipe
    recipes = getattr(model_info, "recipes", None) or {}
    for key in (spec.registry_dataset, spec.style):
        if key is not None and recipes.get(key):
            return get_recipe(recipes[key]).name
    return spec.default_recipe
