"""Reading and writing MXNet ``.params`` files (the NDArray-list format) with NumPy only.

MXNet's ``mx.nd.save`` / Gluon ``export`` write a little-endian binary list of named arrays:

* header: ``uint64 0x112`` (list magic), ``uint64 0`` (reserved), ``uint64 n`` (number of arrays);
* each array: ``uint32 0xF993FAC9`` (NDArray v2 magic), ``int32`` storage type (0 = dense),
  ``uint32 ndim``, ``int64 dims[ndim]``, ``int32 dev_type``, ``int32 dev_id``, ``int32`` dtype flag,
  then the raw little-endian data (C order);
* ``uint64 m`` names (``m == n``, or 0 for an unnamed list), each ``uint64 length`` + UTF-8 bytes.

Gluon names its tensors ``arg:<block prefix>/<param>`` (trainable and fixed parameters) and
``aux:<block prefix>/<running_mean|running_var>`` (BatchNorm statistics). No MXNet install is needed.

>>> arrays = read_params("cifar10_pydmobilenet29_0.25_concat-0000.params")  # doctest: +SKIP
>>> write_params("copy.params", arrays)  # doctest: +SKIP
"""

import os
import struct

import numpy as np

__all__ = ["read_params", "write_params"]

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
        out = self.data[self.offset:self.offset + count]
        self.offset += count
        return out


def _read_array(reader, index):
    (magic,) = reader.take("<I")
    if magic == NDARRAY_V2_MAGIC:
        (storage,) = reader.take("<i")
        if storage != DENSE_STORAGE:
            raise ValueError(
                f"The MXNet params file {reader.path!r}: array #{index} has storage type {storage}; "
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
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(dims).astype(dtype.newbyteorder("="))


def read_params(path):
    """Reads an MXNet ``.params`` (NDArray list) file.

    Args:
        path: the file.

    Returns:
        ``dict`` name -> ``np.ndarray`` in file order (names as stored, e.g. ``"arg:.../conv0_weight"``
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
            f"The MXNet params file {path!r} holds {count} arrays but {name_count} names; only named "
            "parameter files (as Gluon saves them) can be mapped onto a model."
        )
    names = []
    for _ in range(name_count):
        (length,) = reader.take("<Q")
        names.append(reader.take_bytes(length).decode("utf-8"))
    if reader.offset != len(data):
        raise ValueError(
            f"The MXNet params file {path!r} has {len(data) - reader.offset} unexpected trailing bytes."
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
