"""Training with the papers' recipes: PyTorch-semantics SGD, schedules, callbacks, the run loop.

>>> from keras_padfree import training
>>> training.list_recipes()[:3]
['bsconv_set1', 'bsconv_set1_dogs', 'cheap_ops_cifar']
>>> training.train(training.TrainConfig(epochs=1, output_dir="/tmp/run"))  # bundled digits
"""

from keras_padfree.training.callbacks import TrainingBackup
from keras_padfree.training.errors import BackupError
from keras_padfree.training.errors import OutputWriteError
from keras_padfree.training.errors import RunFolderError
from keras_padfree.training.errors import TrainingDiverged
from keras_padfree.training.errors import TrainingError
from keras_padfree.training.loop import TrainConfig
from keras_padfree.training.loop import build_model
from keras_padfree.training.loop import evaluate_model
from keras_padfree.training.loop import train
from keras_padfree.training.optimizers import CoupledSGD
from keras_padfree.training.recipes import Recipe
from keras_padfree.training.recipes import default_recipe_for
from keras_padfree.training.recipes import get_recipe
from keras_padfree.training.recipes import list_recipes
from keras_padfree.training.schedules import EpochSchedule

__all__ = [
    "BackupError",
    "CoupledSGD",
    "EpochSchedule",
    "OutputWriteError",
    "Recipe",
    "RunFolderError",
    "TrainConfig",
    "TrainingBackup",
    "TrainingDiverged",
    "TrainingError",
    "build_model",
    "default_recipe_for",
    "evaluate_model",
    "get_recipe",
    "list_recipes",
    "train",
]
