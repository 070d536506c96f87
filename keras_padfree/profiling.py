"""Parameter and FLOP counting for Keras models, in the conventions the papers used.

The counter is analytic: it walks a functional model's graph, asks every layer what it computes
(a list of :class:`Op` records: "a conv of N multiply-accumulates with a bias on M outputs", "a
BatchNorm over E elements", ...), and prices each record under a *convention*. Keras layers are
described here; the project's own layers describe themselves through a ``profile_ops(input_shape)``
method (composite layers delegate to :func:`layer_ops` for their sub-layers).

Conventions (``CONVENTIONS``):

``"macs"`` (default)
    Multiply-accumulates of convolutions, dense layers and matrix products; no bias, nothing else.
    What users mean by "FLOPs" of a mobile network, and what the PydMobileNet and cheap-operation
    tables use (``conv_fc_macs`` / ``conv_linear_macs``).
``"bsconv_profile"``
    The BSConv library's ``ModelProfiler`` (the paper's first table): conv and dense MACs plus one
    per
    biased output, 2 per element for affine BatchNorm, 1 per element for ReLU modules, 1 per *input*
    element for every pooling module; nothing for h-swish, h-sigmoid, ReLU6, additions,
    concatenations or the SE multiply.
``"thop_0.0.31"``
    thop 0.0.31 (the paper's second table, ablations, VegFru): conv MACs plus one per biased output,
    2 per BatchNorm element, dense MACs without bias, (pooled area + 1) per output of an adaptive
    average-pool module, 1 per output of an AvgPool module; zero for activations, max-pools and all
    functional operations. It counts the parameters of executed leaf modules only, so weights the
    reference held as bare ``nn.Parameter`` (ParC positional embeddings, attention bias tables) are
    left out: layers list those in ``functional_weights``.

Whether an operation was a *module* or a *functional call* in the reference code matters to the two
module-based counters; layers that reproduce a functional call mark their record ``module=False``.
"""

import dataclasses
import math

import keras

__all__ = [
    "CONVENTIONS",
    "Op",
    "LayerProfile",
    "ModelProfile",
    "count_params",
    "count_flops",
    "layer_ops",
    "normalize_convention",
    "profile_model",
]


@dataclasses.dataclass(frozen=True)
class Op:
    """One primitive operation of a layer, for one input image.

    Attributes:
        kind: "conv", "dense", "matmul", "bn", "act", "pool", "global_pool" or "elementwise".
        macs: multiply-accumulates (conv, dense, matmul), without bias.
        bias: number of outputs that receive a bias (conv, dense).
        elems_in: input elements (bn, act, pool).
        elems_out: output elements (pool, global_pool, elementwise).
        detail: activation name for "act" ("relu", "relu6", "hard_silu", ...), "max" or "avg" for
            pools, the operation for "elementwise" ("add", "mul", "concat").
        affine: for "bn", whether it has a learned scale and offset.
        module: False when the reference computed this with a functional call rather than a module.
    """

    kind: str
    macs: int = 0
    bias: int = 0
    elems_in: int = 0
    elems_out: int = 0
    detail: str = ""
    affine: bool = True
    module: bool = True


def _macs(op):
    return op.macs if op.kind in ("conv", "dense", "matmul") else 0


def _bsconv_profile(op):
    if not op.module:
        return 0
    if op.kind in ("conv", "dense"):
        return op.macs + op.bias
    if op.kind == "bn":
        return (2 if op.affine else 1) * op.elems_in
    if op.kind == "act":
        return op.elems_in if op.detail == "relu" else 0
    if op.kind in ("pool", "global_pool"):
        return op.elems_in
    return 0


def _thop_0_0_31(op):
    if op.kind == "conv":
        return op.macs + op.bias
    if op.kind == "dense":
        return op.macs
    if not op.module:
        return 0
    if op.kind == "bn":
        return 2 * op.elems_in
    if op.kind == "global_pool" and op.detail == "avg":
        area = op.elems_in // max(op.elems_out, 1)
        return (area + 1) * op.elems_out
    if op.kind == "pool" and op.detail == "avg":
        return op.elems_out
    return 0


@dataclasses.dataclass(frozen=True)
class _Convention:
    name: str
    price: object
    leaf_params_only: bool
    description: str


CONVENTIONS = {
    "macs": _Convention(
        "macs", _macs, False, "conv, dense and matmul multiply-accumulates, no bias"
    ),
    "bsconv_profile": _Convention(
        "bsconv_profile", _bsconv_profile, False, "BSConv library ModelProfiler (paper table 1)"
    ),
    "thop_0.0.31": _Convention(
        "thop_0.0.31", _thop_0_0_31, True, "thop 0.0.31 (paper's second set, ablations, VegFru)"
    ),
}

_ALIASES = {
    "conv_fc_macs": "macs",
    "conv_linear_macs": "macs",
    "mac": "macs",
    "thop": "thop_0.0.31",
    "bsconv": "bsconv_profile",
}


def normalize_convention(convention):
    """Maps a convention name (or a reference table's label) to a key of ``CONVENTIONS``."""
    if not isinstance(convention, str):
        raise ValueError(
            f"Argument `convention` must be a string, one of {sorted(CONVENTIONS)}. "
            f"Received: convention={convention!r}."
        )
    key = convention.split(" ")[0].strip()
    key = _ALIASES.get(key, key)
    if key not in CONVENTIONS:
        raise ValueError(
            f"Argument `convention` must be one of {sorted(CONVENTIONS)} "
            f"(aliases {sorted(_ALIASES)}). Received: convention={convention!r}."
        )
    return key


# --------------------------------------------------------------------------------------------------
# What Keras layers compute.


def _prod(shape):
    return int(math.prod(int(d) for d in shape))


def _elems(shape):
    """Elements of one sample of a shape with a leading batch axis."""
    return _prod(shape[1:])


def _conv_ops(layer, input_shape, output_shape):
    kernel_shape = tuple(layer.kernel.shape)  # (kh, kw, cin / groups, cout)
    spatial_out = _prod(output_shape[1:-1])
    macs = spatial_out * _prod(kernel_shape)
    bias = _elems(output_shape) if layer.use_bias else 0
    return [Op("conv", macs=macs, bias=bias)]


def _depthwise_ops(layer, input_shape, output_shape):
    kernel_shape = tuple(layer.kernel.shape)  # (kh, kw, cin, depth_multiplier)
    spatial_out = _prod(output_shape[1:-1])
    macs = spatial_out * _prod(kernel_shape)
    bias = _elems(output_shape) if layer.use_bias else 0
    return [Op("conv", macs=macs, bias=bias)]


def _separable_ops(layer, input_shape, output_shape):
    dw_shape = tuple(layer.depthwise_kernel.shape)
    pw_shape = tuple(layer.pointwise_kernel.shape)
    spatial_out = _prod(output_shape[1:-1])
    bias = _elems(output_shape) if layer.use_bias else 0
    return [
        Op("conv", macs=spatial_out * _prod(dw_shape)),
        Op("conv", macs=spatial_out * _prod(pw_shape), bias=bias),
    ]


def _dense_ops(layer, input_shape, output_shape):
    rows = _prod(input_shape[1:-1]) if len(input_shape) > 2 else 1
    units = int(output_shape[-1])
    macs = rows * int(input_shape[-1]) * units
    bias = rows * units if layer.use_bias else 0
    return [Op("dense", macs=macs, bias=bias)]


def _bn_ops(layer, input_shape, output_shape):
    return [Op("bn", elems_in=_elems(input_shape), affine=bool(layer.center or layer.scale))]


def _relu_ops(layer, input_shape, output_shape):
    max_value = getattr(layer, "max_value", None)
    name = "relu6" if max_value is not None and float(max_value) == 6.0 else "relu"
    return [Op("act", elems_in=_elems(input_shape), detail=name)]


def _activation_ops(layer, input_shape, output_shape):
    fn = layer.activation
    name = getattr(fn, "__name__", str(fn))
    name = {"_gelu_exact": "gelu", "hard_swish": "hard_silu"}.get(name, name)
    if name == "linear":
        return []
    return [Op("act", elems_in=_elems(input_shape), detail=name)]


def _pool_ops(kind):
    def ops_fn(layer, input_shape, output_shape):
        return [
            Op("pool", elems_in=_elems(input_shape), elems_out=_elems(output_shape), detail=kind)
        ]

    return ops_fn


def _global_pool_ops(kind):
    def ops_fn(layer, input_shape, output_shape):
        channels = int(input_shape[-1])
        return [Op("global_pool", elems_in=_elems(input_shape), elems_out=channels, detail=kind)]

    return ops_fn


def _elementwise_ops(kind):
    def ops_fn(layer, input_shape, output_shape):
        return [Op("elementwise", elems_out=_elems(output_shape), detail=kind, module=False)]

    return ops_fn


def _free_ops(layer, input_shape, output_shape):
    return []


_KERAS_LAYER_OPS = {
    keras.layers.Conv2D: _conv_ops,
    keras.layers.DepthwiseConv2D: _depthwise_ops,
    keras.layers.SeparableConv2D: _separable_ops,
    keras.layers.Dense: _dense_ops,
    keras.layers.BatchNormalization: _bn_ops,
    keras.layers.ReLU: _relu_ops,
    keras.layers.Activation: _activation_ops,
    keras.layers.MaxPooling2D: _pool_ops("max"),
    keras.layers.AveragePooling2D: _pool_ops("avg"),
    keras.layers.GlobalAveragePooling2D: _global_pool_ops("avg"),
    keras.layers.GlobalMaxPooling2D: _global_pool_ops("max"),
    keras.layers.Add: _elementwise_ops("add"),
    keras.layers.Subtract: _elementwise_ops("sub"),
    keras.layers.Multiply: _elementwise_ops("mul"),
    keras.layers.Concatenate: _elementwise_ops("concat"),
    keras.layers.InputLayer: _free_ops,
    keras.layers.ZeroPadding2D: _free_ops,
    keras.layers.Flatten: _free_ops,
    keras.layers.Reshape: _free_ops,
    keras.layers.Permute: _free_ops,
    keras.layers.Dropout: _free_ops,
    keras.layers.Identity: _free_ops,
    keras.layers.Rescaling: _free_ops,
    keras.layers.Normalization: _free_ops,
    keras.layers.Softmax: _free_ops,
}


def _as_shape(shape):
    return tuple(1 if d is None else int(d) for d in shape)


def _normalize_input_shape(input_shape):
    if (
        isinstance(input_shape, (list, tuple))
        and input_shape
        and isinstance(input_shape[0], (list, tuple))
    ):
        return [_as_shape(s) for s in input_shape]
    return _as_shape(input_shape)


def layer_ops(layer, input_shape):
    """The :class:`Op` records of one call of ``layer`` on ``input_shape`` (batch axis included).

    Composite layers of this project call this for each of their sub-layers.
    """
    input_shape = _normalize_input_shape(input_shape)
    if hasattr(layer, "profile_ops"):
        return list(layer.profile_ops(input_shape))
    for cls in type(layer).__mro__:
        fn = _KERAS_LAYER_OPS.get(cls)
        if fn is not None:
            first_in = input_shape[0] if isinstance(input_shape, list) else input_shape
            output_shape = layer.compute_output_shape(input_shape)
            if isinstance(output_shape, list):
                output_shape = output_shape[0]
            return fn(layer, first_in, _as_shape(output_shape))
    raise ValueError(
        f"The profiler does not know what layer {layer.name!r} of type {type(layer).__name__} "
        "computes. Give the layer a `profile_ops(input_shape)` method returning "
        "`keras_padfree.profiling.Op` records, or build the model from Keras layers the profiler "
        "knows: "
        f"{sorted(c.__name__ for c in _KERAS_LAYER_OPS)}."
    )


# --------------------------------------------------------------------------------------------------
# Walking a model.


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    """One call of one layer: its shapes, its parameters and its FLOPs under a convention."""

    name: str
    class_name: str
    input_shape: object
    output_shape: object
    params: int
    flops: int


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    name: str
    convention: str
    input_shape: tuple
    layers: tuple
    params: int
    flops: int

    def table(self):
        """A per-layer text table, like the reference's per-layer dumps."""
        lines = [
            f"{'layer':48s} {'class':24s} {'output':22s} {'params':>12s} {'flops':>14s}",
        ]
        for row in self.layers:
            lines.append(
                f"{row.name[:48]:48s} {row.class_name[:24]:24s} {str(row.output_shape)[:22]:22s} "
                f"{row.params:12,d} {row.flops:14,d}"
            )
        lines.append(f"{'total':48s} {'':24s} {'':22s} {self.params:12,d} {self.flops:14,d}")
        return "\n".join(lines)


def _trainable_count(layer, leaf_params_only):
    excluded = set()
    if leaf_params_only:
        for sub in _all_sublayers(layer):
            for w in getattr(sub, "functional_weights", ()) or ():
                excluded.add(id(w))
    total = 0
    for w in layer.trainable_weights:
        if id(w) not in excluded:
            total += _prod(w.shape)
    return total


def _all_sublayers(layer):
    seen = [layer]
    if hasattr(layer, "_flatten_layers"):
        seen = list(layer._flatten_layers(include_self=True, recursive=True))
    return seen


def _node_shapes(node):
    ins = [tuple(t.shape) for t in node.input_tensors]
    outs = [tuple(t.shape) for t in node.outputs]
    return ins, outs


def _walk(model, prefix=""):
    """Yields (path, layer, input_shapes) for every layer call of a functional model, in order."""
    if isinstance(model, keras.Sequential):
        model = model._functional
    if not isinstance(model, keras.Model) or not hasattr(model, "_operations"):
        raise ValueError(
            "The profiler walks functional models (keras.Model built from inputs and outputs, or "
            f"Sequential). Received: {type(model).__name__} named {getattr(model, 'name', None)!r}."
        )
    nodes_in_model = set()
    for depth_nodes in model._nodes_by_depth.values():
        for node in depth_nodes:
            nodes_in_model.add(id(node))
    for layer in model._operations:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for node in layer._inbound_nodes:
            if id(node) not in nodes_in_model:
                continue
            ins, _ = _node_shapes(node)
            path = f"{prefix}{layer.name}"
            if (
                isinstance(layer, keras.Model)
                and hasattr(layer, "_operations")
                and not hasattr(layer, "profile_ops")
            ):
                yield from _walk(layer, prefix=path + "/")
            else:
                yield path, layer, ins


def profile_model(model, convention="macs"):
    """Profiles a built functional model for one input image.

    Args:
        model: a functional `keras.Model` (or Sequential) with a static input shape.
        convention: a key of ``CONVENTIONS`` (or an alias: ``"conv_fc_macs"``, ``"thop"``, ...).

    Returns:
        A :class:`ModelProfile` with one :class:`LayerProfile` per layer call.
    """
    key = normalize_convention(convention)
    conv = CONVENTIONS[key]
    input_shape = tuple(model.inputs[0].shape) if model.inputs else ()
    for d in input_shape[1:]:
        if d is None:
            raise ValueError(
                "Profiling needs a static input shape; the model's input is "
                f"{input_shape}. Build it with a full `input_shape`, e.g. (224, 224, 3)."
            )
    rows = []
    total_flops = 0
    counted = set()
    total_params = 0
    for path, layer, ins in _walk(model):
        shape = ins if len(ins) > 1 else ins[0]
        ops = layer_ops(layer, shape)
        flops = int(sum(conv.price(op) for op in ops))
        if id(layer) in counted:
            params = 0
        else:
            counted.add(id(layer))
            params = _trainable_count(layer, conv.leaf_params_only)
        try:
            out_shape = layer.compute_output_shape(_normalize_input_shape(shape))
        except Exception:  # noqa: BLE001 - informative only
            out_shape = None
        rows.append(
            LayerProfile(
                path, type(layer).__name__, _normalize_input_shape(shape), out_shape, params, flops
            )
        )
        total_flops += flops
        total_params += params
    return ModelProfile(model.name, key, input_shape, tuple(rows), total_params, total_flops)


def count_flops(model, convention="macs"):
    """FLOPs of one forward pass of one image under ``convention`` (see the module docstring)."""
    return profile_model(model, convention).flops


def count_params(model, convention="macs"):
    """Trainable parameters; under ``"thop_0.0.31"`` without the layers' ``functional_weights``."""
    key = normalize_convention(convention)
    return sum(_trainable_count(layer, CONVENTIONS[key].leaf_params_only) for layer in model.layers)
