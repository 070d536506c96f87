"""Reading and writing MXNet ``.params`` files (the NDArray-list format) with NumPy only.

MXNet's ``mx.nd.save`` / Gluon ``export`` write a little-endian binary list of named arrays:

* header: ``uint64 0x112`` (list magic), ``uint64 0`` (reserved), ``uint64 n`` (number of arrays);
* each array: ``uint32 0xF993FAC9`` (NDArray v2 magic), ``int32`` storage type (0 = dense),
  ``uint32 ndim``, ``int64 dims[ndim]``, ``int32 dev_type``, ``int32 dev_id``, ``int32`` dtype flag,
  then the raw little-endian data (C order);
* ``uint64 m`` names (``m == n``, or 0 for an unnamed list), each ``uint64 length`` + UTF-8 bytes.

Gluon names its tensors ``arg:<block prefix>/<param>`` (trainable and fixed parameters) and
``aux:<block prefix>/<running_mean|running_var>`` (BatchNorm statistics). No MXNet install is
needed.

>>> arrays = read_params("cifar10_pydmobilenet29_0.25_concat-0000.params")  # doctest: +SKIP
>>> write_params("copy.params", arrays)  # doctest: +SKIP
"""

import os
import struct

import keras
import numpy as np

__all__ = [
    "load_mxnet_params",
    "mxnet_param_names",
    "read_params",
    "save_mxnet_params",
    "write_params",
]

CLASSIFIER_NAME = "predictions"

LIST_MAGIC = 0x112
NDARRAY_V2_MAGIC = 0xF993FAC9
NDARRAY_V1_MAGIC = 0xF993FAC8
DENSE_STORAGE = 0
CPU_DEV_TYPE = 1

# MXNet's mshadow type flags.
_DTYPE_FLAGS = {
    0: np.float32,
    1: np.float64,
    2: np.float16,
    3: np.uint8,
    4: np.int32,
    5: np.int8,
    6: np.int64,
}
_FLAG_OF_DTYPE = {np.dtype(v): k for k, v in _DTYPE_FLAGS.items()}


class _Reader:
    def __init__(self, data, path):
        self.data = data
        self.offset = 0
        self.path = path

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise ValueError(
                f"The MXNet params file {self.path!r} ends early (truncated at byte "
                f"{len(self.data)}, needed {self.offset + size})."
            )
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return values

    def take_bytes(self, count):
        if self.offset + count > len(self.data):
            raise ValueError(
                f"The MXNet params file {self.path!r} ends early (truncated at byte "
                f"{len(self.data)}, needed {self.offset + count})."
            )
        out = self.data[self.offset : self.offset + count]
        self.offset += count
        return out


def _read_array(reader, index):
    (magic,) = reader.take("<I")
    if magic == NDARRAY_V2_MAGIC:
        (storage,) = reader.take("<i")
        if storage != DENSE_STORAGE:
            raise ValueError(
                f"The MXNet params file {reader.path!r}: array #{index} has storage type "
                f"{storage}; "
                "only dense arrays (storage type 0) are supported."
            )
        (ndim,) = reader.take("<I")
        dims = reader.take(f"<{ndim}q") if ndim else ()
    elif magic == NDARRAY_V1_MAGIC:
        (ndim,) = reader.take("<I")
        dims = reader.take(f"<{ndim}q") if ndim else ()
    else:
        raise ValueError(
            f"The MXNet params file {reader.path!r}: array #{index} starts with magic "
            f"0x{magic:08X}, expected 0x{NDARRAY_V2_MAGIC:08X}. Not an MXNet NDArray file."
        )
    if ndim == 0:
        return np.zeros((0,), np.float32)
    reader.take("<ii")  # dev_type, dev_id: the arrays are loaded on the CPU anyway.
    (flag,) = reader.take("<i")
    if flag not in _DTYPE_FLAGS:
        raise ValueError(
            f"The MXNet params file {reader.path!r}: array #{index} has unknown dtype flag {flag}."
        )
    dtype = np.dtype(_DTYPE_FLAGS[flag]).newbyteorder("<")
    count = int(np.prod(dims))
    raw = reader.take_bytes(count * dtype.itemsize)
    return (
        np.frombuffer(raw, dtype=dtype, count=count).reshape(dims).astype(dtype.newbyteorder("="))
    )


def read_params(path):
    """Reads an MXNet ``.params`` (NDArray list) file.

    Args:
        path: the file.

    Returns:
        ``dict`` name -> ``np.ndarray`` in file order (names as stored, e.g.
        ``"arg:.../conv0_weight"``
        and ``"aux:.../batchnorm0_running_mean"``).

    Raises:
        ValueError: the file is not an MXNet NDArray list, is truncated, has trailing bytes, holds
            sparse arrays, or has no names.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Argument `path` must be an existing file. Received: path={path!r}.")
    with open(path, "rb") as f:
        data = f.read()
    reader = _Reader(data, path)
    magic, _reserved = reader.take("<QQ")
    if magic != LIST_MAGIC:
        raise ValueError(
            f"The file {path!r} is not an MXNet .params file: it starts with 0x{magic:X}, expected "
            f"0x{LIST_MAGIC:X}."
        )
    (count,) = reader.take("<Q")
    arrays = [_read_array(reader, i) for i in range(count)]
    (name_count,) = reader.take("<Q")
    if name_count != count:
        raise ValueError(
            f"The MXNet params file {path!r} holds {count} arrays but {name_count} names; only "
            "named "
            "parameter files (as Gluon saves them) can be mapped onto a model."
        )
    names = []
    for _ in range(name_count):
        (length,) = reader.take("<Q")
        names.append(reader.take_bytes(length).decode("utf-8"))
    if reader.offset != len(data):
        raise ValueError(
            f"The MXNet params file {path!r} has {len(data) - reader.offset} unexpected trailing "
            "bytes."
        )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"The MXNet params file {path!r} holds the name {dup!r} twice.")
    return dict(zip(names, arrays))


def write_params(path, arrays):
    """Writes ``arrays`` (name -> array-like) as an MXNet ``.params`` file MXNet can load.

    Arrays are stored dense, on "cpu(0)", in their own dtype (float32, float64, float16, uint8,
    int8, int32 or int64); other dtypes raise ValueError.
    """
    path = os.fspath(path)
    if not isinstance(arrays, dict):
        raise ValueError(
            "Argument `arrays` must be a dict of name -> array. "
            f"Received: arrays of type {type(arrays).__name__}."
        )
    chunks = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise ValueError(f"Every name in `arrays` must be a string. Received: {name!r}.")
        a = np.asarray(value)
        if a.dtype not in _FLAG_OF_DTYPE:
            raise ValueError(
                f"Array {name!r} has dtype {a.dtype}; MXNet params hold "
                f"{sorted(str(d) for d in _FLAG_OF_DTYPE)}."
            )
        if a.ndim == 0:
            a = a.reshape(1)
        chunks.append(struct.pack("<IiI", NDARRAY_V2_MAGIC, DENSE_STORAGE, a.ndim))
        chunks.append(struct.pack(f"<{a.ndim}q", *a.shape))
        chunks.append(struct.pack("<iii", CPU_DEV_TYPE, 0, _FLAG_OF_DTYPE[a.dtype]))
        chunks.append(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    chunks.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        encoded = name.encode("utf-8")
        chunks.append(struct.pack("<Q", len(encoded)))
        chunks.append(encoded)
    with open(path, "wb") as f:
        f.write(b"".join(chunks))


# --------------------------------------------------------------------------------------------------
# The authors' tensor names <-> the layers of a PydMobileNet built by this package.

_BN_PARAMS = (
    ("arg", "gamma", "gamma"),
    ("arg", "beta", "beta"),
    ("aux", "running_mean", "moving_mean"),
    ("aux", "running_var", "moving_variance"),
)


def _bn_entries(model, layer_name, mx_name):
    layer = model.get_layer(layer_name)
    entries = []
    for kind, mx_param, attr in _BN_PARAMS:
        var = getattr(layer, attr, None)
        entries.append((f"{kind}:{mx_name}_{mx_param}", layer, attr, var, "vector"))
    return entries


def _conv_entries(model, layer_name, mx_name, layout="conv", layer=None):
    layer = layer if layer is not None else model.get_layer(layer_name)
    entries = [(f"arg:{mx_name}_weight", layer, "kernel", layer.kernel, layout)]
    if getattr(layer, "use_bias", False):
        entries.append((f"arg:{mx_name}_bias", layer, "bias", layer.bias, "vector"))
    return entries


def _mxnet_entries(model):
    """(mxnet name without prefix, layer, attribute, keras variable or None, layout) per tensor."""
    names = {layer.name for layer in model.layers}
    if "stem" in names:
        raise ValueError(
            f"Model {model.name!r} is a padding-free PydMobileNetPF; no MXNet layout exists for "
            "its "
            "hybrid stem."
        )
    if "stem_conv" not in names or "stem_bn" not in names:
        raise ValueError(
            f"Model {model.name!r} is not a PydMobileNet / baseline built by this module (no "
            "'stem_bn'/'stem_conv' layers)."
        )
    e = _bn_entries(model, "stem_bn", "conv0/batchnorm0")
    e += _conv_entries(model, "stem_conv", "conv0/conv0")
    s = 1
    while f"stage{s}_block1_pre_bn" in names:
        b = 1
        while f"stage{s}_block{b}_pre_bn" in names:
            p = f"stage{s}_block{b}_"
            mx = f"stg{s - 1}/blk{b - 1}/"
            if f"{p}pyramid" in names:
                e += _bn_entries(model, f"{p}pre_bn", f"{mx}btl_in/batchnorm0")
                e += _conv_entries(model, f"{p}expand", f"{mx}btl_in/conv0")
                e += _bn_entries(model, f"{p}expand_bn", f"{mx}btl_in/batchnorm1")
                pyramid = model.get_layer(f"{p}pyramid")
                for k, branch in zip(pyramid.kernel_sizes, pyramid.branches):
                    e += _conv_entries(model, None, f"{mx}conv{k}/conv0", "depthwise", branch)
                e += _bn_entries(model, f"{p}dw_bn", f"{mx}btl_out/batchnorm0")
                e += _conv_entries(model, f"{p}project", f"{mx}btl_out/conv0")
                e += _bn_entries(model, f"{p}project_bn", f"{mx}btl_out/batchnorm1")
            else:
                spatial = f"{p}dw" if f"{p}dw" in names else f"{p}conv"
                layout = "depthwise" if spatial.endswith("dw") else "conv"
                e += _bn_entries(model, f"{p}pre_bn", f"{mx}body/batchnorm0")
                e += _conv_entries(model, f"{p}expand", f"{mx}body/conv0")
                e += _bn_entries(model, f"{p}expand_bn", f"{mx}body/batchnorm1")
                e += _conv_entries(model, spatial, f"{mx}body/conv1", layout)
                e += _bn_entries(model, f"{p}dw_bn", f"{mx}body/batchnorm2")
                e += _conv_entries(model, f"{p}project", f"{mx}body/conv2")
                e += _bn_entries(model, f"{p}project_bn", f"{mx}body/batchnorm3")
            if f"{p}shortcut" in names:
                e += _conv_entries(model, f"{p}shortcut", f"{mx}conv0")
                e += _bn_entries(model, f"{p}shortcut_bn", f"{mx}batchnorm0")
            b += 1
        s += 1
    if "head_conv" in names:
        e += _bn_entries(model, "head_bn", "classifier/batchnorm0")
        e += _conv_entries(model, "head_conv", "classifier/conv0")
    if CLASSIFIER_NAME in names:
        e += _conv_entries(model, CLASSIFIER_NAME, "classifier/dense0", "dense")
    return e


def _to_mxnet(value, layout):
    if layout == "conv":  # HWIO -> OIHW
        return np.transpose(value, (3, 2, 0, 1))
    if layout == "depthwise":  # (k, k, C, 1) -> (C, 1, k, k)
        return np.transpose(value, (2, 3, 0, 1))
    if layout == "dense":  # (in, out) -> (out, in)
        return np.transpose(value, (1, 0))
    return value


def _from_mxnet(value, layout):
    if layout == "conv":  # OIHW -> HWIO
        return np.transpose(value, (2, 3, 1, 0))
    if layout == "depthwise":  # (C, 1, k, k) -> (k, k, C, 1)
        return np.transpose(value, (2, 3, 0, 1))
    if layout == "dense":
        return np.transpose(value, (1, 0))
    return value


def _variable_shape(layer, attr, var):
    if var is not None:
        return tuple(var.shape)
    # A BatchNormalization without scale/offset (the input BN) has no gamma/beta variables.
    return (int(layer.moving_mean.shape[0]),)


def mxnet_param_names(model):
    """The ``arg:``/``aux:`` tensor names (without the model prefix) and MXNet shapes of
    ``model``."""
    out = {}
    for mx_name, layer, attr, var, layout in _mxnet_entries(model):
        shape = _variable_shape(layer, attr, var)
        out[mx_name] = tuple(_to_mxnet(np.zeros(shape, "float32"), layout).shape)
    return out


def _split_prefix(name):
    kind, sep, rest = name.partition(":")
    if not sep or kind not in ("arg", "aux") or "/" not in rest:
        return None, None
    prefix, _, local = rest.partition("/")
    return prefix, f"{kind}:{local}"


def load_mxnet_params(model, path):
    """Loads an authors' MXNet ``.params`` file into a model built by this module.

    Every tensor of the file is mapped by name (``arg:<prefix>/stg{s}/blk{b}/btl_in/conv0_weight``
    -> ``stage{s+1}_block{b+1}_expand`` kernel, ...; ``<prefix>`` such as
    ``cifar10_pydmobilenet29_0.25_concat`` is ignored) and transposed to Keras' layout (OIHW ->
    HWIO, depthwise (C, 1, k, k) -> (k, k, C, 1), Dense (out, in) -> (in, out)). BN gamma, beta and
    running mean/variance are all loaded; the input BN's stored gamma/beta must be 1/0 (MXNet
    ``fix_gamma``), which is what its scale-free Keras BN computes.

    Raises:
        ValueError: naming the first tensor the file lacks, the first it has in excess, or the
            first whose shape differs from the architecture's; nothing is assigned then.
    """
    arrays = read_params(path)
    entries = _mxnet_entries(model)
    local = {}
    prefixes = set()
    for name, value in arrays.items():
        prefix, key = _split_prefix(name)
        if key is None:
            raise ValueError(
                f"The MXNet params file {path!r} has a tensor named {name!r}; expected "
                "'arg:<prefix>/...' or 'aux:<prefix>/...' names as Gluon exports them."
            )
        prefixes.add(prefix)
        local[key] = (name, value)
    if len(prefixes) > 1:
        raise ValueError(
            f"The MXNet params file {path!r} mixes the model prefixes {sorted(prefixes)}; it must "
            "hold one network."
        )
    expected = [entry[0] for entry in entries]
    expected_set = set(expected)
    for key in expected:
        if key not in local:
            raise ValueError(
                f"The MXNet params file {path!r} does not match the architecture of "
                f"{model.name!r}: it has no tensor '{key.split(':')[0]}:<prefix>/"
                f"{key.split(':', 1)[1]}' (first missing of {len(expected)} expected)."
            )
    for key, (name, _) in local.items():
        if key not in expected_set:
            raise ValueError(
                f"The MXNet params file {path!r} does not match the architecture of "
                f"{model.name!r}: its tensor {name!r} has no place in the model."
            )
    assignments = []
    for mx_name, layer, attr, var, layout in entries:
        name, value = local[mx_name]
        shape = _variable_shape(layer, attr, var)
        want = tuple(_to_mxnet(np.zeros(shape, "float32"), layout).shape)
        if tuple(value.shape) != want:
            hint = ""
            if layer.name == CLASSIFIER_NAME and layout == "dense" and len(value.shape) == 2:
                n = value.shape[0]
                hint = f" The file's classifier has {n} classes: pass classes={n}."
            elif layer.name == CLASSIFIER_NAME and len(value.shape) == 1:
                n = value.shape[0]
                hint = f" The file's classifier has {n} classes: pass classes={n}."
            raise ValueError(
                f"The MXNet params file {path!r} does not match the architecture of "
                f"{model.name!r}: tensor {name!r} has shape {tuple(value.shape)}, the model's "
                f"{layer.name!r} {attr} needs {want}.{hint}"
            )
        if var is None:
            fixed = 1.0 if attr == "gamma" else 0.0
            if not np.all(value == fixed):
                raise ValueError(
                    f"The MXNet params file {path!r}: tensor {name!r} must be all {fixed:g} (the "
                    f"input BN has no learned {attr}); found {value.tolist()}."
                )
            continue
        assignments.append((var, _from_mxnet(value, layout).astype(var.dtype)))
    for var, value in assignments:
        var.assign(value)
    return model


def save_mxnet_params(model, path, prefix=None):
    """Writes ``model`` (built by this module, not PF) as an MXNet ``.params`` file.

    The names follow the authors' release (``arg:<prefix>/stg0/blk0/btl_in/conv0_weight``, ...);
    ``prefix`` defaults to the model name. The input BN's gamma/beta are written as 1/0.
    """
    prefix = prefix or model.name
    arrays = {}
    for mx_name, layer, attr, var, layout in _mxnet_entries(model):
        kind, local = mx_name.split(":", 1)
        if var is None:
            shape = _variable_shape(layer, attr, var)
            value = np.full(shape, 1.0 if attr == "gamma" else 0.0, "float32")
        else:
            value = _to_mxnet(keras.ops.convert_to_numpy(var.value), layout)
        arrays[f"{kind}:{prefix}/{local}"] = np.ascontiguousarray(value, dtype="float32")
    write_params(path, arrays)
