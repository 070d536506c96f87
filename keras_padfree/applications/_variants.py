"""The paper's ablation variants, shared by the second-set families (MobileNetV3, GhostNet,
ParC-MobileNetV2, ShuffleNetV2): each variant is a (stem, downsampling) pair."""

STEMS = ("standard", "hybrid")
DOWNSAMPLINGS = ("standard", "padding_free", "attention")
VARIANTS = {
    "orig": ("standard", "standard"),
    "pf": ("hybrid", "padding_free"),
    "stem_only": ("hybrid", "standard"),
    "downsampling_only": ("standard", "padding_free"),
    "effv2_downsampling": ("standard", "attention"),
}
DESCRIPTIONS = {
    "orig": "original",
    "pf": "padding-free downsampling + hybrid stem",
    "stem_only": "ablation: hybrid stem only",
    "downsampling_only": "ablation: padding-free downsampling only",
    "effv2_downsampling": "EfficientFormerV2 attention downsampling",
}
