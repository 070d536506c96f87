"""keras_padfree: lightweight image classifiers with padding-free downsampling, in Keras 3."""

__version__ = "0.2.0"

from keras_padfree import applications  # noqa: E402
from keras_padfree import layers  # noqa: E402
from keras_padfree import profiling  # noqa: E402
from keras_padfree.convert import convert as convert  # noqa: E402  (re-exported)

__all__ = ["applications", "convert", "layers", "profiling", "__version__"]
