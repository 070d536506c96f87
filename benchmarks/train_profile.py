"""Where a train step's time goes: per-kernel profiles of the zoo and of native PyTorch.

``train_throughput.py`` says how fast a full train step is; this script says why. For one family's
224-pixel original (default MobileNetV3-large, ``*_vegfru``: the same network as torchvision's
``mobilenet_v3_large``, parameter for parameter) it profiles a few train steps, at the same input
size and batch as ``train_throughput.py``, of

* native PyTorch (NCHW and channels-last memory), with ``torch.profiler``,
* Keras' PyTorch backend with Keras' own kernels and with fit.py's (``speed.DEFAULT_KERNELS``),
  with ``torch.profiler``,
* Keras' JAX backend (default and opt-in kernels), with ``jax.profiler``: XLA:CPU's per-thunk
  events, each matched to its HLO instruction (dumped with ``--xla_dump_to``),
* Keras' TensorFlow backend with fit.py's settings (oneDNN kernels, fused BatchNormalization)
  and with TensorFlow's own default on this CPU (Eigen kernels, Keras' BatchNormalization), with
  ``tf.profiler``: the executor's per-op events,

and attributes every kernel's time to the layer it belongs to (forward and backward): PyTorch
through a profiler range per leaf layer/module and autograd's sequence numbers, JAX through the
HLO name stack, TensorFlow through op names. Layers are grouped into kinds (convolution,
depthwise convolution, batch norm, activation, ...). Kernel times are sums of the kernels' own
times per step (kernels that overlap on the two cores add up); *step* is the wall time of a step
without the profiler, timed in the same process.

One process per row, one after the other (nothing else runs), so the profiles do not disturb each
other. The PyTorch rows run in the environment of ``benchmarks/peer_env.sh``, like
``train_throughput.py``'s.

    python benchmarks/train_profile.py       # -> benchmarks/results/train_profile.{md,json}
    python benchmarks/train_profile.py --rows torch-native-nchw,jax --steps 2 --out-dir /tmp/tp
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import gzip
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
MARK = "@@"

# name -> (backend, what it runs)
ROWS = {
    "torch-native-nchw": ("torch", {"kind": "native", "layout": "nchw"}),
    "torch-native-channels-last": ("torch", {"kind": "native", "layout": "channels_last"}),
    "torch-keras": ("torch", {"kind": "zoo", "kernels": "keras"}),
    "torch": ("torch", {"kind": "zoo", "kernels": "fast"}),
    "jax": ("jax", {"kind": "zoo", "kernels": "fast"}),
    "jax-opt-in": ("jax", {"kind": "zoo", "kernels": "all"}),
    "tensorflow-eigen": (
        "tensorflow",
        {"kind": "zoo", "kernels": "keras", "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    ),
    "tensorflow": ("tensorflow", {"kind": "zoo", "kernels": "fast"}),
}
LABELS = {
    "torch-native-nchw": "native PyTorch, NCHW",
    "torch-native-channels-last": "native PyTorch, channels-last",
    "torch-keras": "Keras torch backend, Keras' own kernels",
    "torch": "Keras torch backend (fit.py's kernels)",
    "jax": "Keras JAX backend (fit.py's kernels)",
    "jax-opt-in": "Keras JAX backend + opt-in kernels",
    "tensorflow-eigen": "Keras TensorFlow backend, Eigen kernels + Keras' BN (TF's default here)",
    "tensorflow": "Keras TensorFlow backend (fit.py's settings: oneDNN + fused BN)",
}
KINDS = (
    "convolution",
    "depthwise convolution",
    "batch norm",
    "activation",
    "squeeze-excite & other layers",
    "pooling",
    "classifier (dense)",
    "outside layers (loss, optimizer, framework)",
    "unnamed (layout copies the compiler added)",
)
OUTSIDE = KINDS[-2]
UNNAMED = KINDS[-1]


def _layer_kind(path: str, names: dict[str, str]) -> str | None:
    """The kind of the innermost layer named in an op path (a JAX name stack such as
    ``jit(train_step)/transpose(jvp(block3_bn))/mul``, or a TensorFlow op name such as
    ``gradient_tape/model_1/block3_bn_1/moments/sub``: TensorFlow adds ``_1`` to reused names)."""
    for part in reversed(path.split("/")):
        part = re.sub(r"^(?:\w+\()+", "", part).rstrip(")")
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in names:
                return names[candidate]
    return None


# ----------------------------------------------------------------------------- layer kinds


def keras_kind(layer) -> str | None:
    """The kind of a Keras layer whose own operations we attribute, None for containers."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise convolution"
    if isinstance(layer, keras.layers.Conv2D):
        groups = getattr(layer, "groups", 1)
        return "depthwise convolution" if groups > 1 else "convolution"
    if isinstance(layer, keras.layers.BatchNormalization):
        return "batch norm"
    if isinstance(layer, keras.layers.Dense):
        return "classifier (dense)"
    if isinstance(
        layer, (keras.layers.Activation, keras.layers.ReLU, keras.layers.ELU, keras.layers.PReLU)
    ):
        return "activation"
    name = type(layer).__name__
    if "Pool" in name:
        return "pooling"
    if isinstance(layer, keras.Model) or layer._flatten_layers(include_self=False, recursive=False):
        return None  # its sublayers are attributed; its own ops are "other"
    return "squeeze-excite & other layers"


def _layer_kinds_by_name(model) -> dict[str, str]:
    """name -> kind of every layer of a Keras model whose own operations are attributed."""
    kinds = {}
    for layer in model._flatten_layers():
        kind = keras_kind(layer)
        if kind:
            kinds[layer.name] = kind
    return kinds


def torch_kind(module) -> str | None:
    import torch

    nn = torch.nn
    if isinstance(module, nn.Conv2d):
        return "depthwise convolution" if module.groups > 1 else "convolution"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batch norm"
    if isinstance(module, nn.Linear):
        return "classifier (dense)"
    if isinstance(
        module, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU)
    ):
        return "activation"
    if "Pool" in type(module).__name__:
        return "pooling"
    if any(True for _ in module.children()):
        return None
    return "squeeze-excite & other layers"


# --------------------------------------------------------------------------------- worker


def _send(obj) -> None:
    print(MARK + json.dumps(obj), flush=True)


def _make_step(backend, spec, args):
    """The train step of a row (train_throughput's, so both scripts time the same thing)."""
    import train_throughput as tt
    from peers import FAMILIES

    label, orig, _, library, peer = next(f for f in FAMILIES if f[0] == args.family)
    tt_args = argparse.Namespace(size=args.size, batch_size=args.batch_size)
    if spec["kind"] == "native":
        config = {"library": library, "peer": peer, "layout": spec["layout"], "policy": "float32"}
        return tt._NativeStep(config, tt_args), f"{library}.{peer}"
    from keras_padfree.training import speed

    settings = speed.default_settings(backend, "cpu")
    config = {"model": orig, "policy": "float32", "kernels": spec["kernels"]}
    return tt._ZooStep(config, tt_args, settings), orig


def _time_steps(step, steps) -> list[float]:
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return out


class _Ops:
    """Per-step kernel time by layer kind (forward / backward) and by operation."""

    def __init__(self, steps):
        self.steps = steps
        self.kinds = collections.defaultdict(lambda: [0.0, 0.0])  # kind -> [fwd ms, bwd ms]
        self.ops = collections.Counter()  # (op, kind) -> ms
        self.total = 0.0

    def add(self, op, kind, backward, us):
        ms = us / 1000.0 / self.steps
        self.kinds[kind or OUTSIDE][1 if backward else 0] += ms
        self.ops[(op, kind or OUTSIDE)] += ms
        self.total += ms

    def result(self, top=14):
        # To 0.1 us: at 0.01 ms a small model's shortest kernels could round to zero and the 18
        # rounded kind times could miss the rounded total by up to 0.09 ms.
        return {
            "kernel_ms": round(self.total, 4),
            "kinds": {k: [round(v[0], 4), round(v[1], 4)] for k, v in self.kinds.items()},
            "top_ops": [[op, kind, round(ms, 2)] for (op, kind), ms in self.ops.most_common(top)],
        }


def _profile_torch(step, steps, keras_model=None, native_model=None) -> dict:
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile

    kinds = {}
    undo = []
    if native_model is not None:
        stack = []

        def pre(module, _inputs):
            r = record_function(f"layer:{kinds[id(module)]}")
            r.__enter__()
            stack.append(r)

        def post(module, _inputs, _output):
            stack.pop().__exit__(None, None, None)

        for m in native_model.modules():
            kind = torch_kind(m)
            if kind:
                kinds[id(m)] = kind
                undo.append(m.register_forward_pre_hook(pre))
                undo.append(m.register_forward_hook(post))
    if keras_model is not None:
        import keras

        layer_kinds = {id(la): keras_kind(la) for la in keras_model._flatten_layers()}
        original_call = keras.layers.Layer.__call__

        def call(self, *a, **kw):
            kind = layer_kinds.get(id(self))
            if not kind:
                return original_call(self, *a, **kw)
            with record_function(f"layer:{kind}"):
                return original_call(self, *a, **kw)

        keras.layers.Layer.__call__ = call
        undo.append(lambda: setattr(keras.layers.Layer, "__call__", original_call))
        optimizer = keras_model.optimizer
        original_apply = optimizer.apply

        def apply(*a, **kw):
            with record_function("Optimizer.step#keras"):
                return original_apply(*a, **kw)

        optimizer.apply = apply
        undo.append(lambda: setattr(optimizer, "apply", original_apply))
    try:
        step()  # once with the ranges, before profiling
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
    finally:
        for u in undo:
            u.remove() if hasattr(u, "remove") else u()
    events = list(prof.events())
    # Forward: the innermost "layer:" range above an op. Backward: autograd's evaluate_function
    # events carry the sequence number of the forward op they differentiate.
    seq_kind = {}

    def range_kind(e):
        while e is not None:
            if e.name.startswith("layer:"):
                return e.name[len("layer:") :]
            if e.name.startswith("Optimizer.step"):
                return OUTSIDE
            e = e.cpu_parent
        return None

    for e in events:
        if e.sequence_nr >= 0 and not e.name.startswith("autograd::"):
            k = range_kind(e)
            if k and e.sequence_nr not in seq_kind:
                seq_kind[e.sequence_nr] = k
    ops = _Ops(steps)
    for e in events:
        if e.name.startswith(("layer:", "Optimizer.step")) or e.self_cpu_time_total <= 0:
            continue  # a range's own time is Python between kernels (and the profiler's hook)
        root, backward = e, False
        while root.cpu_parent is not None:
            root = root.cpu_parent
        if root.name.startswith("autograd::engine::evaluate_function"):
            backward = True
            kind = seq_kind.get(root.sequence_nr)
        else:
            kind = range_kind(e)
        ops.add(e.name, kind, backward, e.self_cpu_time_total)
    return ops.result()


def _hlo_instructions(dump_dir, module_name) -> dict[str, dict]:
    """name -> {opcode, op_name, groups, calls} of the largest dumped optimized module called so
    (every computation's instructions: fusions name the computation they run)."""
    files = glob.glob(os.path.join(dump_dir, f"*.{module_name}.*after_optimizations.txt"))
    if not files:
        return {}
    with open(max(files, key=os.path.getsize)) as f:
        text = f.read()
    out = {}
    pattern = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+) = (.*)$")
    for line in text.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        name, rest = m.groups()
        shape = rest
        if rest.startswith("("):  # a tuple shape
            depth = 0
            for i, ch in enumerate(rest):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    shape, rest = rest[: i + 1], rest[i + 1 :]
                    break
        else:
            shape, rest = rest.split(" ", 1) if " " in rest else (rest, "")
        op_name = re.search(r'op_name="([^"]*)"', line)
        calls = re.search(r"calls=%?([\w.\-]+)", line)
        groups = [int(g) for g in re.findall(r"(?:feature|batch)_group_count=(\d+)", line)]
        out[name] = {
            "shape": re.sub(r"\{[^}]*\}", "", shape),
            "opcode": rest.strip().split("(", 1)[0],
            "op_name": op_name.group(1) if op_name else "",
            "groups": max([1, *groups]),
            "calls": calls.group(1) if calls else None,
        }
    # Which computation each instruction belongs to: its header line precedes it.
    members = collections.defaultdict(list)
    current = None
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY\s+)?%?([\w.\-]+) .*\{\s*$", line)
        if header and not line.startswith(" "):
            current = header.group(1)
            continue
        m = pattern.match(line)
        if m and current:
            members[current].append(m.group(1))
    for inst in out.values():
        inner = [out[n] for n in members.get(inst["calls"], ()) if n in out]
        if not inst["op_name"]:  # a fusion without metadata: its main instruction's name
            named = sorted(
                (i for i in inner if i["op_name"]),
                key=lambda i: i["opcode"] not in ("convolution", "dot"),
            )
            inst["op_name"] = named[0]["op_name"] if named else ""
        convs = [i for i in inner if i["opcode"] == "convolution"]
        if convs:
            inst["contains"] = "convolution"
            inst["groups"] = max(i["groups"] for i in convs)
        elif any(i["opcode"] == "dot" for i in inner):
            inst["contains"] = "dot"
    return out


def _unnamed_kind(inst: dict, what: str | None) -> str:
    """The layer kind of a kernel XLA emitted without a name (weight gradients it rewrote).

    XLA:CPU computes a depthwise convolution's weight gradient as a dense C -> C convolution
    (output ``[C, k, k, C]``) and then keeps its diagonal with a select over ``[k, k, C, C]``;
    both shapes (k > 1, the same C twice) count as depthwise convolution. Other unnamed
    convolutions: by their grouping.
    """
    dims = [int(d) for d in re.findall(r"\d+", inst.get("shape", "").split("[", 1)[-1])]
    if len(dims) == 4 and (
        (dims[0] == dims[3] > 1 and dims[1] == dims[2] > 1)
        or (dims[2] == dims[3] > 1 and dims[0] == dims[1] > 1)
    ):
        return KINDS[1]
    if what == "convolution":
        return KINDS[1] if inst.get("groups", 1) > 1 else KINDS[0]
    return UNNAMED


def _profile_jax(step, steps, model, dump_dir) -> dict:
    import jax

    names = _layer_kinds_by_name(model)
    trace_dir = tempfile.mkdtemp(prefix="train_profile_jax_")
    try:
        jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
        for _ in range(steps):
            step()
        jax.profiler.stop_trace()
        (path,) = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
        with gzip.open(path) as f:
            trace = json.load(f)
    finally:
        shutil.rmtree(trace_dir, ignore_errors=True)
    events = [
        e for e in trace["traceEvents"] if e.get("ph") == "X" and "hlo_op" in e.get("args", {})
    ]
    busy = collections.Counter()
    for e in events:
        busy[e["args"]["hlo_module"]] += e["dur"]
    module = busy.most_common(1)[0][0]  # the train step's program
    hlo = _hlo_instructions(dump_dir, module)
    ops = _Ops(steps)
    single = collections.Counter()
    for e in events:
        if e["args"]["hlo_module"] != module:
            continue
        inst = hlo.get(e["args"]["hlo_op"], {})
        op_name = inst.get("op_name", "")
        kind = _layer_kind(op_name, names) if op_name else UNNAMED
        backward = "transpose(" in op_name
        opcode = inst.get("opcode", "?")
        label = re.sub(r"[.\d]+$", "", e["args"]["hlo_op"])
        what = "convolution" if opcode == "convolution" else inst.get("contains")
        if what == "convolution":
            label = f"{label} (convolution{', grouped' if inst['groups'] > 1 else ''})"
        elif what:
            label = f"{label} ({what})"
        if kind == UNNAMED:
            kind = _unnamed_kind(inst, what)
        ops.add(label, kind, backward, e["dur"])
        single[(e["args"]["hlo_op"], label, kind, inst.get("shape", "?"))] += e["dur"]
    out = ops.result()
    out["largest_kernels"] = [
        [f"{name} {shape}", kind, round(us / 1000.0 / steps, 2)]
        for (name, label, kind, shape), us in single.most_common(10)
    ]
    out["hlo_module"] = module
    out["hlo_matched"] = bool(hlo)
    return out


def _profile_tensorflow(step, steps, model) -> dict:
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    names = _layer_kinds_by_name(model)
    trace_dir = tempfile.mkdtemp(prefix="train_profile_tf_")
    try:
        tf.profiler.experimental.start(trace_dir)
        for _ in range(steps):
            step()
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    finally:
        shutil.rmtree(trace_dir, ignore_errors=True)
    ops = _Ops(steps)
    single = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for e in line.events:
                name = plane.event_metadata[e.metadata_id].name
                m = re.match(r"^([^:]+):(\w+)$", name)
                if not m:
                    continue  # executor bookkeeping (ExecutorState::Process, ParallelFor)
                path, op_type = m.groups()
                kind = _layer_kind(path, names)
                ops.add(op_type, kind, path.startswith("gradient_tape/"), e.duration_ps / 1e6)
                single[(name, kind or OUTSIDE)] += e.duration_ps / 1e6
    out = ops.result()
    out["largest_kernels"] = [
        [name, kind, round(us / 1000.0 / steps, 2)] for (name, kind), us in single.most_common(10)
    ]
    return out


def worker(args) -> None:
    sys.path.insert(0, HERE)
    import keras

    backend = keras.backend.backend()
    row = args.row
    spec = ROWS[row][1]
    step, model_name = _make_step(backend, spec, args)
    info = {"row": row, "backend": backend, "model": model_name, "keras": keras.__version__}
    for _ in range(args.warmup):
        step()
    wall = _time_steps(step, args.steps)
    info["step_ms"] = round(1000 * statistics.median(wall), 1)
    info["step_ms_all"] = [round(1000 * w, 1) for w in wall]
    if backend == "torch":
        import torch

        info["torch"] = torch.__version__
        info["threads"] = torch.get_num_threads()
        if spec["kind"] == "native":
            prof = _profile_torch(step, args.steps, native_model=step.model)
        else:
            prof = _profile_torch(step, args.steps, keras_model=step.model)
    elif backend == "jax":
        import jax

        info["jax"] = jax.__version__
        prof = _profile_jax(step, args.steps, step.model, os.environ["TRAIN_PROFILE_DUMP"])
    else:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        prof = _profile_tensorflow(step, args.steps, step.model)
    info.update(prof)
    if spec["kind"] == "zoo":
        from keras_padfree.training import speed

        names = speed.DEFAULT_KERNELS.get(backend, ()) if step.kernels is None else step.kernels
        info["kernels"] = list(names) if step.fast else []
    _send(info)


# --------------------------------------------------------------------------------- parent


def _run_row(row, args) -> dict:
    backend = ROWS[row][0]
    python = sys.executable
    if backend == "torch":
        python = os.path.join(args.peer_venv, "bin", "python")
        if not os.path.exists(python):
            raise SystemExit(
                f"error: the PyTorch rows need {python}: run `bash benchmarks/peer_env.sh` first"
            )
    dump = tempfile.mkdtemp(prefix="train_profile_hlo_")
    from train_throughput import worker_env

    env = worker_env(backend, TRAIN_PROFILE_DUMP=dump, **ROWS[row][1].get("env", {}))
    if backend == "jax":
        flags = f"--xla_dump_to={dump} --xla_dump_hlo_as_text"
        env["XLA_FLAGS"] = " ".join(x for x in (os.environ.get("XLA_FLAGS"), flags) if x)
    cmd = [python, os.path.abspath(__file__), "--worker", "--row", row, *args.worker_argv]
    log = os.path.join(args.log_dir, f"train_profile_{row}.log")
    t0 = time.time()
    try:
        with open(log, "w") as err:
            out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    finally:
        shutil.rmtree(dump, ignore_errors=True)
    for line in out.stdout.splitlines():
        if line.startswith(MARK):
            info = json.loads(line[len(MARK) :])
            info["label"] = LABELS[row]
            info["process_s"] = round(time.time() - t0, 1)
            return info
    return {"row": row, "label": LABELS[row], "error": f"exit {out.returncode}; see {log}"}


def run(args) -> dict:
    t0 = time.time()
    results = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": len(os.sched_getaffinity(0)),
        "family": args.family,
        "size": args.size,
        "batch": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "load_before": list(os.getloadavg()),
        "rows": [],
    }
    for row in args.rows:
        info = _run_row(row, args)
        print(f"{row}: {info.get('step_ms', info.get('error'))}", flush=True)
        results["rows"].append(info)
    results["load_after"] = list(os.getloadavg())
    results["wall_s"] = round(time.time() - t0, 1)
    return results


def write_report(results, path_md, path_json) -> None:
    with open(path_json, "w") as f:
        json.dump(results, f, indent=1)
    rows = [r for r in results["rows"] if "error" not in r]
    lb, la = results["load_before"], results["load_after"]
    lines = [
        "# Where a train step's time goes (per-kernel profiles)",
        "",
        f"Generated by `python benchmarks/train_profile.py` on {results['date']} "
        f"({results['machine']}, {results['cpus']} CPU cores, no GPU): {results['family']}, "
        f"the zoo's 224-pixel original and its native PyTorch peer, input "
        f"{results['size']}x{results['size']}x3, batch {results['batch']}, float32, the train "
        f"step of `benchmarks/train_throughput.py`. Per row: {results['warmup']} warm-up steps, "
        f"{results['steps']} timed steps (median: *step*), then {results['steps']} profiled "
        f"steps, in a process of its own; rows one after the other. Whole run: "
        f"{results['wall_s']:.0f} s; load average before {lb[0]:.2f} / {lb[1]:.2f} / "
        f"{lb[2]:.2f}, after {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}.",
        "",
        "Kernel times are per step, the sum of the kernels' own times (PyTorch: `self_cpu_time` "
        "of every operator; JAX: XLA:CPU's thunks; TensorFlow: the executor's ops), attributed "
        "to the layer they compute, forward + backward. *step* is wall time without the "
        "profiler; *outside kernels* = step - kernels (Python, dispatch, framework; negative "
        "where kernels overlap on the two cores).",
        "",
        "| ms per step | " + " | ".join(r["label"] for r in rows) + " |",
        "|---|" + "---:|" * len(rows),
        "| **step (wall)** | " + " | ".join(f"**{r['step_ms']:.0f}**" for r in rows) + " |",
        "| kernels | " + " | ".join(f"{r['kernel_ms']:.0f}" for r in rows) + " |",
        "| outside kernels | "
        + " | ".join(f"{r['step_ms'] - r['kernel_ms']:.0f}" for r in rows)
        + " |",
    ]
    for kind in KINDS:
        cells = [f"{sum(r['kinds'].get(kind, [0.0, 0.0])):.0f}" for r in rows]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "## Largest kernels per row (ms per step, the layer kind they belong to)", ""]
    for r in rows:
        extra = f"; kernels: {', '.join(r['kernels']) or 'Keras own'}" if "kernels" in r else ""
        lines += [f"**{r['label']}** (`{r['model']}`{extra}):", ""]
        lines += [f"- {op} [{kind}]: {ms:.1f}" for op, kind, ms in r["top_ops"]]
        if r.get("largest_kernels"):
            lines += ["", "Largest single kernels (name, output shape):", ""]
            lines += [f"- `{op}` [{kind}]: {ms:.1f}" for op, kind, ms in r["largest_kernels"]]
        lines.append("")
    errors = [r for r in results["rows"] if "error" in r]
    if errors:
        lines += ["## Rows that failed", ""]
        lines += [f"- {r['label']}: {r['error']}" for r in errors]
        lines.append("")
    with open(path_md, "w") as f:
        f.write("\n".join(lines))


def parse_args(argv=None):
    from peers import FAMILIES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated: " + ", ".join(ROWS))
    p.add_argument("--family", default=FAMILIES[0][0], choices=[f[0] for f in FAMILIES])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--peer-venv", default=os.path.join(HERE, ".venv"))
    p.add_argument("--out-dir", default=RESULTS)
    p.add_argument("--log-dir", default="/tmp", help="worker logs")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--row", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    for r in args.rows:
        if r not in ROWS:
            p.error(f"unknown row {r!r}; known: {', '.join(ROWS)}")
    for name in ("size", "batch_size", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    from train_throughput import step_argv

    args.worker_argv = ["--family", args.family, *step_argv(args)]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    os.makedirs(args.out_dir, exist_ok=True)
    results = run(args)
    write_report(
        results,
        os.path.join(args.out_dir, "train_profile.md"),
        os.path.join(args.out_dir, "train_profile.json"),
    )
    print(open(os.path.join(args.out_dir, "train_profile.md")).read())


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.path.insert(0, ROOT)
    main()
