"""Draws the README's figures into docs/figures/ from the registry and the benchmark results.

    python docs/make_figures.py                 # all figures
    python docs/make_figures.py --only flops    # one of: feature_maps, flops, latency

Figures (PNG):

* ``docs/figures/feature_maps.png``: feature-map sizes along the downsampling chain of the original
  and the padding-free GhostNet, at 32x32 (CIFAR) and 224x224, read off the built registry models.
* ``docs/figures/flops_vs_accuracy.png``: the papers' top-1 against the exact reference FLOPs, per
  table and dataset, with an arrow from each original model to its padding-free version (from
  ``keras_padfree.applications.get_model_info(name).references``; nothing is trained).
* ``docs/figures/latency.png``: the CPU latency in ``benchmarks/results/latency.json`` (written by
  ``benchmarks/latency.py``); skipped, with a message, when that file does not exist yet.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = os.path.join(ROOT, "docs", "figures")
LATENCY_JSON = os.path.join(ROOT, "benchmarks", "results", "latency.json")
FIGURE_NAMES = ("feature_maps", "flops", "latency")

# The models whose chains the diagram shows: (label, registry name, input side).
CHAIN_MODELS = (
    ("GhostNet, 32x32", "ghostnet_cifar", 32),
    ("GhostNet-PF, 32x32", "ghostnet_pf_cifar", 32),
    ("GhostNet, 224x224", "ghostnet_vegfru", 224),
    ("GhostNet-PF, 224x224", "ghostnet_pf_vegfru", 224),
)


def feature_map_figure(path):
    import keras

    from keras_padfree import applications
    from keras_padfree import plotting

    chains = []
    for label, name, size in CHAIN_MODELS:
        model = applications.create_model(name, input_shape=(size, size, 3))
        chains.append((label, plotting.feature_map_chain(model)))
        del model
        keras.backend.clear_session()
    for label, sizes in chains:
        print(f"  {label:22s} {' -> '.join(str(s) for s in sizes)}")
    fig = plotting.plot_feature_map_chains(
        chains, title="Feature-map sides: padded stride-2 convs (grey) vs. padding-free (red)"
    )
    return plotting.save_figure(fig, path)


def flops_figure(path):
    from keras_padfree import plotting

    points = plotting.flops_accuracy_points()
    fig = plotting.plot_flops_accuracy(points)
    return plotting.save_figure(fig, path)


def latency_figure(path, results_path=LATENCY_JSON):
    from keras_padfree import plotting

    results = plotting.load_latency_results(results_path)
    if results is None:
        print(
            f"  {os.path.relpath(results_path, ROOT)} does not exist yet: run "
            "`python benchmarks/latency.py` first; no latency figure drawn."
        )
        return None
    fig = plotting.plot_latency(results)
    return plotting.save_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=FIGURE_NAMES, action="append", help="draw only this figure (repeatable)"
    )
    parser.add_argument("--out", default=FIGURES, help="output folder (default docs/figures)")
    parser.add_argument(
        "--latency-json",
        default=LATENCY_JSON,
        help="benchmark results file (default benchmarks/results/latency.json)",
    )
    args = parser.parse_args(argv)
    wanted = args.only or list(FIGURE_NAMES)
    os.makedirs(args.out, exist_ok=True)
    written = []
    if "feature_maps" in wanted:
        print("feature-map diagram")
        written.append(feature_map_figure(os.path.join(args.out, "feature_maps.png")))
    if "flops" in wanted:
        print("FLOPs vs. accuracy")
        written.append(flops_figure(os.path.join(args.out, "flops_vs_accuracy.png")))
    if "latency" in wanted:
        print("latency")
        written.append(latency_figure(os.path.join(args.out, "latency.png"), args.latency_json))
    for path in written:
        if path:
            size_kb = os.path.getsize(path) // 1024
            print(f"wrote {os.path.relpath(path, os.getcwd())} ({size_kb} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
