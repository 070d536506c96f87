"""The NumPy MXNet ``.params`` reader/writer, and loading such files into PydMobileNet.

The files are written by the tests (with :func:`write_params`, in the authors' naming), the
converted
model is compared with a NumPy forward pass computed directly from the MXNet-layout (NCHW / OIHW)
arrays, and files that do not fit the architecture must be refused with the first mismatch named.
"""

import struct

import keras
import numpy as np
import pytest

from keras_padfree.applications import mxnet_params
from keras_padfree.applications import pydmobilenet
from tests import helpers

PREFIX = "cifar10_pydmobilenet29_0.25_concat"


# -- reader / writer ------------------------------------------------------------------------------


def test_write_then_read_round_trips_names_shapes_dtypes(tmp_path):
    rng = np.random.RandomState(0)
    arrays = {
        "arg:net/conv0_weight": rng.normal(size=(4, 3, 3, 3)).astype("float32"),
        "aux:net/batchnorm0_running_var": rng.uniform(size=(4,)).astype("float32"),
        "arg:net/dense0_bias": np.arange(5, dtype="float64"),
        "arg:net/table": np.arange(6, dtype="int32").reshape(2, 3),
    }
    path = tmp_path / "x.params"
    mxnet_params.write_params(path, arrays)
    back = mxnet_params.read_params(path)
    assert list(back) == list(arrays)
    for name, value in arrays.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape
        np.testing.assert_array_equal(back[name], value)


def test_file_layout_is_mxnets(tmp_path):
    path = tmp_path / "one.params"
    mxnet_params.write_params(path, {"arg:w": np.array([1.5, -2.0], "float32")})
    data = path.read_bytes()
    assert struct.unpack_from("<QQQ", data, 0) == (0x112, 0, 1)
    magic, storage, ndim = struct.unpack_from("<IiI", data, 24)
    assert (magic, storage, ndim) == (0xF993FAC9, 0, 1)
    assert struct.unpack_from("<q", data, 36) == (2,)
    assert struct.unpack_from("<iii", data, 44) == (1, 0, 0)  # cpu(0), float32
    assert struct.unpack_from("<2f", data, 56) == (1.5, -2.0)
    assert struct.unpack_from("<Q", data, 64) == (1,)
    assert struct.unpack_from("<Q", data, 72) == (5,) and data[80:] == b"arg:w"


def test_reader_refuses_broken_files(tmp_path):
    good = tmp_path / "good.params"
    mxnet_params.write_params(good, {"arg:w": np.ones((3,), "float32")})
    data = good.read_bytes()
    bad_magic = tmp_path / "magic.params"
    bad_magic.write_bytes(b"\x00" * 8 + data[8:])
    with pytest.raises(ValueError, match="not an MXNet"):
        mxnet_params.read_params(bad_magic)
    truncated = tmp_path / "short.params"
    truncated.write_bytes(data[:50])
    with pytest.raises(ValueError, match="ends early"):
        mxnet_params.read_params(truncated)
    trailing = tmp_path / "trailing.params"
    trailing.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="trailing"):
        mxnet_params.read_params(trailing)
    with pytest.raises(ValueError, match="path"):
        mxnet_params.read_params(tmp_path / "missing.params")
    with pytest.raises(ValueError, match="dtype"):
        mxnet_params.write_params(tmp_path / "c.params", {"w": np.ones(2, "complex64")})


# -- a NumPy forward pass in MXNet's layout --------------------------------------------------------


def _conv(x, w, stride=1, pad=0, groups=1):
    """NCHW conv with an OIHW kernel (MXNet Convolution)."""
    x = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    n, c, h, wd = x.shape
    o, i, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    per_in, per_out = c // groups, o // groups
    for g in range(groups):
        xs = x[:, g * per_in : (g + 1) * per_in]
        ws = w[g * per_out : (g + 1) * per_out]
        for a in range(kh):
            for b in range(kw):
                patch = xs[:, :, a : a + stride * oh : stride, b : b + stride * ow : stride]
                out[:, g * per_out : (g + 1) * per_out] += np.einsum(
                    "nchw,oc->nohw", patch, ws[:, :, a, b]
                )
    return out


def _bn(x, p, name, fix_gamma=False):
    gamma = 1.0 if fix_gamma else p[f"arg:{name}_gamma"]
    beta = p[f"arg:{name}_beta"]
    mean, var = p[f"aux:{name}_running_mean"], p[f"aux:{name}_running_var"]
    shape = (1, -1, 1, 1)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-5) * np.reshape(
        gamma, shape
    ) + beta.reshape(shape)


def _relu(x):
    return np.maximum(x, 0)


def numpy_pydmobilenet(p, images, depth, combine):
    """PydMobileNet (CIFAR) from the authors' description, on MXNet arrays ``p`` (no prefix)."""
    mean = np.array([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)
    std = np.array([0.2023, 0.1994, 0.2010]).reshape(1, 3, 1, 1)
    x = (np.transpose(images, (0, 3, 1, 2)).astype(np.float64) / 255.0 - mean) / std
    x = _bn(x, p, "conv0/batchnorm0", fix_gamma=True)
    x = _conv(x, p["arg:conv0/conv0_weight"], pad=1)
    n = (depth - 2) // 9
    for s in range(3):
        for b in range(n):
            q = f"stg{s}/blk{b}/"
            stride = 2 if (s > 0 and b == 0) else 1
            h = _relu(_bn(x, p, q + "btl_in/batchnorm0"))
            h = _conv(h, p[f"arg:{q}btl_in/conv0_weight"])
            h = _relu(_bn(h, p, q + "btl_in/batchnorm1"))
            branches = []
            for k in (3, 5, 7):
                w = p[f"arg:{q}conv{k}/conv0_weight"]
                branches.append(_conv(h, w, stride=stride, pad=k // 2, groups=w.shape[0]))
            if combine == "concat":
                h = np.concatenate(branches, axis=1)
            else:
                h = (branches[0] + branches[1]) + branches[2]
            h = _relu(_bn(h, p, q + "btl_out/batchnorm0"))
            h = _conv(h, p[f"arg:{q}btl_out/conv0_weight"])
            h = _bn(h, p, q + "btl_out/batchnorm1")
            if f"arg:{q}conv0_weight" in p:
                sc = _bn(_conv(x, p[f"arg:{q}conv0_weight"], stride=stride), p, q + "batchnorm0")
            else:
                sc = x
            x = h + sc
    pooled = x.mean(axis=(2, 3))
    return pooled @ p["arg:classifier/dense0_weight"].T + p["arg:classifier/dense0_bias"]


def _random_arrays(names_shapes, seed=0):
    rng = np.random.RandomState(seed)
    out = {}
    for name, shape in names_shapes.items():
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("running_mean") or name.endswith("_beta") or name.endswith("_bias"):
            value = rng.normal(0, 0.2, shape)
        elif name.endswith("_gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0, 1.0 / np.sqrt(fan_in), shape)
        out[name] = value.astype("float32")
    out["arg:conv0/batchnorm0_gamma"] = np.ones(3, "float32")  # MXNet fix_gamma
    out["arg:conv0/batchnorm0_beta"] = np.zeros(3, "float32")
    return out


def _write_release_file(path, local, prefix=PREFIX):
    mxnet_params.write_params(
        path, {f"{n.split(':')[0]}:{prefix}/{n.split(':', 1)[1]}": v for n, v in local.items()}
    )


def _layout(model):
    return pydmobilenet.mxnet_param_names(model)


@pytest.mark.all_backends
@pytest.mark.parametrize("combine", ["concat", "add"])
def test_converted_model_matches_numpy_forward(tmp_path, combine):
    template = pydmobilenet.PydMobileNet(29, 0.25, combine, classes=10)
    local = _random_arrays(_layout(template))
    path = tmp_path / f"{PREFIX}-0000.params"
    _write_release_file(path, local)
    model = pydmobilenet.PydMobileNet(
        29, 0.25, combine, classes=10, weights=str(path), classifier_activation=None
    )
    images = np.random.RandomState(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    got = helpers.forward(model, images)
    want = numpy_pydmobilenet(local, images, 29, combine)
    assert np.abs(want).max() > 0.1  # a non-degenerate forward pass
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_every_tensor_is_mapped_including_bn_statistics():
    model = pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10)
    layout = _layout(model)
    # The authors' file for this network holds 206 tensors: 4 per BN (gamma, beta, statistics).
    bns = [n[len("aux:") : -len("_running_mean")] for n in layout if n.endswith("_running_mean")]
    assert len(layout) == 206 and len(bns) == 1 + 9 * 4 + 2
    assert all(
        f"{kind}:{bn}_{p}" in layout
        for bn in bns
        for kind, p in (("arg", "gamma"), ("arg", "beta"), ("aux", "running_var"))
    )
    assert layout["arg:stg1/blk0/conv7/conv0_weight"] == (16, 1, 7, 7)
    assert layout["arg:stg1/blk0/btl_out/conv0_weight"] == (64, 48, 1, 1)
    assert layout["arg:stg1/blk0/conv0_weight"] == (64, 32, 1, 1)
    assert layout["arg:classifier/dense0_weight"] == (10, 128)


def test_save_then_load_round_trips(tmp_path):
    model = pydmobilenet.PydBaselineMobileNet(29, 0.5, classes=10)
    rng = np.random.RandomState(3)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.scale:
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape).astype("float32"))
    path = tmp_path / "cifar10_mobilenet29_0.5-0000.params"
    pydmobilenet.save_mxnet_params(model, path, prefix="cifar10_mobilenet29_0.5")
    names = list(mxnet_params.read_params(path))
    assert names[0] == "arg:cifar10_mobilenet29_0.5/conv0/batchnorm0_gamma"
    assert "aux:cifar10_mobilenet29_0.5/stg1/blk0/body/batchnorm3_running_var" in names
    loaded = pydmobilenet.PydBaselineMobileNet(29, 0.5, classes=10, weights=str(path))
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.fixture(scope="module")
def release_file(tmp_path_factory):
    model = pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10)
    local = _random_arrays(_layout(model))
    keras.backend.clear_session()
    return local, tmp_path_factory.mktemp("release")


def test_refuses_a_misnamed_tensor(release_file):
    local, tmp = release_file
    broken = dict(local)
    broken["arg:stg1/blk0/conv5/conv1_weight"] = broken.pop("arg:stg1/blk0/conv5/conv0_weight")
    path = tmp / "renamed.params"
    _write_release_file(path, broken)
    with pytest.raises(ValueError, match=r"stg1/blk0/conv5/conv0_weight"):
        pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10, weights=str(path))


def test_refuses_an_extra_tensor(release_file):
    local, tmp = release_file
    path = tmp / "extra.params"
    _write_release_file(
        path,
        dict(local, **{"arg:stg3/blk0/btl_in/conv0_weight": np.zeros((1, 1, 1, 1), "float32")}),
    )
    with pytest.raises(ValueError, match=r"stg3/blk0/btl_in/conv0_weight.*no place"):
        pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10, weights=str(path))


def test_refuses_a_wrong_shape_naming_it(release_file):
    local, tmp = release_file
    broken = dict(local)
    broken["arg:stg2/blk1/conv3/conv0_weight"] = np.zeros((32, 1, 5, 5), "float32")
    path = tmp / "shape.params"
    _write_release_file(path, broken)
    with pytest.raises(
        ValueError,
        match=r"stg2/blk1/conv3/conv0_weight.*\(32, 1, 5, 5\).*"
        r"\(32, 1, 3, 3\)",
    ):
        pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10, weights=str(path))


def test_refuses_another_architecture_and_names_the_classes(release_file):
    local, tmp = release_file
    path = tmp / "ok.params"
    _write_release_file(path, local)
    with pytest.raises(ValueError, match=r"btl_out/batchnorm0_gamma.*\(24,\).*\(8,\)"):
        pydmobilenet.PydMobileNet(29, 0.25, "add", classes=10, weights=str(path))
    with pytest.raises(ValueError, match=r"pass classes=10"):
        pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=100, weights=str(path))
    with pytest.raises(ValueError, match=r"no tensor 'arg:<prefix>/stg0/blk3/"):
        pydmobilenet.PydMobileNet(56, 0.25, "concat", classes=10, weights=str(path))


def test_refuses_a_trained_input_bn_offset(release_file):
    local, tmp = release_file
    path = tmp / "beta.params"
    _write_release_file(
        path, dict(local, **{"arg:conv0/batchnorm0_beta": np.full(3, 0.5, "float32")})
    )
    with pytest.raises(ValueError, match="conv0/batchnorm0_beta.*must be all 0"):
        pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10, weights=str(path))


def test_refused_file_leaves_the_model_untouched(release_file):
    local, tmp = release_file
    broken = dict(local)
    broken["arg:classifier/dense0_bias"] = np.zeros((7,), "float32")
    path = tmp / "late.params"
    _write_release_file(path, broken)
    model = pydmobilenet.PydMobileNet(29, 0.25, "concat", classes=10)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match="dense0_bias"):
        pydmobilenet.load_mxnet_params(model, str(path))
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))
