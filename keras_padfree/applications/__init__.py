"""The keras_padfree model zoo: keras.applications-style builders and a registry.

>>> from keras_padfree import applications
>>> model = applications.create_model("bsconv_resnet20_pf_cifar")
>>> applications.list_models("*resnet20*")
['bsconv_resnet20_cifar', 'bsconv_resnet20_pf_cifar']

Every family module states its architecture as a table and its quirks as data
(:class:`~keras_padfree.applications._family.Family`); one builder
(:mod:`keras_padfree.applications._builder`) turns each into its public functions and registers
its models.
"""

from keras_padfree.applications._registry import create_model
from keras_padfree.applications._registry import get_model_info
from keras_padfree.applications._registry import list_models
from keras_padfree.applications._registry import reference_rows

# Family modules: importing each registers its models. One line per family file.
from keras_padfree.applications.bsconv_resnet import (  # noqa: E402, I001
    BSConvCifarResNet, BSConvCifarWRN, CifarResNet20, CifarResNet20PF, CifarResNet110BSConvU,
    CifarResNet110BSConvUPF, CifarWRN40_3, CifarWRN40_3PF, CifarWRN40_8BSConvU,
    CifarWRN40_8BSConvUPF)
from keras_padfree.applications.bsconv_mobilenetv3 import (  # noqa: E402
    BSConvMobileNetV3Large, BSConvMobileNetV3LargePF)
from keras_padfree.applications.pydmobilenet import (  # noqa: E402
    PydBaselineMobileNet, PydBaselineResNet, PydMobileNet, PydMobileNetPF)
from keras_padfree.applications.parc_mobilenetv2 import (  # noqa: E402
    ParCMobileNetV2, ParCMobileNetV2PF)
from keras_padfree.applications.shufflenetv2 import ShuffleNetV2, ShuffleNetV2PF  # noqa: E402
from keras_padfree.applications.mobilenetv3 import (  # noqa: E402
    MobileNetV3Large, MobileNetV3LargePF)
from keras_padfree.applications.cheap_mobilenet import (  # noqa: E402
    CheapMobileNetV2, CheapMobileNetV3)
from keras_padfree.applications.ghostnet import GhostNet, GhostNetPF  # noqa: E402

__all__ = [
    "BSConvCifarResNet", "BSConvCifarWRN", "BSConvMobileNetV3Large", "BSConvMobileNetV3LargePF",
    "CheapMobileNetV2", "CheapMobileNetV3", "CifarResNet20", "CifarResNet20PF",
    "CifarResNet110BSConvU", "CifarResNet110BSConvUPF", "CifarWRN40_3", "CifarWRN40_3PF",
    "CifarWRN40_8BSConvU", "CifarWRN40_8BSConvUPF", "GhostNet", "GhostNetPF", "MobileNetV3Large",
    "MobileNetV3LargePF", "ParCMobileNetV2", "ParCMobileNetV2PF", "PydBaselineMobileNet",
    "PydBaselineResNet", "PydMobileNet", "PydMobileNetPF", "ShuffleNetV2", "ShuffleNetV2PF",
    "create_model", "get_model_info", "list_models", "reference_rows",
]
