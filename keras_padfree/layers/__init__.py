"""Keras layers of keras_padfree: one public layer per file, keras.ops only, all backends."""

from keras_padfree.layers.attention_downsampling import AttentionDownsampling
from keras_padfree.layers.bsconv import BSConvS
from keras_padfree.layers.bsconv import BSConvU
from keras_padfree.layers.channel_shuffle import ChannelShuffle
from keras_padfree.layers.channel_shuffle import ChannelSplit
from keras_padfree.layers.ghost_module import GhostModule
from keras_padfree.layers.hybrid_stem import HybridStem
from keras_padfree.layers.max_pool_shortcut import MaxPoolShortcut
from keras_padfree.layers.orthonormal_regularizer import OrthonormalRegularizer
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv
from keras_padfree.layers.parc_conv import ParCConv
from keras_padfree.layers.pyramid_dw_conv import PyramidDWConv
from keras_padfree.layers.resize_to_match import ResizeToMatch
from keras_padfree.layers.spatial_mean import SpatialMean
from keras_padfree.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "AttentionDownsampling",
    "BSConvS",
    "BSConvU",
    "ChannelShuffle",
    "ChannelSplit",
    "GhostModule",
    "HybridStem",
    "MaxPoolShortcut",
    "OrthonormalRegularizer",
    "PaddingFreeDWConv",
    "ParCConv",
    "PyramidDWConv",
    "ResizeToMatch",
    "SpatialMean",
    "SqueezeExcite",
]
