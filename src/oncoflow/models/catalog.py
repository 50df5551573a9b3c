"""What each architecture supports, without importing torch: the workflow checks a config against
this while Snakemake parses it (oncoflow.config, oncoflow.plan), and oncoflow.models.zoo builds from it."""

from __future__ import annotations

ARCH_2D = ("alexnet", "googlenet", "resnet18", "resnet50", "vgg16")
ARCH_3D = ("resnet10_3d", "resnet18_3d", "vgg16_3d", "msresnet10_3d")
ARCHITECTURES = ARCH_2D + ARCH_3D
# MedicalNet publishes weights for these (init: medicalnet).
MEDICALNET = ("resnet10_3d", "resnet18_3d")
# ResNet family: a segmentation head reads layer2-4 (co-training, segmentation pretraining;
# msresnet10_3d: its full-resolution branch).
SEGMENTATION = ("resnet18", "resnet50", "resnet10_3d", "resnet18_3d", "msresnet10_3d")
# init: pretrained loads the backbone of a checkpoint made by the workflow's pretrain_model rule.
INITS = ("scratch", "imagenet", "medicalnet", "checkpoint", "pretrained")
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
