"""Rewrite a trained Keras CNN into its padding-free version, carrying its weights.

Padding-free downsampling adds no weights to a depthwise stride-2 block: the max-pool shortcut has
none. So a trained network (``keras.applications`` MobileNetV2/V3, a zoo original, a user's own
functional CNN) converts to its padding-free form with every trained kernel carried over exactly;
only the optional hybrid stem starts from fresh weights.

>>> import keras, keras_padfree
>>> model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
>>> pf = keras_padfree.convert(model)                     # padding-free downsampling only
>>> pf, report = keras_padfree.convert(model, hybrid_stem=True, return_report=True)
>>> zoo = keras_padfree.applications.create_model("ghostnet_cifar")
>>> pf = keras_padfree.convert(zoo, hybrid_stem=True, **family_options("ghostnet_cifar"))

What :func:`convert` rewrites (everything else is cloned layer by layer, weights copied bit for
bit):

* every stride-2 ``DepthwiseConv2D`` (k x k, odd k >= 3), with the ``ZeroPadding2D`` before it or
  its Keras ``"same"`` padding, becomes the padding-free conv (padding ``(k - 3) // 2``: k3 -> 0,
  k5 -> 1, k7 -> 2) plus a max-pool of its input added at ``shortcut_position``. Where the conv is
  followed by a ``BatchNormalization`` and a ReLU/ReLU6/named activation, the three become one
  :class:`~keras_padfree.layers.PaddingFreeDWConv` (the zoo's own layer: same weights, same
  structure as the zoo's padding-free models); otherwise (a bias, a custom activation, a
  regularizer, no BN) the layers are kept and a :class:`~keras_padfree.layers.MaxPoolShortcut` plus
  an ``Add`` are inserted at the join point;
* the depthwise convs named by ``padding_only`` get the reduced padding and no pool (GhostNet's
  strided conv shortcut);
* a stride-2 ``PyramidDWConv`` (PydMobileNet) becomes its ``padding_free=True`` form, same kernels;
* with ``pointwise_shortcuts="max_pool"`` a stride-2 1x1 conv becomes ``MaxPoolShortcut(filters)``
  with the same 1x1 kernel (PydMobileNet's padding-free block shortcut);
* a ``ParCConv`` (ParC-MobileNetV2) whose feature map shrinks (8 -> 7 on CIFAR) is rebuilt at the
  new size: its global kernel and positional embedding have the map's size, so they cannot be
  carried as they are. ``parc_kernels="resample"`` (default) resamples them over the circle by
  area: the old K taps are read as a step function on the circle and each of the K' new taps is
  its integral over the new tap's arc (the kernel's sum, its response to a constant map, is kept
  exactly; the embedding is averaged, so its mean is kept); ``"reinitialize"`` gives them fresh
  initial values. The bias is carried exactly;
* with ``hybrid_stem=True`` the first convolution (and the ``ZeroPadding2D`` before it, its BN and
  activation, and with ``stem_options={"replace_pool": True}`` the max-pool after them) becomes a
  :class:`~keras_padfree.layers.HybridStem`: the only weights that are not carried.

Unconvertible input gets a ValueError that names what was found (layer, class, kernel, stride) and
the options: a subclassed model, an unbuilt Sequential, a stride-2 standard convolution that has no
depthwise form (the BSConv ResNets), a stride-2 depthwise conv whose input map is smaller than 3x3
once the earlier downsamplings are padding-free, a custom layer with stride-2 convolutions inside.

The per-family options of the zoo (``FAMILY_OPTIONS``: join point, 5x5 pool, hybrid-stem settings)
reproduce the zoo's padding-free models exactly; :func:`family_options` returns them for a
registered model name or a family name.
"""

import copy
import dataclasses
import fnmatch

import keras
import numpy as np

from keras_padfree.layers import _utils
from keras_padfree.layers.hybrid_stem import HybridStem
from keras_padfree.layers.max_pool_shortcut import MaxPoolShortcut
from keras_padfree.layers.padding_free_dw_conv import SHORTCUT_POSITIONS
from keras_padfree.layers.padding_free_dw_conv import PaddingFreeDWConv
from keras_padfree.layers.parc_conv import ParCConv
from keras_padfree.layers.pyramid_dw_conv import PyramidDWConv

__all__ = [
    "FAMILY_OPTIONS",
    "ConversionReport",
    "ConvertedLayer",
    "convert",
    "family_options",
]

SHORTCUT_POOLS = ("3x3", "kernel")
POINTWISE_SHORTCUTS = ("error", "keep", "max_pool")
STANDARD_CONVS = ("error", "keep")
PARC_KERNELS = ("resample", "reinitialize")
# HybridStem arguments `stem_options` may set (filters and strides come from the replaced conv),
# plus "replace_pool": also replace a 3x3 max-pool that follows the stem (ShuffleNetV2).
STEM_OPTION_KEYS = (
    "activation",
    "residual",
    "ordering",
    "first_conv",
    "bn_epsilon",
    "bn_momentum",
    "kernel_initializer",
    "depthwise_initializer",
    "replace_pool",
)
_ACTIVATION_LAYERS = (
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
)


def _family_records() -> dict:
    """The zoo's families whose originals convert, by registry family name."""
    from keras_padfree import applications

    records = {}
    for name in applications.list_models():
        family = applications.get_model_info(name).builder.family
        if family.convert_options is not None:
            records.setdefault(family.name, family)
    return records


def _options_of(family) -> dict:
    """A family's :func:`convert` arguments, read from its record: the quirks' join point and
    pool, its hybrid stem's settings, and its ``convert_options``."""
    from keras_padfree.blocks.common import Context
    from keras_padfree.blocks.downsampling import get_mode

    config = family.configs[0]
    args = {arg.name: arg.default for arg in family.args}
    ctx = Context(family.quirks, get_mode("padding_free"), config.name, args, config.values)
    stem = family.hybrid_stem(ctx)
    stem_options = {}
    for key in STEM_OPTION_KEYS:
        if key in stem:
            value = stem[key]
            if isinstance(value, keras.initializers.Initializer):
                value = keras.initializers.serialize(value)
            stem_options[key] = value
    options = {
        "shortcut_position": family.quirks.join,
        "shortcut_pool": family.quirks.shortcut_pool,
    }
    extra = copy.deepcopy(family.convert_options)
    stem_options.update(extra.pop("stem_options", {}))
    options.update(extra)
    options["stem_options"] = stem_options
    return options


# What each zoo family's padding-free version changes, as `convert` keyword arguments, read from
# the family records (keras_padfree/applications/<family>.py: Quirks.join, Quirks.shortcut_pool,
# the hybrid stem, Family.convert_options). Converting a family's original model with them gives
# exactly its "pf" (hybrid_stem=True) or "downsampling_only" (False) model.
FAMILY_OPTIONS = {name: _options_of(family) for name, family in _family_records().items()}


def family_options(name: str) -> dict:
    """The :func:`convert` keyword arguments of a zoo family, by family or registered model name.

    ``convert(model, hybrid_stem=True, **family_options("ghostnet_cifar"))`` turns the zoo's
    original GhostNet into exactly the zoo's padding-free GhostNet (``hybrid_stem=False``: the
    "downsampling_only" ablation).

    Args:
        name: a key of ``FAMILY_OPTIONS`` (``"ghostnet"``) or a registered model name
            (``"ghostnet_cifar"``), whose registry family is looked up.

    Returns:
        A new dict (safe to modify).
    """
    if not isinstance(name, str):
        raise ValueError(
            "Argument `name` must be a family or registered model name (a string). "
            f"Received: name={name!r}."
        )
    family = name
    if name not in FAMILY_OPTIONS:
        from keras_padfree import applications

        if name not in applications.list_models():
            raise ValueError(
                f"Argument `name` must be one of the families {sorted(FAMILY_OPTIONS)} or a "
                f"registered model name of one of them. Received: name={name!r}."
            )
        family = applications.get_model_info(name).family
        if family not in FAMILY_OPTIONS:
            raise ValueError(
                f"Model {name!r} is of family {family!r}, which has no padding-free form to "
                f"convert to (families with one: {sorted(FAMILY_OPTIONS)}). Received: "
                f"name={name!r}."
            )
    return copy.deepcopy(FAMILY_OPTIONS[family])


@dataclasses.dataclass(frozen=True)
class ConvertedLayer:
    """One rewrite: the source layers it replaced and the layers it made.

    ``kind`` is "padding_free" (fused :class:`PaddingFreeDWConv`), "padding_free_unfused" (the
    layers kept, a pool shortcut and an Add inserted), "padding_only", "pyramid",
    "pointwise_max_pool", "parc" or "hybrid_stem".
    """

    kind: str
    source: tuple
    new: tuple
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What :func:`convert` did.

    Attributes:
        layers: the :class:`ConvertedLayer` rewrites, in graph order.
        carried_weights: number of weight tensors copied bit for bit from the source.
        new_weights: paths of the weights that start from their initializer (hybrid stem; ParC
            kernels and embeddings with ``parc_kernels="reinitialize"``).
        resampled_weights: paths of the weights resampled from a source weight of another shape
            (ParC kernels and embeddings whose map size changed).
    """

    layers: tuple
    carried_weights: int
    new_weights: tuple
    resampled_weights: tuple

    def summary(self) -> str:
        kinds = {}
        for entry in self.layers:
            kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        parts = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "nothing"
        return (
            f"converted: {parts}; {self.carried_weights} weight tensors carried, "
            f"{len(self.resampled_weights)} resampled, {len(self.new_weights)} new"
        )


# --------------------------------------------------------------------------------------------------
# Graph helpers (Keras 3 functional internals: nodes by depth, node inputs and outputs).


def _is_functional(layer):
    return (
        isinstance(layer, keras.Model)
        and not isinstance(layer, keras.Sequential)
        and hasattr(layer, "_nodes_by_depth")
    )


class _Graph:
    """One functional graph: its nodes in topological order and who consumes each tensor."""

    def __init__(self, model):
        self.model = model
        self.nodes = []
        for depth in sorted(model._nodes_by_depth, reverse=True):
            self.nodes.extend(model._nodes_by_depth[depth])
        self.consumers = {}
        for node in self.nodes:
            for t in node.input_tensors:
                self.consumers.setdefault(id(t), []).append(node)
        self.outputs = {id(t) for t in model.outputs}
        self.producer = {}
        for node in self.nodes:
            for t in node.outputs:
                self.producer[id(t)] = node

    def only_consumer(self, tensor):
        """The single node consuming ``tensor`` (None if several, none, or a model output)."""
        users = self.consumers.get(id(tensor), [])
        if len(users) != 1 or id(tensor) in self.outputs:
            return None
        return users[0]

    def producer_of(self, tensor):
        node = self.producer.get(id(tensor))
        if node is None or node.is_input or node.operation is None:
            return None
        return node


def _describe(layer):
    """``'name' (Class, kernel 3x3, strides (2, 2))`` for error messages."""
    parts = [type(layer).__name__]
    kernel = getattr(layer, "kernel_size", None)
    if isinstance(kernel, (tuple, list)) and len(kernel) == 2:
        parts.append(f"kernel {kernel[0]}x{kernel[1]}")
    strides = getattr(layer, "strides", None)
    if strides is not None:
        parts.append(f"strides {tuple(strides) if isinstance(strides, (list, tuple)) else strides}")
    groups = getattr(layer, "groups", 1)
    if groups not in (1, None):
        parts.append(f"groups {groups}")
    return f"{layer.name!r} ({', '.join(parts)})"


def _strided(layer):
    strides = getattr(layer, "strides", 1)
    strides = tuple(strides) if isinstance(strides, (list, tuple)) else (strides,)
    return any(s != 1 for s in strides)


def _is_standard_conv(layer):
    return isinstance(layer, keras.layers.Conv2D) and not isinstance(
        layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    )


def _activation_name(layer):
    """The canonical activation name of a ReLU/Activation layer, or None if it has none."""
    if isinstance(layer, keras.layers.ReLU):
        if float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            return None
        if layer.max_value is None:
            return "relu"
        return "relu6" if float(layer.max_value) == 6.0 else None
    if type(layer) is keras.layers.Activation:
        name = layer.get_config().get("activation")
        if not isinstance(name, str):
            return None
        try:
            return _utils.canonical_activation(name)
        except ValueError:
            return None
    return None


def _plain_depthwise(layer):
    """Whether a DepthwiseConv2D fits PaddingFreeDWConv's conv exactly (no bias, act, extras)."""
    cfg = layer.get_config()
    return (
        not cfg["use_bias"]
        and cfg.get("activation") in (None, "linear")
        and cfg.get("depthwise_regularizer") is None
        and cfg.get("depthwise_constraint") is None
        and cfg.get("activity_regularizer") is None
    )


def _plain_batch_norm(layer):
    """Whether a BatchNormalization fits PaddingFreeDWConv's BN exactly."""
    cfg = layer.get_config()
    return (
        cfg["axis"] in (-1, 3, [-1], [3])
        and cfg["center"]
        and cfg["scale"]
        and not cfg.get("renorm")
        and not cfg.get("synchronized")
        and all(
            cfg.get(k) is None
            for k in (
                "beta_regularizer",
                "gamma_regularizer",
                "beta_constraint",
                "gamma_constraint",
            )
        )
        and cfg.get("activity_regularizer") is None
    )


def _spatial_size(tensor):
    return tuple(tensor.shape[1:3])


def _check_choice(value, argname, allowed):
    if value not in allowed:
        raise ValueError(
            f"Argument `{argname}` must be one of {list(allowed)}. Received: {argname}={value!r}."
        )
    return value


# --------------------------------------------------------------------------------------------------
# Planning: what each source layer becomes.


@dataclasses.dataclass
class _Role:
    kind: str  # skip, fused, unfused_dw, join, padding_only, pyramid, pointwise, parc, stem
    info: dict = dataclasses.field(default_factory=dict)


class _Converter:
    def __init__(
        self,
        model,
        *,
        shortcut_position,
        shortcut_pool,
        hybrid_stem,
        stem_options,
        padding_only,
        pointwise_shortcuts,
        standard_convs,
        parc_kernels,
    ):
        self.model = model
        self.shortcut_position = shortcut_position
        self.shortcut_pool = shortcut_pool
        self.hybrid_stem = hybrid_stem
        self.stem_options = stem_options
        self.padding_only = padding_only
        self.pointwise_shortcuts = pointwise_shortcuts
        self.standard_convs = standard_convs
        self.parc_kernels = parc_kernels
        self.roles = {}  # id(source layer) -> _Role
        self.taken = set()
        self.stem_seen = False
        self.already_padding_free = 0
        self.source_of = {}  # id(clone) -> source layer
        self.copies = []  # (new layer, source layer): weights carried as they are
        self.parcs = []  # (new ParCConv, source ParCConv)
        self.pointwise = []  # (new MaxPoolShortcut, source Conv2D)
        self.fused = []  # (PaddingFreeDWConv, source dw, source bn)
        self.stems = []  # new HybridStem layers
        self.pending = {}  # id(source join layer) -> shortcut tensor waiting to be added
        self.entries = []

    # -- names -------------------------------------------------------------------------------
    def _collect_names(self, model):
        for layer in model._flatten_layers(include_self=False, recursive=True):
            self.taken.add(layer.name)

    def unique(self, name):
        base, i = name, 1
        while name in self.taken:
            name = f"{base}_{i}"
            i += 1
        self.taken.add(name)
        return name

    # -- analysis ----------------------------------------------------------------------------
    def _assign(self, layer, role):
        if id(layer) in self.roles:
            raise ValueError(
                f"Layer {_describe(layer)} would be rewritten twice (it is shared by several "
                "parts of the graph). convert cannot rewrite a shared layer."
            )
        if len(layer._inbound_nodes) > 1:
            raise ValueError(
                f"Layer {_describe(layer)} is called {len(layer._inbound_nodes)} times (a shared "
                "layer). convert rewrites layers called once; unshare it first."
            )
        self.roles[id(layer)] = role

    def analyse(self, graph):
        for node in graph.nodes:
            layer = node.operation
            if layer is None or node.is_input or isinstance(layer, keras.layers.InputLayer):
                continue
            if id(layer) in self.roles:
                continue
            if isinstance(layer, keras.Model) and len(layer._inbound_nodes) > 1:
                raise ValueError(
                    f"The nested model {layer.name!r} is called {len(layer._inbound_nodes)} "
                    "times (shared). convert rewrites a nested model called once; convert the "
                    "shared model on its own and call the result where it was called."
                )
            if _is_functional(layer):
                self.analyse(_Graph(layer))
                continue
            if isinstance(layer, keras.Sequential):
                self._check_nested_sequential(layer)
                continue
            self._analyse_node(graph, node, layer)

    def _check_nested_sequential(self, seq):
        """A nested Sequential is copied whole: fail if any of its layers needs a rewrite."""
        for inner in seq._flatten_layers(include_self=False, recursive=True):
            is_conv = isinstance(
                inner,
                (
                    keras.layers.Conv2D,
                    keras.layers.DepthwiseConv2D,
                    keras.layers.SeparableConv2D,
                    HybridStem,
                ),
            )
            first = is_conv and not self.stem_seen
            if is_conv:
                self.stem_seen = True
            if first and (_is_standard_conv(inner) or isinstance(inner, HybridStem)):
                if not self.hybrid_stem or isinstance(inner, HybridStem):
                    continue  # the stem conv keeps its stride
            elif _is_standard_conv(inner) and _strided(inner):
                pointwise = tuple(inner.kernel_size) == (1, 1)
                option = self.pointwise_shortcuts if pointwise else self.standard_convs
                if option == "keep":
                    continue
                if option == "error":
                    self._plan_standard_conv(None, None, inner)  # raises its error
            elif not (
                (
                    isinstance(inner, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D))
                    and _strided(inner)
                )
                or isinstance(inner, ParCConv)
                or (
                    isinstance(inner, PyramidDWConv)
                    and inner.strides == 2
                    and not inner.padding_free
                )
            ):
                continue
            raise ValueError(
                f"The nested Sequential model {seq.name!r} holds layer {_describe(inner)}, "
                "which convert would have to rewrite, but a nested Sequential is copied as a "
                "whole. Build that part as a functional model (keras.Model(inputs, outputs)) "
                "or convert it on its own."
            )

    def _analyse_node(self, graph, node, layer):
        is_conv = isinstance(
            layer,
            (
                keras.layers.Conv2D,
                keras.layers.DepthwiseConv2D,
                keras.layers.SeparableConv2D,
                HybridStem,
            ),
        )
        if is_conv and not self.stem_seen:
            self.stem_seen = True
            if isinstance(layer, HybridStem):
                if self.hybrid_stem:
                    raise ValueError(
                        f"The model already starts with a HybridStem ({layer.name!r}). Pass "
                        "hybrid_stem=False."
                    )
                return
            if _is_standard_conv(layer):
                if self.hybrid_stem:
                    self._plan_stem(graph, node, layer)
                return  # the stem conv keeps its stride (the paper's downsampling-only form)
        if isinstance(layer, PaddingFreeDWConv):
            self.already_padding_free += 1
            return
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            if _strided(layer):
                self._plan_depthwise(graph, node, layer)
            return
        if isinstance(layer, keras.layers.SeparableConv2D):
            if _strided(layer) and self.standard_convs == "error":
                raise ValueError(
                    f"Found a stride-2 separable convolution, layer {_describe(layer)}. convert "
                    "rewrites DepthwiseConv2D layers; split it into DepthwiseConv2D + 1x1 Conv2D "
                    "to convert it, or pass standard_convs='keep' to leave it padded."
                )
            return
        if _is_standard_conv(layer):
            if _strided(layer):
                self._plan_standard_conv(graph, node, layer)
            return
        if isinstance(layer, ParCConv):
            self._assign(layer, _Role("parc"))
            return
        if isinstance(layer, PyramidDWConv):
            if layer.strides == 2 and not layer.padding_free:
                self._assign(layer, _Role("pyramid"))
            return
        if isinstance(layer, (HybridStem, MaxPoolShortcut)):
            return
        self._check_custom_layer(layer)

    def _check_custom_layer(self, layer):
        if not isinstance(layer, keras.layers.Layer):
            return  # a keras.ops operation of the graph (x + 3.0 in keras' MobileNetV3)
        inner = [
            sub
            for sub in layer._flatten_layers(include_self=False, recursive=True)
            if isinstance(
                sub,
                (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D),
            )
            and _strided(sub)
        ]
        if inner:
            raise ValueError(
                f"Layer {_describe(layer)} has stride-{tuple(inner[0].strides)[0]} convolutions "
                f"inside ({', '.join(repr(s.name) for s in inner)}). convert rewrites the "
                "model's own graph, not the inside of a custom layer: build the model with "
                "DepthwiseConv2D layers in its graph, or use the zoo's padding-free model of that "
                "family (keras_padfree.applications.list_models('*_pf*'))."
            )

    def _absorb_pad(self, graph, tensor, owner):
        """The ZeroPadding2D node producing ``tensor`` if ``owner`` is its only consumer."""
        node = graph.producer_of(tensor)
        if node is None or not isinstance(node.operation, keras.layers.ZeroPadding2D):
            return None
        if graph.only_consumer(tensor) is None:
            raise ValueError(
                f"The ZeroPadding2D layer {node.operation.name!r} before layer "
                f"{_describe(owner)} also feeds other layers, so its padding cannot be removed."
            )
        return node

    def _plan_depthwise(self, graph, node, layer):
        k = tuple(layer.kernel_size)
        if tuple(layer.strides) != (2, 2):
            raise ValueError(
                f"Found layer {_describe(layer)}: padding-free downsampling is defined for stride "
                "(2, 2). Pass a model whose depthwise convs have stride 1 or 2."
            )
        if k[0] != k[1] or k[0] < 3 or k[0] % 2 == 0:
            raise ValueError(
                f"Found layer {_describe(layer)}: padding-free downsampling needs a square, odd "
                "kernel of at least 3x3 (padding (k - 3) // 2 and a 3x3 pool must give the same "
                "map size)."
            )
        if layer.depth_multiplier != 1 or tuple(layer.dilation_rate) != (1, 1):
            raise ValueError(
                f"Found layer {_describe(layer)} with depth_multiplier={layer.depth_multiplier}, "
                f"dilation_rate={tuple(layer.dilation_rate)}: the max-pool shortcut needs "
                "depth_multiplier=1 (same channels in and out) and no dilation."
            )
        if layer.data_format != "channels_last":
            raise ValueError(
                f"Found layer {_describe(layer)} with data_format={layer.data_format!r}: convert "
                "supports channels_last models."
            )
        pad = self._absorb_pad(graph, node.input_tensors[0], layer)
        if pad is not None:
            self._assign(pad.operation, _Role("skip"))
        if any(fnmatch.fnmatch(layer.name, p) for p in self.padding_only):
            self._assign(layer, _Role("padding_only"))
            return
        chain = [layer]
        bn = act = None
        nxt = graph.only_consumer(node.outputs[0])
        if nxt is not None and isinstance(nxt.operation, keras.layers.BatchNormalization):
            bn = nxt.operation
            chain.append(bn)
            nxt = graph.only_consumer(nxt.outputs[0])
            if nxt is not None and isinstance(nxt.operation, _ACTIVATION_LAYERS):
                act = nxt.operation
                chain.append(act)
        fusable = (
            bn is not None
            and _plain_depthwise(layer)
            and _plain_batch_norm(bn)
            and (act is None or _activation_name(act) is not None)
        )
        info = {"pad": pad.operation if pad is not None else None, "bn": bn, "act": act}
        if fusable:
            self._assign(layer, _Role("fused", info))
            for other in chain[1:]:
                self._assign(other, _Role("skip"))
            return
        # Unfused: the layers stay; the shortcut joins after the named position (or the last
        # layer of the chain before it).
        if self.shortcut_position == "before_bn" or bn is None:
            join = layer
        elif self.shortcut_position == "after_bn" or act is None:
            join = bn
        else:
            join = act
        info["join"] = join
        self._assign(layer, _Role("unfused_dw", info))
        if join is not layer:
            self._assign(join, _Role("join", {"dw": layer}))

    def _plan_standard_conv(self, graph, node, layer):
        pointwise = tuple(layer.kernel_size) == (1, 1)
        if pointwise and self.pointwise_shortcuts == "keep":
            return
        if not pointwise and self.standard_convs == "keep":
            return
        if pointwise and self.pointwise_shortcuts == "max_pool":
            cfg = layer.get_config()
            if (
                tuple(layer.strides) != (2, 2)
                or cfg["use_bias"]
                or layer.groups != 1
                or cfg.get("activation") not in (None, "linear")
                or tuple(layer.dilation_rate) != (1, 1)
            ):
                raise ValueError(
                    f"Found layer {_describe(layer)} (use_bias={cfg['use_bias']}, activation="
                    f"{cfg.get('activation')!r}): pointwise_shortcuts='max_pool' replaces a "
                    "stride-(2, 2) 1x1 conv without bias or activation by MaxPoolShortcut(filters) "
                    "with the same kernel. Pass pointwise_shortcuts='keep' to leave it as it is."
                )
            self._assign(layer, _Role("pointwise"))
            return
        what = (
            "a stride-2 1x1 convolution (a projection shortcut)"
            if pointwise
            else "a stride-2 standard convolution, which has no depthwise form"
        )
        option = (
            "pointwise_shortcuts='max_pool' to replace it by a max-pool of the input and the "
            "same 1x1 kernel (PydMobileNet's padding-free shortcut), or "
            "pointwise_shortcuts='keep' to leave it"
            if pointwise
            else "standard_convs='keep' to leave it padded (only the depthwise convs become "
            "padding-free)"
        )
        raise ValueError(
            f"Found layer {_describe(layer)}: {what}. Padding-free downsampling carries trained "
            "weights over only for stride-2 DepthwiseConv2D layers (the max-pool shortcut adds "
            f"none). Options: pass {option}; or train a padding-free model of that architecture "
            "from scratch (the zoo's: keras_padfree.applications.list_models('*pf*'))."
        )

    def _plan_stem(self, graph, node, conv):
        opts = self.stem_options
        strides = tuple(conv.strides)
        if strides[0] != strides[1] or strides[0] not in (1, 2) or conv.groups != 1:
            raise ValueError(
                f"The first convolution, layer {_describe(conv)}, cannot become a HybridStem: it "
                "needs a standard conv with stride 1 or 2. Pass hybrid_stem=False."
            )
        pad = self._absorb_pad(graph, node.input_tensors[0], conv)
        replaced = [conv]
        if pad is not None:
            self._assign(pad.operation, _Role("skip"))
            replaced.insert(0, pad.operation)
        ordering = opts.get("ordering", "post")
        bn = act = None
        last = node
        if ordering == "post":
            nxt = graph.only_consumer(node.outputs[0])
            if nxt is not None and isinstance(nxt.operation, keras.layers.BatchNormalization):
                bn, last = nxt.operation, nxt
                nxt = graph.only_consumer(nxt.outputs[0])
                if nxt is not None and isinstance(nxt.operation, _ACTIVATION_LAYERS):
                    act, last = nxt.operation, nxt
        activation = opts.get("activation")
        if activation is None:
            activation = _activation_name(act) if act is not None else None
            if activation is None:
                found = f"layer {_describe(act)}" if act is not None else "no activation layer"
                raise ValueError(
                    f"The first convolution {conv.name!r} is followed by {found}; the HybridStem "
                    "needs a named activation. Pass stem_options={'activation': 'relu'} (or "
                    "'relu6', 'hard_silu', ...)."
                )
        branch_strides = 1
        if opts.get("replace_pool"):
            pool_pad = None
            nxt = graph.only_consumer(last.outputs[0])
            if nxt is not None and isinstance(nxt.operation, keras.layers.ZeroPadding2D):
                pool_pad = nxt
                nxt = graph.only_consumer(nxt.outputs[0])
            pool = nxt.operation if nxt is not None else None
            if (
                not isinstance(pool, keras.layers.MaxPooling2D)
                or tuple(pool.pool_size) != (3, 3)
                or tuple(pool.strides)[0] not in (1, 2)
            ):
                found = _describe(pool) if pool is not None else "nothing it can replace"
                raise ValueError(
                    "stem_options={'replace_pool': True} replaces a 3x3 max-pool (stride 1 or 2) "
                    f"right after the stem conv, BN and activation; found {found} after "
                    f"{last.operation.name!r}. Pass replace_pool=False."
                )
            branch_strides = tuple(pool.strides)[0]
            for extra in ((pool_pad.operation,) if pool_pad is not None else ()) + (pool,):
                self._assign(extra, _Role("skip"))
            chain_extra = ([pool_pad.operation] if pool_pad is not None else []) + [pool]
        else:
            chain_extra = []
        for other in (bn, act):
            if other is not None:
                self._assign(other, _Role("skip"))
                replaced.append(other)
        replaced += chain_extra
        kwargs = {
            "filters": conv.filters,
            "strides": strides[0],
            "branch_strides": branch_strides,
            "activation": activation,
            "ordering": ordering,
        }
        if bn is not None:
            kwargs["bn_epsilon"] = bn.epsilon
            kwargs["bn_momentum"] = bn.momentum
        for key in ("residual", "first_conv", "bn_epsilon", "bn_momentum"):
            if key in opts:
                kwargs[key] = opts[key]
        for key in ("kernel_initializer", "depthwise_initializer"):
            if key in opts:
                kwargs[key] = keras.initializers.get(copy.deepcopy(opts[key]))
        self._assign(conv, _Role("stem", {"kwargs": kwargs, "replaced": replaced}))

    # -- rebuilding --------------------------------------------------------------------------
    def clone_function(self, layer):
        if isinstance(layer, keras.Model):
            # A nested model is rebuilt in call_function, on inputs of the new (padding-free)
            # shapes: its own Input layers have the old ones.
            self.source_of[id(layer)] = layer
            return layer
        clone = layer.__class__.from_config(layer.get_config())
        self.source_of[id(clone)] = layer
        return clone

    def _call_nested(self, src, args, kwargs):
        if isinstance(src, keras.Sequential):
            layers = [self.clone_function(layer) for layer in src.layers]
            new = keras.Sequential(layers, name=src.name, trainable=src.trainable)
            out = self._call(new, src, args, kwargs)
            self.copies.extend((clone, layer) for clone, layer in zip(layers, src.layers))
            return out
        new_inputs = keras.tree.map_structure(
            lambda t, ref: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=ref.name),
            args[0],
            src.input,
        )
        new = keras.models.clone_model(
            src,
            input_tensors=new_inputs,
            clone_function=self.clone_function,
            call_function=self.call_function,
        )
        return self._call(new, src, args, kwargs)

    def call_function(self, clone, *args, **kwargs):
        src = self.source_of.get(id(clone))
        if isinstance(src, keras.Model):
            return self._call_nested(src, args, kwargs)
        role = self.roles.get(id(src))
        if role is None:
            out = self._call(clone, src, args, kwargs)
            self.copies.append((clone, src))
            return out
        x = args[0]
        if role.kind == "skip":
            return x
        if role.kind == "join":
            out = self._call(clone, src, args, kwargs)
            self.copies.append((clone, src))
            return self._add_shortcut(out, src, role.info["dw"])
        if role.kind == "stem":
            stem = HybridStem(
                name=self.unique("stem"), dtype=src.dtype_policy, **role.info["kwargs"]
            )
            self.stems.append(stem)
            out = self._call(stem, src, (x,), {})
            self.entries.append(("hybrid_stem", role.info["replaced"], stem))
            return out
        if role.kind == "parc":
            new = ParCConv.from_config(src.get_config())
            out = self._call(new, src, args, kwargs)
            self.parcs.append((new, src))
            return out
        if role.kind == "pyramid":
            self._check_map(src, x)
            new = PyramidDWConv.from_config({**src.get_config(), "padding_free": True})
            out = self._call(new, src, args, kwargs)
            self.copies.append((new, src))
            self.entries.append(("pyramid", src, new))
            return out
        if role.kind == "pointwise":
            self._check_map(src, x)
            new = MaxPoolShortcut(
                filters=src.filters,
                kernel_initializer=keras.initializers.get(src.get_config()["kernel_initializer"]),
                name=src.name,
                dtype=src.dtype_policy,
            )
            out = self._call(new, src, (x,), {})
            self.pointwise.append((new, src))
            self.entries.append(("pointwise_max_pool", src, new))
            return out
        self._check_map(src, x)
        k = src.kernel_size[0]
        if role.kind == "padding_only":
            x = self._reduced_pad(x, src)
            new = type(src).from_config({**src.get_config(), "padding": "valid"})
            out = self._call(new, src, (x,), {})
            self.copies.append((new, src))
            self.entries.append(("padding_only", src, new))
            return out
        pool_size, pool_pad = self._pool(k)
        if role.kind == "fused":
            bn, act = role.info["bn"], role.info["act"]
            base = src.name[: -len("_conv")] if src.name.endswith("_conv") else src.name
            new = PaddingFreeDWConv(
                kernel_size=k,
                activation=_activation_name(act) if act is not None else None,
                use_bn=True,
                shortcut_position=self.shortcut_position,
                shortcut_pool_size=pool_size,
                shortcut_padding=pool_pad,
                bn_epsilon=bn.epsilon,
                bn_momentum=bn.momentum,
                depthwise_initializer=keras.initializers.get(
                    src.get_config()["depthwise_initializer"]
                ),
                trainable=src.trainable and bn.trainable and (act is None or act.trainable),
                dtype=src.dtype_policy,
                name=self.unique(f"{base}_pf"),
            )
            out = self._call(new, src, (x,), {})
            self.fused.append((new, src, bn))
            self.entries.append(("padding_free", [role.info["pad"], src, bn, act], new))
            return out
        # unfused_dw
        shortcut = MaxPoolShortcut(
            pool_size=pool_size,
            padding=pool_pad,
            name=self.unique(f"{src.name}_pf_shortcut"),
            dtype=src.dtype_policy,
        )(x)
        x = self._reduced_pad(x, src)
        new = type(src).from_config({**src.get_config(), "padding": "valid"})
        out = self._call(new, src, (x,), {})
        self.copies.append((new, src))
        self.pending[id(role.info["join"])] = shortcut
        self.entries.append(("padding_free_unfused", [role.info["pad"], src], new))
        if role.info["join"] is src:
            return self._add_shortcut(out, src, src)
        return out

    def _pool(self, k):
        if self.shortcut_pool == "kernel":
            return k, (k - 3) // 2
        return 3, 0

    def _reduced_pad(self, x, src):
        p = (src.kernel_size[0] - 3) // 2
        if p == 0:
            return x
        return keras.layers.ZeroPadding2D(
            p, name=self.unique(f"{src.name}_pad"), dtype=src.dtype_policy
        )(x)

    def _add_shortcut(self, out, join, dw):
        shortcut = self.pending.pop(id(join))
        return keras.layers.Add(name=self.unique(f"{dw.name}_pf_add"), dtype=dw.dtype_policy)(
            [out, shortcut]
        )

    def _check_map(self, src, x):
        h, w = _spatial_size(x)
        if any(d is not None and d < 3 for d in (h, w)):
            raise ValueError(
                f"Layer {_describe(src)} receives a {h}x{w} map once the downsamplings before it "
                "are padding-free (each maps H to floor((H - 3) / 2) + 1). Padding-free "
                "downsampling needs at least 3x3 (the 3x3 max-pool shortcut); this input is too "
                "small for the padding-free network. Options: a larger input_shape, or fewer "
                "stride-2 layers converted (padding_only=[...] names the ones to leave without "
                "a pool)."
            )

    @staticmethod
    def _call(layer, src, args, kwargs):
        try:
            return layer(*args, **kwargs)
        except ValueError as e:
            shapes = [tuple(a.shape) for a in args if hasattr(a, "shape")]
            raise ValueError(
                f"Layer {_describe(src)} cannot take the padding-free feature map(s) of shape "
                f"{shapes}: {e}"
            ) from e

    # -- weights -----------------------------------------------------------------------------
    def transfer_weights(self):
        carried = 0
        new_weights, resampled = [], []
        for new, src in self.copies:
            if isinstance(src, keras.layers.Layer):  # not a keras.ops operation
                carried += _copy_all(new.weights, src.weights, src.name)
        for new, dw, bn in self.fused:
            carried += _copy_all([new.depthwise.kernel], [dw.kernel], dw.name)
            carried += _copy_all(new.bn.weights, bn.weights, bn.name)
        for new, src in self.pointwise:
            carried += _copy_all([new.projection.kernel], [src.kernel], src.name)
        for new, src in self.parcs:
            pairs = [(new.kernel, src.kernel, True)]
            if new.pe is not None:
                pairs.append((new.pe, src.pe, False))
            for nv, sv, density in pairs:
                if tuple(nv.shape) == tuple(sv.shape):
                    carried += _copy_all([nv], [sv], src.name)
                elif self.parc_kernels == "resample":
                    axis = 0 if new.direction == "vertical" else 1
                    nv.assign(
                        _resample_circular(
                            keras.ops.convert_to_numpy(sv), axis, nv.shape[axis], density
                        )
                    )
                    resampled.append(nv.path)
                else:
                    new_weights.append(nv.path)
            carried += _copy_all([new.bias], [src.bias], src.name)
            if src.kernel_size != new.kernel_size:
                self.entries.append(("parc", src, new))
        for stem in self.stems:
            new_weights.extend(v.path for v in stem.weights)
        return carried, tuple(new_weights), tuple(resampled)


def _copy_all(new_vars, src_vars, name):
    if len(new_vars) != len(src_vars):
        raise RuntimeError(
            f"Layer {name!r}: {len(src_vars)} weights to carry into {len(new_vars)}."
        )
    for nv, sv in zip(new_vars, src_vars):
        value = keras.ops.convert_to_numpy(sv)
        if tuple(nv.shape) != value.shape:
            raise RuntimeError(
                f"Layer {name!r}: weight {sv.path} of shape {value.shape} cannot "
                f"be carried into {nv.path} of shape {tuple(nv.shape)}."
            )
        nv.assign(value)
    return len(new_vars)


def _resample_circular(values, axis, new_size, density):
    """Area resampling of ``values`` along ``axis``, a circle of ``values.shape[axis]`` taps.

    Tap ``t`` of ``K`` covers the arc ``[t / K, (t + 1) / K)``; new tap ``j`` of ``K'`` covers
    ``[j / K', (j + 1) / K')`` and receives the overlap-weighted old taps. ``density=True`` (a
    kernel) keeps the sum over the axis, ``False`` (an embedding) keeps the mean.
    """
    old_size = values.shape[axis]
    edges_old = np.arange(old_size + 1, dtype=np.float64) / old_size
    edges_new = np.arange(new_size + 1, dtype=np.float64) / new_size
    overlap = np.clip(
        np.minimum(edges_new[1:, None], edges_old[None, 1:])
        - np.maximum(edges_new[:-1, None], edges_old[None, :-1]),
        0.0,
        None,
    )
    weights = overlap * (old_size if density else new_size)  # (K', K)
    moved = np.moveaxis(values.astype(np.float64), axis, 0)
    out = np.tensordot(weights, moved, axes=(1, 0))
    return np.moveaxis(out, 0, axis).astype(values.dtype)


def _entry(kind, source, new):
    sources = source if isinstance(source, (list, tuple)) else [source]
    names = tuple(s.name for s in sources if s is not None)
    return ConvertedLayer(kind=kind, source=names, new=(new.name,))


# --------------------------------------------------------------------------------------------------
# Public entry point.


def convert(
    model: keras.Model,
    *,
    shortcut_position: str = "after_activation",
    shortcut_pool: str = "3x3",
    hybrid_stem: bool = False,
    stem_options: dict | None = None,
    padding_only=(),
    pointwise_shortcuts: str = "error",
    standard_convs: str = "error",
    parc_kernels: str = "resample",
    name: str | None = None,
    return_report: bool = False,
):
    """Rewrites a Keras functional CNN into its padding-free version, carrying its weights.

    See the module docstring for what is rewritten. Every other layer is cloned from its config and
    receives the source's weights bit for bit; so do the depthwise kernels and BN statistics of the
    converted downsamplings (inside :class:`PaddingFreeDWConv`), the kernels of padding-free
    pyramids and pooled 1x1 shortcuts. The source model is not modified.

    Args:
        model: a functional `keras.Model` (or a built `keras.Sequential`). Nested functional
            models are converted inside; nested Sequential models are copied layer by layer (they
            must need no rewrite themselves). Nested models are rebuilt on the new, smaller
            feature maps; a nested model called more than once is refused.
        shortcut_position: where the max-pool of the conv's input joins: "after_activation"
            (``act(BN(dw(x))) + pool(x)``; MobileNetV2/V3, ParC, BSConv), "after_bn"
            (``act(BN(dw(x)) + pool(x))``; GhostNet) or "before_bn" (``act(BN(dw(x) + pool(x)))``;
            ShuffleNetV2). Without a BN (or activation) after the conv, the shortcut joins after
            the last of them that exists.
        shortcut_pool: the pool of convs larger than 3x3: "3x3" (3x3/2/0, the paper's MobileNetV3
            reference) or "kernel" (k x k / 2 / (k - 3) // 2: 5x5/2/1 as GhostNet's reference).
            Both give the padding-free conv's map size; 3x3 convs always get 3x3/2/0.
        hybrid_stem: also replace the first convolution by a :class:`HybridStem` (filters and
            stride of that conv; activation and BN settings of the BN and activation after it,
            unless ``stem_options`` sets them). Its weights are new.
        stem_options: HybridStem settings: any of "activation", "residual", "ordering",
            "first_conv", "bn_epsilon", "bn_momentum", "kernel_initializer",
            "depthwise_initializer", and "replace_pool" (True: the 3x3 max-pool right after the
            stem becomes the stem's branch stride, as ShuffleNetV2's). With ``ordering="pre"``
            only the conv is replaced (a pre-activation stem).
        padding_only: glob patterns (or names) of stride-2 depthwise convs that get the reduced
            padding but no pool shortcut (GhostNet's conv shortcut: "*_shortcut_dw_conv").
        pointwise_shortcuts: what to do with a stride-2 1x1 conv: "error" (default), "keep" (leave
            it) or "max_pool" (``MaxPoolShortcut(filters)`` with the same 1x1 kernel).
        standard_convs: what to do with a stride-2 standard (k > 1) conv other than the first
            convolution: "error" (default; it has no depthwise form) or "keep" (leave it padded).
        parc_kernels: ParC global kernels whose map size changes: "resample" or "reinitialize".
        name: name of the new model (default: the source's name + "_pf").
        return_report: also return a :class:`ConversionReport`.

    Returns:
        The new functional `keras.Model`, or ``(model, report)`` with ``return_report=True``.

    Raises:
        ValueError: for a model convert cannot rewrite (the message names the layer, its class,
            kernel and stride, and the options), or a bad argument.
    """
    _check_choice(shortcut_position, "shortcut_position", SHORTCUT_POSITIONS)
    _check_choice(shortcut_pool, "shortcut_pool", SHORTCUT_POOLS)
    _check_choice(pointwise_shortcuts, "pointwise_shortcuts", POINTWISE_SHORTCUTS)
    _check_choice(standard_convs, "standard_convs", STANDARD_CONVS)
    _check_choice(parc_kernels, "parc_kernels", PARC_KERNELS)
    if not isinstance(hybrid_stem, bool):
        raise ValueError(
            f"Argument `hybrid_stem` must be True or False. Received: hybrid_stem={hybrid_stem!r}."
        )
    if stem_options is None:
        stem_options = {}
    if not isinstance(stem_options, dict) or any(k not in STEM_OPTION_KEYS for k in stem_options):
        raise ValueError(
            f"Argument `stem_options` must be a dict with keys among {list(STEM_OPTION_KEYS)}. "
            f"Received: stem_options={stem_options!r}."
        )
    if isinstance(padding_only, str):
        padding_only = (padding_only,)
    if not isinstance(padding_only, (list, tuple)) or not all(
        isinstance(p, str) for p in padding_only
    ):
        raise ValueError(
            "Argument `padding_only` must be a list of layer names or glob patterns. "
            f"Received: padding_only={padding_only!r}."
        )
    if name is not None and not isinstance(name, str):
        raise ValueError(f"Argument `name` must be a string or None. Received: name={name!r}.")
    model = _functional_source(model)

    converter = _Converter(
        model,
        shortcut_position=shortcut_position,
        shortcut_pool=shortcut_pool,
        hybrid_stem=hybrid_stem,
        stem_options=stem_options,
        padding_only=tuple(padding_only),
        pointwise_shortcuts=pointwise_shortcuts,
        standard_convs=standard_convs,
        parc_kernels=parc_kernels,
    )
    converter._collect_names(model)
    converter.analyse(_Graph(model))
    downsamplings = [
        r
        for r in converter.roles.values()
        if r.kind in ("fused", "unfused_dw", "padding_only", "pyramid", "pointwise")
    ]
    if not downsamplings and not any(r.kind == "stem" for r in converter.roles.values()):
        already = (
            f" It already has {converter.already_padding_free} PaddingFreeDWConv layers: "
            "it is padding-free."
            if converter.already_padding_free
            else ""
        )
        raise ValueError(
            f"Model {model.name!r} has no stride-2 DepthwiseConv2D (or PyramidDWConv) to make "
            f"padding-free, and hybrid_stem is False: there is nothing to convert.{already}"
        )

    new_model = keras.models.clone_model(
        model,
        clone_function=converter.clone_function,
        call_function=converter.call_function,
    )
    new_model.name = name or f"{model.name}_pf"
    carried, new_weights, resampled = converter.transfer_weights()
    if not return_report:
        return new_model
    report = ConversionReport(
        layers=tuple(_entry(kind, source, new) for kind, source, new in converter.entries),
        carried_weights=carried,
        new_weights=new_weights,
        resampled_weights=resampled,
    )
    return new_model, report


def _functional_source(model):
    if isinstance(model, keras.Sequential):
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError):
            inputs = outputs = None
        if not inputs or not outputs:
            raise ValueError(
                f"The Sequential model {model.name!r} has no input shape yet, so it has no graph "
                "to rewrite. Build it with an input (keras.Input(shape) as its first layer) or "
                f"call it once. Received: model={model.name!r} (unbuilt Sequential)."
            )
        return keras.Model(
            inputs[0] if len(inputs) == 1 else inputs,
            outputs[0] if len(outputs) == 1 else outputs,
            name=model.name,
        )
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Argument `model` must be a functional keras.Model (or a built keras.Sequential). "
            f"Received: model of type {type(model).__name__}."
        )
    if not _is_functional(model):
        raise ValueError(
            "Argument `model` must be a functional keras.Model (built from inputs and outputs) "
            "or a built keras.Sequential: convert rewrites the layer graph, which a subclassed "
            f"model does not expose. Received: a subclassed model of class "
            f"{type(model).__name__} named {model.name!r}. Rebuild it functionally, e.g. "
            "keras.Model(inputs, outputs)."
        )
    return model
