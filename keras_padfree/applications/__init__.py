"""The keras_padfree model zoo: keras.applications-style builders and a registry.

>>> from keras_padfree import applications
>>> model = applications.create_model("bsconv_resnet20_cifar_pf")
>>> applications.list_models("*resnet20*")
"""

from keras_padfree.applications._registry import create_model
from keras_padfree.applications._registry import get_model_info
from keras_padfree.applications._registry import list_models
from keras_padfree.applications._registry import reference_rows

# Family modules: importing each registers its models. One line per family file.
from keras_padfree.applications.bsconv_mobilenetv3 import (  # noqa: F401
    BSConvMobileNetV3Large, BSConvMobileNetV3LargePF)
from keras_padfree.applications.bsconv_resnet import (  # noqa: F401
    BSConvCifarResNet, BSConvCifarWRN, CifarResNet20, CifarResNet20PF, CifarResNet110BSConvU,
    CifarResNet110BSConvUPF, CifarWRN40_3, CifarWRN40_3PF, CifarWRN40_8BSConvU,
    CifarWRN40_8BSConvUPF)
from keras_padfree.applications.pydmobilenet import (  # noqa: F401
    PydBaselineMobileNet, PydBaselineResNet, PydMobileNet, PydMobileNetPF)
from keras_padfree.applications.parc_mobilenetv2 import ParCMobileNetV2, ParCMobileNetV2PF  # noqa: F401,E501
from keras_padfree.applications.shufflenetv2 import ShuffleNetV2, ShuffleNetV2PF  # noqa: F401
from keras_padfree.applications.mobilenetv3 import MobileNetV3Large, MobileNetV3LargePF  # noqa: F401,E501
from keras_padfree.applications.cheap_mobilenet import (  # noqa: F401
    CheapMobileNetV2, CheapMobileNetV3)
from keras_padfree.applications.ghostnet import GhostNet, GhostNetPF  # noqa: F401
