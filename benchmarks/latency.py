"""The paper's latency table on this machine: LiteRT (XNNPACK) latency, orig vs padding-free models.

For the four second-set families (MobileNetV3-large, ParC-MobileNetV2, GhostNet, ShuffleNetV2) at
32x32 (``*_cifar`` / ``*_pf_cifar``) and 224x224 (``*_vegfru`` / ``*_pf_vegfru``), each orig/PF
pair is converted to a float32 TFLite file (as ``keras_padfree.export.export_tflite`` converts)
and an int8 one (full-integer weights and activations, float32 input/output, calibrated on
deterministic synthetic images), and timed with the LiteRT interpreter (XNNPACK delegate), batch 1,
with 1 and 2 threads (int8: 1 thread). Timing is interleaved: every round runs a few invocations of
the orig model, then of its PF model, so drift in machine load hits both; the table reports medians
over all invocations. keras.applications.MobileNetV3Large (weights=None, 224x224,
minimalistic=False, include_preprocessing=False) is timed as a reference point.

Next to the PF/orig latency ratio stands the PF/orig FLOPs ratio (``keras_padfree.profiling``,
convention "thop_0.0.31", the convention of the second-set tables). The goals (reported, not
asserted), 1 thread, float32: ``latency ratio <= FLOPs ratio + 0.05`` at 32x32 and
``latency ratio <= 1`` at 224x224.

Per-operator profiles (1 thread, float32): the time of every XNNPACK operator, from LiteRT's own
profiler (see ``ProfiledModel``), tied to the graph op and Keras layer it runs and summed per part
of the network (stem, downsampling, the padding-free shortcut, 1x1 maps, the rest) and per operator
kind, orig next to PF, in the same interleaved rounds.

    KERAS_BACKEND=tensorflow python benchmarks/latency.py            # writes benchmarks/results/
    python benchmarks/latency.py --rounds 10 --sizes 32 --threads 1  # quicker
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FAMILIES = (
    ("MobileNetV3-large", "mobilenetv3_large"),
    ("ParC-MobileNetV2", "parc_mobilenetv2"),
    ("GhostNet", "ghostnet"),
    ("ShuffleNetV2 1.0x", "shufflenetv2"),
)
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def pair_names(base, size):
    if size == 32:
        return f"{base}_cifar", f"{base}_pf_cifar"
    return f"{base}_vegfru", f"{base}_pf_vegfru"


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="32,224", help="comma-separated input sizes (32, 224)")
    p.add_argument("--threads", default="1,2", help="comma-separated XNNPACK thread counts")
    p.add_argument(
        "--rounds", type=int, default=40, help="interleaved rounds per pair and thread count"
    )
    p.add_argument(
        "--runs-per-round", type=int, default=5, help="timed invocations of one model per round"
    )
    p.add_argument("--warmup", type=int, default=5, help="untimed invocations per model")
    p.add_argument(
        "--families", default=None, help="comma-separated family keys (default: all four)"
    )
    p.add_argument(
        "--no-keras-reference", action="store_true", help="skip keras.applications.MobileNetV3Large"
    )
    p.add_argument("--output-dir", default=RESULTS_DIR)
    p.add_argument(
        "--int8-rounds",
        type=int,
        default=20,
        help="interleaved rounds of the int8 files (1 thread); 0 skips int8",
    )
    p.add_argument(
        "--profile-rounds",
        type=int,
        default=6,
        help="interleaved rounds of the per-operator profiles (1 thread); 0 skips them",
    )
    p.add_argument(
        "--profile-runs",
        type=int,
        default=20,
        help="profiled invocations of one model per profile round",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite latency.md from the latency.json in --output-dir (no measurement)",
    )
    p.add_argument(
        "--keep-tflite",
        default=None,
        help="directory to keep the .tflite files in; files already there are reused "
        "instead of converting again (delete them after changing the models)",
    )
    return p


STEM_PREFIXES = ("stem", "conv1", "maxpool")  # layer names of a zoo model's stem (every family)


def stem_model(model):
    """The model up to the end of its stem (orig: first conv [+ max-pool]; PF: the HybridStem)."""
    import keras

    last = None
    for layer in model.layers[1:]:
        if not layer.name.startswith(STEM_PREFIXES):
            break
        last = layer
    if last is None:
        raise ValueError(
            f"Argument `model` must start with stem layers (names starting with one of "
            f"{STEM_PREFIXES}). Received: model {model.name!r}, whose first layer after the input "
            f"is {model.layers[1].name!r}."
        )
    return keras.Model(model.input, last.output, name=f"{model.name}_stem")


CALIBRATION_IMAGES = 16
# Latency does not depend on the weights' values, nor on the calibration images: any deterministic
# images normalised into the usual range will do.
CALIBRATION_NORMALIZATION = {
    "pixel_scale": 1.0 / 255.0,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
}


def convert(model, size, quantization=None, litert_forms=True):
    """TFLite bytes of ``model``: float32, or ``quantization="int8"`` (float32 input/output);
    ``litert_forms=False``: the layers' reference forms instead of their export forms."""
    from keras_padfree.export import _prepare
    from keras_padfree.export._convert import convert_tflite

    representative = None
    if quantization == "int8":
        representative = _prepare.synthetic_images(
            (size, size, 3), CALIBRATION_IMAGES, CALIBRATION_NORMALIZATION, seed=0
        )
    return convert_tflite(
        model,
        input_shape=(size, size, 3),
        quantization=quantization,
        representative=representative,
        litert_forms=litert_forms,
    )


def _converted(model, size, name, keep_dir, quantization=None, litert_forms=True):
    """The .tflite bytes of ``model``; reused from / saved to ``keep_dir`` when given."""
    suffix = (f"_{quantization}" if quantization else "") + ("" if litert_forms else "_reference")
    cached = os.path.join(keep_dir, f"{name}{suffix}.tflite") if keep_dir else None
    if cached and os.path.isfile(cached):
        with open(cached, "rb") as f:
            return f.read()
    content = convert(model, size, quantization, litert_forms)
    if cached:
        os.makedirs(keep_dir, exist_ok=True)
        with open(cached, "wb") as f:
            f.write(content)
    return content


def graph_ops(content):
    """Op-type histogram of a .tflite file (before delegation), for the graph inspection."""
    from keras_padfree.export import litert_interpreter

    it = litert_interpreter(model_content=content)
    hist = {}
    for op in it._get_ops_details():  # noqa: SLF001 - LiteRT's op listing
        name = op["op_name"]
        hist[name] = hist.get(name, 0) + 1
    # After XNNPACK is applied, each delegated partition shows up as one DELEGATE node: 1 means
    # the whole graph runs in XNNPACK; more means some op fell back to the reference kernels.
    partitions = hist.pop("DELEGATE", 0)
    return dict(sorted(hist.items())), partitions


def time_interleaved(contents, threads, rounds, runs_per_round, warmup):
    """Median latency (ms) of each model; rounds alternate over the models."""
    import numpy as np

    from keras_padfree.export import litert_interpreter

    interps, inputs = [], []
    for content in contents:
        it = litert_interpreter(model_content=content, num_threads=threads)
        d = it.get_input_details()[0]
        x = np.random.default_rng(0).standard_normal(d["shape"]).astype("float32")
        it.set_tensor(d["index"], x)
        for _ in range(warmup):
            it.invoke()
        interps.append(it)
        inputs.append(x)
    samples = [[] for _ in contents]
    for r in range(rounds):
        order = range(len(contents)) if r % 2 == 0 else reversed(range(len(contents)))
        for i in order:
            it = interps[i]
            for _ in range(runs_per_round):
                t0 = time.perf_counter()
                it.invoke()
                samples[i].append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(s) for s in samples], [len(s) for s in samples]


# --- per-operator profiles ----------------------------------------------------------------------
# The LiteRT benchmark binary (benchmark_model --enable_op_profiling) is not in the ai-edge-litert
# wheel. The wheel's libLiteRt.so exports the C API of LiteRT's CompiledModel with its profiler:
# a compiled model created with the runtime option "enable_profiling = true" installs a TFLite
# profiler before the XNNPACK delegate is applied, so XNNPACK runs with XNN_FLAG_BASIC_PROFILING
# and reports the time of each of its operators after every run
# (DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT, whole microseconds; event_metadata1 = the operator's
# index): the numbers of the benchmark tool's "Operator-wise Profiling Info" with XNNPACK.

_OPERATOR_EVENT = 1 << 1  # LiteRtProfilerEventType OPERATOR_INVOKE_EVENT (a graph op on LiteRT)
_PROFILED_OPERATOR_EVENT = 1 << 3  # DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT (an XNNPACK operator)

# TFLite builtin op -> the XNNPACK operator names it becomes (prefixes), to tie each XNNPACK
# operator to the graph op (and so the Keras layer) it runs.
XNNPACK_NAMES = {
    "CONV_2D": ("Convolution", "Fully Connected"),
    "DEPTHWISE_CONV_2D": ("Convolution",),
    "FULLY_CONNECTED": ("Fully Connected",),
    "HARD_SWISH": ("HardSwish",),
    "MAX_POOL_2D": ("Max Pooling",),
    "AVERAGE_POOL_2D": ("Average Pooling",),
    "MEAN": ("Mean",),
    "MUL": ("Multiply",),
    "ADD": ("Add",),
    "SUB": ("Subtract",),
    "CONCATENATION": ("Copy", "Concatenate"),
    "SOFTMAX": ("Softmax",),
    "RESHAPE": ("Static Reshape", "Copy"),
    "TRANSPOSE": ("Transpose",),
    "SPLIT": ("Copy", "Split", "Even Split"),
    "STRIDED_SLICE": ("Slice", "Copy"),
    "SLICE": ("Slice", "Copy"),
    "PAD": ("Constant Pad",),
    "LOGISTIC": ("Sigmoid",),
    "RELU": ("Clamp",),
    "RELU6": ("Clamp",),
    "MAXIMUM": ("Maximum",),
    "QUANTIZE": ("Convert",),
    "DEQUANTIZE": ("Convert",),
}
# Graph ops XNNPACK may fold into a neighbour (a constant PAD into the next convolution).
_FOLDABLE = {"PAD", "RESHAPE", "SQUEEZE"}


class _LiteRt:
    """The few C functions of libLiteRt.so the profiler needs (ctypes)."""

    _lib = None

    @classmethod
    def lib(cls):
        if cls._lib is None:
            import ctypes

            import ai_edge_litert

            cls._lib = ctypes.CDLL(
                os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so")
            )
        return cls._lib


def _profiled_event_type():
    import ctypes

    class MemoryUsage(ctypes.Structure):
        _fields_ = [
            ("total", ctypes.c_size_t),
            ("in_use", ctypes.c_size_t),
            ("private", ctypes.c_size_t),
        ]

    class ProfiledEventData(ctypes.Structure):  # litert/c/litert_profiler_event.h
        _fields_ = [
            ("tag", ctypes.c_char_p),
            ("event_type", ctypes.c_int),
            ("start_timestamp_us", ctypes.c_uint64),
            ("elapsed_time_us", ctypes.c_uint64),
            ("begin_mem_usage", MemoryUsage),
            ("end_mem_usage", MemoryUsage),
            ("event_metadata1", ctypes.c_uint64),
            ("event_metadata2", ctypes.c_uint64),
            ("event_source", ctypes.c_int),
        ]

    return ProfiledEventData


class ProfiledModel:
    """A LiteRT CompiledModel on CPU (XNNPACK, ``threads`` threads) with per-operator profiling.

    ``run(n)`` invokes it ``n`` times and returns the operators' times of these runs.
    """

    def __init__(self, content, threads=1):
        import ctypes

        lib = _LiteRt.lib()
        self._ctypes, self._lib = ctypes, lib
        p = ctypes.c_void_p
        self._handles = []  # (destroy function, handle), destroyed in reverse order
        self._keep = []  # buffers LiteRT reads from while the model lives
        self.env = self._make(
            lib.LiteRtCreateEnvironment, lib.LiteRtDestroyEnvironment, ctypes.c_int(0), None
        )
        buf = ctypes.create_string_buffer(bytes(content), len(content))
        self._keep.append(buf)
        self.model = self._make(
            lib.LiteRtCreateModelFromBuffer,
            lib.LiteRtDestroyModel,
            self.env,
            buf,
            ctypes.c_size_t(len(content)),
        )
        options = self._make(lib.LiteRtCreateOptions, lib.LiteRtDestroyOptions)
        self._check(lib.LiteRtSetOptionsHardwareAccelerators(options, 1), "set CPU accelerator")
        # Opaque options, as litert/c/options/litert_{runtime,cpu}_options.cc serialise them.
        self._noop = ctypes.CFUNCTYPE(None, p)(lambda _: None)
        for ident, text in (
            (b"runtime_options_string", "enable_profiling = true\n"),
            (b"xnnpack", f"num_threads = {int(threads)}\n"),
        ):
            payload = ctypes.create_string_buffer(text.encode())
            self._keep.append(payload)
            opaque = p()
            self._check(
                lib.LiteRtCreateOpaqueOptions(
                    ident, ctypes.cast(payload, p), self._noop, ctypes.byref(opaque)
                ),
                "create options",
            )
            self._check(lib.LiteRtAddOpaqueOptions(options, opaque), "add options")
        self.compiled = self._make(
            lib.LiteRtCreateCompiledModel,
            lib.LiteRtDestroyCompiledModel,
            self.env,
            self.model,
            options,
        )
        signature = p()
        self._check(
            lib.LiteRtGetModelSignature(self.model, ctypes.c_size_t(0), ctypes.byref(signature)),
            "signature",
        )
        buffers = []
        for get_tensor, get_requirements in (
            (
                lib.LiteRtGetSignatureInputTensorByIndex,
                lib.LiteRtGetCompiledModelInputBufferRequirements,
            ),
            (
                lib.LiteRtGetSignatureOutputTensorByIndex,
                lib.LiteRtGetCompiledModelOutputBufferRequirements,
            ),
        ):
            tensor, requirements = p(), p()
            self._check(get_tensor(signature, ctypes.c_size_t(0), ctypes.byref(tensor)), "tensor")
            tensor_type = ctypes.create_string_buffer(1024)  # a LiteRtRankedTensorType, opaque here
            self._keep.append(tensor_type)
            self._check(lib.LiteRtGetRankedTensorType(tensor, tensor_type), "tensor type")
            self._check(
                get_requirements(
                    self.compiled,
                    ctypes.c_size_t(0),
                    ctypes.c_size_t(0),
                    ctypes.byref(requirements),
                ),
                "buffer requirements",
            )
            buffers.append(
                self._make(
                    lib.LiteRtCreateManagedTensorBufferFromRequirements,
                    lib.LiteRtDestroyTensorBuffer,
                    self.env,
                    tensor_type,
                    requirements,
                )
            )
        self._inputs = (p * 1)(buffers[0])
        self._outputs = (p * 1)(buffers[1])
        self.profiler = p()
        self._check(
            lib.LiteRtCompiledModelGetProfiler(self.compiled, ctypes.byref(self.profiler)),
            "get profiler",
        )
        if not self.profiler:
            raise RuntimeError("LiteRT created the compiled model without a profiler.")

    def _check(self, status, what):
        if status != 0:
            raise RuntimeError(f"LiteRT C API: {what} failed with status {status}.")

    def _make(self, create, destroy, *args):
        handle = self._ctypes.c_void_p()
        self._check(create(*args, self._ctypes.byref(handle)), create.__name__)
        self._handles.append((destroy, handle))
        return handle

    def invoke(self):
        c = self._ctypes
        self._check(
            self._lib.LiteRtRunCompiledModel(
                self.compiled,
                c.c_size_t(0),
                c.c_size_t(1),
                self._inputs,
                c.c_size_t(1),
                self._outputs,
            ),
            "run",
        )

    def run(self, n):
        """Runs the model ``n`` times; returns ``[(name, node, [us per run])]`` in execution order.

        ``name`` is the XNNPACK operator's name, or ``"TFLite <OP>"`` for a graph op that runs on
        LiteRT's own kernels (outside XNNPACK), ``node`` its graph node index (None for XNNPACK
        operators, whose indices restart in every delegated partition).
        """
        c, lib = self._ctypes, self._lib
        self._check(lib.LiteRtResetProfiler(self.profiler), "reset profiler")
        self._check(lib.LiteRtStartProfiler(self.profiler), "start profiler")
        for _ in range(n):
            self.invoke()
        self._check(lib.LiteRtStopProfiler(self.profiler), "stop profiler")
        count = c.c_int()
        self._check(lib.LiteRtGetNumProfilerEvents(self.profiler, c.byref(count)), "events")
        events = (_profiled_event_type() * count.value)()
        self._check(lib.LiteRtGetProfilerEvents(self.profiler, count, events), "events")
        kept = [
            (
                f"TFLite {e.tag.decode()}" if e.event_type == _OPERATOR_EVENT else e.tag.decode(),
                e.event_metadata1 if e.event_type == _OPERATOR_EVENT else None,
                float(e.elapsed_time_us),
            )
            for e in events
            if e.event_type in (_OPERATOR_EVENT, _PROFILED_OPERATOR_EVENT)
        ]
        per_run = len(kept) // n
        if per_run * n != len(kept) or any(
            kept[i][:2] != kept[i % per_run][:2] for i in range(len(kept))
        ):
            raise RuntimeError("LiteRT's profile does not repeat the same operators every run.")
        return [
            (name, node, [kept[r * per_run + i][2] for r in range(n)])
            for i, (name, node, _) in enumerate(kept[:per_run])
        ]

    def close(self):
        for destroy, handle in reversed(self._handles):
            destroy(handle)
        self._handles = []

    def __del__(self):
        self.close()


def graph_layers(content):
    """The graph ops of a .tflite file in execution order: op name, Keras layer, output shape.

    The layer is read from the op's output tensor name (``<model>/<layer>/<sublayer>/...``).
    """
    import re

    from keras_padfree.export import litert_interpreter

    it = litert_interpreter(model_content=content)  # tensors before delegation are listed alike
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    out = []
    for op in it._get_ops_details():  # noqa: SLF001 - LiteRT's op listing
        if op["op_name"] == "DELEGATE":
            continue
        t = tensors[op["outputs"][0]]
        # TensorFlow's trace adds one "_<n>" to every name scope: <model>_1/<layer>_1/<sub>_1/...
        parts = [re.sub(r"_\d+$", "", s) for s in t["name"].split(";")[0].split("/")]
        inputs = [i for i in op["inputs"] if i >= 0]
        out.append(
            {
                "op": op["op_name"],
                # The op writing the model's output has the signature's name for its tensor.
                "layer": parts[1] if len(parts) > 1 else "(output)",
                "sublayer": parts[2] if len(parts) > 2 else "",
                "shape": [int(s) for s in t["shape"]],
                "in_shape": [int(s) for s in tensors[inputs[0]]["shape"]] if inputs else [],
            }
        )
    return out


def attribute(operators, graph):
    """Ties each operator (``(name, node)`` pairs in execution order) to its graph op.

    Returns one dict per operator: ``xnnpack`` (its name) and the keys of :func:`graph_layers` of
    the graph op it runs. An operator on LiteRT's kernels names its node; XNNPACK operators are
    matched in order, by kind. Graph ops XNNPACK folds away (a constant PAD) are skipped; an
    operator XNNPACK adds itself (a clamp it could not fuse, the reshape before a fully connected
    layer) is given to the graph op before it, with ``added=True``.
    """
    out, j = [], 0
    unknown = {"op": None, "layer": None, "sublayer": "", "shape": [], "in_shape": []}
    for name, node in operators:
        if node is not None and 0 <= node < len(graph):
            out.append({"xnnpack": name, **graph[node], "added": False})
            j = max(j, node + 1)
            continue
        k = j
        while k < len(graph) and not name.startswith(XNNPACK_NAMES.get(graph[k]["op"], ())):
            if graph[k]["op"] not in _FOLDABLE:
                k = len(graph)
                break
            k += 1
        if k < len(graph):
            out.append({"xnnpack": name, **graph[k], "added": False})
            j = k + 1
        else:
            out.append({**(graph[j - 1] if j else unknown), "xnnpack": name, "added": True})
    return out


PARTS = ("stem", "downsampling", "PF shortcut", "1x1 maps", "rest")


def part_of(row, layer_kinds):
    """Which part of the network an operator belongs to (one of ``PARTS``).

    ``stem``: the stem layers (the HybridStem); ``downsampling``: the stride-2 depthwise convs
    (orig) and the PaddingFreeDWConv layers without their shortcut; ``PF shortcut``: the max-pool
    shortcut and its join (add); ``1x1 maps``: ops on 1x1 maps or vectors (squeeze-excite, the head
    after the global pooling, the classifier); ``rest``: everything else.
    """
    layer = row["layer"] or ""
    kind = layer_kinds.get(layer)
    if kind == "HybridStem" or layer.startswith(STEM_PREFIXES):
        return "stem"
    if kind == "MaxPoolShortcut":
        return "PF shortcut"
    if kind == "PaddingFreeDWConv":
        if row["sublayer"] in ("shortcut", "add") or row["op"] in ("MAX_POOL_2D", "ADD"):
            return "PF shortcut"
        return "downsampling"
    shape, in_shape = row["shape"], row["in_shape"]
    if (
        row["op"] == "DEPTHWISE_CONV_2D"
        and len(in_shape) == 4
        and len(shape) == 4
        and shape[1] < in_shape[1]
    ):
        return "downsampling"
    if len(shape) != 4 or shape[1] * shape[2] == 1:
        return "1x1 maps"
    return "rest"


def summarize_profile(rows, run_us, layer_kinds, top=10):
    """Per-part and per-operator-kind sums of one model's profile, its top operators.

    ``total_us`` is the sum of the operators' medians; ``run_us`` the median run (see
    :func:`op_profiles`).
    """
    parts = {p: 0.0 for p in PARTS}
    kinds = {}
    for row in rows:
        row["part"] = part_of(row, layer_kinds)
        parts[row["part"]] += row["us"]
        kinds[row["xnnpack"]] = kinds.get(row["xnnpack"], 0.0) + row["us"]
    levels = {}  # output map side -> us (0: vectors)
    for row in rows:
        shape = row["shape"]
        side = shape[1] if len(shape) == 4 and shape[1] * shape[2] > 1 else 0
        levels[side] = levels.get(side, 0.0) + row["us"]
    keys = ("xnnpack", "op", "layer", "sublayer", "shape", "part", "us")
    return {
        "levels_us": [[side, us] for side, us in sorted(levels.items(), reverse=True)],
        "total_us": sum(r["us"] for r in rows),
        "run_us": run_us,
        "parts_us": parts,
        "kinds_us": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "top": [{k: r[k] for k in keys} for r in sorted(rows, key=lambda r: -r["us"])[:top]],
        "stem_and_shortcut": [
            {k: r[k] for k in keys} for r in rows if r["part"] in ("stem", "PF shortcut")
        ],
        "operators": len(rows),
    }


def op_profiles(contents, threads, rounds, runs_per_round, warmup):
    """Per-operator medians (microseconds) of each model; rounds alternate over the models.

    Returns, per model, ``(operators, run_us)``: the operators as :func:`attribute` gives them
    with ``us`` (median over all profiled runs) added, in execution order, and the median of the
    per-run sums. The sum of the operators' medians is the steadier total: on a loaded machine a
    preemption lands on one operator of a run, which its median ignores but the run's sum keeps.
    """
    import statistics

    models = [ProfiledModel(c, threads) for c in contents]
    for m in models:
        for _ in range(warmup):
            m.invoke()
    samples = [None] * len(models)
    for r in range(rounds):
        order = range(len(models)) if r % 2 == 0 else reversed(range(len(models)))
        for i in order:
            ops = models[i].run(runs_per_round)
            if samples[i] is None:
                samples[i] = ops
            else:
                for (_, _, acc), (_, _, t) in zip(samples[i], ops):
                    acc.extend(t)
    for m in models:
        m.close()
    result = []
    for content, ops in zip(contents, samples):
        rows = attribute([(name, node) for name, node, _ in ops], graph_layers(content))
        for row, (_, _, t) in zip(rows, ops):
            row["us"] = statistics.median(t)
        per_run = [sum(t[k] for _, _, t in ops) for k in range(len(ops[0][2]))]
        result.append((rows, statistics.median(per_run)))
    return result


GOAL_TEXT = (
    "1 thread, float32: latency PF/orig <= 1 at 224x224 (no slower), "
    "<= FLOPs PF/orig + 0.05 at 32x32"
)


def goal(size, flops_ratio):
    """The largest PF/orig latency ratio the goal allows (see ``GOAL_TEXT``)."""
    return 1.0 if size >= 224 else flops_ratio + 0.05


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.report_only:
        with open(os.path.join(args.output_dir, "latency.json")) as f:
            result = json.load(f)
        with open(os.path.join(args.output_dir, "latency.md"), "w") as f:
            f.write(markdown(result))
        return result
    t_start = time.time()
    load_start = list(os.getloadavg())
    import keras

    from keras_padfree import applications
    from keras_padfree import profiling

    sizes = [int(s) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    families = FAMILIES
    if args.families:
        keep = set(args.families.split(","))
        families = tuple(f for f in FAMILIES if f[1] in keep)
    registered = set(applications.list_models())

    entries = []  # one per pair
    for size in sizes:
        for label, base in families:
            orig, pf = pair_names(base, size)
            missing = [n for n in (orig, pf) if n not in registered]
            if missing:
                print(f"skipping {label} @{size}: not registered: {missing}", flush=True)
                continue
            entry = {"family": label, "size": size, "orig": orig, "pf": pf}
            for key, name in (("orig", orig), ("pf", pf)):
                model = applications.create_model(name)
                stem = stem_model(model)
                t0 = time.time()
                content = _converted(model, size, name, args.keep_tflite)
                entry[f"{key}_flops"] = int(profiling.count_flops(model, "thop_0.0.31"))
                entry[f"{key}_params"] = int(profiling.count_params(model, "thop_0.0.31"))
                entry[f"{key}_ops"], entry[f"{key}_xnnpack_partitions"] = graph_ops(content)
                entry[f"{key}_tflite_bytes"] = len(content)
                entry[f"_{key}_content"] = content
                entry[f"{key}_stem_flops"] = int(profiling.count_flops(stem, "thop_0.0.31"))
                entry[f"_{key}_stem_content"] = _converted(
                    stem, size, f"{name}_stem", args.keep_tflite
                )
                entry[f"_{key}_layer_kinds"] = {
                    layer.name: type(layer).__name__ for layer in model.layers
                }
                if key == "pf":  # the same model in its layers' reference forms: A/B
                    entry["_pf_reference_form_content"] = _converted(
                        model, size, name, args.keep_tflite, litert_forms=False
                    )
                if args.int8_rounds:
                    content8 = _converted(model, size, name, args.keep_tflite, "int8")
                    entry[f"_{key}_int8_content"] = content8
                    _, entry[f"{key}_int8_xnnpack_partitions"] = graph_ops(content8)
                print(
                    f"converted {name}, its stem{' and int8' if args.int8_rounds else ''} "
                    f"({time.time() - t0:.1f}s)",
                    flush=True,
                )
                keras.backend.clear_session()
            entries.append(entry)

    reference = None
    if not args.no_keras_reference:
        ref_model = keras.applications.MobileNetV3Large(
            weights=None, input_shape=(224, 224, 3), include_preprocessing=False
        )
        reference = {
            "name": "keras.applications.MobileNetV3Large (weights=None, 224x224)",
            "_content": convert(ref_model, 224),
        }
        reference["tflite_bytes"] = len(reference["_content"])
        keras.backend.clear_session()
        print("converted keras.applications.MobileNetV3Large", flush=True)

    for n_threads in threads:
        for entry in entries:
            # With 1 thread the stems run in the same interleaved rounds: the stem/body split.
            # And the PF model in its layers' reference forms (the hybrid stem's concatenation).
            keys = ["orig", "pf"] + (
                ["orig_stem", "pf_stem", "pf_reference_form"] if n_threads == 1 else []
            )
            medians, (n_orig, *_) = time_interleaved(
                [entry[f"_{k}_content"] for k in keys],
                n_threads,
                args.rounds,
                args.runs_per_round,
                args.warmup,
            )
            t_orig, t_pf = medians[:2]
            if n_threads == 1:
                entry["orig_stem_ms_t1"], entry["pf_stem_ms_t1"] = medians[2:4]
                entry["pf_reference_form_ms_t1"] = medians[4]
                entry["export_form_ratio_t1"] = t_pf / medians[4]
            entry[f"orig_ms_t{n_threads}"] = t_orig
            entry[f"pf_ms_t{n_threads}"] = t_pf
            entry[f"latency_ratio_t{n_threads}"] = t_pf / t_orig
            entry["timed_runs"] = n_orig
            print(
                f"{entry['family']} @{entry['size']} {n_threads} thread(s): orig "
                f"{t_orig:.3f} ms, PF {t_pf:.3f} ms, ratio {t_pf / t_orig:.3f}",
                flush=True,
            )
        if reference is not None:
            (t_ref,), _ = time_interleaved(
                [reference["_content"]], n_threads, args.rounds, args.runs_per_round, args.warmup
            )
            reference[f"ms_t{n_threads}"] = t_ref
            print(f"keras MobileNetV3Large {n_threads} thread(s): {t_ref:.3f} ms", flush=True)

    if args.int8_rounds:
        for entry in entries:
            medians, _ = time_interleaved(
                [entry["_orig_int8_content"], entry["_pf_int8_content"]],
                1,
                args.int8_rounds,
                args.runs_per_round,
                args.warmup,
            )
            entry["orig_int8_ms_t1"], entry["pf_int8_ms_t1"] = medians
            entry["int8_latency_ratio_t1"] = medians[1] / medians[0]
            print(
                f"{entry['family']} @{entry['size']} int8 1 thread: orig {medians[0]:.3f} ms, "
                f"PF {medians[1]:.3f} ms, ratio {medians[1] / medians[0]:.3f}",
                flush=True,
            )

    if args.profile_rounds:
        for entry in entries:
            profiles = op_profiles(
                [entry["_orig_content"], entry["_pf_content"]],
                1,
                args.profile_rounds,
                args.profile_runs,
                args.warmup,
            )
            entry["op_profile_t1"] = {
                key: summarize_profile(rows, total, entry[f"_{key}_layer_kinds"])
                for key, (rows, total) in zip(("orig", "pf"), profiles)
            }
            o, q = (entry["op_profile_t1"][k]["total_us"] / 1e3 for k in ("orig", "pf"))
            print(
                f"{entry['family']} @{entry['size']} profiled: orig {o:.3f} ms, PF {q:.3f} ms "
                "(sums of the operators' medians)",
                flush=True,
            )

    for entry in entries:
        entry["flops_ratio"] = entry["pf_flops"] / entry["orig_flops"]
        if 1 in threads:
            entry["goal_t1"] = goal(entry["size"], entry["flops_ratio"])
            entry["goal_met_t1"] = entry["latency_ratio_t1"] <= entry["goal_t1"]
            body = {
                k: (
                    entry[f"{k}_ms_t1"] - entry[f"{k}_stem_ms_t1"],
                    entry[f"{k}_flops"] - entry[f"{k}_stem_flops"],
                )
                for k in ("orig", "pf")
            }
            entry["body_latency_ratio_t1"] = body["pf"][0] / body["orig"][0]
            entry["body_flops_ratio"] = body["pf"][1] / body["orig"][1]
        for key in [k for k in entry if k.startswith("_")]:
            del entry[key]
    if reference is not None:
        del reference["_content"]

    import ai_edge_litert
    import tensorflow as tf

    result = {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "load_average_start_1_5_15": load_start,
            "load_average_1_5_15": list(os.getloadavg()),
        },
        "software": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
        },
        "settings": {
            "runtime": "ai_edge_litert Interpreter, XNNPACK delegate, float32, batch 1",
            "int8": (
                f"full-integer int8 (float32 input/output), calibrated on "
                f"{CALIBRATION_IMAGES} synthetic images; 1 thread, "
                f"{args.int8_rounds} interleaved rounds"
            )
            if args.int8_rounds
            else None,
            "op_profile": (
                f"LiteRT CompiledModel profiler (XNNPACK operator times, "
                f"whole microseconds), 1 thread, float32, median per operator "
                f"over {args.profile_rounds} interleaved rounds x "
                f"{args.profile_runs} runs"
            )
            if args.profile_rounds
            else None,
            "goal": GOAL_TEXT,
            "threads": threads,
            "rounds": args.rounds,
            "runs_per_round": args.runs_per_round,
            "warmup": args.warmup,
            "statistic": "median over all timed invocations",
            "flops_convention": "thop_0.0.31",
        },
        "pairs": entries,
        "keras_reference": reference,
        "elapsed_s": round(time.time() - t_start, 1),
    }
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "latency.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.output_dir, "latency.md"), "w") as f:
        f.write(markdown(result))
    print(markdown(result))
    return result


def _us(value):
    return f"{value:.0f}"


def _paired_levels(orig, pf, minor=0.02):
    """``(orig side, PF side, orig us, PF us)`` per stage (see ``levels_us``).

    A side that gets under ``minor`` of a model's time (a few small ops that write an odd size, such
    as ParC's padded global convolutions) is counted with the nearest main side of the same model;
    then the main sides of orig and PF are paired in order (32/16/8/4 with 32/15/7/3), or, where
    the two have different numbers of them, each PF side with the nearest orig side. 1x1 maps and
    vectors (side 0) are paired with each other.
    """
    import math

    def merged(levels):
        total = sum(us for _, us in levels) or 1.0
        main = [side for side, us in levels if side and us >= minor * total]
        out = {side: 0.0 for side in main}
        out[0] = 0.0
        for side, us in levels:
            near = (
                side
                if side == 0 or side in out
                else min(main, key=lambda m: abs(math.log(side / m)), default=0)
            )
            out[near] += us
        return out

    o, q = merged(orig), merged(pf)
    o_main = sorted((s for s in o if s), reverse=True)
    q_main = sorted((s for s in q if s), reverse=True)
    if len(o_main) == len(q_main):
        rows = [(so, sq, o[so], q[sq]) for so, sq in zip(o_main, q_main)]
    else:
        acc = {side: [] for side in o_main}
        for side in q_main:
            acc[min(o_main, key=lambda m: abs(math.log(side / m)))].append(side)
        rows = [
            (so, max(acc[so], key=q.get) if acc[so] else so, o[so], sum(q[x] for x in acc[so]))
            for so in o_main
        ]
    return rows + [(0, 0, o[0], q[0])]


def _op_label(row):
    shape = "x".join(str(d) for d in row["shape"][1:]) if row["shape"] else "?"
    return f"{row['layer']}/{row['sublayer']} {row['xnnpack']} [{shape}]"


def markdown(result):
    threads = result["settings"]["threads"]
    machine = result["machine"]
    load_start = machine.get("load_average_start_1_5_15")
    lines = [
        "# LiteRT latency: original vs padding-free (PF) models",
        "",
        f"Measured {result['date_utc']} UTC by `benchmarks/latency.py` on "
        f"{machine['cpu_count']} CPU cores ({machine['processor'] or 'cpu'}, "
        f"{machine['platform']}); 1-minute load average "
        + (f"at the start {load_start[0]:.2f}, " if load_start else "")
        + f"at the end {machine['load_average_1_5_15'][0]:.2f}. "
        f"{result['settings']['runtime']}; median over {result['settings']['rounds']} interleaved "
        f"rounds x {result['settings']['runs_per_round']} invocations per model. "
        f"FLOPs: `keras_padfree.profiling`, convention {result['settings']['flops_convention']}. "
        f"TensorFlow {result['software']['tensorflow']}, LiteRT "
        f"{result['software']['ai_edge_litert']}. Random weights (latency does not depend on "
        "them).",
        "",
    ]
    head = "| family | input | orig MFLOPs | PF MFLOPs | FLOPs PF/orig |"
    sep = "|---|---|---:|---:|---:|"
    for t in threads:
        head += f" orig ms ({t}T) | PF ms ({t}T) | latency PF/orig ({t}T) |"
        sep += "---:|---:|---:|"
    if 1 in threads:
        head += " goal (1T) |"
        sep += "---|"
    lines += [head, sep]
    for e in result["pairs"]:
        row = (
            f"| {e['family']} | {e['size']}x{e['size']} | {e['orig_flops'] / 1e6:.2f} | "
            f"{e['pf_flops'] / 1e6:.2f} | {e['flops_ratio']:.3f} |"
        )
        for t in threads:
            row += (
                f" {e[f'orig_ms_t{t}']:.3f} | {e[f'pf_ms_t{t}']:.3f} | "
                f"{e[f'latency_ratio_t{t}']:.3f} |"
            )
        if 1 in threads:
            verdict = "met" if e["goal_met_t1"] else "**not met**"
            row += f" <= {e['goal_t1']:.3f}: {verdict} |"
        lines.append(row)
    ref = result.get("keras_reference")
    if ref:
        lines += [
            "",
            f"Reference point: {ref['name']}: "
            + ", ".join(
                f"{ref[f'ms_t{t}']:.3f} ms ({t} thread{'s' if t > 1 else ''})" for t in threads
            )
            + ".",
        ]
    lines += ["", f"Goal (reported, not asserted): {result['settings'].get('goal', '')}.", ""]
    int8 = [e for e in result["pairs"] if "orig_int8_ms_t1" in e]
    if int8:
        lines += [
            "## int8 next to float32 (1 thread)",
            "",
            f"int8: {result['settings']['int8']}.",
            "",
            "| family | input | float32 orig ms | float32 PF ms | float32 PF/orig | "
            "int8 orig ms | int8 PF ms | int8 PF/orig | int8 XNNPACK partitions orig / PF |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for e in int8:
            lines.append(
                f"| {e['family']} | {e['size']}x{e['size']} | {e['orig_ms_t1']:.3f} | "
                f"{e['pf_ms_t1']:.3f} | {e['latency_ratio_t1']:.3f} | {e['orig_int8_ms_t1']:.3f} | "
                f"{e['pf_int8_ms_t1']:.3f} | {e['int8_latency_ratio_t1']:.3f} | "
                f"{e['orig_int8_xnnpack_partitions']} / {e['pf_int8_xnnpack_partitions']} |"
            )
        lines.append("")
    if 1 in threads:
        lines += [
            "## Stem and body (1 thread)",
            "",
            "The stem (orig: first conv, plus the max-pool in ShuffleNetV2; PF: the HybridStem) "
            "is timed on its own in the same interleaved rounds; body = whole model minus stem.",
            "",
            "| family | input | orig stem ms | PF stem ms | stem MFLOPs orig / PF | "
            "body FLOPs PF/orig | body latency PF/orig |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for e in result["pairs"]:
            lines.append(
                f"| {e['family']} | {e['size']}x{e['size']} | {e['orig_stem_ms_t1']:.3f} | "
                f"{e['pf_stem_ms_t1']:.3f} | {e['orig_stem_flops'] / 1e6:.2f} / "
                f"{e['pf_stem_flops'] / 1e6:.2f} | {e['body_flops_ratio']:.3f} | "
                f"{e['body_latency_ratio_t1']:.3f} |"
            )
        lines.append("")
    forms = [e for e in result["pairs"] if "pf_reference_form_ms_t1" in e]
    if forms:
        lines += [
            "## The PF models' export form against their reference form (1 thread, float32)",
            "",
            "The exporters convert the layers' LiteRT forms (`keras_padfree.layers._utils."
            "litert_forms`: the hybrid stem's fusion as two 1x1 convolutions and an add, no "
            "concatenation); the same PF model converted in the reference's form runs in the "
            "same interleaved rounds.",
            "",
            "| family | input | PF reference form ms | PF export form ms | export / reference | "
            "orig ms | PF reference form / orig |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for e in forms:
            lines.append(
                f"| {e['family']} | {e['size']}x{e['size']} | {e['pf_reference_form_ms_t1']:.3f} | "
                f"{e['pf_ms_t1']:.3f} | {e['export_form_ratio_t1']:.3f} | {e['orig_ms_t1']:.3f} | "
                f"{e['pf_reference_form_ms_t1'] / e['orig_ms_t1']:.3f} |"
            )
        lines.append("")
    profiled = [e for e in result["pairs"] if "op_profile_t1" in e]
    if profiled:
        lines += [
            "## Per-operator profiles (1 thread, float32)",
            "",
            f"{result['settings']['op_profile']}. Each XNNPACK operator is tied to the graph op "
            "and Keras layer it runs. Parts: stem (the first conv [+ max-pool] / the HybridStem); "
            "downsampling (the stride-2 depthwise convs; PF: PaddingFreeDWConv without its "
            "shortcut); PF shortcut (the max-pool shortcut and its add); 1x1 maps (squeeze-excite, "
            "the head after the global pooling, the classifier: ops on 1x1 maps, whose time is "
            "the same in both and does not shrink with the feature maps); rest. Microseconds, "
            "orig / PF.",
            "",
            "| family | input | total | " + " | ".join(PARTS) + " |",
            "|---|---|" + "---:|" * (len(PARTS) + 1),
        ]
        for e in profiled:
            o, q = e["op_profile_t1"]["orig"], e["op_profile_t1"]["pf"]
            lines.append(
                f"| {e['family']} | {e['size']}x{e['size']} | {_us(o['total_us'])} / "
                f"{_us(q['total_us'])} | "
                + " | ".join(f"{_us(o['parts_us'][k])} / {_us(q['parts_us'][k])}" for k in PARTS)
                + " |"
            )
        lines += [
            "",
            "### By feature-map size (microseconds)",
            "",
            "The operators summed by the side of the map they write, stage by stage (orig's "
            "32/16/8/4 with PF's 32/15/7/3; a side that gets under 2 % of a model's time, such as "
            "the odd sizes ParC's padded global convolutions write, counts with the nearest main "
            "side; 1x1 maps and vectors apart): whether the time follows the number of pixels.",
            "",
            "| family | input | map side orig -> PF | pixels PF/orig | orig us | PF us | "
            "time PF/orig |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for e in profiled:
            for so, sq, uo, uq in _paired_levels(
                e["op_profile_t1"]["orig"]["levels_us"], e["op_profile_t1"]["pf"]["levels_us"]
            ):
                pixels = f"{(sq / so) ** 2:.3f}" if so else "1"
                sides = f"{so} -> {sq}" if so else "1x1 / vectors"
                ratio = f"{uq / uo:.3f}" if uo else "n/a"
                lines.append(
                    f"| {e['family']} | {e['size']}x{e['size']} | {sides} | {pixels} | "
                    f"{_us(uo)} | {_us(uq)} | {ratio} |"
                )
        lines += ["", "### By XNNPACK operator kind (microseconds, orig / PF)", ""]
        for e in profiled:
            o, q = e["op_profile_t1"]["orig"]["kinds_us"], e["op_profile_t1"]["pf"]["kinds_us"]
            kinds = sorted(set(o) | set(q), key=lambda k: (-(o.get(k, 0) + q.get(k, 0)), k))
            lines.append(
                f"- {e['family']} {e['size']}x{e['size']}: "
                + "; ".join(
                    f"{k} {_us(o.get(k, 0))} / {_us(q.get(k, 0))}"
                    for k in kinds
                    if o.get(k, 0) + q.get(k, 0) >= 0.5
                )
            )
        lines += ["", "### Top operators (microseconds)", ""]
        for e in profiled:
            for key in ("orig", "pf"):
                top = e["op_profile_t1"][key]["top"][:6]
                lines.append(
                    f"- `{e[key]}`: " + "; ".join(f"{_op_label(r)} {_us(r['us'])}" for r in top)
                )
        lines += ["", "### The PF models' stem and shortcut operators (microseconds)", ""]
        for e in profiled:
            rows = e["op_profile_t1"]["pf"]["stem_and_shortcut"]
            lines.append(
                f"- `{e['pf']}`: " + "; ".join(f"{_op_label(r)} {_us(r['us'])}" for r in rows)
            )
        lines.append("")
    lines += ["## Graph ops (TFLite builtin ops before delegation)", ""]
    for e in result["pairs"]:
        for key in ("orig", "pf"):
            ops = ", ".join(f"{k} {v}" for k, v in e[f"{key}_ops"].items())
            lines.append(
                f"- `{e[key]}` ({e[f'{key}_xnnpack_partitions']} XNNPACK partition(s)): {ops}"
            )
    lines += ["", f"Total run time {result['elapsed_s']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(0 if main() else 1)
