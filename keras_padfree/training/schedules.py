"""Learning-rate schedules of the reference recipes, as Keras schedules over optimizer steps.

The PyTorch schedulers of the references step once per epoch (``MultiStepLR``, ``LambdaLR``), so
the learning rate is constant within an epoch; the GluonCV/cheap-ops ImageNet scripts step per
iteration. :class:`EpochSchedule` maps the optimizer's step counter to the epoch
(``step // steps_per_epoch``) and reproduces both, with an optional linear warm-up:

* ``"multistep"``: ``base * gamma ** (number of milestones <= epoch)`` (0-based epoch; with
  milestones [100, 150, 180] epochs 0-99 train at ``base``, 100-149 at ``base * gamma``, ...).
* ``"cosine_epoch"``: ``base * (((1 + cos(pi * epoch / epochs)) / 2) * (1 - final) + final)``, the
  second set's ``LambdaLR`` with ``lrf = final``.
* ``"cosine_step"``: per-iteration cosine from ``base`` to ``base * final`` over the steps after the
  warm-up (GluonCV ``LRScheduler('cosine')``, torch ``CosineAnnealingLR`` per iteration).
* ``"constant"``.

Warm-up: for ``step < warmup_epochs * steps_per_epoch`` the rate is
``base * step / warmup_steps`` (starting at 0, like the references' ``WarmUpLR`` and GluonCV).
"""

import math

import keras
from keras import ops

__all__ = ["EpochSchedule"]

_KINDS = ("multistep", "cosine_epoch", "cosine_step", "constant")


@keras.saving.register_keras_serializable(package="keras_padfree")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Epoch-based learning-rate schedule (see the module docstring).

    Args:
        base_lr: initial learning rate.
        steps_per_epoch: optimizer steps per epoch (> 0).
        kind: ``"multistep"``, ``"cosine_epoch"``, ``"cosine_step"`` or ``"constant"``.
        epochs: total epochs (cosine schedules).
        milestones: 0-based epochs at which ``"multistep"`` multiplies by ``gamma``.
        gamma: MultiStep factor.
        final: final learning rate as a fraction of ``base_lr`` (cosine schedules).
        warmup_epochs: linear warm-up length in epochs (may be fractional).
    """

    def __init__(
        self,
        base_lr,
        steps_per_epoch,
        kind="multistep",
        epochs=1,
        milestones=(),
        gamma=0.1,
        final=0.0,
        warmup_epochs=0.0,
    ):
        if kind not in _KINDS:
            raise ValueError(f"Argument `kind` must be one of {_KINDS}. Received: kind={kind!r}.")
        if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
            raise ValueError(
                "Argument `steps_per_epoch` must be a positive int. "
                f"Received: steps_per_epoch={steps_per_epoch!r}."
            )
        if not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(
                f"Argument `epochs` must be a positive int. Received: epochs={epochs!r}."
            )
        if list(milestones) != sorted(milestones):
            raise ValueError(f"Argument `milestones` must be increasing. Received: {milestones!r}.")
        self.base_lr = float(base_lr)
        self.steps_per_epoch = steps_per_epoch
        self.kind = kind
        self.epochs = epochs
        self.milestones = tuple(int(m) for m in milestones)
        self.gamma = float(gamma)
        self.final = float(final)
        self.warmup_epochs = float(warmup_epochs)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        spe = float(self.steps_per_epoch)
        epoch = ops.floor(step / spe)
        base = self.base_lr
        if self.kind == "multistep":
            drops = ops.zeros_like(epoch)
            for m in self.milestones:
                drops = drops + ops.cast(ops.greater_equal(epoch, float(m)), "float32")
            lr = base * ops.power(self.gamma, drops)
        elif self.kind == "cosine_epoch":
            frac = ops.minimum(epoch, float(self.epochs)) / float(self.epochs)
            lr = base * (((1.0 + ops.cos(math.pi * frac)) / 2.0) * (1.0 - self.final) + self.final)
        elif self.kind == "cosine_step":
            warm = self.warmup_epochs * spe
            total = max(self.epochs * spe - warm, 1.0)
            frac = ops.clip((step - warm) / total, 0.0, 1.0)
            lr = base * (self.final + (1.0 - self.final) * (1.0 + ops.cos(math.pi * frac)) / 2.0)
        else:
            lr = base + ops.zeros_like(step)
        if self.warmup_epochs > 0:
            warm_steps = self.warmup_epochs * spe
            lr = ops.where(step < warm_steps, base * step / warm_steps, lr)
        return lr

    def lr_at(self, epoch, step_in_epoch=0):
        """The learning rate (Python float) at a 0-based epoch and step within it."""
        return float(ops.convert_to_numpy(self(epoch * self.steps_per_epoch + step_in_epoch)))

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "steps_per_epoch": self.steps_per_epoch,
            "kind": self.kind,
            "epochs": self.epochs,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            "final": self.final,
            "warmup_epochs": self.warmup_epochs,
        }
