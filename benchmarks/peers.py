"""Native PyTorch peers of the zoo's 224-pixel originals, and the check that they are the same size.

torchvision's ``mobilenet_v3_large`` and ``shufflenet_v2_x1_0`` and timm's ``ghostnet_100`` (random
weights) are the networks the zoo's ``*_vegfru`` originals rebuild in Keras. ``compare_layouts``
checks that a peer and the Keras model hold the same parameters: the same total, and the same
multiset of tensor sizes (a 3x3 conv 16 -> 32 is 4,608 values in both layouts); PyTorch's BN
running statistics are buffers, Keras' moving mean/variance non-trainable variables, so those
are compared separately.

Needs torch, torchvision and timm (``pip install keras_padfree[bench]``, or the environment that
``benchmarks/peer_env.sh`` creates).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

# (label, zoo original, zoo padding-free, peer library, peer constructor)
FAMILIES: list[tuple[str, str, str, str, str]] = [
    (
        "MobileNetV3-large",
        "mobilenetv3_large_vegfru",
        "mobilenetv3_large_pf_vegfru",
        "torchvision",
        "mobilenet_v3_large",
    ),
    (
        "ShuffleNetV2 1.0x",
        "shufflenetv2_vegfru",
        "shufflenetv2_pf_vegfru",
        "torchvision",
        "shufflenet_v2_x1_0",
    ),
    ("GhostNet 1.0x", "ghostnet_vegfru", "ghostnet_pf_vegfru", "timm", "ghostnet_100"),
]


def build_peer(library: str, name: str, classes: int) -> Any:
    """The native PyTorch model, random weights, ``classes`` outputs."""
    if library == "torchvision":
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=classes)
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False, num_classes=classes)
    raise ValueError(f"Unknown peer library {library!r}; expected torchvision or timm.")


def torch_layout(module: Any) -> dict[str, Any]:
    """Parameter sizes of a torch module: trainable tensors and BN running statistics."""
    params = [int(p.numel()) for p in module.parameters()]
    stats = [
        int(b.numel())
        for n, b in module.named_buffers()
        if n.endswith(("running_mean", "running_var"))
    ]
    return {
        "trainable": sum(params),
        "statistics": sum(stats),
        "trainable_sizes": Counter(params),
        "statistics_sizes": Counter(stats),
    }


def keras_layout(model: Any) -> dict[str, Any]:
    """Parameter sizes of a Keras model: trainable variables and non-trainable ones."""
    import numpy as np

    params = [int(np.prod(v.shape)) for v in model.trainable_variables]
    stats = [
        int(np.prod(v.shape))
        for v in model.non_trainable_variables
        if "moving" in v.path or "moving" in v.name
    ]
    return {
        "trainable": sum(params),
        "statistics": sum(stats),
        "trainable_sizes": Counter(params),
        "statistics_sizes": Counter(stats),
    }


def compare_layouts(peer: dict[str, Any], zoo: dict[str, Any]) -> dict[str, Any]:
    """Whether two layouts hold the same parameters, and what differs if not."""
    out: dict[str, Any] = {
        "peer_trainable": peer["trainable"],
        "zoo_trainable": zoo["trainable"],
        "peer_statistics": peer["statistics"],
        "zoo_statistics": zoo["statistics"],
    }
    diffs = []
    for key in ("trainable_sizes", "statistics_sizes"):
        only_peer = peer[key] - zoo[key]
        only_zoo = zoo[key] - peer[key]
        if only_peer or only_zoo:
            diffs.append(
                f"{key.split('_')[0]} tensors only in the peer: "
                f"{dict(sorted(only_peer.items()))}, only in the zoo: "
                f"{dict(sorted(only_zoo.items()))}"
            )
    out["equal"] = (
        not diffs
        and peer["trainable"] == zoo["trainable"]
        and peer["statistics"] == zoo["statistics"]
    )
    out["differences"] = diffs
    return out
