"""The per-channel input normalisations of the reference trainings, on RGB pixels in [0, 1].

One place for the constants that the models (``include_preprocessing=True``) and the training
recipes share: ``x = (pixel / 255 - mean) / std``.
"""

CIFAR100_MEAN = (0.5070751592371323, 0.48654887331495095, 0.4409178433670343)
CIFAR100_STD = (0.2673342858792401, 0.2564384629170883, 0.27615047132568404)
# The cheap-operation repository's CIFAR-100 loader rounds the same statistics to 4 digits.
CIFAR100_ROUNDED_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_ROUNDED_STD = (0.2673, 0.2564, 0.2762)
# PydMobileNet's run_validation.py (Gluon's CIFAR-10 statistics, used for CIFAR-100 too).
CIFAR10_GLUON_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_GLUON_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CIFAR100 = (CIFAR100_MEAN, CIFAR100_STD)
CIFAR100_ROUNDED = (CIFAR100_ROUNDED_MEAN, CIFAR100_ROUNDED_STD)
CIFAR10_GLUON = (CIFAR10_GLUON_MEAN, CIFAR10_GLUON_STD)
IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)
