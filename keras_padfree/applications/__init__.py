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

# Family modules: importing each registers its models.
from keras_padfree.applications.bsconv_mobilenetv3 import BSConvMobileNetV3Large
from keras_padfree.applications.bsconv_mobilenetv3 import BSConvMobileNetV3LargePF
from keras_padfree.applications.bsconv_resnet import BSConvCifarResNet
from keras_padfree.applications.bsconv_resnet import BSConvCifarWRN
from keras_padfree.applications.bsconv_resnet import CifarResNet20
from keras_padfree.applications.bsconv_resnet import CifarResNet20PF
from keras_padfree.applications.bsconv_resnet import CifarResNet110BSConvU
from keras_padfree.applications.bsconv_resnet import CifarResNet110BSConvUPF
from keras_padfree.applications.bsconv_resnet import CifarWRN40_3
from keras_padfree.applications.bsconv_resnet import CifarWRN40_3PF
from keras_padfree.applications.bsconv_resnet import CifarWRN40_8BSConvU
from keras_padfree.applications.bsconv_resnet import CifarWRN40_8BSConvUPF
from keras_padfree.applications.cheap_mobilenet import CheapMobileNetV2
from keras_padfree.applications.cheap_mobilenet import CheapMobileNetV3
from keras_padfree.applications.ghostnet import GhostNet
from keras_padfree.applications.ghostnet import GhostNetPF
from keras_padfree.applications.mobilenetv3 import MobileNetV3Large
from keras_padfree.applications.mobilenetv3 import MobileNetV3LargePF
from keras_padfree.applications.parc_mobilenetv2 import ParCMobileNetV2
from keras_padfree.applications.parc_mobilenetv2 import ParCMobileNetV2PF
from keras_padfree.applications.pydmobilenet import PydBaselineMobileNet
from keras_padfree.applications.pydmobilenet import PydBaselineResNet
from keras_padfree.applications.pydmobilenet import PydMobileNet
from keras_padfree.applications.pydmobilenet import PydMobileNetPF
from keras_padfree.applications.shufflenetv2 import ShuffleNetV2
from keras_padfree.applications.shufflenetv2 import ShuffleNetV2PF

__all__ = [
    "BSConvCifarResNet",
    "BSConvCifarWRN",
    "BSConvMobileNetV3Large",
    "BSConvMobileNetV3LargePF",
    "CheapMobileNetV2",
    "CheapMobileNetV3",
    "CifarResNet20",
    "CifarResNet20PF",
    "CifarResNet110BSConvU",
    "CifarResNet110BSConvUPF",
    "CifarWRN40_3",
    "CifarWRN40_3PF",
    "CifarWRN40_8BSConvU",
    "CifarWRN40_8BSConvUPF",
    "GhostNet",
    "GhostNetPF",
    "MobileNetV3Large",
    "MobileNetV3LargePF",
    "ParCMobileNetV2",
    "ParCMobileNetV2PF",
    "PydBaselineMobileNet",
    "PydBaselineResNet",
    "PydMobileNet",
    "PydMobileNetPF",
    "ShuffleNetV2",
    "ShuffleNetV2PF",
    "create_model",
    "get_model_info",
    "list_models",
    "reference_rows",
]
