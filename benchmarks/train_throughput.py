"""Training throughput: images/second of a full train step, per backend, and of the input pipeline.

For each Keras backend (one subprocess per backend) it times ``model.train_on_batch`` (forward,
loss, backward and the CoupledSGD update of ``keras_padfree.training``) on generated CIFAR-sized
data for the padding-free (PF) and original CIFAR models of the zoo, next to
``keras.applications.MobileNetV3Large(weights=None)`` at the same input, in the same process. With
TensorFlow it also times one model with XLA on and off, which is how ``training/fit.py``'s default
(``--jit-compile auto``: XLA off for TensorFlow on CPU) was chosen. Then it times the tf.data input
pipeline alone with CIFAR-style (pad-crop + flip of cached 32x32 images) and Dogs-style (resize
256 -> random crop 224 + flip + brightness of variable-size images) preprocessing, and compares it
with what the fastest model consumes.

Every number is the median over ``--repeats`` timed repeats of ``--steps`` steps after warm-up.

    python benchmarks/train_throughput.py      # -> benchmarks/results/train_throughput.{md,json}
    python benchmarks/train_throughput.py --backends tensorflow --steps 3 --repeats 2
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")

PAIRS = [  # (label, orig registry name, PF registry name)
    ("MobileNetV3-large (CIFAR)", "mobilenetv3_large_cifar", "mobilenetv3_large_pf_cifar"),
    ("GhostNet 1.0x (CIFAR)", "ghostnet_cifar", "ghostnet_pf_cifar"),
    ("ResNet-20 (BSConv lib)", "bsconv_resnet20_cifar", "bsconv_resnet20_cifar_pf"),
]
PEER = "keras.applications.MobileNetV3Large"
BACKENDS = ("tensorflow", "jax", "torch")


def _build(name, size, classes):
    import keras

    if name == PEER:
        return keras.applications.MobileNetV3Large(
            input_shape=(size, size, 3), weights=None, classes=classes,
            include_preprocessing=False)
    from keras_padfree.applications import create_model

    return create_model(name, input_shape=(size, size, 3), classes=classes)


def _time_train(name, size, batch, steps, repeats, jit):
    import keras
    import numpy as np

    from keras_padfree.training import get_recipe

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    classes = 100
    model = _build(name, size, classes)
    model.compile(optimizer=get_recipe("bsconv_set1").make_optimizer(100),
                  loss=keras.losses.CategoricalCrossentropy(), jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, size, size, 3)).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]
    t0 = time.perf_counter()
    for _ in range(2):  # warm-up: tracing / compilation
        loss = model.train_on_batch(x, y)
    warmup = time.perf_counter() - t0
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(x, y)
        rates.append(batch * steps / (time.perf_counter() - t0))
    loss = float(np.asarray(loss if not isinstance(loss, list) else loss[0]))
    return {"model": name, "size": size, "batch": batch, "jit_compile": jit,
            "images_per_s": statistics.median(rates), "repeats": [round(r, 2) for r in rates],
            "warmup_s": round(warmup, 1), "loss": loss,
            "params": int(sum(np.prod(v.shape) for v in model.trainable_variables))}


def worker(args):
    """Runs inside one backend's subprocess; writes a JSON list of measurements."""
    import keras

    from keras_padfree.applications import list_models

    backend = keras.backend.backend()
    known = set(list_models())
    rows = []
    names = [PEER] + [n for _, o, p in PAIRS for n in (o, p)]
    jit = "auto" if backend != "torch" else False
    for name in names:
        if name != PEER and name not in known:
            rows.append({"model": name, "error": "not registered"})
            continue
        try:
            rows.append(_time_train(name, 32, args.batch_size, args.steps, args.repeats, jit))
        except Exception as e:  # noqa: BLE001 -- one failing model must not hide the others
            rows.append({"model": name, "error": f"{type(e).__name__}: {e}"[:300]})
        print(backend, rows[-1], flush=True)
        _dump(args.worker_out, backend, rows)
    if backend == "tensorflow":
        for flag in (False, True):
            try:
                row = _time_train("bsconv_resnet20_cifar_pf", 32, args.batch_size, args.steps,
                                  args.repeats, flag)
                row["xla_check"] = True
                rows.append(row)
            except Exception as e:  # noqa: BLE001
                rows.append({"model": "bsconv_resnet20_cifar_pf", "jit_compile": flag,
                             "xla_check": True, "error": f"{type(e).__name__}: {e}"[:300]})
            print(backend, rows[-1], flush=True)
            _dump(args.worker_out, backend, rows)
        row = _time_train(PEER, 224, 16, max(2, args.steps // 2), args.repeats, "auto")
        row["dogs_size_peer"] = True
        rows.append(row)
        print(backend, row, flush=True)
    _dump(args.worker_out, backend, rows, done=True)


def _dump(path, backend, rows, done=False):
    """Writes the rows measured so far (a backend that runs out of time keeps them)."""
    import keras

    with open(path + ".tmp", "w") as f:
        json.dump({"backend": backend, "keras": keras.__version__, "rows": rows,
                   "complete": done}, f, indent=1)
    os.replace(path + ".tmp", path)


def pipeline_throughput(repeats):
    """images/s of the CIFAR- and Dogs-style training pipelines on generated data."""
    import numpy as np
    import tensorflow as tf

    from keras_padfree.data import pipeline
    from keras_padfree.data.specs import get_dataset_spec
    from keras_padfree.training import get_recipe

    rng = np.random.default_rng(0)
    out = {}
    cifar = rng.integers(0, 255, (10000, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, 10000)
    src = pipeline.DataSource(tf.data.Dataset.from_tensor_slices((cifar, labels)), 10000, 100,
                              (32, 32), get_dataset_spec("cifar100"), "train")
    dogs_imgs = [rng.integers(0, 255, (int(h), int(w), 3), dtype=np.uint8)
                 for h, w in zip(rng.integers(300, 500, 256), rng.integers(300, 500, 256))]
    dogs_ds = tf.data.Dataset.from_generator(
        lambda: ((im, i % 120) for i, im in enumerate(dogs_imgs)),
        output_signature=(tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((), tf.int64)))
    dogs_cached = dogs_ds.cache()
    for _ in dogs_cached:  # decode once: the benchmark measures preprocessing, not the generator
        pass
    dsrc = pipeline.DataSource(dogs_cached, 256, 120, None, get_dataset_spec("stanford_dogs"),
                               "train")
    cases = [("CIFAR-style (pad-crop 4 + flip, 32x32, batch 128)", src,
              get_recipe("bsconv_set1").preprocessing, 32, 100, 128, 10000),
             ("Dogs-style (resize 256, crop 224, flip, brightness, batch 64)", dsrc,
              get_recipe("bsconv_set1_dogs").preprocessing, 224, 120, 64, 256)]
    for label, source, prep, size, classes, batch, n in cases:
        rates = []
        stream = pipeline.train_stream(source, prep, size=size, classes=classes,
                                       batch_size=batch, epochs=repeats + 1)
        it = iter(stream)
        per_epoch = -(-n // batch)
        for _ in range(per_epoch):  # warm-up epoch (fills the cache)
            next(it)
        for _ in range(repeats):
            t0 = time.perf_counter()
            count = 0
            for _ in range(per_epoch):
                count += int(next(it)[0].shape[0])
            rates.append(count / (time.perf_counter() - t0))
        out[label] = {"images_per_s": statistics.median(rates),
                      "repeats": [round(r, 1) for r in rates], "size": size, "batch": batch}
        print(label, out[label], flush=True)
    return out


def _fmt(v):
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def write_report(results, path_md, path_json, args, wall):
    with open(path_json, "w") as f:
        json.dump(results, f, indent=1)
    lines = [
        "# Training throughput (images/second, full train step)",
        "",
        f"Generated by `python benchmarks/train_throughput.py` on {results['date']} "
        f"({results['machine']}; {results['cpus']} CPU cores available to the process; no GPU). "
        "Keras "
        f"{results.get('keras', '?')}. Input 32x32x3, 100 classes, batch {args.batch_size}, "
        "generated data; optimizer CoupledSGD (bsconv_set1 recipe: coupled L2, momentum 0.9). "
        f"Median of {args.repeats} repeats of {args.steps} `train_on_batch` steps after 2 warm-up "
        "steps; one subprocess per backend. JIT: `jit_compile='auto'` (TensorFlow on CPU: XLA "
        f"off; JAX: always jitted; PyTorch: eager). Whole run: {wall:.0f} s"
        + (" with the backends and the pipeline timing run at the same time (--parallel)."
           if results.get("parallel") else "."),
        "",
    ]
    if results.get("load_avg") is not None:
        lines += [f"Load average (1 min) when the run started: {results['load_avg']:.1f} on "
                  f"{results['cpus']} cores.", ""]
    if results.get("note"):
        lines += [f"**Note.** {results['note']}", ""]
    lines += [
        "Ratio = PF / orig for the model pairs, model / peer for the peer column "
        "(peer = `keras.applications.MobileNetV3Large(weights=None)` at the same input, "
        "same process).",
        "",
    ]
    for backend in results["backends"]:
        lines += [f"## {backend}", ""]
        measured = results["backends"][backend].get("measured")
        if measured:
            lines += [f"Measured {measured}.", ""]
        if results["backends"][backend].get("error"):
            lines += [f"Note: {results['backends'][backend]['error']}; the rows marked n/a were "
                      "not reached.", ""]
        rows = {r["model"]: r for r in results["backends"][backend]["rows"]
                if not r.get("xla_check") and not r.get("dogs_size_peer")}
        peer = rows.get(PEER, {}).get("images_per_s")
        lines += ["| model | orig img/s | PF img/s | PF / orig | orig / peer | PF / peer |",
                  "|---|---:|---:|---:|---:|---:|"]
        if peer:
            lines.append(f"| {PEER} (peer) | {_fmt(peer)} | | | 1.00 | |")
        for label, o, p in PAIRS:
            ro, rp = rows.get(o, {}), rows.get(p, {})
            vo, vp = ro.get("images_per_s"), rp.get("images_per_s")
            cells = [_fmt(vo) if vo else ro.get("error", "n/a"),
                     _fmt(vp) if vp else rp.get("error", "n/a"),
                     f"{vp / vo:.2f}" if vo and vp else "",
                     f"{vo / peer:.2f}" if vo and peer else "",
                     f"{vp / peer:.2f}" if vp and peer else ""]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        xla = [r for r in results["backends"][backend]["rows"] if r.get("xla_check")]
        if xla:
            lines += ["", "XLA check (ResNet-20 PF): " + ", ".join(
                f"jit_compile={r['jit_compile']}: "
                + (_fmt(r["images_per_s"]) + " img/s" if "images_per_s" in r else r["error"])
                for r in xla)]
        big = [r for r in results["backends"][backend]["rows"] if r.get("dogs_size_peer")]
        if big:
            lines += ["", f"Peer at 224x224 (batch {big[0]['batch']}): "
                      f"{_fmt(big[0]['images_per_s'])} img/s."]
        lines.append("")
    pipe = results.get("pipeline", {})
    if pipe:
        fastest = max((r["images_per_s"] for b in results["backends"].values()
                       for r in b["rows"] if "images_per_s" in r and r["size"] == 32
                       and not r.get("xla_check")), default=None)
        fastest224 = max((r["images_per_s"] for b in results["backends"].values()
                          for r in b["rows"] if r.get("dogs_size_peer")), default=None)
        lines += ["## Input pipeline alone (tf.data, generated images)", "",
                  "| pipeline | img/s | fastest consumer img/s | pipeline / consumer |",
                  "|---|---:|---:|---:|"]
        for label, r in pipe.items():
            consumer = fastest if r["size"] == 32 else fastest224
            ratio = f"{r['images_per_s'] / consumer:.1f}x" if consumer else ""
            lines.append(f"| {label} | {_fmt(r['images_per_s'])} | "
                         f"{_fmt(consumer) if consumer else 'n/a'} | {ratio} |")
        lines += ["", "Consumer = the fastest train step measured above at that input size "
                  "(any backend). The pipeline and the model share the same CPU cores during "
                  "training, so the pipeline is measured alone.", ""]
    with open(path_md, "w") as f:
        f.write("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out-dir", default=RESULTS)
    p.add_argument("--backend-timeout", type=int, default=900,
                   help="seconds per backend; the models measured by then are reported")
    p.add_argument("--merge", action="store_true",
                   help="keep the other backends' rows of an existing train_throughput.json")
    p.add_argument("--skip-pipeline", action="store_true",
                   help="with --merge: keep the stored input-pipeline numbers")
    p.add_argument("--parallel", action="store_true",
                   help="run the backends' subprocesses (and the pipeline timing) at the same "
                        "time: faster, but they share the cores, so only the ratios within a "
                        "backend compare")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite train_throughput.md from the stored train_throughput.json")
    p.add_argument("--note", default=None, help="a remark printed at the top of the report")
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker_out:
        worker(args)
        return
    if args.report_only:
        path = os.path.join(args.out_dir, "train_throughput.json")
        with open(path) as f:
            results = json.load(f)
        if args.note:
            results["note"] = args.note
        for key in ("batch", "steps", "repeats"):
            setattr(args, {"batch": "batch_size"}.get(key, key), results[key])
        write_report(results, os.path.join(args.out_dir, "train_throughput.md"), path, args,
                     results.get("wall_s", 0.0))
        print(open(os.path.join(args.out_dir, "train_throughput.md")).read())
        return
    t0 = time.time()
    os.makedirs(args.out_dir, exist_ok=True)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
               "cpus": len(os.sched_getaffinity(0)), "batch": args.batch_size,
               "steps": args.steps, "repeats": args.repeats, "backends": {},
               "parallel": args.parallel, "load_avg": os.getloadavg()[0], "note": args.note}
    def measured_now():
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return f"{now}, 1-minute load average {os.getloadavg()[0]:.1f} at its start"

    def launch(backend):
        out = os.path.join(args.out_dir, f".worker_{backend}.json")
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": ROOT}
        cmd = [sys.executable, os.path.abspath(__file__), "--worker-out", out,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--repeats", str(args.repeats)]
        return subprocess.Popen(cmd, env=env), out, time.time(), measured_now()

    backends = args.backends.split(",")
    running = {b: launch(b) for b in backends} if args.parallel else {}
    if args.parallel and not args.skip_pipeline:
        results["pipeline"] = pipeline_throughput(args.repeats)
    for backend in backends:
        proc, out, started, measured = running.get(backend) or launch(backend)
        try:
            left = max(1.0, args.backend_timeout - (time.time() - started))
            code = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = f"stopped after the {args.backend_timeout} s budget"
        if os.path.exists(out):
            with open(out) as f:
                data = json.load(f)
            if code != 0:
                data["error"] = f"incomplete: {code}"
            data["measured"] = measured
            results["backends"][backend] = data
            results["keras"] = data["keras"]
            os.remove(out)
        else:
            results["backends"][backend] = {"rows": [], "error": f"no result: {code}"}
    previous_path = os.path.join(args.out_dir, "train_throughput.json")
    previous = {}
    if args.merge and os.path.exists(previous_path):
        with open(previous_path) as f:
            previous = json.load(f)
        for backend, data in previous.get("backends", {}).items():
            results["backends"].setdefault(backend, data)
        results.setdefault("keras", previous.get("keras"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.skip_pipeline and previous.get("pipeline"):
        results["pipeline"] = previous["pipeline"]
    elif "pipeline" not in results:
        results["pipeline"] = pipeline_throughput(args.repeats)
    wall = time.time() - t0
    results["wall_s"] = round(wall, 1)
    write_report(results, os.path.join(args.out_dir, "train_throughput.md"),
                 os.path.join(args.out_dir, "train_throughput.json"), args, wall)
    print(open(os.path.join(args.out_dir, "train_throughput.md")).read())


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
