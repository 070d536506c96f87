"""How long a LiteRT conversion takes: the weights-as-constants route against Keras' own.

``keras_padfree.export`` converts through a SavedModel whose graph holds the weights as constants
(``route="constants"``, the default); Keras' ``model.export(format="litert")`` (``route="keras"``)
writes the variables, their checkpoint and their save/restore functions into the SavedModel and
reads them back. Both end in ``TFLiteConverter.from_saved_model`` with the same settings and give
the same operators and outputs (tests/export/test_export.py). This script times
``keras_padfree.export._convert.convert_tflite`` by route, in interleaved rounds (round r converts
every model by every route, the routes' order alternating), on the TensorFlow backend, and writes
``benchmarks/results/export_time.{md,json}``: medians and the ratio keras / constants, with the
command, the date, the machine and its load.

    python benchmarks/export_time.py                       # about 4 minutes on 2 idle cores
    python benchmarks/export_time.py --models bsconv_resnet20_pf_cifar --rounds 1 --out /tmp/x
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

os.environ["KERAS_BACKEND"] = "tensorflow"  # TFLite conversion runs on TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, os.path.dirname(HERE))

ROUTES = ("keras", "constants")
DEFAULT_MODELS = (
    "ghostnet_pf_cifar",
    "mobilenetv3_large_pf_cifar",
    "shufflenetv2_pf_cifar",
    "bsconv_resnet20_pf_cifar",
)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="registered names, commas")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--out", default=RESULTS, help="folder of export_time.{md,json}")
    return p


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from keras_padfree import applications

    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in applications.list_models()]
    if not args.models or unknown:
        parser.error(
            f"argument --models: expected registered model names (--models a,b; see "
            f"keras_padfree.applications.list_models()). Received: {unknown or args.models!r}."
        )
    if args.rounds < 1:
        parser.error(f"argument --rounds: expected an int >= 1. Received: {args.rounds}.")
    return args


def time_routes(models, rounds, convert, clock=time.perf_counter):
    """``{name: {route: [seconds per round]}}``; ``convert(model, name, route)`` converts once."""
    times = {name: {route: [] for route in ROUTES} for name in models}
    for r in range(rounds):
        for name, model in models.items():
            for route in ROUTES if r % 2 == 0 else ROUTES[::-1]:
                start = clock()
                convert(model, name, route)
                times[name][route].append(clock() - start)
    return times


def summarize(times):
    rows = []
    for name, by_route in times.items():
        med = {route: statistics.median(v) for route, v in by_route.items()}
        rows.append(
            {
                "model": name,
                **{f"{route}_s": med[route] for route in ROUTES},
                **{f"{route}_all_s": by_route[route] for route in ROUTES},
                "ratio_keras_over_constants": med["keras"] / med["constants"],
            }
        )
    return rows


def report(result):
    lines = [
        "# LiteRT conversion time by route",
        "",
        f"Measured {result['date']} by `{result['command']}` on {os.cpu_count()} CPU cores "
        f"({result['machine']['platform']}); 1-minute load average at the start "
        f"{result['machine']['load_start'][0]:.2f}, at the end "
        f"{result['machine']['load_end'][0]:.2f}. TensorFlow {result['software']['tensorflow']}, "
        f"Keras {result['software']['keras']}. `convert_tflite` float32 at each model's test "
        f"input, median of {result['rounds']} interleaved rounds (routes' order alternating).",
        "",
        "| model | input | Keras route s | constants route s | keras / constants |",
        "|---|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| `{row['model']}` | {row['input']} | {row['keras_s']:.1f} | "
            f"{row['constants_s']:.1f} | {row['ratio_keras_over_constants']:.2f} |"
        )
    lines += ["", f"Total run time {result['elapsed_s']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from keras_padfree import applications
    from keras_padfree.export._convert import convert_tflite

    started = time.time()
    load_start = list(os.getloadavg())
    models, shapes = {}, {}
    for name in args.models:
        shapes[name] = tuple(applications.get_model_info(name).test_input_shape)
        models[name] = applications.create_model(name, input_shape=shapes[name], classes=10)

    def convert(model, name, route):
        convert_tflite(model, input_shape=shapes[name], route=route)

    # TensorFlow's first conversion in a process pays one-time set-up: not any route's cost.
    convert(models[args.models[-1]], args.models[-1], "constants")
    rows = summarize(time_routes(models, args.rounds, convert))
    for row in rows:
        row["input"] = "x".join(str(d) for d in shapes[row["model"]][:2])
    result = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/export_time.py" + "".join(f" {a}" for a in (argv or [])),
        "rounds": args.rounds,
        "machine": {
            "platform": platform.platform(),
            "load_start": load_start,
            "load_end": list(os.getloadavg()),
        },
        "software": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "rows": rows,
        "elapsed_s": time.time() - started,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "export_time.json"), "w") as f:
        json.dump(result, f, indent=1)
    text = report(result)
    with open(os.path.join(args.out, "export_time.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
