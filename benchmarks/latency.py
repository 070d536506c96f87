"""The paper's latency table on this machine: LiteRT (XNNPACK) latency of orig vs padding-free models.

For the four second-set families (MobileNetV3-large, ParC-MobileNetV2, GhostNet, ShuffleNetV2) at
32x32 (CIFAR configuration) and 224x224, each orig/PF pair is converted to a float32 TFLite file
(the same conversion as ``keras_padfree.export.export_tflite``) and timed with the LiteRT
interpreter (XNNPACK delegate), batch 1, with 1 and 2 threads. Timing is interleaved: every round
runs a few invocations of the orig model, then of its PF model, so drift in machine load hits both;
the table reports medians over all invocations. keras.applications.MobileNetV3Large (weights=None,
224x224, minimalistic=False, include_preprocessing=False) is timed as a reference point.

Next to the PF/orig latency ratio stands the PF/orig FLOPs ratio (``keras_padfree.profiling``,
convention "thop_0.0.31", the convention of the second-set tables). The goal (reported, not
asserted) is ``latency ratio <= FLOPs ratio + 0.05`` for each family and size with 1 thread.

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
import tempfile
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
    return base, f"{base}_pf"


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="32,224", help="comma-separated input sizes (32, 224)")
    p.add_argument("--threads", default="1,2", help="comma-separated XNNPACK thread counts")
    p.add_argument("--rounds", type=int, default=40,
                   help="interleaved rounds per pair and thread count")
    p.add_argument("--runs-per-round", type=int, default=5,
                   help="timed invocations of one model per round")
    p.add_argument("--warmup", type=int, default=5, help="untimed invocations per model")
    p.add_argument("--families", default=None,
                   help="comma-separated family keys (default: all four)")
    p.add_argument("--no-keras-reference", action="store_true",
                   help="skip keras.applications.MobileNetV3Large")
    p.add_argument("--output-dir", default=RESULTS_DIR)
    p.add_argument("--keep-tflite", default=None,
                   help="directory to keep the .tflite files in; files already there are reused "
                        "instead of converting again (delete them after changing the models)")
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
            f"is {model.layers[1].name!r}.")
    return keras.Model(model.input, last.output, name=f"{model.name}_stem")


def convert(model, size):
    from keras_padfree.export._convert import convert_tflite

    return convert_tflite(model, input_shape=(size, size, 3))


def _converted(model, size, name, keep_dir):
    """The float32 .tflite bytes of ``model``; reused from / saved to ``keep_dir`` when given."""
    cached = os.path.join(keep_dir, f"{name}.tflite") if keep_dir else None
    if cached and os.path.isfile(cached):
        with open(cached, "rb") as f:
            return f.read()
    content = convert(model, size)
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


def main(argv=None):
    args = build_parser().parse_args(argv)
    t_start = time.time()
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
                entry[f"_{key}_stem_content"] = _converted(stem, size, f"{name}_stem",
                                                           args.keep_tflite)
                print(f"converted {name} and its stem ({time.time() - t0:.1f}s)", flush=True)
                keras.backend.clear_session()
            entries.append(entry)

    reference = None
    if not args.no_keras_reference:
        ref_model = keras.applications.MobileNetV3Large(
            weights=None, input_shape=(224, 224, 3), include_preprocessing=False)
        reference = {"name": "keras.applications.MobileNetV3Large (weights=None, 224x224)",
                     "_content": convert(ref_model, 224)}
        reference["tflite_bytes"] = len(reference["_content"])
        keras.backend.clear_session()
        print("converted keras.applications.MobileNetV3Large", flush=True)

    for n_threads in threads:
        for entry in entries:
            # With 1 thread the stems run in the same interleaved rounds: the stem/body split.
            keys = ["orig", "pf"] + (["orig_stem", "pf_stem"] if n_threads == 1 else [])
            medians, (n_orig, *_) = time_interleaved(
                [entry[f"_{k}_content"] for k in keys], n_threads, args.rounds,
                args.runs_per_round, args.warmup)
            t_orig, t_pf = medians[:2]
            if n_threads == 1:
                entry["orig_stem_ms_t1"], entry["pf_stem_ms_t1"] = medians[2:]
            entry[f"orig_ms_t{n_threads}"] = t_orig
            entry[f"pf_ms_t{n_threads}"] = t_pf
            entry[f"latency_ratio_t{n_threads}"] = t_pf / t_orig
            entry["timed_runs"] = n_orig
            print(f"{entry['family']} @{entry['size']} {n_threads} thread(s): orig {t_orig:.3f} ms, "
                  f"PF {t_pf:.3f} ms, ratio {t_pf / t_orig:.3f}", flush=True)
        if reference is not None:
            (t_ref,), _ = time_interleaved([reference["_content"]], n_threads, args.rounds,
                                           args.runs_per_round, args.warmup)
            reference[f"ms_t{n_threads}"] = t_ref
            print(f"keras MobileNetV3Large {n_threads} thread(s): {t_ref:.3f} ms", flush=True)

    for entry in entries:
        entry["flops_ratio"] = entry["pf_flops"] / entry["orig_flops"]
        if 1 in threads:
            entry["goal_met_t1"] = entry["latency_ratio_t1"] <= entry["flops_ratio"] + 0.05
            body = {k: (entry[f"{k}_ms_t1"] - entry[f"{k}_stem_ms_t1"],
                        entry[f"{k}_flops"] - entry[f"{k}_stem_flops"]) for k in ("orig", "pf")}
            entry["body_latency_ratio_t1"] = body["pf"][0] / body["orig"][0]
            entry["body_flops_ratio"] = body["pf"][1] / body["orig"][1]
        for key in [k for k in entry if k.startswith("_")]:
            del entry[key]
    if reference is not None:
        del reference["_content"]

    import ai_edge_litert
    import tensorflow as tf

    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(),
                    "load_average_1_5_15": list(os.getloadavg())},
        "software": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown")},
        "settings": {"runtime": "ai_edge_litert Interpreter, XNNPACK delegate, float32, batch 1",
                     "threads": threads, "rounds": args.rounds,
                     "runs_per_round": args.runs_per_round, "warmup": args.warmup,
                     "statistic": "median over all timed invocations",
                     "flops_convention": "thop_0.0.31"},
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


def markdown(result):
    threads = result["settings"]["threads"]
    lines = [
        "# LiteRT latency: original vs padding-free (PF) models",
        "",
        f"Measured {result['date_utc']} UTC by `benchmarks/latency.py` on "
        f"{result['machine']['cpu_count']} CPU cores ({result['machine']['processor'] or 'cpu'}, "
        f"{result['machine']['platform']}); 1-minute load average at the end "
        f"{result['machine']['load_average_1_5_15'][0]:.1f}. "
        f"{result['settings']['runtime']}; median over {result['settings']['rounds']} interleaved "
        f"rounds x {result['settings']['runs_per_round']} invocations per model. "
        f"FLOPs: `keras_padfree.profiling`, convention {result['settings']['flops_convention']}. "
        f"TensorFlow {result['software']['tensorflow']}, LiteRT "
        f"{result['software']['ai_edge_litert']}. Random weights (latency does not depend on them).",
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
        row = (f"| {e['family']} | {e['size']}x{e['size']} | {e['orig_flops'] / 1e6:.2f} | "
               f"{e['pf_flops'] / 1e6:.2f} | {e['flops_ratio']:.3f} |")
        for t in threads:
            row += (f" {e[f'orig_ms_t{t}']:.3f} | {e[f'pf_ms_t{t}']:.3f} | "
                    f"{e[f'latency_ratio_t{t}']:.3f} |")
        if 1 in threads:
            row += " met |" if e["goal_met_t1"] else " **not met** |"
        lines.append(row)
    ref = result.get("keras_reference")
    if ref:
        lines += ["", f"Reference point: {ref['name']}: "
                  + ", ".join(f"{ref[f'ms_t{t}']:.3f} ms ({t} thread{'s' if t > 1 else ''})"
                              for t in threads) + "."]
    lines += ["", "Goal (reported, not asserted): latency PF/orig <= FLOPs PF/orig + 0.05 with 1 "
              "thread.", ""]
    if 1 in threads:
        lines += [
            "## Stem and body (1 thread)", "",
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
                f"{e['body_latency_ratio_t1']:.3f} |")
        lines.append("")
    lines += ["## Graph ops (TFLite builtin ops before delegation)", ""]
    for e in result["pairs"]:
        for key in ("orig", "pf"):
            ops = ", ".join(f"{k} {v}" for k, v in e[f"{key}_ops"].items())
            lines.append(f"- `{e[key]}` ({e[f'{key}_xnnpack_partitions']} XNNPACK partition(s)): "
                         f"{ops}")
    lines += ["", f"Total run time {result['elapsed_s']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(0 if main() else 1)
