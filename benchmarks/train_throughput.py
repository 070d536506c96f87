"""Training throughput against native PyTorch: images/second of a full train step, every backend.

For each family of the paper's second set it times one train step (forward, loss, backward, SGD
update) of

* the native PyTorch model: torchvision's ``mobilenet_v3_large`` / ``shufflenet_v2_x1_0``, timm's
  ``ghostnet_100`` (random weights, eager; NCHW as PyTorch builds it, and channels-last memory),
* the zoo's 224-pixel original (``*_vegfru``: the same network, parameter for parameter, which the
  script checks first) and its padding-free version, on Keras' TensorFlow, JAX and PyTorch
  backends, with the settings ``keras_padfree.training.speed.default_settings`` picks
  (what ``training/fit.py`` uses),

at one input size and batch (default 64x64, batch 128, 100 classes: the padding-free 224-pixel
layouts need at least 57-61 pixels, so the issue's 32x32 cannot hold both), in float32 and in the
mixed policies (PyTorch: ``torch.autocast`` with bfloat16 / float16 and a GradScaler). Evidence
rows: the zoo with Keras' own kernels (PyTorch, JAX: without ``speed.install_fast_kernels``) and
TensorFlow with XLA.

One family at a time: one worker process per backend holds that family's models, built and
warmed up (the three start at the same time, before any timing); then ``--rounds`` rounds time
``--steps`` steps of every model, the backends one after the other and the models in a rotated
order, so that a change of machine load hits every row alike; then the workers end and the next
family's start. Numbers are medians over the rounds. (Workers holding every family's models, about
40 in all, made every row about half as fast, native ones included, on a 23 GB machine; rounds of
one step cost another ~15 %.) The PyTorch worker runs
in the environment of ``benchmarks/peer_env.sh`` (torch 2.14.1 + torchvision 0.29.1 + timm), so
that every PyTorch number of the table (native and Keras' torch backend) comes from one torch.

    bash benchmarks/peer_env.sh        # once: creates benchmarks/.venv (about 6 GB)
    python benchmarks/train_throughput.py        # -> benchmarks/results/train_throughput.{md,json}
    python benchmarks/train_throughput.py --families MobileNetV3-large --policies float32 \\
        --rounds 2 --out-dir /tmp/tt             # a quick look
"""

from __future__ import annotations

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
BACKENDS = ("tensorflow", "jax", "torch")
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
CLASSES = 100
MARK = "@@"  # worker protocol lines on stdout start with this


# ----------------------------------------------------------------------------------- plan


def plan(backend: str, args) -> list[dict]:
    """The configurations one backend's worker builds and times.

    Every family: orig and PF in float32 (and the native peer, NCHW and channels-last). The mixed
    policies: the originals (and their native peers) of ``--mixed-families`` (PF too with
    ``--mixed-pf``). Evidence rows (``--evidence-families``, float32 originals): Keras' own
    kernels where the backend's default kernels replace them, every kernel of ``speed.KERNELS``
    where some are opt-in, TensorFlow with XLA.
    """
    from peers import FAMILIES

    configs = []

    def add(**c):
        configs.append(c)

    for label, orig, pf, library, peer in FAMILIES:
        if label not in args.families:
            continue
        for policy in args.policies:
            if policy != "float32" and label not in args.mixed_families:
                continue
            models = [("orig", orig), ("pf", pf)]
            if policy != "float32" and not args.mixed_pf:
                models = models[:1]
            for variant, name in models:
                add(
                    family=label,
                    kind="zoo",
                    variant=variant,
                    model=name,
                    policy=policy,
                    kernels="fast",
                )
            if backend == "torch" and args.peers:
                for layout in ("nchw", "channels_last") if policy == "float32" else ("nchw",):
                    add(
                        family=label,
                        kind="native",
                        variant="native",
                        model=f"{library}.{peer}",
                        library=library,
                        peer=peer,
                        policy=policy,
                        layout=layout,
                    )
        if not args.evidence or label not in args.evidence_families:
            continue
        # Evidence: the zoo original with Keras' own kernels where the default installs some, and
        # with every kernel where some are opt-in (as speed.DEFAULT_KERNELS / KERNELS say).
        from keras_padfree.training.speed import DEFAULT_KERNELS
        from keras_padfree.training.speed import KERNELS

        default = set(DEFAULT_KERNELS.get(backend, ()))
        every = set(KERNELS.get(backend, ()))
        original = dict(family=label, kind="zoo", variant="orig", model=orig, policy="float32")
        for kernels, differs in (("keras", bool(default)), ("all", every != default)):
            if differs:
                add(**original, kernels=kernels)
        if backend == "tensorflow":
            add(**original, kernels="fast", jit_compile=True)
    for i, c in enumerate(configs):
        c["id"] = i
    return configs


# --------------------------------------------------------------------------------- worker


def _send(obj) -> None:
    print(MARK + json.dumps(obj), flush=True)


def kernel_choice(kernels: str, backend: str, settings: dict) -> tuple[bool, tuple | None]:
    """``(install?, names for speed.install_fast_kernels)`` of a row's ``kernels``: "fast" the
    defaults fit.py installs (``settings["fast_kernels"]``; None: ``DEFAULT_KERNELS``), "all"
    every kernel of ``speed.KERNELS`` (opt-in ones too, whatever the defaults), "keras" none."""
    from keras_padfree.training import speed

    if kernels == "fast":
        return bool(settings["fast_kernels"]), None
    if kernels == "all":
        every = tuple(speed.KERNELS.get(backend, ()))
        return bool(every), every
    if kernels == "keras":
        return False, ()
    raise ValueError(f"Unknown kernels {kernels!r}; expected fast, all or keras.")


class _ZooStep:
    def __init__(self, config, args, settings):
        import keras
        import numpy as np

        from keras_padfree.applications import create_model
        from keras_padfree.training import get_recipe

        backend = keras.backend.backend()
        self.fast, self.kernels = kernel_choice(config["kernels"], backend, settings)
        self.backend = backend
        jit = config.get("jit_compile", settings["jit_compile"])
        with self._kernels():
            keras.config.set_dtype_policy(config["policy"])
            try:
                keras.utils.set_random_seed(0)
                size = args.size
                self.model = create_model(
                    config["model"], input_shape=(size, size, 3), classes=CLASSES
                )
                self.model.compile(
                    optimizer=get_recipe("second_set_cifar").make_optimizer(100),
                    loss=keras.losses.CategoricalCrossentropy(),
                    jit_compile=jit,
                    steps_per_execution=settings["steps_per_execution"],
                )
            finally:
                keras.config.set_dtype_policy("float32")
        rng = np.random.default_rng(0)
        self.x = rng.uniform(0, 1, (args.batch_size, size, size, 3)).astype("float32")
        self.y = np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, args.batch_size)]
        from peers import keras_layout

        self.params = keras_layout(self.model)
        self.jit = jit

    def _kernels(self):
        import contextlib

        from keras_padfree.training import speed

        @contextlib.contextmanager
        def ctx():
            if self.fast:
                speed.install_fast_kernels(self.backend, self.kernels)
            try:
                yield
            finally:
                speed.uninstall_fast_kernels()

        return ctx()

    def __call__(self):
        with self._kernels():
            loss = self.model.train_on_batch(self.x, self.y)
        return float(loss if not isinstance(loss, list) else loss[0])


class _NativeStep:
    def __init__(self, config, args):
        import numpy as np
        import torch
        from peers import build_peer

        torch.manual_seed(0)
        self.model = build_peer(config["library"], config["peer"], CLASSES)
        self.model.train()
        self.memory = (
            torch.channels_last if config["layout"] == "channels_last" else torch.contiguous_format
        )
        self.model = self.model.to(memory_format=self.memory)
        # The zoo's optimizer as torch has it: SGD, Nesterov momentum 0.9, coupled L2 1e-4
        # (the second_set_cifar recipe, whose CoupledSGD adds l2 * w to the gradient).
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=0.03, momentum=0.9, nesterov=True, weight_decay=1e-4
        )
        rng = np.random.default_rng(0)
        self.x = rng.uniform(0, 1, (args.batch_size, 3, args.size, args.size)).astype("float32")
        self.y = rng.integers(0, CLASSES, args.batch_size)
        policy = config["policy"]
        self.dtype = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(policy)
        self.scaler = torch.amp.GradScaler("cpu") if policy == "mixed_float16" else None
        self.torch = torch

    def __call__(self):
        torch = self.torch
        x = torch.from_numpy(self.x).contiguous(memory_format=self.memory)
        y = torch.from_numpy(self.y)
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=self.dtype, enabled=self.dtype is not None):
            loss = torch.nn.functional.cross_entropy(self.model(x), y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        return float(loss.detach())


def worker(args) -> None:
    """One backend's process: builds and warms up its plan, then times rounds on request."""
    sys.path.insert(0, HERE)
    import keras

    from keras_padfree.training import speed

    backend = keras.backend.backend()
    settings = speed.default_settings(backend, "cpu")
    configs = plan(backend, args)
    steps = {}
    info = {
        "backend": backend,
        "keras": keras.__version__,
        "settings": {k: v for k, v in settings.items()},
        "configs": [],
    }
    if backend == "torch":
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        try:
            import timm
            import torchvision

            info["torchvision"] = torchvision.__version__
            info["timm"] = timm.__version__
        except ImportError:
            pass
    if backend == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    if backend == "jax":
        import jax

        info["jax"] = jax.__version__
    for c in configs:
        row = dict(c)
        t0 = time.perf_counter()
        try:
            if c["kind"] == "native":
                step = _NativeStep(c, args)
                from peers import torch_layout

                row["params"] = _jsonable(torch_layout(step.model))
            else:
                step = _ZooStep(c, args, settings)
                row["params"] = _jsonable(step.params)
                row["jit_compile"] = step.jit
                row["fast_kernels"] = step.fast
            for _ in range(args.warmup):
                row["loss"] = step()
            steps[c["id"]] = step
        except Exception as e:  # noqa: BLE001 -- one failing configuration must not hide others
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        row["warmup_s"] = round(time.perf_counter() - t0, 1)
        info["configs"].append(row)
        print(backend, {k: v for k, v in row.items() if k != "params"}, file=sys.stderr, flush=True)
    _send({"ready": info})
    r = 0
    for line in sys.stdin:
        if line.strip() != "round":
            break
        ids = sorted(steps)
        ids = ids[r % len(ids) :] + ids[: r % len(ids)] if ids else ids
        out = {}
        for i in ids:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[i]()
            out[i] = args.batch_size * args.steps / (time.perf_counter() - t0)
        r += 1
        _send({"round": out})


def _jsonable(layout: dict) -> dict:
    return {k: (dict(sorted(v.items())) if hasattr(v, "items") else v) for k, v in layout.items()}


# --------------------------------------------------------------------------------- parent


def _python_for(backend: str, args) -> tuple[str, str]:
    """The interpreter of a backend's worker, and a note on where it comes from."""
    if backend == "torch" and args.peers:
        peer = os.path.join(args.peer_venv, "bin", "python")
        if os.path.exists(peer):
            return peer, f"{args.peer_venv} (benchmarks/peer_env.sh)"
        raise SystemExit(
            f"error: the PyTorch rows need {peer}: run `bash benchmarks/peer_env.sh` first, "
            "or pass --no-peers (Keras' torch backend only, in this interpreter)"
        )
    return sys.executable, "this interpreter"


def worker_env(backend: str, **extra: str) -> dict:
    """A worker's environment: training/fit.py's start-up defaults
    (``training.startup.environment_defaults``: TensorFlow's oneDNN kernels on x86-64), then this
    process's environment (a variable set here wins), then the backend and ``extra``."""
    import importlib.util

    path = os.path.join(ROOT, "keras_padfree", "training", "startup.py")
    spec = importlib.util.spec_from_file_location("_benchmark_startup", path)
    startup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(startup)  # the standard library only: no TensorFlow in the parent
    return {
        **startup.environment_defaults(),
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join([ROOT, HERE]),
        **extra,
    }


class _Worker:
    def __init__(self, backend, args, log_dir, families):
        self.backend = backend
        self.python, self.where = _python_for(backend, args)
        env = worker_env(backend)
        argv = list(args.worker_argv)
        argv[argv.index("--families") + 1] = ",".join(families)
        cmd = [self.python, os.path.abspath(__file__), "--worker", *argv]
        tag = "_".join(f.split()[0] for f in families)
        self.log_path = os.path.join(log_dir, f"train_throughput_{backend}_{tag}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )

    def read(self):
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        raise RuntimeError(
            f"{self.backend} worker ended (exit {self.proc.wait()}); see {self.log_path}"
        )

    def ask_round(self):
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return self.read()["round"]

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _load() -> float:
    return os.getloadavg()[0]


def run(args) -> dict:
    t_start = time.time()
    results = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_flags": _simd_flags(),
        "cpus": len(os.sched_getaffinity(0)),
        "size": args.size,
        "batch": args.batch_size,
        "classes": CLASSES,
        "steps": args.steps,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "load_before": list(os.getloadavg()),
        "note": args.note,
        "backends": {},
    }
    log_dir = args.log_dir or args.out_dir
    os.makedirs(log_dir, exist_ok=True)
    results["load_after_warmup"] = []
    # One family at a time: a worker per backend holds that family's models only. Holding every
    # family's (three workers, ~40 models, a 23 GB machine) made every row, native ones included,
    # about half as fast as the same rows timed with one family (README).
    for family in args.families:
        _run_family(family, args, log_dir, results)
    results["load_after"] = list(os.getloadavg())
    results["wall_s"] = round(time.time() - t_start, 1)
    _check_peers(results)
    return results


def _run_family(family, args, log_dir, results) -> None:
    """Times one family: its workers start together, warm up, then take ``--rounds`` rounds in
    a rotated order. Configuration ids continue those of the families timed before."""
    workers = [_Worker(b, args, log_dir, [family]) for b in args.backends]
    ids = {}  # (backend, the worker's id) -> id in the results
    try:
        for w in workers:
            info = w.read()["ready"]
            info["python"] = w.where
            merged = results["backends"].setdefault(w.backend, {**info, "configs": [], "rates": {}})
            for c in info["configs"]:
                new_id = len(merged["configs"])
                ids[w.backend, str(c["id"])] = str(new_id)
                merged["configs"].append({**c, "id": new_id})
                if "error" not in c:
                    merged["rates"][str(new_id)] = []
            print(f"{family}, {w.backend}: {len(info['configs'])} configurations ready", flush=True)
        results["load_after_warmup"].append(list(os.getloadavg()))
        for r in range(args.rounds):
            order = workers[r % len(workers) :] + workers[: r % len(workers)]
            for w in order:
                rates = w.ask_round()
                for i, v in rates.items():
                    results["backends"][w.backend]["rates"][ids[w.backend, str(i)]].append(
                        round(v, 2)
                    )
            print(f"{family}: round {r + 1}/{args.rounds} done, load {_load():.2f}", flush=True)
    finally:
        for w in workers:
            w.close()


def timed_per_family(results) -> bool:
    """Whether a results file was timed one family at a time: its ``load_after_warmup`` holds one
    load triple per family (older files: one triple, all families' models held at once)."""
    loads = results.get("load_after_warmup") or []
    return all(isinstance(x, list) for x in loads) and bool(loads)


def _simd_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration):
        return []
    keep = (
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512_bf16",
        "avx512_fp16",
        "amx_bf16",
        "amx_tile",
        "avx_vnni",
    )
    return [f for f in keep if f in flags]


def _check_peers(results) -> None:
    """Peer vs zoo original: same parameters (from the sizes both workers recorded)."""
    from peers import compare_layouts

    zoo = {}
    for b in results["backends"].values():
        for c in b["configs"]:
            if c["kind"] == "zoo" and c["variant"] == "orig" and "params" in c:
                zoo.setdefault(c["family"], c["params"])
    checks = {}
    for c in results["backends"].get("torch", {}).get("configs", []):
        if c["kind"] == "native" and "params" in c and c["family"] in zoo:
            checks.setdefault(
                c["family"],
                {
                    "peer": c["model"],
                    **compare_layouts(_counters(c["params"]), _counters(zoo[c["family"]])),
                },
            )
    results["peer_checks"] = checks


def _counters(layout: dict) -> dict:
    from collections import Counter

    return {
        k: (Counter({int(s): n for s, n in v.items()}) if isinstance(v, dict) else v)
        for k, v in layout.items()
    }


# --------------------------------------------------------------------------------- report


def _median(v):
    return statistics.median(v) if v else None


def _fmt(v):
    if v is None:
        return "n/a"
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def table_rows(results) -> list[dict]:
    """One row per configuration: backend, family, variant, policy, median img/s."""
    rows = []
    for backend, b in results["backends"].items():
        for c in b["configs"]:
            rates = b["rates"].get(str(c["id"]), [])
            rows.append(
                {
                    "backend": backend,
                    **{
                        k: c.get(k)
                        for k in (
                            "family",
                            "kind",
                            "variant",
                            "model",
                            "policy",
                            "kernels",
                            "layout",
                            "jit_compile",
                            "error",
                        )
                    },
                    "images_per_s": _median(rates),
                    "rates": rates,
                }
            )
    return rows


def _find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def write_report(results, path_md, path_json) -> None:
    rows = table_rows(results)
    results["rows"] = rows
    with open(path_json, "w") as f:
        json.dump(results, f, indent=1)
    be = results["backends"]
    torch_info = be.get("torch", {})
    versions = ", ".join(
        x
        for x in [
            f"Keras {next(iter(be.values()))['keras']}" if be else "",
            f"TensorFlow {be['tensorflow']['tensorflow']}" if "tensorflow" in be else "",
            f"JAX {be['jax']['jax']}" if "jax" in be else "",
            (
                f"torch {torch_info['torch']} ({torch_info.get('torch_threads')} threads)"
                + (
                    f", torchvision {torch_info['torchvision']}, timm {torch_info['timm']}"
                    if "timm" in torch_info
                    else ""
                )
            )
            if torch_info
            else "",
        ]
        if x
    )
    lb, la = results["load_before"], results["load_after"]
    lines = [
        "# Training throughput against native PyTorch (images/second, full train step)",
        "",
        f"Generated by `python benchmarks/train_throughput.py` on {results['date']} "
        f"({results['machine']}, {results['cpus']} CPU cores, SIMD: "
        f"{', '.join(results['cpu_flags']) or 'n/a'}; no GPU). {versions}. "
        f"Input {results['size']}x{results['size']}x3, batch {results['batch']}, "
        f"{results['classes']} classes, generated data; SGD (Nesterov momentum 0.9, coupled L2 "
        "1e-4: the zoo's CoupledSGD, torch.optim.SGD's weight_decay). Median over "
        f"{results['rounds']} interleaved rounds of {results['steps']} step(s) each, after "
        f"{results['warmup']} warm-up steps; "
        + (
            "one family at a time: a process per backend holds that family's models, all "
            "built before its timing. "
            if timed_per_family(results)
            else "one process per backend, all models built before any timing. "
        )
        + f"Whole run: {results['wall_s']:.0f} s.",
        "",
        f"Load average (1/5/15 min) before: {lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f}; after: "
        f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (on {results['cpus']} cores).",
        "",
    ]
    if results.get("note"):
        lines += [f"**Note.** {results['note']}", ""]
    if torch_info:
        lines += [
            f"PyTorch numbers (native and Keras' torch backend) all come from "
            f"{torch_info.get('python', '?')}, torch {torch_info['torch']}.",
            "",
        ]
    checks = results.get("peer_checks", {})
    if checks:
        lines += [
            "## Same network?",
            "",
            "| family | peer | trainable params peer / zoo | BN statistics peer / zoo "
            "| same tensor sizes |",
            "|---|---|---:|---:|---|",
        ]
        for fam, c in checks.items():
            lines.append(
                f"| {fam} | `{c['peer']}` | {c['peer_trainable']:,} / "
                f"{c['zoo_trainable']:,} | {c['peer_statistics']:,} / "
                f"{c['zoo_statistics']:,} | "
                + ("yes" if c["equal"] else "; ".join(c["differences"]))
                + " |"
            )
        lines.append("")
    families = list(dict.fromkeys(r["family"] for r in rows))
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    lines += [
        "## Images/second and ratios",
        "",
        "Native = the torchvision/timm model, eager, in PyTorch's default NCHW layout (CL: "
        "channels-last memory format). *best native* = the faster of the two. Zoo rows use "
        "`speed.default_settings` (fit.py's defaults: TensorFlow without XLA, JAX jitted, "
        "PyTorch eager, the fast kernels of `speed.install_fast_kernels` on JAX and PyTorch). "
        "Mixed policies: Keras `mixed_bfloat16` / `mixed_float16`; native: `torch.autocast` "
        "with that dtype (+ GradScaler for float16).",
        "",
    ]
    for policy in policies:
        lines += [
            f"### {policy}",
            "",
            "| family | native NCHW | native CL | TF orig | TF PF | JAX orig | JAX PF "
            "| torch orig | torch PF | best Keras orig / best native | "
            "TF / JAX / torch orig vs best native | PF / orig (TF, JAX, torch) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for fam in families:

            def v(fam=fam, policy=policy, **kw):
                r = _find(rows, family=fam, policy=policy, **kw)
                return r["images_per_s"] if r else None

            nat = v(kind="native", layout="nchw")
            natcl = v(kind="native", layout="channels_last")
            best_native = max([x for x in (nat, natcl) if x], default=None)
            orig = {
                b: v(
                    backend=b,
                    kind="zoo",
                    variant="orig",
                    kernels="fast",
                    jit_compile=_default_jit(results, b),
                )
                for b in BACKENDS
            }
            pf = {
                b: v(
                    backend=b,
                    kind="zoo",
                    variant="pf",
                    kernels="fast",
                    jit_compile=_default_jit(results, b),
                )
                for b in BACKENDS
            }
            best_keras = max([x for x in orig.values() if x], default=None)
            ratio = f"**{best_keras / best_native:.2f}x**" if best_keras and best_native else ""
            per = " / ".join(
                f"{orig[b] / best_native:.2f}" if orig[b] and best_native else "-" for b in BACKENDS
            )
            pfr = " / ".join(
                f"{pf[b] / orig[b]:.2f}" if pf[b] and orig[b] else "-" for b in BACKENDS
            )
            lines.append(
                f"| {fam} | {_fmt(nat)} | {_fmt(natcl)} | {_fmt(orig['tensorflow'])} "
                f"| {_fmt(pf['tensorflow'])} | {_fmt(orig['jax'])} | {_fmt(pf['jax'])} "
                f"| {_fmt(orig['torch'])} | {_fmt(pf['torch'])} | {ratio} | {per} "
                f"| {pfr} |"
            )
        lines.append("")
    evidence = [
        r
        for r in rows
        if r["kind"] == "zoo"
        and (
            r["kernels"] in ("keras", "all")
            or r["jit_compile"] != _default_jit(results, r["backend"])
        )
    ]
    if evidence:
        from keras_padfree.training.speed import DEFAULT_KERNELS
        from keras_padfree.training.speed import KERNELS

        lines += [
            "## Evidence for the defaults (float32, zoo originals)",
            "",
            "| backend | family | setting | img/s | default's img/s | default / this |",
            "|---|---|---|---:|---:|---:|",
        ]
        for r in evidence:
            d = _find(
                rows,
                backend=r["backend"],
                family=r["family"],
                kind="zoo",
                variant="orig",
                policy="float32",
                kernels="fast",
                jit_compile=_default_jit(results, r["backend"]),
            )
            setting = {
                "keras": "Keras' own kernels (no speed.install_fast_kernels)",
                "all": "+ the opt-in kernels (speed.KERNELS: "
                + ", ".join(sorted(set(KERNELS[r["backend"]]) - set(DEFAULT_KERNELS[r["backend"]])))
                + ")",
            }.get(r["kernels"], f"jit_compile={r['jit_compile']}")
            dv, rv = (d or {}).get("images_per_s"), r["images_per_s"]
            lines.append(
                f"| {r['backend']} | {r['family']} | {setting} | {_fmt(rv)} | "
                f"{_fmt(dv)} | {f'{dv / rv:.2f}x' if dv and rv else ''} |"
            )
        lines.append("")
    errors = [r for r in rows if r.get("error")]
    if errors:
        lines += ["## Failed configurations", ""]
        lines += [f"- {r['backend']} {r['model']} {r['policy']}: {r['error']}" for r in errors]
        lines.append("")
    lines += ["## Settings per backend (speed.default_settings)", ""]
    for backend, b in be.items():
        s = b["settings"]
        lines.append(
            f"- {backend}: jit_compile={s['jit_compile']}, steps_per_execution="
            f"{s['steps_per_execution']}, fast_kernels={s['fast_kernels']}: "
            + "; ".join(s.get("why", []))
        )
    lines.append("")
    with open(path_md, "w") as f:
        f.write("\n".join(lines))


def _default_jit(results, backend):
    return results["backends"].get(backend, {}).get("settings", {}).get("jit_compile")


# ----------------------------------------------------------------------------------- main


def parse_args(argv=None):
    from peers import FAMILIES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument(
        "--families",
        default=",".join(f[0] for f in FAMILIES),
        help="comma-separated labels: " + ", ".join(f[0] for f in FAMILIES),
    )
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument(
        "--mixed-families",
        default=FAMILIES[0][0],
        help="families timed in the mixed policies too ('all': every one)",
    )
    p.add_argument(
        "--evidence-families",
        default=FAMILIES[0][0],
        help="families with the evidence rows ('all': every one)",
    )
    p.add_argument(
        "--mixed-pf",
        action="store_true",
        help="time the padding-free models in the mixed policies too",
    )
    p.add_argument(
        "--no-peers",
        dest="peers",
        action="store_false",
        help="no native PyTorch models; Keras' torch backend in this interpreter",
    )
    p.add_argument(
        "--no-evidence",
        dest="evidence",
        action="store_false",
        help="skip the rows with Keras' own kernels and TensorFlow's XLA",
    )
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=3, help="steps per model per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--peer-venv", default=os.path.join(HERE, ".venv"))
    p.add_argument("--out-dir", default=RESULTS)
    p.add_argument("--log-dir", default=None, help="worker logs (default: /tmp)")
    p.add_argument("--note", default=None, help="a remark printed at the top of the report")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite train_throughput.md from the stored train_throughput.json",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    args.families = [f for f in args.families.split(",") if f]
    args.policies = [x for x in args.policies.split(",") if x]
    every = [f[0] for f in FAMILIES]
    args.mixed_families = (
        every if args.mixed_families == "all" else [f for f in args.mixed_families.split(",") if f]
    )
    args.evidence_families = (
        every
        if args.evidence_families == "all"
        else [f for f in args.evidence_families.split(",") if f]
    )
    for b in args.backends:
        if b not in BACKENDS:
            p.error(f"unknown backend {b!r}")
    for x in args.policies:
        if x not in POLICIES:
            p.error(f"unknown policy {x!r}")
    known = [f[0] for f in FAMILIES]
    for f in args.families + args.mixed_families + args.evidence_families:
        if f not in known:
            p.error(f"unknown family {f!r}; known: {', '.join(known)}")
    args.worker_argv = [
        "--families",
        ",".join(args.families),
        "--mixed-families",
        ",".join(args.mixed_families),
        "--evidence-families",
        ",".join(args.evidence_families),
        "--policies",
        ",".join(args.policies),
        *step_argv(args),
    ]
    args.worker_argv += ["--mixed-pf"] if args.mixed_pf else []
    args.worker_argv += [] if args.peers else ["--no-peers"]
    args.worker_argv += [] if args.evidence else ["--no-evidence"]
    if args.log_dir is None:
        args.log_dir = "/tmp"
    return args


def step_argv(args) -> list[str]:
    """The worker options of the timed step (input size, batch, steps, warm-up), as argv."""
    return [
        "--size",
        str(args.size),
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    path_md = os.path.join(args.out_dir, "train_throughput.md")
    path_json = os.path.join(args.out_dir, "train_throughput.json")
    if args.report_only:
        with open(path_json) as f:
            results = json.load(f)
        if args.note:
            results["note"] = args.note
        write_report(results, path_md, path_json)
        print(open(path_md).read())
        return
    os.makedirs(args.out_dir, exist_ok=True)
    results = run(args)
    write_report(results, path_md, path_json)
    print(open(path_md).read())


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.path.insert(0, ROOT)
    main()
